"""Heads other than the realistic ones: domain-randomised training heads, and shifted test heads.

**Randomised** (``prepare --train-style randomised``; SynthSeg's recipe, Billot et al., Medical Image Analysis
86:102789, 2023; also SynthSR, SynthMorph): the template's label maps (grey and white matter, CSF, cortical bone,
marrow, muscle, fat, skin, as partial-volume fractions) under a strong random deformation, each label given a random
intensity and texture per volume, then a random bias field, blur, phase, coil array and noise level. A network
that sees only such images cannot learn one brain's contrasts; it must learn the anatomy and the physics.

**Shifted** (``prepare --shifted``): realistic heads pushed outside every range either training style draws: the
sequences of another site (``tissues.SHIFTED_*``), stronger head texture, a larger deformation, a posterior
surface array of 24 coils, SNR 8. A test split of such heads measures generalisation.

Every range is in ``RANDOMISED`` / ``SHIFTED`` below and in ``DATASET.md``. Written here: no library synthesises
MR k-space from label maps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter

from benchmark.data.anatomy import Warp, brain_texture, deformed_slices, subject_tissues
from benchmark.data.coilmodels import coil_maps
from benchmark.data.head import smooth_field

#: The labels whose intensities a randomised volume draws.
LABELS = ("gm", "wm", "csf", "bone", "marrow", "muscle", "fat", "skin")


@dataclass(frozen=True)
class Randomisation:
    """The ranges a randomised subject (geometry, coils) and each of its volumes (contrast, noise) draw from."""

    warp: Warp = Warp(scale=0.15, yaw_deg=15.0, tilt_deg=5.0, offset_mm=0.0, wave_mm=5.0,
                      wavelength_mm=(30.0, 90.0), shift_mm=10.0, fold_free=True)  # fmt: skip
    levels_mm: tuple[float, float] = (40.0, 125.0)  # each slice's template level, uniform
    intensity: tuple[float, float] = (0.0, 1.0)  # each label's mean (relative units), uniform
    texture: tuple[float, float] = (0.0, 0.12)  # each label's relative SD (white noise blurred over 1 px)
    brain_texture_power: tuple[float, float] = (0.0, 1.5)  # the template's residual texture raised to it
    bias: tuple[float, float] = (0.0, 0.35)  # amplitude of a smooth log bias field (150-400 mm waves)
    blur_px: tuple[float, float] = (0.0, 1.2)  # Gaussian blur: lower in-plane resolution
    phase_scale: tuple[float, float] = (0.0, 2.0)  # multiplies the realistic smooth phase (|phase| <~ 2 rad)
    coil_models: tuple[str, ...] = ("birdcage", "loops")
    #: One coil count per training batch: counts come from this set (4-20), so each count holds several subjects.
    coil_counts: tuple[int, ...] = (4, 8, 12, 16, 20)
    coil_radius: tuple[float, float] = (1.1, 1.8)  # relative to half the field of view
    snr: tuple[float, float] = (10.0, 60.0)  # log-uniform


@dataclass(frozen=True)
class Shift:
    """The shifted test heads: every setting outside ``RANDOMISED``'s and the realistic heads' ranges."""

    warp: Warp = Warp(scale=0.25, yaw_deg=25.0, tilt_deg=8.0, offset_mm=4.0, wave_mm=6.0,
                      wavelength_mm=(30.0, 60.0), shift_mm=15.0, fold_free=True)  # fmt: skip
    protocol: str = "shifted"
    head_texture: float = 0.2
    coil_model: str = "posterior"
    coil_count: int = 24
    coil_radius: float = 1.15
    snr: float = 8.0


RANDOMISED = Randomisation()
SHIFTED = Shift()


def randomised_subject(
    rng: np.random.Generator, num_slices: int, shape: tuple[int, int], pixel_mm: float
) -> tuple[dict, dict, np.ndarray]:
    """One randomised subject's geometry (slices, tissue fractions) and coil maps ``(C, H, W)``."""
    ranges = RANDOMISED
    levels = np.sort(rng.uniform(*ranges.levels_mm, size=num_slices))
    slices = deformed_slices(rng, num_slices, shape, pixel_mm, levels, ranges.warp)
    tissues = subject_tissues(slices, rng)
    model = ranges.coil_models[int(rng.integers(len(ranges.coil_models)))]
    count = ranges.coil_counts[int(rng.integers(len(ranges.coil_counts)))]
    maps = coil_maps(rng, model, count, shape, rng.uniform(*ranges.coil_radius))
    return slices, tissues, maps


def randomised_image(slices: dict, tissues: dict, rng: np.random.Generator) -> tuple[np.ndarray, float, float]:
    """One randomised volume's magnitude ``(S, H, W)``, its phase scale and its SNR (module docstring)."""
    ranges = RANDOMISED
    shape = slices["t1"].shape
    image = np.zeros(shape)
    for label in LABELS:
        mean, spread = rng.uniform(*ranges.intensity), rng.uniform(*ranges.texture)
        noise = gaussian_filter(rng.normal(size=shape), sigma=(0, 1.0, 1.0))
        image += tissues[label] * mean * (1 + spread * noise / max(noise.std(), 1e-12))
    image *= brain_texture(slices) ** rng.uniform(*ranges.brain_texture_power)
    field = smooth_field(rng, slices["points_mm"], waves=3, wavelength=(150, 400))
    image *= np.exp(rng.uniform(*ranges.bias) * field)
    blur = rng.uniform(*ranges.blur_px)
    image = gaussian_filter(image, sigma=(0, blur, blur))
    snr = math.exp(rng.uniform(math.log(ranges.snr[0]), math.log(ranges.snr[1])))
    return np.clip(image, 0.0, None), rng.uniform(*ranges.phase_scale), snr


def shifted_subject(
    rng: np.random.Generator, num_slices: int, shape: tuple[int, int], pixel_mm: float, levels_mm: np.ndarray
) -> tuple[dict, dict, np.ndarray]:
    """One shifted subject's geometry, tissues (stronger head texture) and posterior-array coil maps."""
    slices = deformed_slices(rng, num_slices, shape, pixel_mm, levels_mm, SHIFTED.warp)
    tissues = subject_tissues(slices, rng, head_texture=SHIFTED.head_texture)
    maps = coil_maps(rng, SHIFTED.coil_model, SHIFTED.coil_count, shape, SHIFTED.coil_radius)
    return slices, tissues, maps
