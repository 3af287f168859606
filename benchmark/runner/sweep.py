"""Acceleration sweeps: the same grid at several R of the nested ladder, one ordinary run per R.

``run --acceleration 4,8,16,32`` writes ``OUT/sweep.json`` and one complete run directory per R
(``OUT/R4``, ``OUT/R8``, ...), each resumable on its own. Masks are nested by construction, so as R grows
every method sees a subset of the same samples. Checkpoints trained at R = 32 scored at another R go through
the run's explicit ``--allow-mismatch`` override; each sub-run records the mismatch and every table and legend
marks those methods "trained at R = 32".
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pandas as pd

from benchmark.errors import BenchmarkError
from benchmark.io import atomic_path
from benchmark.masks import HIERARCHY_ACCELERATIONS
from benchmark.runner.config import RunConfig
from benchmark.runner.run import run_benchmark
from benchmark.runner.shard import current_shard

SWEEP_FILE = "sweep.json"


def run_directory(out: Path, acceleration: int) -> Path:
    return Path(out) / f"R{acceleration}"


def check_accelerations(accelerations: tuple[int, ...]) -> tuple[int, ...]:
    unknown = [r for r in accelerations if r not in HIERARCHY_ACCELERATIONS]
    if unknown or not accelerations:
        ladder = ", ".join(map(str, sorted(HIERARCHY_ACCELERATIONS)))
        raise BenchmarkError(f"--acceleration must be values of the nested ladder ({ladder}), got {unknown}")
    return tuple(sorted(set(accelerations)))


def run_sweep(config: RunConfig, accelerations: tuple[int, ...], resume: bool = False) -> dict[int, pd.DataFrame]:
    """Run ``config`` at every R; returns each R's per-image table."""
    accelerations = check_accelerations(accelerations)
    record = {"accelerations": list(accelerations), "runs": {str(r): f"R{r}" for r in accelerations}}
    shard = current_shard()
    shard.leader_first(lambda: _start_sweep(config.out, record, resume))
    tables = {}
    for acceleration in accelerations:
        sub = replace(config, acceleration=acceleration, out=run_directory(config.out, acceleration))
        if shard.leader:
            print(f"R = {acceleration}: {sub.out}")
        tables[acceleration] = run_benchmark(sub, resume=resume)
    return tables


def _start_sweep(out: Path, record: dict, resume: bool) -> None:
    """Write the sweep's record, or check that the one in ``out`` is this sweep's when resuming."""
    path = Path(out) / SWEEP_FILE
    if path.exists():
        if not resume:
            raise BenchmarkError(f"{out} already holds a sweep; pass --resume to continue it or choose another --out")
        if json.loads(path.read_text()) != record:
            raise BenchmarkError(f"{out} holds a sweep over other accelerations; choose another --out")
    else:
        if Path(out).exists() and any(Path(out).iterdir()):
            raise BenchmarkError(f"{out} is not empty and holds no sweep; choose another --out")
        with atomic_path(path) as tmp:
            tmp.write_text(json.dumps(record, indent=2) + "\n")


def read_sweep(out: str | Path) -> dict[int, Path]:
    """R -> run directory of a sweep; a one-line error when ``out`` holds none."""
    path = Path(out) / SWEEP_FILE
    if not path.is_file():
        raise BenchmarkError(f"{out} is not a sweep directory (no {SWEEP_FILE})")
    record = json.loads(path.read_text())
    return {int(r): Path(out) / name for r, name in record["runs"].items()}


def is_sweep(out: str | Path) -> bool:
    return (Path(out) / SWEEP_FILE).is_file()
