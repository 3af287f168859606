"""The report's throughput table from a ``benchmark perf`` CSV (``report RUN --perf CSV``): for each of the
run's methods, the perf command's seconds per image at every batch size it timed (default switch setting),
parameters, counted FLOPs per image and the achieved fraction of the measured peak at the largest batch.
The run's own runtime table times one slice at a time inside the evaluation; this one is the controlled
measurement, and its caption says which profile, weights and device it comes from."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from benchmark.errors import BenchmarkError
from benchmark.reports.tables import Table, method_label

REQUIRED = {"method", "setting", "batch", "s_per_image", "parameters", "flops_per_image", "fraction_of_peak"}


def load_perf(path: str | Path) -> pd.DataFrame:
    """The perf CSV's default-setting method rows; a file that is not one is a one-line error."""
    path = Path(path)
    if not path.is_file():
        raise BenchmarkError(f"--perf {path}: no such file (write one with `python -m benchmark perf`)")
    table = pd.read_csv(path)
    missing = sorted(REQUIRED - set(table.columns))
    if missing:
        raise BenchmarkError(f"--perf {path}: not a `benchmark perf` table (missing columns {', '.join(missing)})")
    return table[(table["setting"] == "default") & table["parameters"].notna()]


def throughput_table(perf: pd.DataFrame, methods: list[str], source: str) -> Table:
    """One row per run method the perf table timed (the others are listed in a note)."""
    rows = [m for m in methods if m in set(perf["method"])]
    batches = sorted(int(b) for b in perf["batch"].unique())
    largest = perf[perf["batch"] == batches[-1]].set_index("method")
    pivot = perf.pivot_table(index="method", columns="batch", values="s_per_image", aggfunc="first")
    values = pd.DataFrame({f"runtime|s/image B={b}": pivot[b] for b in batches}).reindex(rows)
    first = perf.groupby("method").first()
    values["runtime|params (M)"] = first["parameters"] / 1e6
    values["runtime|GFLOP/image"] = first["flops_per_image"] / 1e9
    values[f"runtime|% of peak B={batches[-1]}"] = 100 * largest["fraction_of_peak"]
    values = values.reindex(rows)
    described = ", ".join(
        f"{column} {', '.join(sorted(set(perf[column].astype(str))))}" for column in ("profile", "device", "weights")
    )
    result = Table(
        title="Throughput (benchmark perf)",
        caption=f"Seconds per image from `{source}` ({described}; median over repeats, warm-up excluded; peak = "
        f"a float32 matmul the command measured, {perf['measured_peak_flops'].iloc[0] / 1e9:.1f} GFLOP/s).",
        rows=rows,
        groups=[("", list(values.columns))],
        values=values,
    )
    untimed = [method_label(m) for m in methods if m not in rows]
    if untimed:
        result.notes.append("not in the perf table: " + ", ".join(untimed))
    return result
