"""Figures drawn with matplotlib (Agg backend: no display needed)."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.patches  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402

from benchmark.data.anatomy import CONTRASTS  # noqa: E402
from benchmark.io import atomic_path  # noqa: E402
from benchmark.masks import PATTERNS, make_mask  # noqa: E402

#: Panel titles as the paper names the mask patterns.
PAPER_MASK_NAMES = {
    "cartesian_x": "ES Cartesian-X",
    "cartesian_y": "ES Cartesian-Y",
    "gaussian_2d": "2D Gaussian VD",
    "radial": "Radial",
}


def plot_masks(out: Path, shape: tuple[int, int] = (256, 256), acceleration: int = 32, seed: int = 0) -> Path:
    """The four mask patterns at one acceleration, side by side (the paper's Supp. Fig. 1).

    Each title states the measured acceleration (all points / sampled points), so the figure itself
    shows that every pattern hits its R. The format follows ``out``'s suffix (png, pdf, svg).
    """
    fig, axes = plt.subplots(1, len(PATTERNS), figsize=(3.2 * len(PATTERNS), 3.6))
    for ax, name in zip(axes, PATTERNS, strict=True):
        mask = make_mask(name, shape, acceleration, seed)
        measured = mask.numel() / int(mask.sum())
        ax.imshow(mask.numpy(), cmap="gray", interpolation="nearest")
        ax.set_title(f"{PAPER_MASK_NAMES[name]}\nR = {measured:.2f}", fontsize=10)
        ax.set_axis_off()
    fig.suptitle(f"Sampling masks at R = {acceleration} ({shape[0]}×{shape[1]}, seed {seed})")
    fig.tight_layout(rect=(0, 0, 1, 0.9))
    with atomic_path(out) as tmp:
        fig.savefig(tmp, dpi=150, format=Path(out).suffix.lstrip(".") or "png")
    plt.close(fig)
    return Path(out)


def plot_comparison(
    panels: list[tuple[str, np.ndarray, str]],
    target: np.ndarray,
    out: Path,
    title: str,
    error_maps: bool = False,
    zoom_size: int | None = None,
) -> list[Path]:
    """Ground truth and each reconstruction side by side, metrics on each panel, a zoom row below.

    ``panels`` holds ``(label, magnitude image, metric text)``. Images are shown each divided by its own
    maximum (the paper protocol's normalisation); the zoom box is the target's most textured window.
    Writes ``out`` as PNG and the same figure as PDF beside it.
    """
    images = [("Ground truth", target, "")] + panels
    rows = 3 if error_maps else 2
    zoom = zoom_window(target, zoom_size or max(16, target.shape[0] // 4))
    fig, axes = plt.subplots(rows, len(images), figsize=(2.4 * len(images), 2.5 * rows), squeeze=False)
    for column, (label, image, text) in enumerate(images):
        shown = image / image.max() if image.max() > 0 else image
        top, left, size = zoom
        axes[0, column].imshow(shown, cmap="gray", vmin=0, vmax=1)
        axes[0, column].add_patch(matplotlib.patches.Rectangle((left, top), size, size, fill=False, color="yellow"))
        axes[0, column].set_title(label, fontsize=9)
        axes[0, column].text(2, shown.shape[0] - 3, text, color="yellow", fontsize=6.5, va="bottom")
        axes[1, column].imshow(shown[top : top + size, left : left + size], cmap="gray", vmin=0, vmax=1)
        if error_maps:
            truth = target / target.max()
            axes[2, column].imshow(np.abs(shown - truth), cmap="inferno", vmin=0, vmax=0.3)
    for ax in axes.ravel():
        ax.set_axis_off()
    fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    written = []
    for suffix in (".png", ".pdf"):
        path = Path(out).with_suffix(suffix)
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=150, format=suffix[1:])
        written.append(path)
    plt.close(fig)
    return written


def zoom_window(image: np.ndarray, size: int) -> tuple[int, int, int]:
    """``(top, left, size)`` of the ``size`` x ``size`` window with the largest gradient energy."""
    gy, gx = np.gradient(image.astype(np.float64))
    energy = np.pad(gy**2 + gx**2, ((1, 0), (1, 0))).cumsum(0).cumsum(1)
    sums = energy[size:, size:] - energy[:-size, size:] - energy[size:, :-size] + energy[:-size, :-size]
    top, left = np.unravel_index(np.argmax(sums), sums.shape)
    return int(top), int(left), size


def plot_sweep(points, metric: str, out: Path) -> list[Path]:
    """Metric vs R: a panel per (contrast, mask), a line per method with its 95 % interval as a band.

    ``points`` holds one row per (method, mask, contrast, acceleration) with ``mean``, ``ci_low``, ``ci_high``
    and ``label`` (the legend entry, which names a checkpoint's training R when it differs). Writes PNG and PDF.
    """
    masks = [m for m in PATTERNS if m in set(points["mask"])]
    contrasts = [c for c in CONTRASTS if c in set(points["contrast"])]
    fig, axes = plt.subplots(
        len(contrasts), len(masks), figsize=(3.4 * len(masks), 2.8 * len(contrasts)), squeeze=False, sharex=True
    )
    for (row, contrast), (col, mask) in ((r, c) for r in enumerate(contrasts) for c in enumerate(masks)):
        ax = axes[row][col]
        panel = points[(points["mask"] == mask) & (points["contrast"] == contrast)]
        for label, line in panel.groupby("label", sort=False):
            line = line.sort_values("acceleration")
            (drawn,) = ax.plot(line["acceleration"], line["mean"], marker="o", label=label)
            ax.fill_between(line["acceleration"], line["ci_low"], line["ci_high"], color=drawn.get_color(), alpha=0.2)
        ax.set_xscale("log", base=2)
        ax.set_xticks(sorted(set(points["acceleration"])), [str(r) for r in sorted(set(points["acceleration"]))])
        ax.set_title(f"{PAPER_MASK_NAMES[mask]}, {contrast}", fontsize=9)
        ax.set_xlabel("R" if row == len(contrasts) - 1 else "")
        ax.set_ylabel(metric.upper() if col == 0 else "")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 4), fontsize=8)
    fig.tight_layout(rect=(0, 0.06 + 0.03 * (len(labels) // 4), 1, 1))
    written = []
    for suffix in (".png", ".pdf"):
        target = Path(out).with_suffix(suffix)
        with atomic_path(target) as tmp:
            fig.savefig(tmp, dpi=150, format=suffix.lstrip("."))
        written.append(target)
    plt.close(fig)
    return written
