"""The runner: methods x masks x contrasts x test volumes -> reconstructions on disk -> one tidy table.

Layout of a run directory::

    run.json                       configuration, its hash, data hash, methods, metrics, versions, device
    recons/<method>/<mask>/<volume>.h5    reconstructions + per-image runtimes (inference output)
    metrics/<method>/<mask>/<volume>.csv  per-image rows for that unit (scoring output)
    metrics/<method>/<mask>/<volume>.volume.csv  the unit's per-volume fastMRI scores
    metrics.csv                    all per-image rows, in grid order (rebuilt from the unit files at the end)
    volume_metrics.csv             all per-volume rows (fastMRI's per-volume PSNR/NMSE/SSIM)

Inference and scoring are separate steps, so re-scoring never re-runs a model. Every file is written
atomically; ``resume`` skips units whose files exist, so a run killed at any moment and resumed gives
the same table with no duplicate rows. A resumed run must have the same configuration hash. Under
``torchrun`` the units are shared among the ranks (``benchmark.runner.shard``) and rank 0 merges the tables.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pandas as pd
from tqdm import tqdm

from benchmark.data import dataset_files, read_manifest, verify_dataset
from benchmark.data.manifest import dataset_description
from benchmark.data.normalization import DESCRIPTIONS
from benchmark.errors import BenchmarkError
from benchmark.io import atomic_path
from benchmark.masks import get_pattern
from benchmark.metrics import build_metric_suite
from benchmark.metrics.region import IMAGE, region_suffix
from benchmark.registry import check_method_name, get_method_class
from benchmark.runner.config import RunConfig
from benchmark.runner.environment import device_name, git_commit, library_versions, resolve_device
from benchmark.runner.shard import Shard, assign, current_shard
from benchmark.runner.units import InferenceSettings, Unit, infer_unit, load_volume, score_unit
from benchmark.seeds import derive_seed
from benchmark.training.checkpoint import plain_values

RUN_FILE = "run.json"
TABLE_FILE = "metrics.csv"
VOLUME_TABLE_FILE = "volume_metrics.csv"


def run_benchmark(config: RunConfig, resume: bool = False) -> pd.DataFrame:
    """Run (or resume) the grid in ``config``; returns the per-image table also written to ``metrics.csv``."""
    for name in config.methods:
        check_method_name(name)
    for name in config.masks:
        get_pattern(name)
    for name, _ in config.checkpoints:
        if name not in config.methods:
            raise BenchmarkError(f"--checkpoint names {name!r}, which is not among --methods")
    data_hash = verify_dataset(config.data)
    files = dataset_files(config.data, config.split, config.contrasts)
    if not files:
        raise BenchmarkError(f"no {config.split} volumes for contrasts {', '.join(config.contrasts)} in {config.data}")
    shard = current_shard()
    device = shard.device(resolve_device(config.device))
    chosen = dict(config.checkpoints)
    methods = {
        name: get_method_class(name)(config.profile, device, checkpoint=chosen.get(name)) for name in config.methods
    }
    mismatches = setting_mismatches(methods, config)
    described = {name: method.describe() for name, method in methods.items()}
    config_hash = config.config_hash({name: info["checkpoint_sha256"] for name, info in described.items()})
    metrics = build_metric_suite(device)
    metadata = {
        "config": config.record(),
        "config_hash": config_hash,
        "data_hash": data_hash,
        "dataset": dataset_description(config.data, config.load),
        "normalization": DESCRIPTIONS[config.load.normalization],
        "setting_mismatches": mismatches,
        "methods": described,
        "metrics": {metric.name: metric.describe() for metric in metrics},
        "versions": library_versions(),
        "git_commit": git_commit(),
        "device": device_name(device),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    shard.leader_first(lambda: _start_run(config, metadata, resume))
    entries = {config.data / entry.path: entry for entry in read_manifest(config.data)["entries"]}
    units = [Unit(m, k, f, entries[f].contrast) for m in config.methods for k in config.masks for f in files]
    costs = [entries[unit.file].num_slices * methods[unit.method].relative_cost for unit in units]
    mine = [units[index] for index in assign(costs, shard.world)[shard.rank]]
    if shard.world > 1:
        print(f"rank {shard.rank} of {shard.world}: {len(mine)} of {len(units)} units", file=sys.stderr, flush=True)
    # Table order is method, mask, volume; execution goes volume by volume so each is read once.
    ordered = sorted(mine, key=lambda u: files.index(u.file))
    _run_units(config, ordered, methods, metrics, device, metadata, shard)
    shard.barrier()  # every rank's units are on disk
    if shard.leader:
        _merge_tables(config.out, units)
    shard.barrier()
    return pd.read_csv(config.out / TABLE_FILE)


def _start_run(config: RunConfig, metadata: dict, resume: bool) -> None:
    _prepare_out_dir(config, metadata["config_hash"], resume)
    if not (config.out / RUN_FILE).exists():
        _write_json(config.out / RUN_FILE, metadata)


def _merge_tables(out: Path, units: list[Unit]) -> None:
    """``metrics.csv`` and ``volume_metrics.csv`` from the unit files, in grid order."""
    for name, path_of in ((TABLE_FILE, Unit.metrics_path), (VOLUME_TABLE_FILE, Unit.volume_metrics_path)):
        frame = pd.concat([pd.read_csv(path_of(unit, out)) for unit in units], ignore_index=True)
        with atomic_path(out / name) as tmp:
            frame.to_csv(tmp, index=False)


def setting_mismatches(methods: dict, config: RunConfig) -> dict[str, str]:
    """Methods whose checkpoint was trained at another size, R or normalisation than this run uses.

    Refused with one line naming both values, unless ``config.allow_mismatch`` (then recorded, and every
    table marks those rows).
    """
    run_setting = {"size": list(config.load.size), "acceleration": config.acceleration}
    run_setting["normalization"] = config.load.normalization
    found = {}
    for name, method in methods.items():
        trained = method.training_setting
        if trained is None:
            continue  # nothing learned: no training setting to match
        differences = [
            f"{key} {_setting_text(trained.get(key))} (trained) vs {_setting_text(value)} (this run)"
            for key, value in run_setting.items()
            if plain_values(trained.get(key)) != plain_values(value)
        ]
        if differences:
            found[name] = "; ".join(differences)
            if not config.allow_mismatch:
                raise BenchmarkError(
                    f"{name}: checkpoint {method.checkpoint} differs from this run in {found[name]}; "
                    "pass --allow-mismatch to score it anyway (recorded, rows marked)"
                )
    return found


def _setting_text(value) -> str:
    return "x".join(str(v) for v in value) if isinstance(value, list | tuple) else str(value)


def _run_units(config, units, methods, metrics, device, metadata, shard: Shard) -> None:
    volumes: dict[Path, dict] = {}
    warmed: set[str] = set()
    settings = InferenceSettings(config.acceleration, config.batch_size, config.load.normalization, device)
    progress = tqdm(units, desc="benchmark", unit="volume", disable=not shard.leader)  # rank 0 speaks for all
    for unit in progress:
        progress.set_description(f"{unit.method} | {unit.mask} | {unit.contrast}")
        if unit.metrics_path(config.out).exists():
            continue
        if unit.file not in volumes:
            volumes.clear()  # units arrive grouped by volume: one in memory at a time
            volumes[unit.file] = load_volume(unit.file, config.load)
        volume = volumes[unit.file]
        if not unit.recon_path(config.out).exists():
            seed = derive_seed(config.seed, unit.method, unit.mask, unit.file.name)
            infer_unit(
                unit, config.out, methods[unit.method], volume, settings, seed, warm_up=unit.method not in warmed
            )
            warmed.add(unit.method)
        extra = {
            "config_hash": metadata["config_hash"],
            "data_hash": metadata["data_hash"][:16],
            "checkpoint_sha256": metadata["methods"][unit.method]["checkpoint_sha256"] or "",
            "setting_mismatch": metadata["setting_mismatches"].get(unit.method, ""),
        }
        score_unit(unit, config.out, volume, metrics, extra)
    progress.close()


def _prepare_out_dir(config: RunConfig, config_hash: str, resume: bool) -> None:
    run_file = config.out / RUN_FILE
    if run_file.exists():
        if not resume:
            raise BenchmarkError(
                f"{config.out} already holds a run; pass --resume to continue it or choose another --out"
            )
        stored = json.loads(run_file.read_text())
        if stored.get("config_hash") != config_hash:
            raise BenchmarkError(
                f"{config.out} was started with a different configuration or other weights "
                f"(hash {stored.get('config_hash')} vs {config_hash}); use another --out"
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


def summarize(
    table: pd.DataFrame, scoring: str = "paper", volumes: pd.DataFrame | None = None, region: str = IMAGE
) -> pd.DataFrame:
    """Mean per (method, mask, contrast) of PSNR/SSIM under the ``scoring`` protocol over ``region``, perceptual
    metrics, runtime.

    Under ``fastmri`` PSNR/SSIM are means of the per-volume scores in ``volumes`` (fastMRI's convention).
    """
    keys = ["method", "mask", "contrast"]
    suffix = region_suffix(region)
    pixel = [f"psnr_{scoring}{suffix}", f"ssim_{scoring}{suffix}"]
    columns = [*pixel, "lpips_alex", "dists", "stlpips_alex", "runtime_s"]
    present = [c for c in columns if c in table and table[c].notna().any()]
    summary = table.groupby(keys, sort=False)[present].mean()
    if scoring == "fastmri" and volumes is not None:
        summary[pixel] = volumes.groupby(keys, sort=False)[pixel].mean().reindex(summary.index)
    return summary.round(4)
