"""Drift check: compare a run's per-(method, mask, contrast) metric means with a stored baseline.

A baseline is JSON: ``means`` maps ``method|mask|contrast|metric`` to a value (``"inf"`` for +∞,
``null`` for an unavailable metric), ``tolerances`` maps a metric to the largest absolute change
allowed. Runtime is never compared (it measures the machine, not the method).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd

from benchmark.errors import BenchmarkError
from benchmark.io import atomic_path

IDENTITY = ["method", "mask", "contrast"]
#: Largest absolute change allowed per metric unless the baseline says otherwise.
DEFAULT_TOLERANCES = {
    "psnr_fastmri": 0.05,
    "psnr_paper": 0.05,
    "ssim_fastmri": 0.002,
    "ssim_paper": 0.002,
    "psnr_fastmri_head": 0.05,
    "psnr_paper_head": 0.05,
    "ssim_fastmri_head": 0.002,
    "ssim_paper_head": 0.002,
    "nmse_fastmri": 0.001,
    "nmse_paper": 0.001,
    "lpips_alex": 0.002,
    "lpips_vgg": 0.002,
    "dists": 0.002,
    "stlpips_alex": 0.002,
}


def metric_means(table: pd.DataFrame) -> dict[str, float]:
    """``method|mask|contrast|metric`` -> mean over that group's images, for every compared metric."""
    metrics = [m for m in DEFAULT_TOLERANCES if m in table.columns]
    grouped = table.groupby(IDENTITY, sort=True)[metrics].mean()
    return {
        "|".join([*index, metric]): float(value) for index, row in grouped.iterrows() for metric, value in row.items()
    }


def _encode(value: float):
    if math.isnan(value):
        return None
    return "inf" if math.isinf(value) and value > 0 else "-inf" if math.isinf(value) else value


def _decode(value) -> float:
    return math.nan if value is None else float(value)


def write_baseline(table: pd.DataFrame, path: str | Path, metadata: dict) -> Path:
    """Write (or rewrite, on purpose) a baseline from a run's table, keeping existing tolerances."""
    path = Path(path)
    tolerances = dict(DEFAULT_TOLERANCES)
    if path.exists():
        tolerances.update(json.loads(path.read_text()).get("tolerances", {}))
    payload = {
        "created_from": metadata,
        "tolerances": tolerances,
        "means": {key: _encode(value) for key, value in metric_means(table).items()},
    }
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")
    return path


def load_baseline(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise BenchmarkError(
            f"baseline {path} not found; create it with `python -m benchmark check RUN --baseline {path} --update`"
        )
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise BenchmarkError(f"baseline {path} is not valid JSON ({error})") from None


def compare(table: pd.DataFrame, baseline: dict) -> list[str]:
    """One line per (group, metric) that moved past its tolerance, went missing or became unavailable."""
    current = metric_means(table)
    tolerances = {**DEFAULT_TOLERANCES, **baseline.get("tolerances", {})}
    problems = []
    for key, stored in sorted(baseline["means"].items()):
        expected = _decode(stored)
        metric = key.rsplit("|", 1)[1]
        if key not in current:
            problems.append(f"{key}: in the baseline ({expected:.4g}) but not in this run")
            continue
        value = current[key]
        if math.isnan(expected) and math.isnan(value) or expected == value:
            continue
        if math.isnan(value) or math.isnan(expected):
            change = "became unavailable" if math.isnan(value) else "became available"
            problems.append(f"{key}: {change} (baseline {expected:.4g}, now {value:.4g})")
        elif not abs(value - expected) <= tolerances[metric]:
            problems.append(
                f"{key}: {expected:.4f} -> {value:.4f} (moved {value - expected:+.4f}, tolerance {tolerances[metric]})"
            )
    return problems
