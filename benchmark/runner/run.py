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

import shutil
import sys
import time
from dataclasses import replace
from pathlib import Path

import pandas as pd
from tqdm import tqdm

from benchmark.checkpoint import plain_values
from benchmark.data import dataset_files, open_fastmri, read_manifest, verify_dataset
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
from benchmark.runner.groups import infer_group, volume_groups
from benchmark.runner.identity import code_hash
from benchmark.runner.record import RUN_FILE, RunRecord
from benchmark.runner.shard import Shard, assign, current_shard
from benchmark.runner.units import (
    InferenceSettings,
    Unit,
    load_volume,
    read_unit_tables,
    recon_is_complete,
    score_unit,
    unit_problem,
)
from benchmark.seeds import derive_seed

TABLE_FILE = "metrics.csv"
VOLUME_TABLE_FILE = "volume_metrics.csv"


def run_benchmark(config: RunConfig, resume: bool = False) -> pd.DataFrame:
    """Run (or resume) the grid in ``config``; returns the per-image table also written to ``metrics.csv``."""
    _check_names(config)
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
    for name, field, count in config.sampler:
        methods[name].reduce_sampler(**{field: count})
    metrics = build_metric_suite(device)
    entries = {config.data / entry.path: entry for entry in read_manifest(config.data)["entries"]}
    volumes = [{"file": f.name, "contrast": entries[f].contrast, "num_slices": entries[f].num_slices} for f in files]
    record = replace(_record(config, methods, metrics, data_hash, device), volumes=volumes)
    fresh = not config.out.exists() or not any(config.out.iterdir())
    shard.leader_first(lambda: _start_run(config, record, resume))
    units = [Unit(m, k, f, entries[f].contrast) for m in config.methods for k in config.masks for f in files]
    slices = {file: entries[file].num_slices for file in files}
    groups = volume_groups(files, slices, _coil_counts(files, config), config.batch_size)
    items = [
        (m, k, [(f, entries[f].contrast) for f in g]) for g in groups for m in config.methods for k in config.masks
    ]
    costs = [sum(slices[f] for f, _ in group) * methods[m].relative_cost for m, _, group in items]
    mine = [items[index] for index in sorted(assign(costs, shard.world)[shard.rank])]
    if shard.world > 1:
        print(f"rank {shard.rank} of {shard.world}: {len(mine)} of {len(items)} items", file=sys.stderr, flush=True)
    # Table order is method, mask, volume; execution goes group by group so each volume is read once.
    try:
        _run_items(config, mine, methods, metrics, device, record, shard)
    except BaseException:
        if fresh and shard.world == 1 and not finished_units(config.out):
            shutil.rmtree(config.out, ignore_errors=True)  # nothing finished: a corrected rerun starts clean
        raise
    shard.barrier()  # every rank's units are on disk
    if shard.leader:
        _merge_tables(config.out, units, record)
    shard.barrier()
    return pd.read_csv(config.out / TABLE_FILE)


def _coil_counts(files: list[Path], config: RunConfig) -> dict[Path, int]:
    """Each volume's coil count as the methods will see it (read from the file's header; after compression, the
    virtual coil count)."""
    if config.load.num_virtual_coils is not None:
        return dict.fromkeys(files, config.load.num_virtual_coils)
    counts = {}
    for file in files:
        with open_fastmri(file) as (_, info):
            counts[file] = info.num_coils
    return counts


def _check_names(config: RunConfig) -> None:
    for name in config.methods:
        check_method_name(name)
    for name in config.masks:
        get_pattern(name)
    for name, _ in config.checkpoints:
        if name not in config.methods:
            raise BenchmarkError(f"--checkpoint names {name!r}, which is not among --methods")
    for name, _, _ in config.sampler:
        if name not in config.methods:
            raise BenchmarkError(f"--sampler names {name!r}, which is not among --methods")


def _record(config: RunConfig, methods: dict, metrics: list, data_hash: str, device) -> RunRecord:
    """``run.json``'s content: the run's identity (configuration, weights, data and code hashes) and context."""
    described = {name: method.describe() for name, method in methods.items()}
    code = code_hash(config.methods)
    weights = {name: info["checkpoint_sha256"] for name, info in described.items()}
    return RunRecord(
        config=config.record(),
        config_hash=config.config_hash(weights, data_hash, code),
        data_hash=data_hash,
        methods=described,
        metrics={metric.name: metric.describe() for metric in metrics},
        code_hash=code,
        dataset=dataset_description(config.data, config.load),
        normalization=DESCRIPTIONS[config.load.normalization],
        setting_mismatches=setting_mismatches(methods, config),
        versions=library_versions(),
        git_commit=git_commit(),
        device=device_name(device),
        started=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    )


def finished_units(out: Path) -> list[Path]:
    """The per-image metric files of a run's finished units."""
    return [path for path in out.glob("metrics/*/*/*.csv") if not path.name.endswith(".volume.csv")]


def _start_run(config: RunConfig, record: RunRecord, resume: bool) -> None:
    _prepare_out_dir(config, record, resume)
    if not (config.out / RUN_FILE).exists():
        record.write(config.out)


def _merge_tables(out: Path, units: list[Unit], record: RunRecord) -> None:
    """``metrics.csv`` and ``volume_metrics.csv`` from the verified unit files, in grid order."""
    images, volumes = read_unit_tables(out, units, record.slices_per_volume(), record.available_metrics())
    for name, frame in ((TABLE_FILE, images), (VOLUME_TABLE_FILE, volumes)):
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


def _run_items(config, items, methods, metrics, device, record: RunRecord, shard: Shard) -> None:
    """Each (method, mask, volume group) item: infer what lacks a complete reconstruction, score what lacks
    verified scores. Items come grouped by volume group, so each group's volumes are read once."""
    loaded: dict[Path, dict] = {}
    warmed: set[str] = set()
    settings = InferenceSettings(config.acceleration, config.batch_size, config.load.normalization, device)
    slices = record.slices_per_volume()
    expected = [metric.name for metric in metrics if metric.available]
    progress = tqdm(items, desc="benchmark", unit="item", disable=not shard.leader)  # rank 0 speaks for all
    for method, mask, group in progress:
        units = [Unit(method, mask, file, contrast) for file, contrast in group]
        progress.set_description(f"{method} | {mask} | {len(units)} volume(s)")
        unscored = [u for u in units if unit_problem(u, config.out, slices[u.file.name], expected) is not None]
        if not unscored:
            continue  # finished and verified: a half-written or NaN-holed unit is redone instead
        if set(loaded) != {unit.file for unit in units}:
            loaded = {unit.file: load_volume(unit.file, config.load) for unit in units}  # one group in memory
        missing = [u for u in units if not recon_is_complete(u, config.out, slices[u.file.name])]
        if missing:
            seed = derive_seed(config.seed, method, mask, units[0].file.name)
            infer_group(units, config.out, methods[method], loaded, settings, seed, method not in warmed, missing)
            warmed.add(method)
        extra = {
            "config_hash": record.config_hash,
            "data_hash": record.data_hash[:16],
            "checkpoint_sha256": record.methods[method]["checkpoint_sha256"] or "",
            "setting_mismatch": record.setting_mismatches.get(method, ""),
        }
        for unit in unscored:
            score_unit(unit, config.out, loaded[unit.file], metrics, extra)
    progress.close()


def _prepare_out_dir(config: RunConfig, record: RunRecord, resume: bool) -> None:
    run_file = config.out / RUN_FILE
    if run_file.exists():
        if not resume:
            raise BenchmarkError(
                f"{config.out} already holds a run; pass --resume to continue it or choose another --out"
            )
        _check_same_identity(config.out, RunRecord.read(config.out), record)
    elif config.out.exists() and any(config.out.iterdir()):
        raise BenchmarkError(f"{config.out} exists and is not a run directory of this suite; choose another --out")
    try:
        config.out.mkdir(parents=True, exist_ok=True)
        with atomic_path(config.out / ".write-check") as tmp:
            tmp.write_text("ok")
        (config.out / ".write-check").unlink()
    except OSError as error:
        raise BenchmarkError(f"cannot write to {config.out}: {error.strerror or error}") from None


def _check_same_identity(out: Path, stored: RunRecord, current: RunRecord) -> None:
    """A resume must continue the same run: same data, same code, same configuration and weights."""
    if stored.data_hash != current.data_hash:
        raise BenchmarkError(
            f"{out} was run on data {stored.data_hash[:16]} ({stored.config.get('data')}), not "
            f"{current.data_hash[:16]} ({current.config['data']}); resume it on its own data or use another --out"
        )
    old, new = stored.code_hash, current.code_hash
    changed = [f"{name} {old.get(name)} -> {new[name]}" for name in new if old.get(name) != new[name]]
    if changed:
        raise BenchmarkError(
            f"{out} was run with other code ({'; '.join(changed)}); finish it with that code or use another --out"
        )
    if stored.config_hash != current.config_hash:
        raise BenchmarkError(
            f"{out} was started with a different configuration or other weights "
            f"(hash {stored.config_hash} vs {current.config_hash}); use another --out"
        )


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
