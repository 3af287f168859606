"""PSNR, SSIM and NMSE under a named scoring protocol (see ``benchmark.metrics.base``).

PSNR = 10 log10(L^2 / MSE) with L the protocol's data range; identical images give +inf (no epsilon:
an epsilon turns "identical" into an arbitrary finite number). NMSE = ||y - x||^2 / ||y||^2.
SSIM uses the protocol's window: 7 x 7 uniform with sample covariance (fastmri, as skimage's default
that ``fastmri.evaluate.ssim`` calls) or Gaussian sigma 1.5 with population covariance (paper).
A run scores on its own device (a GPU when it has one); the values always come back on the CPU.
"""

from __future__ import annotations

import torch

from benchmark.metrics.base import Metric, ScoringBatch, scale_for_protocol
from benchmark.metrics.ssim import ssim

SSIM_WINDOW = {"fastmri": "uniform", "paper": "gaussian"}


class _ProtocolMetric(Metric):
    base_name = ""

    def __init__(self, protocol: str, device: str | torch.device | None = None) -> None:
        """``device``: where to score (the run's, so a GPU scores there); ``None``: wherever the batch is."""
        super().__init__()
        if protocol not in SSIM_WINDOW:
            raise ValueError(f"unknown scoring protocol {protocol!r}; known: {', '.join(SSIM_WINDOW)}")
        self.protocol = protocol
        self.name = f"{self.base_name}_{protocol}"
        self.device = None if device is None else torch.device(device)

    def scaled(self, batch: ScoringBatch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``scale_for_protocol`` of the batch, on this metric's device."""
        if self.device is not None:
            batch = ScoringBatch(*(t.to(self.device) for t in (batch.recon, batch.target, batch.volume_max)))
        return scale_for_protocol(batch, self.protocol)


class PSNR(_ProtocolMetric):
    base_name, direction = "psnr", "higher"

    def compute(self, batch: ScoringBatch) -> torch.Tensor:
        recon, target, data_range = self.scaled(batch)
        mse = (recon - target).pow(2).mean(dim=(-2, -1))
        return 10 * torch.log10(data_range**2 / mse)


class NMSE(_ProtocolMetric):
    base_name, direction = "nmse", "lower"

    def compute(self, batch: ScoringBatch) -> torch.Tensor:
        recon, target, _ = self.scaled(batch)
        return (recon - target).pow(2).sum(dim=(-2, -1)) / target.pow(2).sum(dim=(-2, -1))


class SSIM(_ProtocolMetric):
    base_name, direction = "ssim", "higher"

    def compute(self, batch: ScoringBatch) -> torch.Tensor:
        recon, target, data_range = self.scaled(batch)
        return ssim(recon, target, data_range, window=SSIM_WINDOW[self.protocol])
