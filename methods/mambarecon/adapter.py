"""MambaRecon adapter: zero-filled SENSE image, measured k-space, mask and shared maps -> unrolled Mamba -> image.

Each input is divided by its zero-filled maximum (available at inference), the measurement with it, and the output
multiplied back. Loss: ``benchmark.losses.magnitude_loss`` (shared by all library baselines).
"""

from __future__ import annotations

import torch

from benchmark.losses import magnitude_loss
from benchmark.method import LearnedMethod, ReconBatch, zero_filled_and_scale
from methods.mambarecon.config import CONFIGS, GRADIENT_CHECKPOINTING, TRAIN
from methods.mambarecon.model import MambaReconNet
from methods.mambarecon.selective_scan import cuda_kernel_available


class MambaRecon(LearnedMethod):
    name = "mambarecon"
    relative_cost = 3.0
    configs = CONFIGS
    train_configs = TRAIN

    def build_model(self) -> torch.nn.Module:
        return MambaReconNet(self.config, GRADIENT_CHECKPOINTING[self.profile])

    def reconstruct(self, batch: ReconBatch) -> torch.Tensor:
        zero_filled, scale = zero_filled_and_scale(batch)
        kspace = batch.kspace / scale[:, None, None, None]
        return self.model(zero_filled / scale[:, None, None], kspace, batch.mask, batch.maps) * scale[:, None, None]

    def loss(self, batch: ReconBatch, target: torch.Tensor) -> torch.Tensor:
        return magnitude_loss(self.reconstruct(batch).abs(), target)

    def describe(self) -> dict:
        backend = "mamba_ssm CUDA kernel" if cuda_kernel_available() and self.device.type == "cuda" else "pure PyTorch"
        return super().describe() | {
            "selective_scan": backend,
            "gradient_checkpointing": GRADIENT_CHECKPOINTING[self.profile],
        }
