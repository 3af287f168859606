"""A cached index of what each volume holds, so a training start does not open every file of a large dataset.

``SliceDataset`` validates every file when it is made (``open_fastmri``: layout, dtype, sizes, header). On the
fastMRI brain set that is ~5,800 HDF5 opens per rank per start, slow on a network filesystem. The index keeps
each validated file's ``VolumeInfo`` in ``<dataset>/.volume-index.json``, keyed by the path relative to the
dataset and stamped with the file's size and ``mtime_ns``; a file whose stamp still matches is taken from the
index, any other is opened and validated again (so a replaced or truncated file never slips through). fastMRI's
``SliceDataset`` keeps a comparable pickle (``dataset_cache.pkl``); ours is JSON (nothing executable is loaded)
and written by hand because it must follow this suite's validation, not fastMRI's.

The index is written atomically, and only when something changed; a dataset on read-only storage simply goes
without it (each start validates every file, as before), since a cache must never stop a run.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import asdict, fields
from pathlib import Path

from benchmark.data.fastmri import VolumeInfo, open_fastmri
from benchmark.io import atomic_path

VOLUME_INDEX_NAME = ".volume-index.json"
#: Bumped when ``VolumeInfo`` or the validation changes, so an index written by another version is ignored.
VOLUME_INDEX_VERSION = 1


def _stamp(path: Path) -> list[int]:
    status = path.stat()
    return [status.st_size, status.st_mtime_ns]


def _read_index(index_path: Path) -> dict:
    try:
        payload = json.loads(index_path.read_text())
    except (OSError, ValueError):
        return {}
    return payload.get("volumes", {}) if payload.get("version") == VOLUME_INDEX_VERSION else {}


def _info_from(record: dict, path: Path) -> VolumeInfo:
    values = {field.name: record[field.name] for field in fields(VolumeInfo) if field.name != "path"}
    values["kspace_shape"], values["recon_size"] = tuple(values["kspace_shape"]), tuple(values["recon_size"])
    return VolumeInfo(path=path, **values)


def volume_infos(files: Sequence[str | Path], root: str | Path | None = None) -> list[VolumeInfo]:
    """The validated ``VolumeInfo`` of every file, in order; with ``root`` (the dataset folder holding them)
    through the index there, else each file opened and validated."""
    if root is None:
        return [_validated(Path(file)) for file in files]
    index_path = Path(root) / VOLUME_INDEX_NAME
    cached = _read_index(index_path)
    infos, fresh = [], {}
    for file in map(Path, files):
        key = os.path.relpath(file, root)
        stamp, record = _stamp(file) if file.is_file() else None, cached.get(key)
        if record is not None and stamp is not None and record["stamp"] == stamp:
            infos.append(_info_from(record, file))
        else:
            infos.append(_validated(file))
            stamp = _stamp(file)
        fresh[key] = _record(infos[-1], stamp)
    if fresh != {key: cached.get(key) for key in fresh}:
        _write_index(index_path, cached | fresh)
    return infos


def _record(info: VolumeInfo, stamp: list[int]) -> dict:
    """What the index stores for ``info``, as JSON reads it back (tuples as lists), so records compare equal."""
    return json.loads(json.dumps({"stamp": stamp} | {k: v for k, v in asdict(info).items() if k != "path"}))


def _validated(path: Path) -> VolumeInfo:
    with open_fastmri(path) as (_, info):
        return info


def _write_index(index_path: Path, volumes: dict) -> None:
    payload = {"version": VOLUME_INDEX_VERSION, "volumes": dict(sorted(volumes.items()))}
    try:
        with atomic_path(index_path) as tmp:
            tmp.write_text(json.dumps(payload, indent=1) + "\n")
    except OSError:
        pass  # read-only dataset: every start validates each file instead (see the module docstring)
