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
    #: ``None``: weight decay on every parameter. A tuple: VAR's rule (``filter_params`` in VAR's training
    #: code) — no decay for 1-D parameters, biases and any parameter whose name contains one of these keys.
    no_decay_keys: tuple[str, ...] | None = None
    warmup_steps: int = 20
    schedule: str = "cosine"  # or "linear" (decay after warm-up)
    min_lr_ratio: float = 0.0  # the decay ends at lr x this
    #: Extra networks trained beside the model, by name, each with its own AdamW and clip, stepped in the
    #: order the method's ``training_losses`` yields them.
    optimizers: tuple[tuple[str, OptimizerConfig], ...] = ()
    ema_decay: float | None = None
    val_every: int = 100
    #: Validation slices per mask pattern (fixed, seeded masks); ``None``: every val slice (the protocol).
    val_slices: int | None = None
    log_every: int = 10
    seed: int = 0
    bf16: bool = True  # autocast on CUDA only
    tf32: bool = True
    acceleration: int = 32
    #: Mask policy, identical for every method: one model for all four mask patterns, one pattern drawn per step.
    #: The value's wording predates the name "pattern"; it is recorded in shipped checkpoints, so it stays.
    mask_policy: str = "all_protocols_per_step"


@dataclass(frozen=True)
class TrainingProtocol:
    """What every learned method, and every stage of a multi-stage one, trains under in a profile (issue 31), so
    that a table compares methods rather than training budgets. Each method keeps its own batch size,
    optimiser and schedule; ``train`` refuses a recipe of the profile that breaks the protocol, and ``--ship``
    a run that saw fewer slices than it asks."""

    #: Training slices seen (steps x global batch) by every stage. Only a stage with a capacity check may see
    #: more, when it needs them to pass (tables say so).
    training_slices: int
    #: Validations per run; each scores every val slice x each pattern, and the best validation SSIM (the
    #: paper's choice) picks ``best.pt``.
    validations: int = 6
    #: A latent method's autoencoder must reconstruct fully sampled validation images at this PSNR (paper
    #: protocol) before the stage that builds on it trains.
    capacity_floor_db: float = 26.0

    def recipe(self, batch_size: int, capacity_slices: int | None = None, **settings) -> TrainConfig:
        """A recipe that sees exactly the protocol's slices in batches of ``batch_size``, validating
        ``validations`` times on the whole validation set. ``capacity_slices``: a capacity-checked stage's
        longer budget (at least the protocol's)."""
        slices = max(capacity_slices or 0, self.training_slices)
        steps = slices // batch_size
        return TrainConfig(steps=steps, batch_size=batch_size, val_every=steps // self.validations, **settings)


#: 30 passes over the 108-slice train split: the most the slowest single-stage baseline (E2E-VarNet, 1.02 s per
#: training slice on 2 cores; ``python -m benchmark.training.plan``) sees within an hour, validations included
#: (3,240 x 1.02 s + 6 x 108 images x 0.18 s = 57 min). The issue's floor was 20 passes (2,160).
TINY_PROTOCOL = TrainingProtocol(training_slices=3240)
PROTOCOLS = {"tiny": TINY_PROTOCOL}


def protocol_breaches(config: TrainConfig, profile: str, may_exceed: bool = False) -> list[str]:
    """How ``config`` (a recipe, one process) breaks the profile's protocol; [] if not (a profile without a
    protocol, e.g. ``paper``, sets its budget on the command line). ``may_exceed``: a capacity-checked stage,
    which may see more slices than the protocol's."""
    protocol = PROTOCOLS.get(profile)
    if protocol is None:
        return []
    breaches = []
    seen, wanted = config.steps * config.batch_size, protocol.training_slices
    if seen < wanted or (seen > wanted and not may_exceed):
        breaches.append(f"it sees {seen} training slices, the {profile} protocol {wanted}")
    if config.val_slices is not None:
        breaches.append(f"it validates on {config.val_slices} slices per pattern, the protocol on every val slice")
    return breaches
