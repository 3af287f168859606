"""The training-noise report: per-seed means, their range and SD, and gaps to the other methods, on tables
whose means are known by construction."""

import pandas as pd
import pytest

from benchmark.errors import BenchmarkError
from benchmark.reports.seeds import WITHIN_NOISE, seed_markdown, seed_spread
from benchmark.runner.record import RunRecord

# Per-(method, mask) mean PSNR of each contrast: the mask's mean is the mean of the two.
MAIN = {("unet", "radial"): (30.0, 32.0), ("e2evarnet", "radial"): (31.0, 32.0),
        ("unet", "cartesian_x"): (30.0, 32.0), ("e2evarnet", "cartesian_x"): (32.0, 34.0)}  # fmt: skip


def run(means: dict, seed: int = 0):
    rows = []
    for (method, mask), per_contrast in means.items():
        for contrast, mean in zip(("T1", "T2"), per_contrast, strict=True):
            for image, offset in enumerate((-0.5, 0.5)):  # two images whose mean is ``mean``
                rows.append(dict(method=method, mask=mask, contrast=contrast, file=f"{contrast}.h5", slice=image,
                                 psnr_paper=mean + offset, ssim_paper=0.5 + mean / 100 + offset / 100))  # fmt: skip
    methods = {method: {"training_seed": seed} for method, _ in means}
    return pd.DataFrame(rows), None, RunRecord(config={}, config_hash="c", data_hash="d", methods=methods, metrics={})


def seed_run(shift: float, seed: int):
    return run({key: tuple(v + shift for v in value) for key, value in MAIN.items() if key[0] == "unet"}, seed)


def test_seed_range_sd_and_gaps_match_hand_computed_values():
    spread = seed_spread(run(MAIN), [seed_run(0.5, 1), seed_run(-0.2, 2)], "paper")
    psnr = spread[spread["metric"] == "psnr"].set_index("mask")
    # UNet's radial means over seeds 0, 1, 2: 31.0, 31.5, 30.8 -> range 0.7, SD sqrt(0.26 / 2).
    radial = psnr.loc["radial"]
    assert radial["seeds"] == [0, 1, 2]
    assert radial["seed_means"] == pytest.approx([31.0, 31.5, 30.8])
    assert radial["seed_range"] == pytest.approx(0.7)
    assert radial["seed_sd"] == pytest.approx((0.26 / 2) ** 0.5)
    # E2E-VarNet is 0.5 dB better on radial (within the 0.7 dB seed range) and 2 dB on Cartesian-X (beyond it).
    assert radial["gap"] == pytest.approx(0.5) and radial["within_noise"]
    assert psnr.loc["cartesian_x"]["gap"] == pytest.approx(2.0) and not psnr.loc["cartesian_x"]["within_noise"]
    text = seed_markdown(spread, "Data: synthetic.")
    assert f"+0.50 {WITHIN_NOISE}" in text and "+2.00 |" in text and "31.00 / 31.50 / 30.80" in text


def test_seed_runs_must_hold_one_method_of_the_main_run_on_the_same_data():
    two_methods = run(MAIN, 1)
    with pytest.raises(BenchmarkError, match="same single method"):
        seed_spread(run(MAIN), [two_methods], "paper")
    other_data = seed_run(0.1, 1)
    other_data[2].data_hash = "other"
    with pytest.raises(BenchmarkError, match="differs from the main run"):
        seed_spread(run(MAIN), [other_data], "paper")
