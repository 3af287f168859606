"""Generalisation: the same methods scored in distribution and on heads they were never trained on.

``report RUN --shift OTHER_RUN [...]``: per mask, one table with a row per method and, for the run's own data and
each other run's, the mean PSNR and SSIM over contrasts and test images, and the difference to zero filling on
the same images (positive: better than zero filling; a learned method below 0 is worse than doing nothing). The
other runs are any runs of the same methods on other data: the shifted embedded heads (``prepare --shifted``) or
real fastMRI files converted with ``prepare --from-fastmri``. The caption names every dataset by name and hash.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from benchmark.metrics.region import IMAGE
from benchmark.reports.tables import LOWER_IS_BETTER, MASK_TITLES, Table, column_key, metric_source, ordered_methods
from benchmark.runner.record import RunRecord

SHIFT_METRICS = ("psnr", "ssim")
REFERENCE = "zero_filled"


def shift_tables(runs: list[tuple[str, pd.DataFrame, pd.DataFrame | None, dict]], scoring: str, region: str = IMAGE):
    """One table per mask of the first run; ``runs``: (label, images, volumes, metadata), the first in distribution."""
    first = runs[0][1]
    masks = [mask for mask in MASK_TITLES if mask in set(first["mask"])]
    rows = [m for m in ordered_methods(first) if m in set(first["method"])]
    return [_mask_table(runs, mask, rows, scoring, region) for mask in masks]


def _mask_table(runs, mask: str, rows: list[str], scoring: str, region: str) -> Table:
    columns, groups, values = [], [], {}
    for index, (label, images, volumes, _) in enumerate(runs):
        names = []
        for metric in SHIFT_METRICS:
            key = column_key(metric, scoring, region)
            source = metric_source(images, volumes, key, scoring)
            means = source[source["mask"] == mask].groupby("method")[key].mean()
            values[f"{index}|{metric}"] = means
            names.append(f"{index}|{metric}")
            if REFERENCE in means:
                values[f"{index}|{metric} vs zero-filled"] = means - means[REFERENCE]
                names.append(f"{index}|{metric} vs zero-filled")
        columns += names
        groups.append((label, names))
    table = pd.DataFrame(values).reindex(index=rows, columns=columns)
    result = Table(
        title=f"Generalisation, {MASK_TITLES[mask]}: in distribution and on other data",
        caption="Mean over contrasts and test images; 'vs zero-filled': the difference to zero filling on the same "
        "images (below 0: worse than zero filling). " + " ".join(_describe(label, meta) for label, _, _, meta in runs),
        rows=rows,
        groups=groups,
        values=table,
    )
    result.bold = {column: _best(table[column], column) for column in columns}
    result.column_labels = {column: _label(column) for column in columns}
    return result


def _label(column: str) -> str:
    metric, _, versus = column.split("|")[1].partition(" vs ")
    return f"{metric.upper()} ↑" if not versus else f"Δ{metric.upper()} vs ZF ↑"


def _best(series: pd.Series, column: str) -> set[str]:
    finite = series.replace([np.inf, -np.inf], np.nan).dropna()
    if finite.empty:
        return set()
    metric = column.split("|")[1].split()[0]
    target = finite.min() if metric in LOWER_IS_BETTER else finite.max()
    return set(finite.index[np.isclose(finite, target, rtol=0, atol=1e-12)])


def _describe(label: str, metadata: RunRecord) -> str:
    dataset = metadata.dataset or {}
    return f"{label}: {dataset.get('name', 'unnamed data')}, hash {metadata.data_hash[:16]}."
