"""Convert real fastMRI multi-coil brain files into the benchmark's standard 256 x 256 layout.

Each slice goes through the same pipeline the loader applies (``standardize_slice``: crop the readout
oversampling to the recon size, centre-crop to 256 x 256, optional SVD coil compression, ESPIRiT maps),
without normalisation (the loader normalises at read time). ESPIRiT runs once here instead of on every
read. Every source file is validated in full before anything is written; converted files are staged beside
``root`` and moved in, then the manifest is written, so an error (even one found while converting, such as a
slice ESPIRiT cannot calibrate) leaves no half-converted dataset behind.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import torch
from tqdm import tqdm

from benchmark.data.fastmri import (
    DEFAULT_OPTIONS,
    LoadOptions,
    VolumeInfo,
    crop_problem,
    open_fastmri,
    read_slice,
    slice_problem,
    write_volume,
)
from benchmark.data.manifest import SPLITS, FileEntry, entry_for, read_manifest, write_manifest
from benchmark.data.noise import margin_noise_sigma, volume_noise_sigma
from benchmark.data.ownership import check_replaceable, staging_folder
from benchmark.errors import BenchmarkError, DataError


def convert_fastmri(
    sources: Sequence[str | Path], root: str | Path, split: str, options: LoadOptions = DEFAULT_OPTIONS
) -> list[Path]:
    """Convert ``sources`` into ``root/split``; merges with an existing manifest at ``root``."""
    if split not in SPLITS:
        raise BenchmarkError(f"unknown split {split!r}; known: {', '.join(SPLITS)}")
    if not sources:
        raise BenchmarkError("no fastMRI .h5 files to convert")
    root = Path(root)
    check_replaceable(root, "fastmri-convert")  # a new conversion may join or replace files of an old one only
    raw_options = replace(options, normalization="none")
    checked = [_validate_fully(Path(source), options.size) for source in sources]
    infos, noise_sigmas = [info for info, _ in checked], {info.path: sigma for info, sigma in checked}
    entries: dict[str, FileEntry] = {}
    if (root / "manifest.json").exists():
        entries = {entry.path: entry for entry in read_manifest(root)["entries"]}
    staging = staging_folder(root, "converting")
    written = []
    try:
        for info in tqdm(infos, desc=f"convert fastMRI -> {split}", unit="volume"):
            slices = [read_slice(info.path, index, raw_options) for index in range(info.num_slices)]
            kspace = torch.stack([s.kspace for s in slices]).numpy()
            maps = torch.stack([s.maps for s in slices]).numpy()
            write_volume(staging / info.path.name, kspace, maps, info.acquisition, info.patient_id)
        (root / split).mkdir(parents=True, exist_ok=True)
        for info in infos:
            path = root / split / info.path.name
            os.replace(staging / info.path.name, path)
            entry = entry_for(
                root, path, split, info.contrast, info.patient_id, info.num_slices, noise_sigmas[info.path]
            )
            entries[entry.path] = entry
            written.append(path)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    description = {"builder": "fastmri-convert", "options": options.as_record()}
    write_manifest(root, list(entries.values()), description)
    return written


def _validate_fully(path: Path, size: tuple[int, int]) -> tuple[VolumeInfo, float | None]:
    """Open the file and read every slice once, so a file too small for ``size``, NaN/Inf, empty slices or
    truncation fail before any write; on the way, estimate its k-space noise level from the readout margins
    (``benchmark.data.noise``; the manifest's ``noise_sigma``, which the audit's ideal observer needs)."""
    slice_sigmas = []
    with open_fastmri(path) as (handle, info):
        if problem := crop_problem(info, size):
            raise DataError(path, problem)
        for index in range(info.num_slices):
            try:
                kspace = handle["kspace"][index]
            except (OSError, RuntimeError):
                raise DataError(path, f"slice {index} unreadable, truncated or corrupt") from None
            if problem := slice_problem(kspace, index):
                raise DataError(path, problem)
            slice_sigmas.append(margin_noise_sigma(kspace, info.recon_size[0]))
    return info, volume_noise_sigma(slice_sigmas)
