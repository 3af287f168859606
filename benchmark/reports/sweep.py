"""``report SWEEP_DIR``: a full report per R, metric-vs-R curves with subject-bootstrap bands, and their points."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from benchmark.io import atomic_path
from benchmark.metrics.region import IMAGE
from benchmark.reports.figures import plot_sweep
from benchmark.reports.loading import load_run_tables
from benchmark.reports.report import MASK_ORDER, write_report
from benchmark.reports.significance import mask_stats
from benchmark.reports.tables import method_label
from benchmark.runner.record import RunRecord
from benchmark.runner.sweep import read_sweep

SWEEP_METRICS = ["psnr", "ssim"]


def trained_elsewhere(metadata: RunRecord) -> dict[str, int]:
    """Methods of a run scored outside their training R -> the R they were trained at."""
    found = {}
    for name in metadata.setting_mismatches:
        setting = (metadata.methods.get(name) or {}).get("training_setting") or {}
        if setting.get("acceleration") not in (None, metadata.config["acceleration"]):
            found[name] = int(setting["acceleration"])
    return found


def sweep_points(sweep_dir: str | Path, scoring: str, region: str = IMAGE) -> pd.DataFrame:
    """One row per (method, mask, contrast, metric, R): mean, 95 % interval, subjects, legend label."""
    frames = []
    for acceleration, run_dir in sorted(read_sweep(sweep_dir).items()):
        table, volumes, metadata = load_run_tables(run_dir)
        elsewhere = trained_elsewhere(metadata)
        for mask in [m for m in MASK_ORDER if m in set(table["mask"])]:
            stats = mask_stats(table, volumes, mask, SWEEP_METRICS, scoring, region=region)
            stats["acceleration"] = acceleration
            stats["trained_at"] = stats["method"].map(elsewhere).astype("Int64")
            frames.append(stats)
    points = pd.concat(frames, ignore_index=True)
    trained = points.dropna(subset=["trained_at"]).groupby("method")["trained_at"].first()
    points["label"] = [
        method_label(m) + (f" (trained at R = {trained[m]})" if m in trained.index else "") for m in points["method"]
    ]
    return points


def write_sweep_report(sweep_dir: str | Path, out: str | Path, scoring: str, **report_options) -> list[Path]:
    """Each R's report (``report_options`` as for ``write_report``), the curves and their points."""
    out = Path(out)
    written = []
    for acceleration, run_dir in sorted(read_sweep(sweep_dir).items()):
        written += write_report(run_dir, out / f"R{acceleration}", scoring, **report_options)
    points = sweep_points(sweep_dir, scoring, report_options.get("region", IMAGE))
    with atomic_path(out / "sweep_points.csv") as tmp:
        points.drop(columns=["label"]).to_csv(tmp, index=False)
    written.append(out / "sweep_points.csv")
    for metric in SWEEP_METRICS:
        written += plot_sweep(points[points["metric"] == metric], metric, out / f"sweep_{metric}_{scoring}")
    return written
