"""Fast ESPIRiT against sigpy's reference and against the known maps of simulated slices; the timings are
pytest-benchmark cases (``--benchmark-enable``), not assertions."""

from __future__ import annotations

import numpy as np
import pytest
import sigpy
import torch

from benchmark.errors import InputError
from benchmark.physics import birdcage_maps, espirit_maps
from benchmark.physics.espirit import fast_espirit_maps


def simulated_slice(coils: int, size: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fully sampled k-space of an ellipse with texture seen by birdcage coils, a little noise: ``(k-space,
    true maps, object)``; numpy's FFT, independent of the code under test."""
    maps = birdcage_maps(coils, (size, size)).numpy()
    y, x = np.mgrid[-1 : 1 : size * 1j, -1 : 1 : size * 1j]
    image = ((x / 0.7) ** 2 + (y / 0.85) ** 2 < 1) * (1 + 0.3 * np.cos(8 * x)) * np.exp(0.5j * y)
    kspace = np.fft.fftshift(np.fft.fft2(np.fft.ifftshift(maps * image, axes=(-2, -1)), norm="ortho"), axes=(-2, -1))
    rng = np.random.default_rng(seed)
    kspace = kspace + 0.002 * np.abs(kspace).max() * (
        rng.normal(size=kspace.shape) + 1j * rng.normal(size=kspace.shape)
    )
    return kspace.astype(np.complex64), maps, image


def sense_image(kspace: np.ndarray, maps: np.ndarray) -> np.ndarray:
    coil_images = np.fft.fftshift(np.fft.ifft2(np.fft.ifftshift(kspace, axes=(-2, -1)), norm="ortho"), axes=(-2, -1))
    return (np.conj(maps) * coil_images).sum(axis=0)


def nrmse(estimate: np.ndarray, reference: np.ndarray) -> float:
    return float(np.linalg.norm(estimate - reference) / np.linalg.norm(reference))


def test_the_gram_identity_reproduces_sigpys_maps_on_the_full_grid():
    """Without the coarser grid only rounding separates the k-space-side Gram and the eigensolver from sigpy's
    per-kernel FFTs and 100 power iterations."""
    kspace, _, _ = simulated_slice(coils=8, size=96)
    reference = espirit_maps(torch.from_numpy(kspace), calib_width=24, method="reference").numpy()
    exact = fast_espirit_maps(kspace, 24, 0.02, 6, 0.95, coarsening=1).numpy()
    assert ((np.abs(reference).sum(0) > 0) == (np.abs(exact).sum(0) > 0)).all()  # the same eigenvalue crop
    assert nrmse(sense_image(kspace, exact), sense_image(kspace, reference)) < 1e-3


@pytest.mark.parametrize("coils", [4, 16])
def test_the_default_fast_maps_give_the_reference_sense_image_within_one_percent(coils):
    kspace, _, _ = simulated_slice(coils, size=256, seed=coils)
    ksp = torch.from_numpy(kspace)
    fast, reference = espirit_maps(ksp).numpy(), espirit_maps(ksp, method="reference").numpy()
    assert nrmse(sense_image(kspace, fast), sense_image(kspace, reference)) < 0.01
    support = np.abs(reference).sum(0) > 0
    assert ((np.abs(fast).sum(0) > 0) != support).mean() < 0.01  # the crop moves by boundary pixels only


def test_the_fast_maps_are_the_true_sensitivities_up_to_one_phase_per_pixel():
    """ESPIRiT's maps span the true ones wherever the object is: |<S_fast, S_true>| / |S_true| near 1."""
    kspace, true_maps, image = simulated_slice(coils=12, size=128)
    fast = espirit_maps(torch.from_numpy(kspace)).numpy()
    inside = np.abs(image) > 0
    true_unit = true_maps / np.sqrt((np.abs(true_maps) ** 2).sum(0, keepdims=True))
    overlap = np.abs((np.conj(fast) * true_unit).sum(0))[inside]
    assert np.median(overlap) > 0.99 and np.quantile(overlap, 0.05) > 0.95


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (the device check)")
@pytest.mark.parametrize("method", ["fast", "reference"])
def test_maps_computed_on_the_gpu_give_the_cpu_sense_image(method):
    if method == "reference" and not sigpy.config.cupy_enabled:
        pytest.skip("sigpy's GPU backend needs CuPy")
    kspace, _, _ = simulated_slice(coils=12, size=256)
    ksp = torch.from_numpy(kspace)
    gpu, cpu = espirit_maps(ksp, method=method, device="cuda"), espirit_maps(ksp, method=method)
    assert gpu.device.type == "cpu"  # returned where the converter writes from
    assert nrmse(sense_image(kspace, gpu.numpy()), sense_image(kspace, cpu.numpy())) < 1e-4


@pytest.mark.skipif(sigpy.config.cupy_enabled, reason="CuPy is installed: sigpy can run on the GPU")
def test_reference_maps_on_a_gpu_without_cupy_say_what_is_missing():
    kspace, _, _ = simulated_slice(coils=4, size=64)
    with pytest.raises(InputError, match="needs CuPy"):
        espirit_maps(torch.from_numpy(kspace), method="reference", device="cuda")


@pytest.mark.parametrize("coils", [4, 12])
@pytest.mark.parametrize("method", ["fast", "reference"])
def test_perf_espirit_one_256_slice(benchmark, coils, method):
    """One 256 x 256 slice's maps (one thread as the converter runs them: ``prepare --workers``)."""
    kspace = torch.from_numpy(simulated_slice(coils, size=256)[0])
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        maps = benchmark(espirit_maps, kspace, method=method)
    finally:
        torch.set_num_threads(threads)
    assert maps.shape == kspace.shape and torch.isfinite(maps).all()
