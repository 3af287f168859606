"""Acceleration sweeps: one run per R of the nested ladder, curves with one point per R per method, marks."""

import pytest
from test_runner import config_for

from benchmark.errors import BenchmarkError
from benchmark.reports.sweep import sweep_points, write_sweep_report
from benchmark.runner.sweep import read_sweep, run_sweep


@pytest.fixture(scope="module")
def sweep_dir(small_embedded, tmp_path_factory):
    out = tmp_path_factory.mktemp("sweep") / "run"
    # UNet's shipped checkpoint is trained at R = 32 on 256 x 256: scoring it here needs the explicit override.
    config = config_for(small_embedded, out, methods=("zero_filled", "unet"), masks=("radial", "cartesian_y"),
                        contrasts=("T1",), allow_mismatch=True)  # fmt: skip
    run_sweep(config, (8, 4, 32))
    return out


def test_a_sweep_holds_one_run_per_r_and_resumes(sweep_dir, small_embedded):
    assert sorted(read_sweep(sweep_dir)) == [4, 8, 32]
    config = config_for(small_embedded, sweep_dir, methods=("zero_filled", "unet"), masks=("radial", "cartesian_y"),
                        contrasts=("T1",), allow_mismatch=True)  # fmt: skip
    with pytest.raises(BenchmarkError, match="already holds a sweep"):
        run_sweep(config, (4, 8, 32))
    tables = run_sweep(config, (4, 8, 32), resume=True)  # everything finished: nothing recomputed
    assert {r: set(t["acceleration"]) for r, t in tables.items()} == {4: {4}, 8: {8}, 32: {32}}
    with pytest.raises(BenchmarkError, match="nested ladder"):
        run_sweep(config, (3, 8))


def test_curves_have_one_point_per_r_per_method_and_more_samples_score_higher(sweep_dir):
    points = sweep_points(sweep_dir, "paper")
    counts = points.groupby(["method", "mask", "contrast", "metric"])["acceleration"].agg(list)
    assert all(sorted(rs) == [4, 8, 32] for rs in counts)
    # Nested masks: zero filling at R = 4 sees every sample R = 8 sees, and more; its PSNR must not drop.
    zero = points[(points["method"] == "zero_filled") & (points["metric"] == "psnr")]
    for _, line in zero.groupby("mask"):
        means = line.sort_values("acceleration")["mean"].to_list()
        assert means[0] > means[1] > means[2]
    labels = dict(zip(points["method"], points["label"], strict=False))
    assert labels["unet"] == "UNet (trained at R = 32)" and labels["zero_filled"] == "Zero-filled"


def test_sweep_report_writes_a_report_per_r_and_the_curves(sweep_dir, tmp_path):
    written = {path.relative_to(tmp_path).as_posix() for path in write_sweep_report(sweep_dir, tmp_path, "paper")}
    assert {"R4/tables.md", "R8/tables.md", "R32/tables.md", "sweep_points.csv"} <= written
    assert {"sweep_psnr_paper.png", "sweep_ssim_paper.pdf"} <= written
    assert "scored outside its training setting" in (tmp_path / "R8" / "tables.md").read_text()
