"""A cached index of what each volume holds, so a training start does not open every file of a large dataset.

``SliceDataset`` validates every file when it is made (``open_fastmri``: layout, dtype, sizes, header). On the
fastMRI brain set that is ~5,800 HDF5 opens per rank per start, slow on a network filesystem. The index keeps
each validated file's ``VolumeInfo`` in ``<dataset>/.volume-index.json``, keyed by the path relative to the
dataset and stamped with the file's size, ``mtime_ns`` and ``ctime_ns`` (taken before it is validated, so a
file replaced meanwhile is not stamped as the one validated); a file whose stamp still matches is taken from
the index, any other is opened and validated again (so a replaced, truncated, or mtime-preserving copy of
another file never slips through: replacing or copying a file sets its ctime, which no user can set). Not the
inode number: FUSE and object-store mounts renumber files per mount, which would revalidate every start. fastMRI's
``SliceDataset`` keeps a comparable pickle (``dataset_cache.pkl``); ours is JSON (nothing executable is loaded)
and written by hand because it must follow this suite's validation, not fastMRI's.

The index is written atomically, only when something changed, and without entries for files no longer there;
a dataset on read-only storage simply goes without it (each start validates every file, as before), and an
index that cannot be read as this version wrote it counts as empty: a cache must never stop a run.
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
#: Bumped when the validation or the stamp changes; ``VolumeInfo``'s fields are part of it, so an index written
#: by another version is ignored.
VOLUME_INDEX_VERSION = "2:" + ",".join(field.name for field in fields(VolumeInfo))


def _stamp(path: Path) -> list[int]:
    status = path.stat()
    return [status.st_size, status.st_mtime_ns, status.st_ctime_ns]


def _read_index(index_path: Path) -> dict:
    try:
        payload = json.loads(index_path.read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(payload, dict) or payload.get("version") != VOLUME_INDEX_VERSION:
        return {}
    volumes = payload.get("volumes")
    return volumes if isinstance(volumes, dict) else {}


def _info_from(record: object, path: Path, stamp: list[int] | None) -> VolumeInfo | None:
    """The indexed ``VolumeInfo`` of ``path`` if ``record`` holds one stamped ``stamp``; else None."""
    if stamp is None or not isinstance(record, dict) or record.get("stamp") != stamp:
        return None
    try:
        values = {field.name: record[field.name] for field in fields(VolumeInfo) if field.name != "path"}
        values["kspace_shape"], values["recon_size"] = tuple(values["kspace_shape"]), tuple(values["recon_size"])
    except (KeyError, TypeError):
        return None  # a record not written by this version: validate the file instead
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
        stamp = _stamp(file) if file.is_file() else None
        info = _info_from(cached.get(key), file, stamp)
        infos.append(info if info is not None else _validated(file))
        fresh[key] = _record(infos[-1], stamp)
    kept = {key: record for key, record in cached.items() if key in fresh or (Path(root) / key).is_file()}
    if fresh != {key: cached.get(key) for key in fresh} or len(kept) < len(cached):
        _write_index(index_path, kept | fresh)
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
