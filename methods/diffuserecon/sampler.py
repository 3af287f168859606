"""DiffuseRecon's sampler: k-space-guided ancestral sampling (coarse), averaged, then noise-free refinement.

Coarse stage: the schedule respaced to ``coarse_steps`` (``diffusers``' ``DDPMScheduler.set_timesteps``); after
each ancestral step t -> t' the measured k-space locations of every coil are replaced by the measurement noised
to level t', √ᾱ_t'·y + √(1 − ᾱ_t')·A ε̂ (ε̂ the network's noise estimate), through ``benchmark``'s multi-coil
operator; ``samples`` chains run side by side and their complex images are averaged. Refinement: from that
average, the last ``refine_steps`` steps of a ``refine_respacing``-step schedule with the posterior mean only
(no noise) and the same guidance; the last step of each stage (ᾱ = 1) is hard data consistency with y itself.
Written by hand: the reverse step (``diffusers``' DDPM step always adds noise for t > 0, and the guidance needs ε̂
between the step and the replacement); a test checks it against ``DDPMScheduler.step``.
"""

from __future__ import annotations

import torch
from diffusers import DDPMScheduler

from benchmark.method import to_channels, to_complex
from benchmark.physics import MultiCoilOperator


def respaced_timesteps(schedule: DDPMScheduler, steps: int) -> list[int]:
    """The descending timesteps of ``schedule`` respaced to ``steps`` steps (its own spacing rule)."""
    respaced = DDPMScheduler.from_config(schedule.config)
    respaced.set_timesteps(steps)
    return [int(t) for t in respaced.timesteps]


def reverse_step(
    x: torch.Tensor, eps: torch.Tensor, alpha_bar: float, alpha_bar_prev: float, noise: torch.Tensor | None
) -> torch.Tensor:
    """x_t -> x_t' (DDPM eq. 7): the posterior mean given x̂_0 from ε̂, plus √(posterior variance)·noise if given."""
    beta = 1 - alpha_bar / alpha_bar_prev
    x0 = (x - (1 - alpha_bar) ** 0.5 * eps) / alpha_bar**0.5
    mean = (alpha_bar_prev**0.5 * beta / (1 - alpha_bar)) * x0 + (
        (1 - beta) ** 0.5 * (1 - alpha_bar_prev) / (1 - alpha_bar)
    ) * x
    if noise is None:
        return mean
    variance = max((1 - alpha_bar_prev) / (1 - alpha_bar) * beta, 1e-20)
    return mean + variance**0.5 * noise


def noised_measurement(
    operator: MultiCoilOperator, kspace: torch.Tensor, eps: torch.Tensor, alpha_bar: float
) -> torch.Tensor:
    """√ᾱ·y + √(1 − ᾱ)·A ε: the measurement of x_t = √ᾱ x_0 + √(1 − ᾱ) ε when y = A x_0."""
    return alpha_bar**0.5 * kspace + (1 - alpha_bar) ** 0.5 * operator.forward(to_complex(eps))


def _chain(unet, schedule, timesteps, x, operator, kspace, generator) -> torch.Tensor:
    """Reverse steps over ``timesteps`` with guidance; ancestral noise when ``generator`` is given."""
    alphas = schedule.alphas_cumprod
    for index, t in enumerate(timesteps):
        prev = timesteps[index + 1] if index + 1 < len(timesteps) else -1
        alpha_bar, alpha_bar_prev = float(alphas[t]), float(alphas[prev]) if prev >= 0 else 1.0
        step = torch.full((x.shape[0],), t, device=x.device, dtype=torch.long)
        eps = unet(x, step).sample.float()
        noise = None
        if generator is not None and t > 0:
            noise = torch.randn(x.shape, generator=generator, device=generator.device, dtype=x.dtype).to(x.device)
        x = reverse_step(x, eps, alpha_bar, alpha_bar_prev, noise)
        guided = operator.data_consistent(to_complex(x), noised_measurement(operator, kspace, eps, alpha_bar_prev))
        x = to_channels(guided)
    return x


@torch.no_grad()
def reconstruct(
    unet,
    schedule: DDPMScheduler,
    kspace: torch.Tensor,
    mask: torch.Tensor,
    maps: torch.Tensor,
    generator: torch.Generator,
    samples: int,
    coarse_steps: int,
    refine_respacing: int | None = None,
    refine_steps: int = 0,
) -> torch.Tensor:
    """Complex images (B, H, W) from normalised k-space (B, C, H, W); ``refine_steps = 0`` skips refinement."""
    batch, _, height, width = kspace.shape
    repeat = (samples,) + (1,) * (kspace.dim() - 1)
    chains = MultiCoilOperator(maps.repeat(repeat), mask.repeat((samples, 1, 1)))
    start = torch.randn((samples * batch, 2, height, width), generator=generator, device=generator.device)
    x = _chain(unet, schedule, respaced_timesteps(schedule, coarse_steps), start.to(kspace.device), chains,
               kspace.repeat(repeat), generator)  # fmt: skip
    average = x.view(samples, batch, 2, height, width).mean(dim=0)
    if refine_steps:
        timesteps = respaced_timesteps(schedule, refine_respacing)[-refine_steps:]
        average = _chain(unet, schedule, timesteps, average, MultiCoilOperator(maps, mask), kspace, None)
    return to_complex(average)
