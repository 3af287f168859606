"""U-Net adapter: zero-filled SENSE image -> real/imag channels -> ``fastmri.models.Unet`` -> image.

Each input is divided by its zero-filled maximum (available at inference) and the output multiplied
back. Loss: ``benchmark.losses.magnitude_loss`` (L1 + L2 on the magnitude, shared by all library baselines).
"""

from __future__ import annotations

import torch
from fastmri.models import Unet

from benchmark.method import ImageToImageMethod
from methods.unet.config import CONFIGS, TRAIN


class UNet(ImageToImageMethod):
    name = "unet"
    configs = CONFIGS
    train_configs = TRAIN

    def build_model(self) -> torch.nn.Module:
        c = self.config
        return Unet(in_chans=2, out_chans=2, chans=c.chans, num_pool_layers=c.num_pool_layers, drop_prob=c.drop_prob)
