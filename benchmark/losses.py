"""The image loss every library baseline (UNet, E2E-VarNet, RecurrentVarNet) trains with.

L1 + L2 on the magnitude. Pure L1 aims at the per-pixel posterior median, which at R = 32 sits below
the mean wherever the anatomy is uncertain, so the tiny models drew heads darker than the target and
lost PSNR (an MSE score) to zero filling on T2 under fastMRI scoring; the L2 term pulls the estimate
towards the mean that PSNR rewards while L1 keeps edges sharp. One definition, so no baseline gets a
loss the others lack.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def magnitude_loss(magnitude: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``mean|m - t| + mean(m - t)^2`` over all pixels of ``(B, H, W)`` magnitudes."""
    return F.l1_loss(magnitude, target) + F.mse_loss(magnitude, target)
