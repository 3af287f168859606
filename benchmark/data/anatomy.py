"""Virtual whole-head subjects and MR contrasts from the MNI152 2009a template that ``nilearn`` ships.

What is real: the brain. ``nilearn`` ships the ICBM 2009a nonlinear symmetric T1 template (1 mm,
skull-stripped) with grey- and white-matter probability maps; CSF is the brain mask minus both.

What is simulated (written here; no library does it):
- the head around the brain: CSF rim, skull with diploic marrow, muscle, scalp fat and skin
  (``benchmark.data.head``);
- subjects: each is the template under a seeded smooth deformation (anisotropic scaling, rotation,
  translation and a sum of low-frequency sinusoidal displacements of a few millimetres), with its own
  head-layer thicknesses and a smooth B1-like intensity variation across the head;
- contrasts: T1 inside the brain is the template's own intensity; T2, FLAIR and every head tissue
  come from spin-echo and inversion-recovery signal equations with literature 3 T relaxation values
  (``benchmark.data.tissues``). Brain tissues keep the template's residual texture (the T1 template
  divided by its best tissue-fraction fit); head tissues get a seeded fine-grained texture.

All arithmetic is float64 with one rounding at the end, so the bytes do not depend on the CPU's
vector units as far as numpy allows.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from scipy.ndimage import gaussian_filter, map_coordinates

from benchmark.data.exact import apply_matrix, least_squares, matmul, unit
from benchmark.data.head import OUTSIDE_MM, head_fractions, hull_volumes, smooth_field
from benchmark.data.tissues import BRAIN_TISSUES, HEAD_TISSUES, signal

CONTRASTS = ("T1", "T2", "FLAIR")
#: Axial range (template voxel index, 1 mm) the slices span: temporal lobes to the centrum semiovale.
SLICE_RANGE = (45, 120)
#: Amplitude of the smooth B1-like intensity variation across the head (relative).
B1_VARIATION = 0.12
#: Amplitude of the fine-grained texture of head tissues (relative).
HEAD_TEXTURE = 0.06


@lru_cache(maxsize=1)
def load_template() -> dict[str, np.ndarray]:
    """Template volumes ``(X, Y, Z)`` at 1 mm: ``t1`` intensity, ``gm``/``wm``/``csf`` fractions, the
    ``brain`` mask, and the head ``hull`` with the outward ``distance_mm`` from it."""
    from nilearn import datasets  # imported on first use: nilearn is slow to import

    t1 = datasets.load_mni152_template(resolution=1).get_fdata(dtype=np.float64)
    gm = datasets.load_mni152_gm_template(resolution=1).get_fdata(dtype=np.float64)
    wm = datasets.load_mni152_wm_template(resolution=1).get_fdata(dtype=np.float64)
    brain = datasets.load_mni152_brain_mask(resolution=1).get_fdata(dtype=np.float64)
    csf = np.clip(brain - gm - wm, 0.0, 1.0)
    return {"t1": t1, "gm": gm, "wm": wm, "csf": csf, "brain": brain, **hull_volumes(brain)}


def slice_levels(num_slices: int, position: int = 0, count: int = 1) -> np.ndarray:
    """Template levels (mm) of a subject's slices before its random offset.

    Several slices span ``SLICE_RANGE`` evenly. A subject with one slice takes the middle of its own stratum:
    subject ``position`` of ``count`` in its split gets ``lo + (position + 1/2) / count * (hi - lo)``, so a split
    of one-slice subjects still covers the whole range.
    """
    low, high = SLICE_RANGE
    if num_slices > 1:
        return np.linspace(low, high, num_slices)
    return np.array([low + (position + 0.5) / count * (high - low)])


def deformed_slices(
    rng: np.random.Generator,
    num_slices: int,
    shape: tuple[int, int],
    pixel_mm: float = 1.0,
    levels_mm: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """One virtual subject: axial slices ``(S, H, W)`` of every template volume after a smooth warp,
    plus ``points_mm`` ``(3, S, H, W)``: each pixel's position (x, y, z) in millimetres from the head centre.

    Rows run anterior (top) to posterior, columns left to right, ``pixel_mm`` pixels on a ``shape`` grid
    centred on the template. ``levels_mm``: the slices' template levels before the subject's offset
    (default ``slice_levels(num_slices)``).
    """
    template = load_template()
    dims = np.array(template["t1"].shape, dtype=float)
    centre = (dims - 1) / 2
    linear = _random_linear_map(rng)
    waves = _random_displacement_waves(rng)
    offset = rng.uniform(-4, 4)
    z_levels = (slice_levels(num_slices) if levels_mm is None else levels_mm) + offset
    rows, cols = np.meshgrid(np.arange(shape[0]), np.arange(shape[1]), indexing="ij")
    x = (cols - (shape[1] - 1) / 2) * pixel_mm + centre[0]
    y = ((shape[0] - 1) / 2 - rows) * pixel_mm + centre[1]
    points = np.stack([np.stack([x, y, np.full_like(x, z, dtype=float)]) for z in z_levels], axis=1)
    flat = points.reshape(3, -1)
    warped = centre[:, None] + apply_matrix(linear, flat - centre[:, None]) + _displacement(waves, flat)
    out = {}
    for name, volume in template.items():
        outside = OUTSIDE_MM if name == "distance_mm" else 0.0
        sampled = map_coordinates(volume, warped, order=1, mode="constant", cval=outside)
        out[name] = sampled.reshape(num_slices, *shape)
    out["points_mm"] = points - centre[:, None, None, None]
    return out


def subject_tissues(slices: dict[str, np.ndarray], rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Every tissue's fraction ``(S, H, W)`` for one subject, plus its ``texture`` and ``b1`` fields."""
    points = slices["points_mm"]
    head = head_fractions(slices, points, rng)
    # Inside the hull but outside the brain mask (the sulcal surface): CSF.
    gap = np.clip(slices["hull"] - slices["brain"], 0.0, 1.0)
    tissues = {name: slices[name] for name in BRAIN_TISSUES} | {name: head[name] for name in HEAD_TISSUES}
    tissues["csf"] = slices["csf"] + gap + head["csf"]
    tissues["texture"] = _head_texture(rng, slices["t1"].shape)
    tissues["b1"] = 1 + B1_VARIATION * smooth_field(rng, points, waves=2, wavelength=(250, 400))
    return tissues


def synthesize_contrast(slices: dict[str, np.ndarray], tissues: dict[str, np.ndarray], contrast: str) -> np.ndarray:
    """Magnitude images ``(S, H, W)`` float64 for ``contrast`` (arbitrary units, >= 0)."""
    if contrast not in CONTRASTS:
        raise ValueError(f"unknown contrast {contrast!r}; known: {', '.join(CONTRASTS)}")
    weights = _fraction_fit()
    # Scale the equations so that white matter has the template's T1 intensity in every contrast.
    unit = weights["wm"] / signal(contrast, "wm")
    if contrast == "T1":
        brain = slices["t1"] + (tissues["csf"] - slices["csf"]) * weights["csf"]
    else:
        brain = sum(tissues[name] * signal(contrast, name) for name in BRAIN_TISSUES) * unit * _brain_texture(slices)
    extra = sum(tissues[name] * signal(contrast, name) for name in HEAD_TISSUES if name != "csf")
    return (brain + extra * unit * tissues["texture"]) * tissues["b1"]


def _brain_texture(slices: dict[str, np.ndarray]) -> np.ndarray:
    """The T1 template's residual over its tissue-fraction fit, clipped to [0.75, 1.33]."""
    weights = _fraction_fit()
    fitted = sum(slices[name] * weights[name] for name in BRAIN_TISSUES)
    ratio = np.divide(slices["t1"], fitted, out=np.ones_like(fitted), where=fitted > 0.05)
    return np.clip(ratio, 0.75, 1.33)


def _head_texture(rng: np.random.Generator, shape: tuple[int, int, int]) -> np.ndarray:
    """Fine-grained multiplicative texture for head tissues: white noise blurred over ~1.5 pixels."""
    noise = gaussian_filter(rng.normal(size=shape), sigma=(0, 1.5, 1.5))
    return 1 + HEAD_TEXTURE * noise / max(noise.std(), 1e-12)


@lru_cache(maxsize=1)
def _fraction_fit() -> dict[str, float]:
    """Least-squares weights with t1 ≈ w_gm gm + w_wm wm + w_csf csf inside the brain."""
    template = load_template()
    inside = (template["gm"] + template["wm"] + template["csf"]) > 0.5
    design = np.stack([template[name][inside] for name in BRAIN_TISSUES], axis=1)
    solution = least_squares(design, template["t1"][inside])
    return dict(zip(BRAIN_TISSUES, solution.tolist(), strict=True))


def _random_linear_map(rng: np.random.Generator) -> np.ndarray:
    """Anisotropic scaling (±6 %) composed with rotations (±6° in-plane, ±3° tilt)."""
    scale = np.diag(1 + rng.uniform(-0.06, 0.06, size=3))
    yaw, pitch = np.deg2rad(rng.uniform(-6, 6)), np.deg2rad(rng.uniform(-3, 3))
    in_plane = np.array([[math.cos(yaw), -math.sin(yaw), 0], [math.sin(yaw), math.cos(yaw), 0], [0, 0, 1]])
    tilt = np.array([[1, 0, 0], [0, math.cos(pitch), -math.sin(pitch)], [0, math.sin(pitch), math.cos(pitch)]])
    return matmul(matmul(in_plane, tilt), scale)


def _random_displacement_waves(rng: np.random.Generator, count: int = 4) -> list[tuple]:
    """Parameters of ``count`` plane-wave displacements (wavelength 40-90 mm, amplitude <= 2.5 mm)."""
    waves = []
    for _ in range(count):
        direction = unit(rng.normal(size=3))
        wavenumber = 2 * math.pi / rng.uniform(40, 90) * direction
        amplitude = rng.uniform(-2.5, 2.5, size=3)
        waves.append((wavenumber, amplitude, rng.uniform(0, 2 * math.pi)))
    return waves


def _displacement(waves: list[tuple], points_3n: np.ndarray) -> np.ndarray:
    displacement = np.zeros_like(points_3n)
    for wavenumber, amplitude, phase in waves:
        displacement += amplitude[:, None] * np.sin(apply_matrix(wavenumber[None], points_3n)[0] + phase)[None, :]
    return displacement
