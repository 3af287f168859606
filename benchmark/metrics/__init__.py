"""The metric suite: PSNR/SSIM/NMSE under both scoring protocols (PSNR/SSIM also in the head region),
LPIPS-Alex/VGG, DISTS, ST-LPIPS.

Runtime (seconds per image) is measured by the runner during inference, not here.
"""

from __future__ import annotations

import torch

from benchmark.metrics.base import SCORING_PROTOCOLS, Metric, ScoringBatch, scale_for_protocol
from benchmark.metrics.perceptual import DISTS, LPIPS, STLPIPS
from benchmark.metrics.pixel import NMSE, PSNR, SSIM
from benchmark.metrics.region import HEAD

__all__ = [
    "SCORING_PROTOCOLS",
    "Metric",
    "ScoringBatch",
    "build_metric_suite",
    "scale_for_protocol",
]


def build_metric_suite(device: str | torch.device = "cpu", verify_weights: bool = True) -> list[Metric]:
    """Every metric the benchmark reports, in table order."""
    pixel = [cls(scoring, device) for scoring in SCORING_PROTOCOLS for cls in (PSNR, SSIM, NMSE)]
    pixel += [cls(scoring, device, region=HEAD) for scoring in SCORING_PROTOCOLS for cls in (PSNR, SSIM)]
    perceptual = [
        LPIPS("alex", device, verify_weights),
        LPIPS("vgg", device, verify_weights),
        DISTS(device, verify_weights),
        STLPIPS(device),
    ]
    return pixel + perceptual
