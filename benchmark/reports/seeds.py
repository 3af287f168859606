"""Training noise: how far one method's means move when it is retrained with another seed, beside the gaps
between methods, so readers see which differences exceed what a re-run changes.

``report RUN --seed-runs RUN_A RUN_B ...`` takes runs of one method of ``RUN`` whose checkpoints were trained
from other seeds (on the same data, masks and contrasts) and writes ``seeds.md``: per mask and metric, that
method's mean for every training seed, their range and standard deviation, and every other method's gap to
it in ``RUN``, marked where the gap is no larger than the seed range (a re-run could close it).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from benchmark.errors import BenchmarkError
from benchmark.io import atomic_path
from benchmark.reports.tables import LOWER_IS_BETTER, MASK_TITLES, column_key, method_label, metric_source
from benchmark.runner.record import RunRecord

SEED_METRICS = ("psnr", "ssim")
#: Marks a gap no larger than the seed-to-seed range.
WITHIN_NOISE = "≈"


def seeded_method(seed_runs: list[tuple[pd.DataFrame, dict]], main_methods: list[str]) -> str:
    """The one method every seed run holds, which the main run holds too; a one-line error otherwise."""
    held = {tuple(dict.fromkeys(table["method"])) for table, _ in seed_runs}
    if len(held) != 1 or len(next(iter(held))) != 1:
        raise BenchmarkError(f"--seed-runs must each hold the same single method; they hold {sorted(held)}")
    (method,) = next(iter(held))
    if method not in main_methods:
        raise BenchmarkError(f"--seed-runs hold {method!r}, which the main run does not")
    return method


def check_comparable(
    main: RunRecord, seed_runs: list[tuple[pd.DataFrame, RunRecord]], main_table: pd.DataFrame
) -> None:
    """Seed runs must score the same data, masks and contrasts as the main run."""
    grid = lambda table: (sorted(set(table["mask"])), sorted(set(table["contrast"])))  # noqa: E731
    for table, metadata in seed_runs:
        if metadata.data_hash != main.data_hash or grid(table) != grid(main_table):
            raise BenchmarkError(
                "a --seed-runs run differs from the main run in its data, masks or contrasts; rerun it with the "
                "main run's --data, --masks and --contrasts"
            )


def seed_spread(
    main: tuple[pd.DataFrame, pd.DataFrame | None, dict],
    seed_runs: list[tuple[pd.DataFrame, pd.DataFrame | None, dict]],
    scoring: str,
) -> pd.DataFrame:
    """Tidy rows (mask, metric, seeds, seed_means, seed_range, seed_sd, other, gap, within_noise)."""
    images, volumes, metadata = main
    method = seeded_method([(t, m) for t, _, m in seed_runs], list(dict.fromkeys(images["method"])))
    check_comparable(metadata, [(t, m) for t, _, m in seed_runs], images)
    runs = [main, *seed_runs]
    seeds = [run[2].methods[method].get("training_seed") for run in runs]
    rows = []
    for mask in [m for m in MASK_TITLES if m in set(images["mask"])]:
        for metric in SEED_METRICS:
            key = column_key(metric, scoring)
            means = [_mask_mean(t, v, method, mask, key, scoring) for t, v, _ in runs]
            spread = max(means) - min(means)
            others = [m for m in dict.fromkeys(images["method"]) if m != method]
            for other in others:
                gap = _mask_mean(images, volumes, other, mask, key, scoring) - means[0]
                rows.append(
                    dict(mask=mask, metric=metric, method=method, seeds=seeds, seed_means=means, seed_range=spread,
                         seed_sd=float(np.std(means, ddof=1)), other=other, gap=gap,
                         within_noise=abs(gap) <= spread)
                )  # fmt: skip
    return pd.DataFrame(rows)


def _mask_mean(images, volumes, method: str, mask: str, key: str, scoring: str) -> float:
    """Mean over contrasts of the per-contrast means (as the tables' "mean" column)."""
    frame = metric_source(images, volumes, key, scoring)
    chosen = frame[(frame["method"] == method) & (frame["mask"] == mask)]
    return float(chosen.groupby("contrast")[key].mean().mean())


def seed_markdown(spread: pd.DataFrame, description: str) -> str:
    """One table per metric: rows are masks, the seeds' means and range, then each other method's gap."""
    method = spread["method"].iloc[0]
    seeds = ", ".join(str(seed) for seed in spread["seeds"].iloc[0])
    lines = [
        f"### Training noise: {method_label(method)} retrained with seeds {seeds}\n",
        f"{description} Gap = other method's mean − {method_label(method)}'s (seed {spread['seeds'].iloc[0][0]}); "
        f"{WITHIN_NOISE} marks a gap no larger than the range of {method_label(method)}'s means over its training "
        "seeds, which a re-run could close.\n",
    ]
    for metric, block in spread.groupby("metric", sort=False):
        others = list(dict.fromkeys(block["other"]))
        better = "↓" if metric in LOWER_IS_BETTER else "↑"
        header = ["Mask", f"{metric.upper()} {better} per seed", "range", "SD", *map(method_label, others)]
        lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for mask, rows in block.groupby("mask", sort=False):
            first = rows.iloc[0]
            means = " / ".join(f"{value:.{_digits(metric)}f}" for value in first["seed_means"])
            gaps = [_gap_text(row.gap, row.within_noise, metric) for row in rows.itertuples()]
            spread_text = [f"{first['seed_range']:.{_digits(metric)}f}", f"{first['seed_sd']:.{_digits(metric)}f}"]
            lines.append("| " + " | ".join([MASK_TITLES[mask], means, *spread_text, *gaps]) + " |")
        lines.append("")
    return "\n".join(lines)


def _digits(metric: str) -> int:
    return 2 if metric == "psnr" else 4


def _gap_text(gap: float, within_noise: bool, metric: str) -> str:
    return f"{gap:+.{_digits(metric)}f}" + (f" {WITHIN_NOISE}" if within_noise else "")


def write_seed_report(path: Path, spread: pd.DataFrame, description: str) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(seed_markdown(spread, description))
    return path
