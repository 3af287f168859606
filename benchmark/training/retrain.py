"""Retrain every shipped tiny checkpoint under the training protocol: ``python -m benchmark.training.retrain``.

The multi-stage chains first (NASP, whose tokenizer's capacity decides it, then MDPG; each stage after the
ones it builds on, in ``registry.STAGES`` order), then the single-stage methods. Each trains as ``train
METHOD [--stage STAGE] --profile tiny --ship --resume --save-every 50`` into ``results/training/<method>
[-<stage>]-tiny/``, so a stopped session continues where it was, and a checkpoint already shipped under the
protocol (its manifest entry records what it saw and was written by the current recipe) is skipped. A
stage built on an autoencoder that missed its capacity check stops its chain (one line; the other methods still
train, and the command exits 2) unless ``--below-capacity``.

A chain longer than one session is staged: with ``$MRIBENCH_CHECKPOINTS`` naming a staging root (e.g.
``results/staged/checkpoints``, committed between sessions), each stage ships there and the next builds on it,
while the shipped checkpoints stay consistent with each other; ``--promote STAGED_ROOT`` then moves a finished
chain into the shipped root in one step (files and manifest entries, each file's sha256 checked).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

import torch

from benchmark.checkpoint import CHECKPOINT_ROOT, MANIFEST, plain_values
from benchmark.cli_args import resolve_data
from benchmark.errors import InputError
from benchmark.io import atomic_path, sha256_file
from benchmark.registry import STAGES, get_training_class
from benchmark.training.loop import TrainRequest, train
from benchmark.training.plan import training_units

SAVE_EVERY = 50


def retrain_order() -> list[tuple[str, str | None]]:
    """Every (method, stage) to retrain: the stage chains first, then the single-stage methods."""
    units = training_units()
    return [unit for unit in units if unit[0] in STAGES] + [unit for unit in units if unit[0] not in STAGES]


def shipped_under_protocol(method: str, stage: str | None, profile: str = "tiny") -> bool:
    """Whether the shipped checkpoint was trained under the protocol by the current recipe."""
    cls = get_training_class(method, stage)
    path = cls.shipped_checkpoint(profile)
    entries = json.loads(MANIFEST.read_text()) if MANIFEST.is_file() else {}
    entry = entries.get(path.relative_to(MANIFEST.parent).as_posix())
    if not entry or "training" not in entry or not path.is_file():
        return False
    stored = torch.load(path, map_location="cpu", weights_only=True)["train_config"]
    return plain_values(stored) == plain_values(asdict(cls.train_configs[profile]))


def promote(staged: Path, root: Path = CHECKPOINT_ROOT) -> list[str]:
    """Move every checkpoint of the staging root ``staged`` into the shipped ``root``, with its manifest entry;
    a staged file whose sha256 is not its entry's is refused before anything moves."""
    entries = json.loads((staged / MANIFEST.name).read_text())
    for key, entry in entries.items():
        if sha256_file(staged / key) != entry["sha256"]:
            raise InputError(f"{staged / key} does not match its staged manifest entry; retrain or restage it")
    shipped = json.loads((root / MANIFEST.name).read_text())
    for key in entries:
        (root / key).parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(root / key) as tmp:
            tmp.write_bytes((staged / key).read_bytes())
    with atomic_path(root / MANIFEST.name) as tmp:
        tmp.write_text(json.dumps(shipped | entries, indent=2, sort_keys=True) + "\n")
    return sorted(entries)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmark.training.retrain", description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", help="dataset directory (default: $MRIBENCH_DATA or data/embedded)")
    parser.add_argument("--only", help="comma-separated METHOD or METHOD:STAGE to retrain (default: all)")
    parser.add_argument("--below-capacity", action="store_true", help="train stages on autoencoders below the floor")
    parser.add_argument("--dry-run", action="store_true", help="print what would train, in order, and stop")
    parser.add_argument("--promote", type=Path, metavar="STAGED_ROOT", help="ship a staged chain and stop")
    args = parser.parse_args(argv)
    if args.promote:
        for key in promote(args.promote):
            print(f"shipped {key}")
        return
    wanted = {item.strip() for item in args.only.split(",")} if args.only else None
    stopped: dict[str, str] = {}  # chain -> why its remaining stages do not train
    for method, stage in retrain_order():
        label = f"{method}:{stage}" if stage else method
        if wanted is not None and label not in wanted and method not in wanted:
            continue
        if method in stopped:
            print(f"{label}: not trained, its chain stopped ({stopped[method]})")
            continue
        if shipped_under_protocol(method, stage):
            print(f"{label}: shipped under the protocol, skipped")
            continue
        out = Path("results/training") / "-".join(filter(None, (method, stage, "tiny")))
        print(f"{label}: training into {out}" + (" (dry run)" if args.dry_run else ""), flush=True)
        if args.dry_run:
            continue
        request = TrainRequest(
            method, "tiny", resolve_data(args.data), out, resume=True, save_every=SAVE_EVERY, ship=True,
            stage=stage, below_capacity=args.below_capacity,
        )  # fmt: skip
        try:
            train(request)
        except InputError as error:  # e.g. a missed capacity check: the other methods still train
            stopped[method] = str(error)
            print(f"{label}: {error}", file=sys.stderr)
    if stopped:
        raise SystemExit(2)


if __name__ == "__main__":
    main()
