"""``python -m benchmark report RUN_DIR``: the paper's tables (markdown + LaTeX) and figure grids of a run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from benchmark.data import read_manifest
from benchmark.data.fastmri import LoadOptions, read_slice
from benchmark.errors import BenchmarkError
from benchmark.io import atomic_path
from benchmark.metrics.region import IMAGE
from benchmark.reports.differences import ABLATION_REFERENCE, ablation_differences, distillation_differences
from benchmark.reports.figures import plot_comparison, plot_masks
from benchmark.reports.loading import load_run_tables
from benchmark.reports.render import to_latex, to_markdown
from benchmark.reports.seeds import seed_spread, write_seed_report
from benchmark.reports.shift import shift_tables
from benchmark.reports.significance import annotate, mask_stats
from benchmark.reports.tables import (
    MASK_METRICS,
    MASK_TABLES,
    ablation_table,
    distillation_pairs,
    distillation_table,
    mask_table,
    method_label,
    perceptual_table,
    region_caption,
    runtime_table,
)
from benchmark.reports.throughput import load_perf, throughput_table
from benchmark.runner.record import RunRecord
from benchmark.runner.units import Unit, read_recon

MASK_ORDER = ("cartesian_x", "radial", "cartesian_y", "gaussian_2d")  # the paper's table order


def build_tables(
    table: pd.DataFrame,
    metadata: RunRecord,
    scoring: str,
    with_paper: bool,
    volumes: pd.DataFrame | None = None,
    reference: str | None = None,
    perf: str | Path | None = None,
    family: str | None = None,
    region: str = IMAGE,
) -> tuple[list, pd.DataFrame]:
    """The report's tables, and the tidy statistics of its per-mask tables and of Tables 4/5's paired
    differences (intervals, p-values, families, minimum detectable differences); with ``perf`` (a
    ``benchmark perf`` CSV) also the throughput table."""
    unavailable = metadata.unavailable_metrics()
    masks = [m for m in MASK_ORDER if m in set(table["mask"])]
    tables, stats = [], []
    for mask in masks:
        result = mask_table(table, mask, scoring, unavailable, with_paper, volumes, region)
        stats.append(mask_stats(table, volumes, mask, MASK_METRICS, scoring, reference, family, region))
        annotate(result, stats[-1], reference, family)
        stats[-1].insert(0, "table", MASK_TABLES[mask])
        tables.append(result)
    tables.append(perceptual_table(table, masks, unavailable, with_paper))
    notes = tokenizer_notes(metadata.methods)
    for build, differences in ((ablation_table, ablation_differences), (distillation_table, distillation_differences)):
        controlled = build(table, masks, scoring, unavailable, volumes, region)
        paired, paired_stats = differences(table, volumes, masks, scoring, region)
        for result in (controlled, paired):
            if result is not None:
                result.row_notes |= {r: notes[r.split("|")[-1]] for r in result.rows if r.split("|")[-1] in notes}
                tables.append(result)
        stats.append(paired_stats)
    tables.append(runtime_table(table))
    if perf is not None:
        tables.append(throughput_table(load_perf(perf), list(dict.fromkeys(table["method"])), str(perf)))
    statement = data_statement(metadata, scoring if volumes is not None or scoring == "paper" else "fastmri-images")
    statement += f" {region_caption(region)}"
    dataset = metadata.dataset or {}
    mismatches = metadata.setting_mismatches
    for result in tables:
        result.caption = f"{result.caption} {statement}"
        if not dataset.get("is_fastmri"):
            result.paper_label += f" — not comparable: this run is on the {dataset.get('name', 'non-fastMRI data')}"
        for row in result.rows:
            name = row.split("|")[-1]
            if name in mismatches:
                result.row_notes[row] = f"scored outside its training setting (--allow-mismatch): {mismatches[name]}"
    stats = [frame for frame in stats if not frame.empty]
    return tables, pd.concat(stats, ignore_index=True) if stats else pd.DataFrame()


def tokenizer_notes(methods: dict[str, dict]) -> dict[str, str]:
    """Row notes for the variants whose tokenizer checkpoint is not ``nasp-base``'s (``methods``: the run record's
    method descriptions): their ablation or distillation rows also change the tokenizer (by design for
    ``nasp-flat``; otherwise one was retrained)."""
    reference = _tokenizer_sha(methods.get(ABLATION_REFERENCE, {}).get("checkpoint_provenance"))
    notes = {}
    for name, info in methods.items():
        own = _tokenizer_sha(info.get("checkpoint_provenance"))
        if reference and own and own != reference:
            notes[name] = f"built on tokenizer {own[:12]}, not {method_label(ABLATION_REFERENCE)}'s {reference[:12]}"
    return notes


def _tokenizer_sha(provenance: dict | None) -> str | None:
    """The sha256 of the tokenizer a NASP checkpoint was built on, through its chain of source checkpoints."""
    if not isinstance(provenance, dict):
        return None
    if isinstance(provenance.get("tokenizer"), dict):
        return provenance["tokenizer"].get("sha256")
    for source in provenance.values():
        found = _tokenizer_sha(source.get("provenance")) if isinstance(source, dict) else None
        if found:
            return found
    return None


SCORING = {
    "paper": "Scoring: paper protocol (each image divided by its own maximum, data range 1, Gaussian SSIM).",
    "fastmri": "Scoring: fastMRI protocol (fastmri.evaluate: per-volume PSNR/NMSE with the target volume's maximum "
    "as data range, SSIM averaged over the volume's slices; fastMRI's leaderboard scores RSS at 320x320).",
    "fastmri-images": "Scoring: fastMRI data range (target volume maximum) per image; this run predates the stored "
    "per-volume scores.",
    "audit": "Scoring: the hallucination audit, on magnitudes in the data's units (no per-image rescaling).",
}


def data_statement(metadata: RunRecord, scoring: str) -> str:
    """One paragraph naming the run's data, sensitivity maps, normalisation, target and scoring protocol."""
    dataset = metadata.dataset
    if dataset is None:
        return f"Data hash {metadata.data_hash[:16]} (no description recorded). {SCORING[scoring]}"
    own_maps = [method_label(n) for n, info in metadata.methods.items() if info.get("estimates_own_maps")]
    maps = dataset["maps"] + (f" (estimated by the method itself: {', '.join(own_maps)})" if own_maps else "")
    lowered = [
        f"{method_label(name)} " + ", ".join(f"{field}={count}" for field, count in info["sampler_reduced"].items())
        for name, info in metadata.methods.items()
        if info.get("sampler_reduced")
    ]
    sampler = f" Samplers lowered for a quick check (not the methods' own): {'; '.join(lowered)}." if lowered else ""
    return (
        f"Data: {dataset['name']}, hash {dataset['hash'][:16]}. Sensitivity maps: {maps}. "
        f"Normalisation: {metadata.normalization or 'not recorded'}. Target: {dataset['target']}. "
        f"{SCORING[scoring]}{sampler}"
    )


def write_report(
    run_dir: str | Path,
    out: str | Path,
    scoring: str = "paper",
    with_paper: bool = False,
    slice_choice: str | None = None,
    error_maps: bool = False,
    with_stats: bool = False,
    reference: str | None = None,
    seed_runs: tuple[str | Path, ...] = (),
    perf: str | Path | None = None,
    family: str | None = None,
    region: str = IMAGE,
    shift_runs: tuple[str | Path, ...] = (),
) -> list[Path]:
    """Write tables (mean and mean ± std, markdown and LaTeX; with ``with_stats`` also the per-mask tables
    with 95 % intervals and ``stats.csv``; with ``seed_runs`` the training-noise table ``seeds.md``) and
    figures; returns the files written."""
    run_dir, out = Path(run_dir), Path(out)
    table, volumes, metadata = load_run_tables(run_dir)
    seeded = [load_run_tables(path) for path in seed_runs]
    tables, stats = build_tables(table, metadata, scoring, with_paper, volumes, reference, perf, family, region)
    if shift_runs:
        others = [(_data_label(path, meta), images, vols, meta) for path in shift_runs
                  for images, vols, meta in [load_run_tables(path)]]  # fmt: skip
        tables += shift_tables([("in distribution", table, volumes, metadata), *others], scoring, region)
    preface = (
        f"Run `{run_dir}` (config {metadata.config_hash}, data {metadata.data_hash[:16]}, "
        f"commit {metadata.git_commit[:12]}, device {metadata.device}).\n\n"
    )
    written = []
    variants = [("tables", tables, {}), ("tables_std", tables, {"with_std": True})]
    if with_stats:
        variants.append(("tables_ci", [t for t in tables if t.ci_low is not None and not t.show_ci], {"with_ci": True}))
    for name, chosen, options in variants:
        for suffix, render in ((".md", to_markdown), (".tex", to_latex)):
            text = "\n".join(render(t, **options) for t in chosen)
            path = out / f"{name}{suffix}"
            with atomic_path(path) as tmp:
                tmp.write_text((preface if suffix == ".md" else "") + text)
            written.append(path)
    if with_stats:
        with atomic_path(out / "stats.csv") as tmp:
            stats.to_csv(tmp, index=False)
        written.append(out / "stats.csv")
    if seeded:
        spread = seed_spread((table, volumes, metadata), seeded, scoring)
        sources = ", ".join(f"`{path}`" for path in seed_runs)
        statement = data_statement(metadata, scoring)
        written.append(write_seed_report(out / "seeds.md", spread, f"Runs `{run_dir}` and {sources}. {statement}"))
    written.append(plot_masks(out / "masks.png", seed=0))
    contrast = "T1" if "T1" in set(table["contrast"]) else table["contrast"].iloc[0]
    for mask in [m for m in MASK_ORDER if m in set(table["mask"])]:
        methods = list(dict.fromkeys(table["method"]))
        written += comparison_figure(
            run_dir, table, metadata, mask, contrast, methods, out / f"grid_{mask}_{contrast}", slice_choice, error_maps
        )
        for base, distilled in distillation_pairs(methods):
            target = out / f"distillation_{base}_{mask}_{contrast}"
            written += comparison_figure(
                run_dir, table, metadata, mask, contrast, [base, distilled], target, slice_choice, True
            )
    return written


def _data_label(run_dir: str | Path, metadata: RunRecord) -> str:
    """A short name for another run's data in the generalisation tables."""
    name = (metadata.dataset or {}).get("name", "")
    return "shifted heads" if "shifted" in name else "fastMRI" if "fastMRI" in name else Path(run_dir).name


def most_informative_slice(table: pd.DataFrame, mask: str, contrast: str) -> tuple[str, int]:
    """The (file, slice) where methods disagree most on SSIM (paper protocol); ties go to the first."""
    subset = table[(table["mask"] == mask) & (table["contrast"] == contrast)]
    if subset.empty:
        raise BenchmarkError(f"the run has no images for mask {mask} and contrast {contrast}")
    spread = subset.groupby(["file", "slice"], sort=True)["ssim_paper"].std(ddof=0).fillna(0.0)
    file, slice_index = spread.index[int(np.argmax(spread.to_numpy()))]
    return str(file), int(slice_index)


def comparison_figure(
    run_dir: Path,
    table: pd.DataFrame,
    metadata: RunRecord,
    mask: str,
    contrast: str,
    methods: list[str],
    out: Path,
    slice_choice: str | None,
    error_maps: bool,
) -> list[Path]:
    """A figure grid for one slice: ground truth plus ``methods``, per-image metrics on each panel."""
    if slice_choice:
        file, _, index = slice_choice.rpartition(":")
        if not file or not index.isdigit():
            raise BenchmarkError(f"--slice must look like FILE.h5:INDEX, got {slice_choice!r}")
        slice_index = int(index)
    else:
        file, slice_index = most_informative_slice(table, mask, contrast)
    config = metadata.config
    load = LoadOptions(**{**config["load"], "size": tuple(config["load"]["size"])})
    data_root = Path(config["data"])
    entry = next((e for e in read_manifest(data_root)["entries"] if Path(e.path).name == file), None)
    if entry is None:
        raise BenchmarkError(f"{file} is not in the run's dataset {data_root}")
    target = read_slice(data_root / entry.path, slice_index, load).target.numpy()
    panels = []
    for method in methods:
        unit = Unit(method, mask, Path(file), contrast)
        images, _, _ = read_recon(unit.recon_path(run_dir), num_slices=_num_slices(table, file))
        row = table[
            (table["method"] == method)
            & (table["mask"] == mask)
            & (table["file"] == file)
            & (table["slice"] == slice_index)
        ]
        text = _metric_text(row.iloc[0]) if len(row) else ""
        panels.append((method_label(method), images[slice_index].numpy(), text))
    title = f"{mask}, {contrast}, {file} slice {slice_index}"
    return plot_comparison(panels, target, out, title, error_maps=error_maps)


def _num_slices(table: pd.DataFrame, file: str) -> int:
    return int(table[table["file"] == file]["slice"].nunique())


def _metric_text(row: pd.Series) -> str:
    parts = [f"PSNR {row['psnr_paper']:.2f}", f"SSIM {row['ssim_paper']:.3f}"]
    perceptual = (
        ("LPIPS", row.get("lpips_alex")) if pd.notna(row.get("lpips_alex")) else ("ST-LPIPS", row.get("stlpips_alex"))
    )
    if pd.notna(perceptual[1]):
        parts.append(f"{perceptual[0]} {perceptual[1]:.3f}")
    return "\n".join(parts)
