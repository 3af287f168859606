"""Checkpoints: one file with everything a resume needs, written atomically, read with ``weights_only``.

Contents: format version, method, profile, the method's config and the training config as plain
values, the training setting (image size, R, normalisation) a run must match, model and EMA state,
optimizer and scheduler state, step, best validation score and RNG state. Loading refuses a file for
another method, another format or a different config (so a checkpoint can never silently run with the
wrong architecture), and a file that is not a checkpoint.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import re
from pathlib import Path

import torch

from benchmark.errors import BenchmarkError
from benchmark.io import atomic_path, sha256_file
from benchmark.shipped import CHECKPOINTS, shipped_root

#: 2: adds ``training_setting``; trained under measurement-based normalisation.
FORMAT_VERSION = 2
#: The shipped checkpoints: ``$MRIBENCH_CHECKPOINTS`` if set, else ``results/checkpoints`` of the source tree this
#: package runs from (the README's editable install), else the copy a wheel carries (``benchmark.shipped``).
CHECKPOINT_ROOT = Path(
    os.environ.get("MRIBENCH_CHECKPOINTS") or shipped_root() / CHECKPOINTS
).resolve()  # resolved: the manifest check compares resolved paths against it
MANIFEST = CHECKPOINT_ROOT / "manifest.json"


def save_checkpoint(path: str | Path, payload: dict) -> Path:
    """Write ``payload`` (plus the format version and a digest of its weights) atomically."""
    digest = weights_digest(payload)
    with atomic_path(path) as tmp:
        torch.save({"format_version": FORMAT_VERSION, **payload, "weights_sha256": digest}, tmp)
    return Path(path)


def weights_digest(payload: dict) -> str:
    """sha256 over the names and bytes of the model, EMA and extra networks' tensors.

    torch's zip reader does not check the data it reads, so a flipped byte inside a tensor would load
    silently; this digest makes any change to the weights an error.
    """
    digest = hashlib.sha256()
    parts = {"model": payload.get("model"), "ema": payload.get("ema")}
    parts |= {f"modules.{key}": state for key, state in sorted((payload.get("modules") or {}).items())}
    for part, state in parts.items():
        for name, tensor in sorted((state or {}).items()):
            digest.update(f"{part}.{name}".encode())
            # reshape(-1): a 0-d tensor (a measured scale) cannot be viewed as bytes; same bytes otherwise.
            digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def load_checkpoint(path: str | Path, method: str, config: dict | None = None) -> dict:
    """Read a checkpoint for ``method``; ``config`` (plain values) must match the stored one if given."""
    path = Path(path)
    if not path.is_file():
        raise BenchmarkError(f"checkpoint {path} not found")
    _verify_manifest(path)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - any unpickling failure means "not a usable checkpoint"
        raise BenchmarkError(_unreadable(path, error)) from None
    if not isinstance(payload, dict) or payload.get("format_version") != FORMAT_VERSION:
        found = payload.get("format_version") if isinstance(payload, dict) else "?"
        raise BenchmarkError(f"{path}: checkpoint format {found}, expected {FORMAT_VERSION}")
    if payload.get("weights_sha256") != weights_digest(payload):
        raise BenchmarkError(f"{path}: its weights do not match their recorded digest (modified or corrupt)")
    if payload.get("method") != method:
        raise BenchmarkError(f"{path} is a checkpoint of {payload.get('method')!r}, not {method!r}")
    if config is not None and plain_values(payload.get("config")) != plain_values(config):
        stored = payload.get("config") or {}
        diff = sorted(
            k for k in set(stored) | set(config) if plain_values(stored.get(k)) != plain_values(config.get(k))
        )
        raise BenchmarkError(f"{path} was trained with a different {method} config (differs in: {', '.join(diff)})")
    return payload


def load_weights(module: torch.nn.Module, state, path: Path, what: str) -> None:
    """``module.load_state_dict(state)``; weights that do not fit (a missing or extra key, another tensor shape)
    are the usual one-line checkpoint error, not a traceback."""
    if not isinstance(state, dict):
        raise BenchmarkError(f"{path}: holds no {what} weights")
    try:
        module.load_state_dict(state)
    except RuntimeError as error:
        problem = re.sub(r"^Error\(s\) in loading state_dict for \w+:\s*", "", " ".join(str(error).split()))
        problem = re.sub(r"torch\.Size\((\[[^\]]*\])\)", r"\1", problem)
        first = problem.split(". ")[0].rstrip(".")
        raise BenchmarkError(f"{path}: its {what} weights do not fit ({first[:200]})") from None


def _unreadable(path: Path, error: Exception) -> str:
    """Why ``torch.load(weights_only=True)`` refused ``path``; a pickled object is named, never run."""
    found = re.search(r"Unsupported global: GLOBAL (\S+)", str(error))
    if isinstance(error, pickle.UnpicklingError) and found:
        return (
            f"{path} holds a pickled Python object ({found[1]}), which torch.load(weights_only=True) refuses to run; "
            "a checkpoint holds only tensors and plain values"
        )
    return f"{path} is not a readable checkpoint ({type(error).__name__})"


def plain_values(value):
    """Tuples and lists compare equal (JSON and torch.save round-trip tuples differently)."""
    if isinstance(value, dict):
        return {k: plain_values(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain_values(v) for v in value]
    return value


def _verify_manifest(path: Path) -> None:
    """A shipped checkpoint must still have the sha256 its manifest records (catches tampering)."""
    if not MANIFEST.is_file():
        return
    entries = json.loads(MANIFEST.read_text())
    try:
        key = path.resolve().relative_to(CHECKPOINT_ROOT).as_posix()
    except ValueError:
        return  # not a shipped checkpoint
    if key in entries and sha256_file(path) != entries[key]["sha256"]:
        raise BenchmarkError(f"{path} does not match the sha256 in {MANIFEST.name} (modified or corrupt)")


def checkpoint_reference(path: Path) -> dict:
    """A parent checkpoint as a child's provenance records it: its path relative to the checkpoint root when it
    is a shipped one (the same on every machine), else as given, and its sha256 (what identifies it)."""
    try:
        shown = Path(path).resolve().relative_to(CHECKPOINT_ROOT).as_posix()
    except ValueError:
        shown = str(path)
    return {"path": shown, "sha256": sha256_file(path)}


def record_shipped(
    path: Path, command: str, data_hash: str, git_commit: str, trainval_hash: str | None = None,
    training: dict | None = None,
) -> None:  # fmt: skip
    """Add or update a shipped checkpoint's manifest entry (``trainval_hash``: the hash of the train/val files it
    learned from, which stays checkable when a dataset's test split changes; ``training``: slices seen, wall
    time, best and last step, capacity check)."""
    entries = json.loads(MANIFEST.read_text()) if MANIFEST.is_file() else {}
    key = path.resolve().relative_to(CHECKPOINT_ROOT).as_posix()
    entries[key] = {"sha256": sha256_file(path), "command": command, "data_hash": data_hash, "git_commit": git_commit}
    if trainval_hash is not None:
        entries[key]["trainval_hash"] = trainval_hash
    if training is not None:
        entries[key]["training"] = training
    with atomic_path(MANIFEST) as tmp:
        tmp.write_text(json.dumps(entries, indent=2, sort_keys=True) + "\n")
