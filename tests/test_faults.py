"""Faults mid-training: a `train` process killed with SIGKILL at a random step resumes with `--resume` to the
final weights of an uninterrupted run, bit for bit on the CPU. (A killed run is in test_runner.py and a killed
sharded run in test_shard.py.)"""

import os
import random
import signal
import subprocess
import sys
import time

import pytest
import torch

STEPS = 10


def train_command(data, out, *extra):
    return [sys.executable, "-m", "benchmark", "train", "unet", "--profile", "tiny", "--data", str(data),
            "--out", str(out), "--device", "cpu", "--size", "64", "64", "--steps", str(STEPS), *extra]  # fmt: skip


def saved_step(path) -> int:
    try:
        return int(torch.load(path, map_location="cpu", weights_only=True)["step"])
    except (FileNotFoundError, RuntimeError, EOFError):
        return 0  # not written yet (the write itself is atomic: never seen half done)


ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}


@pytest.fixture(scope="module")
def uninterrupted(small_embedded, tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("straight")
    straight = subprocess.run(train_command(small_embedded, out), capture_output=True, text=True, env=ENV)
    assert straight.returncode == 0, straight.stderr[-2000:]
    return torch.load(out / "last.pt", map_location="cpu", weights_only=True)


@pytest.mark.parametrize("seed", [0, 1])
def test_train_killed_at_a_random_step_resumes_to_the_uninterrupted_weights(small_embedded, tmp_path, seed,
                                                                            uninterrupted):  # fmt: skip
    kill_after = random.Random(seed).randint(2, STEPS - 3)
    out = tmp_path / "killed"
    process = subprocess.Popen(train_command(small_embedded, out, "--save-every", "1"), stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, env=ENV)  # fmt: skip
    deadline = time.time() + 180
    while time.time() < deadline and process.poll() is None and saved_step(out / "last.pt") < kill_after:
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL, "training ended before it was killed"
    killed_at = saved_step(out / "last.pt")
    assert kill_after <= killed_at < STEPS
    resumed = subprocess.run(train_command(small_embedded, out, "--save-every", "1", "--resume"), capture_output=True,
                             text=True, env=ENV)  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    # It continued from the checkpoint (the progress bar starts there), not from scratch.
    assert f" {killed_at}/{STEPS} [" in resumed.stderr and f" 0/{STEPS} [" not in resumed.stderr
    final = torch.load(out / "last.pt", map_location="cpu", weights_only=True)
    reference = uninterrupted
    assert final["step"] == reference["step"] == STEPS
    for key, value in reference["model"].items():
        assert torch.equal(final["model"][key], value), key
