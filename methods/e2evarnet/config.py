"""E2E-VarNet sizes and training per profile (paper: fastMRI's published 12 cascades, 18 channels)."""

from dataclasses import dataclass

from benchmark.recipes import TINY_PROTOCOL, TrainConfig


@dataclass(frozen=True)
class VarNetConfig:
    num_cascades: int = 12
    chans: int = 18
    pools: int = 4
    sens_chans: int = 8
    sens_pools: int = 4
    #: Width of the central band the sensitivity network starts from. fastMRI detects it from a column
    #: mask; for row and 2-D masks there is no such column band, so every mask pattern gets a fixed one.
    num_low_frequencies: int = 8


CONFIGS = {
    "tiny": VarNetConfig(num_cascades=4, chans=8, pools=2, sens_chans=4, sens_pools=2),
    "paper": VarNetConfig(),
}
TRAIN = {
    "tiny": TINY_PROTOCOL.recipe(2, lr=2e-3, warmup_steps=20),
    "paper": TrainConfig(steps=100_000, batch_size=8, lr=3e-4, warmup_steps=1_000, val_every=5_000, ema_decay=0.999),
}
