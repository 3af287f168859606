"""Equispaced Cartesian line masks with a fully sampled centre that counts toward R.

``cartesian_y``: the sampled lines run along y (whole columns of the ``(H, W)`` k-space are kept), so
undersampling is along the width axis, fastMRI's phase-encoding axis: the paper's "standard" setting.
``cartesian_x``: the orientation-swapped variant (whole rows kept).

Per level with ``n = round(N / R)`` lines: a centred block of ``c = max(1, round(0.32 n))`` lines (fastMRI
pairs centre fraction 0.08 with R=4 and 0.04 with R=8, i.e. 0.32 / R of the lines: about a third of the
samples) plus ``n - c`` outer lines spaced about ``(N - c) / (n - c)`` apart. Spacing is measured on the
"outer circle": the ``N - c`` lines outside the block, read from the block's upper edge around the k-space
edge (line indices are periodic) back to its lower edge, so the block and the k-space edge are ordinary
points on it and no hole opens there.

Levels are built coarsest first, each from the one before, so they nest and hit their counts exactly:

* The coarsest level lays ``n - c`` lines on an exact lattice of that spacing; its offset from the block
  is the only random draw (from the caller's seeded generator).
* A finer level keeps the coarser lines, grows the block (which may swallow the outer lines nearest it),
  and fills each gap between consecutive kept outer lines with evenly spaced new lines. The number of
  new lines per gap is apportioned by the largest-quotient (D'Hondt) rule: each next line goes to the gap
  whose pieces are currently the longest. With about twice the lines per level, every coarse gap is split
  about in half, so each level looks equispaced rather than only the coarsest. For N = 256 and 320 every
  ladder level keeps its outer gaps within 0.5..1.5 of its spacing; a line count that leaves a level fewer
  new lines than coarse gaps (e.g. N = 218 at R = 8) must leave some coarse gaps whole.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from benchmark.masks.base import MaskPattern

#: Share of each level's lines placed in the contiguous k-space centre (0.32 / R of all lines).
CENTRE_SHARE = 0.32


class _EquispacedLines(MaskPattern):
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
        # Offset of the first outer line from the block, as a fraction of the first lattice spacing.
        offset_fraction = rng.random()
        selected = np.empty(0, dtype=np.int64)
        levels = []
        for count in counts:
            block = _centred_block(num_lines, _centre_size(count))
            # Outer-circle position of line i: steps from the block's upper edge, wrapping at the k-space edge.
            circle_length = num_lines - len(block)
            to_circle = (np.arange(num_lines) - (block[-1] + 1)) % num_lines
            kept = np.sort(to_circle[np.setdiff1d(selected, block)])
            outer = _fill_outer_circle(kept, circle_length, count - len(block), offset_fraction)
            selected = np.sort(np.concatenate([block, (outer + block[-1] + 1) % num_lines]))
            levels.append(selected)
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
    """Ascending indices of a contiguous block of ``size`` lines around the DC line ``N // 2``.

    A larger block always contains a smaller one, so growing the block keeps levels nested.
    """
    start = num_lines // 2 - size // 2
    return np.arange(start, start + size)


def _fill_outer_circle(kept: np.ndarray, circle_length: int, total: int, offset_fraction: float) -> np.ndarray:
    """``total`` positions on a circle of ``circle_length`` slots: ``kept`` plus new ones in its widest gaps.

    ``kept`` (sorted, distinct) are the coarser level's lines. With none kept, the first line goes at
    ``offset_fraction`` of the lattice spacing and the rest split the one remaining gap evenly: a lattice.
    """
    if total <= 0:
        return np.empty(0, dtype=np.int64)
    if len(kept) == 0:
        kept = np.array([int(offset_fraction * circle_length / total)])
    # Gap g runs from kept[g] to the next kept position, the last one around the circle to kept[0].
    gaps = np.diff(kept, append=kept[0] + circle_length)
    # D'Hondt apportionment: the k-th new line of gap g (k < gaps[g], so pieces keep one slot at least) bids
    # gaps[g] / k, the length of the pieces it cuts; the highest bids win. Bids fall with k, so each gap
    # wins its first lines, and the longest pieces left are as short as the count allows.
    bid_gap = np.repeat(np.arange(len(gaps)), gaps - 1)
    nth_line = np.arange(len(bid_gap)) - np.repeat(np.cumsum(gaps - 1) - (gaps - 1), gaps - 1) + 1
    winners = np.argsort(-gaps[bid_gap] / nth_line, kind="stable")[: total - len(kept)]
    new_per_gap = np.bincount(bid_gap[winners], minlength=len(gaps))
    # New line j of k in a gap of length D sits at floor(j * D / (k + 1) + 1/2) past its start, in integers.
    gap_of_new = np.repeat(np.arange(len(gaps)), new_per_gap)
    j = np.arange(len(gap_of_new)) - np.repeat(np.cumsum(new_per_gap) - new_per_gap, new_per_gap) + 1
    length, k = gaps[gap_of_new], new_per_gap[gap_of_new]
    new = kept[gap_of_new] + (2 * j * length + k + 1) // (2 * (k + 1))
    return np.concatenate([kept, new % circle_length])
