"""Per-volume scores with ``fastmri.evaluate``'s formulas (the fastMRI leaderboard's convention).

For a volume of magnitude images ``x`` (reconstruction) and ``y`` (target), ``L = max(y)`` over the
whole volume:

- PSNR = 10 log10(L^2 / MSE) with the MSE over every voxel of the volume (``fastmri.evaluate.psnr``);
- NMSE = ||y - x||^2 / ||y||^2 over the volume (``fastmri.evaluate.nmse``);
- SSIM = mean over slices of the 7 x 7 uniform-window SSIM with data range ``L`` (``fastmri.evaluate.ssim``).

The per-image ``*_fastmri`` columns use the same data range slice by slice; these volume figures are what
the fastMRI-protocol tables report.
"""

from __future__ import annotations

import torch

from benchmark.metrics.ssim import ssim

VOLUME_METRICS = ("psnr_fastmri", "ssim_fastmri", "nmse_fastmri", "psnr_fastmri_head", "ssim_fastmri_head")


def fastmri_volume_scores(
    recon_SHW: torch.Tensor, target_SHW: torch.Tensor, region_SHW: torch.Tensor | None = None
) -> dict[str, float]:
    """``{psnr_fastmri, ssim_fastmri, nmse_fastmri}`` of one volume (module docstring); with ``region_SHW``
    (boolean head masks) also ``psnr_fastmri_head`` (MSE over the region's voxels) and ``ssim_fastmri_head``
    (each slice's SSIM map averaged over its region, then over slices), same data range."""
    recon, target = recon_SHW.to(torch.float64), target_SHW.to(torch.float64)
    data_range = target.max()
    squared_error = (target - recon).pow(2)
    psnr = 10 * torch.log10(data_range**2 / squared_error.mean())
    nmse = squared_error.sum() / target.pow(2).sum()
    ranges = data_range.expand(target.shape[0])
    per_slice = ssim(recon, target, ranges, window="uniform")
    scores = {"psnr_fastmri": float(psnr), "ssim_fastmri": float(per_slice.mean()), "nmse_fastmri": float(nmse)}
    if region_SHW is not None:
        head_mse = squared_error[region_SHW].mean()
        scores["psnr_fastmri_head"] = float(10 * torch.log10(data_range**2 / head_mse))
        scores["ssim_fastmri_head"] = float(ssim(recon, target, ranges, window="uniform", region_BHW=region_SHW).mean())
    return scores
