"""Base class for nested sampling patterns: exact acceleration, nested levels, private RNG.

A pattern subclass implements one method, ``_nested_selection``: given the sampling-unit counts for
each level, coarsest first, it returns the selected unit indices of each level, each a superset of the
previous one. This base class turns counts into masks, checks that every level hits its count exactly
and contains the level before it, and draws all randomness from a private ``numpy`` generator seeded
by the caller, so the global ``random``/``numpy``/``torch`` RNG states are never touched.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

import numpy as np
import torch

from benchmark.errors import InputError

#: NASP's acceleration ladder (paper §4): R = 32 is the inference input, R = 2 the finest measured level.
HIERARCHY_ACCELERATIONS: tuple[int, ...] = (32, 16, 8, 4, 2)


class MaskPattern(ABC):
    """A k-space sampling pattern that yields masks nested across accelerations."""

    #: Registry name (e.g. ``"radial"``); set by subclasses.
    name: str = ""

    @abstractmethod
    def num_units(self, shape: tuple[int, int]) -> int:
        """How many sampling units (lines for Cartesian, points for 2-D) a fully sampled mask has."""

    @abstractmethod
    def units_to_mask(self, units: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
        """Boolean ``(H, W)`` mask that samples the given unit indices."""

    @abstractmethod
    def _nested_selection(
        self, shape: tuple[int, int], counts: Sequence[int], rng: np.random.Generator
    ) -> list[np.ndarray]:
        """Selected unit indices for each count (ascending counts); each set contains the previous one."""

    def hierarchy(self, shape: tuple[int, int], accelerations: Sequence[float], seed: int) -> dict[float, torch.Tensor]:
        """Nested boolean masks ``{R: (H, W)}``; ``mask(R1) ⊆ mask(R2)`` whenever ``R1 > R2``."""
        shape = check_shape(shape)
        ordered = sorted({float(r) for r in accelerations}, reverse=True)
        total = self.num_units(shape)
        counts = [_exact_count(total, r, self.name) for r in ordered]
        rng = np.random.default_rng(np.random.PCG64(_check_seed(seed)))
        selections = self._nested_selection(shape, counts, rng)
        masks: dict[float, torch.Tensor] = {}
        previous: set[int] = set()
        for acceleration, count, units in zip(ordered, counts, selections, strict=True):
            chosen = set(units.tolist())
            # Internal invariants, checked on every call: a pattern that breaks them has a bug.
            if not len(chosen) == len(units) == count:
                raise RuntimeError(f"{self.name}: {len(chosen)} units instead of {count} for R={acceleration}")
            if not previous <= chosen:
                raise RuntimeError(f"{self.name}: level R={acceleration} does not contain the coarser level")
            previous = chosen
            key = int(acceleration) if float(acceleration).is_integer() else acceleration
            masks[key] = torch.from_numpy(self.units_to_mask(units, shape))
        return masks


class PointPattern(MaskPattern):
    """A pattern whose sampling units are individual k-space points (flat indices into ``(H, W)``)."""

    def num_units(self, shape: tuple[int, int]) -> int:
        return shape[0] * shape[1]

    def units_to_mask(self, units: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
        mask = np.zeros(shape[0] * shape[1], dtype=bool)
        mask[units] = True
        return mask.reshape(shape)


def _exact_count(total: int, acceleration: float, name: str) -> int:
    if not acceleration >= 1:
        raise InputError(f"{name}: acceleration must be >= 1, got {acceleration}")
    count = round(total / acceleration)
    if count < 1:
        raise InputError(f"{name}: R={acceleration} leaves no samples out of {total}")
    return count


def check_shape(shape: Sequence[int]) -> tuple[int, int]:
    """``shape`` as two ints, or an ``InputError`` (each side needs two k-space points at least)."""
    if len(shape) != 2 or any(int(n) != n or n < 2 for n in shape):
        raise InputError(f"mask shape must be two integers >= 2, got {tuple(shape)}")
    return int(shape[0]), int(shape[1])


def _check_seed(seed: int) -> int:
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise InputError(f"mask seed must be a non-negative integer, got {seed!r}")
    return int(seed)
