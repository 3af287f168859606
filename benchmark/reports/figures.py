"""Figures drawn with matplotlib (Agg backend: no display needed)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from benchmark.io import atomic_path  # noqa: E402
from benchmark.masks import PROTOCOLS, make_mask  # noqa: E402

#: Panel titles as the paper names the protocols.
PAPER_MASK_NAMES = {
    "cartesian_x": "ES Cartesian-X",
    "cartesian_y": "ES Cartesian-Y",
    "gaussian_2d": "2D Gaussian VD",
    "radial": "Radial",
}


def plot_masks(out: Path, shape: tuple[int, int] = (256, 256), acceleration: int = 32, seed: int = 0) -> Path:
    """The four protocols at one acceleration, side by side (the paper's Supp. Fig. 1).

    Each title states the measured acceleration (all points / sampled points), so the figure itself
    shows that every protocol hits its R. The format follows ``out``'s suffix (png, pdf, svg).
    """
    fig, axes = plt.subplots(1, len(PROTOCOLS), figsize=(3.2 * len(PROTOCOLS), 3.6))
    for ax, name in zip(axes, PROTOCOLS, strict=True):
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
