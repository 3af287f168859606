"""What code a run's numbers come from: a hash of the harness's source and of each method's.

A run records ``code_hash`` — sha256 over the ``.py`` files of the ``benchmark`` package and, per method, of its
package under ``methods/`` and every ``methods.*`` package it imports (a method registered from another
distribution: its top-level package or module) — so a run resumed after a method or the harness was edited is
refused instead of mixing rows of two code versions under one configuration hash.
"""

from __future__ import annotations

import hashlib
import importlib.util
import re
from functools import cache
from pathlib import Path

from benchmark.registry import registered_methods

HARNESS = "benchmark"
_IMPORTS = re.compile(r"^\s*(?:from|import)\s+methods\.(\w+)", re.MULTILINE)


def package_folder(package: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ValueError(f"{package} is not an importable package")
    return Path(next(iter(spec.submodule_search_locations)))


@cache
def _files_hash(package: str) -> str:
    spec = importlib.util.find_spec(package)
    if spec is not None and not spec.submodule_search_locations and spec.origin:  # a one-file plugin module
        folder, files = Path(spec.origin).parent, [Path(spec.origin)]
    else:
        folder = package_folder(package)
        files = sorted(folder.rglob("*.py"))
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.relative_to(folder).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def method_packages(name: str) -> list[str]:
    """The packages a registered method's code comes from, sorted: its own ``methods.*`` package and those it
    imports, or, for a method registered from outside this repository, its top-level package."""
    module = registered_methods()[name].split(":")[0]
    if not module.startswith("methods."):
        return [module.split(".")[0]]
    own = module.split(".")[1]
    found, pending = set(), [own]
    while pending:
        package = pending.pop()
        if package in found:
            continue
        found.add(package)
        for path in package_folder(f"methods.{package}").rglob("*.py"):
            pending += _IMPORTS.findall(path.read_text(encoding="utf-8"))
    return sorted(f"methods.{package}" for package in found)


def code_hash(methods: tuple[str, ...] | list[str]) -> dict[str, str]:
    """``{"benchmark": …, method: …}``: 16-hex-digit source hashes of the harness and of each method."""
    hashes = {HARNESS: _files_hash(HARNESS)[:16]}
    for name in methods:
        parts = "".join(_files_hash(package) for package in method_packages(name))
        hashes[name] = hashlib.sha256(parts.encode()).hexdigest()[:16]
    return hashes
