"""Radial spokes through the k-space centre on the Cartesian grid, topped up to hit R exactly (paper §10).

Spokes are full diameters at golden-angle increments (180° / golden ratio) from a seeded start angle, so
any prefix of spokes covers angles evenly and coarser levels are prefixes of finer ones. A level adds
spokes while their rasterised points still fit in its budget ``round(H W / R)``; the remaining points
(fewer than one spoke's worth) are drawn uniformly at random from the unsampled grid, as the paper does
"to match the target 32x acceleration precisely".
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from benchmark.masks.base import PointPattern

GOLDEN_ANGLE = math.pi / ((1 + math.sqrt(5)) / 2)


class Radial(PointPattern):
    """Golden-angle radial spokes rasterised on the Cartesian grid plus a random top-up."""

    name = "radial"

    def _nested_selection(
        self, shape: tuple[int, int], counts: Sequence[int], rng: np.random.Generator
    ) -> list[np.ndarray]:
        start_angle = rng.random() * math.pi
        # More spokes than the grid has boundary points can add nothing new; stop there.
        max_spokes = 4 * (shape[0] + shape[1])
        sampled = np.zeros(shape[0] * shape[1], dtype=bool)
        order: list[np.ndarray] = []  # newly sampled point indices, in the order they were added
        spoke = 0
        levels = []
        for count in counts:
            taken = int(sampled.sum())
            while spoke < max_spokes:
                points = _spoke_points(shape, start_angle + spoke * GOLDEN_ANGLE)
                new = np.unique(points[~sampled[points]])
                if taken + new.size > count:
                    break
                sampled[new] = True
                order.append(new)
                taken += new.size
                spoke += 1
            top_up = rng.choice(np.flatnonzero(~sampled), size=count - taken, replace=False)
            sampled[top_up] = True
            order.append(np.sort(top_up))
            levels.append(np.concatenate(order))
        return levels


def _spoke_points(shape: tuple[int, int], angle: float) -> np.ndarray:
    """Flat indices of the grid points on the full-diameter line through ``(H // 2, W // 2)``."""
    centre_y, centre_x = shape[0] // 2, shape[1] // 2
    half_length = math.hypot(*shape) / 2
    t = np.arange(-half_length, half_length + 0.5, 0.5)
    rows = np.rint(centre_y + t * math.sin(angle)).astype(int)
    cols = np.rint(centre_x + t * math.cos(angle)).astype(int)
    inside = (rows >= 0) & (rows < shape[0]) & (cols >= 0) & (cols < shape[1])
    return np.unique(rows[inside] * shape[1] + cols[inside])
