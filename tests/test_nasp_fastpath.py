"""NASP's fast-path switches (issue 19): each computes the reconstruction another way, so the exact ones must
agree with the plain computation (the explicit attention formula, uncached decoding, eager execution), bf16
must actually run the transformer in bf16, and timing on random weights must not need any checkpoint."""

from __future__ import annotations

import pytest
import torch

from benchmark.data import LoadOptions, dataset_files
from benchmark.errors import InputError
from benchmark.masks import make_mask
from benchmark.method import ReconBatch
from benchmark.runner.units import load_volume
from methods.nasp.adapter import TokenizerStage
from methods.nasp.decoding import generate
from methods.nasp.variants import NASPBase
from tests.test_nasp_transformer import tiny_model


@pytest.fixture(scope="module")
def model_and_input():
    return tiny_model(seed=3), torch.randn(2, 3, 256, 256), torch.tensor([1, 3])


def _radial_batch(data, size: int = 1) -> ReconBatch:
    volume = load_volume(dataset_files(data, "test")[0], LoadOptions())
    mask = make_mask("radial", (256, 256), 32, seed=0)[None].expand(size, -1, -1)
    return ReconBatch(volume["kspace"][:size] * mask[:, None], mask, volume["maps"][:size], "radial", 32)


def test_fused_attention_gives_the_logits_of_the_explicit_softmax_formula(model_and_input, monkeypatch):
    model, image, pattern = model_and_input
    calls = []  # the transformer's attention calls (4-D, one axis per head); the encoder's are 3-D
    fused_kernel = torch.nn.functional.scaled_dot_product_attention

    def counted(q, *args, **kwargs):
        calls.append(q.dim() == 4)
        return fused_kernel(q, *args, **kwargs)

    monkeypatch.setattr(torch.nn.functional, "scaled_dot_product_attention", counted)
    model.transformer.set_fused_attention(True)
    fused_tokens, fused = generate(model, image, pattern)
    fused_calls = sum(calls)
    model.transformer.set_fused_attention(False)
    try:
        explicit_tokens, explicit = generate(model, image, pattern, use_cache=False)  # with the block-causal mask
    finally:
        model.transformer.set_fused_attention(True)
    assert fused_calls > 0 and sum(calls) == fused_calls  # the explicit path never calls the fused kernel
    for a, b in zip(fused, explicit, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    assert all(torch.equal(a, b) for a, b in zip(fused_tokens, explicit_tokens, strict=True))


def test_a_compiled_transformer_decodes_the_eager_logits(model_and_input):
    model, image, pattern = model_and_input
    _, eager = generate(model, image[:1], pattern[:1])
    _, compiled = generate(model, image[:1], pattern[:1], run=torch.compile(model.transformer.run))
    for a, b in zip(eager, compiled, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_bf16_runs_the_transformer_in_bf16_and_stays_close(model_and_input):
    model, image, pattern = model_and_input
    seen = []
    hook = model.transformer.blocks[0].ffn.register_forward_hook(lambda module, args, out: seen.append(out.dtype))
    try:
        _, reference = generate(model, image, pattern)
        with torch.autocast("cpu", torch.bfloat16):
            _, low = generate(model, image, pattern)
    finally:
        hook.remove()
    assert seen[0] == torch.float32 and seen[-1] == torch.bfloat16
    # Scale 1 sees the same (observed) tokens either way, so its logits differ by rounding alone.
    error = (low[0] - reference[0]).norm() / reference[0].norm()
    assert 0 < error < 0.05


def test_the_method_applies_its_switches_and_refuses_unknown_ones(ci_embedded):
    method = NASPBase("tiny", torch.device("cpu"))
    batch = _radial_batch(ci_embedded)
    torch.manual_seed(0)
    default = method.reconstruct(batch)
    dtypes, lengths = [], []
    hook = method.model.transformer.head.register_forward_hook(lambda module, args, out: dtypes.append(out.dtype))
    length_hook = method.model.transformer.blocks[0].register_forward_pre_hook(
        lambda module, args: lengths.append(args[0].shape[1])
    )
    try:
        method.set_speed_switches(kv_cache=False, sdpa=False)
        plain = method.reconstruct(batch)
        method.set_speed_switches(kv_cache=True, sdpa=True, bf16=True)
        method.reconstruct(batch)
    finally:
        hook.remove(), length_hook.remove()
        method.set_speed_switches(**method.speed_switches)
    total = method.model.transformer.begin_ends[-1][1]
    assert max(lengths[:5]) == total and max(lengths[5:]) < total  # plain: every scale per call; cached: one
    torch.testing.assert_close(plain, default, rtol=1e-4, atol=1e-5)
    assert dtypes[0] == torch.float32 and dtypes[-1] == torch.bfloat16
    with pytest.raises(InputError, match="nasp-base: unknown speed switch fast; known: kv_cache, sdpa, bf16, compile"):
        method.set_speed_switches(fast=True)


def test_timing_weights_need_no_tokenizer_checkpoint(ci_embedded, tmp_path, monkeypatch):
    missing = tmp_path / "no-tokenizer.pt"
    monkeypatch.setattr(TokenizerStage, "shipped_checkpoint", classmethod(lambda cls, profile: missing))
    with pytest.raises(Exception, match="no-tokenizer.pt"):
        NASPBase("tiny", torch.device("cpu"), for_training=True)  # training does need the tokenizer
    method = NASPBase.for_timing("tiny", torch.device("cpu"))
    assert not method.model.training
    recon = method.reconstruct(_radial_batch(ci_embedded))
    assert recon.shape == (1, 256, 256) and torch.isfinite(recon).all()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_gpu_decoding_makes_no_host_device_synchronisation(ci_embedded):
    method = NASPBase.for_timing("tiny", torch.device("cuda"))
    method.set_speed_switches(bf16=True)
    batch = _radial_batch(ci_embedded, size=2).to(torch.device("cuda"))
    method.reconstruct(batch)  # warm-up: kernel selection may synchronise once
    torch.cuda.set_sync_debug_mode("error")
    try:
        recon = method.reconstruct(batch)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert torch.isfinite(recon).all()
