"""Tables 4 and 5 as the paper's claims: each row's paired difference to NASP base, with its interval and p.

Table 4 (ablations) compares every variant of the run with ``nasp-base`` per mask, pooled over contrasts; Table 5
compares each distilled model with its base per mask and contrast. A cell is the mean over subjects of the
per-subject difference (row - reference; each subject's images averaged first), its 95 % subject-bootstrap
interval, and the two-sided Wilcoxon signed-rank p, Holm-adjusted within the table's family: PSNR and SSIM of
every row x mask (x contrast) are one confirmatory family (the paper's claim); perceptual metrics are exploratory,
one family per column. Bold: significant at α after adjustment.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from benchmark.metrics.region import IMAGE
from benchmark.reports.significance import CONFIRMATORY_METRICS, adjust_within_families
from benchmark.reports.stats import ALPHA, paired_wilcoxon, subject_bootstrap_ci, subject_means
from benchmark.reports.tables import (
    CONTRASTS,
    MASK_TITLES,
    METRIC_LABELS,
    Table,
    column_key,
    distillation_pairs,
    method_label,
    metric_source,
)

ABLATION_REFERENCE = "nasp-base"
#: Table 4's rows: decoding variants of ``nasp-base`` and the ablations with their own checkpoints.
ABLATION_VARIANTS = (
    "nasp-base-multinomial",
    "nasp-base-topkp",
    "nasp-base-dc",
    "nasp-nocross",
    "nasp-frozenenc",
    "nasp-flat",
)
DIFFERENCE_METRICS = ["psnr", "ssim", "lpips_alex"]


def paired_difference(part: pd.DataFrame, key: str, method: str, reference: str) -> dict:
    """Mean per-subject difference ``method - reference`` over the subjects both have, its interval and p."""
    per_subject = subject_means(part[part["method"].isin([method, reference])], key)
    if method not in per_subject or reference not in per_subject or per_subject.empty:
        return {"difference": math.nan, "diff_ci_low": math.nan, "diff_ci_high": math.nan, "p": math.nan,
                "n_paired": 0}  # fmt: skip
    differences = (per_subject[method] - per_subject[reference]).to_numpy()
    low, high = subject_bootstrap_ci(differences, per_subject.index.to_numpy())
    p = paired_wilcoxon(per_subject[method].to_numpy(), per_subject[reference].to_numpy())
    return {"difference": float(differences.mean()), "diff_ci_low": low, "diff_ci_high": high, "p": p,
            "n_paired": len(differences)}  # fmt: skip


def ablation_differences(
    table: pd.DataFrame, volumes: pd.DataFrame | None, masks: list[str], protocol: str, region: str = IMAGE
) -> tuple[Table | None, pd.DataFrame]:
    """Table 4's rows minus ``nasp-base`` per mask (contrasts pooled); ``None`` without the reference."""
    ran = set(table["method"])
    variants = [name for name in ABLATION_VARIANTS if name in ran]
    if ABLATION_REFERENCE not in ran or not variants:
        return None, pd.DataFrame()
    rows = []
    for mask, metric, key, part in _scored_parts(table, volumes, masks, protocol, region, by_contrast=False):
        for method in variants:
            rows.append({"table": "Table 4", "mask": mask, "contrast": "all", "metric": metric, "column": key,
                         "method": method, "reference": ABLATION_REFERENCE,
                         **paired_difference(part, key, method, ABLATION_REFERENCE)})  # fmt: skip
    frame = _with_families(pd.DataFrame(rows), "Table 4: variants vs NASP base x masks x PSNR/SSIM")
    columns = [f"{mask}|{metric}" for mask in masks for metric in DIFFERENCE_METRICS]
    result = _difference_table(
        frame,
        title="Table 4 (paired differences): each variant minus NASP base, averaged over contrasts",
        rows=variants,
        row_of=lambda row: row.method,
        column_of=lambda row: f"{row.mask}|{row.metric}",
        columns=columns,
        groups=[(MASK_TITLES[m], [f"{m}|{x}" for x in DIFFERENCE_METRICS]) for m in masks],
    )
    return result, frame


def distillation_differences(
    table: pd.DataFrame, volumes: pd.DataFrame | None, masks: list[str], protocol: str, region: str = IMAGE
) -> tuple[Table | None, pd.DataFrame]:
    """Table 5: distilled minus base per mask and contrast; ``None`` without a pair."""
    pairs = distillation_pairs(list(dict.fromkeys(table["method"])))
    if not pairs:
        return None, pd.DataFrame()
    rows = []
    for mask, metric, key, part in _scored_parts(table, volumes, masks, protocol, region, by_contrast=True):
        contrast = part["contrast"].iloc[0]
        for base, distilled in pairs:
            rows.append({"table": "Table 5", "mask": mask, "contrast": contrast, "metric": metric, "column": key,
                         "method": distilled, "reference": base,
                         **paired_difference(part, key, distilled, base)})  # fmt: skip
    frame = _with_families(pd.DataFrame(rows), "Table 5: distilled vs base x masks x contrasts x PSNR/SSIM")
    result = _difference_table(
        frame,
        title="Table 5 (paired differences): distilled minus base",
        rows=[f"{mask}|{distilled}" for mask in masks for _, distilled in pairs],
        row_of=lambda row: f"{row.mask}|{row.method}",
        column_of=lambda row: f"{row.metric}|{row.contrast}",
        columns=[f"{m}|{c}" for m in DIFFERENCE_METRICS for c in CONTRASTS],
        groups=[(METRIC_LABELS[m], [f"{m}|{c}" for c in CONTRASTS]) for m in DIFFERENCE_METRICS],
    )
    return result, frame


def _scored_parts(table, volumes, masks: list[str], protocol: str, region: str, by_contrast: bool):
    """(mask, metric, column, rows) of every mask (and contrast) where the metric has values."""
    for mask in masks:
        for metric in DIFFERENCE_METRICS:
            key = column_key(metric, protocol, region)
            source = metric_source(table, volumes, key, protocol)
            if key not in source.columns:
                continue
            for contrast in CONTRASTS if by_contrast else (None,):
                part = source[(source["mask"] == mask) & ((source["contrast"] == contrast) if contrast else True)]
                if len(part) and not part[key].isna().all():
                    yield mask, metric, key, part


def _with_families(frame: pd.DataFrame, confirmatory: str) -> pd.DataFrame:
    if frame.empty:
        return frame
    exploratory = ~frame["metric"].isin(CONFIRMATORY_METRICS)
    frame["exploratory"] = exploratory
    frame["family"] = np.where(
        exploratory, frame["table"] + " " + frame["mask"] + " " + frame["metric"] + " (exploratory)", confirmatory
    )
    adjust_within_families(frame)
    return frame


def _difference_table(frame: pd.DataFrame, title: str, rows, row_of, column_of, columns, groups) -> Table:
    values = pd.DataFrame(np.nan, index=rows, columns=columns)
    low, high = values.copy(), values.copy()
    result = Table(title=title, caption="", rows=rows, groups=groups, values=values, ci_low=low, ci_high=high)
    result.show_ci = True
    for row in frame.itertuples():
        name, column = row_of(row), column_of(row)
        values.loc[name, column], low.loc[name, column], high.loc[name, column] = (
            row.difference, row.diff_ci_low, row.diff_ci_high)  # fmt: skip
        if not math.isnan(row.p_adjusted):
            result.marks[(name, column)] = f" (p {row.p_adjusted:.2g})"
    for column in columns:
        cells = frame[[column_of(r) == column for r in frame.itertuples()]]
        result.bold[column] = {row_of(r) for r in cells.itertuples() if r.p_adjusted < ALPHA}
    reference = method_label(frame["reference"].iloc[0]) if frame["reference"].nunique() == 1 else "its base"
    sizes = sorted(set(frame.loc[frame["p"].notna(), "family_size"].astype(int)))
    subjects = int(frame["n_paired"].min())
    result.caption = (
        f"Mean per-subject difference to {reference} (higher is better for PSNR/SSIM, lower for LPIPS) "
        f"[95 % subject-bootstrap interval] (Holm-adjusted Wilcoxon signed-rank p); n = {subjects} subjects."
    )
    result.notes.append(
        f"Bold: significantly different from {reference} at α = {ALPHA} after Holm's adjustment within one "
        f"confirmatory family (every row x PSNR/SSIM cell); perceptual metrics exploratory, one family per mask "
        f"and metric; family sizes {', '.join(map(str, sizes))}."
    )
    return result
