"""PSNR, SSIM and NMSE under a named scoring protocol (see ``benchmark.metrics.base``).

PSNR = 10 log10(L^2 / MSE) with L the protocol's data range; identical images give +inf (no epsilon:
an epsilon turns "identical" into an arbitrary finite number). NMSE = ||y - x||^2 / ||y||^2.
SSIM uses the protocol's window: 7 x 7 uniform with sample covariance (fastmri, as skimage's default
that ``fastmri.evaluate.ssim`` calls) or Gaussian sigma 1.5 with population covariance (paper).
"""

from __future__ import annotations

import torch

from benchmark.metrics.base import Metric, ScoringBatch, scale_for_protocol
from benchmark.metrics.ssim import ssim

SSIM_WINDOW = {"fastmri": "uniform", "paper": "gaussian"}


class _ProtocolMetric(Metric):
    base_name = ""

    def __init__(self, protocol: str) -> None:
        super().__init__()
        if protocol not in SSIM_WINDOW:
            raise ValueError(f"unknown scoring protocol {protocol!r}; known: {', '.join(SSIM_WINDOW)}")
        self.protocol = protocol
        self.name = f"{self.base_name}_{protocol}"


class PSNR(_ProtocolMetric):
    base_name, direction = "psnr", "higher"

    def compute(self, batch: ScoringBatch) -> torch.Tensor:
        recon, target, data_range = scale_for_protocol(batch, self.protocol)
        mse = (recon - target).pow(2).mean(dim=(-2, -1))
        return 10 * torch.log10(data_range**2 / mse)


class NMSE(_ProtocolMetric):
    base_name, direction = "nmse", "lower"

    def compute(self, batch: ScoringBatch) -> torch.Tensor:
        recon, target, _ = scale_for_protocol(batch, self.protocol)
        return (recon - target).pow(2).sum(dim=(-2, -1)) / target.pow(2).sum(dim=(-2, -1))


class SSIM(_ProtocolMetric):
    base_name, direction = "ssim", "higher"

    def compute(self, batch: ScoringBatch) -> torch.Tensor:
        recon, target, data_range = scale_for_protocol(batch, self.protocol)
        return ssim(recon, target, data_range, window=SSIM_WINDOW[self.protocol])
