"""Drift check: compare a run's per-(method, mask, contrast) metric means with a stored baseline.

A baseline is JSON: ``means`` maps ``method|mask|contrast|metric`` to a value (``"inf"`` for +∞,
``null`` for an unavailable metric), ``tolerances`` maps a metric to the largest absolute change
allowed. Runtime is never compared (it measures the machine, not the method).

A baseline has teeth: the tolerances live here (``DEFAULT_TOLERANCES``) and a baseline may only tighten them (a
looser one is printed, and refused when ``CI=true``); every (method, mask, contrast, metric) the run has must be
in the baseline; a file that is no usable baseline is a one-line error (exit 2), not drift (exit 1).
"""

from __future__ import annotations

import json
import math
import os
import sys
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
    """The baseline at ``path``, checked usable (module docstring); a looser tolerance is printed as a warning."""
    path = Path(path)
    if not path.is_file():
        raise BenchmarkError(
            f"baseline {path} not found; create it with `python -m benchmark check RUN --baseline {path} --update`"
        )
    try:
        baseline = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise BenchmarkError(f"baseline {path} is not valid JSON ({error})") from None
    if not isinstance(baseline, dict) or not isinstance(baseline.get("means"), dict):
        raise BenchmarkError(f"baseline {path} has no means (not a baseline written by `check --update`)")
    if not baseline["means"]:
        raise BenchmarkError(f"baseline {path} has no means: a check against it would pass anything")
    for key in baseline["means"]:
        metric = key.rsplit("|", 1)[-1]
        if key.count("|") != 3 or metric not in DEFAULT_TOLERANCES:
            raise BenchmarkError(f"baseline {path}: {key!r} is not a method|mask|contrast|metric this check compares")
    baseline["tolerances"] = _checked_tolerances(path, baseline.get("tolerances", {}))
    return baseline


def _checked_tolerances(path: Path, stored) -> dict[str, float]:
    """The baseline's tolerances: known metrics, numbers >= 0; a looser one than the code's warns, or fails under CI."""
    if not isinstance(stored, dict):
        raise BenchmarkError(f"baseline {path}: tolerances must map metric names to numbers")
    tolerances = dict(DEFAULT_TOLERANCES)
    for metric, value in stored.items():
        if metric not in DEFAULT_TOLERANCES:
            raise BenchmarkError(f"baseline {path}: tolerance for unknown metric {metric!r}")
        if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
            raise BenchmarkError(f"baseline {path}: tolerance of {metric} must be a number >= 0, got {value!r}")
        if value > DEFAULT_TOLERANCES[metric]:
            message = (
                f"baseline {path} loosens the {metric} tolerance to {value:g} (code: {DEFAULT_TOLERANCES[metric]:g})"
            )
            if os.environ.get("CI", "").lower() == "true":
                raise BenchmarkError(f"{message}; a baseline may only tighten tolerances under CI")
            print(f"warning: {message}", file=sys.stderr)
        tolerances[metric] = float(value)
    return tolerances


def compare(table: pd.DataFrame, baseline: dict) -> list[str]:
    """One line per (group, metric) that moved past its tolerance, went missing, became unavailable, or that
    the run has and the baseline lacks."""
    current = metric_means(table)
    tolerances = {**DEFAULT_TOLERANCES, **baseline.get("tolerances", {})}
    problems = [
        f"{key}: in this run ({value:.4g}) but not in the baseline; add it with --update if it is new on purpose"
        for key, value in sorted(current.items())
        if key not in baseline["means"]
    ]
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
