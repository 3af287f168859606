"""``train METHOD --chain``: every stage of a multi-stage method in order, each built on the ones before it as
trained into the same chain folder (``<out>/<stage>/best.pt``), never on the shipped checkpoints.

A plan is printed first (stage, steps, batch, learning rate, what it builds on). Each stage resumes from its
own ``last.pt``, so a stopped chain continues where it was; under ``torchrun`` every rank waits for rank 0 to
write a stage's ``best.pt`` before the next stage loads it. ``--stage S`` with ``--chain`` trains S and the
stages it builds on only (``train nasp --chain --stage distill``: tokenizer, transformer, teacher, distill).
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import torch
import torch.distributed as dist

from benchmark.errors import InputError
from benchmark.registry import STAGES, get_training_class
from benchmark.training.loop import TrainRequest, train


def chain_stages(method: str, last: str | None = None) -> list[str]:
    """The stages ``train --chain`` trains, in the registry's (dependency) order: all of ``method``'s, or
    ``last`` and every stage it builds on, directly or not."""
    if method not in STAGES:
        raise InputError(f"{method} trains in one stage; drop --chain")
    if last is None:
        return list(STAGES[method])
    wanted, pending = set(), [last]
    while pending:
        stage = pending.pop()
        if stage not in wanted:
            wanted.add(stage)
            pending += [parent.stage for parent in get_training_class(method, stage).parent_stages.values()]
    return [stage for stage in STAGES[method] if stage in wanted]


def chain_plan(request: TrainRequest, stages: list[str]) -> list[str]:
    """One line per stage: what it trains, for how long, on what, into where."""
    lines = []
    for stage in stages:
        cls = get_training_class(request.method, stage)
        config = cls.train_configs[request.profile]
        steps, batch = request.steps or config.steps, request.batch_size or config.batch_size
        parents = ", ".join(parent.stage for parent in cls.parent_stages.values()) or "nothing (from scratch)"
        lines.append(f"  {stage}: {steps} steps x batch {batch}, lr {config.lr:g}, builds on {parents}; "
                     f"into {request.out / stage}")  # fmt: skip
        lines += [f"    substitutes {line}" for line in cls.substitutions(request.profile)]
    return lines


def stage_finished(folder: Path, steps: int) -> bool:
    """Whether the stage trained in ``folder`` reached its last step (``best.pt`` carries it once finished)."""
    best = folder / "best.pt"
    return best.is_file() and torch.load(best, map_location="cpu", weights_only=True).get("last_step") == steps


def train_chain(request: TrainRequest, last: str | None = None) -> Path:
    """Train the chain ``request`` names (its ``out`` is the chain folder) and return the last stage's
    ``best.pt``. A finished stage is kept as it is (no capacity check, no rewrite); a stage that stops before its
    last step (``stop_after``) stops the chain there, so no later stage trains on a parent still changing."""
    if request.ship:
        raise InputError("--chain does not --ship (a stopped chain would ship a mixed set of stages); score its "
                         "stages with `run --checkpoint METHOD=OUT/<stage>/best.pt`")  # fmt: skip
    stages = chain_stages(request.method, last)
    if int(os.environ.get("RANK", "0")) == 0:  # before the first stage joins torchrun's process group
        print(f"{request.method} {request.profile} chain, in order:", *chain_plan(request, stages), sep="\n")
    for stage in stages:
        folder = request.out / stage
        steps = request.steps or get_training_class(request.method, stage).train_configs[request.profile].steps
        if stage_finished(folder, steps):
            print(f"{stage}: finished, kept as it is", flush=True)
            continue
        train(replace(request, stage=stage, out=folder, parents_from=request.out, resume=True))
        if dist.is_initialized():
            dist.barrier()  # rank 0 finishes best.pt before any rank reads it
        if not stage_finished(folder, steps):
            print(f"{stage} stopped before its step {steps}; rerun the same command to continue the chain", flush=True)
            return folder / "best.pt"
    return request.out / stages[-1] / "best.pt"
