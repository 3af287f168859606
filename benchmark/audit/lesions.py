"""Known lesions inserted through the physics: a paired copy of a test split with small synthetic discs.

Each test slice gets up to ``LESIONS_PER_SLICE`` smooth discs at seeded sites inside the head, clear of the scalp
and skull (the head region of ``benchmark.metrics.region`` shrunk by ``SKULL_CLEARANCE_PX``), whose centres lie
at least ``SITE_SPACING`` x the larger radius apart. A lesion of radius ρ and contrast c is
``ℓ = c · μ_bg · b_ρ · exp(i ∠x)``: ``b_ρ`` a disc with a raised-cosine edge one pixel wide, ``μ_bg`` the mean of
``|x|`` under it, ``x`` the slice's SENSE image of its fully sampled k-space (the truth: only the audit sees it).
The (ρ, c) classes are balanced by one rule: the split's lesions, numbered in file and slice order, take the
``len(LESION_RADII) x len(LESION_CONTRASTS)`` classes in turn (contrast fastest), so every class appears equally
often in each run of 24 lesions; a slice with no room for a lesion skips it and the next lesion takes its class.

The lesion split keeps every file's base name (masks are seeded by file name, so a method sees the same mask
with and without lesions) and every dataset, with the fully sampled k-space ``y_L = y + F(S ℓ)``: the same
noise realisation as ``y``, each pair matched. The lesion image, its label map (lesion number + 1, 0 outside),
and a per-lesion table go to ``lesions/<name>.lesion.h5`` beside the split, never into a file a method reads.
Written here: the site rule and the disc are this audit's definitions (no library offers them).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import torch
from scipy import ndimage
from tqdm import tqdm

from benchmark.data.fastmri import MAPS_KEY, write_volume
from benchmark.data.manifest import entry_for, read_manifest, verify_dataset, write_manifest
from benchmark.data.ownership import check_replaceable, move_into_place, staging_folder
from benchmark.errors import BenchmarkError
from benchmark.io import atomic_path
from benchmark.metrics.region import head_region
from benchmark.physics.fft import numpy_fft2c, numpy_ifft2c
from benchmark.seeds import derive_seed

LESIONS_PER_SLICE = 4
#: Radii in pixels on a 256-pixel-wide grid (scaled with the grid's width, at least one pixel).
LESION_RADII = (1, 2, 3, 5)
#: Contrast as a fraction of the local background mean: bright and dark lesions, faint to obvious.
LESION_CONTRASTS = (-0.4, -0.2, -0.1, 0.1, 0.2, 0.4)
#: Pixels (on a 256-wide grid) the head region is shrunk by, so no lesion touches scalp, skull or the edge.
SKULL_CLEARANCE_PX = 20
#: Lesion centres lie at least this many times the larger of their two radii apart.
SITE_SPACING = 4
#: Candidate sites drawn per lesion before a slice is declared full.
SITE_TRIES = 200
SIDECAR_FOLDER = "lesions"
SIDECAR_SUFFIX = ".lesion.h5"
LESION_BUILDER = "lesion"
#: Attributes ``write_volume`` writes itself (the others, e.g. the noise level, are copied from the source).
WRITTEN_ATTRS = ("acquisition", "patient_id", "max", "norm")


@dataclass(frozen=True)
class Lesion:
    row: int
    col: int
    radius: float  # pixels on this grid
    contrast: float  # fraction of the local background mean
    background: float = 0.0  # μ_bg, the mean |x| under the disc (set when the lesion is drawn)


def lesion_class(number: int) -> tuple[int, float]:
    """(radius on a 256 grid, contrast) of the split's ``number``-th lesion: the classes in turn, contrast fastest."""
    count = len(LESION_CONTRASTS)
    return LESION_RADII[(number // count) % len(LESION_RADII)], LESION_CONTRASTS[number % count]


def smooth_disc(shape: tuple[int, int], row: float, col: float, radius: float) -> np.ndarray:
    """``b_ρ``: 1 inside ``radius - 0.5``, 0 beyond ``radius + 0.5``, a raised cosine across the pixel between."""
    rows, cols = np.ogrid[: shape[0], : shape[1]]
    distance = np.hypot(rows - row, cols - col)
    edge = np.clip(distance - (radius - 0.5), 0.0, 1.0)
    return 0.5 * (1.0 + np.cos(np.pi * edge))


def head_depth(image_HW: np.ndarray) -> np.ndarray:
    """Each pixel's Euclidean distance (pixels) to the outside of the head region of ``|image|``."""
    head = head_region(torch.from_numpy(np.abs(image_HW))[None])[0].numpy()
    return ndimage.distance_transform_edt(head)


def clearance(image_HW: np.ndarray) -> float:
    return max(1.0, SKULL_CLEARANCE_PX * image_HW.shape[-1] / 256)


def interior_region(image_HW: np.ndarray) -> np.ndarray:
    """Where lesions may lie: deeper in the head region of ``|image|`` than the skull clearance."""
    return head_depth(image_HW) > clearance(image_HW)


def place_lesions(image_HW: np.ndarray, number: int, rng: np.random.Generator) -> tuple[list[Lesion], int]:
    """Up to ``LESIONS_PER_SLICE`` lesions for one slice, the first of class ``number``; returns them and the
    number of the split's next lesion (a lesion with no room is not drawn, and the next one takes its class).
    Every disc, edge included, lies inside ``interior_region``."""
    depth, scale = head_depth(image_HW), image_HW.shape[-1] / 256
    placed: list[Lesion] = []
    for _ in range(LESIONS_PER_SLICE):
        radius_256, contrast = lesion_class(number)
        radius = max(1.0, radius_256 * scale)
        allowed = np.argwhere(depth > clearance(image_HW) + radius + 0.5)
        for _ in range(SITE_TRIES if len(allowed) else 0):
            row, col = allowed[rng.integers(len(allowed))]
            if all(np.hypot(row - o.row, col - o.col) >= SITE_SPACING * max(radius, o.radius) for o in placed):
                placed.append(Lesion(int(row), int(col), radius, contrast))
                number += 1
                break
    return placed, number


def draw_lesions(image_HW: np.ndarray, lesions: list[Lesion]) -> tuple[np.ndarray, np.ndarray, list[Lesion]]:
    """The lesion image ``ℓ`` (complex), the label map, and the lesions with their background means."""
    lesion_image = np.zeros(image_HW.shape, dtype=np.complex128)
    labels = np.zeros(image_HW.shape, dtype=np.int16)
    phase, magnitude = np.exp(1j * np.angle(image_HW)), np.abs(image_HW)
    drawn = []
    for index, lesion in enumerate(lesions):
        disc = smooth_disc(image_HW.shape, lesion.row, lesion.col, lesion.radius)
        background = float((disc * magnitude).sum() / disc.sum())
        lesion_image += lesion.contrast * background * disc * phase
        labels[disc > 0] = index + 1
        drawn.append(Lesion(lesion.row, lesion.col, lesion.radius, lesion.contrast, background))
    return lesion_image, labels, drawn


def insert_lesion(kspace_CHW: np.ndarray, maps_CHW: np.ndarray, lesion_HW: np.ndarray) -> np.ndarray:
    """``y + F(S ℓ)``: the lesion added to every coil's fully sampled k-space (noise untouched)."""
    return kspace_CHW.astype(np.complex128) + numpy_fft2c(maps_CHW.astype(np.complex128) * lesion_HW[None])


def sense_image(kspace_CHW: np.ndarray, maps_CHW: np.ndarray) -> np.ndarray:
    """The SENSE (coil-combined) image of fully sampled k-space: ``Σ_c conj(S_c) F⁻¹ y_c``."""
    return (np.conj(maps_CHW.astype(np.complex128)) * numpy_ifft2c(kspace_CHW.astype(np.complex128))).sum(axis=0)


def sidecar_path(split_root: Path, file_name: str) -> Path:
    return split_root / SIDECAR_FOLDER / f"{Path(file_name).stem}{SIDECAR_SUFFIX}"


def write_lesion_split(source: Path, out: Path, seed: int = 0, split: str = "test") -> Path:
    """Write the lesion variant of ``source``'s ``split`` at ``out`` (module docstring): staged, then moved into
    place, so an interrupted build leaves nothing; a folder there is replaced only if it is a lesion split."""
    source_hash = verify_dataset(source)
    entries = [entry for entry in read_manifest(source)["entries"] if entry.split == split]
    if not entries:
        raise BenchmarkError(f"{source} has no {split} volumes to insert lesions into")
    check_replaceable(out, LESION_BUILDER)
    staged = staging_folder(out, "lesions")
    try:
        written, sidecars, number = [], [], 0
        for entry in tqdm(entries, desc="lesion split", unit="volume"):
            rng = np.random.default_rng(derive_seed(seed, "lesions", Path(entry.path).name))
            number = _lesion_volume(source / entry.path, staged / entry.path, staged, rng, number)
            written.append(entry_for(staged, staged / entry.path, entry.split, entry.contrast, entry.patient_id,
                                     entry.num_slices, noise_sigma=entry.noise_sigma))  # fmt: skip
            sidecars.append(sidecar_path(staged, entry.path).relative_to(staged).as_posix())
        description = {
            "builder": LESION_BUILDER, "source_dataset_hash": source_hash, "split": split, "seed": seed,
            "lesions_per_slice": LESIONS_PER_SLICE, "radii_px_at_256": list(LESION_RADII),
            "contrasts": list(LESION_CONTRASTS), "skull_clearance_px_at_256": SKULL_CLEARANCE_PX,
            "site_spacing_radii": SITE_SPACING, "sidecars": sidecars,
        }  # fmt: skip
        write_manifest(staged, written, description)
        move_into_place(staged, out)
    finally:
        shutil.rmtree(staged, ignore_errors=True)
    return out


def _lesion_volume(path: Path, target: Path, root: Path, rng: np.random.Generator, number: int) -> int:
    """One volume with lesions in every slice; returns the number of the split's next lesion."""
    with h5py.File(path, "r") as handle:
        if MAPS_KEY not in handle:
            raise BenchmarkError(
                f"{path.name} has no stored {MAPS_KEY}: lesions are inserted through the maps a method is given, so "
                "the lesion split needs a dataset that stores them (the embedded dataset, or prepare --maps)"
            )
        kspace, maps = handle["kspace"][()], handle[MAPS_KEY][()]
        attrs = {key: value for key, value in handle.attrs.items() if key not in WRITTEN_ATTRS}
        acquisition, patient_id = str(handle.attrs["acquisition"]), str(handle.attrs["patient_id"])
    if maps.shape[-2:] != kspace.shape[-2:]:
        raise BenchmarkError(f"{path.name}: maps {maps.shape[-2:]} and k-space {kspace.shape[-2:]} differ in grid")
    images, labels, rows = [], [], []
    for index, slice_kspace in enumerate(kspace):
        slice_maps = maps[index] if maps.ndim == 4 else maps
        truth = sense_image(slice_kspace, slice_maps)
        lesions, number = place_lesions(truth, number, rng)
        lesion_image, label_map, drawn = draw_lesions(truth, lesions)
        kspace[index] = insert_lesion(slice_kspace, slice_maps, lesion_image)
        images.append(lesion_image)
        labels.append(label_map)
        rows += [(index, d.row, d.col, d.radius, d.contrast, d.background) for d in drawn]
    target.parent.mkdir(parents=True, exist_ok=True)
    write_volume(target, kspace, maps, acquisition, patient_id, attrs)
    _write_sidecar(sidecar_path(root, path.name), path.name, np.stack(images), np.stack(labels), rows)
    return number


def _write_sidecar(path: Path, source_file: str, images: np.ndarray, labels: np.ndarray, rows: list) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    table = np.array(rows, dtype=np.float64).reshape(-1, 6)
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as handle:
        handle.create_dataset("lesion_image", data=images.astype(np.complex64), track_times=False)
        handle.create_dataset("lesion_labels", data=labels, track_times=False)
        # One row per lesion: slice, centre row, centre column, radius (px), contrast, background mean μ_bg.
        handle.create_dataset("lesions", data=table, track_times=False)
        handle.attrs["columns"] = "slice,row,col,radius_px,contrast,background"
        handle.attrs["source_file"] = source_file
