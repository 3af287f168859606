"""The diffusion prior from ``diffusers``: a ``UNet2DModel`` on 2 channels (real, imaginary) and a cosine
``DDPMScheduler`` (ε-prediction, posterior variance), both built from the method's config."""

from __future__ import annotations

from diffusers import DDPMScheduler, UNet2DModel

from methods.diffuserecon.config import DiffuseReconConfig


def build_unet(config: DiffuseReconConfig, image_size: int = 256) -> UNet2DModel:
    levels = len(config.block_out_channels)
    plain = levels - config.attention_levels
    return UNet2DModel(
        sample_size=image_size,
        in_channels=2,
        out_channels=2,
        block_out_channels=config.block_out_channels,
        layers_per_block=config.layers_per_block,
        down_block_types=("DownBlock2D",) * plain + ("AttnDownBlock2D",) * config.attention_levels,
        up_block_types=("AttnUpBlock2D",) * config.attention_levels + ("UpBlock2D",) * plain,
        norm_num_groups=config.norm_num_groups,
        dropout=config.dropout,
    )


def build_schedule(config: DiffuseReconConfig) -> DDPMScheduler:
    return DDPMScheduler(
        num_train_timesteps=config.train_timesteps,
        beta_schedule="squaredcos_cap_v2",
        prediction_type="epsilon",
        variance_type="fixed_small",
        clip_sample=False,
    )
