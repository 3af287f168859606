"""The audit's figures: contrast recovery against lesion radius, and one slice's lesions, errors and null space.

The grid shows, for one test slice and mask, a row per method (the truth first): the reconstruction with lesions
(inserted lesions ringed), what the lesions changed (``|x̂_L| - |x̂_0|``, on the true change's colour scale), the
lesion-free error ``|x̂_0| - |x_0|`` with its most conspicuous false structures circled (as strong as the
strongest inserted lesion), and the null-space error ``|(I - A⁺A) e|``
(on the output's own phase; a magnitude output on the truth's).
"""

from __future__ import annotations

from pathlib import Path

import h5py
import matplotlib
import numpy as np
import torch

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from benchmark.acquisition import volume_masks  # noqa: E402
from benchmark.audit.lesions import LESION_RADII, Lesion, interior_region, sidecar_path  # noqa: E402
from benchmark.audit.nullspace import null_space_split, slice_operator, with_phase_of  # noqa: E402
from benchmark.audit.observers import CONSPICUITY_LEVELS, false_structures  # noqa: E402
from benchmark.io import atomic_path  # noqa: E402
from benchmark.masks import PATTERNS  # noqa: E402
from benchmark.reports.figures import PAPER_MASK_NAMES  # noqa: E402
from benchmark.reports.tables import method_label  # noqa: E402


def plot_cr_curves(cells, out: Path) -> Path:
    """Mean CR (subject-bootstrap band) against lesion radius, a panel per mask, a line per method."""
    masks = [m for m in PATTERNS if m in set(cells["mask"])]
    fig, axes = plt.subplots(1, len(masks), figsize=(3.4 * len(masks), 3.0), squeeze=False, sharey=True)
    for ax, mask in zip(axes[0], masks, strict=True):
        for method, line in cells[cells["mask"] == mask].groupby("method", sort=False):
            line = line.sort_values("radius_px")
            (drawn,) = ax.plot(line["radius_px"], line["cr"], marker="o", label=method_label(method))
            ax.fill_between(line["radius_px"], line["cr_low"], line["cr_high"], color=drawn.get_color(), alpha=0.2)
        ax.axhline(1.0, color="black", linestyle="--", linewidth=0.8)  # faithful
        ax.set_title(PAPER_MASK_NAMES[mask], fontsize=9)
        ax.set_xlabel("lesion radius (px)")
    axes[0][0].set_ylabel("contrast recovery")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 4), fontsize=8)
    fig.tight_layout(rect=(0, 0.08 + 0.04 * (len(labels) // 4), 1, 1))
    return _save(fig, out)


def plot_lesion_grid(audit_dir: Path, methods: list[str], mask: str, file: Path, out: Path) -> Path:
    """The first slice of test volume ``file`` under ``mask``: a row per method, the truth first."""
    from benchmark.audit.run import CLEAN_RUN, LESION_DATA, LESION_RUN, sense_truth, stored_reconstruction
    from benchmark.data import LoadOptions
    from benchmark.runner.record import RunRecord
    from benchmark.runner.units import Unit, load_volume

    config = RunRecord.read(audit_dir / CLEAN_RUN).config
    volume = load_volume(file, LoadOptions(**{**config["load"], "size": tuple(config["load"]["size"])}))
    truth = sense_truth(volume, 0)
    with h5py.File(sidecar_path(audit_dir / LESION_DATA, file.name)) as sidecar:
        lesion_image, table = sidecar["lesion_image"][0], sidecar["lesions"][()]
    lesions = [Lesion(int(r), int(c), rad, con, bg) for s, r, c, rad, con, bg in table if int(s) == 0]
    masks = volume_masks(mask, file.name, 1, truth.shape, config["acceleration"])
    operator = slice_operator(volume["maps"][:1], masks)
    rows = [("Truth", truth + lesion_image, truth)]
    for method in methods:
        clean = Unit(method, mask, file, "").recon_path(audit_dir / CLEAN_RUN)
        lesioned = Unit(method, mask, audit_dir / LESION_DATA / file.parent.name / file.name, "")
        rows.append((method_label(method), stored_reconstruction(lesioned.recon_path(audit_dir / LESION_RUN))[0],
                     stored_reconstruction(clean)[0]))  # fmt: skip
    scales = {
        "change": float(np.abs(np.abs(truth + lesion_image) - np.abs(truth)).max()),
        "error": max([float(np.abs(np.abs(c) - np.abs(truth)).max()) for _, _, c in rows[1:]] or [1.0]),
        "image": float(np.abs(truth).max()),
    }
    fig, axes = plt.subplots(len(rows), 4, figsize=(10, 2.6 * len(rows)), squeeze=False)
    for (label, with_lesion, clean), ax_row in zip(rows, axes, strict=True):
        _draw_row(ax_row, label, with_lesion, clean, truth, operator, scales)
        for lesion in lesions:
            ax_row[0].add_patch(plt.Circle((lesion.col, lesion.row), lesion.radius + 3, fill=False, color="yellow"))
    fig.suptitle(f"{PAPER_MASK_NAMES[mask]}, {file.stem}", fontsize=9)
    fig.tight_layout()
    return _save(fig, out)


def _draw_row(ax_row, label: str, with_lesion, clean, truth, operator, scales: dict) -> None:
    """One method's four panels; its false structures circled (red bright, cyan dark) on the error panel."""
    output, truth_t = torch.from_numpy(clean)[None], torch.from_numpy(truth)[None]
    scored = output if output.is_complex() else with_phase_of(output, truth_t)  # as the table's NHE: own phase
    null = null_space_split(operator, scored, truth_t).null[0].abs().numpy()
    panels = (
        (np.abs(with_lesion), "gray", 0, scales["image"], "with lesions"),
        (np.abs(with_lesion) - np.abs(clean), "RdBu_r", -scales["change"], scales["change"], "|x̂_L| − |x̂₀|"),
        (np.abs(clean) - np.abs(truth), "RdBu_r", -scales["error"], scales["error"], "|x̂₀| − |x₀|"),
        (null, "magma", 0, scales["error"], "null-space error"),
    )
    for ax, (image, cmap, low, high, title) in zip(ax_row, panels, strict=True):
        ax.imshow(image, cmap=cmap, vmin=low, vmax=high)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(f"{label}: {title}" if ax is ax_row[0] else title, fontsize=8)
    if label == "Truth":
        return
    interior = interior_region(truth)
    for radius in sorted({max(1.0, r * truth.shape[-1] / 256) for r in LESION_RADII}):
        for sign, color in ((1, "red"), (-1, "cyan")):
            for row, col, conspicuity in false_structures(clean, truth, interior, radius, sign):
                if conspicuity < CONSPICUITY_LEVELS[-1]:
                    continue
                ax_row[2].add_patch(plt.Circle((col, row), radius + 3, fill=False, color=color, linewidth=0.8))


def _save(fig, out: Path) -> Path:
    target = Path(out).with_suffix(".png")
    with atomic_path(target) as tmp:
        fig.savefig(tmp, dpi=120, format="png")
    plt.close(fig)
    return target
