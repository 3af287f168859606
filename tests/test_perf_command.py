"""`python -m benchmark perf`: one row per method and batch size, counted FLOPs, random paper weights where a
method can be assembled without checkpoints, and one line where it cannot."""

import subprocess
import sys

import pandas as pd
import pytest
import torch

from benchmark.errors import BenchmarkError
from benchmark.perf import PerfRequest, run_perf

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


def test_paper_profile_times_random_weights_or_says_what_is_missing(small_embedded, tmp_path):
    request = PerfRequest(methods=("unet",), data=small_embedded, out=tmp_path / "a.csv", profile="paper",
                          batches=(1,), repeats=1, warmup=0, size=SIZE)  # fmt: skip
    assert run_perf(request)["weights"].tolist() == ["random (timing only)"]
    with pytest.raises(BenchmarkError, match="mdpg: cannot assemble the paper profile on random weights"):
        run_perf(PerfRequest(methods=("mdpg",), data=small_embedded, out=tmp_path / "b.csv", profile="paper",
                             batches=(1,), repeats=1, size=SIZE))  # fmt: skip
    assert not (tmp_path / "b.csv").exists()


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
