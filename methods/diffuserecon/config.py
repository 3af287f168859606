"""DiffuseRecon sizes, sampler counts and training per profile.

Paper profile (Peng et al.): UNet with 128 base channels, 3 residual blocks per level, channel multipliers
(1, 1, 2, 2, 4, 4), self-attention at the two coarsest resolutions, dropout 0.3; 4000-step cosine schedule;
coarse stage respaced to 100 steps with 10 samples averaged, refinement over the last 20 steps of a 500-step
respacing (about 1000 network evaluations per slice, the cost the NASP paper quotes). Tiny profile (CPU): a small
UNet and few steps and samples — every count is recorded in the run metadata.
Training: unconditional on the fully sampled images, MSE on the noise, AdamW with warm-up and cosine decay.

Stated deviations of the paper profile: the reference denoises two adjacent slices jointly (real/imaginary of
each, 4 channels) at 320²; here a method reconstructs each slice from that slice's measurements alone (the one
acquisition path hands it one slice, as every other method gets), so the prior is on one slice's real and
imaginary parts (2 channels), at the benchmark's 256².
"""

from dataclasses import dataclass

from benchmark.recipes import TINY_PROTOCOL, TrainConfig


@dataclass(frozen=True)
class DiffuseReconConfig:
    block_out_channels: tuple[int, ...] = (128, 128, 256, 256, 512, 512)
    layers_per_block: int = 3
    attention_levels: int = 2  # the coarsest levels that carry self-attention
    norm_num_groups: int = 32
    dropout: float = 0.3
    train_timesteps: int = 4000
    coarse_steps: int = 100
    samples: int = 10
    refine_respacing: int = 500
    refine_steps: int = 20
    #: The cheap sampler validation uses while training (one sample, no refinement).
    validation_steps: int = 4


CONFIGS = {
    "tiny": DiffuseReconConfig(
        # Five levels so the one attention level is at 16 x 16 (0.2 s per forward of 2 slices at 256² on one core).
        block_out_channels=(16, 16, 32, 32, 64),
        layers_per_block=1,
        attention_levels=1,
        norm_num_groups=8,
        dropout=0.0,
        coarse_steps=20,
        samples=2,
        refine_respacing=100,
        refine_steps=4,
    ),
    "paper": DiffuseReconConfig(),
}
TRAIN = {
    "tiny": TINY_PROTOCOL.recipe(4, lr=1e-3, warmup_steps=50),
    "paper": TrainConfig(steps=500_000, batch_size=8, lr=1e-4, warmup_steps=5_000, val_every=20_000, ema_decay=0.9999),
}
