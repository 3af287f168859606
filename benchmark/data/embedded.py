"""Build the embedded default dataset offline and deterministically (``python -m benchmark prepare``).

Anatomy and contrasts come from ``benchmark.data.anatomy`` (whole heads around the MNI152 2009a brain
that nilearn ships). Acquisition is simulated here with the suite's physics conventions: a smooth
random image phase, birdcage coil maps (sigpy; per subject a coil count from ``coil_counts``, a coil
radius and per-coil phases, normalised to sum |S|^2 = 1), k-space ``F(S x)`` by the centred orthonormal
FFT and complex Gaussian noise whose standard deviation is the mean in-head magnitude divided by
``snr``. Files are written in the fastMRI multi-coil layout with the true maps under
``sensitivity_maps``, split by subject, and listed in a manifest with their sha256. The dataset appears
under its final name only when complete.

Every step runs in float64 numpy (FFT by numpy's pocketfft, no threads) and is rounded once to
complex64 when written, so the bytes do not depend on the CPU or the torch build as far as numpy allows;
``tests/test_embedded.py`` checks a mini build against a committed hash.
"""

from __future__ import annotations

import math
import os
import shutil
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path

import numpy as np
from tqdm import tqdm

from benchmark.data.anatomy import CONTRASTS, deformed_slices, slice_levels, subject_tissues, synthesize_contrast
from benchmark.data.coilmodels import coil_maps
from benchmark.data.fastmri import write_volume
from benchmark.data.manifest import EMBEDDED_BUILDER_VERSION, TRAINING_SPLITS, FileEntry, entry_for, write_manifest
from benchmark.data.ownership import check_replaceable, move_into_place, staging_folder
from benchmark.data.randomise import SHIFTED, randomised_image, randomised_subject, shifted_subject
from benchmark.errors import BenchmarkError, InputError
from benchmark.physics.fft import numpy_fft2c

ACQUISITION = {"T1": "AXT1", "T2": "AXT2", "FLAIR": "AXFLAIR"}
#: Share of the field of view (rows and columns) the head spans on every slice of the default build,
#: measured on the RSS images (pixels above 10 % of the slice maximum); stated in DATASET.md.
HEAD_FILL_RANGE = (0.64, 0.92)
#: HDF5 attribute holding the standard deviation σ of the complex k-space noise (E|n|² = σ² per sample).
NOISE_SIGMA_ATTR = "kspace_noise_sigma"
#: HDF5 attribute of a randomised or shifted volume's SNR (mean in-head magnitude / σ; realistic heads: ``snr``).
SNR_ATTR = "snr"
#: Environment variable that overrides the default dataset location.
DATA_ENV = "MRIBENCH_DATA"


@dataclass(frozen=True)
class EmbeddedSpec:
    """Everything that determines the dataset's bytes (recorded in its manifest).

    ``splits`` holds (split, subjects, slices per volume); subject ``i`` (counted over all splits) gets
    ``coil_counts[i % len(coil_counts)]`` coils, so every split holds every coil count. The test split has one
    slice per subject (independent units for paired tests), at levels spread over the slice range
    (``anatomy.slice_levels``).
    """

    shape: tuple[int, int] = (256, 256)
    pixel_mm: float = 1.0
    coil_counts: tuple[int, ...] = (8, 12, 16)
    splits: tuple[tuple[str, int, int], ...] = (("train", 12, 3), ("val", 3, 3), ("test", 24, 1))
    snr: float = 40.0
    seed: int = 2026
    #: ``realistic`` (the template's contrasts, birdcage coils) or ``randomised`` (``benchmark.data.randomise``).
    train_style: str = "realistic"
    #: ``realistic``, or ``shifted``: heads outside every training range (``prepare --shifted``).
    test_style: str = "realistic"

    def __post_init__(self) -> None:
        if self.train_style not in ("realistic", "randomised"):
            raise InputError(f"train style must be realistic or randomised, got {self.train_style!r}")
        if self.test_style not in ("realistic", "shifted"):
            raise InputError(f"test style must be realistic or shifted, got {self.test_style!r}")


#: The shifted test heads (``prepare --shifted``): one slice per subject, their own seed (independent subjects).
SHIFTED_SPEC = EmbeddedSpec(splits=(("test", 24, 1),), test_style="shifted", seed=4052)


def default_data_root() -> Path:
    """``$MRIBENCH_DATA`` if set, else ``data/embedded`` under the current directory."""
    return Path(os.environ.get(DATA_ENV, "data/embedded"))


def build_embedded(root: str | Path, spec: EmbeddedSpec = EmbeddedSpec(), force: bool = False) -> Path:
    """Build the dataset at ``root``; an existing folder is replaced only with ``force``, and only if it is empty
    or an embedded dataset this suite built holding nothing else (``benchmark.data.ownership``)."""
    root = Path(root)
    if root.exists() and not force:
        raise BenchmarkError(f"{root} already exists; pass --force to rebuild it")
    check_replaceable(root, "embedded")
    staged = staging_folder(root, "building")
    try:
        entries = _write_volumes(staged, spec)
        write_manifest(
            staged, entries, {"builder": "embedded", "builder_version": EMBEDDED_BUILDER_VERSION, **asdict(spec)}
        )
        card = resources.files("benchmark.data").joinpath("DATASET.md").read_text()
        (staged / "DATASET.md").write_text(card)
        move_into_place(staged, root)
    finally:
        shutil.rmtree(staged, ignore_errors=True)
    return root


def _write_volumes(root: Path, spec: EmbeddedSpec) -> list[FileEntry]:
    subjects = [(split, slices, position, count) for split, count, slices in spec.splits for position in range(count)]
    entries = []
    progress = tqdm(total=len(subjects) * len(CONTRASTS), desc="embedded dataset", unit="volume")
    for subject_id, (split, num_slices, position, count) in enumerate(subjects):
        style = spec.train_style if split in TRAINING_SPLITS else spec.test_style
        patient_id = f"{PATIENT_PREFIX[style]}{subject_id:02d}"
        rng = np.random.default_rng([spec.seed, subject_id])
        maps_CHW, volumes = SUBJECTS[style](
            rng, spec, subject_id, num_slices, slice_levels(num_slices, position, count)
        )
        for acquisition, contrast, image_SHW, snr, contrast_rng in volumes:
            progress.set_postfix_str(f"{split} {patient_id} {contrast}")
            kspace, sigma = _acquire(image_SHW, maps_CHW, contrast_rng, snr)
            path = root / split / f"embedded_{patient_id}_{acquisition}.h5"
            attrs = {NOISE_SIGMA_ATTR: sigma} | ({SNR_ATTR: snr} if style != "realistic" else {})
            if split in TRAINING_SPLITS and style == "realistic":
                attrs = None  # builder 3's bytes, the shipped checkpoints' provenance; the manifest holds σ
            write_volume(path, kspace, maps_CHW.astype(np.complex64), acquisition, patient_id, attrs)
            entries.append(entry_for(root, path, split, contrast, patient_id, num_slices, noise_sigma=sigma))
            progress.update()
    progress.close()
    return entries


def _realistic(rng: np.random.Generator, spec: EmbeddedSpec, subject_id: int, num_slices: int, levels: np.ndarray):
    """A realistic subject's coil maps and its (acquisition, contrast, complex image, SNR, noise stream) per
    contrast."""
    slices = deformed_slices(rng, num_slices, spec.shape, spec.pixel_mm, levels)
    tissues = subject_tissues(slices, rng)
    maps_CHW = _subject_coils(rng, spec.coil_counts[subject_id % len(spec.coil_counts)], spec.shape)
    phase = _smooth_phase(rng, (num_slices, *spec.shape))
    return maps_CHW, _clinical_volumes(spec, subject_id, slices, tissues, phase, spec.snr, "clinical")


def _clinical_volumes(spec: EmbeddedSpec, subject_id: int, slices, tissues, phase, snr: float, protocol: str):
    """(acquisition, contrast, complex image, SNR, noise stream) of T1, T2 and FLAIR under a sequence protocol."""
    return (
        (ACQUISITION[contrast], contrast, synthesize_contrast(slices, tissues, contrast, protocol) * np.exp(1j * phase),
         snr, np.random.default_rng([spec.seed, subject_id, index]))
        for index, contrast in enumerate(CONTRASTS)
    )  # fmt: skip


def _randomised(rng: np.random.Generator, spec: EmbeddedSpec, subject_id: int, num_slices: int, levels: np.ndarray):
    """A randomised subject (``benchmark.data.randomise``): three volumes of random contrast, phase and noise."""
    slices, tissues, maps_CHW = randomised_subject(rng, num_slices, spec.shape, spec.pixel_mm)

    def volume(draw: int):
        stream = np.random.default_rng([spec.seed, subject_id, draw, RANDOMISED_STREAM])
        magnitude, phase_scale, snr = randomised_image(slices, tissues, stream)
        phase = _smooth_phase(stream, (num_slices, *spec.shape)) * phase_scale
        return f"AXSYNTH{draw + 1}", SYNTHETIC_CONTRAST, magnitude * np.exp(1j * phase), snr, stream

    return maps_CHW, (volume(draw) for draw in range(len(CONTRASTS)))


def _shifted(rng: np.random.Generator, spec: EmbeddedSpec, subject_id: int, num_slices: int, levels: np.ndarray):
    """A shifted test subject (``benchmark.data.randomise``): T1, T2, FLAIR of another site's sequences."""
    slices, tissues, maps_CHW = shifted_subject(rng, num_slices, spec.shape, spec.pixel_mm, levels)
    phase = _smooth_phase(rng, (num_slices, *spec.shape))
    return maps_CHW, _clinical_volumes(spec, subject_id, slices, tissues, phase, SHIFTED.snr, SHIFTED.protocol)


#: How each style makes a subject; the patient-id prefix of its files.
SUBJECTS = {"realistic": _realistic, "randomised": _randomised, "shifted": _shifted}
PATIENT_PREFIX = {"realistic": "sub", "randomised": "sub", "shifted": "shift"}
#: A randomised subject's volumes carry no clinical contrast: the manifest calls them this.
SYNTHETIC_CONTRAST = "SYNTH"
#: Separates a randomised volume's random stream from a realistic one's ([seed, subject, contrast]).
RANDOMISED_STREAM = 7


def _subject_coils(rng: np.random.Generator, num_coils: int, shape: tuple[int, int]) -> np.ndarray:
    """Birdcage maps ``(C, H, W)`` complex128 with a per-subject coil radius and per-coil phase,
    normalised so that sum |S|^2 = 1 (float64 throughout)."""
    return coil_maps(rng, "birdcage", num_coils, shape, radius=rng.uniform(1.3, 1.7))


def _acquire(
    image_SHW: np.ndarray, maps_CHW: np.ndarray, rng: np.random.Generator, snr: float
) -> tuple[np.ndarray, float]:
    """Noisy multi-coil k-space ``(S, C, H, W)`` complex64 of a complex image volume, and the noise's
    standard deviation σ (complex: each of the real and imaginary parts has σ / √2, so E|n|² = σ²)."""
    kspace = numpy_fft2c(maps_CHW[None] * image_SHW[:, None])
    magnitude = np.abs(image_SHW)
    inside = magnitude > 0.05 * magnitude.max()
    sigma = magnitude[inside].mean() / snr
    noise = rng.normal(size=(2, *kspace.shape)) * sigma / math.sqrt(2)
    return (kspace + noise[0] + 1j * noise[1]).astype(np.complex64), float(sigma)


def _smooth_phase(rng: np.random.Generator, shape: tuple[int, int, int]) -> np.ndarray:
    """Per slice: a linear ramp plus three low-frequency (< 1.5 cycles per FOV) waves, |phase| <~ 2 rad."""
    num_slices, height, width = shape
    y, x = np.meshgrid(np.linspace(-0.5, 0.5, height), np.linspace(-0.5, 0.5, width), indexing="ij")
    phase = np.zeros(shape)
    for index in range(num_slices):
        phase[index] = rng.uniform(-1, 1) * y + rng.uniform(-1, 1) * x
        for _ in range(3):
            fy, fx = rng.uniform(-1.5, 1.5, size=2)
            phase[index] += rng.uniform(0, 0.4) * np.cos(2 * math.pi * (fy * y + fx * x) + rng.uniform(0, 2 * math.pi))
    return phase
