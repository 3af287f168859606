"""RecurrentVarNet sizes and training per profile (paper: the CVPR 2022 fastMRI setting)."""

from dataclasses import dataclass

from benchmark.recipes import TINY_PROTOCOL, TrainConfig


@dataclass(frozen=True)
class RecurrentVarNetConfig:
    num_steps: int = 8
    hidden_channels: int = 128
    num_layers: int = 4
    learned_initializer: bool = True
    initializer_channels: tuple[int, ...] = (32, 32, 64, 64)
    initializer_dilations: tuple[int, ...] = (1, 1, 2, 4)
    initializer_multiscale: int = 3


CONFIGS = {
    "tiny": RecurrentVarNetConfig(
        num_steps=4, hidden_channels=16, num_layers=2, initializer_channels=(8, 8, 16, 16), initializer_multiscale=1
    ),
    "paper": RecurrentVarNetConfig(),
}
TRAIN = {
    "tiny": TINY_PROTOCOL.recipe(2, lr=2e-3, warmup_steps=20),
    "paper": TrainConfig(steps=100_000, batch_size=8, lr=5e-4, warmup_steps=1_000, val_every=5_000, ema_decay=0.999),
}
