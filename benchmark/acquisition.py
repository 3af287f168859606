"""The one acquisition path: from fully sampled slices to what a method receives, for evaluation and training alike.

Mask -> measure -> normalise is the step that decides what a method may see, so it is written once, here, and the
runner, the trainer (training and validation batches), ``perf`` and the NASP oracle all call it (fastMRI's
``VarNetDataTransform`` plays this part for its training and inference alike). A method gets the undersampled
k-space, the mask and the maps, divided by a scale computed from those measurements alone; the target and the fully
sampled k-space a trainer compares with are divided by the same scale through ``Acquisition.normalised`` and never
enter the batch.

The scale policy is an explicit argument (``SCALE_POLICIES``): ``volume`` pools every slice of one volume
(evaluation: a volume is scored as one image stack), ``slice`` gives each slice its own (training batches mix
volumes), ``none`` leaves intensities as read (the ``slice_max`` and ``none`` normalisations, applied by the
reader or not at all). The masks of a test volume are seeded by (file name, slice position), so every method and
every tool sees the same mask for the same slice.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from benchmark.data.normalization import measured_scale, measured_volume_scale
from benchmark.masks import make_mask, mask_seed
from benchmark.method import ReconBatch

SCALE_POLICIES = ("volume", "slice", "none")


@dataclass
class Acquisition:
    """A batch as a method receives it, and the scale its measurements were divided by."""

    batch: ReconBatch
    scale: torch.Tensor  # (B,) float64; 1 where nothing was divided

    def normalised(self, tensor: torch.Tensor) -> torch.Tensor:
        """``tensor`` (a target or the fully sampled k-space, leading batch axis) divided like the batch."""
        return _divided(tensor, self.scale)


def scale_policy(normalization: str, per: str) -> str:
    """The scale policy of a normalisation: ``per`` (``volume`` or ``slice``) under ``measured``, else ``none``."""
    return per if normalization == "measured" else "none"


def acquire(
    kspace: torch.Tensor,
    maps: torch.Tensor,
    mask: torch.Tensor,
    pattern: str,
    acceleration: int,
    policy: str,
    seed: int = 0,
) -> Acquisition:
    """Undersample fully sampled ``kspace`` ``(B, C, H, W)`` with ``mask`` ``(B, H, W)`` and normalise it by
    ``policy`` (``SCALE_POLICIES``), from the measurements only; ``seed`` seeds the method's own draws."""
    measured = kspace * mask[:, None]
    scale = _measured_scale(measured, maps, mask, policy)
    return Acquisition(ReconBatch(_divided(measured, scale), mask, maps, pattern, acceleration, seed), scale)


def _measured_scale(measured: torch.Tensor, maps: torch.Tensor, mask: torch.Tensor, policy: str) -> torch.Tensor:
    if policy == "volume":
        return torch.full((len(mask),), measured_volume_scale(measured, maps, mask), dtype=torch.float64)
    if policy == "slice":
        return measured_scale(measured, maps, mask)
    if policy == "none":
        return torch.ones(len(mask), dtype=torch.float64)
    raise ValueError(f"unknown scale policy {policy!r}; choose from {SCALE_POLICIES}")


def _divided(tensor: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    # Divided in float32, as the data are stored: the same bits as dividing by the scale as a Python float.
    return tensor / scale.to(torch.float32).reshape(-1, *[1] * (tensor.dim() - 1))


def volume_masks(
    pattern: str, file_name: str, num_slices: int, shape: tuple[int, int], acceleration: int
) -> torch.Tensor:
    """The mask of every slice of a volume, ``(S, H, W)``, seeded by (file name, slice): the same for everyone."""
    return torch.stack([make_mask(pattern, shape, acceleration, mask_seed(file_name, s)) for s in range(num_slices)])
