"""Method registry: names map to ``"module:Class"`` strings, imported only when a method is asked for.

The harness never imports a method's internals: it asks the registry for a class, checks it is a
``Method``, and talks to it through that interface only. An unknown name fails with one line naming
the known methods and the closest match.
"""

from __future__ import annotations

import difflib
import importlib

from benchmark.errors import InputError
from benchmark.method import Method

METHODS: dict[str, str] = {
    "zero_filled": "methods.zero_filled.adapter:ZeroFilled",
    "cs_wavelet": "methods.cs_wavelet.adapter:CSWavelet",
    "unet": "methods.unet.adapter:UNet",
    "e2evarnet": "methods.e2evarnet.adapter:E2EVarNet",
    "recurrentvarnet": "methods.recurrentvarnet.adapter:RecurrentVarNet",
}


def known_methods() -> list[str]:
    return sorted(METHODS)


def check_method_name(name: str) -> str:
    """Return ``name`` if registered; otherwise raise with the closest match and the known names."""
    if name not in METHODS:
        close = difflib.get_close_matches(name, METHODS, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise InputError(f"unknown method {name!r}{hint}; known: {', '.join(known_methods())}")
    return name


def get_method_class(name: str) -> type[Method]:
    """Import and return the method class registered as ``name``."""
    module_name, class_name = METHODS[check_method_name(name)].split(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    if not (isinstance(cls, type) and issubclass(cls, Method)) or cls.name != name:
        raise TypeError(f"registry entry {name!r} -> {METHODS[name]} is not a Method named {name!r}")
    return cls


def describe_methods() -> list[dict]:
    """Every registered method: name, kind, profiles and, for learned ones, each profile's shipped
    checkpoint as a sha256 prefix (``None`` when absent)."""
    from benchmark.io import sha256_file
    from benchmark.method import LearnedMethod
    from benchmark.training.checkpoint import CHECKPOINT_ROOT

    rows = []
    for name in known_methods():
        cls = get_method_class(name)
        learned = issubclass(cls, LearnedMethod)
        checkpoints = {}
        for profile in cls.configs if learned else ():
            path = CHECKPOINT_ROOT / name / f"{profile}.pt"
            checkpoints[profile] = sha256_file(path)[:12] if path.is_file() else None
        kind = "learned" if learned else "classical"
        rows.append({"name": name, "kind": kind, "profiles": list(cls.configs), "checkpoints": checkpoints})
    return rows
