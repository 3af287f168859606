"""Build the embedded default dataset offline and deterministically (``python -m benchmark prepare``).

Anatomy and contrasts come from ``benchmark.data.anatomy`` (MNI152 2009a via nilearn). Acquisition is
simulated here with the suite's own physics: a smooth random image phase, 8-channel birdcage coil
maps (sigpy; per subject a coil radius and per-coil phase), k-space ``F(S x)`` and complex Gaussian
noise whose standard deviation is the mean in-brain magnitude divided by ``snr`` (the orthonormal FFT
makes that the image-domain noise level of the coil-combined image too). Files are written in the
fastMRI multi-coil layout with the true maps under ``sensitivity_maps``, split by subject, and listed in
a manifest with their sha256. The dataset appears under its final name only when complete.
"""

from __future__ import annotations

import math
import os
import shutil
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from benchmark.data.anatomy import CONTRASTS, deformed_slices, synthesize_contrast
from benchmark.data.fastmri import write_volume
from benchmark.data.manifest import FileEntry, entry_for, write_manifest
from benchmark.errors import BenchmarkError
from benchmark.physics import birdcage_maps, fft2c

BUILDER_VERSION = "1"
ACQUISITION = {"T1": "AXT1", "T2": "AXT2", "FLAIR": "AXFLAIR"}
#: Environment variable that overrides the default dataset location.
DATA_ENV = "MRIBENCH_DATA"


@dataclass(frozen=True)
class EmbeddedSpec:
    """Everything that determines the dataset's bytes (recorded in its manifest)."""

    shape: tuple[int, int] = (256, 256)
    pixel_mm: float = 1.0
    num_coils: int = 8
    slices_per_volume: int = 8
    subjects_per_split: tuple[tuple[str, int], ...] = (("train", 6), ("val", 2), ("test", 2))
    snr: float = 40.0
    seed: int = 2026


def default_data_root() -> Path:
    """``$MRIBENCH_DATA`` if set, else ``data/embedded`` under the current directory."""
    return Path(os.environ.get(DATA_ENV, "data/embedded"))


def build_embedded(root: str | Path, spec: EmbeddedSpec = EmbeddedSpec(), force: bool = False) -> Path:
    """Build the dataset at ``root``; refuses to overwrite an existing directory unless ``force``."""
    root = Path(root)
    if root.exists() and not force:
        raise BenchmarkError(f"{root} already exists; pass --force to rebuild it")
    partial = root.parent / f".{root.name}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    try:
        entries = _write_volumes(partial, spec)
        write_manifest(partial, entries, {"builder": "embedded", "builder_version": BUILDER_VERSION, **asdict(spec)})
        card = resources.files("benchmark.data").joinpath("DATASET.md").read_text()
        (partial / "DATASET.md").write_text(card)
        if root.exists():
            shutil.rmtree(root)
        os.replace(partial, root)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return root


def _write_volumes(root: Path, spec: EmbeddedSpec) -> list[FileEntry]:
    subjects = [(split, index) for split, count in spec.subjects_per_split for index in range(count)]
    entries = []
    progress = tqdm(total=len(subjects) * len(CONTRASTS), desc="embedded dataset", unit="volume")
    for subject_id, (split, _) in enumerate(subjects):
        rng = np.random.default_rng([spec.seed, subject_id])
        slices = deformed_slices(rng, spec.slices_per_volume, spec.shape, spec.pixel_mm)
        maps_CHW = _subject_coils(rng, spec)
        patient_id = f"sub{subject_id:02d}"
        for contrast_index, contrast in enumerate(CONTRASTS):
            progress.set_postfix_str(f"{split} {patient_id} {contrast}")
            contrast_rng = np.random.default_rng([spec.seed, subject_id, contrast_index])
            magnitude = synthesize_contrast(slices, contrast)
            kspace = _acquire(magnitude, maps_CHW, contrast_rng, spec.snr)
            path = root / split / f"embedded_{patient_id}_{ACQUISITION[contrast]}.h5"
            write_volume(path, kspace, maps_CHW.numpy(), ACQUISITION[contrast], patient_id)
            entries.append(entry_for(root, path, split, contrast, patient_id, spec.slices_per_volume))
            progress.update()
    progress.close()
    return entries


def _subject_coils(rng: np.random.Generator, spec: EmbeddedSpec) -> torch.Tensor:
    """Birdcage maps with a per-subject coil radius and per-coil phase (keeps sum |S|^2 = 1)."""
    maps = birdcage_maps(spec.num_coils, spec.shape, radius=rng.uniform(1.3, 1.7))
    phases = torch.from_numpy(np.exp(1j * rng.uniform(0, 2 * math.pi, spec.num_coils)).astype(np.complex64))
    return maps * phases[:, None, None]


def _acquire(magnitude_SHW: np.ndarray, maps_CHW: torch.Tensor, rng: np.random.Generator, snr: float) -> np.ndarray:
    """Noisy multi-coil k-space ``(S, C, H, W)`` complex64 of a magnitude volume with smooth phase."""
    image = torch.from_numpy(magnitude_SHW * np.exp(1j * _smooth_phase(rng, magnitude_SHW.shape)))
    kspace = fft2c(maps_CHW.to(torch.complex128) * image[:, None]).numpy()
    inside = magnitude_SHW > 0.05 * magnitude_SHW.max()
    sigma = magnitude_SHW[inside].mean() / snr
    noise = rng.normal(size=(2, *kspace.shape)) * sigma / math.sqrt(2)
    return (kspace + noise[0] + 1j * noise[1]).astype(np.complex64)


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
