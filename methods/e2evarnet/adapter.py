"""E2E-VarNet adapter: masked multi-coil k-space and mask in fastMRI's real-view layout, RSS image out.

The network learns its own sensitivity maps (the shared maps are not used, as in the published
model) and applies soft data consistency in every cascade. Loss: L1 + L2 on the magnitude
(``benchmark.losses``), as for every library baseline here.
"""

from __future__ import annotations

import torch
from fastmri.models import VarNet

from benchmark.losses import magnitude_loss
from benchmark.method import LearnedMethod, ReconBatch
from methods.e2evarnet.config import CONFIGS, TRAIN


class E2EVarNet(LearnedMethod):
    name = "e2evarnet"
    relative_cost = 4.0
    estimates_own_maps = True
    configs = CONFIGS
    train_configs = TRAIN

    def build_model(self) -> torch.nn.Module:
        c = self.config
        return VarNet(
            num_cascades=c.num_cascades, sens_chans=c.sens_chans, sens_pools=c.sens_pools, chans=c.chans, pools=c.pools
        )

    def reconstruct(self, batch: ReconBatch) -> torch.Tensor:
        masked = torch.view_as_real(batch.kspace.to(torch.complex64))  # (B, C, H, W, 2)
        mask = batch.mask[:, None, :, :, None]  # (B, 1, H, W, 1), broadcast over coils and real/imag
        return self.model(masked, mask, num_low_frequencies=self.config.num_low_frequencies).float()

    def loss(self, batch: ReconBatch, target: torch.Tensor) -> torch.Tensor:
        return magnitude_loss(self.reconstruct(batch), target)
