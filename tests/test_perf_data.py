"""Data-path performance cases (pytest-benchmark; run once as checks unless ``--benchmark-enable``): fastMRI
conversion with 1 and 2 worker processes, a two-slice volume's conversion at 4 and 20 coils (all in: read,
validate, ESPIRiT, write; the 12-coil figure is the 1-worker case / 8), and training batches read with 0 and 2
DataLoader workers. Slices per second = the case's slices / its mean time."""

from __future__ import annotations

import shutil

import pytest
from conftest import numpy_fft2c, raw_coil_images, write_raw_fastmri

from benchmark.data import LoadOptions, SliceDataset, dataset_files
from benchmark.data.convert import Conversion, convert_fastmri
from benchmark.recipes import TrainConfig
from benchmark.training.batches import StepBatches, training_loader

#: Volumes x slices of the conversion case: 4 volumes of 2 slices, 12 coils, fastMRI's 640 x 320 raw geometry.
VOLUMES, SLICES = 4, 2


@pytest.fixture(scope="module")
def raw_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("raw-perf")
    for seed in range(VOLUMES):
        kspace = numpy_fft2c(raw_coil_images(num_slices=SLICES, num_coils=12, rows=640, cols=320, seed=seed))
        write_raw_fastmri(folder / f"file_brain_AXT2_{seed}.h5", kspace, recon=(320, 320))
    return folder


@pytest.mark.parametrize("workers", [1, 2])
def test_perf_conversion(benchmark, raw_folder, tmp_path, workers):
    sources = tuple(sorted(raw_folder.glob("*.h5")))
    roots = iter(tmp_path / f"run{i}" for i in range(1000))

    def convert():
        root = next(roots)
        result = convert_fastmri(Conversion(sources, root, "test", workers=workers))
        shutil.rmtree(root)
        return result

    assert len(benchmark.pedantic(convert, rounds=1, iterations=1).converted) == VOLUMES


@pytest.mark.parametrize("coils", [4, 20])
def test_perf_conversion_per_coil_count(benchmark, tmp_path, coils):
    """Two slices of one volume at fastMRI's 640 x 320 raw geometry, one worker (seconds per slice = mean / 2)."""
    kspace = numpy_fft2c(raw_coil_images(num_slices=2, num_coils=coils, rows=640, cols=320))
    source = write_raw_fastmri(tmp_path / "file_brain_AXT2_0.h5", kspace, recon=(320, 320))
    roots = iter(tmp_path / f"run{i}" for i in range(1000))
    result = benchmark.pedantic(lambda: convert_fastmri(Conversion((source,), next(roots), "test")), rounds=1)
    assert [path.name for path in result.converted] == [source.name]


@pytest.mark.parametrize("workers", [0, 2])
def test_perf_training_batches(benchmark, ci_embedded, workers):
    """16 steps of batch 2 (32 slices at 256 x 256, masks drawn and acquisitions built)."""
    dataset = SliceDataset(dataset_files(ci_embedded, "train"), LoadOptions())
    batches = StepBatches(dataset, TrainConfig(steps=16, batch_size=2), ("radial",), (256, 256), False, 0, 1)
    read = benchmark.pedantic(lambda: list(training_loader(batches, 0, workers)), rounds=1, iterations=1)
    assert len(read) == 16
