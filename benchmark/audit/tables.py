"""The audit's tables and the distillation verdict, from ``lesions.csv`` and ``slices.csv``.

Uncertainty resamples subjects (``benchmark.reports.stats``): a cell's 95 % interval is the subject bootstrap of
its mean, and of its AUC for detectability (whole subjects' lesions resampled, the Mann-Whitney AUC recomputed).
Lesion classes are pooled by radius (both signs and all contrasts of one radius: ``by radius``) for the main
table; ``audit.csv`` keeps every method x mask x contrast x lesion class (radius, contrast) x subject.

The distillation test (the paper's §4.3 / Fig. 5 claim that on-policy privileged distillation reduces hallucinated
anatomy) pairs ``nasp`` with ``nasp-base`` per subject on the false-structure rate (at the issue's threshold, the
faintest inserted lesion), NHE and the CR error |CR - 1|
(named without its bars, which would split a markdown row), each lower-is-better, with the mean difference, its
subject-bootstrap interval and a Wilcoxon signed-rank p, Holm-adjusted over the family of masks x measures. NHE
there is on each output's own phase (both NASP outputs are complex), the truth's phase standing in only for a
magnitude output. It is stated plainly whether the claim holds here.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from benchmark.audit.observers import CONSPICUITY_LEVELS, FAINTEST_CONTRAST, detection_auc, dprime_from_auc
from benchmark.reports.stats import BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED, holm, paired_wilcoxon, subject_bootstrap_ci

DISTILLED, BASE = "nasp", "nasp-base"
#: Measures of the distillation test, each lower-is-better, by the table they come from.
DISTILLATION_MEASURES = {"false structures / image": "slices", "NHE (own phase)": "slices", "CR error": "lesions"}


def subject_auc_interval(part: pd.DataFrame, resamples: int = BOOTSTRAP_RESAMPLES) -> tuple[float, float]:
    """95 % interval of the AUC when whole subjects (all their lesions) are resampled with replacement.

    With ``C[s, t]`` the (tie-halved) count of present scores of subject ``s`` above absent scores of subject
    ``t``, a resample drawing subject ``s`` ``w_s`` times has AUC ``wᵀ C w / (Σ w_s n_s)²``: exact, and one matrix
    product per resample instead of a Mann-Whitney test."""
    names, codes = np.unique(part["subject"].to_numpy(), return_inverse=True)
    present, absent = part["t_present"].to_numpy(), part["t_absent"].to_numpy()
    wins = (present[:, None] > absent[None, :]) + 0.5 * (present[:, None] == absent[None, :])
    by_subject = np.zeros((len(names), len(codes)))
    by_subject[codes, np.arange(len(codes))] = 1.0
    counts = by_subject @ wins @ by_subject.T  # C[s, t]
    draws = np.random.default_rng(BOOTSTRAP_SEED).integers(0, len(names), size=(resamples, len(names)))
    weights = np.stack([np.bincount(draw, minlength=len(names)) for draw in draws]).astype(float)
    lesions = weights @ by_subject.sum(axis=1)
    aucs = np.einsum("rs,st,rt->r", weights, counts, weights) / lesions**2
    return float(np.quantile(aucs, 0.025)), float(np.quantile(aucs, 0.975))


def lesion_cells(lesions: pd.DataFrame) -> pd.DataFrame:
    """Per mask x method x radius: mean CR [CI], AUC [CI], d' of the reconstruction and of the data, efficiency."""
    rows = []
    for (mask, method, radius), part in lesions.groupby(["mask", "method", "radius_px"], sort=False):
        auc = detection_auc(part["t_present"].to_numpy(), part["t_absent"].to_numpy())
        dprime, ceiling = dprime_from_auc(auc), float(part["dprime_data"].mean())
        # an observer at or below chance (AUC <= 0.5) has no efficiency: 0, not the square of a negative d'
        efficiency = (max(dprime, 0.0) / ceiling) ** 2 if ceiling > 0 else np.nan
        cr_low, cr_high = subject_bootstrap_ci(part["cr"].to_numpy(), part["subject"].to_numpy())
        auc_low, auc_high = subject_auc_interval(part)
        rows.append({"mask": mask, "method": method, "radius_px": radius, "lesions": len(part),
                     "cr": part["cr"].mean(), "cr_low": cr_low, "cr_high": cr_high,
                     "auc": auc, "auc_low": auc_low, "auc_high": auc_high, "dprime": dprime,
                     "dprime_data": ceiling, "efficiency": efficiency})  # fmt: skip
    return pd.DataFrame(rows)


def slice_cells(slices: pd.DataFrame) -> pd.DataFrame:
    """Per mask x method: NHE, data-consistency error and false structures per image at each conspicuity level,
    each mean [CI]."""
    levels = {f"false_c{level:g}": false_per_image(slices, level) for level in CONSPICUITY_LEVELS}
    frame = slices.assign(**levels)
    rows = []
    for (mask, method), part in frame.groupby(["mask", "method"], sort=False):
        row = {"mask": mask, "method": method, "slices": len(part)}
        for column in ("nhe_own_phase", "nhe_truth_phase", "dc_error", *levels):
            values = part[column].to_numpy(dtype=float)
            low, high = subject_bootstrap_ci(values, part["subject"].to_numpy())
            row |= {column: values.mean(), f"{column}_low": low, f"{column}_high": high}
        rows.append(row)
    return pd.DataFrame(rows)


def false_per_image(slices: pd.DataFrame, level: float) -> pd.Series:
    """Each slice's false structures, every radius and sign, at least as conspicuous as contrast ``level``."""
    return slices.filter(regex=rf"^false_.*_c{level:g}$").sum(axis=1)


def own_phase_nhe(slices: pd.DataFrame) -> pd.Series:
    """NHE on each output's own phase; a magnitude-only output (no phase of its own) on the truth's."""
    return slices["nhe_own_phase"].fillna(slices["nhe_truth_phase"])


def tidy_audit(lesions: pd.DataFrame) -> pd.DataFrame:
    """``audit.csv``: one row per method x mask x contrast x lesion class x subject."""
    keys = ["method", "mask", "contrast", "radius_px", "lesion_contrast", "subject"]
    grouped = lesions.groupby(keys, sort=False)
    return grouped.agg(
        lesions=("cr", "size"), cr=("cr", "mean"), t_present=("t_present", "mean"),
        t_absent=("t_absent", "mean"), dprime_data=("dprime_data", "mean"),
    ).reset_index()  # fmt: skip


def distillation_test(lesions: pd.DataFrame, slices: pd.DataFrame) -> pd.DataFrame:
    """Per mask x measure: base and distilled per-subject means, their difference [CI], Wilcoxon p, Holm p."""
    per_subject = {
        "slices": slices.assign(
            **{
                "false structures / image": false_per_image(slices, FAINTEST_CONTRAST),
                "NHE (own phase)": own_phase_nhe(slices),
            }
        ),  # fmt: skip
        "lesions": lesions.assign(**{"CR error": (lesions["cr"] - 1).abs()}),
    }
    rows = []
    for measure, source in DISTILLATION_MEASURES.items():
        frame = per_subject[source]
        for mask, part in frame[frame["method"].isin([BASE, DISTILLED])].groupby("mask", sort=False):
            means = part.groupby(["subject", "method"])[measure].mean().unstack("method").dropna()
            if not {BASE, DISTILLED} <= set(means.columns) or means.empty:
                continue
            difference = (means[DISTILLED] - means[BASE]).to_numpy()
            low, high = subject_bootstrap_ci(difference, means.index.to_numpy())
            rows.append({"mask": mask, "measure": measure, "subjects": len(means), BASE: means[BASE].mean(),
                         DISTILLED: means[DISTILLED].mean(), "difference": difference.mean(), "low": low,
                         "high": high, "p": paired_wilcoxon(means[DISTILLED], means[BASE])})  # fmt: skip
    table = pd.DataFrame(rows)
    if not table.empty:
        table["p_holm"] = holm(table["p"].tolist())
    return table


def distillation_verdict(test: pd.DataFrame) -> str:
    """One plain sentence: does distillation reduce hallucination here?"""
    if test.empty:
        return f"No distillation verdict: the audit needs both {DISTILLED} and {BASE}."
    better = test[(test["high"] < 0) & (test["p_holm"] < 0.05)]
    worse = test[(test["low"] > 0) & (test["p_holm"] < 0.05)]
    subjects = int(test["subjects"].min())
    lowers = ", ".join(f"{r.measure} on {r.mask}" for r in better.itertuples())
    raises = ", ".join(f"{r.measure} on {r.mask}" for r in worse.itertuples())
    if len(better) and not len(worse):
        return f"The claim holds at this size ({subjects} subjects): distillation lowers {lowers} (Holm p < 0.05)."
    if len(better):
        return (
            f"The claim is not supported at this size ({subjects} subjects): distillation lowers {lowers} but "
            f"raises {raises} (Holm p < 0.05)."
        )
    if len(worse):
        return f"The claim does not hold at this size ({subjects} subjects): distillation raises {raises}."
    return (
        f"The claim is not shown at this size ({subjects} subjects): no measure differs significantly between "
        f"{DISTILLED} and {BASE} after Holm's correction."
    )
