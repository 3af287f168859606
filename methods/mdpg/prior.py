"""MDPG's stage I from ``diffusers``: the KL autoencoder, the conditional latent UNet and DDIM (η = 0) sampling."""

from __future__ import annotations

import torch
import torch.nn as nn
from diffusers import AutoencoderKL, DDIMScheduler, UNet2DModel

from methods.mdpg.config import AutoencoderConfig, PriorConfig


class KLAutoencoder(nn.Module):
    """``diffusers``' ``AutoencoderKL`` on 2-channel images; ``forward`` returns the decoded sample and the KL term
    (so training runs through ``forward``, as DDP needs)."""

    def __init__(self, config: AutoencoderConfig) -> None:
        super().__init__()
        self.vae = _autoencoder_kl(config)

    def forward(self, channels: torch.Tensor, sample: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        posterior = self.vae.encode(channels).latent_dist
        latent = posterior.sample() if sample else posterior.mode()
        return self.vae.decode(latent).sample, posterior.kl().mean()

    def encode(self, channels: torch.Tensor) -> torch.Tensor:
        """The posterior mean latent (deterministic: what conditioning and diffusion targets use)."""
        return self.vae.encode(channels).latent_dist.mode()

    def decode(self, latent: torch.Tensor) -> torch.Tensor:
        return self.vae.decode(latent).sample


def _autoencoder_kl(config: AutoencoderConfig) -> AutoencoderKL:
    levels = len(config.block_out_channels)
    return AutoencoderKL(
        in_channels=2,
        out_channels=2,
        down_block_types=("DownEncoderBlock2D",) * levels,
        up_block_types=("UpDecoderBlock2D",) * levels,
        block_out_channels=config.block_out_channels,
        layers_per_block=config.layers_per_block,
        latent_channels=config.latent_channels,
        norm_num_groups=config.norm_num_groups,
        sample_size=256,
    )


def build_ddim(config: PriorConfig) -> DDIMScheduler:
    return DDIMScheduler(
        num_train_timesteps=config.train_timesteps,
        beta_schedule="scaled_linear",
        beta_start=0.00085,
        beta_end=0.012,
        prediction_type="epsilon",
        clip_sample=False,
        set_alpha_to_one=True,
    )


class LatentPrior(nn.Module):
    """The conditional latent UNet (input: noisy latent and the zero-filled image's latent, concatenated) and the
    factor that scales latents to unit variance (measured once, on the first training batch)."""

    def __init__(self, config: PriorConfig, latent_channels: int) -> None:
        super().__init__()
        plain = len(config.block_out_channels) - config.attention_levels
        self.unet = UNet2DModel(
            sample_size=16,
            in_channels=2 * latent_channels,
            out_channels=latent_channels,
            block_out_channels=config.block_out_channels,
            layers_per_block=config.layers_per_block,
            down_block_types=("DownBlock2D",) * plain + ("AttnDownBlock2D",) * config.attention_levels,
            up_block_types=("AttnUpBlock2D",) * config.attention_levels + ("UpBlock2D",) * plain,
            norm_num_groups=config.norm_num_groups,
        )
        self.register_buffer("latent_scale", torch.ones(()))
        self.register_buffer("scale_measured", torch.zeros((), dtype=torch.bool))

    def measure_scale(self, latents: torch.Tensor) -> None:
        if not bool(self.scale_measured):
            self.latent_scale.fill_(1.0 / latents.detach().float().std().clamp_min(1e-6))
            self.scale_measured.fill_(True)

    def forward(self, noisy: torch.Tensor, condition: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
        return self.unet(torch.cat([noisy, condition], dim=1), timesteps).sample


@torch.no_grad()
def sample_prior(
    autoencoder: KLAutoencoder,
    prior: LatentPrior,
    scheduler: DDIMScheduler,
    zero_filled: torch.Tensor,
    generator: torch.Generator,
    steps: int,
) -> torch.Tensor:
    """Decoded prior images (B, 2, H, W): DDIM with η = 0 from seeded noise, conditioned on the zero-filled image."""
    condition = autoencoder.encode(zero_filled) * prior.latent_scale
    latent = torch.randn(condition.shape, generator=generator, device=generator.device).to(condition.device)
    scheduler = DDIMScheduler.from_config(scheduler.config)
    scheduler.set_timesteps(steps)
    for t in scheduler.timesteps:
        step = torch.full((latent.shape[0],), int(t), device=latent.device, dtype=torch.long)
        latent = scheduler.step(prior(latent, condition, step), t, latent, eta=0.0).prev_sample
    return autoencoder.decode(latent / prior.latent_scale)
