"""Training curves of the shipped checkpoints: ``report RUN --training`` (issue 31).

Every checkpoint in the shipped manifest (``results/checkpoints/manifest.json``) is read for its curve — the
validation SSIM and PSNR (paper protocol, every val slice x each pattern) at each validation — and what it
saw: training slices (to the kept best step, from the checkpoint; in the whole run, as the manifest recorded when
it was shipped), wall time, best and last step, capacity check. ``training.md`` tables them and says
whether the best step is the last (then the run had not converged); ``training_curves.png`` draws one panel
per method or stage. A checkpoint shipped before curves were kept says so instead of a curve.
"""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from benchmark.checkpoint import CHECKPOINT_ROOT  # noqa: E402
from benchmark.io import atomic_path  # noqa: E402

#: What a checkpoint without a curve shows in the table.
NO_CURVE = "no curve: shipped before the training protocol kept one"


def shipped_training(root: Path = CHECKPOINT_ROOT) -> list[dict]:
    """One record per shipped checkpoint: its key, curve (validation rows) and training figures."""
    manifest = json.loads((root / "manifest.json").read_text())
    records = []
    for key in sorted(manifest):
        payload = torch.load(root / key, map_location="cpu", weights_only=True)
        curve = [row for row in payload.get("log") or [] if "val_ssim" in row]
        records.append({
            "checkpoint": key.removesuffix(".pt"), "curve": curve, "best_step": payload.get("step"),
            "last_step": payload.get("last_step"), "training_slices": payload.get("training_slices"),
            "run_training_slices": manifest[key].get("training", {}).get("training_slices"),
            "wall_seconds": payload.get("wall_seconds"), "best_val_ssim": payload.get("best_val_ssim"),
            "capacity": payload.get("capacity"),
        })  # fmt: skip
    return records


def training_table(records: list[dict]) -> str:
    """Markdown: per checkpoint, slices seen (to the best step and in the whole run), wall time, best / last
    step, best validation SSIM and PSNR, convergence and capacity."""
    lines = [
        "| Checkpoint | Slices seen (best / run) | Wall time (h) | Best / last step | Val SSIM | Val PSNR (dB) | "
        "Converged | Capacity check |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for record in records:
        if not record["curve"]:
            lines.append(f"| {record['checkpoint']} | {NO_CURVE} | | | | | | |")
            continue
        best = max(record["curve"], key=lambda row: row["val_ssim"])
        converged = "no: best at the last step" if best["step"] == record["last_step"] else "yes"
        capacity = record["capacity"]
        check = (
            "—"
            if capacity is None
            else f"{capacity['val_psnr']:.2f} dB vs {capacity['floor_db']:.0f}: "
            + ("passed" if capacity["passed"] else "missed")
        )
        hours = f"{record['wall_seconds'] / 3600:.2f}" if record["wall_seconds"] else "?"
        seen = f"{record['training_slices']} / {record['run_training_slices'] or '?'}"
        lines.append(
            f"| {record['checkpoint']} | {seen} | {hours} | {best['step']} / "
            f"{record['last_step']} | {best['val_ssim']:.3f} | {best['val_psnr']:.2f} | {converged} | {check} |"
        )
    return "\n".join(lines) + "\n"


def curves_figure(records: list[dict], path: Path) -> Path | None:
    """One panel per checkpoint with a curve: validation SSIM (left axis) and PSNR (right) against step."""
    drawn = [record for record in records if record["curve"]]
    if not drawn:
        return None
    columns = min(4, len(drawn))
    rows = -(-len(drawn) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(4 * columns, 3 * rows), squeeze=False)
    for axis, record in zip(axes.flat, drawn, strict=False):
        steps = [row["step"] for row in record["curve"]]
        axis.plot(steps, [row["val_ssim"] for row in record["curve"]], "o-", color="tab:blue")
        axis.set_ylabel("val SSIM", color="tab:blue")
        twin = axis.twinx()
        twin.plot(steps, [row["val_psnr"] for row in record["curve"]], "s--", color="tab:orange")
        twin.set_ylabel("val PSNR (dB)", color="tab:orange")
        axis.axvline(record["best_step"], color="grey", linewidth=0.8)
        axis.set_title(record["checkpoint"], fontsize=9)
        axis.set_xlabel("step")
    for axis in list(axes.flat)[len(drawn) :]:
        axis.axis("off")
    figure.tight_layout()
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=110)
    plt.close(figure)
    return path


def write_training_report(out: Path, root: Path = CHECKPOINT_ROOT) -> list[Path]:
    """``training.md`` and, when any checkpoint has a curve, ``training_curves.png`` in ``out``."""
    records = shipped_training(root)
    caption = (
        "Shipped checkpoints, each validated on the val split of the data it was trained on (the manifest's data "
        "hash; by default the embedded realistic heads): every val slice x each mask pattern at R = 32, k-space "
        "and target divided per slice by the scale of the R = 32 measurements, target the SENSE magnitude from "
        "the true coil maps, paper scoring protocol (each image divided by its own maximum, data range 1); the "
        "best validation SSIM picks the checkpoint (grey line in the figure). For an autoencoder stage the "
        "validation image is the fully sampled image through the autoencoder (the capacity check).\n\n"
    )
    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(out / "training.md") as tmp:
        tmp.write_text("# Training curves\n\n" + caption + training_table(records))
    figure = curves_figure(records, out / "training_curves.png")
    return [out / "training.md", *([figure] if figure else [])]
