"""What the training protocol costs here: ``python -m benchmark.training.plan`` (issue 31).

For every learned method and every stage of a multi-stage one, times the shared loop's training steps
(the tiny recipe's batch, after one warm-up step) and one validation image, then projects a protocol
run: the protocol's training slices plus its validations of every val slice x each pattern. Writes
``results/protocol/plan.csv`` and prints it. Earlier stages are the shipped ones (their capacity checks
are not enforced: nothing here is kept). Seconds are this machine's, so run it alone.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import pandas as pd
import torch

from benchmark.cli_args import resolve_data
from benchmark.masks import make_mask, make_mask_hierarchy, mask_seed
from benchmark.method import LearnedMethod
from benchmark.recipes import TINY_PROTOCOL
from benchmark.registry import METHODS, STAGES, get_method_class
from benchmark.training.batches import epoch_batches
from benchmark.training.loop import Trainer, TrainRequest


def training_units() -> list[tuple[str, str | None]]:
    """(method, stage) of every single-stage learned method and every stage of the multi-stage ones."""
    single = [
        (name, None)
        for name in METHODS
        if name not in STAGES
        and not any(name.startswith(f"{multi}-") for multi in STAGES)
        and issubclass(get_method_class(name), LearnedMethod)
    ]
    return single + [(name, stage) for name, stages in STAGES.items() for stage in stages]


def time_unit(method: str, stage: str | None, data: Path, steps: int) -> dict:
    """Seconds per training slice and per validation image of one method or stage."""
    with tempfile.TemporaryDirectory() as out:
        request = TrainRequest(method, "tiny", data, Path(out), stage=stage, device="cpu", below_capacity=True)
        trainer = Trainer(request)
        batches = epoch_batches(trainer.train_set, trainer.config, 0, 0, 1)
        shape = tuple(trainer.train_set[0]["target"].shape)
        trainer._train_step(batches[0], shape)  # warm-up: allocations, lazy initialisation, codebook k-means
        started = time.perf_counter()
        for indices in batches[1 : steps + 1]:
            trainer._train_step(indices, shape)
        per_slice = (time.perf_counter() - started) / (steps * trainer.config.batch_size)
        per_image = validation_seconds(trainer, shape)
    validation_images = len(trainer.val_set) * len(request.masks)
    slices = trainer.config.steps * trainer.config.batch_size  # a capacity-checked stage may see more
    hours = slices * per_slice + TINY_PROTOCOL.validations * validation_images * per_image
    return {
        "method": method, "stage": stage or "", "batch_size": trainer.config.batch_size,
        "steps": trainer.config.steps, "training_slices": slices, "seconds_per_slice": round(per_slice, 3),
        "seconds_per_validation_image": round(per_image, 3), "validation_images": validation_images,
        "protocol_hours": round(hours / 3600, 2),
    }  # fmt: skip


def validation_seconds(trainer: Trainer, shape: tuple[int, ...]) -> float:
    """Seconds of one validation image (the first val slice, Gaussian mask), as ``Trainer.validate`` makes it."""
    trainer.method.train_mode(False)
    path, slice_index = trainer.val_set.index[0]
    seed = mask_seed(path.name, slice_index)
    mask = make_mask("gaussian_2d", shape, trainer.config.acceleration, seed)
    chains = [make_mask_hierarchy("gaussian_2d", shape, seed)] if trainer.method.needs_hierarchy else None
    batch, target = trainer._batch(trainer.val_set, [0], "gaussian_2d", [mask], chains)
    started = time.perf_counter()
    with torch.no_grad():
        trainer.method.validation_image(batch, target)
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmark.training.plan", description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", help="dataset directory (default: $MRIBENCH_DATA or data/embedded)")
    parser.add_argument("--steps", type=int, default=3, help="timed training steps per method or stage")
    parser.add_argument("--out", type=Path, default=Path("results/protocol/plan.csv"))
    args = parser.parse_args(argv)
    data = resolve_data(args.data)
    rows = []
    for method, stage in training_units():
        rows.append(time_unit(method, stage, data, args.steps))
        print(" ".join(f"{k}={v}" for k, v in rows[-1].items()), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    table = pd.DataFrame(rows)
    table.to_csv(args.out, index=False)
    print(table.to_string(index=False))
    print(f"total: {table['protocol_hours'].sum():.1f} CPU-hours on this machine for one protocol run of each")


if __name__ == "__main__":
    main()
