"""The fastMRI reader on files written here with h5py (independent of the project's writer)."""

import os
import subprocess
import sys

import h5py
import numpy as np
import pytest
import torch
from conftest import numpy_fft2c, numpy_ifft2c, raw_coil_images, write_raw_fastmri

from benchmark.data import LoadOptions, SliceDataset, read_slice
from benchmark.data.fastmri import center_crop
from benchmark.errors import DataError

SIZE = (64, 64)
RSS_OPTIONS = LoadOptions(size=SIZE, target="rss", normalization="slice_max")


def crop(array, size):
    top = array.shape[-2] // 2 - size[0] // 2
    left = array.shape[-1] // 2 - size[1] // 2
    return array[..., top : top + size[0], left : left + size[1]]


@pytest.fixture
def oversampled_file(tmp_path):
    # Readout oversampled 2x (160 rows for an 80-row recon) and a wider-than-recon width (92 -> 80),
    # like fastMRI brain files (640 x 368 encoded, 320 x 320 recon).
    images = raw_coil_images(num_slices=2, num_coils=4, rows=160, cols=92)
    path = write_raw_fastmri(tmp_path / "file_brain_AXT2_0001.h5", numpy_fft2c(images), recon=(80, 80))
    return path, images


def test_oversampled_file_is_cropped_to_recon_then_benchmark_size(oversampled_file):
    path, images = oversampled_file
    check_crop_pipeline(path, images, recon=(80, 80), size=SIZE)


def test_real_fastmri_brain_geometry_640_rows_368_wide(tmp_path):
    # fastMRI brain: 640 x 368 encoded (2x readout oversampling), 320 x 320 recon, benchmark 256 x 256.
    images = raw_coil_images(num_slices=2, num_coils=2, rows=640, cols=368)
    path = write_raw_fastmri(tmp_path / "file_brain_AXT1_201.h5", numpy_fft2c(images), recon=(320, 320))
    check_crop_pipeline(path, images, recon=(320, 320), size=(256, 256))


def check_crop_pipeline(path, images, recon, size):
    options = LoadOptions(size=size, target="rss", normalization="slice_max")
    sample = read_slice(path, 1, options)
    expected_coils = crop(crop(images[1], recon), size)
    expected_rss = np.sqrt((np.abs(expected_coils) ** 2).sum(0))
    scale = expected_rss.max()
    assert sample.kspace.shape == (images.shape[1], *size)
    np.testing.assert_allclose(numpy_ifft2c(sample.kspace.numpy()), expected_coils / scale, atol=2e-6)
    np.testing.assert_allclose(sample.target.numpy(), expected_rss / scale, atol=2e-6)
    assert sample.scale == pytest.approx(scale, rel=1e-5)
    assert sample.patient_id == "raw0001" and sample.slice_index == 1


def test_sense_target_with_espirit_maps_matches_rss_magnitude(oversampled_file):
    path, _ = oversampled_file
    sense = read_slice(path, 0, LoadOptions(size=SIZE, target="sense", normalization="none", espirit_calib_width=16))
    rss = read_slice(path, 0, LoadOptions(size=SIZE, target="rss", normalization="none"))
    inside = rss.target > 0.2 * rss.target.max()
    # With ESPIRiT maps (unit norm across coils inside the object), |SENSE| equals RSS there.
    relative = ((sense.target - rss.target).abs()[inside] / rss.target[inside]).median()
    assert relative < 0.05
    assert sense.maps.shape == (4, *SIZE)


def test_coil_compression_is_recorded_in_the_coil_count(oversampled_file):
    path, _ = oversampled_file
    sample = read_slice(path, 0, LoadOptions(size=SIZE, target="rss", num_virtual_coils=2))
    assert sample.kspace.shape == (2, *SIZE)


def test_slice_dataset_indexes_every_slice(oversampled_file, tmp_path):
    path, images = oversampled_file
    second = write_raw_fastmri(tmp_path / "other.h5", numpy_fft2c(images[:1]), recon=(80, 80), acquisition="AXFLAIR")
    dataset = SliceDataset([path, second], RSS_OPTIONS)
    assert len(dataset) == 3
    item = dataset[2]
    assert item["contrast"] == "FLAIR" and item["file"] == "other.h5"
    assert item["target"].dtype == torch.float32 and item["kspace"].dtype == torch.complex64


def test_center_crop_keeps_the_dc_index():
    tensor = torch.arange(10 * 12).reshape(10, 12)
    cropped = center_crop(tensor, (4, 6))
    assert cropped[2, 3] == tensor[5, 6]


def bad_files(tmp_path, good):
    empty = tmp_path / "empty.h5"
    empty.touch()
    text = tmp_path / "text.h5"
    text.write_text("this is not HDF5\n")
    truncated = tmp_path / "truncated.h5"
    data = good.read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    foreign = tmp_path / "foreign.h5"
    with h5py.File(foreign, "w") as handle:
        handle.create_dataset("images", data=np.zeros((2, 4, 4)))
    three_d = tmp_path / "threed.h5"
    with h5py.File(three_d, "w") as handle:
        handle.create_dataset("kspace", data=np.zeros((2, 8, 8), dtype=np.complex64))
    real = tmp_path / "real.h5"
    with h5py.File(real, "w") as handle:
        handle.create_dataset("kspace", data=np.zeros((1, 2, 8, 8), dtype=np.float32))
    nan, inf = tmp_path / "nan.h5", tmp_path / "inf.h5"
    for path, value in ((nan, np.nan), (inf, np.inf)):
        kspace = numpy_fft2c(raw_coil_images(1, 2, 160, 92))
        kspace[0, 1, 5, 5] = value
        write_raw_fastmri(path, kspace, recon=(80, 80))
    return {
        empty: "empty",
        text: "not an HDF5",
        truncated: "truncated or corrupt",
        foreign: "no 'kspace'",
        three_d: "shape",
        real: "dtype",
        nan: "NaN or Inf",
        inf: "NaN or Inf",
        tmp_path / "missing.h5": "no such file",
    }


def test_each_bad_file_raises_one_clear_error_naming_it(oversampled_file, tmp_path):
    good, _ = oversampled_file
    for path, message in bad_files(tmp_path, good).items():
        with pytest.raises(DataError, match=message) as info:
            read_slice(path, 0, RSS_OPTIONS)
        assert str(path) in str(info.value)
        assert "\n" not in str(info.value)


def test_cli_conversion_of_a_bad_file_exits_nonzero_with_one_line_and_writes_nothing(oversampled_file, tmp_path):
    good, _ = oversampled_file
    out = tmp_path / "converted"
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    for path, message in bad_files(tmp_path, good).items():
        folder = tmp_path / f"src_{path.stem}"
        folder.mkdir()
        os.link(good, folder / "a_good.h5")
        if path.exists():
            os.link(path, folder / path.name)
        else:
            continue
        result = subprocess.run(
            [sys.executable, "-m", "benchmark", "prepare", "--from-fastmri", str(folder), "--data", str(out)],
            capture_output=True,
            text=True,
            env=env,
        )
        assert result.returncode == 2, result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], result.stderr
        assert not out.exists() or not any(out.rglob("*")), "a failed conversion left files behind"
