"""Never delete what the suite did not make: which dataset folders may be replaced, and replacing them safely.

A folder is replaced only if it is empty, or if its own manifest says this suite built it with the same builder
and it holds nothing the manifest does not list. The new dataset is built in a fresh staging folder beside it
(``tempfile.mkdtemp``: never a name a user's folder could have), moved in, and only then is the old one removed.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from benchmark.data.manifest import MANIFEST_NAME, read_manifest
from benchmark.data.volume_index import VOLUME_INDEX_NAME
from benchmark.errors import BenchmarkError, DataError

#: Files a dataset folder holds besides its volumes.
DATASET_EXTRAS = (MANIFEST_NAME, "DATASET.md", VOLUME_INDEX_NAME)
BUILDER_NAMES = {
    "embedded": "an embedded dataset",
    "fastmri-convert": "a dataset converted from fastMRI files",
    "lesion": "a lesion split (benchmark audit)",
}


def check_replaceable(
    root: Path, builder: str, also_listed: set[str] = frozenset(), ignore: Callable[[Path, Path], bool] | None = None
) -> None:
    """Raise unless ``root`` is absent, empty, or a dataset this suite built with ``builder`` and nothing else
    (besides the relative paths ``also_listed`` and the files ``ignore(path, root)`` accepts)."""
    if not root.exists():
        return
    if not root.is_dir():
        raise BenchmarkError(f"{root} is a file, not a dataset folder; choose another --data")
    if not any(root.iterdir()):
        return
    if not (root / MANIFEST_NAME).is_file():
        raise BenchmarkError(
            f"{root} holds files that are not a dataset this suite built (no {MANIFEST_NAME}); refusing to replace "
            "it: choose another --data, or empty it yourself"
        )
    try:
        manifest = read_manifest(root)
    except DataError:
        raise BenchmarkError(
            f"{root} holds a {MANIFEST_NAME} this suite cannot read; refusing to replace it: choose another --data"
        ) from None
    description = manifest.get("description", {})
    found = "subset" if description.get("subset") else description.get("builder")
    if found != builder:
        what = "a coil subset" if found == "subset" else BUILDER_NAMES.get(found, f"a dataset of builder {found!r}")
        raise BenchmarkError(
            f"{root} holds {what}, not {BUILDER_NAMES[builder]}; refusing to replace it: choose another --data"
        )
    # A lesion split's sidecars (never read by a method) are listed in its description, not as volumes.
    listed = {entry.path for entry in manifest["entries"]} | set(DATASET_EXTRAS) | set(description.get("sidecars", []))
    listed |= also_listed
    unlisted = sorted(
        path.relative_to(root).as_posix()
        for path in root.rglob("*")
        if path.is_file() and path.relative_to(root).as_posix() not in listed and not (ignore and ignore(path, root))
    )
    if unlisted:
        raise BenchmarkError(
            f"{root} also holds files its manifest does not list ({', '.join(unlisted[:3])}); refusing to replace "
            "it: move them out first"
        )


def staging_folder(root: Path, purpose: str) -> Path:
    """A new, empty folder beside ``root`` for building what will replace it."""
    root.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{root.name}.", suffix=f".{purpose}", dir=root.parent))


def move_into_place(staged: Path, root: Path) -> None:
    """Put ``staged`` at ``root``; an old ``root`` (already checked replaceable) is removed only afterwards."""
    if not root.exists():
        os.replace(staged, root)
        return
    retired = Path(tempfile.mkdtemp(prefix=f".{root.name}.", suffix=".replaced", dir=root.parent))
    os.replace(root, retired / "old")
    os.replace(staged, root)
    shutil.rmtree(retired)
