"""Equispaced Cartesian line masks with a fully sampled centre that counts toward R.

``cartesian_y``: the sampled lines run along y (whole columns of the ``(H, W)`` k-space are kept), so
undersampling is along the width axis, fastMRI's phase-encoding axis: the paper's "standard" setting.
``cartesian_x``: the orientation-swapped variant (whole rows kept).

Per level with ``n = round(N / R)`` lines: a centred block of ``round(0.32 n)`` lines (fastMRI pairs
centre fraction 0.08 with R=4 and 0.04 with R=8, i.e. 0.32 / R of the lines: about a third of the
samples) plus outer lines on an equispaced lattice of spacing ``N / (n - centre)`` whose phase is drawn
from the seed and shared by all levels, so the lattice of R/2 contains the lattice of R. Lines a
coarser level already holds are kept; when the lattice collides with them, the remaining lines go to the
widest gaps, which keeps the count exact (the fastMRI#54 failure: an "equispaced" mask off its R).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from benchmark.masks.base import MaskProtocol

#: Share of each level's lines placed in the contiguous k-space centre (0.32 / R of all lines).
CENTRE_SHARE = 0.32


class _EquispacedLines(MaskProtocol):
    #: Array axis whose index selects a line (1: columns, 0: rows).
    line_axis: int = 1

    def num_units(self, shape: tuple[int, int]) -> int:
        return shape[self.line_axis]

    def units_to_mask(self, units: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
        mask = np.zeros(shape, dtype=bool)
        if self.line_axis == 1:
            mask[:, units] = True
        else:
            mask[units, :] = True
        return mask

    def _nested_selection(
        self, shape: tuple[int, int], counts: Sequence[int], rng: np.random.Generator
    ) -> list[np.ndarray]:
        num_lines = self.num_units(shape)
        coarsest_outer = max(counts[0] - _centre_size(counts[0]), 1)
        # One lattice phase for every level: the R/2 lattice then contains the R lattice.
        phase = rng.random() * num_lines / coarsest_outer
        selected: list[int] = []
        levels = []
        for count in counts:
            centre = _centred_block(num_lines, _centre_size(count))
            _extend(selected, centre, count)
            outer = count - len(centre)
            if outer > 0:
                lattice = np.floor(phase + np.arange(outer) * num_lines / outer).astype(int) % num_lines
                _extend(selected, _widest_gaps_first(lattice, selected), count)
            while len(selected) < count:
                free = np.setdiff1d(np.arange(num_lines), selected)
                selected.append(int(_widest_gaps_first(free, selected)[0]))
            levels.append(np.array(selected, dtype=np.int64))
        return levels


class CartesianY(_EquispacedLines):
    """Equispaced whole columns (lines along y): undersampling along the width / phase-encode axis."""

    name = "cartesian_y"
    line_axis = 1


class CartesianX(_EquispacedLines):
    """Equispaced whole rows (lines along x): the orientation-swapped Cartesian variant."""

    name = "cartesian_x"
    line_axis = 0


def _centre_size(count: int) -> int:
    return max(1, round(CENTRE_SHARE * count))


def _centred_block(num_lines: int, size: int) -> np.ndarray:
    """Indices of a contiguous block around the DC line ``N // 2``, nearest the centre first."""
    start = num_lines // 2 - size // 2
    block = np.arange(start, start + size)
    return block[np.argsort(np.abs(block - num_lines // 2), kind="stable")]


def _extend(selected: list[int], candidates: np.ndarray, count: int) -> None:
    """Append candidates not yet selected, in order, until ``count`` lines are selected."""
    chosen = set(selected)
    for line in candidates.tolist():
        if len(selected) >= count:
            return
        if line not in chosen:
            selected.append(line)
            chosen.add(line)


def _widest_gaps_first(candidates: np.ndarray, selected: list[int]) -> np.ndarray:
    """Unselected candidates ordered by distance to the nearest selected line, farthest first."""
    candidates = np.setdiff1d(candidates, selected)
    if not selected:
        return candidates
    taken = np.sort(np.asarray(selected))
    pos = np.searchsorted(taken, candidates)
    left = np.abs(candidates - taken[np.clip(pos - 1, 0, len(taken) - 1)])
    right = np.abs(taken[np.clip(pos, 0, len(taken) - 1)] - candidates)
    distance = np.minimum(left, right)
    return candidates[np.argsort(-distance, kind="stable")]
