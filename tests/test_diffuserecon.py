"""DiffuseRecon: the cosine forward process against its closed form, the reverse step against diffusers' DDPM
step, k-space guidance and data consistency, seeded sampling, and a prior that learns one image."""

import math
from dataclasses import replace

import pytest
import torch

from benchmark.method import TrainingTarget, to_complex
from benchmark.physics import MultiCoilOperator
from benchmark.registry import get_method_class
from methods.diffuserecon.config import CONFIGS
from methods.diffuserecon.prior import build_schedule, build_unet
from methods.diffuserecon.sampler import noised_measurement, reconstruct, respaced_timesteps, reverse_step
from tests.test_training import CPU, small_batch

TINY = CONFIGS["tiny"]


def cosine_alpha_bar(t: int, total: int, offset: float = 0.008) -> float:
    """Nichol & Dhariwal's ᾱ after step t (t = 0 is the first noising step)."""
    f = lambda s: math.cos((s / total + offset) / (1 + offset) * math.pi / 2) ** 2  # noqa: E731
    return f(t + 1) / f(0)


def test_forward_process_has_the_cosine_schedules_mean_and_variance():
    schedule = build_schedule(TINY)
    generator = torch.Generator().manual_seed(0)
    clean = torch.full((1, 2, 256, 256), 0.7, dtype=torch.float64)
    for t in (100, 2000, 3500):
        alpha_bar = cosine_alpha_bar(t, TINY.train_timesteps)
        assert float(schedule.alphas_cumprod[t]) == pytest.approx(alpha_bar, rel=1e-5)
        noise = torch.randn(clean.shape, generator=generator, dtype=torch.float64)
        noisy = schedule.add_noise(clean, noise, torch.tensor([t]))
        assert abs(noisy.mean().item() - 0.7 * alpha_bar**0.5) < 5 * (1 - alpha_bar) ** 0.5 / 362  # 5 sd of the mean
        assert abs(noisy.var().item() / (1 - alpha_bar) - 1) < 0.02


def test_reverse_step_equals_diffusers_ddpm_step_with_the_same_noise():
    schedule = build_schedule(TINY)
    scheduler = type(schedule).from_config(schedule.config)
    scheduler.set_timesteps(10)
    timesteps = respaced_timesteps(schedule, 10)
    assert timesteps == [int(t) for t in scheduler.timesteps]
    generator = torch.Generator().manual_seed(1)
    x, eps = torch.randn(2, 1, 2, 8, 8, generator=generator)
    for index in (2, 9):  # a noisy step, and the last one (t = 0: no noise is added)
        t = timesteps[index]
        prev = timesteps[index + 1] if index + 1 < len(timesteps) else -1
        expected = scheduler.step(eps, t, x, generator=torch.Generator().manual_seed(7)).prev_sample
        noise = torch.randn(x.shape, generator=torch.Generator().manual_seed(7)) if t > 0 else None
        alpha_prev = float(schedule.alphas_cumprod[prev]) if prev >= 0 else 1.0
        actual = reverse_step(x, eps, float(schedule.alphas_cumprod[t]), alpha_prev, noise)
        torch.testing.assert_close(actual, expected, rtol=1e-5, atol=1e-5)


def problem(coils, size=32, seed=2):
    generator = torch.Generator().manual_seed(seed)
    maps = torch.randn(1, coils, size, size, dtype=torch.complex64, generator=generator)
    maps = maps / maps.abs().pow(2).sum(1, keepdim=True).sqrt()
    mask = torch.rand(1, size, size, generator=generator) < 0.3
    truth = torch.randn(1, size, size, dtype=torch.complex64, generator=generator)
    return maps, mask, truth, MultiCoilOperator(maps, mask)


def test_noised_measurement_is_the_measurement_of_the_forward_noised_image():
    maps, mask, truth, operator = problem(coils=4)
    eps = torch.randn(1, 2, 32, 32, generator=torch.Generator().manual_seed(3))
    alpha_bar = 0.37
    noisy = alpha_bar**0.5 * truth + (1 - alpha_bar) ** 0.5 * to_complex(eps)
    actual = noised_measurement(operator, operator.forward(truth), eps, alpha_bar)
    torch.testing.assert_close(actual, operator.forward(noisy), rtol=1e-5, atol=1e-5)


def sample_with(seed, coils=1, refine_steps=2):
    torch.manual_seed(0)
    unet = build_unet(TINY, image_size=32).eval()
    maps, mask, truth, operator = problem(coils)
    kspace = operator.forward(truth)
    generator = torch.Generator().manual_seed(seed)
    image = reconstruct(unet, build_schedule(TINY), kspace, mask, maps, generator, 2, 3, 20, refine_steps)
    return image, operator, kspace


def test_single_coil_output_reproduces_the_measurement_and_seeds_decide_the_sample():
    # One coil: the last guided step (ᾱ = 1) is the projection onto {x : A x = y}, whatever the prior.
    image, operator, kspace = sample_with(seed=5)
    torch.testing.assert_close(operator.forward(image), kspace, atol=1e-5, rtol=0)
    torch.testing.assert_close(sample_with(seed=5)[0], image, rtol=0, atol=0)
    assert not torch.allclose(sample_with(seed=6)[0], image, atol=1e-3)


def test_a_tiny_prior_learns_one_image():
    torch.manual_seed(0)
    config = replace(TINY, train_timesteps=1000, block_out_channels=(16, 32))  # one attention level at 16 x 16
    unet, schedule = build_unet(config, image_size=32), build_schedule(config)
    image = torch.randn(1, 2, 32, 32, generator=torch.Generator().manual_seed(4)).repeat(4, 1, 1, 1)
    probe = torch.Generator().manual_seed(9)
    steps, noise = torch.randint(200, 800, (4,), generator=probe), torch.randn(image.shape, generator=probe)

    def probe_loss():
        with torch.no_grad():
            return torch.nn.functional.mse_loss(unet(schedule.add_noise(image, noise, steps), steps).sample, noise)

    before = probe_loss().item()
    optimizer = torch.optim.Adam(unet.parameters(), lr=2e-3)
    for _ in range(150):
        t = torch.randint(0, 1000, (4,))
        eps = torch.randn_like(image)
        loss = torch.nn.functional.mse_loss(unet(schedule.add_noise(image, eps, t), t).sample, eps)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert probe_loss().item() < 0.2 * before, (before, probe_loss().item())


def test_adapter_trains_and_validates_on_a_small_batch(small_embedded):
    method = get_method_class("diffuserecon")("tiny", CPU, for_training=True)
    batch, target = small_batch(small_embedded)
    # Mechanics only: the masked k-space stands in for the fully sampled one training batches carry.
    losses = list(method.training_losses(batch, TrainingTarget(target, kspace=batch.kspace)))
    assert [name for name, _ in losses] == ["model"] and torch.isfinite(losses[0][1])
    image = method.validation_image(batch, TrainingTarget(target))
    assert image.shape == target.shape and image.dtype == torch.complex64
    assert method.describe()["sampler"]["network_evaluations_per_slice"] == 2 * 20 + 4


def test_reconstruction_draws_from_the_batch_seed_not_the_global_rng(small_embedded):
    method = get_method_class("diffuserecon")("tiny", CPU, for_training=True)
    method.config = replace(method.config, samples=1, coarse_steps=3, refine_steps=1)  # the mechanism, cheaply
    batch = small_batch(small_embedded)[0].select([0])
    torch.manual_seed(1)
    first = method.reconstruct(batch)
    torch.manual_seed(2)  # whatever ran before: the same batch reconstructs the same
    torch.testing.assert_close(method.reconstruct(batch), first, rtol=0, atol=0)
    assert not torch.allclose(method.reconstruct(replace(batch, seed=batch.seed + 1)), first, atol=1e-4)
