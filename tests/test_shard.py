"""Sharded evaluation under torchrun: the split of units among ranks, a 2-rank CPU run (gloo) against one process,
and a sharded run killed with SIGKILL then resumed at another world size."""

import os
import re
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest
from conftest import finished_units

from benchmark.runner.shard import assign

#: The columns a sharded run may change: how long and how much memory each image took.
TIMING_COLUMNS = ["runtime_s", "peak_memory_bytes"]


def test_assign_gives_every_unit_to_exactly_one_rank_longest_first():
    costs = [5.0, 4.0, 3.0, 3.0, 3.0]
    # Longest first to the least-loaded rank: 5 -> 0, 4 -> 1, 3 -> 1 (7), 3 -> 0 (8), 3 -> 1 (10).
    assert assign(costs, 2) == [[0, 3], [1, 2, 4]]
    assert assign(costs, 1) == [[0, 1, 2, 3, 4]]
    assert assign([1.0], 3) == [[0], [], []]


@pytest.mark.parametrize("world", [2, 3, 7])
def test_assign_partitions_and_stays_within_the_greedy_bound(world):
    costs = [float((7 * index) % 11 + 1) for index in range(40)]
    shares = assign(costs, world)
    assert sorted(index for share in shares for index in share) == list(range(len(costs)))
    loads = [sum(costs[index] for index in share) for share in shares]
    # Graham's bound for list scheduling: no rank exceeds the mean load by more than the largest item.
    assert max(loads) <= sum(costs) / world + max(costs)


def arguments(data, out):
    return ["run", "--methods", "zero_filled,cs_wavelet", "--data", str(data), "--out", str(out),
            "--device", "cpu", "--size", "64", "64"]  # fmt: skip


def torchrun(*args):
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    return command + ["-m", "benchmark", *args]


ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}


@pytest.fixture(scope="module")
def single_process_table(small_embedded, tmp_path_factory):
    out = tmp_path_factory.mktemp("single") / "run"
    result = subprocess.run([sys.executable, "-m", "benchmark", *arguments(small_embedded, out)],
                            capture_output=True, text=True, env=ENV)  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    return pd.read_csv(out / "metrics.csv")


def same_table(table: pd.DataFrame, reference: pd.DataFrame) -> None:
    assert list(table.columns) == list(reference.columns)
    kept = [column for column in reference.columns if column not in TIMING_COLUMNS]
    pd.testing.assert_frame_equal(table[kept], reference[kept])


def test_two_ranks_split_the_units_and_merge_the_single_process_table(small_embedded, tmp_path, single_process_table):
    out = tmp_path / "sharded"
    result = subprocess.run(torchrun(*arguments(small_embedded, out)), capture_output=True, text=True, env=ENV)
    assert result.returncode == 0, result.stderr[-3000:]
    # Work is shared as (method, mask, volume group) items; each small test volume's 2 slices fill a batch of the
    # CPU's default size 2, so every volume is a group of its own.
    total = len(single_process_table.groupby(["method", "mask", "file"]))
    # The ranks print at the same moment: their lines may run together, so match them anywhere.
    counts = dict(re.findall(r"rank (\d) of 2: (\d+) of \d+ items", result.stderr))
    shares = [int(counts[str(rank)]) for rank in (0, 1)]
    assert all(share > 0 for share in shares) and sum(shares) == total, result.stderr[-2000:]
    assert result.stdout.count("per-image table:") == 1  # rank 0 alone reports
    same_table(pd.read_csv(out / "metrics.csv"), single_process_table)


def test_a_killed_sharded_run_resumes_in_one_process_to_the_same_table(small_embedded, tmp_path, single_process_table):
    out = tmp_path / "killed"
    process = subprocess.Popen(torchrun(*arguments(small_embedded, out)), stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True, env=ENV, start_new_session=True)  # fmt: skip
    deadline = time.time() + 180
    while time.time() < deadline and process.poll() is None and len(finished_units(out)) < 3:
        time.sleep(0.02)
    os.killpg(process.pid, signal.SIGKILL)  # torchrun and both ranks at once, mid-run
    process.wait()
    assert process.returncode == -signal.SIGKILL, f"the run ended before it was killed: {process.stderr.read()[-500:]}"
    assert not (out / "metrics.csv").exists()
    resumed = subprocess.run([sys.executable, "-m", "benchmark", *arguments(small_embedded, out), "--resume"],
                             capture_output=True, text=True, env=ENV)  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    same_table(pd.read_csv(out / "metrics.csv"), single_process_table)
