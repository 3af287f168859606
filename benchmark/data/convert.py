"""Convert real fastMRI multi-coil brain files into the benchmark's standard 256 x 256 layout.

Each slice goes through the same pipeline the loader applies (``standardize_slice``: crop the readout
oversampling to the recon size, centre-crop to 256 x 256, optional SVD coil compression, ESPIRiT maps),
without normalisation (the loader normalises at read time). ESPIRiT runs once here instead of on every
read. Every source file is validated in full before anything is written; files are written atomically
and the manifest last, so an error leaves no half-converted dataset behind.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from benchmark.data.fastmri import DEFAULT_OPTIONS, LoadOptions, open_fastmri, read_slice, write_volume
from benchmark.data.manifest import SPLITS, FileEntry, entry_for, read_manifest, write_manifest
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
    raw_options = replace(options, normalization="none")
    infos = [_validate_fully(Path(source)) for source in sources]
    entries: dict[str, FileEntry] = {}
    if (root / "manifest.json").exists():
        entries = {entry.path: entry for entry in read_manifest(root)["entries"]}
    written = []
    for info in tqdm(infos, desc=f"convert fastMRI -> {split}", unit="volume"):
        slices = [read_slice(info.path, index, raw_options) for index in range(info.num_slices)]
        kspace = torch.stack([s.kspace for s in slices]).numpy()
        maps = torch.stack([s.maps for s in slices]).numpy()
        path = root / split / info.path.name
        write_volume(path, kspace, maps, info.acquisition, info.patient_id)
        entry = entry_for(root, path, split, info.contrast, info.patient_id, info.num_slices)
        entries[entry.path] = entry
        written.append(path)
    description = {"builder": "fastmri-convert", "options": options.as_record()}
    write_manifest(root, list(entries.values()), description)
    return written


def _validate_fully(path: Path):
    """Open the file and read every slice once, so NaN/Inf or truncation fail before any write."""
    with open_fastmri(path) as (handle, info):
        for index in range(info.num_slices):
            try:
                finite = np.isfinite(handle["kspace"][index]).all()
            except (OSError, RuntimeError):
                raise DataError(path, f"slice {index} unreadable, truncated or corrupt") from None
            if not finite:
                raise DataError(path, f"'kspace' slice {index} contains NaN or Inf values")
    return info
