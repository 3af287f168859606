"""SwinUNet adapter: zero-filled SENSE image -> real/imag channels -> Swin-Unet -> image.

Each input is divided by its zero-filled maximum (available at inference) and the output multiplied back, as for
the U-Net. Loss: ``benchmark.losses.magnitude_loss`` (shared by all library baselines).
"""

from __future__ import annotations

import torch

from benchmark.method import ImageToImageMethod
from methods.swinunet.config import CONFIGS, TRAIN
from methods.swinunet.model import SwinUNetNet


class SwinUNet(ImageToImageMethod):
    name = "swinunet"
    configs = CONFIGS
    train_configs = TRAIN

    def build_model(self) -> torch.nn.Module:
        return SwinUNetNet(self.config)

    def describe(self) -> dict:
        layout = "Cao et al. 2022 Swin-Unet (the MambaRecon repository's committed SwinUnet config does not build)"
        return super().describe() | {"architecture": layout}
