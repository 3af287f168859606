"""``train --chain``: a multi-stage method's stages in order, each built on the earlier ones trained into the
same chain folder (not the shipped checkpoints), stopping at a missed capacity check and resumable past it."""

from __future__ import annotations

import pytest
import torch

from benchmark.errors import InputError
from benchmark.io import sha256_file
from benchmark.training.chain import chain_stages, train_chain
from benchmark.training.loop import TrainRequest


def test_a_chain_up_to_a_stage_holds_exactly_the_stages_it_builds_on_in_order():
    assert chain_stages("nasp", "distill") == ["tokenizer", "transformer", "teacher", "distill"]
    assert chain_stages("nasp", "transformer-flat") == ["tokenizer-flat", "transformer-flat"]
    assert chain_stages("mdpg") == ["autoencoder", "prior", "unrolled"]
    with pytest.raises(InputError, match="one stage"):
        chain_stages("unet")


def test_the_nasp_chain_trains_every_stage_on_the_ones_before_it_in_its_own_folder(ci_embedded, tmp_path):
    out = tmp_path / "chain"
    request = TrainRequest(method="nasp", profile="tiny", data=ci_embedded, out=out, device="cpu", steps=1)
    with pytest.raises(InputError, match="capacity check"):  # one step of a tokenizer is far below 26 dB
        train_chain(request, last="distill")
    assert (out / "tokenizer" / "best.pt").is_file() and not (out / "transformer").exists()
    tokenizer_digest = sha256_file(out / "tokenizer" / "best.pt")

    best = train_chain(TrainRequest(**{**request.__dict__, "below_capacity": True}), last="distill")
    assert best == out / "distill" / "best.pt"
    assert sha256_file(out / "tokenizer" / "best.pt") == tokenizer_digest  # resumed, not retrained
    parents = {"transformer": ["tokenizer"], "teacher": ["transformer"], "distill": ["transformer", "teacher"]}
    for stage, roles in parents.items():
        provenance = torch.load(out / stage / "best.pt", weights_only=True)["provenance"]
        for role in roles:
            assert provenance[role]["sha256"] == sha256_file(out / role / "best.pt"), (stage, role)
