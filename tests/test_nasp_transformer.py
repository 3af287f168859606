"""NASP part 2: the next-acceleration-scale transformer against causality, cache equivalence, context
routing, seeded sampling and an overfitting check."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F

from methods.nasp.config import TOKENIZER_CONFIGS, TRANSFORMER_CONFIGS
from methods.nasp.decoding import Sampler, generate, top_k_top_p_filter
from methods.nasp.model import NASPModel
from methods.nasp.tokenizer import AQVAE, randomise_codebook
from methods.nasp.transformer import sincos_2d

TINY_TOKENIZER, TINY = TOKENIZER_CONFIGS["tiny"], TRANSFORMER_CONFIGS["tiny"]


def tiny_model(seed: int = 0, tokenizer_config=TINY_TOKENIZER, **changes) -> NASPModel:
    torch.manual_seed(seed)
    tokenizer = randomise_codebook(AQVAE(tokenizer_config))  # a trained codebook, as far as the transformer can tell
    return NASPModel(tokenizer, replace(TINY, **changes)).eval()


def random_tokens(model: NASPModel, batch: int, seed: int) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    vocab = model.tokenizer.config.codebook_size
    return [torch.randint(vocab, (batch, g * g), generator=generator) for g in model.tokenizer.config.grids]


@pytest.fixture(scope="module")
def model_and_input():
    model = tiny_model()
    return model, torch.randn(2, 3, 256, 256), torch.tensor([0, 2])


def test_changing_the_tokens_of_scale_s_leaves_the_logits_of_scales_up_to_s_unchanged(model_and_input):
    model, image, pattern = model_and_input
    indices = random_tokens(model, 2, seed=1)
    with torch.no_grad():
        reference = model(image, indices, pattern)
        for scale in range(1, 5):
            changed = [idx.clone() for idx in indices]
            changed[scale] = (changed[scale] + 1) % model.tokenizer.config.codebook_size
            logits = model(image, changed, pattern)
            unaffected = model.transformer.begin_ends[scale][1]  # positions predicting scales <= s
            assert torch.equal(logits[:, :unaffected], reference[:, :unaffected]), scale
            assert not torch.allclose(logits[:, unaffected:], reference[:, unaffected:]), scale


def test_kv_cached_decoding_gives_the_uncached_argmax_tokens_and_logits(model_and_input):
    model, image, pattern = model_and_input
    cached, cached_logits = generate(model, image, pattern, use_cache=True)
    plain, plain_logits = generate(model, image, pattern, use_cache=False)
    assert [t.shape[1] for t in cached] == [g * g for g in model.tokenizer.config.grids]
    for a, b in zip(cached, plain, strict=True):
        assert torch.equal(a, b)
    for a, b in zip(cached_logits, plain_logits, strict=True):
        assert torch.allclose(a, b, atol=1e-5, rtol=0)


def test_each_block_cross_attends_to_the_resolution_its_depth_assigns(model_and_input):
    model, image, pattern = model_and_input
    assert model.assignment == ["mid", "16", "32", "64"]  # tiny: one block per context level, coarse first
    labels = model.context_labels(torch.tensor([0, 8]))  # level 0 (R = 32) of patterns 0 and 2
    with torch.no_grad():
        _, features = model.context_encoder(image, labels)
        contexts = model.contexts(image, pattern)
    for block_context, level in zip(contexts, ["mid", "16", "32", "64"], strict=True):
        feature = features[level]
        side = {"mid": 16, "16": 16, "32": 32, "64": 64}[level]
        assert feature.shape[-1] == side and block_context.shape[1] == side * side
        expected = feature.flatten(2).transpose(1, 2) + sincos_2d(side, feature.shape[1])
        assert torch.allclose(block_context, expected, atol=1e-6)


def test_the_flat_variant_has_16_by_16_tokens_at_every_scale():
    model = tiny_model(tokenizer_config=replace(TINY_TOKENIZER, grids=(16,) * 6))
    assert [end - begin for begin, end in model.transformer.begin_ends] == [256] * 6
    indices, _ = generate(model, torch.randn(1, 3, 256, 256), torch.tensor([1]))
    assert [t.shape[1] for t in indices] == [256] * 6


@pytest.mark.parametrize("trainable", [False, True])
def test_a_step_changes_the_context_encoder_only_when_it_is_trainable(trainable):
    model = tiny_model(trainable_encoder=trainable).train()
    before = {k: v.clone() for k, v in model.context_encoder.state_dict().items()}
    tokenizer_before = {k: v.clone() for k, v in model.tokenizer.state_dict().items()}
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    indices = random_tokens(model, 1, seed=2)
    logits = model(torch.randn(1, 3, 256, 256), indices, torch.tensor([3]))
    begin = model.transformer.begin_ends[1][0]
    F.cross_entropy(logits[0, begin:], torch.cat(indices[1:], dim=1)[0]).backward()
    optimizer.step()
    same = [torch.equal(before[k], v) for k, v in model.context_encoder.state_dict().items()]
    assert all(same) if not trainable else not all(same)
    assert all(torch.equal(tokenizer_before[k], v) for k, v in model.tokenizer.state_dict().items())


def test_without_cross_attention_every_trainable_parameter_gets_a_gradient():
    """``nasp-nocross`` must not count or keep a context encoder that no loss reaches (issue 31)."""
    model = tiny_model(cross_attention=False).train()
    assert model.context_encoder is None and model.context_labels is None
    assert not any(name.startswith("context_") for name in model.state_dict())
    indices = random_tokens(model, 1, seed=2)
    logits = model(torch.randn(1, 3, 256, 256), indices, torch.tensor([3]))
    begin = model.transformer.begin_ends[1][0]
    F.cross_entropy(logits[0, begin:], torch.cat(indices[1:], dim=1)[0]).backward()
    ungraded = [n for n, p in model.named_parameters() if p.requires_grad and (p.grad is None or not p.grad.any())]
    assert ungraded == []


def test_the_privileged_teacher_without_cross_attention_still_reads_the_fully_sampled_image():
    torch.manual_seed(0)
    teacher = NASPModel(randomise_codebook(AQVAE(TINY_TOKENIZER)), replace(TINY, cross_attention=False), True)
    assert teacher.context_encoder is not None
    for block in teacher.transformer.blocks:  # as after training: the zero-initialised projection has moved
        torch.nn.init.normal_(block.privileged.proj.weight, std=0.02)
    indices = random_tokens(teacher, 1, seed=3)
    image, pattern = torch.randn(1, 3, 256, 256), torch.tensor([1])
    with torch.no_grad():
        first = teacher(image, indices, pattern, torch.randn(1, 3, 256, 256))
        second = teacher(image, indices, pattern, torch.randn(1, 3, 256, 256))
    assert not torch.allclose(first, second)


def test_sampling_is_reproducible_from_its_seed_and_changes_with_it(model_and_input):
    model, image, pattern = model_and_input
    sampler = Sampler("multinomial")
    draws = [generate(model, image, pattern, sampler, torch.Generator().manual_seed(s))[0] for s in (0, 0, 1)]
    assert all(torch.equal(a, b) for a, b in zip(draws[0], draws[1], strict=True))
    assert not all(torch.equal(a, b) for a, b in zip(draws[0], draws[2], strict=True))


def test_top_k_top_p_keeps_the_k_largest_then_the_smallest_set_reaching_p():
    logits = torch.log(torch.tensor([[0.05, 0.4, 0.1, 0.3, 0.15]]))
    kept = torch.isfinite(top_k_top_p_filter(logits, top_k=4, top_p=0.0))
    assert kept.tolist() == [[False, True, True, True, True]]
    # Probabilities 0.4, 0.3, 0.15, ...: 0.4 + 0.3 = 0.7 < 0.8 <= 0.85, so three tokens remain.
    kept = torch.isfinite(top_k_top_p_filter(logits, top_k=0, top_p=0.8))
    assert kept.tolist() == [[False, True, False, True, True]]


def test_the_transformer_overfits_one_batch_to_cross_entropy_below_0_1():
    model = tiny_model(seed=3).train()
    indices, image, pattern = random_tokens(model, 1, seed=4), torch.randn(1, 3, 256, 256), torch.tensor([1])
    labels = torch.cat(indices[1:], dim=1)[0]
    begin = model.transformer.begin_ends[1][0]
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=3e-3)
    for _ in range(400):
        loss = F.cross_entropy(model(image, indices, pattern)[0, begin:], labels)
        if loss.item() < 0.1:
            break
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.1


def test_transformer_stage_trains_on_a_tokenizer_checkpoint_and_its_variants_share_weights(
    ci_embedded, tmp_path, monkeypatch
):
    from benchmark.data import LoadOptions, dataset_files
    from benchmark.errors import InputError
    from benchmark.io import sha256_file
    from benchmark.masks import make_mask
    from benchmark.method import ReconBatch
    from benchmark.runner.units import load_volume
    from benchmark.training.loop import Trainer, TrainRequest
    from methods.nasp.adapter import TokenizerStage
    from methods.nasp.variants import NASPBase, NASPBaseTopKP

    common = dict(profile="tiny", data=ci_embedded, device="cpu", batch_size=2, masks=("radial",))
    Trainer(TrainRequest(method="nasp", stage="tokenizer", out=tmp_path / "tok", steps=1, **common)).fit()
    tokenizer = tmp_path / "tok" / "best.pt"
    monkeypatch.setattr(TokenizerStage, "shipped_checkpoint", classmethod(lambda cls, profile: tokenizer))
    later = TrainRequest(method="nasp", stage="transformer", out=tmp_path / "tr", steps=2, **common)
    with pytest.raises(InputError, match="tokenizer, which has not passed its capacity check"):
        Trainer(later)
    trainer = Trainer(replace(later, below_capacity=True))
    trainer.fit()
    best = tmp_path / "tr" / "best.pt"
    payload = torch.load(best, weights_only=True)
    assert payload["provenance"]["tokenizer"]["sha256"] == sha256_file(tokenizer)
    assert payload["capacity_gate"]["below_capacity"] is True  # recorded with the weights
    assert payload["capacity_gate"]["parents"]["tokenizer"]["passed"] is False
    assert payload["stage"] == "transformer"
    base, topkp = (cls("tiny", torch.device("cpu"), checkpoint=best) for cls in (NASPBase, NASPBaseTopKP))
    assert base.model is topkp.model  # one copy of the weights for every variant of one checkpoint
    volume = load_volume(dataset_files(ci_embedded, "test")[0], LoadOptions())
    mask = make_mask("radial", (256, 256), 32, seed=0)[None]
    batch = ReconBatch(volume["kspace"][:1] * mask[:, None], mask, volume["maps"][:1], "radial", 32)
    recon = base.reconstruct(batch)
    assert recon.shape == (1, 256, 256) and recon.is_complex() and torch.isfinite(recon).all()
    assert base.describe()["decoding"]["sampling"] == "argmax"
    assert topkp.describe()["decoding"] == {
        "sampling": "top_k_top_p",
        "top_k": 900,
        "top_p": 0.96,
        "data_consistency": False,
    }


def head_like_batch(pattern: str, coils: int = 8):
    """A head-like image with a smooth phase, its magnitude, and noise-free multi-coil data at R = 32."""
    from benchmark.masks import make_mask
    from benchmark.method import ReconBatch
    from benchmark.physics import MultiCoilOperator, birdcage_maps, normalize_maps

    shape = (128, 128)
    rows, cols = torch.meshgrid(torch.linspace(-1, 1, 128), torch.linspace(-1, 1, 128), indexing="ij")
    magnitude = ((rows**2 / 0.7 + cols**2 / 0.5) < 1).float() * (1 + 0.3 * torch.cos(6 * rows))
    truth = (magnitude * torch.exp(1j * (0.6 * rows + 0.4 * cols + 0.5)))[None].to(torch.complex64)
    maps = normalize_maps(birdcage_maps(coils, shape))[None].to(torch.complex64)
    mask = make_mask(pattern, shape, 32, seed=0)[None]
    return ReconBatch(MultiCoilOperator(maps, mask).forward(truth), mask, maps, pattern, 32), magnitude


PATTERN_LIST = ["cartesian_x", "cartesian_y", "gaussian_2d", "radial"]


@pytest.mark.parametrize("pattern", PATTERN_LIST)
def test_the_data_consistent_output_keeps_the_measurements_on_noise_free_data(pattern):
    # nasp-base-dc's last step on a wrong image (the true magnitude, blurred and too bright). With one coil
    # the step is the exact projection: the output's sampled k-space equals the measurements. With eight it
    # is one gradient step of ||A x - y||^2 with step 1 <= 1 / ||A||^2 (the exact projection is ill-conditioned
    # for smooth maps and amplifies noise at R = 32): the residual at the sampled locations shrinks.
    from methods.nasp.adapter import on_measurements

    for coils in (1, 8):
        batch, magnitude = head_like_batch(pattern, coils)
        wrong = 1.5 * torch.nn.functional.avg_pool2d(magnitude[None, None], 5, 1, 2)[0].to(torch.complex64)
        operator = batch.operator()
        before = (operator.forward(on_measurements(wrong, batch)) - batch.kspace).norm()
        after = (operator.forward(on_measurements(wrong, batch, data_consistency=True)) - batch.kspace).norm()
        if coils == 1:
            assert after <= 1e-5 * batch.kspace.norm(), float(after / batch.kspace.norm())
        else:
            assert after < 0.9 * before, (float(after), float(before))


@pytest.mark.parametrize("pattern", PATTERN_LIST)
def test_data_consistency_on_the_measured_phase_keeps_a_perfect_magnitude_better_than_on_an_uninformed_one(pattern):
    # A perfect decoder (the true magnitude) whose phase carries no information (its loss sees magnitudes
    # only; here: zero phase): putting the measured samples back on it adds error. On the phase of the
    # measurements' low-resolution image it adds less on every pattern, and little where the centre is sampled
    # densely (lines, spokes).
    from methods.nasp.adapter import on_measurements

    batch, magnitude = head_like_batch(pattern)

    def error(image):
        return float((image.abs() - magnitude).norm() / magnitude.norm())

    perfect = magnitude[None].to(torch.complex64)
    on_measured_phase = error(on_measurements(perfect, batch, data_consistency=True))
    on_uninformed_phase = error(batch.operator().data_consistent(perfect, batch.kspace))
    if pattern == "gaussian_2d":  # its centre is sampled at random, under half the points: a rougher phase
        assert on_measured_phase < 0.8 * on_uninformed_phase, (on_measured_phase, on_uninformed_phase)
    else:
        assert on_measured_phase < 0.5 * on_uninformed_phase and on_measured_phase < 0.1, on_measured_phase


@pytest.mark.parametrize("pattern", PATTERN_LIST)
def test_a_decoded_image_at_the_wrong_intensity_lands_on_the_measurements_scale(pattern):
    # The tokenizer's losses do not fix the intensity: a perfect image 40 % too dark comes back at the true
    # scale, from the measured low frequencies alone (the gain is exact up to the phase estimate's error).
    from methods.nasp.adapter import on_measurements

    batch, magnitude = head_like_batch(pattern)
    dark = 0.6 * magnitude[None].to(torch.complex64)
    restored = on_measurements(dark, batch).abs()[0]
    gain = float((restored * magnitude).sum() / (dark.abs()[0] * magnitude).sum())
    # within 5 %; 15 % for Gaussian-VD, whose low-resolution phase is rougher (0.3 rad here)
    assert abs(gain - 1 / 0.6) < (0.15 if pattern == "gaussian_2d" else 0.05) * (1 / 0.6), gain
    assert torch.allclose(restored / restored.amax(), magnitude / magnitude.amax(), atol=1e-5)  # only the scale moved
