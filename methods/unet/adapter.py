"""U-Net adapter: zero-filled SENSE image -> real/imag channels -> ``fastmri.models.Unet`` -> image.

Each input is divided by its zero-filled maximum (available at inference) and the output multiplied
back. Loss: ``benchmark.training.losses.magnitude_loss`` (L1 + L2 on the magnitude, shared by all library baselines).
"""

from __future__ import annotations

import torch
from fastmri.models import Unet

from benchmark.method import LearnedMethod, ReconBatch
from benchmark.training.losses import magnitude_loss
from methods.unet.config import CONFIGS, TRAIN


class UNet(LearnedMethod):
    name = "unet"
    configs = CONFIGS
    train_configs = TRAIN

    def build_model(self) -> torch.nn.Module:
        c = self.config
        return Unet(in_chans=2, out_chans=2, chans=c.chans, num_pool_layers=c.num_pool_layers, drop_prob=c.drop_prob)

    def reconstruct(self, batch: ReconBatch) -> torch.Tensor:
        zero_filled = batch.operator().adjoint(batch.kspace)
        scale = zero_filled.abs().amax(dim=(-2, -1), keepdim=True).clamp_min(1e-12)
        channels = torch.view_as_real(zero_filled / scale).permute(0, 3, 1, 2)
        output = self.model(channels.float()).permute(0, 2, 3, 1).contiguous()
        return torch.view_as_complex(output.float()) * scale

    def loss(self, batch: ReconBatch, target: torch.Tensor) -> torch.Tensor:
        return magnitude_loss(self.reconstruct(batch).abs(), target)
