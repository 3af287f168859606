"""Scoring throughput for ``benchmark perf --with-scoring``: the harness's batched torch PSNR/SSIM/NMSE (on the
run's device) against the per-slice scikit-image loop that evaluation scripts usually run, on the same
images under the paper protocol (each image divided by its own maximum, data range 1, Gaussian SSIM).
The torch row also records how far its scores are from scikit-image's (largest relative difference over the
metrics and images; scikit-image's row is the reference, 0).
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
    batch = ScoringBatch(recon_BHW, target_BHW, target_BHW.amax().expand(target_BHW.shape[0]))
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
    paths = (("torch, batched", torch_scores, recon_BHW.device), ("skimage, per slice", skimage_scores, "cpu"))
    for label, score, device in paths:
        for _ in range(warmup):
            score(recon_BHW, target_BHW)
        seconds = []
        for _ in range(repeats):
            with Timer(recon_BHW.device) as timer:
                scores = score(recon_BHW, target_BHW)
            seconds.append(timer.seconds / recon_BHW.shape[0])
        median = statistics.median(seconds)
        rows.append(
            dict(method=f"scoring ({label})", setting="PSNR, SSIM, NMSE (paper protocol)", batch=recon_BHW.shape[0],
                 device=device_name(torch.device(device)), s_per_image=median, s_per_image_min=min(seconds),
                 s_per_image_max=max(seconds), images_per_s=1 / median,
                 max_rel_difference=relative_difference(scores, reference), repeats=repeats, warmup=warmup)
        )  # fmt: skip
    return rows


def relative_difference(scores: np.ndarray, reference: np.ndarray) -> float:
    """Largest |a - b| / |b| over finite reference values (a perfect image's PSNR is inf, its NMSE 0)."""
    usable = np.isfinite(reference) & (reference != 0)
    return float(np.max(np.abs(scores[usable] - reference[usable]) / np.abs(reference[usable]), initial=0.0))
