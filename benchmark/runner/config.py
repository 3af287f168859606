"""A run's configuration: everything that determines its numbers, hashed so runs compare or refuse."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from benchmark.data.fastmri import LoadOptions

#: Slices per reconstruct call when ``--batch-size`` is not given: 8 on a GPU; 2 on a CPU, where larger batches
#: cost more per image (``benchmark perf --batch 1,2,4,8`` on 2 cores: RecurrentVarNet 0.16 s/image at 2, 0.63 at 8;
#: E2E-VarNet 0.37 vs 0.51; NASP 0.21 vs 0.30).
DEFAULT_BATCH = {"cuda": 8, "cpu": 2}


def default_batch_size(device_type: str) -> int:
    """The run's batch size on a device of this type when none is asked for."""
    return DEFAULT_BATCH.get(device_type, DEFAULT_BATCH["cpu"])


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
    #: ``(method, path)`` pairs: score these checkpoints instead of the shipped ones.
    checkpoints: tuple[tuple[str, Path], ...] = ()
    #: Score checkpoints trained at another size, R or normalisation (recorded; rows are marked).
    allow_mismatch: bool = False
    #: ``(method, field, count)``: sampler counts lowered for a quick check (``run --sampler``, ``smoke``).
    sampler: tuple[tuple[str, str, int], ...] = ()

    def record(self) -> dict:
        """Plain values; ``out`` is left out (moving a run directory does not change its numbers)."""
        record = asdict(self)
        record.pop("out")
        record["data"] = str(self.data)
        record["checkpoints"] = {method: str(path) for method, path in self.checkpoints}
        del record["sampler"]
        if self.sampler:  # recorded only when lowered: a run on the methods' own samplers keeps its identity
            record["sampler"] = {m: {f: n for name, f, n in self.sampler if name == m} for m, _, _ in self.sampler}
        return record

    def config_hash(
        self, checkpoint_sha256: dict[str, str | None], data_hash: str | None = None, code: dict | None = None
    ) -> str:
        """Hash of everything that determines the numbers: the configuration, which weights each method loads,
        the data's hash and the code's (``benchmark.runner.identity``).

        The data location and checkpoint paths are not part of the identity; the data's hash and each
        checkpoint's sha256 are.
        """
        record = {k: v for k, v in self.record().items() if k not in ("data", "checkpoints")}
        record["checkpoint_sha256"] = {name: checkpoint_sha256.get(name) for name in self.methods}
        if data_hash is not None:
            record["data_hash"] = data_hash
        if code is not None:
            record["code"] = code
        return hashlib.sha256(json.dumps(record, sort_keys=True, default=list).encode()).hexdigest()[:16]
