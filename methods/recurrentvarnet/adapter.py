"""RecurrentVarNet adapter: uses the shared sensitivity maps (as DIRECT does) and returns the SENSE
combination of the predicted k-space. Loss: L1 + L2 on the magnitude
(``benchmark.losses``), as for every library baseline here."""

from __future__ import annotations

import torch

from benchmark.losses import magnitude_loss
from benchmark.method import LearnedMethod, ReconBatch
from benchmark.physics import ifft2c, sense_combine
from methods.recurrentvarnet.config import CONFIGS, TRAIN
from methods.recurrentvarnet.model import RecurrentVarNet as RecurrentVarNetModel


class RecurrentVarNet(LearnedMethod):
    name = "recurrentvarnet"
    configs = CONFIGS
    train_configs = TRAIN

    def build_model(self) -> torch.nn.Module:
        c = self.config
        return RecurrentVarNetModel(
            c.num_steps,
            c.hidden_channels,
            c.num_layers,
            c.learned_initializer,
            c.initializer_channels,
            c.initializer_dilations,
            c.initializer_multiscale,
        )

    def reconstruct(self, batch: ReconBatch) -> torch.Tensor:
        maps = batch.maps.to(torch.complex64)
        kspace = self.model(batch.kspace.to(torch.complex64), batch.mask, maps)
        return sense_combine(ifft2c(kspace), maps)

    def loss(self, batch: ReconBatch, target: torch.Tensor) -> torch.Tensor:
        return magnitude_loss(self.reconstruct(batch).abs(), target)
