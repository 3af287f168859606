"""Uncertainty and significance for table cells: a subject bootstrap, paired Wilcoxon tests, Holm's correction.

Slices of one subject are not independent, so the unit of resampling and of testing is the subject: a cell's
confidence interval resamples whole subjects (all their images together) with replacement and recomputes the
cell's mean over images (percentile interval, seeded); the paired test compares two methods' per-subject means
with the Wilcoxon signed-rank test (``scipy.stats.wilcoxon``, exact for small samples). Written by hand: the
cluster bootstrap (``scipy.stats.bootstrap`` resamples observations, not clusters with unequal sizes) and Holm's
step-down adjustment (a few lines; ``scipy`` has only Benjamini-Hochberg).

Power: the minimum detectable paired difference at 80 % power is the difference a two-sided test at level
α/m detects with probability 0.8 (m tests in the family: Holm's first, strictest step, so a lower bound on
the power of every step). The signed-rank test's power is approximated by the paired t-test's on n·3/π
pairs (its asymptotic relative efficiency under normal differences, Lehmann 1975), through the noncentral t
distribution; ``tests/test_stats.py`` checks the approximation against a seeded simulation of the exact test.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.optimize import brentq
from scipy.stats import nct, wilcoxon
from scipy.stats import t as student_t

ALPHA = 0.05
#: The power a minimum detectable difference is computed for.
POWER = 0.8
#: Asymptotic relative efficiency of the signed-rank test to the t-test for normal differences.
WILCOXON_EFFICIENCY = 3 / math.pi
BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 0


def subject_bootstrap_ci(
    values: np.ndarray,
    subjects: np.ndarray,
    level: float = 0.95,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
) -> tuple[float, float]:
    """Percentile interval of the mean over images when whole subjects are resampled with replacement."""
    names, codes = np.unique(subjects, return_inverse=True)
    sums = np.bincount(codes, weights=values, minlength=len(names))
    counts = np.bincount(codes, minlength=len(names)).astype(float)
    draws = np.random.default_rng(seed).integers(0, len(names), size=(resamples, len(names)))
    means = sums[draws].sum(axis=1) / counts[draws].sum(axis=1)
    tail = (1 - level) / 2
    return float(np.quantile(means, tail)), float(np.quantile(means, 1 - tail))


def paired_wilcoxon(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sided p of the Wilcoxon signed-rank test on paired per-subject values (1.0 when all pairs tie)."""
    differences = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    if np.allclose(differences, 0.0, rtol=0, atol=1e-12):
        return 1.0
    return float(wilcoxon(a, b, alternative="two-sided").pvalue)


def holm(pvalues: list[float]) -> list[float]:
    """Holm's step-down adjusted p-values, in the input order."""
    order = np.argsort(pvalues, kind="stable")
    count = len(pvalues)
    adjusted = np.empty(count)
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (count - rank) * pvalues[index]))
        adjusted[index] = running
    return adjusted.tolist()


def paired_power(difference: float, sd: float, subjects: int, alpha: float) -> float:
    """Power of the two-sided paired signed-rank test at level ``alpha`` to detect a true mean paired difference
    ``difference`` between subjects whose differences have standard deviation ``sd`` (module docstring)."""
    if 2 / 2**subjects > alpha:
        return 0.0  # the exact test's smallest p cannot fall below alpha
    freedom = subjects - 1
    noncentrality = abs(difference) / sd * math.sqrt(subjects * WILCOXON_EFFICIENCY)
    critical = student_t.ppf(1 - alpha / 2, freedom)
    # The far tail (a sign error) is negligible where scipy's noncentral t underflows to NaN.
    far = float(np.nan_to_num(nct.cdf(-critical, freedom, noncentrality), nan=0.0))
    return float(nct.sf(critical, freedom, noncentrality)) + far


def minimum_detectable_difference(sd: float, subjects: int, alpha: float, power: float = POWER) -> float:
    """The smallest true paired difference detected with probability ``power`` (inf if none can be; NaN
    without a spread)."""
    if subjects < 2 or not sd > 0:
        return math.nan
    if 2 / 2**subjects > alpha:
        return math.inf
    upper = sd
    while paired_power(upper, sd, subjects, alpha) < power:
        upper *= 2
    return float(brentq(lambda d: paired_power(d, sd, subjects, alpha) - power, 0.0, upper, xtol=1e-10 * sd))


def subjects_needed(tests: int, alpha: float = ALPHA) -> int:
    """Fewest subjects for which the exact Wilcoxon test's smallest p (2 / 2^n), Holm-adjusted over ``tests``
    tests, can fall below ``alpha``."""
    return math.floor(math.log2(2 * max(tests, 1) / alpha)) + 1


@dataclass(frozen=True)
class CellStats:
    mean: float
    ci_low: float
    ci_high: float
    n_subjects: int


def cell_stats(frame: pd.DataFrame, column: str) -> CellStats:
    """Mean over rows of ``frame[column]`` with its subject-bootstrap interval (rows carry ``patient_id``)."""
    rows = frame[np.isfinite(frame[column])]
    values, subjects = rows[column].to_numpy(float), rows["patient_id"].astype(str).to_numpy()
    if len(values) == 0:
        return CellStats(math.nan, math.nan, math.nan, 0)
    low, high = subject_bootstrap_ci(values, subjects)
    return CellStats(float(values.mean()), low, high, len(np.unique(subjects)))


def subject_means(frame: pd.DataFrame, column: str) -> pd.DataFrame:
    """Per-subject means, subjects x methods (only subjects every method has)."""
    finite = frame[np.isfinite(frame[column])]
    return finite.pivot_table(index="patient_id", columns="method", values=column, aggfunc="mean").dropna()
