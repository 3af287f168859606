"""Shared fixtures: fastMRI-layout files written directly with h5py and numpy (independent of the
project's writer), and a small embedded dataset."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np
import pytest

from benchmark.data import EmbeddedSpec, build_embedded
from benchmark.runner.run import finished_units  # noqa: F401 - tests import it from here

NS = "http://www.ismrm.org/ISMRMRD"


def header_xml(encoded: tuple[int, int], recon: tuple[int, int]) -> bytes:
    return (
        f'<?xml version="1.0"?><ismrmrdHeader xmlns="{NS}"><encoding>'
        f"<encodedSpace><matrixSize><x>{encoded[0]}</x><y>{encoded[1]}</y><z>1</z></matrixSize></encodedSpace>"
        f"<reconSpace><matrixSize><x>{recon[0]}</x><y>{recon[1]}</y><z>1</z></matrixSize></reconSpace>"
        "</encoding></ismrmrdHeader>"
    ).encode()


def numpy_fft2c(array: np.ndarray) -> np.ndarray:
    shifted = np.fft.ifftshift(array, axes=(-2, -1))
    return np.fft.fftshift(np.fft.fft2(shifted, axes=(-2, -1), norm="ortho"), axes=(-2, -1))


def numpy_ifft2c(array: np.ndarray) -> np.ndarray:
    shifted = np.fft.ifftshift(array, axes=(-2, -1))
    return np.fft.fftshift(np.fft.ifft2(shifted, axes=(-2, -1), norm="ortho"), axes=(-2, -1))


def raw_coil_images(num_slices: int, num_coils: int, rows: int, cols: int, seed: int = 0) -> np.ndarray:
    """Smooth complex coil images with an object in the middle (so centre crops keep it)."""
    rng = np.random.default_rng(seed)
    y, x = np.meshgrid(np.linspace(-1, 1, rows), np.linspace(-1, 1, cols), indexing="ij")
    images = np.zeros((num_slices, num_coils, rows, cols), dtype=np.complex128)
    for s in range(num_slices):
        obj = ((x / 0.4) ** 2 + (y / 0.2) ** 2 < 1) * (1 + 0.3 * np.cos(6 * x + s))
        for c in range(num_coils):
            sensitivity = np.exp(-((x - rng.uniform(-1, 1)) ** 2 + (y - rng.uniform(-1, 1)) ** 2))
            images[s, c] = obj * sensitivity * np.exp(1j * rng.uniform(0, 2 * np.pi))
    return images


def write_raw_fastmri(path: Path, kspace: np.ndarray, recon: tuple[int, int], acquisition: str = "AXT2") -> Path:
    """A file laid out as fastMRI's multi-coil brain files, written with h5py directly."""
    with h5py.File(path, "w") as handle:
        handle.create_dataset("kspace", data=kspace.astype(np.complex64))
        handle.create_dataset("ismrmrd_header", data=header_xml(kspace.shape[-2:], recon))
        handle.attrs["acquisition"] = acquisition
        handle.attrs["patient_id"] = "raw0001"
    return path


def _rewritten(make: Callable[[bytes], bytes], problem: str) -> Callable[[Path, Path], str]:
    """Writer of a file holding ``make(good's bytes)``; ``problem`` may name its ``{size}`` and good's ``{total}``."""

    def write(path: Path, good: Path) -> str:
        data = good.read_bytes()
        path.write_bytes(make(data))
        return problem.format(size=path.stat().st_size, total=len(data))

    return write


def _spoiled(name: str, spoil: Callable[[np.ndarray], np.ndarray | None], problem: str) -> Callable[[Path, Path], str]:
    """Writer of a copy of ``good`` whose dataset ``name`` holds ``spoil(values)`` (none if that is None);
    ``problem`` may name the new dataset's ``{shape}``."""

    def write(path: Path, good: Path) -> str:
        shutil.copyfile(good, path)
        with h5py.File(path, "r+") as handle:
            data = spoil(handle[name][()])
            del handle[name]
            if data is not None:
                handle.create_dataset(name, data=data)
        return problem.format(shape=getattr(data, "shape", None))

    return write


def _first_slice_with(value: complex) -> Callable[[np.ndarray], np.ndarray]:
    def spoil(kspace: np.ndarray) -> np.ndarray:
        kspace[0, -1, 0, 0] = value
        return kspace

    return spoil


def _first_slice_zero(kspace: np.ndarray) -> np.ndarray:
    kspace[0] = 0
    return kspace


EXPECTED_4D = "expected multi-coil (slices, coils, rows, cols)"
#: Ways a fastMRI-layout file can be unusable: name -> writer ``(path, good) -> problem`` of such a file at
#: ``path``, made from a valid multi-coil file ``good`` (as ``write_raw_fastmri`` writes them) with one defect;
#: ``problem`` is exactly what the reader must say after the file's path.
BROKEN_FASTMRI: dict[str, Callable[[Path, Path], str]] = {
    "zero_byte": _rewritten(lambda data: b"", "empty file (0 bytes)"),
    "not_hdf5": _rewritten(lambda data: b"this is not HDF5\n", "not an HDF5 file (corrupt, or a different format)"),
    "truncated": _rewritten(lambda data: data[: len(data) // 2], "truncated HDF5 file ({size} of {total} bytes)"),
    "no_kspace": _spoiled(
        "kspace", lambda kspace: None, "not a fastMRI file: no 'kspace' dataset (keys: ismrmrd_header)"
    ),
    "wrong_rank": _spoiled("kspace", lambda kspace: kspace[:, 0], "'kspace' has shape {shape}; " + EXPECTED_4D),
    "wrong_dtype": _spoiled(
        "kspace", lambda kspace: np.abs(kspace).astype(np.int16), "'kspace' has dtype int16; expected complex"
    ),
    "real_valued": _spoiled(
        "kspace", lambda kspace: kspace.real, "'kspace' is real-valued (float32); expected complex k-space"
    ),
    "zero_coils": _spoiled("kspace", lambda kspace: kspace[:, :0], "'kspace' has no coils (shape {shape})"),
    "nan": _spoiled("kspace", _first_slice_with(np.nan), "'kspace' slice 0 contains NaN values"),
    "inf": _spoiled("kspace", _first_slice_with(np.inf), "'kspace' slice 0 contains Inf values"),
    "all_zero_slice": _spoiled("kspace", _first_slice_zero, "'kspace' slice 0 is all zeros (no signal)"),
    "bad_ismrmrd_header": _spoiled(
        "ismrmrd_header",
        lambda header: b"<ismrmrdHeader><enc",
        "'ismrmrd_header' is not an ISMRMRD header with a recon matrix size",
    ),
}


#: A small embedded dataset: 64 x 64 at 4 mm, 4 coils, 2 slices, 1 subject per split.
SMALL_SPEC = EmbeddedSpec(
    shape=(64, 64), pixel_mm=4.0, coil_counts=(4,), splits=(("train", 1, 2), ("val", 1, 2), ("test", 1, 2))
)


@pytest.fixture(scope="session")
def small_embedded(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("embedded") / "data"
    return build_embedded(root, SMALL_SPEC)


#: The shipped checkpoints' training setting (256 x 256 at the default pixel size) on few slices, 8 and
#: 12 coils: CI's drift run.
CI_SPEC = EmbeddedSpec(coil_counts=(8, 12), splits=(("train", 1, 2), ("val", 1, 2), ("test", 1, 2)))


@pytest.fixture(scope="session")
def ci_embedded(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("embedded-ci") / "data"
    return build_embedded(root, CI_SPEC)


def synthetic_scores(methods=("zero_filled", "cs_wavelet", "my_method"), images=5, seed=0):
    """A per-image metric table shaped like a run's ``metrics.csv``, with random values (LPIPS-VGG and
    DISTS unavailable), for testing tables without running methods."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    rows = [
        dict(
            method=method,
            mask=mask,
            contrast=contrast,
            file=f"f{contrast}.h5",
            slice=image,
            acceleration=32,
            psnr_paper=rng.normal(20, 3),
            ssim_paper=rng.uniform(0.3, 0.9),
            lpips_alex=rng.uniform(0.1, 0.5),
            stlpips_alex=rng.uniform(0.1, 0.5),
            lpips_vgg=np.nan,
            dists=np.nan,
            runtime_s=rng.uniform(0.01, 1),
            batch_size=8,
            peak_memory_bytes=0,
            device="cpu",
        )  # fmt: skip
        for method in methods
        for mask in ("cartesian_x", "cartesian_y", "gaussian_2d", "radial")
        for contrast in ("T1", "T2", "FLAIR")
        for image in range(images)
    ]
    return pd.DataFrame(rows)
