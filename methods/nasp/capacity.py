"""Rate-distortion of the tiny AQ-VAE (issue 31): ``python -m methods.nasp.capacity --width 32 --z 32``.

Trains a tokenizer of the given size with the shared loop exactly as ``train nasp --stage tokenizer
--profile tiny`` would (same recipe, seed and data; only the width, latent channels and codebook size
replaced) into ``results/nasp/capacity/w<W>-z<Z>-c<C>/``. Its ``log.csv`` is the capacity curve: at each
validation, PSNR and SSIM (paper protocol) of the all-six-true-levels reconstruction (the oracle, which
sees the fully sampled data) of every val slice x each mask pattern — the figure the protocol's capacity
floor applies to. When the run ends, the size's row (parameters, seconds per step, oracle PSNR/SSIM at
every validation, best step) replaces its old row in ``results/nasp/capacity/table.csv``. ``--evaluate
CHECKPOINT`` adds the row of an already trained tokenizer (the shipped one), scored the same way.
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time
from pathlib import Path

import pandas as pd

from benchmark.checkpoint import load_checkpoint, load_weights
from benchmark.io import atomic_path
from benchmark.recipes import TINY_PROTOCOL
from benchmark.training.loop import Trainer, TrainRequest
from methods.nasp.adapter import TokenizerStage
from methods.nasp.config import TOKENIZER_CONFIGS, TOKENIZER_TRAIN

CAPACITY_ROOT = Path("results/nasp/capacity")


def resized_stage(width: int, z_channels: int, codebook_size: int) -> type[TokenizerStage]:
    """The tokenizer stage with the tiny profile's size replaced (everything else as shipped)."""
    config = dataclasses.replace(
        TOKENIZER_CONFIGS["tiny"], width=width, z_channels=z_channels, codebook_size=codebook_size
    )
    return type(f"TokenizerW{width}Z{z_channels}C{codebook_size}", (TokenizerStage,), {"configs": {"tiny": config}})


def size_row(out: Path, trainer: Trainer, seconds_per_step: float) -> dict:
    """The run's table row: its size, cost and the oracle's validation curve."""
    config = trainer.method.config
    log = pd.read_csv(out / "log.csv").dropna(subset=["val_psnr"])
    best = log.loc[log["val_ssim"].idxmax()]
    row = {
        "width": config.width, "z_channels": config.z_channels, "codebook_size": config.codebook_size,
        "parameters": sum(p.numel() for p in trainer.model.parameters()),
        "steps": trainer.step, "training_slices": trainer.step * trainer.config.batch_size,
        "seconds_per_step": round(seconds_per_step, 2),  # validations included
        "best_step": int(best["step"]), "best_val_psnr": best["val_psnr"], "best_val_ssim": best["val_ssim"],
        "passes_floor": bool(best["val_psnr"] >= TINY_PROTOCOL.capacity_floor_db),
    }  # fmt: skip
    for _, entry in log.iterrows():
        row[f"psnr_at_{int(entry['step'])}"] = round(float(entry["val_psnr"]), 3)
    return row


def record_row(row: dict, table: Path) -> None:
    """Replace the row of the same size and training slices in ``table`` (or add it) atomically."""
    key = ["width", "z_channels", "codebook_size", "training_slices"]
    rows = pd.read_csv(table) if table.is_file() else pd.DataFrame(columns=key)
    same = (rows[key] == pd.Series({k: row[k] for k in key})).all(axis=1) if len(rows) else []
    rows = pd.concat([rows[~pd.Series(same, dtype=bool)] if len(rows) else rows, pd.DataFrame([row])])
    with atomic_path(table) as tmp:
        rows.sort_values(key).to_csv(tmp, index=False)


def evaluate_checkpoint(path: Path, data: Path) -> dict:
    """The table row of an already trained tokenizer (e.g. the shipped one): its oracle on the same validation
    as a sweep run's (``Trainer.validate``), at the step it was saved."""
    payload = load_checkpoint(path, "nasp")
    size = payload["config"]
    stage = resized_stage(size["width"], size["z_channels"], size["codebook_size"])
    with tempfile.TemporaryDirectory() as out:
        trainer = Trainer(TrainRequest("nasp", "tiny", data, Path(out), stage="tokenizer"), stage)
        load_weights(trainer.model, payload["model"], path, "tokenizer")
        scores = trainer.validate()
    step, batch = payload["step"], payload["train_config"]["batch_size"]
    return {
        "width": size["width"], "z_channels": size["z_channels"], "codebook_size": size["codebook_size"],
        "parameters": sum(p.numel() for p in trainer.model.parameters()), "steps": step,
        "training_slices": step * batch, "best_step": step, "best_val_psnr": scores["val_psnr"],
        "best_val_ssim": scores["val_ssim"], "source": str(path),
        "passes_floor": bool(scores["val_psnr"] >= TINY_PROTOCOL.capacity_floor_db),
    }  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m methods.nasp.capacity", description=__doc__.split("\n\n")[0])
    shipped = TOKENIZER_CONFIGS["tiny"]
    parser.add_argument("--width", type=int, default=shipped.width)
    parser.add_argument("--z", type=int, default=shipped.z_channels)
    parser.add_argument("--codebook", type=int, default=shipped.codebook_size)
    parser.add_argument("--steps", type=int, help="default: the tiny recipe's steps")
    parser.add_argument("--data", type=Path, default=Path("data/embedded"))
    parser.add_argument("--save-every", type=int, default=50)
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--evaluate", type=Path, metavar="CHECKPOINT", help="table a trained tokenizer instead")
    args = parser.parse_args(argv)
    if args.evaluate:
        row = evaluate_checkpoint(args.evaluate, args.data)
        record_row(row, CAPACITY_ROOT / "table.csv")
        print(pd.Series(row).to_string())
        return
    out = CAPACITY_ROOT / f"w{args.width}-z{args.z}-c{args.codebook}"
    if not args.resume and (out / "last.pt").exists():
        parser.error(f"{out} already holds this size's run; pass --resume")
    out.mkdir(parents=True, exist_ok=True)
    request = TrainRequest(
        "nasp", "tiny", args.data, out, stage="tokenizer", resume=args.resume,
        steps=args.steps or TOKENIZER_TRAIN["tiny"].steps, save_every=args.save_every,
    )  # fmt: skip
    trainer = Trainer(request, resized_stage(args.width, args.z, args.codebook))
    started, first = time.monotonic(), trainer.step
    trainer.fit()
    seconds_per_step = (time.monotonic() - started) / max(trainer.step - first, 1)
    row = size_row(out, trainer, seconds_per_step)
    record_row(row, CAPACITY_ROOT / "table.csv")
    print(pd.Series(row).to_string())


if __name__ == "__main__":
    main()
