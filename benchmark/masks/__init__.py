"""The four sampling patterns of the paper, nested across the NASP acceleration ladder.

``make_mask(pattern, shape, acceleration, seed)`` returns one boolean ``(H, W)`` mask;
``make_mask_hierarchy(pattern, shape, seed)`` returns ``{32, 16, 8, 4, 2} -> mask`` with
``mask(32) ⊂ mask(16) ⊂ … ⊂ mask(2)``. ``make_mask(p, s, R, seed)`` equals the hierarchy's level ``R``
for every R on the ladder, so NASP and every baseline see the same R=32 mask for a slice.
``mask_seed(file_name, slice_index)`` derives the seed from the data, so masks never depend on run order.
"""

from __future__ import annotations

import difflib
from pathlib import Path

import torch

from benchmark.errors import InputError
from benchmark.masks.base import HIERARCHY_ACCELERATIONS, MaskPattern, check_shape
from benchmark.masks.cartesian import CartesianX, CartesianY
from benchmark.masks.gaussian import Gaussian2D
from benchmark.masks.radial import Radial
from benchmark.seeds import derive_seed

PATTERNS: dict[str, type[MaskPattern]] = {cls.name: cls for cls in (CartesianX, CartesianY, Gaussian2D, Radial)}
#: The pattern names, in the order every default (training, configs) lists them.
PATTERN_NAMES: tuple[str, ...] = tuple(PATTERNS)

__all__ = [
    "HIERARCHY_ACCELERATIONS",
    "PATTERNS",
    "MaskPattern",
    "get_pattern",
    "make_mask",
    "make_mask_hierarchy",
    "mask_seed",
]


def get_pattern(name: str) -> MaskPattern:
    """The pattern object registered as ``name``; an unknown name lists the known ones."""
    if name not in PATTERNS:
        close = difflib.get_close_matches(name, PATTERNS, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise InputError(f"unknown mask pattern {name!r}{hint}; known: {', '.join(PATTERNS)}")
    return PATTERNS[name]()


def make_mask(pattern: str, shape: tuple[int, int], acceleration: int, seed: int) -> torch.Tensor:
    """Boolean ``(H, W)`` mask sampling exactly ``round(N / acceleration)`` lines or points.

    The mask is the ``acceleration`` level of the nested chain ``(ladder levels coarser than R) + R``,
    so on the ladder it is identical to ``make_mask_hierarchy(...)[acceleration]``. Ladder levels that
    would sample nothing at this size (R = 32 of 10 lines) are left out of the chain, so they do not
    refuse a finer R that has samples.
    """
    chosen = get_pattern(pattern)
    total = chosen.num_units(check_shape(shape))
    coarser = [r for r in HIERARCHY_ACCELERATIONS if r > acceleration and round(total / r) >= 1]
    return chosen.hierarchy(shape, [*coarser, acceleration], seed)[acceleration]


def make_mask_hierarchy(pattern: str, shape: tuple[int, int], seed: int) -> dict[int, torch.Tensor]:
    """Nested masks ``{32: m32, 16: m16, 8: m8, 4: m4, 2: m2}`` with ``m32 ⊂ m16 ⊂ … ⊂ m2``."""
    return get_pattern(pattern).hierarchy(shape, HIERARCHY_ACCELERATIONS, seed)


def mask_seed(file_name: str | Path, slice_index: int) -> int:
    """Seed derived from a data file's base name and slice index (independent of its directory)."""
    return derive_seed(Path(file_name).name, int(slice_index))
