"""Confidence intervals and significance marks for the per-mask tables (Tables 1-3, Supp. Table 1).

For every (mask, contrast, metric) cell: the mean, its 95 % subject-bootstrap interval and the number of subjects;
for every method but the reference, the two-sided Wilcoxon p of its per-subject means against the reference's
(default: the best mean of the column; ``--reference NAME`` to choose), Holm-adjusted across all tests of the
table. A cell is marked † when its method is not significantly different from the reference at α = 0.05.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from benchmark.errors import BenchmarkError
from benchmark.reports.stats import (
    ALPHA,
    BOOTSTRAP_RESAMPLES,
    BOOTSTRAP_SEED,
    cell_stats,
    holm,
    paired_wilcoxon,
    subject_means,
    subjects_needed,
)
from benchmark.reports.tables import CONTRASTS, LOWER_IS_BETTER, Table, column_key, method_label, metric_source

MARK = "†"


def mask_stats(
    table: pd.DataFrame, volumes: pd.DataFrame | None, mask: str, metrics: list[str], protocol: str, reference=None
) -> pd.DataFrame:
    """Tidy statistics of one mask table: a row per (contrast, metric, method)."""
    if reference is not None and reference not in set(table["method"]):
        raise BenchmarkError(f"--reference {reference!r} is not a method of this run")
    rows = []
    for metric in metrics:
        key = column_key(metric, protocol)
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
    tested = frame["p"].notna()
    frame["p_adjusted"] = np.nan
    frame.loc[tested, "p_adjusted"] = holm(frame.loc[tested, "p"].tolist())
    frame.insert(0, "mask", mask)
    frame["bootstrap"] = f"subjects, {BOOTSTRAP_RESAMPLES} resamples, seed {BOOTSTRAP_SEED}"
    return frame


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
        p = math.nan
        if method != chosen and method in per_subject and chosen in per_subject:
            p = paired_wilcoxon(per_subject[method].to_numpy(), per_subject[chosen].to_numpy())
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
                "p": p,
            }
        )
    return rows


def annotate(result: Table, stats: pd.DataFrame, reference: str | None) -> None:
    """Marks, intervals and the power warning of one mask table from its ``mask_stats``."""
    if stats.empty:
        return
    result.ci_low = pd.DataFrame(np.nan, index=result.values.index, columns=result.values.columns)
    result.ci_high = result.ci_low.copy()
    for row in stats.itertuples():
        label = f"{row.metric}|{row.contrast}"
        if row.method in result.ci_low.index:
            result.ci_low.loc[row.method, label] = row.ci_low
            result.ci_high.loc[row.method, label] = row.ci_high
            if not math.isnan(row.p_adjusted) and row.p_adjusted >= ALPHA:
                result.marks[(row.method, label)] = MARK
    against = f"{method_label(reference)}" if reference else "the best of its column"
    result.notes.append(
        f"{MARK}: not significantly different from {against} (two-sided Wilcoxon signed-rank test on per-subject "
        f"means, Holm-adjusted over the table's {int(stats['p'].notna().sum())} tests, α = {ALPHA})."
    )
    subjects, tests = int(stats["n_paired"].min()), int(stats["p"].notna().sum())
    needed = subjects_needed(tests)
    if subjects < needed:
        result.notes.append(
            f"Warning: {subjects} subjects; with {tests} Holm-adjusted tests no difference can reach α = {ALPHA} "
            f"(needs at least {needed} subjects)."
        )
