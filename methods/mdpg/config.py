"""MDPG sizes, sampler and training per stage and profile.

The released code lacks its stage-I configuration and parts of stage II; where a choice was needed it follows the
paper's description and is written here (and recorded in every checkpoint and run):
- Stage I autoencoder: ``diffusers``' ``AutoencoderKL`` with five levels (16x downsampling: 256² -> 16² x 4),
  trained by L1 + 1e-6 KL on fully sampled images.
- Stage I prior: a latent ``UNet2DModel`` conditioned by concatenating the autoencoder's latent of the zero-filled
  image (the LDM way to condition on an image), ε-prediction on LDM's scaled-linear schedule (1000 steps), latents
  scaled to unit variance by a factor measured on the first training batch; sampled with DDIM, 20 steps, η = 0.
- Stage II: per cascade a VMamba U-Net (4 stages of SS2D blocks, the shared selective scan) whose last three
  encoder stages fuse the decoded prior — its features added through a learned gate (our reading of the
  paper's dual-domain fusion and latent-guided attention) — followed by hard data consistency.
Tiny profile (CPU): every part smaller, DDIM 10 steps; paper profile: the sizes above.
"""

from dataclasses import dataclass

from benchmark.recipes import TINY_PROTOCOL, TrainConfig


@dataclass(frozen=True)
class AutoencoderConfig:
    block_out_channels: tuple[int, ...] = (64, 128, 256, 256, 512)
    layers_per_block: int = 2
    latent_channels: int = 4
    norm_num_groups: int = 32
    kl_weight: float = 1e-6


@dataclass(frozen=True)
class PriorConfig:
    block_out_channels: tuple[int, ...] = (128, 256, 512)
    layers_per_block: int = 2
    attention_levels: int = 1
    norm_num_groups: int = 32
    train_timesteps: int = 1000
    ddim_steps: int = 20


@dataclass(frozen=True)
class UnrolledConfig:
    widths: tuple[int, ...] = (32, 64, 128, 256)
    patch: int = 2
    cascades: int = 3
    d_state: int = 16
    expand: int = 2
    fused_stages: int = 3


AUTOENCODER_CONFIGS = {
    "tiny": AutoencoderConfig(block_out_channels=(8, 16, 16, 32, 32), layers_per_block=1, norm_num_groups=8),
    "paper": AutoencoderConfig(),
}
PRIOR_CONFIGS = {
    "tiny": PriorConfig(block_out_channels=(32, 64), layers_per_block=1, norm_num_groups=8, ddim_steps=10),
    "paper": PriorConfig(),
}
UNROLLED_CONFIGS = {
    "tiny": UnrolledConfig(widths=(8, 16, 32, 32), patch=4, cascades=2, d_state=4),
    "paper": UnrolledConfig(),
}
#: Tiny: the capacity-checked stage's longer budget, 12,960 slices (120 passes; ~0.45 h on 2 cores at the plan's
#: 0.12 s per slice): at 2,400 slices the shipped autoencoder returned fully sampled images at 10.2 dB.
AUTOENCODER_TRAIN = {
    "tiny": TINY_PROTOCOL.recipe(4, capacity_slices=12960, lr=1e-3, warmup_steps=20),
    "paper": TrainConfig(steps=100_000, batch_size=8, lr=1e-4, warmup_steps=1_000, val_every=5_000),
}
PRIOR_TRAIN = {
    "tiny": TINY_PROTOCOL.recipe(4, lr=1e-3, warmup_steps=20),
    "paper": TrainConfig(steps=200_000, batch_size=8, lr=1e-4, warmup_steps=2_000, val_every=10_000, ema_decay=0.9999),
}
UNROLLED_TRAIN = {
    "tiny": TINY_PROTOCOL.recipe(2, lr=2e-3, warmup_steps=20),
    "paper": TrainConfig(steps=100_000, batch_size=4, lr=1e-3, warmup_steps=1_000, val_every=5_000, ema_decay=0.999),
}
