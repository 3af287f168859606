"""``train --chain``: a multi-stage method's stages in order, each built on the earlier ones trained into the
same chain folder (not the shipped checkpoints), stopping at a missed capacity check and resumable past it."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from benchmark.errors import BenchmarkError, InputError
from benchmark.io import sha256_file
from benchmark.metrics.perceptual import LPIPS
from benchmark.training.chain import chain_plan, chain_stages, stage_finished, train_chain
from benchmark.training.loop import TrainRequest


def test_a_chain_up_to_a_stage_holds_exactly_the_stages_it_builds_on_in_order():
    assert chain_stages("nasp", "distill") == ["tokenizer", "transformer", "teacher", "distill"]
    assert chain_stages("nasp", "transformer-flat") == ["tokenizer-flat", "transformer-flat"]
    assert chain_stages("mdpg") == ["autoencoder", "prior", "unrolled"]
    with pytest.raises(InputError, match="one stage"):
        chain_stages("unet")


def test_the_nasp_chain_trains_every_stage_on_the_ones_before_it_in_its_own_folder(ci_embedded, tmp_path):
    out = tmp_path / "chain"
    base = dict(method="nasp", profile="tiny", data=ci_embedded, out=out, device="cpu", steps=2)
    train_chain(TrainRequest(**base, stop_after=1, below_capacity=True), last="distill")
    assert (out / "tokenizer" / "last.pt").is_file() and not (out / "transformer").exists()  # stopped: no child
    with pytest.raises(InputError, match="capacity check"):  # two steps of a tokenizer are far below 26 dB
        train_chain(TrainRequest(**base), last="distill")
    assert stage_finished(out / "tokenizer", 2) and not (out / "transformer").exists()
    tokenizer = out / "tokenizer" / "best.pt"
    tokenizer_bytes = tokenizer.read_bytes()

    train_chain(TrainRequest(**base, stop_after=1, below_capacity=True), last="distill")  # transformer at step 1
    assert tokenizer.read_bytes() == tokenizer_bytes  # finished: kept, not retrained or rewritten
    changed = torch.load(tokenizer, weights_only=True) | {"note": "retrained elsewhere"}
    torch.save(changed, tokenizer)
    with pytest.raises(BenchmarkError, match="another --out"):  # the transformer started on other bytes
        train_chain(TrainRequest(**base, below_capacity=True), last="distill")
    tokenizer.write_bytes(tokenizer_bytes)

    best = train_chain(TrainRequest(**base, below_capacity=True), last="distill")
    assert best == out / "distill" / "best.pt"
    parents = {"transformer": ["tokenizer"], "teacher": ["transformer"], "distill": ["transformer", "teacher"]}
    for stage, roles in parents.items():
        assert stage_finished(out / stage, 2), stage
        provenance = torch.load(out / stage / "best.pt", weights_only=True)["provenance"]
        for role in roles:
            assert provenance[role]["sha256"] == sha256_file(out / role / "best.pt"), (stage, role)


def test_a_chain_does_not_ship(tmp_path):
    request = TrainRequest(method="nasp", profile="tiny", data=tmp_path, out=tmp_path / "chain", ship=True)
    with pytest.raises(InputError, match="does not --ship"):
        train_chain(request)
    assert not (tmp_path / "chain").exists()


def test_the_paper_plan_says_what_this_machine_substitutes_for_the_papers_weights(monkeypatch):
    """Without VAR's VQ-VAE or BiomedCLIP given (and without LPIPS's ImageNet backbone), the tokenizer's plan line
    says so before anything trains; given them, it does not; the stages after it substitute nothing."""
    request = TrainRequest(method="nasp", profile="paper", data=Path("data"), out=Path("chain"))
    stages = chain_stages("nasp", "distill")
    for variable in ("NASP_VAR_VQVAE", "NASP_BIOMEDCLIP_DIR"):
        monkeypatch.delenv(variable, raising=False)
    plan = "\n".join(chain_plan(request, stages))
    tokenizer_part, later_part = plan.split("  transformer:")
    assert "substitutes discriminator: stlpips_alex (BiomedCLIP not given" in tokenizer_part
    assert "substitutes initialisation: from scratch ($NASP_VAR_VQVAE unset" in tokenizer_part
    assert ("substitutes perceptual: stlpips_alex" in tokenizer_part) == (not LPIPS("alex").available)
    assert "substitutes" not in later_part

    monkeypatch.setenv("NASP_VAR_VQVAE", "/weights/vae_ch160v4096z32.pth")
    monkeypatch.setenv("NASP_BIOMEDCLIP_DIR", "/weights/biomedclip")
    plan = "\n".join(chain_plan(request, stages))
    assert "discriminator" not in plan and "initialisation" not in plan
