"""Training hyperparameters per method and profile (frozen; recorded in every checkpoint)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class OptimizerConfig:
    """AdamW settings of one extra network (e.g. a discriminator); it shares the run's schedule."""

    lr: float
    weight_decay: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.999)
    grad_clip: float = 1.0


@dataclass(frozen=True)
class TrainConfig:
    steps: int = 300
    batch_size: int = 2  # per process; the global batch is batch_size x world size
    lr: float = 1e-3  # this and the next three: the main network ("model")
    weight_decay: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.999)
    grad_clip: float = 1.0
    warmup_steps: int = 20
    schedule: str = "cosine"  # or "linear" (decay after warm-up)
    min_lr_ratio: float = 0.0  # the decay ends at lr x this
    #: Extra networks trained beside the model, by name, each with its own AdamW and clip, stepped in the
    #: order the method's ``training_losses`` yields them.
    optimizers: tuple[tuple[str, OptimizerConfig], ...] = ()
    ema_decay: float | None = None
    val_every: int = 100
    val_slices: int = 12  # validation slices per mask pattern (fixed, seeded masks)
    log_every: int = 10
    seed: int = 0
    bf16: bool = True  # autocast on CUDA only
    tf32: bool = True
    acceleration: int = 32
    #: Mask policy, identical for every method: one model for all four mask patterns, one pattern drawn per step.
    #: The value's wording predates the name "pattern"; it is recorded in shipped checkpoints, so it stays.
    mask_policy: str = "all_protocols_per_step"
