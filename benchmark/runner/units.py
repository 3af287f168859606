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
from benchmark.data.normalization import measured_volume_scale
from benchmark.errors import BenchmarkError, DataError
from benchmark.io import atomic_path
from benchmark.masks import make_mask, mask_seed
from benchmark.method import Method, ReconBatch
from benchmark.metrics import Metric, ScoringBatch
from benchmark.metrics.region import head_region
from benchmark.metrics.volume import fastmri_volume_scores
from benchmark.runner.environment import Timer

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
    mask: str
    file: Path
    contrast: str

    def recon_path(self, out: Path) -> Path:
        return out / "recons" / self.method / self.mask / f"{self.file.stem}.h5"

    def metrics_path(self, out: Path) -> Path:
        return out / "metrics" / self.method / self.mask / f"{self.file.stem}.csv"

    def volume_metrics_path(self, out: Path) -> Path:
        return out / "metrics" / self.method / self.mask / f"{self.file.stem}.volume.csv"


def load_volume(file: Path, options: LoadOptions) -> dict[str, torch.Tensor | list]:
    """All slices of one file, stacked: kspace/maps ``(S, C, H, W)``, target ``(S, H, W)``, identifiers."""
    dataset = SliceDataset([file], options)
    items = [dataset[index] for index in range(len(dataset))]
    stacked = {key: torch.stack([item[key] for item in items]) for key in ("kspace", "maps", "target")}
    return {**stacked, "slice_index": [item["slice_index"] for item in items], "patient_id": items[0]["patient_id"]}


def volume_masks(unit: Unit, num_slices: int, shape: tuple[int, int], acceleration: int) -> torch.Tensor:
    """The mask of every slice, ``(S, H, W)``, seeded by (file name, slice): identical for every method."""
    return torch.stack(
        [make_mask(unit.mask, shape, acceleration, mask_seed(unit.file.name, s)) for s in range(num_slices)]
    )


def infer_unit(
    unit: Unit,
    out: Path,
    method: Method,
    volume: dict,
    settings: InferenceSettings,
    seed: int,
    warm_up: bool,
) -> Path:
    """Reconstruct every slice of ``unit``'s volume; write images and per-image runtimes to one ``.h5``.

    Under ``measured`` normalisation the method sees k-space divided by the volume's measured scale and
    its output is multiplied back, so stored images are in the data's units, like the targets.
    Runtime is seconds per image over the timed region only: the batch's ``reconstruct`` call, after an
    untimed warm-up call when ``warm_up`` (the method's first batch in this process). The global RNGs
    are seeded with ``seed`` after the warm-up, so a resumed run draws exactly what an uninterrupted one
    draws, whichever unit comes first in the process.
    """
    num_slices, shape = volume["kspace"].shape[0], tuple(volume["kspace"].shape[-2:])
    masks = volume_masks(unit, num_slices, shape, settings.acceleration)
    measured = volume["kspace"] * masks[:, None]
    scale = 1.0
    if settings.normalization == "measured":
        scale = measured_volume_scale(measured, volume["maps"], masks)
    device = settings.device
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    batches = [
        ReconBatch(measured[part] / scale, masks[part], volume["maps"][part], unit.mask, settings.acceleration)
        for part in (slice(start, start + settings.batch_size) for start in range(0, num_slices, settings.batch_size))
    ]
    if warm_up:
        with torch.no_grad():
            method.reconstruct(batches[0].to(device))  # untimed: first-call allocations, kernel selection, caches
    seed_everything(seed)
    images, runtimes = [], []
    for batch in batches:
        batch = batch.to(device)
        with torch.no_grad(), Timer(device) as timer:
            output = method.reconstruct(batch)
        images.append(_checked_output(unit, output, batch).cpu() * scale)
        runtimes.extend([timer.seconds / batch.mask.shape[0]] * batch.mask.shape[0])
    path = unit.recon_path(out)
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as handle:
        handle.create_dataset("reconstruction", data=torch.cat(images).numpy(), track_times=False)
        handle.create_dataset("runtime_s", data=np.array(runtimes, dtype=np.float64), track_times=False)
        handle.attrs.update(
            method=unit.method,
            mask=unit.mask,
            file=unit.file.name,
            acceleration=settings.acceleration,
            batch_size=settings.batch_size,
            device=str(device),
            input_scale=scale,
            peak_memory_bytes=torch.cuda.max_memory_allocated(device) if device.type == "cuda" else 0,
        )
    return path


def seed_everything(seed: int) -> None:
    """Seed ``random``, ``numpy`` and ``torch``: libraries draw from the global generators (sigpy's
    step-size power iteration uses numpy's), so a unit is reproducible only if all three are seeded."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _checked_output(unit: Unit, output: torch.Tensor, batch: ReconBatch) -> torch.Tensor:
    expected = (batch.mask.shape[0], *batch.mask.shape[-2:])
    if tuple(output.shape) != expected:
        raise BenchmarkError(
            f"{unit.method} returned shape {tuple(output.shape)} for {unit.file.name}; expected {expected}"
        )
    if not torch.isfinite(output).all():
        raise BenchmarkError(f"{unit.method} produced NaN/Inf on {unit.file.name} with the {unit.mask} mask")
    return output.to(torch.complex64) if torch.is_complex(output) else output.to(torch.float32)


def read_recon(path: Path, num_slices: int) -> tuple[torch.Tensor, np.ndarray, dict]:
    """Magnitude images ``(S, H, W)``, runtimes and attributes of a written unit."""
    try:
        with h5py.File(path, "r") as handle:
            images = torch.from_numpy(handle["reconstruction"][()])
            runtimes = handle["runtime_s"][()]
            attrs = dict(handle.attrs)
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
        "mask": unit.mask,
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
    rows["batch_size"] = int(attrs["batch_size"])
    rows["device"] = str(attrs["device"])
    rows["peak_memory_bytes"] = int(attrs["peak_memory_bytes"])
    rows["input_scale"] = float(attrs["input_scale"])
    for key, value in extra.items():
        rows[key] = value
    with atomic_path(unit.metrics_path(out)) as tmp:
        rows.to_csv(tmp, index=False)
    return rows
