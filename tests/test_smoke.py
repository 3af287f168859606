"""``smoke``: each step of a method's path in its own process, every stage on the one trained before it in the
smoke's own folders, then one test volume run and reported; and the lowered samplers it runs with are what they say."""

from __future__ import annotations

import json

import h5py
import pandas as pd
import pytest
import torch

from benchmark.errors import BenchmarkError, InputError
from benchmark.io import sha256_file
from benchmark.masks import make_mask
from benchmark.method import ReconBatch
from benchmark.physics import MultiCoilOperator
from benchmark.registry import get_method_class
from benchmark.smoke import SmokeRequest, SmokeStep, run_step, smoke
from benchmark.training.loop import TrainRequest, train


def _best(path):
    return torch.load(path, map_location="cpu", weights_only=True)


def test_a_paper_smoke_trains_one_step_then_runs_and_reports_one_slice(ci_embedded, tmp_path):
    out = tmp_path / "paper"
    request = SmokeRequest(methods=("zero_filled", "unet"), profile="paper", data=ci_embedded, out=out, device="cpu")
    rows = smoke(request)
    assert [(r["method"], r["step"]) for r in rows] == [
        ("unet", "train unet"), ("zero_filled", "run"), ("zero_filled", "report"), ("unet", "run"), ("unet", "report")
    ]  # fmt: skip
    best = _best(out / "train" / "unet" / "best.pt")
    assert (best["profile"], best["last_step"], best["training_slices"]) == ("paper", 1, 1)
    assert best["train_config"]["val_slices"] == 1
    (test_file,) = (out / "data" / "test").iterdir()
    with h5py.File(test_file) as file:
        slices = file["kspace"].shape[0]
    for name in ("zero_filled", "unet"):
        metrics = pd.read_csv(out / "runs" / name / "metrics.csv")
        assert len(metrics) == slices and set(metrics["mask"]) == {"gaussian_2d"}  # one volume, one mask
        assert json.loads((out / "runs" / name / "run.json").read_text())["config"]["profile"] == "paper"
        assert (out / "reports" / name / "tables.md").is_file()
    run_config = json.loads((out / "runs" / "unet" / "run.json").read_text())["config"]
    assert run_config["checkpoints"] == {"unet": str(out / "train" / "unet" / "best.pt")}  # not the shipped one
    assert all(float(r["peak_rss_mib"]) > 100 for r in rows)  # a Python process holding torch: its own peak
    logs = {path: path.stat().st_mtime_ns for path in (out / "logs").iterdir()}
    assert [(r["method"], r["step"]) for r in smoke(request)] == [(r["method"], r["step"]) for r in rows]
    assert {path: path.stat().st_mtime_ns for path in (out / "logs").iterdir()} == logs  # a rerun runs nothing


def test_a_tiny_nasp_smoke_chains_each_stage_on_the_one_trained_before_it(ci_embedded, tmp_path):
    out = tmp_path / "tiny"
    rows = smoke(SmokeRequest(methods=("nasp-base",), profile="tiny", data=ci_embedded, out=out, device="cpu"))
    assert [r["step"] for r in rows] == ["train tokenizer", "train transformer", "run", "report"]
    tokenizer = out / "train" / "nasp" / "tokenizer" / "best.pt"
    transformer = _best(out / "train" / "nasp" / "transformer" / "best.pt")
    parent = transformer["provenance"]["tokenizer"]
    assert (parent["path"], parent["sha256"]) == (str(tokenizer), sha256_file(tokenizer))
    assert transformer["capacity_gate"]["below_capacity"]  # the one-step tokenizer missed its floor: recorded
    assert not list((out / "train").rglob("last.pt"))  # each finished stage's resume state is dropped at once
    assert set(pd.read_csv(out / "runs" / "nasp-base" / "metrics.csv")["method"]) == {"nasp-base"}


def test_a_failing_step_names_its_command_and_log(tmp_path):
    with pytest.raises(BenchmarkError, match=r"failed \(exit 2; log .*x-run\.log\)") as error:
        run_step(SmokeStep("x", "run", ("run", "--methods")), tmp_path)
    assert "--methods" in str(error.value) and "expected one argument" in (tmp_path / "x-run.log").read_text()


def _counted_evaluations(method) -> list[int]:
    """The batch size of every network evaluation ``method`` makes."""
    calls = []
    method.model.register_forward_hook(lambda module, args, output: calls.append(args[0].shape[0]))
    return calls


def test_lowered_sampler_counts_are_the_network_evaluations_made():
    """DiffuseRecon evaluates its network samples x coarse_steps times on the samples' chains, then refine_steps
    times on their average: lowered to (1, 2, 1), three single-image evaluations."""
    method = get_method_class("diffuserecon")("tiny", torch.device("cpu"), for_training=True)
    method.model.eval()
    method.reduce_sampler(samples=1, coarse_steps=2, refine_steps=1)
    maps = torch.ones(1, 1, 64, 64, dtype=torch.complex64)
    mask = make_mask("gaussian_2d", (64, 64), 32, 0)[None]
    image = torch.randn(1, 64, 64, dtype=torch.complex64)
    batch = ReconBatch(MultiCoilOperator(maps, mask).forward(image), mask, maps, "gaussian_2d", 32)
    calls = _counted_evaluations(method)
    method.reconstruct(batch)
    assert calls == [1, 1, 1]
    assert method.describe()["sampler_reduced"] == {"samples": 1, "coarse_steps": 2, "refine_steps": 1}


def test_a_sampler_count_is_only_ever_lowered():
    method = get_method_class("diffuserecon")("tiny", torch.device("cpu"), for_training=True)
    with pytest.raises(InputError, match="between 1 and the profile's 20"):
        method.reduce_sampler(coarse_steps=21)
    with pytest.raises(InputError, match="not a sampler count"):
        method.reduce_sampler(dropout=0)
    assert "sampler_reduced" not in method.describe()  # nothing lowered: the record is the method's own


def test_ship_refuses_a_checkpoint_picked_on_part_of_the_val_set(ci_embedded, tmp_path):
    request = TrainRequest(method="unet", profile="tiny", data=ci_embedded, out=tmp_path / "unet", device="cpu",
                           ship=True, val_slices=1)  # fmt: skip
    with pytest.raises(InputError, match="drop --val-slices"):
        train(request)
    assert not (tmp_path / "unet").exists()


def test_a_smoke_never_writes_into_or_deletes_a_folder_of_other_files(ci_embedded, tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("mine\n")
    request = SmokeRequest(methods=("zero_filled",), profile="tiny", data=ci_embedded, out=mine, force=True)
    with pytest.raises(BenchmarkError, match="not a smoke of this suite"):
        smoke(request)
    assert [path.name for path in mine.iterdir()] == ["notes.txt"]
