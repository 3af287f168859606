"""NASP's six acquisition levels: R = 32, 16, 8, 4, 2 from the nested mask hierarchy, and the fully
sampled (FS) image; their labels; and the complex image <-> VAR's 3-channel layout.

Every level image is the coil-combined adjoint ``S^H F^H M_R y`` of the same fully sampled k-space
under the nested masks (``benchmark.masks.make_mask_hierarchy``), so the R = 2 input holds every sample
of the R = 32 input. Physics comes from ``benchmark.physics``.
"""

from __future__ import annotations

import torch

from benchmark.physics import MultiCoilOperator

#: Acceleration of each level, coarsest first; 1 is the fully sampled image (FS).
LEVELS = (32, 16, 8, 4, 2, 1)


def level_images(kspace_BCHW: torch.Tensor, maps_BCHW: torch.Tensor, hierarchy: dict[int, torch.Tensor]):
    """Complex images ``(B, H, W)`` for every level in ``LEVELS`` order from fully sampled k-space."""
    images = [MultiCoilOperator(maps_BCHW, hierarchy[r]).adjoint(kspace_BCHW) for r in LEVELS[:-1]]
    return [*images, MultiCoilOperator(maps_BCHW).adjoint(kspace_BCHW)]


def label_index(level: int, pattern_index: torch.Tensor, num_patterns: int) -> torch.Tensor:
    """Label of (level, pattern) for the FiLM embedding; FS has one label whatever the pattern."""
    if LEVELS[level] == 1:
        return torch.full_like(pattern_index, (len(LEVELS) - 1) * num_patterns)
    return level * num_patterns + pattern_index


def to_channels(image_BHW: torch.Tensor) -> torch.Tensor:
    """Complex ``(B, H, W)`` -> ``(B, 3, H, W)``: real, imaginary and a zero channel (VAR's 3 inputs)."""
    real = torch.view_as_real(image_BHW.to(torch.complex64)).permute(0, 3, 1, 2)
    return torch.cat([real, torch.zeros_like(real[:, :1])], dim=1)


def from_channels(image_B3HW: torch.Tensor) -> torch.Tensor:
    """VAR decoder output ``(B, 3, H, W)`` -> complex ``(B, H, W)`` from the first two channels."""
    return torch.complex(image_B3HW[:, 0].float(), image_B3HW[:, 1].float())
