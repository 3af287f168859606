"""A dataset's ``manifest.json``: every file's split, contrast, subject, size and sha256, plus one hash.

The dataset hash (sha256 over the sorted file hashes) goes into every run's metadata, so two runs are
comparable only if they saw byte-identical data.
"""

from __future__ import annotations

import hashlib
import json
import shlex
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from benchmark.errors import BenchmarkError, DataError
from benchmark.io import atomic_path, sha256_file

if TYPE_CHECKING:
    from benchmark.data.fastmri import LoadOptions

MANIFEST_NAME = "manifest.json"
SPLITS = ("train", "val", "test")
#: The splits training reads; their hash (``trainval_hash``) says which data a checkpoint learned from.
TRAINING_SPLITS = ("train", "val")
#: Version of the embedded builder; a dataset made by another version is refused (its bytes differ).
#: 3: no BLAS/LAPACK in the build (version 2's bytes depended on the CPU's OpenBLAS kernel).
#: 4: test split of 24 subjects x 1 slice (was 12 x 2) with each file's k-space noise level; train/val unchanged.
EMBEDDED_BUILDER_VERSION = "4"


@dataclass(frozen=True)
class FileEntry:
    """One volume file as the manifest lists it (``path`` relative to the dataset root)."""

    path: str
    split: str
    contrast: str
    patient_id: str
    num_slices: int
    size_bytes: int
    sha256: str
    #: Standard deviation of the complex k-space noise (known for simulated data; ``None`` when not recorded).
    noise_sigma: float | None = None


def dataset_hash(entries: list[FileEntry]) -> str:
    """sha256 over ``path:sha256`` lines of all files, sorted by path."""
    lines = sorted(f"{entry.path}:{entry.sha256}" for entry in entries)
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def trainval_hash(entries: list[FileEntry]) -> str:
    """``dataset_hash`` of the train and val files only: equal for two datasets whose test splits differ."""
    return dataset_hash([entry for entry in entries if entry.split in TRAINING_SPLITS])


def entry_for(
    root: Path,
    path: Path,
    split: str,
    contrast: str,
    patient_id: str,
    num_slices: int,
    noise_sigma: float | None = None,
) -> FileEntry:
    """Describe a written file (hashes its bytes)."""
    return FileEntry(
        path=path.relative_to(root).as_posix(),
        split=split,
        contrast=contrast,
        patient_id=patient_id,
        num_slices=num_slices,
        size_bytes=path.stat().st_size,
        sha256=sha256_file(path),
        noise_sigma=noise_sigma,
    )


def write_manifest(root: Path, entries: list[FileEntry], description: dict) -> Path:
    """Write ``manifest.json`` atomically; ``description`` records how the data was made."""
    payload = {
        "dataset_hash": dataset_hash(entries),
        "trainval_hash": trainval_hash(entries),
        "description": description,
        "files": [entry.__dict__ for entry in sorted(entries, key=lambda e: e.path)],
    }
    path = root / MANIFEST_NAME
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")
    return path


def read_manifest(root: str | Path) -> dict:
    """The parsed manifest; a missing or broken one is a one-line ``BenchmarkError``."""
    path = Path(root) / MANIFEST_NAME
    if not path.is_file():
        raise BenchmarkError(_not_a_dataset(Path(root)))
    try:
        payload = json.loads(path.read_text())
        payload["entries"] = [FileEntry(**item) for item in payload["files"]]
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as error:
        raise DataError(path, f"manifest is not valid ({error})") from None
    for entry in payload["entries"]:
        relative = PurePosixPath(entry.path)
        if relative.is_absolute() or ".." in relative.parts or "\\" in entry.path or not relative.parts:
            raise DataError(path, f"lists {entry.path!r}, a path outside the dataset (entries are relative to it)")
    return payload


def _not_a_dataset(root: Path) -> str:
    """Why ``root`` is no dataset; raw ``.h5`` files there get the exact command that converts them first."""
    raw = [root] if root.suffix == ".h5" and root.is_file() else sorted(root.glob("*.h5")) if root.is_dir() else []
    if not raw:
        return f"no dataset at {root} (no {MANIFEST_NAME}); run `python -m benchmark prepare`"
    named = root if root.name not in ("", "..") else root.resolve()
    out = shlex.quote(str(named.parent / f"{named.stem if root.is_file() else named.name}-prepared"))
    command = f"python -m benchmark prepare --from-fastmri {shlex.quote(str(root))} --data {out}"
    found = "is a raw .h5 file" if root.is_file() else f"holds {len(raw)} raw .h5 file(s)"
    return f"{root} {found}, not a prepared dataset (no {MANIFEST_NAME}); run `{command}` first, then use --data {out}"


def _rebuild_hint(root: Path, description: dict) -> str:
    """How to remake a dataset whose files no longer match its manifest (``--force`` would replace a converted
    dataset with the embedded one, so each builder gets its own command)."""
    if description.get("subset"):
        return "link the subset again (`python -m benchmark prepare --coil-subset SOURCE --data NEW_DIR`)"
    quoted = shlex.quote(str(root))
    if description.get("builder") == "embedded":
        return f"rebuild it with `python -m benchmark prepare --data {quoted} --force`"
    return f"convert its files again (`python -m benchmark prepare --from-fastmri SOURCE --data {quoted}`)"


def verify_dataset(root: str | Path, check_hashes: bool = False) -> str:
    """Check every listed file exists with its size (and sha256 if asked); returns the dataset hash."""
    root = Path(root)
    manifest = read_manifest(root)
    description = manifest.get("description", {})
    if description.get("builder") == "embedded" and description.get("builder_version") != EMBEDDED_BUILDER_VERSION:
        raise BenchmarkError(
            f"{root} was built by embedded builder version {description.get('builder_version')}, this suite needs "
            f"version {EMBEDDED_BUILDER_VERSION}: rebuild it with `python -m benchmark prepare --force`"
        )
    hint = _rebuild_hint(root, description)
    for entry in manifest["entries"]:
        path = root / entry.path
        if not path.is_file():
            raise DataError(path, f"listed in {MANIFEST_NAME} but missing; {hint}")
        size = path.stat().st_size
        if size != entry.size_bytes:
            found = f"{size} bytes where it lists {entry.size_bytes}: truncated or modified"
            raise DataError(path, f"differs from the manifest ({found}); {hint}")
        if check_hashes and (digest := sha256_file(path)) != entry.sha256:
            found = f"sha256 {digest[:12]}… where it lists {entry.sha256[:12]}…: modified"
            raise DataError(path, f"differs from the manifest ({found}); {hint}")
    if dataset_hash(manifest["entries"]) != manifest["dataset_hash"]:
        raise DataError(root / MANIFEST_NAME, "dataset_hash does not match the listed files")
    if "trainval_hash" in manifest and trainval_hash(manifest["entries"]) != manifest["trainval_hash"]:
        raise DataError(root / MANIFEST_NAME, "trainval_hash does not match the listed train/val files")
    return manifest["dataset_hash"]


def dataset_files(root: str | Path, split: str, contrasts: tuple[str, ...] | None = None) -> list[Path]:
    """Files of one split (optionally only some contrasts), sorted by path."""
    if split not in SPLITS:
        raise BenchmarkError(f"unknown split {split!r}; known: {', '.join(SPLITS)}")
    entries = read_manifest(root)["entries"]
    known = sorted({entry.contrast for entry in entries})
    for contrast in contrasts or ():
        if contrast not in known:
            raise BenchmarkError(f"unknown contrast {contrast!r}; this dataset has: {', '.join(known)}")
    chosen = [
        Path(root) / entry.path
        for entry in entries
        if entry.split == split and (contrasts is None or entry.contrast in contrasts)
    ]
    return sorted(chosen)


def dataset_description(root: str | Path, load: LoadOptions) -> dict:
    """What a run's tables must say about its data: name, hash, sensitivity-map source, target.

    ``load`` is the run's reading pipeline (the maps are re-estimated by ESPIRiT when coils are compressed).
    """
    manifest = read_manifest(root)
    builder = manifest.get("description", {}).get("builder")
    if builder == "embedded":
        description = manifest["description"]
        styles = [f"{description[key]} {label}" for key, label in (("train_style", "train/val"),
                  ("test_style", "test")) if description.get(key, "realistic") != "realistic"]  # fmt: skip
        name = f"embedded MNI152-derived simulation (builder {description.get('builder_version')}"
        name += "".join(f", {style} heads" for style in styles) + ")"
        maps = "true simulated coil maps"
    elif builder == "fastmri-convert":
        name = f"fastMRI files in {Path(root).name}"
        maps = "ESPIRiT from the fully sampled calibration data (the paper authors' pipeline)"
    else:
        name, maps = f"{Path(root).name} ({builder or 'unknown builder'})", "maps stored in the files"
    subset = manifest.get("description", {}).get("subset")
    if subset and "coils" in subset:
        coils = subset["coils"]
        name += (
            f", coil subset of {subset['source_dataset_hash'][:12]} (train/val {coils['train_and_val_coils']} coils, "
            f"test {coils['test_coils']})"
        )
    elif subset:
        name += f", first file of each split of {subset['source_dataset_hash'][:12]}"
    if load.num_virtual_coils is not None:
        maps = f"ESPIRiT on {load.num_virtual_coils} SVD-compressed virtual coils"
    target = f"{'SENSE coil-combined' if load.target == 'sense' else 'RSS'} magnitude at {load.size[0]}x{load.size[1]}"
    return {
        "name": name,
        "hash": manifest["dataset_hash"],
        "builder": builder,
        "is_fastmri": builder == "fastmri-convert",
        "maps": maps,
        "target": target,
    }
