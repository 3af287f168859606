"""Scoring throughput for ``benchmark perf --scoring``: the harness's batched torch PSNR/SSIM/NMSE (on the
run's device) against the per-slice scikit-image loop that evaluation scripts usually run, on the same
images under the paper protocol (each image divided by its own maximum, data range 1, Gaussian SSIM).
Each row also records how far the two paths' scores differ (largest relative difference over the metrics).
"""

from __future__ import annotations

import statistics

import numpy as np
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from benchmark.metrics.base import ScoringBatch
from benchmark.metrics.pixel import NMSE, PSNR, SSIM
from benchmark.runner.environment import Timer, device_name

PROTOCOL = "paper"


def torch_scores(recon_BHW: torch.Tensor, target_BHW: torch.Tensor) -> np.ndarray:
    """``(3, B)``: PSNR, SSIM and NMSE of every image, batched on the tensors' device."""
    batch = ScoringBatch(recon_BHW, target_BHW, target_BHW.amax())
    return np.stack([metric(PROTOCOL)(batch).cpu().numpy() for metric in (PSNR, SSIM, NMSE)])


def skimage_scores(recon_BHW: torch.Tensor, target_BHW: torch.Tensor) -> np.ndarray:
    """``(3, B)``: the same scores, one slice at a time with scikit-image on the CPU in float64."""
    rows = []
    for recon, target in zip(recon_BHW.cpu().double().numpy(), target_BHW.cpu().double().numpy(), strict=True):
        recon, target = recon / recon.max(), target / target.max()
        ssim = structural_similarity(
            target, recon, data_range=1.0, gaussian_weights=True, sigma=1.5, use_sample_covariance=False
        )
        nmse = np.sum((target - recon) ** 2) / np.sum(target**2)
        rows.append((peak_signal_noise_ratio(target, recon, data_range=1.0), ssim, nmse))
    return np.array(rows).T


def scoring_rows(recon_BHW: torch.Tensor, target_BHW: torch.Tensor, repeats: int, warmup: int) -> list[dict]:
    """One row per scoring path, timed like a method (warm-up excluded, median/min/max over repeats)."""
    reference = skimage_scores(recon_BHW, target_BHW)
    rows = []
    for label, scores in (("torch, batched", torch_scores), ("skimage, per slice", skimage_scores)):
        for _ in range(warmup):
            values = scores(recon_BHW, target_BHW)
        seconds = []
        for _ in range(repeats):
            with Timer(recon_BHW.device) as timer:
                values = scores(recon_BHW, target_BHW)
            seconds.append(timer.seconds / recon_BHW.shape[0])
        median = statistics.median(seconds)
        rows.append(
            dict(method=f"scoring ({label})", setting="PSNR, SSIM, NMSE (paper protocol)", batch=recon_BHW.shape[0],
                 device=device_name(recon_BHW.device), s_per_image=median, s_per_image_min=min(seconds),
                 s_per_image_max=max(seconds), images_per_s=1 / median,
                 max_rel_difference=float(np.max(np.abs(values - reference) / np.abs(reference))),
                 repeats=repeats, warmup=warmup)
        )  # fmt: skip
    return rows
