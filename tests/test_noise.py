"""The k-space noise level of a converted fastMRI file, estimated from its readout margins, against the
known σ of noise added to synthetic raw data (E|n|² = σ², the embedded files' convention)."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import numpy_fft2c, raw_coil_images, write_raw_fastmri

from benchmark.data import LoadOptions
from benchmark.data.convert import Conversion, convert_fastmri
from benchmark.data.manifest import read_manifest
from benchmark.data.noise import margin_noise_sigma


def complex_noise(shape: tuple[int, ...], sigma: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.normal(size=shape) + 1j * rng.normal(size=shape)) * sigma / np.sqrt(2)


@pytest.mark.parametrize("zero_filled_columns", [0, 18])
def test_a_converted_file_records_the_noise_level_added_to_its_raw_kspace(tmp_path, zero_filled_columns):
    """Signal + noise of known σ; a scanner's zero-filled phase-encode columns (no signal, no noise) at both
    edges must not lower the estimate."""
    sigma = 0.05
    kspace = numpy_fft2c(raw_coil_images(num_slices=2, num_coils=4, rows=160, cols=92))
    kspace = kspace + complex_noise(kspace.shape, sigma, seed=1)
    if zero_filled_columns:
        kspace[..., : zero_filled_columns // 2] = 0
        kspace[..., -zero_filled_columns // 2 :] = 0
    source = write_raw_fastmri(tmp_path / "file_brain_AXT2_3.h5", kspace, recon=(80, 80))
    root = tmp_path / "converted"
    convert_fastmri(Conversion((source,), root, "test", LoadOptions(size=(64, 64), espirit_calib_width=16)))
    (entry,) = read_manifest(root)["entries"]
    assert entry.noise_sigma == pytest.approx(sigma, rel=0.05)


def test_the_estimate_ignores_anatomy_reaching_into_part_of_the_margin():
    """A bright object covering a tenth of the measured margin pixels moves the median estimate by less than 10 %."""
    sigma, rows, recon = 1.0, 128, 64
    images = np.zeros((2, rows, 96), dtype=np.complex128)
    images[:, 16:26, :32] = 50.0  # in the top margin's inner half (rows 16-31): a tenth of the pixels measured
    kspace = numpy_fft2c(images) + complex_noise(images.shape, sigma, seed=2)
    assert margin_noise_sigma(kspace, recon) == pytest.approx(sigma, rel=0.1)


def test_no_estimate_without_readout_oversampling():
    kspace = complex_noise((2, 64, 64), 1.0, seed=3)
    assert margin_noise_sigma(kspace, 64) is None


def test_coils_of_different_noise_levels_give_their_mean_variance():
    """σ² is the coils' mean noise variance (the convention E|n|² = σ² averaged over coils), even when the coils'
    levels differ fourfold, where a median pooled over the coils would come out low."""
    levels = np.array([0.5, 1.0, 2.0])
    kspace = np.stack([complex_noise((256, 128), level, seed=4 + c) for c, level in enumerate(levels)])
    assert margin_noise_sigma(kspace, 128) == pytest.approx(np.sqrt(np.mean(levels**2)), rel=0.03)
