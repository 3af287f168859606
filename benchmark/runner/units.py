"""One unit of work = (method, mask pattern, volume): inference writes its reconstructions to one
``.h5``; scoring reads them back and writes its rows to one CSV. Both files are written atomically,
so a unit is either finished on disk or absent, and ``--resume`` can trust what it finds.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import torch

from benchmark.data import LoadOptions, SliceDataset
from benchmark.errors import BenchmarkError, DataError
from benchmark.io import atomic_path
from benchmark.method import ReconBatch
from benchmark.metrics import Metric, ScoringBatch
from benchmark.metrics.region import head_region
from benchmark.metrics.volume import VOLUME_METRICS, fastmri_volume_scores

ID_COLUMNS = ["method", "mask", "contrast", "file", "slice", "patient_id", "acceleration"]


@dataclass(frozen=True)
class InferenceSettings:
    """What every unit of a run shares at inference."""

    acceleration: int
    batch_size: int
    normalization: str
    device: torch.device


@dataclass(frozen=True)
class Unit:
    method: str
    pattern: str  # the mask pattern (the `mask` column and folder of stored runs)
    file: Path
    contrast: str

    def recon_path(self, out: Path) -> Path:
        return out / "recons" / self.method / self.pattern / f"{self.file.stem}.h5"

    def metrics_path(self, out: Path) -> Path:
        return out / "metrics" / self.method / self.pattern / f"{self.file.stem}.csv"

    def volume_metrics_path(self, out: Path) -> Path:
        return out / "metrics" / self.method / self.pattern / f"{self.file.stem}.volume.csv"


def load_volume(file: Path, options: LoadOptions) -> dict[str, torch.Tensor | list]:
    """All slices of one file, stacked: kspace/maps ``(S, C, H, W)``, target ``(S, H, W)``, identifiers."""
    dataset = SliceDataset([file], options)
    items = [dataset[index] for index in range(len(dataset))]
    stacked = {key: torch.stack([item[key] for item in items]) for key in ("kspace", "maps", "target")}
    return {**stacked, "slice_index": [item["slice_index"] for item in items], "patient_id": items[0]["patient_id"]}


def seed_everything(seed: int) -> None:
    """Seed ``random``, ``numpy`` and ``torch``: libraries draw from the global generators (sigpy's
    step-size power iteration uses numpy's), so a unit is reproducible only if all three are seeded."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def checked_output(unit: Unit, output: torch.Tensor, batch: ReconBatch) -> torch.Tensor:
    expected = (batch.mask.shape[0], *batch.mask.shape[-2:])
    if tuple(output.shape) != expected:
        raise BenchmarkError(
            f"{unit.method} returned shape {tuple(output.shape)} for {unit.file.name}; expected {expected}"
        )
    if not torch.isfinite(output).all():
        raise BenchmarkError(f"{unit.method} produced NaN/Inf on {unit.file.name} with the {unit.pattern} mask")
    return output.to(torch.complex64) if torch.is_complex(output) else output.to(torch.float32)


def read_recon(path: Path, num_slices: int) -> tuple[torch.Tensor, np.ndarray, dict]:
    """Magnitude images ``(S, H, W)``, runtimes and attributes of a written unit."""
    try:
        with h5py.File(path, "r") as handle:
            images = torch.from_numpy(handle["reconstruction"][()])
            runtimes = handle["runtime_s"][()]
            attrs = dict(handle.attrs)
            # The batch each image was reconstructed in (older runs: the configured batch size for all).
            attrs["batch_sizes"] = handle["batch_size"][()] if "batch_size" in handle else None
    except (OSError, KeyError) as error:
        raise DataError(path, f"unreadable reconstruction ({error}); delete it and resume") from None
    if images.shape[0] != num_slices:
        raise DataError(path, f"holds {images.shape[0]} slices, the volume has {num_slices}; delete it and resume")
    return images.abs().to(torch.float32), runtimes, attrs


def score_unit(unit: Unit, out: Path, volume: dict, metrics: list[Metric], extra: dict) -> pd.DataFrame:
    """Score a written unit against its targets; write one row per slice and one row for the volume.

    The volume row (``fastmri.evaluate``'s per-volume PSNR/NMSE/SSIM) is written first, so a unit whose
    per-image file exists is complete.
    """
    target = volume["target"]
    recon, runtimes, attrs = read_recon(unit.recon_path(out), target.shape[0])
    if recon.shape != target.shape:
        raise DataError(
            unit.recon_path(out), f"image shape {tuple(recon.shape)} differs from the target {tuple(target.shape)}"
        )
    identity = {
        "method": unit.method,
        "mask": unit.pattern,
        "contrast": unit.contrast,
        "file": unit.file.name,
        "patient_id": volume["patient_id"],
        "acceleration": int(attrs["acceleration"]),
    }
    region = head_region(target)  # scoring only: derived from the target, never shown to a method
    scores = fastmri_volume_scores(recon, target, region)
    volume_row = pd.DataFrame([{**identity, "num_slices": target.shape[0], **scores}])
    for key, value in extra.items():
        volume_row[key] = value
    with atomic_path(unit.volume_metrics_path(out)) as tmp:
        volume_row.to_csv(tmp, index=False)
    volume_max = target.amax().expand(target.shape[0])
    batch = ScoringBatch(recon=recon, target=target, volume_max=volume_max, region=region)
    rows = pd.DataFrame({**identity, "slice": volume["slice_index"]})[ID_COLUMNS]
    for metric in metrics:
        rows[metric.name] = metric(batch).numpy() if metric.available else np.nan
    rows["runtime_s"] = runtimes
    sizes = attrs["batch_sizes"]
    rows["batch_size"] = sizes if sizes is not None else int(attrs["batch_size"])
    rows["device"] = str(attrs["device"])
    rows["peak_memory_bytes"] = int(attrs["peak_memory_bytes"])
    rows["input_scale"] = float(attrs["input_scale"])
    for key, value in extra.items():
        rows[key] = value
    with atomic_path(unit.metrics_path(out)) as tmp:
        rows.to_csv(tmp, index=False)
    return rows


def unit_problem(unit: Unit, out: Path, num_slices: int, expected: list[str]) -> str | None:
    """Why a unit's score files cannot be trusted (``None`` when complete): missing, unreadable, a row count
    other than the volume's slices, or a NaN where a score should be (``expected``: the metrics available in
    the run; a metric unavailable by design stays NaN and is no problem)."""
    tables = []
    for path, rows in ((unit.volume_metrics_path(out), 1), (unit.metrics_path(out), num_slices)):
        if not path.is_file():
            return f"{path}: missing"
        try:
            frame = pd.read_csv(path)
        except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as error:
            return f"{path}: corrupt ({str(error).strip().splitlines()[0] if str(error).strip() else error})"
        if len(frame) != rows:
            return f"{path}: corrupt (holds {len(frame)} rows where the grid has {rows})"
        tables.append((path, frame))
    for (path, frame), names in zip(tables, (VOLUME_METRICS, expected), strict=True):
        broken = [name for name in names if name not in frame or frame[name].isna().any()]
        if broken:
            return f"{path}: corrupt (no value for {', '.join(broken[:3])})"
    return None


def recon_is_complete(unit: Unit, out: Path, num_slices: int) -> bool:
    """Whether a unit's reconstruction file exists, reads and holds every slice."""
    path = unit.recon_path(out)
    if not path.is_file():
        return False
    try:
        read_recon(path, num_slices)
    except DataError:
        return False
    return True


def read_unit_tables(out: Path, units: list[Unit], slices: dict[str, int], expected: list[str]):
    """The per-image and per-volume tables of ``units`` from their own files, in the given order, each unit
    verified first (``unit_problem``); ``slices`` maps a volume's file name to its slice count."""
    images, volumes = [], []
    for unit in units:
        if not unit.metrics_path(out).is_file():
            raise BenchmarkError(f"{unit.metrics_path(out)} is missing: the run is unfinished; finish it with --resume")
        problem = unit_problem(unit, out, slices[unit.file.name], expected)
        if problem:
            raise BenchmarkError(problem)
        images.append(pd.read_csv(unit.metrics_path(out)))
        volumes.append(pd.read_csv(unit.volume_metrics_path(out)))
    return pd.concat(images, ignore_index=True), pd.concat(volumes, ignore_index=True)
