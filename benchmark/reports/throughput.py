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

REQUIRED = {"method", "batch", "s_per_image", "parameters", "flops_per_image", "fraction_of_peak"}


def load_perf(path: str | Path) -> pd.DataFrame:
    """The perf CSV's default-setting method rows (a table from before speed switches has only those); a file
    that is not one, or that times a method twice at one batch size, is a one-line error."""
    path = Path(path)
    if not path.is_file():
        raise BenchmarkError(f"--perf {path}: no such file (write one with `python -m benchmark perf`)")
    table = pd.read_csv(path)
    missing = sorted(REQUIRED - set(table.columns))
    if missing:
        raise BenchmarkError(f"--perf {path}: not a `benchmark perf` table (missing columns {', '.join(missing)})")
    if "setting" in table:
        table = table[table["setting"] == "default"]
    table = table[table["parameters"].notna()]  # the scoring paths' rows
    if table.empty:
        raise BenchmarkError(f"--perf {path}: no method rows")
    repeated = table[table.duplicated(["method", "batch"])]
    if not repeated.empty:
        first = repeated.iloc[0]
        raise BenchmarkError(f"--perf {path}: {first['method']} is timed more than once at batch {first['batch']} "
                             "(one device and profile per table)")  # fmt: skip
    return table


def throughput_table(perf: pd.DataFrame, methods: list[str], source: str) -> Table:
    """One row per run method the perf table timed (the others are listed in a note); the fraction of peak is
    at each method's largest timed batch."""
    rows = [m for m in methods if m in set(perf["method"])]
    if not rows:
        raise BenchmarkError(f"--perf {source} times none of this run's methods ({', '.join(methods)})")
    timed = perf[perf["method"].isin(rows)]
    batches = sorted(int(b) for b in timed["batch"].unique())
    pivot = timed.pivot(index="method", columns="batch", values="s_per_image")
    values = pd.DataFrame({f"runtime|s/image B={b}": pivot[b] for b in batches}).reindex(rows)
    largest = timed.loc[timed.groupby("method")["batch"].idxmax()].set_index("method")
    values["runtime|params (M)"] = largest["parameters"] / 1e6
    values["runtime|GFLOP/image"] = largest["flops_per_image"] / 1e9
    values["runtime|% of peak (largest B)"] = 100 * largest["fraction_of_peak"]
    values = values.reindex(rows)
    kinds = timed["weights"].astype(str).str.replace(r"^shipped .*", "shipped checkpoints", regex=True)
    described = ", ".join(
        f"{name} {', '.join(sorted(set(column)))}"
        for name, column in (("profile", timed["profile"].astype(str)), ("device", timed["device"]), ("weights", kinds))
    )
    result = Table(
        title="Throughput (benchmark perf)",
        caption=f"Seconds per image from `{source}` ({described}; median over repeats, warm-up excluded; peak = "
        f"a float32 matmul the command measured, {timed['measured_peak_flops'].iloc[0] / 1e9:.1f} GFLOP/s).",
        rows=rows,
        groups=[("", list(values.columns))],
        values=values,
    )
    untimed = [method_label(m) for m in methods if m not in rows]
    if untimed:
        result.notes.append("not in the perf table: " + ", ".join(untimed))
    return result
