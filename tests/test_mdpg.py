"""MDPG: DDIM (η = 0) against the closed form of an oracle on Gaussian data, seeded prior sampling, the stage-II
network's hard data consistency, and the stage chain's wiring."""

import pytest
import torch

from benchmark.errors import BenchmarkError
from benchmark.method import TrainingTarget
from benchmark.physics import MultiCoilOperator
from benchmark.registry import get_method_class, get_training_class
from methods.mdpg.config import AUTOENCODER_CONFIGS, PRIOR_CONFIGS, UNROLLED_CONFIGS
from methods.mdpg.prior import KLAutoencoder, LatentPrior, build_ddim, sample_prior
from methods.mdpg.unrolled import UnrolledNet
from tests.test_training import CPU, small_batch

MEAN, SD = 0.4, 0.6  # the Gaussian "data" x_0 ~ N(MEAN, SD^2)


def oracle_eps(x, alpha_bar):
    """E[ε | x_t] for Gaussian data: √(1-ᾱ)(x_t - √ᾱ μ) / (ᾱ σ² + 1 - ᾱ)."""
    return (1 - alpha_bar) ** 0.5 * (x - alpha_bar**0.5 * MEAN) / (alpha_bar * SD**2 + 1 - alpha_bar)


def ddim_with_oracle(steps, start):
    scheduler = build_ddim(PRIOR_CONFIGS["tiny"])
    scheduler.set_timesteps(steps)
    x = start.clone()
    for t in scheduler.timesteps:
        x = scheduler.step(oracle_eps(x, float(scheduler.alphas_cumprod[t])), t, x, eta=0.0).prev_sample
    return x, scheduler


def test_ddim_with_an_oracle_on_gaussian_data_matches_its_closed_form():
    # With the oracle, one DDIM step maps the standardised value z = (x - √ᾱ μ)/v, v² = ᾱσ² + 1 - ᾱ, to
    # z' = z (√(ᾱ'ᾱ) σ² + √((1-ᾱ')(1-ᾱ))) / (v v'); the product over the steps is the closed-form answer.
    start = torch.randn(4096, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    result, scheduler = ddim_with_oracle(20, start)
    alphas = [float(scheduler.alphas_cumprod[t]) for t in scheduler.timesteps] + [1.0]
    spread = [(a * SD**2 + 1 - a) ** 0.5 for a in alphas]
    z = (start - alphas[0] ** 0.5 * MEAN) / spread[0]
    for a, a_next, v, v_next in zip(alphas, alphas[1:], spread, spread[1:], strict=False):
        z = z * ((a_next * a) ** 0.5 * SD**2 + ((1 - a_next) * (1 - a)) ** 0.5) / (v * v_next)
    torch.testing.assert_close(result, MEAN + SD * z, rtol=1e-6, atol=1e-6)
    # More steps approach the probability-flow ODE, which keeps z fixed (x_0 = μ + σ z_T); DDIM is first order.
    errors = []
    for steps in (50, 500):
        fine, scheduler = ddim_with_oracle(steps, start)
        a_start = float(scheduler.alphas_cumprod[scheduler.timesteps[0]])
        flow = MEAN + SD * (start - a_start**0.5 * MEAN) / (a_start * SD**2 + 1 - a_start) ** 0.5
        errors.append(float((fine - flow).abs().max()))
    assert errors[1] < 0.02 and errors[1] < errors[0] / 5, errors


def tiny_stage_one():
    torch.manual_seed(0)
    autoencoder = KLAutoencoder(AUTOENCODER_CONFIGS["tiny"]).eval()
    return autoencoder, LatentPrior(PRIOR_CONFIGS["tiny"], AUTOENCODER_CONFIGS["tiny"].latent_channels).eval()


def test_prior_sampling_is_seeded_and_keeps_the_image_shape():
    autoencoder, prior = tiny_stage_one()
    zero_filled = torch.randn(1, 2, 64, 64, generator=torch.Generator().manual_seed(1))
    draw = lambda seed: sample_prior(autoencoder, prior, build_ddim(PRIOR_CONFIGS["tiny"]), zero_filled,  # noqa: E731
                                     torch.Generator().manual_seed(seed), 3)  # fmt: skip
    first = draw(4)
    assert first.shape == zero_filled.shape
    torch.testing.assert_close(draw(4), first, rtol=0, atol=0)
    assert not torch.allclose(draw(5), first, atol=1e-4)


def test_single_coil_stage_two_output_reproduces_the_measurement():
    generator = torch.Generator().manual_seed(2)
    maps = torch.ones(1, 1, 64, 64, dtype=torch.complex64)
    mask = torch.rand(1, 64, 64, generator=generator) < 0.2
    operator = MultiCoilOperator(maps, mask)
    kspace = operator.forward(torch.randn(1, 64, 64, dtype=torch.complex64, generator=generator))
    torch.manual_seed(0)
    net = UnrolledNet(UNROLLED_CONFIGS["tiny"]).eval()
    with torch.no_grad():
        output = net(operator.adjoint(kspace), kspace, mask, maps, torch.randn(1, 2, 64, 64, generator=generator))
    torch.testing.assert_close(operator.forward(output), kspace, atol=1e-5, rtol=0)


def test_stages_train_in_order_and_say_what_is_missing(small_embedded, monkeypatch, tmp_path):
    from methods.mdpg.adapter import AutoencoderStage

    # As on a clean clone before stage I is trained (whether or not a checkpoint is shipped).
    monkeypatch.setattr(AutoencoderStage, "shipped_checkpoint", classmethod(lambda cls, p: tmp_path / "none.pt"))
    autoencoder = get_training_class("mdpg", "autoencoder")("tiny", CPU, for_training=True)
    batch, target = small_batch(small_embedded)
    # Mechanics only: the masked k-space stands in for the fully sampled one training batches carry.
    (name, loss), *_ = autoencoder.training_losses(batch, TrainingTarget(target, kspace=batch.kspace))
    assert name == "model" and torch.isfinite(loss)
    assert autoencoder.reconstruct(batch).shape == target.shape
    with pytest.raises(BenchmarkError, match="train mdpg --stage autoencoder"):
        get_training_class("mdpg", "prior")("tiny", CPU, for_training=True)
    assert get_method_class("mdpg").stage == "unrolled"
