"""`python -m benchmark perf`: one row per method and batch size, counted FLOPs, random paper weights (a method
trained in stages too, without any stage's checkpoint), one line for bad input."""

import subprocess
import sys
from dataclasses import replace

import pandas as pd
import pytest
import torch

from benchmark.errors import BenchmarkError
from benchmark.perf import PerfRequest, build_for_timing, run_perf
from benchmark.registry import get_training_class

SIZE = (64, 64)  # the small embedded dataset's


def test_perf_writes_one_row_per_method_and_batch_with_counted_flops(small_embedded, tmp_path):
    out = tmp_path / "perf.csv"
    request = PerfRequest(methods=("zero_filled", "unet"), data=small_embedded, out=out, batches=(1, 2), repeats=2,
                          size=SIZE)  # fmt: skip
    table = run_perf(request)
    pd.testing.assert_frame_equal(pd.read_csv(out), table, check_dtype=False)
    assert list(zip(table["method"], table["batch"], strict=True)) == [
        ("zero_filled", 1), ("zero_filled", 2), ("unet", 1), ("unet", 2)]  # fmt: skip
    rows = table.set_index(["method", "batch"])
    assert rows.loc[("zero_filled", 1), "flops_per_image"] == 0  # FFTs are not counted, as documented
    assert rows.loc[("unet", 1), "flops_per_image"] > 0 and rows.loc[("unet", 1), "parameters"] > 0
    assert (table["s_per_image_min"] <= table["s_per_image"]).all()
    assert (table["s_per_image"] <= table["s_per_image_max"]).all()
    assert table["weights"].str.startswith(("shipped", "none")).all()


def test_paper_profile_times_random_weights_even_of_a_method_trained_in_stages(small_embedded, tmp_path):
    request = PerfRequest(methods=("unet",), data=small_embedded, out=tmp_path / "a.csv", profile="paper",
                          batches=(1,), repeats=1, warmup=0, size=SIZE)  # fmt: skip
    assert run_perf(request)["weights"].tolist() == ["random (timing only)"]
    # No paper checkpoint of any MDPG stage exists: it builds all the same, on no parents.
    assert not get_training_class("mdpg", "prior").shipped_checkpoint("paper").exists()
    method, weights = build_for_timing("mdpg", "paper", torch.device("cpu"))
    assert weights == "random (timing only)" and method.parents == {} and not method.model.training


def test_perf_command_rejects_a_bad_batch_list_in_one_line(small_embedded):
    result = subprocess.run([sys.executable, "-m", "benchmark", "perf", "--methods", "zero_filled", "--batch", "1,x",
                             "--data", str(small_embedded)], capture_output=True, text=True)  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.strip() == "error: --batch must be comma-separated integers, got '1,x'"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_perf_times_on_the_gpu_with_peak_memory(small_embedded, tmp_path):
    request = PerfRequest(methods=("unet",), data=small_embedded, out=tmp_path / "gpu.csv", batches=(2,),
                          device=torch.device("cuda"), repeats=2, size=SIZE)  # fmt: skip
    assert run_perf(request)["peak_memory_bytes"].iloc[0] > 0


def test_switches_are_timed_one_flip_at_a_time_and_exact_ones_change_nothing(ci_embedded, tmp_path):
    request = PerfRequest(
        methods=("zero_filled", "nasp-base"),
        data=ci_embedded,
        out=tmp_path / "s.csv",
        batches=(1,),
        repeats=1,
        warmup=0,
        switches=("kv_cache", "sdpa"),
    )  # not compile: minutes
    with pytest.raises(
        BenchmarkError, match=r"--switches fast: no such switch in zero_filled, nasp-base \(known: bf16"
    ):
        run_perf(replace(request, switches=("fast",)))
    table = run_perf(request).set_index(["method", "setting"])
    assert list(table.index) == [("zero_filled", "default"), ("nasp-base", "default"),
                                 ("nasp-base", "kv_cache=off"), ("nasp-base", "sdpa=off")]  # fmt: skip
    assert table.loc[("nasp-base", "kv_cache=off"), "switches"] == "kv_cache=0,sdpa=1,bf16=0,compile=0"
    flipped = table.loc[[("nasp-base", "kv_cache=off"), ("nasp-base", "sdpa=off")], "max_rel_difference"]
    assert (flipped < 1e-4).all()  # both compute the same image
    # Without the cache every scale re-runs the earlier scales' tokens: strictly more work.
    assert table.loc[("nasp-base", "kv_cache=off"), "flops_per_image"] > table.loc[("nasp-base", "default"),
                                                                                    "flops_per_image"]  # fmt: skip


def test_scoring_paths_are_timed_side_by_side_and_agree_with_skimage(small_embedded, tmp_path):
    request = PerfRequest(methods=("zero_filled",), data=small_embedded, out=tmp_path / "c.csv", batches=(1, 3),
                          repeats=2, size=SIZE, time_scoring=True)  # fmt: skip
    table = run_perf(request)
    scoring = table[table["method"].str.startswith("scoring")]
    assert list(zip(scoring["method"], scoring["batch"], strict=True)) == [
        ("scoring (torch, batched)", 1), ("scoring (skimage, per slice)", 1),
        ("scoring (torch, batched)", 3), ("scoring (skimage, per slice)", 3)]  # fmt: skip
    torch_rows = scoring[scoring["method"] == "scoring (torch, batched)"]
    assert (torch_rows["max_rel_difference"] < 1e-4).all()  # scikit-image is the independent reference


def test_the_report_throughput_table_takes_the_perf_rows_of_the_run_methods(tmp_path):
    from benchmark.reports.throughput import load_perf, throughput_table

    rows = [dict(method=m, setting=s, batch=b, s_per_image=t, parameters=p, flops_per_image=f,
                 fraction_of_peak=q, profile="tiny", device="cpu", weights="shipped", measured_peak_flops=1e11)
            for m, s, b, t, p, f, q in [("unet", "default", 1, 0.5, 2e6, 4e9, 0.08),
                                        ("unet", "default", 8, 0.1, 2e6, 4e9, 0.4),
                                        ("unet", "bf16=on", 8, 0.05, 2e6, 4e9, 0.8),
                                        ("other", "default", 1, 1.0, 1e6, 1e9, 0.01),
                                        ("other", "default", 8, 1.0, 1e6, 1e9, 0.01)]]  # fmt: skip
    path = tmp_path / "perf.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    table = throughput_table(load_perf(path), ["zero_filled", "unet"], str(path))
    assert table.rows == ["unet"]
    values = table.values.loc["unet"]
    assert values["runtime|s/image B=1"] == 0.5 and values["runtime|s/image B=8"] == 0.1  # default setting only
    assert values["runtime|params (M)"] == 2.0 and values["runtime|GFLOP/image"] == 4.0
    assert values["runtime|% of peak (largest B)"] == pytest.approx(40.0)
    assert table.notes == ["not in the perf table: Zero-filled"]
    pd.DataFrame({"method": ["unet"]}).to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(BenchmarkError, match=r"bad.csv: not a `benchmark perf` table \(missing columns batch"):
        load_perf(tmp_path / "bad.csv")
    pd.DataFrame(rows[:2] * 2).to_csv(tmp_path / "twice.csv", index=False)
    with pytest.raises(BenchmarkError, match="twice.csv: unet is timed more than once at batch 1"):
        load_perf(tmp_path / "twice.csv")
    with pytest.raises(BenchmarkError, match="times none of this run's methods"):
        throughput_table(load_perf(path), ["zero_filled"], str(path))
