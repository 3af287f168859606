"""PSNR, SSIM and NMSE under a named scoring protocol (see ``benchmark.metrics.base``).

PSNR = 10 log10(L^2 / MSE) with L the protocol's data range; identical images give +inf (no epsilon:
an epsilon turns "identical" into an arbitrary finite number). NMSE = ||y - x||^2 / ||y||^2.
SSIM uses the protocol's window: 7 x 7 uniform with sample covariance (fastmri, as skimage's default
that ``fastmri.evaluate.ssim`` calls) or Gaussian sigma 1.5 with population covariance (paper).
PSNR and SSIM also score a region only (``region="head"``): the MSE, or the mean of the SSIM map, over the
batch's region mask; the protocol's scaling and data range are those of the whole image.
A run scores on its own device (a GPU when it has one); the values always come back on the CPU.
"""

from __future__ import annotations

import torch

from benchmark.metrics.base import Metric, ScoringBatch, scale_for_protocol
from benchmark.metrics.region import IMAGE, region_suffix
from benchmark.metrics.ssim import ssim

SSIM_WINDOW = {"fastmri": "uniform", "paper": "gaussian"}


class _ProtocolMetric(Metric):
    base_name = ""

    def __init__(self, protocol: str, device: str | torch.device | None = None, region: str = IMAGE) -> None:
        """``device``: where to score (the run's, so a GPU scores there); ``None``: wherever the batch is.
        ``region``: ``image`` (every pixel) or ``head`` (the batch's ``region`` mask only)."""
        super().__init__()
        if protocol not in SSIM_WINDOW:
            raise ValueError(f"unknown scoring protocol {protocol!r}; known: {', '.join(SSIM_WINDOW)}")
        self.protocol, self.region = protocol, region
        self.name = f"{self.base_name}_{protocol}{region_suffix(region)}"
        self.device = None if device is None else torch.device(device)

    def scaled(self, batch: ScoringBatch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``scale_for_protocol`` of the batch, on this metric's device."""
        if self.device is not None:
            batch = ScoringBatch(*(t.to(self.device) for t in (batch.recon, batch.target, batch.volume_max)))
        return scale_for_protocol(batch, self.protocol)

    def region_of(self, batch: ScoringBatch, like: torch.Tensor) -> torch.Tensor | None:
        """The pixels this metric averages over (``None``: all), on ``like``'s device."""
        if self.region == IMAGE:
            return None
        if batch.region is None:
            raise ValueError(f"{self.name} scores the {self.region} region, but the batch carries no region mask")
        return batch.region.to(like.device)


class PSNR(_ProtocolMetric):
    base_name, direction = "psnr", "higher"

    def compute(self, batch: ScoringBatch) -> torch.Tensor:
        recon, target, data_range = self.scaled(batch)
        squared_error = (recon - target).pow(2)
        region = self.region_of(batch, squared_error)
        if region is None:
            mse = squared_error.mean(dim=(-2, -1))
        else:
            mse = (squared_error * region).sum(dim=(-2, -1)) / region.sum(dim=(-2, -1))
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
        region = self.region_of(batch, recon)
        return ssim(recon, target, data_range, window=SSIM_WINDOW[self.protocol], region_BHW=region)
