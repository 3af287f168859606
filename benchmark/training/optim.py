"""Optimisers of one training run: AdamW, a warm-up + cosine/linear schedule and a gradient clip for the
main network and for every extra network a method trains beside it (e.g. a GAN discriminator)."""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel

from benchmark.recipes import OptimizerConfig, TrainConfig


def lr_factor(config: TrainConfig, step: int) -> float:
    """Linear warm-up to 1, then cosine or linear decay to ``min_lr_ratio`` at ``config.steps``."""
    if step < config.warmup_steps:
        return (step + 1) / config.warmup_steps
    progress = min(1.0, (step - config.warmup_steps) / max(1, config.steps - config.warmup_steps))
    decay = 0.5 * (1 + math.cos(math.pi * progress)) if config.schedule == "cosine" else 1 - progress
    return config.min_lr_ratio + (1 - config.min_lr_ratio) * decay


def parameter_groups(module: nn.Module, weight_decay: float, no_decay_keys: tuple[str, ...] | None) -> list[dict]:
    """AdamW parameter groups: all parameters decayed, or with ``no_decay_keys`` VAR's rule — 1-D parameters,
    biases and names containing a key get no decay. Frozen parameters stay in (they get no gradient)."""
    if no_decay_keys is None:
        return [{"params": list(module.parameters()), "weight_decay": weight_decay}]
    decayed, exempt = [], []
    for name, parameter in module.named_parameters():
        free = parameter.ndim == 1 or name.endswith("bias") or any(key in name for key in no_decay_keys)
        (exempt if free else decayed).append(parameter)
    return [{"params": decayed, "weight_decay": weight_decay}, {"params": exempt, "weight_decay": 0.0}]


class Optimizers:
    """One AdamW + schedule + clip per trained network, keyed by the network's name ("model" first)."""

    def __init__(self, modules: dict[str, nn.Module], config: TrainConfig) -> None:
        main = OptimizerConfig(config.lr, config.weight_decay, config.betas, config.grad_clip)
        settings = {"model": main, **dict(config.optimizers)}
        if set(settings) != set(modules):
            raise ValueError(f"networks {sorted(modules)} do not match optimiser settings {sorted(settings)}")
        self.modules, self.clips = modules, {name: s.grad_clip for name, s in settings.items()}
        self.optimizers = {
            name: torch.optim.AdamW(
                parameter_groups(modules[name], s.weight_decay, config.no_decay_keys if name == "model" else None),
                lr=s.lr, betas=s.betas,
            )
            for name, s in settings.items()
        }  # fmt: skip
        self.schedulers = {
            name: torch.optim.lr_scheduler.LambdaLR(opt, lambda step: lr_factor(config, step))
            for name, opt in self.optimizers.items()
        }

    def step(self, name: str, loss: torch.Tensor) -> None:
        """Backward ``loss`` into network ``name`` only (its gradients start from zero), clip, step."""
        self.backward(name, loss, fresh=True)
        self.apply(name)

    def backward(self, name: str, loss: torch.Tensor, fresh: bool) -> None:
        """Add the gradients of ``loss`` to network ``name``'s (from zero when ``fresh``)."""
        if fresh:
            self.optimizers[name].zero_grad(set_to_none=True)
        loss.backward()

    def apply(self, name: str) -> None:
        """Clip network ``name``'s accumulated gradients, step its optimiser and its schedule."""
        torch.nn.utils.clip_grad_norm_(self.modules[name].parameters(), self.clips[name])
        self.optimizers[name].step()
        self.schedulers[name].step()

    def lr(self) -> float:
        return self.schedulers["model"].get_last_lr()[0]

    def state_dict(self) -> dict:
        return {
            "optimizers": {name: opt.state_dict() for name, opt in self.optimizers.items()},
            "schedulers": {name: sched.state_dict() for name, sched in self.schedulers.items()},
        }

    def load_state_dict(self, state: dict) -> None:
        for name, optimizer in self.optimizers.items():
            optimizer.load_state_dict(state["optimizers"][name])
            self.schedulers[name].load_state_dict(state["schedulers"][name])


@contextmanager
def averaged_weights(model: nn.Module, ema: AveragedModel | None) -> Iterator[None]:
    """The EMA weights copied into ``model`` for the duration and its training weights put back after: its owner
    keeps the one network it was built with (buffers already match: the trainer copies them every step)."""
    if ema is None:
        yield
        return
    training = [parameter.detach().clone() for parameter in model.parameters()]
    with torch.no_grad():
        for parameter, averaged in zip(model.parameters(), ema.module.parameters(), strict=True):
            parameter.copy_(averaged)
    try:
        yield
    finally:
        with torch.no_grad():
            for parameter, kept in zip(model.parameters(), training, strict=True):
                parameter.copy_(kept)
