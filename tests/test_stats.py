"""Subject bootstrap, paired Wilcoxon and Holm against known answers; significance marks in a table."""

import numpy as np
import pandas as pd
import pytest

from benchmark.reports.significance import MARK, annotate, mask_stats
from benchmark.reports.stats import holm, paired_wilcoxon, subject_bootstrap_ci, subjects_needed
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


def test_wilcoxon_p_is_the_exact_two_sided_value_when_one_method_wins_every_subject():
    for n in (5, 8, 12):
        better = np.arange(1, n + 1) * 0.1 + 20.0  # distinct margins: no ties
        assert paired_wilcoxon(better + np.arange(1, n + 1) * 0.01, better) == pytest.approx(2 / 2**n)
    assert paired_wilcoxon(np.ones(6), np.ones(6)) == 1.0


def test_holm_matches_a_hand_computed_example():
    # sorted: 0.005*4 = 0.02, 0.01*3 = 0.03, 0.03*2 = 0.06, 0.04*1 = 0.04 -> raised to the running max 0.06
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])


def test_subjects_needed_is_the_first_n_whose_smallest_holm_p_is_below_alpha():
    for tests in (1, 10, 300):
        needed = subjects_needed(tests)
        assert tests * 2 / 2**needed < 0.05 <= tests * 2 / 2 ** (needed - 1)


def synthetic_run(subjects=8):
    """Three methods on one mask and contrast: 'best' wins, 'close' ties it up to noise, 'worse' loses."""
    rng = np.random.default_rng(1)
    rows = []
    for subject in range(subjects):
        base = 20.0 + subject
        scores = {"best": base + 0.5 + 0.01 * subject, "close": base + 0.5 + rng.normal(0, 0.05), "worse": base}
        for method, score in scores.items():
            for slice_index in range(2):
                rows.append(
                    dict(method=method, mask="radial", contrast="T1", file=f"s{subject}.h5", slice=slice_index,
                         patient_id=f"s{subject}", acceleration=32, psnr_paper=score + 0.001 * slice_index)
                )  # fmt: skip
    return pd.DataFrame(rows)


def test_marks_flag_only_methods_indistinguishable_from_the_best_and_warn_when_underpowered():
    table = synthetic_run()
    stats = mask_stats(table, None, "radial", ["psnr"], "paper")
    by_method = stats.set_index("method")
    assert set(by_method["reference"]) == {"best"} and np.isnan(by_method.loc["best", "p"])
    assert by_method.loc["worse", "p"] == pytest.approx(2 / 2**8)
    result = mask_table(table, "radial", "paper", {}, with_paper=False)
    annotate(result, stats, reference=None)
    assert result.marks.get(("close", "psnr|T1")) == MARK
    assert ("worse", "psnr|T1") not in result.marks and ("best", "psnr|T1") not in result.marks
    assert not any(note.startswith("Warning") for note in result.notes)
    small = synthetic_run(subjects=2)
    result = mask_table(small, "radial", "paper", {}, with_paper=False)
    annotate(result, mask_stats(small, None, "radial", ["psnr"], "paper"), reference=None)
    assert any("Warning: 2 subjects" in note and "needs at least 7" in note for note in result.notes)


def test_a_chosen_reference_is_the_one_tested_against():
    stats = mask_stats(synthetic_run(), None, "radial", ["psnr"], "paper", reference="worse")
    assert set(stats["reference"]) == {"worse"}
    assert stats.set_index("method").loc["best", "p"] == pytest.approx(2 / 2**8)
