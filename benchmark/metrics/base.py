"""The metric interface: one value per image, a direction, a version, and the two scoring protocols.

A metric implements only ``compute`` on magnitude images; the scoring protocol (how images are scaled and
which data range applies) is decided once here, so two metrics never disagree on conventions:

- ``fastmri``: images as reconstructed; data range = the target volume's maximum (``fastmri.evaluate``).
- ``paper``: reconstruction and target each divided by its own maximum; data range 1 (the paper
  authors' released evaluation code).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Literal

import torch

SCORING_PROTOCOLS = ("fastmri", "paper")


@dataclass(frozen=True)
class ScoringBatch:
    """Magnitude images ``(B, H, W)``, each image's target-volume maximum ``(B,)`` and, for region metrics, the
    boolean scoring region ``(B, H, W)`` (``benchmark.metrics.region``)."""

    recon: torch.Tensor
    target: torch.Tensor
    volume_max: torch.Tensor
    region: torch.Tensor | None = None


class Metric(ABC):
    """A per-image metric. ``available`` is False (with a one-line ``reason``) when it cannot be computed."""

    name: str = ""
    direction: Literal["higher", "lower"] = "higher"
    version: str = "1"

    def __init__(self) -> None:
        self.available = True
        self.reason = ""

    @abstractmethod
    def compute(self, batch: ScoringBatch) -> torch.Tensor:
        """One float64 value per image, shape ``(B,)``."""

    def __call__(self, batch: ScoringBatch) -> torch.Tensor:
        if not self.available:
            raise RuntimeError(f"metric {self.name} is unavailable: {self.reason}")
        return self.compute(batch).to(torch.float64).reshape(-1).cpu()

    def describe(self) -> dict:
        return {
            "direction": self.direction,
            "version": self.version,
            "available": self.available,
            "reason": self.reason,
        }


def scale_for_protocol(batch: ScoringBatch, protocol: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(recon, target, data_range)`` in float64 as ``protocol`` defines them (module docstring)."""
    recon, target = batch.recon.to(torch.float64), batch.target.to(torch.float64)
    if protocol == "fastmri":
        return recon, target, batch.volume_max.to(torch.float64).reshape(-1)
    if protocol == "paper":
        return _by_own_max(recon), _by_own_max(target), torch.ones(recon.shape[0], dtype=torch.float64)
    raise ValueError(f"unknown scoring protocol {protocol!r}; known: {', '.join(SCORING_PROTOCOLS)}")


def _by_own_max(images_BHW: torch.Tensor) -> torch.Tensor:
    peak = images_BHW.amax(dim=(-2, -1), keepdim=True)
    # An all-zero image stays zero rather than becoming NaN.
    return images_BHW / torch.where(peak > 0, peak, torch.ones_like(peak))
