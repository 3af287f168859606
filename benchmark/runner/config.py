"""A run's configuration: everything that determines its numbers, hashed so runs compare or refuse."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from benchmark.data.fastmri import LoadOptions


@dataclass(frozen=True)
class RunConfig:
    methods: tuple[str, ...]
    masks: tuple[str, ...]
    contrasts: tuple[str, ...]
    data: Path
    out: Path
    acceleration: int = 32
    split: str = "test"
    profile: str = "tiny"
    device: str = "cpu"
    batch_size: int = 8
    seed: int = 0
    load: LoadOptions = field(default_factory=LoadOptions)

    def record(self) -> dict:
        """Plain values; ``out`` is left out (moving a run directory does not change its numbers)."""
        record = asdict(self)
        record.pop("out")
        record["data"] = str(self.data)
        return record

    def config_hash(self) -> str:
        # The data location is not part of the identity; the data's hash (recorded separately) is.
        record = {k: v for k, v in self.record().items() if k != "data"}
        return hashlib.sha256(json.dumps(record, sort_keys=True, default=list).encode()).hexdigest()[:16]
