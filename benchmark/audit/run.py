"""``python -m benchmark audit``: reconstruct the test split with and without known lesions, then score both.

The audit folder holds ``lesion-data/`` (the lesion split, ``benchmark.audit.lesions``), ``runs/clean`` and
``runs/lesion`` (two ordinary runs of ``benchmark.runner`` with one configuration, so the masks, seeds and
normalisation are the run's own and the lesion-free reconstruction *is* the ordinary one), and the scores:

- ``lesions.csv``: one row per method x mask x inserted lesion: contrast recovery, the matched-filter scores with
  and without the lesion, the measurements' ideal-observer d';
- ``slices.csv``: one row per method x mask x slice: NHE (magnitude outputs on the truth's phase; complex outputs
  also on their own), the data-consistency error, and false structures per lesion radius and sign.

Every file is written atomically and both runs resume (``--resume``), so an interrupted audit continues.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from benchmark.acquisition import volume_masks
from benchmark.audit.lesions import (
    LESION_BUILDER,
    LESION_RADII,
    Lesion,
    interior_region,
    sidecar_path,
    write_lesion_split,
)
from benchmark.audit.nullspace import (
    Projection,
    data_consistency_error,
    measurement_projection,
    null_space_split,
    slice_operator,
    with_phase_of,
)
from benchmark.audit.observers import (
    CONSPICUITY_LEVELS,
    contrast_recovery,
    false_structures,
    ideal_dprime,
    observer_score,
)
from benchmark.data import read_manifest, verify_dataset
from benchmark.data.manifest import FileEntry
from benchmark.errors import BenchmarkError
from benchmark.io import atomic_path
from benchmark.runner import RunConfig, run_benchmark
from benchmark.runner.record import RunRecord
from benchmark.runner.units import Unit, load_volume

LESION_DATA, CLEAN_RUN, LESION_RUN = "lesion-data", "runs/clean", "runs/lesion"
LESION_TABLE, SLICE_TABLE = "lesions.csv", "slices.csv"
#: Per-volume scores, kept so a resumed audit rescores only the volumes not done.
SCORES = "scores"
#: Stored with each volume's scores; raised whenever a score's definition changes, so a resumed audit rescores
#: what an older definition made instead of mixing the two (2: d'_data per lesion, false structures on the
#: reconstruction, NHE's column on the truth's phase renamed ``nhe_truth_phase``; 3: false structures as the
#: reconstruction's excess over the truth, counted per conspicuity level).
SCORING_VERSION = 3


def run_audit(config: RunConfig, resume: bool = False) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Both runs of ``config`` (``config.out`` is the audit folder), then ``lesions.csv`` and ``slices.csv``."""
    if config.load.normalization == "slice_max":
        raise BenchmarkError("the audit scores in data units: use --normalization measured (the default) or none")
    lesion_data = config.out / LESION_DATA
    _lesion_split(config, lesion_data)
    run_benchmark(replace(config, out=config.out / CLEAN_RUN), resume=resume)
    run_benchmark(replace(config, data=lesion_data, out=config.out / LESION_RUN), resume=resume)
    runs = [RunRecord.read(config.out / run).config_hash for run in (CLEAN_RUN, LESION_RUN)]
    entries = [e for e in read_manifest(config.data)["entries"] if e.split == config.split]
    entries = [entry for entry in entries if entry.contrast in config.contrasts]
    lesion_rows, slice_rows = [], []
    units = len(entries) * len(config.methods) * len(config.masks)
    with tqdm(total=units, desc="audit scores", unit="unit") as bar:
        for entry in entries:  # volume-major: each test volume is read once for every method and mask
            lesions, slices = volume_scores(config, entry, lesion_data, runs, bar)
            lesion_rows += lesions
            slice_rows += slices
    tables = pd.DataFrame(lesion_rows), pd.DataFrame(slice_rows)
    for name, table in zip((LESION_TABLE, SLICE_TABLE), tables, strict=True):
        with atomic_path(config.out / name) as tmp:
            table.to_csv(tmp, index=False)
    return tables


def _lesion_split(config: RunConfig, lesion_data: Path) -> None:
    """Write the lesion split once; a resumed audit checks it was made from this very data."""
    source_hash = verify_dataset(config.data)
    if not (lesion_data / "manifest.json").is_file():
        write_lesion_split(config.data, lesion_data, seed=config.seed, split=config.split)
        return
    description = read_manifest(lesion_data).get("description", {})
    if description.get("builder") != LESION_BUILDER or description.get("source_dataset_hash") != source_hash:
        raise BenchmarkError(f"{lesion_data} was not made from {config.data}; use another --out")


def volume_scores(
    config: RunConfig, entry: FileEntry, lesion_data: Path, runs: list[str], bar: tqdm
) -> tuple[list[dict], list[dict]]:
    """Every method x mask's rows for one test volume, kept in ``scores/<file>.json`` with the two runs'
    config hashes, so a resumed audit reuses them (and rescores a volume whose runs changed)."""
    part = config.out / SCORES / f"{Path(entry.path).name}.json"
    stamp = {"runs": runs, "scoring": SCORING_VERSION}
    if part.is_file() and {k: (stored := json.loads(part.read_text())).get(k) for k in stamp} == stamp:
        bar.update(len(config.methods) * len(config.masks))
        return stored["lesions"], stored["slices"]
    file = config.data / entry.path
    volume = {**load_volume(file, config.load), "truth_projections": {}}  # P x per (mask, slice), every method's
    lesion_rows, slice_rows = [], []
    for method in config.methods:
        for pattern in config.masks:
            unit = Unit(method, pattern, file, entry.contrast)
            lesions, slices = score_unit(config, unit, volume, lesion_data, entry)
            lesion_rows += lesions
            slice_rows += slices
            bar.update()
    with atomic_path(part) as tmp:
        tmp.write_text(json.dumps({**stamp, "lesions": lesion_rows, "slices": slice_rows}))
    return lesion_rows, slice_rows


def score_unit(
    config: RunConfig, unit: Unit, volume: dict, lesion_data: Path, entry: FileEntry
) -> tuple[list[dict], list[dict]]:
    """The audit's rows for one method x mask x volume (``volume``: its slices, ``load_volume``, and the truth's
    measurement-space projections already made, which depend on the mask and slice only)."""
    lesioned = Unit(unit.method, unit.pattern, lesion_data / entry.path, unit.contrast)
    recon_0 = stored_reconstruction(unit.recon_path(config.out / CLEAN_RUN))
    recon_l = stored_reconstruction(lesioned.recon_path(config.out / LESION_RUN))
    num_slices, shape = recon_0.shape[0], tuple(recon_0.shape[-2:])
    masks = volume_masks(unit.pattern, unit.file.name, num_slices, shape, config.acceleration)
    with h5py.File(sidecar_path(lesion_data, unit.file.name)) as sidecar:
        lesion_images, labels, table = (sidecar[key][()] for key in ("lesion_image", "lesion_labels", "lesions"))
    identity = {"method": unit.method, "mask": unit.pattern, "contrast": unit.contrast,
                "subject": entry.patient_id, "file": unit.file.name}  # fmt: skip
    lesion_rows, slice_rows = [], []
    for index in range(num_slices):
        truth = sense_truth(volume, index)
        maps, mask = volume["maps"][index].numpy(), masks[index].numpy()
        lesions = [Lesion(int(r), int(c), rad, con, bg) for s, r, c, rad, con, bg in table if int(s) == index]
        for number, lesion in enumerate(lesions):
            # d'_data of this lesion alone: its own part of the slice's lesion image (label number + 1)
            alone = lesion_images[index] * (labels[index] == number + 1)
            lesion_rows.append({**identity, "slice": index, "lesion": number, "radius_px": lesion.radius,
                                "lesion_contrast": lesion.contrast,
                                "cr": contrast_recovery(recon_l[index], recon_0[index], lesion),
                                "t_present": observer_score(recon_l[index], lesion),
                                "t_absent": observer_score(recon_0[index], lesion),
                                "dprime_data": ideal_dprime(maps, mask, alone, entry.noise_sigma)
                                if entry.noise_sigma else np.nan})  # fmt: skip
        truth_part = (unit.pattern, index)
        scores = _slice_scores(volume, index, recon_0[index], truth, mask, volume["truth_projections"], truth_part)
        slice_rows.append({**identity, "slice": index, **scores, **_false_structure_counts(recon_0[index], truth)})
    return lesion_rows, slice_rows


def sense_truth(volume: dict, index: int) -> np.ndarray:
    """The SENSE image of the fully sampled k-space: the complex truth the lesions were drawn on."""
    kspace, maps = volume["kspace"][index], volume["maps"][index]
    return slice_operator(maps[None], torch.ones(1, *kspace.shape[-2:])).adjoint(kspace[None])[0].numpy()


def _slice_scores(
    volume: dict,
    index: int,
    recon: np.ndarray,
    truth: np.ndarray,
    mask: np.ndarray,
    made: dict[tuple[str, int], Projection],
    key: tuple[str, int],
) -> dict:
    """NHE on the truth's phase (and on the output's own, if complex), and the data-consistency error; the
    truth's projection is taken from ``made[key]`` when there, else made and kept there."""
    operator = slice_operator(volume["maps"][index][None], torch.from_numpy(mask)[None])
    measured = volume["kspace"][index][None]
    truth_t, output = torch.from_numpy(truth)[None], torch.from_numpy(recon)[None]
    if key not in made:
        made[key] = measurement_projection(operator, truth_t)
    lent = with_phase_of(output, truth_t)  # every output also on the truth's phase (magnitude outputs: only so)
    own = null_space_split(operator, output, truth_t, made[key]).nhe[0] if output.is_complex() else np.nan
    scores = {
        "nhe_truth_phase": float(null_space_split(operator, lent, truth_t, made[key]).nhe[0]),
        "nhe_own_phase": float(own),
        "dc_error": float(data_consistency_error(operator, output if output.is_complex() else lent, measured)[0]),
    }
    return scores


def _false_structure_counts(recon: np.ndarray, truth: np.ndarray) -> dict:
    """False structures of every lesion radius (on this grid) and sign, counted at each conspicuity level."""
    interior = interior_region(truth)
    radii = sorted({max(1.0, radius * truth.shape[-1] / 256) for radius in LESION_RADII})
    counts = {}
    for radius in radii:
        for sign in (1, -1):
            found = [level for *_, level in false_structures(recon, truth, interior, radius, sign)]
            for level in CONSPICUITY_LEVELS:
                name = f"false_r{radius:g}_{'bright' if sign > 0 else 'dark'}_c{level:g}"
                counts[name] = sum(conspicuity >= level for conspicuity in found)
    return counts


def stored_reconstruction(path: Path) -> np.ndarray:
    with h5py.File(path) as handle:
        return handle["reconstruction"][()]
