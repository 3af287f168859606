"""Head tissues around the template's brain: CSF rim, skull (inner table, diploic marrow, outer table),
muscle, scalp fat and skin, each with 3 T relaxation values (cited in ``DATASET.md``).

Written here because no library synthesises them: the MNI152 template ``nilearn`` ships is
skull-stripped, and its whole-head version must be downloaded. Geometry: a smooth hull around the
brain mask (Gaussian-blurred mask, thresholded) and the outward distance from it in millimetres are
computed once in template space and warped with every other template volume; each virtual subject
then places the layer boundaries at its own thicknesses, which vary smoothly over the head (seeded),
with a temporalis-like thickening of the muscle layer at the sides. Boundaries are partial-volumed
over one millimetre, so tissue fractions sum to one inside the head.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.ndimage import binary_fill_holes, distance_transform_edt, gaussian_filter

from benchmark.data.exact import apply_matrix, unit
from benchmark.data.tissues import HEAD_TISSUES

#: Inside-out layers outside the brain hull: (tissue, mean thickness in mm).
LAYERS: tuple[tuple[str, float], ...] = (
    ("csf", 2.0),  # subarachnoid CSF rim
    ("bone", 2.0),  # inner table (cortical bone)
    ("marrow", 3.0),  # diploë: fatty marrow between the tables
    ("bone", 2.2),  # outer table
    ("muscle", 1.5),  # galea / pericranial muscle; thickened laterally (temporalis)
    ("fat", 4.5),  # subcutaneous scalp fat
    ("skin", 2.2),
)
#: Extra muscle thickness (mm) at the sides of the head, where the temporalis lies.
TEMPORALIS_MM = 7.0
#: Relative thickness variation across the head and between subjects (bone less: a table thinner than
#: about 1.5 mm would vanish into its neighbours at 1 mm pixels).
THICKNESS_VARIATION = {"bone": 0.15}
DEFAULT_VARIATION = 0.25
#: Blur (mm) and threshold that turn the folded brain mask into a smooth, skull-like hull.
HULL_SIGMA_MM, HULL_LEVEL = 3.0, 0.3
#: Distance (mm) given to points outside the template's grid: air.
OUTSIDE_MM = 1000.0


def hull_volumes(brain_XYZ: np.ndarray) -> dict[str, np.ndarray]:
    """``hull`` (0/1) and ``distance_mm`` (0 inside the hull) of a 1 mm brain mask, in its space."""
    hull = gaussian_filter(brain_XYZ.astype(np.float64), HULL_SIGMA_MM) > HULL_LEVEL
    # Fill holes within each axial plane: cavities the blurred mask leaves near the skull base would
    # otherwise grow skull and scalp layers inside the head.
    in_plane = np.zeros((3, 3, 3), dtype=bool)
    in_plane[:, :, 1] = [[False, True, False], [True, True, True], [False, True, False]]
    hull = binary_fill_holes(hull, structure=in_plane)
    return {"hull": hull.astype(np.float64), "distance_mm": distance_transform_edt(~hull)}


def smooth_field(rng: np.random.Generator, points_mm: np.ndarray, waves: int = 3, wavelength=(60, 160)) -> np.ndarray:
    """A seeded smooth field in [-1, 1] at ``points_mm`` ``(3, ...)``: a normalised sum of plane waves."""
    field = np.zeros(points_mm.shape[1:])
    for _ in range(waves):
        direction = unit(rng.normal(size=3))
        wavenumber = 2 * math.pi / rng.uniform(*wavelength) * direction
        field += np.sin(apply_matrix(wavenumber[None], points_mm)[0] + rng.uniform(0, 2 * math.pi))
    return field / waves


def head_fractions(slices: dict[str, np.ndarray], points_mm: np.ndarray, rng: np.random.Generator) -> dict:
    """Fractions ``(S, H, W)`` of every head tissue outside the brain, for one virtual subject.

    ``slices`` holds the warped ``hull`` and ``distance_mm``; ``points_mm`` ``(3, S, H, W)`` are the pixel
    positions (x left-right, y anterior-posterior, z slice level, centred on the head), for the smooth
    per-subject thickness fields. Returns ``{tissue: fraction}`` with ``csf`` the rim only; the brain's
    own fractions are the template's, and the gap between brain mask and hull is handled by the caller.
    """
    distance = slices["distance_mm"].astype(np.float64)
    lateral = np.clip(np.abs(points_mm[0]) / 75.0, 0.0, 1.0) ** 4
    inside = slices["hull"].astype(np.float64)  # fraction of the pixel inside the hull (boundary 0)
    fractions = {name: np.zeros_like(distance) for name in HEAD_TISSUES}
    boundary = 0.0
    for tissue, thickness in LAYERS:
        variation = 1 + THICKNESS_VARIATION.get(tissue, DEFAULT_VARIATION) * smooth_field(rng, points_mm)
        extra = TEMPORALIS_MM * lateral if tissue == "muscle" else 0.0
        boundary = boundary + (thickness + extra) * variation
        outer = np.clip(boundary - distance + 0.5, 0.0, 1.0)  # fraction of the pixel nearer than the boundary
        fractions[tissue] += np.clip(outer - inside, 0.0, 1.0)
        inside = np.maximum(inside, outer)
    return fractions
