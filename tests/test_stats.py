"""Subject bootstrap, exact Wilcoxon, Holm and power against known answers; families, bold and differences."""

import itertools
import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm, wilcoxon

from benchmark.reports.differences import ablation_differences, distillation_differences
from benchmark.reports.significance import BETTER_MARK, annotate, mask_stats
from benchmark.reports.stats import (
    holm,
    minimum_detectable_difference,
    paired_power,
    paired_wilcoxon,
    subject_bootstrap_ci,
    subjects_needed,
)
from benchmark.reports.tables import mask_table


def test_subject_bootstrap_covers_the_true_mean_at_about_the_nominal_rate():
    # Subjects differ (a shared effect per subject, sd 1) and their slices are correlated through it: an
    # interval that treated slices as independent would be far too narrow and cover much less than 95 %.
    rng = np.random.default_rng(0)
    true_mean, subjects, slices, trials = 3.0, 12, 4, 300
    covered = 0
    for trial in range(trials):
        effects = rng.normal(0.0, 1.0, subjects)
        values = (true_mean + effects[:, None] + rng.normal(0.0, 0.3, (subjects, slices))).ravel()
        ids = np.repeat(np.arange(subjects), slices)
        low, high = subject_bootstrap_ci(values, ids, resamples=1000, seed=trial)
        covered += low <= true_mean <= high
    assert 0.86 <= covered / trials <= 0.99, covered / trials


def test_wilcoxon_p_is_the_exact_value_of_a_hand_enumerated_sample():
    # Differences 1, -2, 3, 4, 5, 6 (no ties): W+ = 19 of 21. Enumerating all 2^6 sign patterns, the two-sided p
    # is the share of patterns whose W+ lies at least as far from its mean 10.5 as 19 does.
    differences = np.array([1.0, -2.0, 3.0, 4.0, 5.0, 6.0])
    ranks = np.arange(1, 7)
    observed = ranks[differences > 0].sum()
    extreme = sum(
        abs(sum(r for r, s in zip(ranks, signs, strict=True) if s) - 10.5) >= abs(observed - 10.5)
        for signs in itertools.product([0, 1], repeat=6)
    )
    exact = extreme / 2**6
    assert exact == pytest.approx(6 / 64)
    assert paired_wilcoxon(differences + 10, np.full(6, 10.0)) == pytest.approx(exact)
    assert wilcoxon(differences, method="exact").pvalue == pytest.approx(exact)
    for n in (5, 8, 12):
        better = np.arange(1, n + 1) * 0.1 + 20.0  # one method wins every subject by distinct margins
        assert paired_wilcoxon(better + np.arange(1, n + 1) * 0.01, better) == pytest.approx(2 / 2**n)
    assert paired_wilcoxon(np.ones(6), np.ones(6)) == 1.0


def test_holm_matches_a_hand_computed_example():
    # sorted: 0.005*4 = 0.02, 0.01*3 = 0.03, 0.03*2 = 0.06, 0.04*1 = 0.04 -> raised to the running max 0.06
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])


def test_subjects_needed_is_the_first_n_whose_smallest_holm_p_is_below_alpha():
    for tests in (1, 10, 300):
        needed = subjects_needed(tests)
        assert tests * 2 / 2**needed < 0.05 <= tests * 2 / 2 ** (needed - 1)


def test_power_formula_predicts_the_simulated_exact_test():
    """n = 24 subjects, a true paired difference of 0.5 SD: the exact signed-rank test's detection rate over
    2000 seeded trials matches the formula's power, at α and at α / 13 (a column family of 13 tests)."""
    rng = np.random.default_rng(7)
    subjects, trials = 24, 2000
    samples = rng.normal(0.5, 1.0, size=(trials, subjects))
    pvalues = np.array([wilcoxon(sample, method="exact").pvalue for sample in samples])
    for alpha in (0.05, 0.05 / 13):
        simulated = float((pvalues < alpha).mean())
        predicted = paired_power(0.5, 1.0, subjects, alpha)
        assert simulated == pytest.approx(predicted, abs=0.04), (alpha, simulated, predicted)


def test_minimum_detectable_difference_inverts_the_power_and_nears_the_normal_formula():
    for subjects, alpha in ((24, 0.05), (24, 0.05 / 13), (200, 0.01)):
        mdd = minimum_detectable_difference(2.0, subjects, alpha)
        assert paired_power(mdd, 2.0, subjects, alpha) == pytest.approx(0.8, abs=1e-6)
        # Large-sample closed form: (z_{1-α/2} + z_{0.8}) SD / sqrt(n 3/π); t quantiles make it a little larger.
        normal = (norm.ppf(1 - alpha / 2) + norm.ppf(0.8)) * 2.0 / math.sqrt(subjects * 3 / math.pi)
        assert normal < mdd < normal * (1.12 if subjects < 50 else 1.01)
    assert minimum_detectable_difference(1.0, 4, 0.05) == math.inf  # 2 / 2^4 > 0.05: nothing is detectable


def synthetic_run(subjects=24, methods=("best", "close", "worse"), metric="psnr_paper", masks=("radial",)):
    """One contrast: 'best' beats 'worse' on every subject by 0.5 + 0.01 x subject; 'close' is 'best' plus and minus
    interleaved margins of about 0.03 in turn (a little below it on average, no signed-rank evidence either way);
    'copy' is 'best' exactly; others are drawn below."""
    rng = np.random.default_rng(1)
    rows = []
    for mask, subject in itertools.product(masks, range(subjects)):
        base = 20.0 + subject
        best = base + 0.5 + 0.01 * subject
        close = best + (0.03 + 1e-4 * subject if subject % 2 else -0.03 - 1e-4 * (subject + 2))
        scores = {"best": best, "close": close, "worse": base, "copy": best}
        for method in methods:
            score = scores.get(method, base - rng.uniform(0.2, 1.0))
            rows.append(dict(method=method, mask=mask, contrast="T1", file=f"s{subject}.h5", slice=0,
                             patient_id=f"s{subject}", acceleration=32, **{metric: score}))  # fmt: skip
    return pd.DataFrame(rows)


def test_a_method_that_loses_every_subject_is_significant_and_identical_methods_are_not():
    table = synthetic_run(methods=("best", "close", "worse", "copy"))
    stats = mask_stats(table, None, "radial", ["psnr"], "paper").set_index("method")
    assert set(stats["reference"]) == {"best"} and np.isnan(stats.loc["best", "p"])
    assert stats.loc["worse", "p"] == pytest.approx(2 / 2**24)
    assert stats.loc["worse", "p_adjusted"] == pytest.approx(3 * 2 / 2**24)  # column family: 3 tests
    assert set(stats.loc[stats["p"].notna(), "family_size"]) == {3}
    assert stats.loc["copy", "p"] == 1.0 and stats.loc["copy", "difference"] == 0.0
    result = mask_table(table, "radial", "paper", {}, with_paper=False)
    annotate(result, stats.reset_index(), reference=None)
    assert result.bold["psnr|T1"] == {"best", "close", "copy"}  # 'worse' is the only one set apart
    assert any(note.startswith("Bold: the column's best") for note in result.notes)
    power = next(note for note in result.notes if note.startswith("Power: n = 24 subjects"))
    assert "PSNR T1" in power


def test_families_follow_the_question_asked():
    methods = ("nasp", "unet", "zero_filled", "nasp-base")
    table = pd.concat(
        [
            synthetic_run(methods=methods, metric=metric).assign(contrast=contrast)
            for metric in ("psnr_paper",)
            for contrast in ("T1", "T2")
        ]  # fmt: skip
    )
    table["ssim_paper"] = table["psnr_paper"] / 100
    column = mask_stats(table, None, "radial", ["psnr", "ssim"], "paper")
    assert set(column.loc[column["p"].notna(), "family_size"]) == {3}  # each column: 3 methods vs its best
    whole = mask_stats(table, None, "radial", ["psnr", "ssim"], "paper", family="table")
    assert set(whole.loc[whole["p"].notna(), "family_size"]) == {12}
    confirm = mask_stats(table, None, "radial", ["psnr", "ssim"], "paper", reference="nasp").set_index("method")
    # nasp vs the two baselines x 2 contrasts x PSNR/SSIM = 8 tests; nasp-base is its own variant: exploratory.
    assert set(confirm.loc[["unet", "zero_filled"], "family_size"]) == {8}
    assert confirm.loc["nasp-base", "exploratory"].all() and not confirm.loc["unet", "exploratory"].any()


def test_under_a_reference_a_better_method_is_marked_and_not_bold():
    table = synthetic_run(methods=("best", "worse"))
    table["method"] = table["method"].replace({"best": "unet", "worse": "nasp"})
    stats = mask_stats(table, None, "radial", ["psnr"], "paper", reference="nasp")
    result = mask_table(table, "radial", "paper", {}, with_paper=False)
    annotate(result, stats, reference="nasp")
    assert result.bold["psnr|T1"] == {"nasp"} and result.marks[("unet", "psnr|T1")] == BETTER_MARK


def test_table4_and_table5_differences_are_paired_per_subject():
    methods = ("nasp-base", "nasp-nocross", "nasp")
    table = synthetic_run(methods=("best", "worse", "close"), masks=("radial", "cartesian_x"))
    table["method"] = table["method"].replace({"best": "nasp-base", "worse": "nasp-nocross", "close": "nasp"})
    assert set(table["method"]) == set(methods)
    result, stats = ablation_differences(table, None, ["radial", "cartesian_x"], "paper")
    row = stats[(stats["method"] == "nasp-nocross") & (stats["mask"] == "radial")].iloc[0]
    subjects = np.arange(24)
    assert row["difference"] == pytest.approx(-(0.5 + 0.01 * subjects).mean())
    assert row["p"] == pytest.approx(2 / 2**24) and row["family_size"] == 2  # 1 variant x 2 masks x PSNR
    assert result.bold["radial|psnr"] == {"nasp-nocross"}
    table5, stats5 = distillation_differences(table, None, ["radial"], "paper")
    assert list(stats5["method"]) == ["nasp"] and stats5["reference"].iloc[0] == "nasp-base"
    assert table5.bold["psnr|T1"] == set()  # 'close' differs from the base by noise only
