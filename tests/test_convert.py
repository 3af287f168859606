"""``prepare --from-fastmri`` at scale: workers and shards write the serial bytes, a killed conversion resumes
with the rest, a bad file is skipped with its reason or stops the conversion keeping what is done, and
``--pad`` zero-pads a narrow image in image space (checked against numpy)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from conftest import numpy_fft2c, numpy_ifft2c, raw_coil_images, write_raw_fastmri

from benchmark.data import convert
from benchmark.data.convert import Conversion, convert_fastmri, espirit_device
from benchmark.data.fastmri import LoadOptions
from benchmark.data.manifest import read_manifest
from benchmark.errors import BenchmarkError

OPTIONS = LoadOptions(size=(64, 64))
SIZE = ["--size", "64", "64"]


def prepare(*arguments: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "benchmark", "prepare", *arguments]
    return subprocess.run(command, capture_output=True, text=True, timeout=600)


def raw_volume(path: Path, seed: int, rows: int = 160, cols: int = 92, recon: int = 80) -> Path:
    kspace = numpy_fft2c(raw_coil_images(num_slices=1, num_coils=4, rows=rows, cols=cols, seed=seed))
    return write_raw_fastmri(path, kspace, recon=(recon, recon), acquisition=("AXT1", "AXT2", "AXFLAIR")[seed % 3])


@pytest.fixture(scope="module")
def sources(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("raw")
    for seed in range(6):
        raw_volume(folder / f"file_brain_{seed}.h5", seed)
    return folder


@pytest.fixture(scope="module")
def serial(sources, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("serial") / "data"
    convert_fastmri(Conversion(tuple(sorted(sources.glob("*.h5"))), root, "test", OPTIONS))
    return root


def _hash(root: Path) -> str:
    return read_manifest(root)["dataset_hash"]


def test_two_workers_and_two_concurrent_shards_write_the_serial_bytes(sources, serial, tmp_path):
    parallel = tmp_path / "parallel"
    convert_fastmri(Conversion(tuple(sorted(sources.glob("*.h5"))), parallel, "test", OPTIONS, workers=2))
    assert _hash(parallel) == _hash(serial)
    for file in (serial / "test").iterdir():
        assert (parallel / "test" / file.name).read_bytes() == file.read_bytes()
    sharded = tmp_path / "sharded"
    command = [sys.executable, "-m", "benchmark", "prepare", "--from-fastmri", str(sources), "--data", str(sharded)]
    # Shard 0 also converts with two worker processes through the command line.
    workers = (["--workers", "2"], [])
    shards = [subprocess.Popen([*command, *SIZE, "--shard", f"{i}/2", *workers[i]], stderr=subprocess.PIPE)
              for i in (0, 1)]  # fmt: skip
    assert [shard.wait(timeout=600) for shard in shards] == [0, 0]
    assert not (sharded / "manifest.json").exists()  # a shard never writes the manifest another is writing
    assert prepare("--finalize", "--data", str(sharded)).returncode == 0
    assert _hash(sharded) == _hash(serial)


def test_maps_are_recorded_as_computed_on_the_cpu_here_and_a_missing_gpu_is_one_line(sources, serial, tmp_path):
    fragment = json.loads(next((serial / ".fragments" / "test").glob("*.json")).read_text())
    if torch.cuda.is_available():  # the default, auto: a GPU when one is present
        assert fragment["options"]["espirit_device"] == "cuda"
        return
    # A CPU conversion's options hash is the one the landed converter wrote before the GPU option existed
    # (fda77ae, these options): a conversion begun then resumes without reconverting what it finished.
    assert "espirit_device" not in fragment["options"]
    assert fragment["options"]["hash"] == "f31ebad50fef1e32"
    root = tmp_path / "gpu"
    result = prepare("--from-fastmri", str(sources), "--data", str(root), *SIZE, "--espirit-device", "cuda")
    assert result.returncode == 2 and not root.exists()
    expected = "error: --espirit-device cuda: no CUDA GPU is visible here (use cpu or auto)"
    assert result.stderr.strip().splitlines() == [expected]


def test_auto_picks_this_ranks_gpu_only_for_a_method_that_runs_there_and_a_missing_gpu_index_is_one_line(
    monkeypatch,
):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(convert, "reference_espirit_runs_on_gpu", lambda: False)  # sigpy without CuPy
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert espirit_device("auto", "fast") == "cuda:1"
    assert espirit_device("auto", "reference") == "cpu"
    with pytest.raises(BenchmarkError, match="sigpy needs CuPy on a GPU"):
        espirit_device("cuda", "reference")
    with pytest.raises(BenchmarkError, match="cuda:2: only 2 CUDA GPU"):
        espirit_device("cuda:2", "fast")
    assert espirit_device("cuda", "fast") == "cuda:1"  # this rank's GPU, as run --device cuda picks it
    assert espirit_device("cuda:0", "fast") == "cuda:0"  # an explicit index is kept


def test_a_killed_conversion_reruns_only_the_rest(sources, serial, tmp_path):
    root = tmp_path / "killed"
    command = [sys.executable, "-m", "benchmark", "prepare", "--from-fastmri", str(sources), "--data", str(root)]
    process = subprocess.Popen([*command, *SIZE], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while not list(root.glob(".fragments/test/*.json")) and time.monotonic() < deadline:
        time.sleep(0.01)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    done_before = len(list(root.glob(".fragments/test/*.json")))
    assert 1 <= done_before < 6 and not (root / "manifest.json").exists()
    rerun = prepare("--from-fastmri", str(sources), "--data", str(root), *SIZE)
    assert rerun.returncode == 0, rerun.stderr
    assert f"converted {6 - done_before} fastMRI volume(s) into {root}/test, {done_before} already done" in rerun.stdout
    assert _hash(root) == _hash(serial)
    assert not list(root.rglob("*.tmp"))


def test_a_rerun_converts_nothing_and_other_options_reconvert_everything(sources, serial, tmp_path):
    root = tmp_path / "copy"
    shutil.copytree(serial, root)
    files = tuple(sorted(sources.glob("*.h5")))
    stamps = {path: path.stat().st_mtime_ns for path in (root / "test").iterdir()}
    again = convert_fastmri(Conversion(files, root, "test", OPTIONS))
    assert (again.converted, again.skipped) == ([], 6)
    assert {path: path.stat().st_mtime_ns for path in (root / "test").iterdir()} == stamps
    other = convert_fastmri(Conversion(files, root, "test", LoadOptions(size=(48, 48))))
    assert (len(other.converted), other.skipped) == (6, 0)  # the map settings and size are in the options hash
    with h5py.File(root / "test" / "file_brain_0.h5") as file:
        assert file["kspace"].shape[-2:] == (48, 48)


@pytest.fixture(scope="module")
def with_bad_files(sources, tmp_path_factory) -> Path:
    """Two good files around a 53-wide one (the 213-wide fastMRI file at a quarter of the size) and one with a
    NaN slice, in name order: good, narrow, NaN, good."""
    folder = tmp_path_factory.mktemp("bad")
    shutil.copyfile(sources / "file_brain_0.h5", folder / "a_good.h5")
    raw_volume(folder / "b_narrow.h5", seed=7, rows=106, cols=53, recon=53)
    kspace = numpy_fft2c(raw_coil_images(num_slices=1, num_coils=4, rows=160, cols=92, seed=8))
    kspace[0, 0, 5, 5] = np.nan
    write_raw_fastmri(folder / "c_nan.h5", kspace, recon=(80, 80))
    shutil.copyfile(sources / "file_brain_1.h5", folder / "d_good.h5")
    return folder


NARROW = "image (53, 53) is smaller than the crop (64, 64); --pad zero-pads it"
NAN = "'kspace' slice 0 contains NaN values"


def test_skip_converts_the_rest_and_lists_each_bad_file_with_its_reason(with_bad_files, tmp_path):
    root = tmp_path / "skipped"
    result = prepare("--from-fastmri", str(with_bad_files), "--data", str(root), *SIZE, "--on-error", "skip")
    assert result.returncode == 0, result.stderr
    assert [entry.path for entry in read_manifest(root)["entries"]] == ["test/a_good.h5", "test/d_good.h5"]
    rejects = json.loads((root / "rejects.json").read_text())
    assert [(Path(r["source"]).name, r["reason"]) for r in rejects] == [
        ("b_narrow.h5", f"{with_bad_files / 'b_narrow.h5'}: {NARROW}"),
        ("c_nan.h5", f"{with_bad_files / 'c_nan.h5'}: {NAN}"),
    ]


def test_abort_stops_at_the_first_bad_file_keeping_the_volumes_converted(with_bad_files, tmp_path):
    root = tmp_path / "aborted"
    result = prepare("--from-fastmri", str(with_bad_files), "--data", str(root), *SIZE)
    assert result.returncode == 2
    kept = "the 1 volume(s) converted are kept, and a rerun skips them; --on-error skip converts the rest"
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: {with_bad_files / 'b_narrow.h5'}: {NARROW}; stopped there ({kept})"
    )
    files = sorted(path.relative_to(root).as_posix() for path in root.rglob("*") if path.is_file())
    assert files == [".fragments/test/a_good.h5.json", "test/a_good.h5"]  # complete and recorded, nothing else


def test_pad_zero_pads_a_narrow_image_in_image_space(with_bad_files, tmp_path):
    source = with_bad_files / "b_narrow.h5"
    root = tmp_path / "padded"
    convert_fastmri(Conversion((source,), root, "test", OPTIONS, pad=True))
    with h5py.File(source) as file:
        images = numpy_ifft2c(file["kspace"][0])[:, 27:80, :]  # the 106 rows cropped to the recon size, 53
    expected = np.zeros((64, 64))
    expected[6:59, 6:59] = np.sqrt((np.abs(images) ** 2).sum(axis=0))  # centred as a centre crop centres
    with h5py.File(root / "test" / "b_narrow.h5") as file:
        np.testing.assert_allclose(file["reconstruction_rss"][0], expected, rtol=1e-4, atol=1e-4 * expected.max())
    assert read_manifest(root)["description"]["padded_files"] == ["test/b_narrow.h5"]
