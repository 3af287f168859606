"""U-Net sizes and training per profile (paper: fastMRI's baseline, 32 channels, 4 pooling levels)."""

from dataclasses import dataclass

from benchmark.recipes import TINY_PROTOCOL, TrainConfig


@dataclass(frozen=True)
class UNetConfig:
    chans: int = 32
    num_pool_layers: int = 4
    drop_prob: float = 0.0


CONFIGS = {"tiny": UNetConfig(chans=8, num_pool_layers=3), "paper": UNetConfig()}
TRAIN = {
    "tiny": TINY_PROTOCOL.recipe(4, lr=2e-3, warmup_steps=20),
    "paper": TrainConfig(steps=100_000, batch_size=8, lr=1e-3, warmup_steps=1_000, val_every=5_000, ema_decay=0.999),
}
