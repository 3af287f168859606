"""The paper's tables, computed from a run's per-image table and rendered as markdown and LaTeX.

Every cell is a mean (optionally ± standard deviation) over the images of one (method, mask,
contrast) group; "—" marks a cell the run cannot fill, with a footnote saying why (a method that was
not run, a metric whose weights are unavailable). The best value in each column is bold, respecting
the metric's direction. The paper's published numbers can be appended as clearly separate rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from benchmark.data.anatomy import CONTRASTS
from benchmark.metrics.region import IMAGE, REGION_DESCRIPTIONS, region_suffix
from benchmark.reports.paper import PAPER_METHODS, paper_values

MASK_TITLES = {
    "cartesian_x": "ES Cartesian-X",
    "cartesian_y": "ES Cartesian-Y",
    "gaussian_2d": "Gaussian-VD",
    "radial": "Radial",
}
#: Paper table per mask (Tables 1-3, Supp. Table 1).
MASK_TABLES = {"cartesian_x": "Table 1", "radial": "Table 2", "cartesian_y": "Table 3", "gaussian_2d": "Supp. Table 1"}
METRIC_LABELS = {
    "psnr": "PSNR",
    "ssim": "SSIM",
    "lpips_alex": "LPIPS",
    "lpips_vgg": "VGG",
    "dists": "DISTS",
    "stlpips_alex": "ST-LPIPS",
    "runtime_s": "s/image",
}
#: The metrics of the per-mask tables (Tables 1-3, Supp. Table 1).
MASK_METRICS = ["psnr", "ssim", "lpips_alex", "stlpips_alex"]
LOWER_IS_BETTER = {"lpips_alex", "lpips_vgg", "dists", "stlpips_alex", "nmse", "runtime_s"}
METHOD_LABELS = {
    "unet": "UNet",
    "swinunet": "SwinUNet",
    "e2evarnet": "E2E-VarNet",
    "recurrentvarnet": "RecurrentVarNet",
    "diffuserecon": "DiffuseRecon",
    "mdpg": "MDPG",
    "mambarecon": "MambaRecon",
    "nasp": "NASP (proposed)",
    "nasp-base": "NASP base",
    "nasp-base-multinomial": "NASP base, multinomial",
    "nasp-base-topkp": "NASP base, top-k/top-p",
    "nasp-base-dc": "NASP base + DC",
    "nasp-nocross": "NASP w/o cross-attention",
    "nasp-flat": "NASP w/o token hierarchy",
    "nasp-frozenenc": "NASP w/o trainable encoder",
    "zero_filled": "Zero-filled",
    "cs_wavelet": "CS-Wavelet",
}


@dataclass
class Table:
    """A rendered-to-be table: ``cells`` rows x (group, metric) columns of formatted strings."""

    title: str
    caption: str
    rows: list[str]
    groups: list[tuple[str, list[str]]]  # (group label, metric column keys) in display order
    values: pd.DataFrame  # float values, index = rows, columns = MultiIndex (group, metric)
    spread: pd.DataFrame | None = None  # standard deviations, same shape
    notes: list[str] = field(default_factory=list)
    row_notes: dict[str, str] = field(default_factory=dict)
    paper: pd.DataFrame | None = None  # published values (strings), same columns
    paper_label: str = "Published (paper, fastMRI)"
    marks: dict[tuple[str, str], str] = field(default_factory=dict)  # (row, column) -> significance mark
    #: column -> rows set in bold, where a significance rule decides (elsewhere: the column's best value)
    bold: dict[str, set[str]] = field(default_factory=dict)
    ci_low: pd.DataFrame | None = None  # 95 % confidence interval bounds, same shape as values
    ci_high: pd.DataFrame | None = None
    show_ci: bool = False  # render the intervals in every variant (tables of differences)
    column_labels: dict[str, str] = field(default_factory=dict)  # headers where the column key does not say it


#: Distilled methods and the base each was distilled from, for Table 5 and Fig. 5 (beside the generic
#: pairing of ``X`` with ``X:distilled``).
DISTILLED_FROM = {"nasp": "nasp-base"}


def distillation_pairs(methods: list[str]) -> list[tuple[str, str]]:
    """(base, distilled) pairs of which a run holds both: ``X`` / ``X:distilled`` and ``DISTILLED_FROM``."""
    pairs = [(m, f"{m}:distilled") for m in methods if f"{m}:distilled" in methods]
    return pairs + [(base, m) for m, base in DISTILLED_FROM.items() if m in methods and base in methods]


def column_key(metric: str, protocol: str, region: str = IMAGE) -> str:
    """The per-image table's column for a displayed metric (PSNR/SSIM carry the protocol, and a region other
    than the whole image; NMSE only the protocol)."""
    if metric in ("psnr", "ssim"):
        return f"{metric}_{protocol}{region_suffix(region)}"
    return f"{metric}_{protocol}" if metric == "nmse" else metric


def region_caption(region: str) -> str:
    """What a table's PSNR/SSIM average over."""
    return f"PSNR/SSIM over the {REGION_DESCRIPTIONS[region]}."


def ordered_methods(table: pd.DataFrame) -> list[str]:
    """The paper's method order first (including methods this run lacks), then the run's others."""
    ran = list(dict.fromkeys(table["method"]))
    return list(PAPER_METHODS) + [m for m in ran if m not in PAPER_METHODS]


def mask_table(
    table: pd.DataFrame,
    mask: str,
    protocol: str,
    unavailable: dict[str, str],
    with_paper: bool,
    volumes: pd.DataFrame | None = None,
    region: str = IMAGE,
) -> Table:
    """Tables 1-3 / Supp. Table 1: methods x (PSNR, SSIM, LPIPS, ST-LPIPS) x (T1, T2, FLAIR).

    ``volumes`` (per-volume fastMRI scores) supplies PSNR/SSIM under the ``fastmri`` protocol; ``region`` is
    where PSNR/SSIM average (``benchmark.metrics.region``).
    """
    metrics = MASK_METRICS
    subset = table[table["mask"] == mask]
    groups = [(METRIC_LABELS[m], [f"{m}|{c}" for c in CONTRASTS]) for m in metrics]
    rows = ordered_methods(table)
    values, spread = _grid(subset, rows, metrics, protocol, True, _of_mask(volumes, mask), region)
    acceleration = int(subset["acceleration"].iloc[0]) if len(subset) else 32
    result = Table(
        title=f"{MASK_TABLES[mask]}: {MASK_TITLES[mask]}, R = {acceleration}",
        caption=f"Mean over test {_unit(protocol)} per contrast. ST-LPIPS (shift-tolerant LPIPS) is not in the paper.",
        rows=rows,
        groups=groups,
        values=values,
        spread=spread,
    )
    _annotate(result, table, unavailable, metrics)
    if with_paper:
        result.paper = paper_values(MASK_TABLES[mask], mask, metrics, by_contrast=True)
    return result


def perceptual_table(table: pd.DataFrame, masks: list[str], unavailable: dict[str, str], with_paper: bool) -> Table:
    """Supp. Table 2: LPIPS-Alex, LPIPS-VGG, DISTS (and ST-LPIPS) means over contrasts, per mask."""
    metrics = ["lpips_alex", "lpips_vgg", "dists", "stlpips_alex"]
    rows = ordered_methods(table)
    frames, spreads = [], []
    for mask in masks:
        values, spread = _grid(table[table["mask"] == mask], rows, metrics, "paper", by_contrast=False)
        frames.append(values.set_axis([f"{mask}|{c}" for c in values.columns], axis=1))
        spreads.append(spread.set_axis([f"{mask}|{c}" for c in spread.columns], axis=1))
    result = Table(
        title="Supp. Table 2: feature-space metrics, mean over T1/T2/FLAIR",
        caption="Lower is better for all. ST-LPIPS is not in the paper.",
        rows=rows,
        groups=[(MASK_TITLES[m], [f"{m}|{x}" for x in metrics]) for m in masks],
        values=pd.concat(frames, axis=1),
        spread=pd.concat(spreads, axis=1),
    )
    _annotate(result, table, unavailable, metrics)
    if with_paper:
        result.paper = paper_values("Supp. Table 2", masks, metrics, by_contrast=False)
    return result


def ablation_table(
    table: pd.DataFrame,
    masks: list[str],
    protocol: str,
    unavailable: dict[str, str],
    volumes: pd.DataFrame | None = None,
    region: str = IMAGE,
) -> Table:
    """Table 4: every method/variant of the run x masks, (PSNR, SSIM, LPIPS) averaged over contrasts."""
    metrics = ["psnr", "ssim", "lpips_alex"]
    rows = list(dict.fromkeys(table["method"]))
    frames, spreads = [], []
    for mask in masks:
        subset, mask_volumes = table[table["mask"] == mask], _of_mask(volumes, mask)
        values, spread = _grid(subset, rows, metrics, protocol, False, mask_volumes, region)
        frames.append(values.set_axis([f"{mask}|{c}" for c in values.columns], axis=1))
        spreads.append(spread.set_axis([f"{mask}|{c}" for c in spread.columns], axis=1))
    result = Table(
        title="Table 4: variants x masks, averaged over contrasts",
        caption=f"Every method and variant in this run; mean over test {_unit(protocol)} and contrasts.",
        rows=rows,
        groups=[(MASK_TITLES[m], [f"{m}|{x}" for x in metrics]) for m in masks],
        values=pd.concat(frames, axis=1),
        spread=pd.concat(spreads, axis=1),
    )
    _annotate(result, table, unavailable, metrics)
    return result


def distillation_table(
    table: pd.DataFrame,
    masks: list[str],
    protocol: str,
    unavailable: dict[str, str],
    volumes: pd.DataFrame | None = None,
    region: str = IMAGE,
) -> Table:
    """Table 5: base vs distilled (``distillation_pairs``) per mask and contrast."""
    metrics = ["psnr", "ssim", "lpips_alex"]
    pairs = distillation_pairs(list(dict.fromkeys(table["method"])))
    rows = [f"{mask}|{name}" for mask in masks for pair in pairs for name in pair]
    values = pd.DataFrame(np.nan, index=rows, columns=[f"{m}|{c}" for m in metrics for c in CONTRASTS])
    spread = values.copy()
    for mask in masks:
        subset = table[table["mask"] == mask]
        names = [n for pair in pairs for n in pair]
        grid, grid_spread = _grid(subset, names, metrics, protocol, True, _of_mask(volumes, mask), region)
        for name in grid.index:
            values.loc[f"{mask}|{name}"] = grid.loc[name].to_numpy()
            spread.loc[f"{mask}|{name}"] = grid_spread.loc[name].to_numpy()
    result = Table(
        title="Table 5: base vs distilled",
        caption=(
            "Base and distilled methods of this run (`nasp-base` / `nasp`, or `X` / `X:distilled`); "
            f"mean over test {_unit(protocol)} per contrast."
        ),
        rows=rows,
        groups=[(METRIC_LABELS[m], [f"{m}|{c}" for c in CONTRASTS]) for m in metrics],
        values=values,
        spread=spread,
    )
    if not pairs:
        result.notes.append("This run has no base/distilled pair (`nasp-base` with `nasp`, or `X` with `X:distilled`).")
    _annotate(result, table, unavailable, metrics)
    return result


def runtime_table(table: pd.DataFrame) -> Table:
    """Seconds per image (timed region only), with device, batch size and peak GPU memory."""
    rows = list(dict.fromkeys(table["method"]))
    grouped = table.groupby("method", sort=False)
    values = pd.DataFrame(
        {
            "runtime|s/image": grouped["runtime_s"].mean(),
            "runtime|batch": grouped["batch_size"].mean().astype(float),
            "runtime|peak MB": grouped["peak_memory_bytes"].max() / 2**20,
        }
    ).reindex(rows)
    devices = grouped["device"].first().reindex(rows)
    result = Table(
        title="Runtime",
        caption="Seconds per image over the reconstruct call only (warm-up excluded); batch: mean number of slices "
        "per reconstruct call (slices of several volumes share a batch); peak GPU memory (0 on CPU).",
        rows=rows,
        groups=[("", list(values.columns))],
        values=values,
        spread=pd.DataFrame({"runtime|s/image": grouped["runtime_s"].std()})
        .reindex(rows)
        .reindex(columns=values.columns),
    )
    result.notes.append("device: " + "; ".join(f"{method_label(row)} on {devices[row]}" for row in rows))
    return result


def method_label(method: str) -> str:
    """Display name: ``nasp:distilled`` -> ``NASP (proposed) (distilled)``."""
    base, _, variant = method.partition(":")
    return METHOD_LABELS.get(base, base) + (f" ({variant})" if variant else "")


def metric_source(images: pd.DataFrame, volumes: pd.DataFrame | None, key: str, protocol: str) -> pd.DataFrame:
    """The frame a metric column is scored from: per-volume scores for PSNR/SSIM/NMSE under the ``fastmri``
    protocol (as the fastMRI leaderboard reports them), per-image values otherwise."""
    return volumes if protocol == "fastmri" and volumes is not None and key in volumes.columns else images


def _of_mask(volumes: pd.DataFrame | None, mask: str) -> pd.DataFrame | None:
    return None if volumes is None else volumes[volumes["mask"] == mask]


def _unit(protocol: str) -> str:
    """What one PSNR/SSIM value is under ``protocol``: fastMRI scores volumes, the paper images."""
    return "volumes (PSNR/SSIM) and images (perceptual metrics)" if protocol == "fastmri" else "images"


def _grid(
    subset: pd.DataFrame,
    rows: list[str],
    metrics: list[str],
    protocol: str,
    by_contrast: bool,
    volumes: pd.DataFrame | None = None,
    region: str = IMAGE,
):
    """Mean and std per (method[, contrast]) for each metric, as ``rows`` x ``metric|contrast`` frames.

    Under the ``fastmri`` protocol PSNR/SSIM/NMSE are means of the per-volume scores in ``volumes``, as
    the fastMRI leaderboard reports them; every other value is a mean over images.
    """
    columns, means, stds = [], {}, {}
    for metric in metrics:
        key = column_key(metric, protocol, region)
        source = metric_source(subset, volumes, key, protocol)
        present = key in source.columns
        keys = [f"{metric}|{c}" for c in CONTRASTS] if by_contrast else [metric]
        for label in keys:
            columns.append(label)
            part = source
            if by_contrast:
                part = source[source["contrast"] == label.split("|")[1]]
            grouped = part.groupby("method")[key] if present else None
            means[label] = grouped.mean() if present else pd.Series(dtype=float)
            stds[label] = grouped.std(ddof=0) if present else pd.Series(dtype=float)
    values = pd.DataFrame(means).reindex(index=rows, columns=columns)
    spread = pd.DataFrame(stds).reindex(index=rows, columns=columns)
    return values, spread


def _annotate(result: Table, table: pd.DataFrame, unavailable: dict[str, str], metrics: list[str]) -> None:
    ran = set(table["method"])
    for row in result.rows:
        name = row.split("|")[-1]
        if name not in ran:
            result.row_notes[row] = "not in this run"
    for metric in metrics:
        if metric in unavailable:
            result.notes.append(f"{METRIC_LABELS[metric]} unavailable: {unavailable[metric]}")


def best_rows(result: Table) -> dict[str, set[str]]:
    """For each column, the rows holding its best finite value (ties all bold)."""
    best = {}
    for column in result.values.columns:
        series = result.values[column].replace([np.inf, -np.inf], np.nan).dropna()
        metric = column.split("|")[-1] if column.split("|")[0] in MASK_TITLES else column.split("|")[0]
        if series.empty or column.startswith("runtime|") and column != "runtime|s/image":
            best[column] = set()
            continue
        target = series.min() if metric in LOWER_IS_BETTER or column == "runtime|s/image" else series.max()
        best[column] = set(series.index[np.isclose(series, target, rtol=0, atol=1e-12)])
    return best
