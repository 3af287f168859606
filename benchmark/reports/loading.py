"""Reading a finished run back, trusting nothing: ``run.json`` parsed and checked, the tables checked against the
run's grid (every (method, mask, volume) unit, every slice, a value for every available metric) and rebuilt from
the per-unit files when the merged ``metrics.csv`` falls short, and one identity (configuration, data, code) per
table. Any parse error is one line, ``FILE: corrupt (…)``.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from benchmark.errors import BenchmarkError
from benchmark.metrics.volume import VOLUME_METRICS
from benchmark.runner.record import RUN_FILE, RunRecord
from benchmark.runner.run import TABLE_FILE, VOLUME_TABLE_FILE
from benchmark.runner.units import Unit, read_unit_tables

IDENTITY_COLUMNS = ("config_hash", "data_hash")


def load_run_tables(run_dir: str | Path) -> tuple[pd.DataFrame, pd.DataFrame | None, RunRecord]:
    """The per-image table, the per-volume table (``None`` for runs made before it was stored) and ``run.json``."""
    run_dir = Path(run_dir)
    if not (run_dir / RUN_FILE).is_file():
        raise BenchmarkError(f"{run_dir} is not a run directory (no {RUN_FILE})")
    metadata = RunRecord.read(run_dir)
    if not (run_dir / TABLE_FILE).is_file() and metadata.volumes is None:
        raise BenchmarkError(f"{run_dir} has no {TABLE_FILE}: the run is unfinished; finish it with --resume")
    if metadata.volumes is None:  # a run from before the grid was recorded: its merged tables as they are
        volumes = _read_table(run_dir / VOLUME_TABLE_FILE) if (run_dir / VOLUME_TABLE_FILE).is_file() else None
        images = _read_table(run_dir / TABLE_FILE)
    else:
        images, volumes = _verified_tables(run_dir, metadata)
    for frame, name in ((images, TABLE_FILE), (volumes, VOLUME_TABLE_FILE)):
        _check_one_identity(frame, run_dir / name)
    return images, volumes, metadata


def load_run(run_dir: str | Path) -> tuple[pd.DataFrame, RunRecord]:
    """The per-image table and ``run.json`` of a finished run (``load_run_tables``)."""
    images, _, metadata = load_run_tables(run_dir)
    return images, metadata


def run_units(metadata: RunRecord) -> list[Unit]:
    """A run's units in table order (method, mask, volume), from its ``run.json``."""
    config = metadata.config
    return [
        Unit(method, mask, Path(item["file"]), item["contrast"])
        for method in config["methods"]
        for mask in config["masks"]
        for item in metadata.volumes
    ]


def _verified_tables(run_dir: Path, metadata: RunRecord) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The merged tables if they match the grid exactly, else the same tables rebuilt from the unit files."""
    slices, expected = metadata.slices_per_volume(), metadata.available_metrics()
    units = run_units(metadata)
    try:
        images, volumes = _read_table(run_dir / TABLE_FILE), _read_table(run_dir / VOLUME_TABLE_FILE)
    except BenchmarkError:
        images = volumes = None
    if images is not None and _matches_grid(images, volumes, units, slices, expected):
        return images, volumes
    return read_unit_tables(run_dir, units, slices, expected)


def _matches_grid(images, volumes, units, slices, expected) -> bool:
    wanted_images = sum(slices[unit.file.name] for unit in units)
    keys = ["method", "mask", "file", "slice"]
    if len(images) != wanted_images or len(volumes) != len(units) or images.duplicated(keys).any():
        return False
    grid = {(unit.method, unit.pattern, unit.file.name) for unit in units}
    if set(map(tuple, images[keys[:3]].itertuples(index=False))) != grid:
        return False
    if any(name not in images or images[name].isna().any() for name in expected):
        return False
    return all(name in volumes and not volumes[name].isna().any() for name in VOLUME_METRICS)


def _read_table(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise BenchmarkError(f"{path}: missing")
    try:
        return pd.read_csv(path)
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as error:
        text = str(error).strip().splitlines()
        raise BenchmarkError(f"{path}: corrupt ({text[0] if text else type(error).__name__})") from None


def _check_one_identity(frame: pd.DataFrame | None, path: Path) -> None:
    """A table is one run: one configuration hash (which covers weights, data and code) and one data hash."""
    if frame is None:
        return
    for column in IDENTITY_COLUMNS:
        if column in frame and frame[column].nunique() > 1:
            found = ", ".join(sorted(map(str, frame[column].unique()))[:3])
            raise BenchmarkError(
                f"{path}: mixes {frame[column].nunique()} runs ({column} {found}); rerun into a new --out"
            )
