"""Inference in batches that span volumes: a test split of one-slice volumes still runs at ``--batch-size``.

The test volumes are cut once, from the whole grid, into *groups*: in file order, each volume joins the open
group of its coil count (slices of one batch must stack), and a group closes when it holds ``batch_size``
slices (a volume with more slices forms a group of its own, reconstructed in batches of ``batch_size``). A work
item is (method, mask pattern, group); its reconstruct calls always hold the same slices and are seeded by the
item (``derive_seed(seed, method, mask, first file)``: for a group of one volume, what a per-volume unit had),
so an item that a resume must redo reproduces an uninterrupted run's images exactly. Results are still written
and verified per (method, mask, volume) unit.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import torch

from benchmark.acquisition import acquire, scale_policy, volume_masks
from benchmark.io import atomic_path
from benchmark.method import Method, ReconBatch
from benchmark.runner.environment import Timer
from benchmark.runner.units import InferenceSettings, Unit, checked_output, seed_everything


def volume_groups(files: list[Path], slices: dict[Path, int], coils: dict[Path, int], batch_size: int):
    """``files`` cut into groups of one coil count holding up to ``batch_size`` slices, in file order."""
    groups, open_groups = [], {}
    for file in files:
        group = open_groups.get(coils[file], [])
        if group and sum(slices[f] for f in group) + slices[file] > batch_size:
            groups.append(group)
            group = []
        group.append(file)
        open_groups[coils[file]] = group
        if sum(slices[f] for f in group) >= batch_size:
            groups.append(open_groups.pop(coils[file]))
    groups += [group for group in open_groups.values() if group]
    return sorted(groups, key=lambda group: files.index(group[0]))


@dataclass
class _Slice:
    unit: Unit
    batch: ReconBatch  # the slice as its method receives it, divided by its volume's scale


def infer_group(
    units: list[Unit],
    out: Path,
    method: Method,
    volumes: dict[Path, dict],
    settings: InferenceSettings,
    seed: int,
    warm_up: bool,
    write: list[Unit],
) -> None:
    """Reconstruct every slice of ``units`` (one method and mask, several volumes) in shared batches; write the
    reconstructions of the units in ``write`` (images in the data's units, per-image runtimes and batch sizes).

    Under ``measured`` normalisation each volume's k-space is divided by its own measured scale and its images
    are multiplied back. Runtime is seconds per image of the timed ``reconstruct`` call, after an untimed warm-up
    call when ``warm_up``. Every batch carries ``seed`` (sampling methods seed their own generator from it); the global
    RNGs are seeded with it too, after the warm-up, for libraries that draw from them (sigpy's power iteration).
    """
    scales, items = {}, []
    for unit in units:
        volume = volumes[unit.file]
        num_slices, shape = volume["kspace"].shape[0], tuple(volume["kspace"].shape[-2:])
        masks = volume_masks(unit.pattern, unit.file.name, num_slices, shape, settings.acceleration)
        policy = scale_policy(settings.normalization, per="volume")
        acquisition = acquire(
            volume["kspace"], volume["maps"], masks, unit.pattern, settings.acceleration, policy, seed
        )
        scales[unit] = float(acquisition.scale[0])
        items += [_Slice(unit, acquisition.batch.select([s])) for s in range(num_slices)]
    batches = [items[start : start + settings.batch_size] for start in range(0, len(items), settings.batch_size)]
    device = settings.device
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    if warm_up:
        with torch.no_grad():
            method.reconstruct(_stacked(batches[0]).to(device))  # untimed: allocations, kernels, caches
    seed_everything(seed)
    results = {unit: ([], [], []) for unit in units}
    for batch in batches:
        stacked = _stacked(batch).to(device)
        with torch.no_grad(), Timer(device) as timer:
            output = method.reconstruct(stacked)
        output = checked_output(units[0], output, stacked).cpu()
        for index, item in enumerate(batch):
            images, runtimes, sizes = results[item.unit]
            images.append(output[index] * scales[item.unit])
            runtimes.append(timer.seconds / len(batch))
            sizes.append(len(batch))
    peak = torch.cuda.max_memory_allocated(device) if device.type == "cuda" else 0
    for unit in write:
        _write_recon(unit, out, results[unit], settings, scales[unit], peak)


def _stacked(batch: list[_Slice]) -> ReconBatch:
    return ReconBatch.concatenated([item.batch for item in batch])


def _write_recon(unit: Unit, out: Path, result, settings: InferenceSettings, scale: float, peak: int) -> None:
    images, runtimes, sizes = result
    with atomic_path(unit.recon_path(out)) as tmp, h5py.File(tmp, "w") as handle:
        handle.create_dataset("reconstruction", data=torch.stack(images).numpy(), track_times=False)
        handle.create_dataset("runtime_s", data=np.array(runtimes, dtype=np.float64), track_times=False)
        handle.create_dataset("batch_size", data=np.array(sizes, dtype=np.int64), track_times=False)
        handle.attrs.update(
            method=unit.method,
            mask=unit.pattern,
            file=unit.file.name,
            acceleration=settings.acceleration,
            batch_size=settings.batch_size,
            device=str(settings.device),
            input_scale=scale,
            peak_memory_bytes=peak,
        )
