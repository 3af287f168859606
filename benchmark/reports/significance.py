"""Confidence intervals, significance and power for the per-mask tables (Tables 1-3, Supp. Table 1).

For every (mask, contrast, metric) cell: the mean, its 95 % subject-bootstrap interval and the number of subjects;
for every method but the reference, the two-sided Wilcoxon p of its per-subject means against the reference's
(default: the best mean of the column; ``--reference NAME`` to choose). Holm's correction runs over a *family* of
tests, which is the question asked (``--family``):

- ``column`` (default without ``--reference``): "which methods are indistinguishable from the column's best?" —
  one family per column (mask x contrast x metric), the methods' tests against its best.
- ``reference`` (default with ``--reference``): "does the reference beat each baseline?" — per mask, one
  confirmatory family over the baselines x contrasts x PSNR/SSIM; perceptual metrics, and methods that are not
  baselines (the reference's own variants, tested in Tables 4/5), are exploratory, one family per column.
- ``table``: every test of the mask's table in one family (the strictest).

Bold marks the reference mean and every method not significantly different from it (adjusted p >= α); under a
chosen reference, ▲ marks a method significantly better than it. Under each table: the legend, and per column
the minimum paired difference its family can detect at 80 % power (``stats.minimum_detectable_difference``)
with the median between-subject SD of the column's paired differences.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from benchmark.errors import BenchmarkError
from benchmark.metrics.region import IMAGE
from benchmark.reports.paper import PAPER_METHODS
from benchmark.reports.stats import (
    ALPHA,
    BOOTSTRAP_RESAMPLES,
    BOOTSTRAP_SEED,
    POWER,
    cell_stats,
    holm,
    minimum_detectable_difference,
    paired_wilcoxon,
    subject_means,
    subjects_needed,
)
from benchmark.reports.tables import (
    CONTRASTS,
    LOWER_IS_BETTER,
    METRIC_LABELS,
    Table,
    column_key,
    method_label,
    metric_source,
)

FAMILIES = ("column", "reference", "table")
#: Methods a chosen reference is confirmed against: the paper's comparison methods and the classical ones.
BASELINES = (*PAPER_METHODS, "zero_filled", "cs_wavelet")
#: Metrics whose tests are confirmatory under ``--family reference``; the others are exploratory.
CONFIRMATORY_METRICS = ("psnr", "ssim")
BETTER_MARK = "▲"


def default_family(reference: str | None) -> str:
    return "reference" if reference else "column"


def mask_stats(
    table: pd.DataFrame,
    volumes: pd.DataFrame | None,
    mask: str,
    metrics: list[str],
    protocol: str,
    reference: str | None = None,
    family: str | None = None,
    region: str = IMAGE,
) -> pd.DataFrame:
    """Tidy statistics of one mask table: a row per (contrast, metric, method), with its family and adjusted p."""
    family = family or default_family(reference)
    if family not in FAMILIES:
        raise BenchmarkError(f"unknown --family {family!r}; known: {', '.join(FAMILIES)}")
    if reference is not None and reference not in set(table["method"]):
        raise BenchmarkError(f"--reference {reference!r} is not a method of this run")
    rows = []
    for metric in metrics:
        key = column_key(metric, protocol, region)
        source = metric_source(table, volumes, key, protocol)
        if key not in source.columns:
            continue
        for contrast in CONTRASTS:
            part = source[(source["mask"] == mask) & (source["contrast"] == contrast)]
            if part.empty or part[key].isna().all():
                continue
            rows += _cell_rows(part, key, metric, contrast, reference)
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    frame.insert(0, "mask", mask)
    families = [_family_of(row, family, mask) for row in frame.itertuples()]
    frame["family"] = [name for name, _ in families]
    frame["exploratory"] = [exploratory for _, exploratory in families]
    adjust_within_families(frame)
    frame["mdd_80"] = _column_mdd(frame)
    frame["bootstrap"] = f"subjects, {BOOTSTRAP_RESAMPLES} resamples, seed {BOOTSTRAP_SEED}"
    return frame


def adjust_within_families(frame: pd.DataFrame) -> None:
    """Adds ``family_size`` and ``p_adjusted`` (Holm within each ``family``) to rows with a ``p``."""
    frame["family_size"] = 0
    frame["p_adjusted"] = np.nan
    tested = frame["p"].notna()
    for _, members in frame[tested].groupby("family", sort=False):
        frame.loc[members.index, "family_size"] = len(members)
        frame.loc[members.index, "p_adjusted"] = holm(members["p"].tolist())


def _family_of(row, mode: str, mask: str) -> tuple[str, bool]:
    column = f"{mask} {METRIC_LABELS[row.metric]} {row.contrast}"
    if mode == "table":
        return f"{mask}: every test of the table", False
    if mode == "column":
        return f"{column}: every method vs the column's best", False
    if row.metric in CONFIRMATORY_METRICS and row.method in BASELINES:
        return f"{mask}: {row.reference} vs the baselines x contrasts x PSNR/SSIM", False
    return f"{column} (exploratory)", True


def _cell_rows(part: pd.DataFrame, key: str, metric: str, contrast: str, reference: str | None) -> list[dict]:
    means = part.replace([np.inf, -np.inf], np.nan).groupby("method")[key].mean().dropna()
    if means.empty:
        return []
    best = means.idxmin() if metric in LOWER_IS_BETTER else means.idxmax()
    chosen = reference or best
    per_subject = subject_means(part, key)
    rows = []
    for method, frame in part.groupby("method", sort=False):
        stats = cell_stats(frame, key)
        p = difference = spread = math.nan
        if method != chosen and method in per_subject and chosen in per_subject:
            paired = per_subject[method].to_numpy() - per_subject[chosen].to_numpy()
            p = paired_wilcoxon(per_subject[method].to_numpy(), per_subject[chosen].to_numpy())
            difference = float(paired.mean())
            if len(paired) > 1:
                spread = float(paired.std(ddof=1))
        rows.append(
            {
                "contrast": contrast,
                "metric": metric,
                "column": key,
                "method": method,
                "mean": stats.mean,
                "ci_low": stats.ci_low,
                "ci_high": stats.ci_high,
                "n_subjects": stats.n_subjects,
                "n_paired": len(per_subject),  # subjects every method of the cell has: what the test uses
                "reference": chosen,
                "difference": difference,  # mean per-subject difference, method - reference
                "sd_difference": spread,  # between-subject SD of those differences
                "p": p,
            }
        )
    return rows


def _column_mdd(frame: pd.DataFrame) -> pd.Series:
    """Per row: the minimum detectable difference of its column, for its family's size (module docstring)."""
    values = pd.Series(np.nan, index=frame.index)
    for _, column in frame.groupby(["contrast", "metric"], sort=False):
        tested = column[column["p"].notna()]
        spread = float(tested["sd_difference"].median()) if len(tested) else math.nan
        for index, row in tested.iterrows():
            alpha = ALPHA / max(int(row["family_size"]), 1)
            values[index] = minimum_detectable_difference(spread, int(row["n_paired"]), alpha)
    return values


def annotate(result: Table, stats: pd.DataFrame, reference: str | None, family: str | None = None) -> None:
    """Bold, marks, intervals, the legend and the power line of one mask table from its ``mask_stats``."""
    if stats.empty:
        return
    family = family or default_family(reference)
    result.ci_low = pd.DataFrame(np.nan, index=result.values.index, columns=result.values.columns)
    result.ci_high = result.ci_low.copy()
    for (metric, contrast), cell in stats.groupby(["metric", "contrast"], sort=False):
        label = f"{metric}|{contrast}"
        if label not in result.values.columns:
            continue
        chosen = cell["reference"].iloc[0]
        result.bold[label] = {chosen} | {row.method for row in cell.itertuples() if _indistinguishable(row)}
        for row in cell.itertuples():
            if row.method in result.ci_low.index:
                result.ci_low.loc[row.method, label] = row.ci_low
                result.ci_high.loc[row.method, label] = row.ci_high
            if reference and row.p_adjusted < ALPHA and _better(row):
                result.marks[(row.method, label)] = BETTER_MARK
    result.notes.append(legend(stats, reference, family))
    result.notes.append(power_line(stats))
    subjects, largest = int(stats["n_paired"].min()), int(stats["family_size"].max())
    if subjects < subjects_needed(largest):
        result.notes.append(
            f"Warning: {subjects} subjects; with {largest} Holm-adjusted tests in a family no difference can reach "
            f"α = {ALPHA} (needs at least {subjects_needed(largest)} subjects)."
        )


def _indistinguishable(row) -> bool:
    return not math.isnan(row.p_adjusted) and row.p_adjusted >= ALPHA


def _better(row) -> bool:
    return row.difference < 0 if row.metric in LOWER_IS_BETTER else row.difference > 0


def legend(stats: pd.DataFrame, reference: str | None, family: str) -> str:
    """The one line that says what bold means, which tests were run and over which family Holm adjusted."""
    against = method_label(reference) if reference else "the column's best"
    families = {
        "column": "one family per column (every method vs the column's best)",
        "reference": f"per mask, one confirmatory family ({method_label(reference or '')} vs the baselines x "
        "contrasts x PSNR/SSIM); perceptual metrics and non-baseline methods exploratory, one family per column",
        "table": "one family per table (every test of the table)",
    }
    marked = f"; {BETTER_MARK}: significantly better than {against}" if reference else ""
    sizes = sorted(set(stats.loc[stats["p"].notna(), "family_size"].astype(int)))
    return (
        f"Bold: {against} and every method not significantly different from it{marked} (two-sided Wilcoxon "
        f"signed-rank test on per-subject means, Holm-adjusted within {families[family]}; family sizes "
        f"{', '.join(map(str, sizes))}; α = {ALPHA})."
    )


def power_line(stats: pd.DataFrame) -> str:
    """Per column: the minimum detectable paired difference at 80 % power for its family (module docstring)."""
    parts = []
    for metric, by_metric in stats.groupby("metric", sort=False):
        cells = []
        for contrast, cell in by_metric.groupby("contrast", sort=False):
            tested = cell[cell["p"].notna()]
            if tested.empty:
                continue
            main = tested[tested["family_size"] == tested["family_size"].max()]
            digits = 2 if metric == "psnr" else 3
            cells.append(f"{contrast} {main['mdd_80'].iloc[0]:.{digits}f}")
        if cells:
            parts.append(f"{METRIC_LABELS[metric]} " + ", ".join(cells))
    subjects = int(stats["n_paired"].min())
    return (
        f"Power: n = {subjects} subjects; minimum paired difference detectable with {POWER:.0%} power (two-sided, "
        "α / family size, signed-rank approximated by the t-test on n·3/π pairs, SD = median between-subject SD of "
        f"the column's paired differences): {'; '.join(parts)}."
    )
