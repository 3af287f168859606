"""A run's record (``run.json``): its identity and context as one typed value, written and read in one place.

The file format is unchanged (the same keys, JSON); older runs without ``volumes``, ``code_hash``, ``dataset`` or
``setting_mismatches`` still read (those fields are then empty), and a file without the keys every run of this
suite writes (``REQUIRED``) is not a run of this suite.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from benchmark.errors import BenchmarkError
from benchmark.io import atomic_path

RUN_FILE = "run.json"


@dataclass
class RunRecord:
    config: dict  # RunConfig.record()
    config_hash: str
    data_hash: str
    methods: dict[str, dict]  # name -> Method.describe()
    metrics: dict[str, dict]  # name -> Metric.describe()
    code_hash: dict[str, str] = field(default_factory=dict)
    dataset: dict | None = None  # the data's description (name, maps, target, hash)
    normalization: str | None = None
    setting_mismatches: dict[str, str] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    git_commit: str = ""
    device: str = ""
    started: str = ""
    #: The grid's volumes (file, contrast, num_slices); ``None`` for runs from before it was recorded.
    volumes: list[dict] | None = None

    def slices_per_volume(self) -> dict[str, int]:
        return {item["file"]: int(item["num_slices"]) for item in self.volumes or ()}

    def available_metrics(self) -> list[str]:
        """The metrics a finished unit has a value for."""
        return [name for name, info in self.metrics.items() if info.get("available")]

    def unavailable_metrics(self) -> dict[str, str]:
        """Metric -> why it could not be computed (e.g. missing weights)."""
        return {name: info["reason"] for name, info in self.metrics.items() if not info["available"]}

    def write(self, run_dir: Path) -> None:
        with atomic_path(run_dir / RUN_FILE) as tmp:
            tmp.write_text(json.dumps(asdict(self), indent=2, sort_keys=True, default=str) + "\n")

    @classmethod
    def read(cls, run_dir: str | Path) -> RunRecord:
        """A run's ``run.json``; a file this suite did not write, or cannot parse, is a one-line error."""
        path = Path(run_dir) / RUN_FILE
        try:
            stored = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise BenchmarkError(f"{path}: corrupt ({_first_line(error)})") from None
        missing = [key for key in REQUIRED if not isinstance(stored, dict) or key not in stored]
        if missing:
            raise BenchmarkError(f"{path}: not a run of this suite (no {', '.join(missing)})")
        known = {item.name for item in fields(cls)}
        return cls(**{key: value for key, value in stored.items() if key in known and value is not None})


#: What every run.json this suite writes holds.
REQUIRED = ("config", "config_hash", "data_hash", "methods", "metrics")


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__
