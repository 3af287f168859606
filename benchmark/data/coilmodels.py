"""Simulated receive-coil sensitivities for the embedded heads, in float64 numpy (no BLAS: the same bytes on every CPU).

Three models, all normalised so that sum_c |S_c|^2 = 1 at every pixel, each coil given a random constant phase:

- ``birdcage``: ``sigpy.mri.birdcage_maps`` (the realistic heads' model) with a relative coil radius.
- ``loops``: ``count`` circular surface loops on an ellipse around the field of view, evenly spaced over the
  whole circumference (a head array). A loop of radius ``a`` seen in its own transverse plane at distance ``d``
  has the on-axis Biot-Savart magnitude a^2 / (a^2 + d^2)^(3/2); its phase turns with the angle around the loop's
  centre, as a loop's field does. Written here: sigpy models only the birdcage.
- ``posterior``: the same loops over the posterior half only (a head-neck array lying under the head), which no
  training style draws: the shifted test heads use it.
"""

from __future__ import annotations

import math

import numpy as np
import sigpy.mri

COIL_MODELS = ("birdcage", "loops", "posterior")


def coil_maps(rng: np.random.Generator, model: str, count: int, shape: tuple[int, int], radius: float) -> np.ndarray:
    """Maps ``(count, H, W)`` complex128 of ``model`` (``radius``: relative to half the field of view)."""
    if model == "birdcage":
        maps = sigpy.mri.birdcage_maps((count, *shape), r=radius, nzz=count, dtype=np.complex128)
    elif model in ("loops", "posterior"):
        # Rows run anterior (y = -1) to posterior (y = +1): the posterior half is where sin(angle) > 0.
        arc = (0.0, 2 * math.pi) if model == "loops" else (0.0, math.pi)
        maps = _loop_maps(rng, count, shape, radius, arc)
    else:
        raise ValueError(f"unknown coil model {model!r}; known: {', '.join(COIL_MODELS)}")
    maps = maps / np.sqrt((maps.real**2 + maps.imag**2).sum(axis=0))
    return maps * np.exp(1j * rng.uniform(0, 2 * math.pi, count))[:, None, None]


def _loop_maps(
    rng: np.random.Generator, count: int, shape: tuple[int, int], radius: float, arc: tuple[float, float]
) -> np.ndarray:
    """Surface loops evenly spaced over ``arc`` (angles measured from the +x axis, y pointing down the rows)."""
    height, width = shape
    y, x = np.meshgrid(np.linspace(-1, 1, height), np.linspace(-1, 1, width), indexing="ij")
    start, stop = arc
    full = math.isclose(stop - start, 2 * math.pi)
    angles = start + (stop - start) * (np.arange(count) + (0.0 if full else 0.5)) / count
    angles = angles + rng.uniform(-0.5, 0.5, count) * (stop - start) / count  # placement jitter
    loop_radius = rng.uniform(0.25, 0.45)  # relative to half the field of view
    maps = np.empty((count, height, width), dtype=np.complex128)
    for index, angle in enumerate(angles):
        centre_x, centre_y = radius * math.cos(angle), radius * math.sin(angle)
        distance = np.hypot(x - centre_x, y - centre_y)
        magnitude = loop_radius**2 / (loop_radius**2 + distance**2) ** 1.5
        maps[index] = magnitude * np.exp(1j * np.arctan2(y - centre_y, x - centre_x))
    return maps
