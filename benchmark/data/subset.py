"""A dataset restricted by coil count: the coil-transfer check (train on some coil counts, test on another).

The subset lists the chosen files of an existing dataset in its own manifest (same entries and sha256) and links
them rather than copying; its description names the source dataset's hash and the rule that chose the files, so
tables built on it say so. Written in a temporary directory and renamed when complete, like every dataset here.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import h5py

from benchmark.data.manifest import read_manifest, verify_dataset, write_manifest
from benchmark.data.ownership import staging_folder
from benchmark.errors import BenchmarkError


def coil_count(path: Path) -> int:
    with h5py.File(path, "r") as file:
        return int(file["kspace"].shape[1])


def coil_subset(source: Path, destination: Path, train_coils: tuple[int, ...], test_coils: tuple[int, ...]) -> Path:
    """Link the train/val files of ``source`` with ``train_coils`` coils and its test files with ``test_coils``."""
    source = Path(source).resolve()
    chosen = [
        entry
        for entry in read_manifest(source)["entries"]
        if coil_count(source / entry.path) in (test_coils if entry.split == "test" else train_coils)
    ]
    rule = {"coils": {"train_and_val_coils": list(train_coils), "test_coils": list(test_coils)}}
    return linked_subset(source, destination, chosen, rule, "have the requested coil counts")


def first_of_each_split(source: Path, destination: Path) -> Path:
    """Link the first file (in path order) of each split of ``source``: a one-volume-per-split dataset
    (``smoke``)."""
    entries = sorted(read_manifest(source)["entries"], key=lambda entry: entry.path)
    chosen = [next((e for e in entries if e.split == split), None) for split in ("train", "val", "test")]
    rule = {"first_file_of_each_split": True}
    return linked_subset(Path(source).resolve(), destination, [e for e in chosen if e], rule, "exist")


def linked_subset(source: Path, destination: Path, chosen: list, rule: dict, wanted: str) -> Path:
    """A dataset at ``destination`` listing ``chosen`` (manifest entries of ``source``) as links, its description
    naming the source's hash and ``rule``; every split must keep a file."""
    source_hash = verify_dataset(source)
    if destination.exists():
        raise BenchmarkError(f"{destination} exists; choose a new directory for the subset")
    for split in ("train", "val", "test"):
        if not any(entry.split == split for entry in chosen):
            raise BenchmarkError(f"no {split} files of {source} {wanted}")
    staging = staging_folder(destination, "linking")
    try:
        for entry in chosen:
            (staging / entry.path).parent.mkdir(parents=True, exist_ok=True)
            (staging / entry.path).symlink_to(source / entry.path)
        for name in sorted(path.name for path in source.iterdir() if path.suffix == ".md"):
            shutil.copy(source / name, staging / name)
        description = read_manifest(source)["description"] | {"subset": {"source_dataset_hash": source_hash} | rule}
        write_manifest(staging, chosen, description)
        staging.rename(destination)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return destination
