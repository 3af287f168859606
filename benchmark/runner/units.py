"""One unit of work = (method, mask protocol, volume): inference writes its reconstructions to one
``.h5``; scoring reads them back and writes its rows to one CSV. Both files are written atomically,
so a unit is either finished on disk or absent, and ``--resume`` can trust what it finds.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import torch

from benchmark.data import LoadOptions, SliceDataset
from benchmark.errors import BenchmarkError, DataError
from benchmark.io import atomic_path
from benchmark.masks import make_mask, mask_seed
from benchmark.method import Method, ReconBatch
from benchmark.metrics import Metric, ScoringBatch
from benchmark.runner.environment import Timer

ID_COLUMNS = ["method", "mask", "contrast", "file", "slice", "patient_id", "acceleration"]


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
    acceleration: int,
    batch_size: int,
    device: torch.device,
    warm_up: bool,
) -> Path:
    """Reconstruct every slice of ``unit``'s volume; write images and per-image runtimes to one ``.h5``.

    Runtime is seconds per image over the timed region only: the batch's ``reconstruct`` call, after an
    untimed warm-up call when ``warm_up`` (the method's first batch in this process).
    """
    num_slices, shape = volume["kspace"].shape[0], tuple(volume["kspace"].shape[-2:])
    masks = volume_masks(unit, num_slices, shape, acceleration)
    images, runtimes = [], []
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    for start in range(0, num_slices, batch_size):
        part = slice(start, start + batch_size)
        mask = masks[part]
        batch = ReconBatch(volume["kspace"][part] * mask[:, None], mask, volume["maps"][part], unit.mask, acceleration)
        batch = batch.to(device)
        with torch.no_grad():
            if warm_up and start == 0:
                method.reconstruct(batch)  # untimed: first-call allocations, kernel selection, caches
            with Timer(device) as timer:
                output = method.reconstruct(batch)
        images.append(_checked_output(unit, output, batch).cpu())
        runtimes.extend([timer.seconds / mask.shape[0]] * mask.shape[0])
    path = unit.recon_path(out)
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as handle:
        handle.create_dataset("reconstruction", data=torch.cat(images).numpy(), track_times=False)
        handle.create_dataset("runtime_s", data=np.array(runtimes, dtype=np.float64), track_times=False)
        handle.attrs.update(
            method=unit.method,
            mask=unit.mask,
            file=unit.file.name,
            acceleration=acceleration,
            batch_size=batch_size,
            device=str(device),
            peak_memory_bytes=torch.cuda.max_memory_allocated(device) if device.type == "cuda" else 0,
        )
    return path


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
    """Score a written unit against its targets; write and return one row per slice."""
    target = volume["target"]
    recon, runtimes, attrs = read_recon(unit.recon_path(out), target.shape[0])
    if recon.shape != target.shape:
        raise DataError(
            unit.recon_path(out), f"image shape {tuple(recon.shape)} differs from the target {tuple(target.shape)}"
        )
    volume_max = target.amax().expand(target.shape[0])
    batch = ScoringBatch(recon=recon, target=target, volume_max=volume_max)
    rows = pd.DataFrame(
        {
            "method": unit.method,
            "mask": unit.mask,
            "contrast": unit.contrast,
            "file": unit.file.name,
            "slice": volume["slice_index"],
            "patient_id": volume["patient_id"],
            "acceleration": int(attrs["acceleration"]),
        }
    )
    for metric in metrics:
        rows[metric.name] = metric(batch).numpy() if metric.available else np.nan
    rows["runtime_s"] = runtimes
    rows["batch_size"] = int(attrs["batch_size"])
    rows["device"] = str(attrs["device"])
    rows["peak_memory_bytes"] = int(attrs["peak_memory_bytes"])
    for key, value in extra.items():
        rows[key] = value
    with atomic_path(unit.metrics_path(out)) as tmp:
        rows.to_csv(tmp, index=False)
    return rows
