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
from dataclasses import dataclass
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


@dataclass(frozen=True)
class Warp:
    """How far a subject's random deformation may go: each value is drawn uniformly in [-range, range].

    ``scale`` is per axis (so it also changes the aspect), ``shift_mm`` an in-plane translation (none is drawn at
    0), the waves are ``count`` plane-wave displacement fields with wavelengths in ``wavelength_mm``. With
    ``fold_free`` the waves' amplitudes are scaled down where needed so that the sum of their largest gradients
    stays below half the linear part's smallest stretch: the warp's Jacobian is then invertible everywhere, and
    labels keep their topology (large random warps would fold otherwise).
    """

    scale: float = 0.06
    yaw_deg: float = 6.0
    tilt_deg: float = 3.0
    offset_mm: float = 4.0
    wave_mm: float = 2.5
    wavelength_mm: tuple[float, float] = (40.0, 90.0)
    shift_mm: float = 0.0
    fold_free: bool = False


#: The realistic subjects' deformation (DATASET.md).
REALISTIC_WARP = Warp()


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
    warp: Warp = REALISTIC_WARP,
) -> dict[str, np.ndarray]:
    """One virtual subject: axial slices ``(S, H, W)`` of every template volume after a smooth warp,
    plus ``points_mm`` ``(3, S, H, W)``: each pixel's position (x, y, z) in millimetres from the head centre.

    Rows run anterior (top) to posterior, columns left to right, ``pixel_mm`` pixels on a ``shape`` grid
    centred on the template. ``levels_mm``: the slices' template levels before the subject's offset
    (default ``slice_levels(num_slices)``); ``warp``: the deformation's ranges.
    """
    template = load_template()
    centre = template_centre()
    drawn = draw_warp(rng, warp)
    z_levels = (slice_levels(num_slices) if levels_mm is None else levels_mm) + drawn.offset_mm
    rows, cols = np.meshgrid(np.arange(shape[0]), np.arange(shape[1]), indexing="ij")
    x = (cols - (shape[1] - 1) / 2) * pixel_mm + centre[0]
    y = ((shape[0] - 1) / 2 - rows) * pixel_mm + centre[1]
    points = np.stack([np.stack([x, y, np.full_like(x, z, dtype=float)]) for z in z_levels], axis=1)
    warped = drawn.apply(points.reshape(3, -1), centre)
    out = {}
    for name, volume in template.items():
        outside = OUTSIDE_MM if name == "distance_mm" else 0.0
        sampled = map_coordinates(volume, warped, order=1, mode="constant", cval=outside)
        out[name] = sampled.reshape(num_slices, *shape)
    out["points_mm"] = points - centre[:, None, None, None]
    return out


@dataclass(frozen=True)
class DrawnWarp:
    """One subject's deformation: template position = centre + linear (p - centre) + waves(p) + shift."""

    linear: np.ndarray
    waves: list
    offset_mm: float
    shift_mm: np.ndarray

    def apply(self, points_3n: np.ndarray, centre: np.ndarray) -> np.ndarray:
        """Template coordinates (voxels at 1 mm) of points ``(3, N)`` given in template voxels."""
        warped = centre[:, None] + apply_matrix(self.linear, points_3n - centre[:, None])
        warped = warped + _displacement(self.waves, points_3n)
        return warped + self.shift_mm[:, None] if self.shift_mm.any() else warped


def draw_warp(rng: np.random.Generator, warp: Warp = REALISTIC_WARP) -> DrawnWarp:
    """A subject's deformation within ``warp``'s ranges (the first draws of the subject's random stream)."""
    linear, stretches = _random_linear_map(rng, warp)
    waves = _random_displacement_waves(rng, warp)
    if warp.fold_free:
        # |grad of one wave| <= |amplitude| |wavenumber|; the linear part stretches by at least min(stretches).
        steepest = math.fsum(math.sqrt(math.fsum(a * a for a in amp)) * math.sqrt(math.fsum(k * k for k in num))
                             for num, amp, _ in waves)  # fmt: skip
        limit = 0.5 * min(stretches)
        if steepest > limit:
            waves = [(num, amp * (limit / steepest), phase) for num, amp, phase in waves]
    offset = rng.uniform(-warp.offset_mm, warp.offset_mm)
    shift = np.zeros(3)
    if warp.shift_mm:
        shift[:2] = rng.uniform(-warp.shift_mm, warp.shift_mm, size=2)
    return DrawnWarp(linear, waves, offset, shift)


def template_centre() -> np.ndarray:
    """The template grid's centre (voxels)."""
    return (np.array(load_template()["t1"].shape, dtype=float) - 1) / 2


def subject_tissues(
    slices: dict[str, np.ndarray], rng: np.random.Generator, head_texture: float = HEAD_TEXTURE
) -> dict[str, np.ndarray]:
    """Every tissue's fraction ``(S, H, W)`` for one subject, plus its ``texture`` (of relative amplitude
    ``head_texture``) and ``b1`` fields."""
    points = slices["points_mm"]
    head = head_fractions(slices, points, rng)
    # Inside the hull but outside the brain mask (the sulcal surface): CSF.
    gap = np.clip(slices["hull"] - slices["brain"], 0.0, 1.0)
    tissues = {name: slices[name] for name in BRAIN_TISSUES} | {name: head[name] for name in HEAD_TISSUES}
    tissues["csf"] = slices["csf"] + gap + head["csf"]
    tissues["texture"] = _head_texture(rng, slices["t1"].shape, head_texture)
    tissues["b1"] = 1 + B1_VARIATION * smooth_field(rng, points, waves=2, wavelength=(250, 400))
    return tissues


def synthesize_contrast(
    slices: dict[str, np.ndarray], tissues: dict[str, np.ndarray], contrast: str, protocol: str = "clinical"
) -> np.ndarray:
    """Magnitude images ``(S, H, W)`` float64 for ``contrast`` under the sequence ``protocol`` (``tissues``),
    in arbitrary units, >= 0."""
    if contrast not in CONTRASTS:
        raise ValueError(f"unknown contrast {contrast!r}; known: {', '.join(CONTRASTS)}")
    weights = _fraction_fit()
    # Scale the equations so that white matter has the template's T1 intensity in every contrast.
    unit = weights["wm"] / signal(contrast, "wm", protocol)
    if contrast == "T1" and protocol == "clinical":
        brain = slices["t1"] + (tissues["csf"] - slices["csf"]) * weights["csf"]
    else:
        brain = sum(tissues[name] * signal(contrast, name, protocol) for name in BRAIN_TISSUES)
        brain = brain * unit * brain_texture(slices)
    extra = sum(tissues[name] * signal(contrast, name, protocol) for name in HEAD_TISSUES if name != "csf")
    return (brain + extra * unit * tissues["texture"]) * tissues["b1"]


def brain_texture(slices: dict[str, np.ndarray]) -> np.ndarray:
    """The T1 template's residual over its tissue-fraction fit, clipped to [0.75, 1.33]."""
    weights = _fraction_fit()
    fitted = sum(slices[name] * weights[name] for name in BRAIN_TISSUES)
    ratio = np.divide(slices["t1"], fitted, out=np.ones_like(fitted), where=fitted > 0.05)
    return np.clip(ratio, 0.75, 1.33)


def _head_texture(rng: np.random.Generator, shape: tuple[int, int, int], amplitude: float) -> np.ndarray:
    """Fine-grained multiplicative texture for head tissues: white noise blurred over ~1.5 pixels."""
    noise = gaussian_filter(rng.normal(size=shape), sigma=(0, 1.5, 1.5))
    return 1 + amplitude * noise / max(noise.std(), 1e-12)


@lru_cache(maxsize=1)
def _fraction_fit() -> dict[str, float]:
    """Least-squares weights with t1 ≈ w_gm gm + w_wm wm + w_csf csf inside the brain."""
    template = load_template()
    inside = (template["gm"] + template["wm"] + template["csf"]) > 0.5
    design = np.stack([template[name][inside] for name in BRAIN_TISSUES], axis=1)
    solution = least_squares(design, template["t1"][inside])
    return dict(zip(BRAIN_TISSUES, solution.tolist(), strict=True))


def _random_linear_map(rng: np.random.Generator, warp: Warp) -> tuple[np.ndarray, list[float]]:
    """Anisotropic scaling (±``scale``) composed with rotations (±``yaw_deg`` in plane, ±``tilt_deg`` tilt), and
    its stretches (singular values: the scale factors, since rotations keep lengths)."""
    stretches = 1 + rng.uniform(-warp.scale, warp.scale, size=3)
    scale = np.diag(stretches)
    yaw = np.deg2rad(rng.uniform(-warp.yaw_deg, warp.yaw_deg))
    pitch = np.deg2rad(rng.uniform(-warp.tilt_deg, warp.tilt_deg))
    in_plane = np.array([[math.cos(yaw), -math.sin(yaw), 0], [math.sin(yaw), math.cos(yaw), 0], [0, 0, 1]])
    tilt = np.array([[1, 0, 0], [0, math.cos(pitch), -math.sin(pitch)], [0, math.sin(pitch), math.cos(pitch)]])
    return matmul(matmul(in_plane, tilt), scale), stretches.tolist()


def _random_displacement_waves(rng: np.random.Generator, warp: Warp, count: int = 4) -> list[tuple]:
    """Parameters of ``count`` plane-wave displacements (wavelength in ``wavelength_mm``, amplitude up to
    ``wave_mm`` per axis)."""
    waves = []
    for _ in range(count):
        direction = unit(rng.normal(size=3))
        wavenumber = 2 * math.pi / rng.uniform(*warp.wavelength_mm) * direction
        amplitude = rng.uniform(-warp.wave_mm, warp.wave_mm, size=3)
        waves.append((wavenumber, amplitude, rng.uniform(0, 2 * math.pi)))
    return waves


def _displacement(waves: list[tuple], points_3n: np.ndarray) -> np.ndarray:
    displacement = np.zeros_like(points_3n)
    for wavenumber, amplitude, phase in waves:
        displacement += amplitude[:, None] * np.sin(apply_matrix(wavenumber[None], points_3n)[0] + phase)[None, :]
    return displacement
