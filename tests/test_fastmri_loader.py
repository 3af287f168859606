"""The fastMRI reader on files written here with h5py (independent of the project's writer)."""

import numpy as np
import pytest
import torch
from conftest import BROKEN_FASTMRI, numpy_fft2c, numpy_ifft2c, raw_coil_images, write_raw_fastmri

from benchmark.data import LoadOptions, SliceDataset, read_slice
from benchmark.data.fastmri import center_crop
from benchmark.errors import DataError, InputError

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


@pytest.mark.parametrize("kind", sorted(BROKEN_FASTMRI))
def test_each_broken_file_raises_one_line_naming_it_and_its_problem(kind, oversampled_file, tmp_path):
    good, _ = oversampled_file
    path = tmp_path / f"{kind}.h5"
    problem = BROKEN_FASTMRI[kind](path, good)
    with pytest.raises(DataError) as info:
        read_slice(path, 0, RSS_OPTIONS)
    assert str(info.value) == f"{path}: {problem}"


def test_a_missing_file_is_named(tmp_path):
    with pytest.raises(DataError) as info:
        read_slice(tmp_path / "missing.h5", 0, RSS_OPTIONS)
    assert str(info.value) == f"{tmp_path / 'missing.h5'}: no such file"


def test_a_calibration_region_narrower_than_the_espirit_kernel_is_refused():
    with pytest.raises(InputError, match="espirit_calib_width must be >= 6"):
        LoadOptions(espirit_calib_width=4)
