"""NASP's fast-path switches (issue 19): each computes the reconstruction another way, so the exact ones must
agree with the plain computation (the explicit attention formula, uncached decoding, eager execution), bf16
must run the transformer, and only it, in bf16, and timing on random weights must not need any checkpoint."""

from __future__ import annotations

import pytest
import torch

from benchmark.data import LoadOptions, dataset_files
from benchmark.errors import BenchmarkError, InputError
from benchmark.masks import make_mask
from benchmark.method import ReconBatch
from benchmark.runner.units import load_volume
from methods.nasp.adapter import TokenizerStage, TransformerStage
from methods.nasp.decoding import generate
from methods.nasp.variants import NASPBase
from tests.test_nasp_transformer import tiny_model

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def model_and_input():
    return tiny_model(seed=3), torch.randn(2, 3, 256, 256), torch.tensor([1, 3])


@pytest.fixture
def fused_calls(monkeypatch) -> list[bool]:
    """One entry per ``scaled_dot_product_attention`` call: True for the transformer's (4-D, one axis per
    head), False for the tokenizer's and context encoder's (3-D)."""
    calls, fused_kernel = [], torch.nn.functional.scaled_dot_product_attention

    def counted(q, *args, **kwargs):
        calls.append(q.dim() == 4)
        return fused_kernel(q, *args, **kwargs)

    monkeypatch.setattr(torch.nn.functional, "scaled_dot_product_attention", counted)
    return calls


def radial_batch(data, size: int = 1) -> ReconBatch:
    volume = load_volume(dataset_files(data, "test")[0], LoadOptions())
    mask = make_mask("radial", (256, 256), 32, seed=0)[None].expand(size, -1, -1)
    return ReconBatch(volume["kspace"][:size] * mask[:, None], mask, volume["maps"][:size], "radial", 32)


def record_outputs(module: torch.nn.Module, outputs: list) -> torch.utils.hooks.RemovableHandle:
    return module.register_forward_hook(lambda _module, _args, out: outputs.append(out))


def test_fused_attention_gives_the_logits_of_the_explicit_softmax_formula(model_and_input, fused_calls):
    model, image, pattern = model_and_input
    fused_tokens, fused = generate(model, image, pattern)
    transformer_calls = sum(fused_calls)
    model.transformer.set_fused_attention(False)
    try:
        explicit_tokens, explicit = generate(model, image, pattern, use_cache=False)  # with the block-causal mask
    finally:
        model.transformer.set_fused_attention(True)
    assert transformer_calls > 0 and sum(fused_calls) == transformer_calls  # the explicit path never calls it
    for a, b in zip(fused, explicit, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    assert all(torch.equal(a, b) for a, b in zip(fused_tokens, explicit_tokens, strict=True))


def test_a_compiled_transformer_decodes_the_eager_logits(model_and_input):
    model, image, pattern = model_and_input
    _, eager = generate(model, image[:1], pattern[:1])
    # aot_eager traces what inductor would compile (the KV cache's attribute updates included) without a C++ build.
    compiled_run = torch.compile(model.transformer.run, backend="aot_eager")
    _, compiled = generate(model, image[:1], pattern[:1], run=compiled_run)
    for a, b in zip(eager, compiled, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


@pytest.fixture(scope="module")
def shipped_base():
    return NASPBase("tiny", CPU)


def test_exact_switches_reach_the_model_and_reproduce_the_default(shipped_base, ci_embedded, fused_calls):
    method, batch = shipped_base, radial_batch(ci_embedded)
    lengths = []
    hook = method.model.transformer.blocks[0].register_forward_pre_hook(
        lambda _m, args: lengths.append(args[0].shape[1])
    )
    try:
        torch.manual_seed(0)
        default = method.reconstruct(batch)
        default_calls = sum(fused_calls)
        method.set_speed_switches(kv_cache=False, sdpa=False)
        plain = method.reconstruct(batch)
    finally:
        hook.remove()
        method.set_speed_switches(**method.speed_switches)
    assert default_calls > 0 and sum(fused_calls) == default_calls  # sdpa=False: the explicit formula
    total = method.model.transformer.begin_ends[-1][1]
    assert max(lengths[:6]) < total and max(lengths[6:]) == total  # cached: one scale per call; plain: all
    torch.testing.assert_close(plain, default, rtol=1e-4, atol=1e-5)
    with pytest.raises(InputError, match="nasp-base: unknown speed switch fast; known: kv_cache, sdpa, bf16, compile"):
        method.set_speed_switches(fast=True)


def test_bf16_runs_the_transformer_in_bf16_and_keeps_the_tokenizer_in_float32(shipped_base, ci_embedded):
    method, batch = shipped_base, radial_batch(ci_embedded)
    logits, encoded, decoded = [], [], []
    hooks = [record_outputs(method.model.transformer.head, logits),
             record_outputs(method.model.tokenizer.quant_conv, encoded),
             record_outputs(method.model.tokenizer.decoder, decoded)]  # fmt: skip
    try:
        method.reconstruct(batch)
        method.set_speed_switches(bf16=True)
        method.reconstruct(batch)
    finally:
        [hook.remove() for hook in hooks]
        method.set_speed_switches(**method.speed_switches)
    assert [t.dtype for t in (logits[0], logits[-1])] == [torch.float32, torch.bfloat16]
    assert {t.dtype for t in encoded + decoded} == {torch.float32}
    # The second head call predicts scale 1 from the observed tokens, the same in both runs: rounding alone.
    half = len(logits) // 2
    error = (logits[half + 1].float() - logits[1]).norm() / logits[1].norm()
    assert 0 < error < 0.05


def test_timing_weights_need_no_tokenizer_checkpoint(ci_embedded, tmp_path, monkeypatch):
    missing = tmp_path / "no-tokenizer.pt"
    monkeypatch.setattr(TokenizerStage, "shipped_checkpoint", classmethod(lambda cls, profile: missing))
    with pytest.raises(BenchmarkError, match="no-tokenizer.pt"):
        TransformerStage("tiny", CPU, for_training=True)  # training does need the tokenizer
    method = NASPBase.for_timing("tiny", CPU)
    assert not method.model.training
    recon = method.reconstruct(radial_batch(ci_embedded))
    assert recon.shape == (1, 256, 256) and torch.isfinite(recon).all()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_the_gpu_scale_loop_makes_no_host_device_synchronisation():
    """From the first transformer call to the last token: the tokenizer's encoding before it may synchronise
    (vector-quantize-pytorch reads its ``initted`` flag), the loop must not."""
    model = tiny_model(seed=3).cuda()
    image, pattern = torch.randn(2, 3, 256, 256, device="cuda"), torch.tensor([1, 3], device="cuda")
    generate(model, image, pattern)  # warm-up

    def checked_run(*args):
        torch.cuda.set_sync_debug_mode("error")
        return model.transformer.run(*args)

    try:
        indices, _ = generate(model, image, pattern, run=checked_run)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert len(indices) == len(model.transformer.grids)


def test_compile_wraps_each_transformer_once_and_follows_a_swapped_model(shipped_base, ci_embedded, monkeypatch):
    wrapped = []

    def recording_compile(function):  # stands in for torch.compile: same function, the call recorded
        wrapped.append(function.__self__)
        return function

    monkeypatch.setattr(torch, "compile", recording_compile)
    method, batch = shipped_base, radial_batch(ci_embedded)
    original = method.model
    try:
        method.set_speed_switches(compile=True)
        method.reconstruct(batch), method.reconstruct(batch)
        method.model = tiny_model(seed=5)  # as validation (EMA) and shared variants swap the model
        method.reconstruct(batch)
    finally:
        method.model = original
        method.set_speed_switches(**method.speed_switches)
    assert wrapped[0] is original.transformer and len(wrapped) == 2
    assert wrapped[1] is not original.transformer
