"""Swin-Unet sizes and training per profile.

Paper profile: Swin-Unet's tiny layout (embed 96, depths [2, 2, 2, 2], heads [3, 6, 12, 24]) at 256² with patch 4
and window 8. The paper's baseline code (the public MambaRecon repository) commits a SwinUnet configuration that
does not build (its heads list is shorter than its stages and its width is not divisible by the heads), so the
reference architecture of Cao et al. is used instead and this choice is recorded here and in run metadata.
Tiny profile (CPU): embed 16, heads [1, 2, 4, 8], MLP ratio 2; same patch, window and depths.
Training: the policy all library baselines share (L1 + L2 on the magnitude, AdamW, warm-up then cosine).
"""

from dataclasses import dataclass

from benchmark.recipes import TINY_PROTOCOL, TrainConfig


@dataclass(frozen=True)
class SwinUNetConfig:
    embed_dim: int = 96
    depths: tuple[int, ...] = (2, 2, 2, 2)
    heads: tuple[int, ...] = (3, 6, 12, 24)
    patch: int = 4
    window: int = 8
    mlp_ratio: float = 4.0
    image_size: int = 256  # the token grid (and so the window masks) is fixed when the network is built


CONFIGS = {
    "tiny": SwinUNetConfig(embed_dim=16, heads=(1, 2, 4, 8), mlp_ratio=2.0),
    "paper": SwinUNetConfig(),
}
TRAIN = {
    "tiny": TINY_PROTOCOL.recipe(4, lr=2e-3, warmup_steps=20),
    "paper": TrainConfig(steps=100_000, batch_size=8, lr=5e-4, warmup_steps=1_000, val_every=5_000, ema_decay=0.999),
}
