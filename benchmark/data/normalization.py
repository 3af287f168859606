"""Intensity normalisation computed from the measurements a method receives, never from the target.

``measured`` (the default): one scale per *volume* at evaluation, from that volume's R = 32
undersampled k-space as every method receives it: the ``MEASURED_PERCENTILE``-th percentile of the
magnitude of the zero-filled SENSE image ``S^H F^H M y`` over all of the volume's voxels. The k-space
and the target are both divided by it, so methods see inputs of a fixed order of magnitude and the
scale tells them nothing about the answer. In training (batches mix volumes) each slice's own R = 32
input sets its scale, and every other level and the fully sampled image of that slice share it.

A high percentile rather than the maximum, because one bright aliasing or noise voxel in the zero-filled
image should not set the scale of a whole volume.

``slice_max`` (the paper authors' pipeline) divides each slice by its fully sampled target's maximum:
it tells the method the answer's peak intensity. It stays available, explicitly, for reproducing the
authors' setting; it is applied by the reader, and every table names the choice.
"""

from __future__ import annotations

import torch

from benchmark.physics import MultiCoilOperator

#: Percentile of the zero-filled magnitude that maps to 1 under ``measured`` normalisation.
MEASURED_PERCENTILE = 99.0

NORMALIZATIONS = ("measured", "slice_max", "none")

DESCRIPTIONS = {
    "measured": f"k-space and target divided per volume by the {MEASURED_PERCENTILE:g}th percentile of the "
    "R = 32 zero-filled SENSE magnitude (measurements only)",
    "slice_max": "k-space and target divided per slice by the fully sampled target's maximum "
    "(the paper authors' pipeline; tells methods the target's peak)",
    "none": "no intensity normalisation",
}


def measured_scale(kspace_BCHW: torch.Tensor, maps_BCHW: torch.Tensor, mask_BHW: torch.Tensor) -> torch.Tensor:
    """The ``measured`` scale of each slice, ``(B,)`` float64, from its undersampled k-space alone."""
    zero_filled = MultiCoilOperator(maps_BCHW, mask_BHW).adjoint(kspace_BCHW).abs().to(torch.float64)
    scale = torch.quantile(zero_filled.flatten(1), MEASURED_PERCENTILE / 100.0, dim=1)
    return _checked(scale)


def measured_volume_scale(kspace_SCHW: torch.Tensor, maps_SCHW: torch.Tensor, mask_SHW: torch.Tensor) -> float:
    """One ``measured`` scale for a whole volume (all slices' voxels pooled)."""
    zero_filled = MultiCoilOperator(maps_SCHW, mask_SHW).adjoint(kspace_SCHW).abs().to(torch.float64)
    return float(_checked(torch.quantile(zero_filled.flatten(), MEASURED_PERCENTILE / 100.0).reshape(1))[0])


def _checked(scale: torch.Tensor) -> torch.Tensor:
    # An all-zero input (no signal under the mask) has no scale; 1 leaves it as it is rather than NaN.
    return torch.where(scale > 0, scale, torch.ones_like(scale))
