"""The runner: methods x masks x contrasts x test volumes -> reconstructions on disk -> one tidy table.

Layout of a run directory::

    run.json                       configuration, its hash, data hash, methods, metrics, versions, device
    recons/<method>/<mask>/<volume>.h5    reconstructions + per-image runtimes (inference output)
    metrics/<method>/<mask>/<volume>.csv  per-image rows for that unit (scoring output)
    metrics.csv                    all rows, in grid order (rebuilt from the unit files at the end)

Inference and scoring are separate steps, so re-scoring never re-runs a model. Every file is written
atomically; ``resume`` skips units whose files exist, so a run killed at any moment and resumed gives
the same table with no duplicate rows. A resumed run must have the same configuration hash.
"""

from __future__ import annotations

import json
import random
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from benchmark.data import dataset_files, read_manifest, verify_dataset
from benchmark.errors import BenchmarkError
from benchmark.io import atomic_path
from benchmark.masks import get_protocol
from benchmark.metrics import build_metric_suite
from benchmark.registry import check_method_name, get_method_class
from benchmark.runner.config import RunConfig
from benchmark.runner.environment import device_name, git_commit, library_versions, resolve_device
from benchmark.runner.units import Unit, infer_unit, load_volume, score_unit
from benchmark.seeds import derive_seed

RUN_FILE = "run.json"
TABLE_FILE = "metrics.csv"


def run_benchmark(config: RunConfig, resume: bool = False) -> pd.DataFrame:
    """Run (or resume) the grid in ``config``; returns the per-image table also written to ``metrics.csv``."""
    for name in config.methods:
        check_method_name(name)
    for name in config.masks:
        get_protocol(name)
    data_hash = verify_dataset(config.data)
    files = dataset_files(config.data, config.split, config.contrasts)
    if not files:
        raise BenchmarkError(f"no {config.split} volumes for contrasts {', '.join(config.contrasts)} in {config.data}")
    device = resolve_device(config.device)
    _prepare_out_dir(config, resume)
    methods = {name: get_method_class(name)(config.profile, device) for name in config.methods}
    metrics = build_metric_suite(device)
    metadata = {
        "config": config.record(),
        "config_hash": config.config_hash(),
        "data_hash": data_hash,
        "methods": {name: method.describe() for name, method in methods.items()},
        "metrics": {metric.name: metric.describe() for metric in metrics},
        "versions": library_versions(),
        "git_commit": git_commit(),
        "device": device_name(device),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    if not (config.out / RUN_FILE).exists():
        _write_json(config.out / RUN_FILE, metadata)
    contrast_of = {config.data / entry.path: entry.contrast for entry in read_manifest(config.data)["entries"]}
    # Table order is method, mask, volume; execution goes volume by volume so each is read once.
    units = [Unit(m, k, f, contrast_of[f]) for m in config.methods for k in config.masks for f in files]
    _run_units(config, sorted(units, key=lambda u: files.index(u.file)), methods, metrics, device, metadata)
    table = pd.concat([pd.read_csv(unit.metrics_path(config.out)) for unit in units], ignore_index=True)
    with atomic_path(config.out / TABLE_FILE) as tmp:
        table.to_csv(tmp, index=False)
    return table


def _run_units(config, units, methods, metrics, device, metadata) -> None:
    volumes: dict[Path, dict] = {}
    warmed: set[str] = set()
    progress = tqdm(units, desc="benchmark", unit="volume")
    for unit in progress:
        progress.set_description(f"{unit.method} | {unit.mask} | {unit.contrast}")
        if unit.metrics_path(config.out).exists():
            continue
        if unit.file not in volumes:
            volumes.clear()  # units arrive grouped by volume: one in memory at a time
            volumes[unit.file] = load_volume(unit.file, config.load)
        volume = volumes[unit.file]
        if not unit.recon_path(config.out).exists():
            _seed_everything(derive_seed(config.seed, unit.method, unit.mask, unit.file.name))
            infer_unit(
                unit, config.out, methods[unit.method], volume, config.acceleration, config.batch_size, device,
                warm_up=unit.method not in warmed,
            )  # fmt: skip
            warmed.add(unit.method)
        extra = {
            "config_hash": metadata["config_hash"],
            "data_hash": metadata["data_hash"][:16],
            "checkpoint_sha256": metadata["methods"][unit.method]["checkpoint_sha256"] or "",
        }
        score_unit(unit, config.out, volume, metrics, extra)
    progress.close()


def _prepare_out_dir(config: RunConfig, resume: bool) -> None:
    run_file = config.out / RUN_FILE
    if run_file.exists():
        if not resume:
            raise BenchmarkError(
                f"{config.out} already holds a run; pass --resume to continue it or choose another --out"
            )
        stored = json.loads(run_file.read_text())
        if stored.get("config_hash") != config.config_hash():
            raise BenchmarkError(
                f"{config.out} was started with a different configuration "
                f"(hash {stored.get('config_hash')} vs {config.config_hash()}); use another --out"
            )
    elif config.out.exists() and any(config.out.iterdir()) and not resume:
        raise BenchmarkError(f"{config.out} exists and is not empty; choose another --out")
    try:
        config.out.mkdir(parents=True, exist_ok=True)
        with atomic_path(config.out / ".write-check") as tmp:
            tmp.write_text("ok")
        (config.out / ".write-check").unlink()
    except OSError as error:
        raise BenchmarkError(f"cannot write to {config.out}: {error.strerror or error}") from None


def _write_json(path: Path, payload: dict) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(payload, indent=2, sort_keys=True, default=str) + "\n")


def _seed_everything(seed: int) -> None:
    # Libraries draw from the global generators (sigpy's step-size power iteration uses numpy's), so
    # a unit's numbers are reproducible only if all three are seeded.
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def summarize(table: pd.DataFrame, protocol: str = "paper") -> pd.DataFrame:
    """Mean per (method, mask, contrast) of PSNR/SSIM under ``protocol``, the perceptual metrics, runtime."""
    columns = [f"psnr_{protocol}", f"ssim_{protocol}", "lpips_alex", "dists", "stlpips_alex", "runtime_s"]
    present = [c for c in columns if c in table and table[c].notna().any()]
    return table.groupby(["method", "mask", "contrast"], sort=False)[present].mean().round(4)
