"""Seeds derived from names, so every draw depends on what it is for and never on run order."""

from __future__ import annotations

import hashlib


def derive_seed(*parts: object) -> int:
    """A 32-bit seed from the sha256 of ``"part1:part2:..."`` (stable across runs, machines, ranks)."""
    key = ":".join(str(part) for part in parts).encode()
    return int.from_bytes(hashlib.sha256(key).digest()[:4], "little")
