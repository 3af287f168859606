"""The record a fastMRI conversion keeps per volume, so conversions scale out and resume.

Each converted volume is written straight to its final place (atomically), then its manifest entry goes to a
fragment, ``<root>/.fragments/<split>/<name>.json``, with what it was made from: the source's size and mtime and
the hash of the conversion options (maps included). A rerun skips a volume whose fragment still matches its
source and options; processes converting different shards into one root never write the same file; a file
rejected under ``--on-error skip`` leaves a ``<name>.reject.json`` with its one-line reason instead.
``finalize`` assembles ``manifest.json`` (and ``rejects.json``) from every fragment, merged with an existing
manifest's entries, once every shard is done.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path

from benchmark.data.fastmri import LoadOptions
from benchmark.data.manifest import MANIFEST_NAME, FileEntry, read_manifest, write_manifest
from benchmark.data.ownership import check_replaceable
from benchmark.errors import BenchmarkError
from benchmark.io import atomic_path

FRAGMENTS = ".fragments"
REJECTS_NAME = "rejects.json"
#: ``atomic_path``'s temporary names: what a killed writer leaves behind (removed by ``finalize``).
_LEFTOVER = re.compile(r"^\..+\.tmp$")


def conversion_options(options: LoadOptions, pad: bool, espirit_device: str = "cpu") -> dict:
    """What decides a converted file's bytes besides its source, with its hash: the load options (map settings
    included; normalisation is applied at read time, not stored), zero-padding, and, for maps made on a GPU,
    the device type (its eigensolver rounds differently). A CPU conversion's record has no device key, so it is
    the record of a conversion begun before the GPU option existed, whose finished volumes then still count."""
    device_type = espirit_device.split(":")[0]
    record = options.as_record() | {"normalization": None, "pad": pad}
    record |= {} if device_type == "cpu" else {"espirit_device": device_type}
    digest = hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()[:16]
    return record | {"hash": digest}


def source_record(source: Path) -> dict:
    stat = source.stat()
    return {"name": source.name, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def fragment_path(root: Path, split: str, name: str, reject: bool = False) -> Path:
    return root / FRAGMENTS / split / (f"{name}.reject.json" if reject else f"{name}.json")


def write_fragment(root: Path, split: str, entry: FileEntry, source: Path, options: dict, padded: bool) -> None:
    """``options``: the conversion's options record (``conversion_options``)."""
    record = {"entry": entry.__dict__, "source": source_record(source), "options": options, "padded": padded}
    with atomic_path(fragment_path(root, split, source.name)) as tmp:
        tmp.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    fragment_path(root, split, source.name, reject=True).unlink(missing_ok=True)


def write_reject(root: Path, split: str, source: Path, reason: str) -> None:
    with atomic_path(fragment_path(root, split, source.name, reject=True)) as tmp:
        tmp.write_text(json.dumps({"source": str(source), "split": split, "reason": reason}, indent=2) + "\n")


def is_done(root: Path, split: str, source: Path, options: dict) -> bool:
    """Whether ``source`` was converted into ``root/split`` with these options and has not changed since."""
    path = fragment_path(root, split, source.name)
    if not path.is_file():
        return False
    record = json.loads(path.read_text())
    target = root / record["entry"]["path"]
    return (
        record["options"]["hash"] == options["hash"]
        and record["source"] == source_record(source)
        and target.is_file()
        and target.stat().st_size == record["entry"]["size_bytes"]
    )


def _records(root: Path, rejects: bool = False) -> list[dict]:
    """The fragments (or the rejects) under ``root``, in path order."""
    paths = sorted((root / FRAGMENTS).glob("*/*.json"))
    return [json.loads(path.read_text()) for path in paths if path.name.endswith(".reject.json") == rejects]


def check_conversion_root(root: Path, targets: set[str]) -> None:
    """A conversion writes into ``root`` only if it is absent or empty, a converted dataset, or an unfinished
    conversion (fragments, no manifest yet), holding no file that neither a record lists nor this conversion
    (``targets``: the relative paths of every source's output, so concurrent shards accept each other's) writes."""
    recorded = {record["entry"]["path"] for record in _records(root)}
    ours = recorded | targets | {REJECTS_NAME}
    if (root / MANIFEST_NAME).exists() or not (root / FRAGMENTS).is_dir():
        check_replaceable(root, "fastmri-convert", also_listed=ours, ignore=_is_ours)
        return
    unlisted = sorted(
        path.relative_to(root).as_posix()
        for path in root.rglob("*")
        if path.is_file() and not _is_ours(path, root) and path.relative_to(root).as_posix() not in ours
    )
    if unlisted:
        shown = ", ".join(unlisted[:3])
        raise BenchmarkError(f"{root} holds an unfinished conversion and files it does not list ({shown}); "
                             "refusing to write into it: move them out first")  # fmt: skip


def _is_ours(path: Path, root: Path) -> bool:
    """A fragment, or a temporary file a killed writer left."""
    return path.relative_to(root).parts[0] == FRAGMENTS or bool(_LEFTOVER.match(path.name))


def finalize(root: Path) -> tuple[Path, list[dict]]:
    """Write ``manifest.json`` from every fragment (merged with the existing manifest's entries; a fragment
    replaces the entry of the same path) and ``rejects.json`` (or remove a stale one); returns the manifest's
    path and the rejects. Refused while fragments disagree on the options their files were converted with."""
    fragments, rejects = _records(root), _records(root, rejects=True)
    if not fragments and not (root / MANIFEST_NAME).exists():
        raise BenchmarkError(f"{root} holds no converted volume to finalize")
    existing = read_manifest(root) if (root / MANIFEST_NAME).exists() else {"entries": [], "description": {}}
    options = {r["options"]["hash"]: r["options"] for r in fragments}
    kept = {entry.path for entry in existing["entries"]} - {r["entry"]["path"] for r in fragments}
    earlier = existing["description"].get("options")
    if kept and earlier:  # entries no fragment replaces keep the options they were converted with
        options |= {earlier.get("hash", "unrecorded"): earlier}
    if len(options) > 1:
        hashes = sorted(options)
        raise BenchmarkError(f"{root} holds volumes converted with different options ({', '.join(hashes)}); "
                             "reconvert them with the same options (--force) before finalizing")  # fmt: skip
    entries = {entry.path: entry for entry in existing["entries"]}
    entries |= {record["entry"]["path"]: FileEntry(**record["entry"]) for record in fragments}
    description = existing["description"] | {"builder": "fastmri-convert"}
    description |= {"options": next(iter(options.values()))} if options else {}
    description["padded_files"] = sorted(r["entry"]["path"] for r in fragments if r["padded"])
    for path in root.rglob(".*.tmp"):
        path.unlink(missing_ok=True)  # every writer is done: what is left was killed
    manifest = write_manifest(root, list(entries.values()), description)
    if rejects:
        with atomic_path(root / REJECTS_NAME) as tmp:
            tmp.write_text(json.dumps(rejects, indent=2) + "\n")
    else:
        (root / REJECTS_NAME).unlink(missing_ok=True)
    return manifest, rejects


def shard_of_environment() -> tuple[int, int]:
    """``(rank, world)`` of a ``torchrun`` launch (``(0, 1)`` otherwise): the shard a process converts."""
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))
