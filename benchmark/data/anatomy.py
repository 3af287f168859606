"""Virtual subjects and MR contrasts from the MNI152 2009a template that ``nilearn`` ships.

What is real: the anatomy. ``nilearn`` ships the ICBM 2009a nonlinear symmetric T1 template (1 mm,
skull-stripped) with grey- and white-matter probability maps; CSF is the brain mask minus both.

What is simulated (written here; no library does it):
- subjects: each is the template under a seeded smooth deformation (anisotropic scaling, rotation,
  translation and a sum of low-frequency sinusoidal displacements of a few millimetres);
- T1 contrast: the template's own intensities;
- T2 and FLAIR contrasts: spin-echo and inversion-recovery signal equations applied to the tissue
  fractions with literature 3 T relaxation times, multiplied by the template's residual texture (the
  T1 template divided by its best tissue-fraction fit), so fine structure the fractions miss survives.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy.ndimage import map_coordinates


@dataclass(frozen=True)
class Tissue:
    """Relaxation times (ms) and relative proton density of one tissue class."""

    t1_ms: float
    t2_ms: float
    proton_density: float


#: 3 T values: WM and GM from Stanisz et al., MRM 2005 (T1 1084/1820 ms, T2 69/99 ms); CSF T1 ~4 s and
#: T2 ~2 s (Lu et al., JMRI 2005; Spijkerman et al., MAGMA 2018); relative proton densities 0.69/0.80/1.0.
RELAXATION_3T: dict[str, Tissue] = {
    "wm": Tissue(t1_ms=1084.0, t2_ms=69.0, proton_density=0.69),
    "gm": Tissue(t1_ms=1820.0, t2_ms=99.0, proton_density=0.80),
    "csf": Tissue(t1_ms=4000.0, t2_ms=2000.0, proton_density=1.00),
}

#: Sequence timings (ms), typical of clinical axial brain acquisitions such as fastMRI's AXT2/AXFLAIR.
T2_SPIN_ECHO = {"tr": 6000.0, "te": 100.0}
FLAIR_TR, FLAIR_TE = 9000.0, 120.0
#: Inversion time that nulls CSF: 1 - 2 exp(-TI/T1) + exp(-TR/T1) = 0.
FLAIR_TI = RELAXATION_3T["csf"].t1_ms * math.log(2.0 / (1.0 + math.exp(-FLAIR_TR / RELAXATION_3T["csf"].t1_ms)))

CONTRASTS = ("T1", "T2", "FLAIR")
#: Axial range (template voxel index, 1 mm) the slices are drawn from: basal ganglia to upper ventricles.
SLICE_RANGE = (45, 125)


@lru_cache(maxsize=1)
def load_template() -> dict[str, np.ndarray]:
    """Template volumes ``(X, Y, Z)`` float32 at 1 mm: ``t1`` intensity and ``gm``/``wm``/``csf`` fractions."""
    from nilearn import datasets  # imported on first use: nilearn is slow to import

    t1 = datasets.load_mni152_template(resolution=1).get_fdata(dtype=np.float32)
    gm = datasets.load_mni152_gm_template(resolution=1).get_fdata(dtype=np.float32)
    wm = datasets.load_mni152_wm_template(resolution=1).get_fdata(dtype=np.float32)
    brain = datasets.load_mni152_brain_mask(resolution=1).get_fdata(dtype=np.float32)
    csf = np.clip(brain - gm - wm, 0.0, 1.0)
    return {"t1": t1, "gm": gm, "wm": wm, "csf": csf}


def deformed_slices(
    rng: np.random.Generator, num_slices: int, shape: tuple[int, int], pixel_mm: float = 1.0
) -> dict[str, np.ndarray]:
    """One virtual subject: axial slices ``(S, H, W)`` of every template volume after a smooth warp.

    Rows run anterior (top) to posterior, columns left to right, ``pixel_mm`` pixels on a ``shape`` grid
    centred on the template (256 x 256 at 1 mm holds the whole 197 x 233 mm brain).
    """
    template = load_template()
    dims = np.array(template["t1"].shape, dtype=float)
    centre = (dims - 1) / 2
    linear = _random_linear_map(rng)
    waves = _random_displacement_waves(rng)
    offset = rng.uniform(-4, 4)
    z_levels = np.linspace(*SLICE_RANGE, num_slices) + offset
    rows, cols = np.meshgrid(np.arange(shape[0]), np.arange(shape[1]), indexing="ij")
    coords = []
    for z in z_levels:
        # Output grid in template voxel units: x = column, y = anterior-up row, z = slice level.
        x = (cols - (shape[1] - 1) / 2) * pixel_mm + centre[0]
        y = ((shape[0] - 1) / 2 - rows) * pixel_mm + centre[1]
        points = np.stack([x, y, np.full_like(x, z, dtype=float)], axis=0).reshape(3, -1)
        warped = centre[:, None] + linear @ (points - centre[:, None]) + _displacement(waves, points)
        coords.append(warped)
    coords_3n = np.concatenate(coords, axis=1)
    out = {}
    for name, volume in template.items():
        sampled = map_coordinates(volume, coords_3n, order=1, mode="constant", cval=0.0)
        out[name] = sampled.reshape(num_slices, *shape).astype(np.float32)
    return out


def synthesize_contrast(slices: dict[str, np.ndarray], contrast: str) -> np.ndarray:
    """Magnitude images ``(S, H, W)`` for ``contrast`` in ``CONTRASTS`` (arbitrary units, >= 0)."""
    if contrast == "T1":
        return slices["t1"].copy()
    if contrast == "T2":
        signal = {name: _spin_echo(tissue, **T2_SPIN_ECHO) for name, tissue in RELAXATION_3T.items()}
    elif contrast == "FLAIR":
        signal = {name: _inversion_recovery(tissue) for name, tissue in RELAXATION_3T.items()}
    else:
        raise ValueError(f"unknown contrast {contrast!r}; known: {', '.join(CONTRASTS)}")
    mixture = sum(slices[name] * value for name, value in signal.items())
    return (mixture * _texture(slices)).astype(np.float32)


def _spin_echo(tissue: Tissue, tr: float, te: float) -> float:
    """Spin-echo signal PD (1 - exp(-TR/T1)) exp(-TE/T2)."""
    return tissue.proton_density * (1 - math.exp(-tr / tissue.t1_ms)) * math.exp(-te / tissue.t2_ms)


def _inversion_recovery(tissue: Tissue) -> float:
    """Magnitude inversion-recovery signal PD |1 - 2 exp(-TI/T1) + exp(-TR/T1)| exp(-TE/T2)."""
    recovery = 1 - 2 * math.exp(-FLAIR_TI / tissue.t1_ms) + math.exp(-FLAIR_TR / tissue.t1_ms)
    return tissue.proton_density * abs(recovery) * math.exp(-FLAIR_TE / tissue.t2_ms)


def _texture(slices: dict[str, np.ndarray]) -> np.ndarray:
    """The T1 template's residual over its tissue-fraction fit, clipped to [0.75, 1.33]."""
    weights = _fraction_fit()
    fitted = sum(slices[name] * weights[name] for name in ("gm", "wm", "csf"))
    ratio = np.divide(slices["t1"], fitted, out=np.ones_like(fitted), where=fitted > 0.05)
    return np.clip(ratio, 0.75, 1.33)


@lru_cache(maxsize=1)
def _fraction_fit() -> dict[str, float]:
    """Least-squares weights with t1 ≈ w_gm gm + w_wm wm + w_csf csf inside the brain."""
    template = load_template()
    inside = (template["gm"] + template["wm"] + template["csf"]) > 0.5
    design = np.stack([template[name][inside] for name in ("gm", "wm", "csf")], axis=1)
    solution, *_ = np.linalg.lstsq(design.astype(np.float64), template["t1"][inside], rcond=None)
    return dict(zip(("gm", "wm", "csf"), solution.tolist(), strict=True))


def _random_linear_map(rng: np.random.Generator) -> np.ndarray:
    """Anisotropic scaling (±6 %) composed with rotations (±6° in-plane, ±3° tilt)."""
    scale = np.diag(1 + rng.uniform(-0.06, 0.06, size=3))
    yaw, pitch = np.deg2rad(rng.uniform(-6, 6)), np.deg2rad(rng.uniform(-3, 3))
    in_plane = np.array([[math.cos(yaw), -math.sin(yaw), 0], [math.sin(yaw), math.cos(yaw), 0], [0, 0, 1]])
    tilt = np.array([[1, 0, 0], [0, math.cos(pitch), -math.sin(pitch)], [0, math.sin(pitch), math.cos(pitch)]])
    return in_plane @ tilt @ scale


def _random_displacement_waves(rng: np.random.Generator, count: int = 4) -> list[tuple]:
    """Parameters of ``count`` plane-wave displacements (wavelength 40-90 mm, amplitude <= 2.5 mm)."""
    waves = []
    for _ in range(count):
        direction = rng.normal(size=3)
        direction /= np.linalg.norm(direction)
        wavenumber = 2 * math.pi / rng.uniform(40, 90) * direction
        amplitude = rng.uniform(-2.5, 2.5, size=3)
        waves.append((wavenumber, amplitude, rng.uniform(0, 2 * math.pi)))
    return waves


def _displacement(waves: list[tuple], points_3n: np.ndarray) -> np.ndarray:
    displacement = np.zeros_like(points_3n)
    for wavenumber, amplitude, phase in waves:
        displacement += amplitude[:, None] * np.sin(wavenumber @ points_3n + phase)[None, :]
    return displacement
