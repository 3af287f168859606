"""Read and write multi-coil k-space in the fastMRI ``.h5`` layout, validated, one slice at a time.

Layout (fastMRI brain, multi-coil): dataset ``kspace`` ``(slices, coils, rows, cols)`` complex64 with
rows the (possibly 2x oversampled) readout; ``reconstruction_rss`` ``(slices, h, w)``; attributes
``acquisition`` (AXT1, AXT2, AXFLAIR, ...), ``max``, ``norm``, ``patient_id``; ``ismrmrd_header`` XML
with the encoded and recon matrix sizes. Files we write add ``sensitivity_maps`` ``(coils, H, W)``.

Every slice goes through one pipeline, for real fastMRI files and the embedded dataset alike:
k-space -> coil images -> centre crop to the header's recon size (removes readout oversampling) ->
centre crop to the benchmark size (256 x 256) -> optional SVD coil compression -> k-space again;
sensitivities from the file or ESPIRiT; target = SENSE coil-combined image (default) or RSS. The
reader applies only the ``slice_max`` normalisation (the paper authors' pipeline, which needs the
target); the default ``measured`` normalisation needs the sampling mask and is applied where the mask
is known (runner and training loop, ``benchmark.data.normalization``). The options are a frozen
dataclass recorded with every run.

Any problem with a file raises ``DataError`` naming the file and the problem in one line.
"""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import h5py
import numpy as np
import torch

from benchmark.data.normalization import NORMALIZATIONS
from benchmark.errors import DataError, InputError
from benchmark.io import atomic_path
from benchmark.physics import coil_compress, espirit_maps, fft2c, ifft2c, rss, sense_combine
from benchmark.physics.coils import ESPIRIT_KERNEL_WIDTH, ESPIRIT_METHODS
from benchmark.physics.fft import numpy_ifft2c

ISMRMRD_NAMESPACE = "http://www.ismrm.org/ISMRMRD"
MAPS_KEY = "sensitivity_maps"
#: fastMRI acquisition attribute -> benchmark contrast name.
ACQUISITION_CONTRAST = {"AXT1": "T1", "AXT1PRE": "T1", "AXT1POST": "T1", "AXT2": "T2", "AXFLAIR": "FLAIR"}
#: The most one slice of k-space may declare (a fastMRI brain slice, 20 coils x 640 x 396 complex64, is ~40 MB).
MAX_SLICE_BYTES = 2**31
#: What each axis of ``kspace`` holds, for messages about an empty one.
KSPACE_AXES = ("slices", "coils", "rows", "columns")


@dataclass(frozen=True)
class LoadOptions:
    """How raw k-space becomes a benchmark slice; stored in every run's metadata."""

    size: tuple[int, int] = (256, 256)
    target: Literal["sense", "rss"] = "sense"
    normalization: Literal["measured", "slice_max", "none"] = "measured"
    num_virtual_coils: int | None = None
    espirit_calib_width: int = 24
    #: ESPIRiT implementation for files without stored maps: "fast" (default) or sigpy's "reference".
    espirit: Literal["fast", "reference"] = "fast"

    def __post_init__(self) -> None:
        if self.target not in ("sense", "rss"):
            raise ValueError(f"target must be 'sense' or 'rss', got {self.target!r}")
        if self.normalization not in NORMALIZATIONS:
            known = ", ".join(NORMALIZATIONS)
            raise ValueError(f"normalization must be one of {known}, got {self.normalization!r}")
        if self.espirit not in ESPIRIT_METHODS:
            raise InputError(f"espirit must be one of {', '.join(ESPIRIT_METHODS)}, got {self.espirit!r}")
        if self.espirit_calib_width < ESPIRIT_KERNEL_WIDTH:
            width = self.espirit_calib_width
            raise InputError(f"espirit_calib_width must be >= {ESPIRIT_KERNEL_WIDTH} (ESPIRiT's kernel), got {width}")

    def as_record(self) -> dict:
        return asdict(self)


#: The default pipeline (frozen, so safe to share as a default argument).
DEFAULT_OPTIONS = LoadOptions()


@dataclass(frozen=True)
class VolumeInfo:
    """What a validated file holds, read without loading its k-space."""

    path: Path
    num_slices: int
    num_coils: int
    kspace_shape: tuple[int, int]
    recon_size: tuple[int, int]
    acquisition: str
    patient_id: str
    has_maps: bool

    @property
    def contrast(self) -> str:
        return ACQUISITION_CONTRAST.get(self.acquisition, self.acquisition)


@dataclass
class MRSlice:
    """One benchmark slice: k-space, maps, target, and where it came from (``slice_max``: divided by ``scale``)."""

    kspace: torch.Tensor  # (C, H, W) complex64, fully sampled, divided by ``scale``
    maps: torch.Tensor  # (C, H, W) complex64
    target: torch.Tensor  # (H, W) float32 magnitude, divided by ``scale``
    target_complex: torch.Tensor  # (H, W) complex64 (for RSS targets: the magnitude, zero phase)
    scale: float
    file: str
    slice_index: int
    contrast: str
    patient_id: str


@contextmanager
def open_fastmri(path: str | Path) -> Iterator[tuple[h5py.File, VolumeInfo]]:
    """Open and validate a fastMRI-layout file; yields the open file and its ``VolumeInfo``."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "no such file")
    if path.stat().st_size == 0:
        raise DataError(path, "empty file (0 bytes)")
    if not h5py.is_hdf5(path):
        raise DataError(path, "not an HDF5 file (corrupt, or a different format)")
    try:
        handle = h5py.File(path, "r")
    except OSError as error:
        raise DataError(path, _open_problem(error)) from None
    with handle:
        yield handle, _volume_info(path, handle)


def _volume_info(path: Path, handle: h5py.File) -> VolumeInfo:
    try:
        if "kspace" not in handle:
            keys = ", ".join(sorted(handle.keys())) or "none"
            raise DataError(path, f"not a fastMRI file: no 'kspace' dataset (keys: {keys})")
        kspace = handle["kspace"]
        if not isinstance(kspace, h5py.Dataset) or kspace.ndim != 4:
            shape = getattr(kspace, "shape", "a group")
            expected = "expected multi-coil (slices, coils, rows, cols)"
            raise DataError(path, f"'kspace' has shape {shape}; {expected}")
        if np.issubdtype(kspace.dtype, np.floating):
            raise DataError(path, f"'kspace' is real-valued ({kspace.dtype}); expected complex k-space")
        if not np.issubdtype(kspace.dtype, np.complexfloating):
            raise DataError(path, f"'kspace' has dtype {kspace.dtype}; expected complex")
        if min(kspace.shape) == 0:
            raise DataError(path, f"'kspace' has no {KSPACE_AXES[kspace.shape.index(0)]} (shape {kspace.shape})")
        if problem := _size_problem(kspace):
            raise DataError(path, problem)
        recon_size = _recon_size(path, handle, kspace.shape[-2:])
        has_maps = MAPS_KEY in handle
        if has_maps and handle[MAPS_KEY].shape[-3:] != kspace.shape[1:]:
            raise DataError(path, f"'{MAPS_KEY}' shape {handle[MAPS_KEY].shape} does not match kspace {kspace.shape}")
        return VolumeInfo(
            path=path,
            num_slices=kspace.shape[0],
            num_coils=kspace.shape[1],
            kspace_shape=tuple(kspace.shape[-2:]),
            recon_size=recon_size,
            acquisition=str(handle.attrs.get("acquisition", "unknown")),
            patient_id=str(handle.attrs.get("patient_id", path.stem)),
            has_maps=has_maps,
        )
    except (OSError, KeyError, RuntimeError) as error:
        raise DataError(path, f"unreadable, truncated or corrupt ({_first_line(error)})") from None


def _size_problem(kspace: h5py.Dataset) -> str:
    """Empty when the bytes ``kspace`` declares are plausible: at most ``MAX_SLICE_BYTES`` per slice, and (for
    uncompressed data, as fastMRI stores it) no more than the file actually holds, so a forged or truncated
    header cannot make the reader allocate terabytes."""
    slice_bytes = math.prod(kspace.shape[1:]) * kspace.dtype.itemsize
    if slice_bytes > MAX_SLICE_BYTES:
        limit = _bytes_text(MAX_SLICE_BYTES)
        return (
            f"'kspace' declares {_bytes_text(slice_bytes)} per slice (shape {kspace.shape}), over the {limit} allowed"
        )
    stored = kspace.id.get_storage_size()
    if kspace.compression is None and stored < kspace.size * kspace.dtype.itemsize:
        declared = _bytes_text(kspace.size * kspace.dtype.itemsize)
        return f"'kspace' declares {declared} (shape {kspace.shape}) but the file stores {_bytes_text(stored)} of it"
    return ""


def _bytes_text(count: int) -> str:
    for unit, size in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if count >= size:
            return f"{count / size:.1f} {unit}"
    return f"{count} bytes"


def _recon_size(path: Path, handle: h5py.File, kspace_size: tuple[int, int]) -> tuple[int, int]:
    """The recon matrix (rows, cols) from ``ismrmrd_header``; the k-space size when there is no header."""
    if "ismrmrd_header" not in handle:
        return tuple(int(n) for n in kspace_size)
    raw = handle["ismrmrd_header"][()]
    try:
        root = ET.fromstring(raw.decode() if isinstance(raw, bytes) else str(raw))
        ns = {"m": ISMRMRD_NAMESPACE}
        matrix = root.find("m:encoding/m:reconSpace/m:matrixSize", ns)
        size = (int(matrix.find("m:x", ns).text), int(matrix.find("m:y", ns).text))
    except (ET.ParseError, AttributeError, TypeError, ValueError):
        raise DataError(path, "'ismrmrd_header' is not an ISMRMRD header with a recon matrix size") from None
    return size


def read_slice(
    path: str | Path, slice_index: int, options: LoadOptions = DEFAULT_OPTIONS, maps_device: str = "cpu"
) -> MRSlice:
    """Load, validate and standardise one slice of a fastMRI-layout file (``maps_device``: where ESPIRiT runs
    for a file without stored maps)."""
    with open_fastmri(path) as (handle, info):
        if not 0 <= slice_index < info.num_slices:
            raise DataError(info.path, f"slice {slice_index} out of range (file has {info.num_slices})")
        try:
            kspace = handle["kspace"][slice_index]
            stored_maps = _stored_maps(handle, slice_index) if info.has_maps else None
        except (OSError, RuntimeError) as error:
            problem = f"slice {slice_index} unreadable, truncated or corrupt ({_first_line(error)})"
            raise DataError(info.path, problem) from None
    if problem := slice_problem(kspace, slice_index):
        raise DataError(info.path, problem)
    if stored_maps is not None and not np.isfinite(stored_maps).all():
        raise DataError(info.path, f"'{MAPS_KEY}' hold NaN or Inf values: the data is broken, not the method")
    kspace_CHW = torch.from_numpy(kspace.astype(np.complex64))
    return standardize_slice(info, slice_index, kspace_CHW, stored_maps, options, maps_device)


def slice_problem(kspace: np.ndarray, slice_index: int) -> str:
    """Empty when a slice of k-space is usable; otherwise what is wrong: NaN or Inf values, or no signal at all."""
    if not np.isfinite(kspace).all():
        found = [name for name, test in (("NaN", np.isnan), ("Inf", np.isinf)) if test(kspace).any()]
        return f"'kspace' slice {slice_index} contains {' and '.join(found)} values"
    if not kspace.any():
        return f"'kspace' slice {slice_index} is all zeros (no signal)"
    return ""


def _stored_maps(handle: h5py.File, slice_index: int) -> np.ndarray:
    """Maps for one slice: ``(C, H, W)`` shared by the volume, or row ``slice_index`` of ``(S, C, H, W)``."""
    maps = handle[MAPS_KEY]
    return maps[slice_index] if maps.ndim == 4 else maps[()]


def standardize_slice(
    info: VolumeInfo,
    slice_index: int,
    kspace_CHW: torch.Tensor,
    stored_maps: np.ndarray | None,
    options: LoadOptions,
    maps_device: str = "cpu",
) -> MRSlice:
    """Crop, compress, estimate maps, form the target and normalise one slice (see module docstring)."""
    kspace_CHW = _crop_kspace(info, kspace_CHW, options.size)
    maps_CHW = None
    if stored_maps is not None and options.num_virtual_coils is None:
        maps_CHW = torch.from_numpy(np.asarray(stored_maps, dtype=np.complex64))
        if tuple(maps_CHW.shape[-2:]) != tuple(options.size):
            maps_CHW = None  # maps for another geometry: re-estimate below
    if options.num_virtual_coils is not None:
        kspace_CHW = coil_compress(kspace_CHW, options.num_virtual_coils)
    if maps_CHW is None:
        maps_CHW = _estimated_maps(info, slice_index, kspace_CHW, options, maps_device)
    coil_images = ifft2c(kspace_CHW)
    if options.target == "sense":
        target_complex = sense_combine(coil_images, maps_CHW)
    else:
        target_complex = rss(coil_images).to(torch.complex64)
    scale = 1.0
    if options.normalization == "slice_max":
        peak = float(target_complex.abs().max())
        if peak == 0.0:
            raise DataError(info.path, f"slice {slice_index} has an all-zero target; cannot normalise")
        scale = peak
    return MRSlice(
        kspace=kspace_CHW / scale,
        maps=maps_CHW,
        target=(target_complex.abs() / scale).to(torch.float32),
        target_complex=target_complex / scale,
        scale=scale,
        file=info.path.name,
        slice_index=slice_index,
        contrast=info.contrast,
        patient_id=info.patient_id,
    )


def _estimated_maps(
    info: VolumeInfo, slice_index: int, kspace_CHW: torch.Tensor, options: LoadOptions, device: str
) -> torch.Tensor:
    """ESPIRiT maps; refused when not finite (0 / 0 inside ESPIRiT, e.g. too little signal to calibrate from)."""
    width, method = options.espirit_calib_width, options.espirit
    with np.errstate(divide="ignore", invalid="ignore"):  # checked below instead of warned about per pixel
        maps_CHW = espirit_maps(kspace_CHW, calib_width=width, method=method, device=device)
    if not torch.isfinite(maps_CHW).all():
        problem = f"slice {slice_index}: ESPIRiT cannot estimate coil sensitivities from it (its maps are not finite)"
        raise DataError(info.path, problem)
    return maps_CHW


def _crop_kspace(info: VolumeInfo, kspace_CHW: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Centre-crop in image space to the recon size, then to ``size``; k-space of ``size`` returned."""
    if tuple(kspace_CHW.shape[-2:]) == tuple(size) == tuple(info.recon_size):
        return kspace_CHW  # already standard: skip the FFT round trip (exact, no rounding)
    if problem := crop_problem(info, size):
        raise DataError(info.path, problem)
    images = ifft2c(kspace_CHW)
    for crop in (info.recon_size, size):
        images = center_crop(images, crop)
    return fft2c(images)


def crop_problem(info: VolumeInfo, size: tuple[int, int]) -> str:
    """Empty when the file's images crop to its recon size and then to ``size``; otherwise which crop cannot."""
    image = info.kspace_shape
    for crop in (info.recon_size, size):
        if image[0] < crop[0] or image[1] < crop[1]:
            return f"image {tuple(image)} is smaller than the crop {tuple(crop)}"
        image = crop
    return ""


def padded_kspace(info: VolumeInfo, kspace_CHW: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """k-space of ``size`` for an image smaller than ``size``: cropped to its recon size and to ``size`` as far as
    each reaches, then zero-padded to ``size`` in image space (``prepare --pad``)."""
    images = ifft2c(kspace_CHW)
    for crop in (info.recon_size, size):
        images = center_crop(images, (min(crop[0], images.shape[-2]), min(crop[1], images.shape[-1])))
    return fft2c(center_pad(images, size))


def center_pad(tensor: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Zero-pad the last two axes to ``size``, the element at ``n // 2`` landing at ``N // 2``: ``center_crop``
    back to the original shape returns ``tensor``."""
    padded = tensor.new_zeros((*tensor.shape[:-2], *size))
    top, left = size[0] // 2 - tensor.shape[-2] // 2, size[1] // 2 - tensor.shape[-1] // 2
    padded[..., top : top + tensor.shape[-2], left : left + tensor.shape[-1]] = tensor
    return padded


def center_crop(tensor: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Centre crop over the last two axes, keeping the element at ``N // 2`` at ``n // 2``."""
    top = tensor.shape[-2] // 2 - size[0] // 2
    left = tensor.shape[-1] // 2 - size[1] // 2
    return tensor[..., top : top + size[0], left : left + size[1]]


def ismrmrd_header(encoded: tuple[int, int], recon: tuple[int, int]) -> bytes:
    """A minimal ISMRMRD XML header with encoded/recon matrix sizes and phase-encode limits."""
    root = ET.Element("ismrmrdHeader", xmlns=ISMRMRD_NAMESPACE)
    encoding = ET.SubElement(root, "encoding")
    for tag, (x, y) in (("encodedSpace", encoded), ("reconSpace", recon)):
        matrix = ET.SubElement(ET.SubElement(encoding, tag), "matrixSize")
        for axis, value in (("x", x), ("y", y), ("z", 1)):
            ET.SubElement(matrix, axis).text = str(value)
    step = ET.SubElement(ET.SubElement(encoding, "encodingLimits"), "kspace_encoding_step_1")
    for tag, value in (("minimum", 0), ("maximum", encoded[1] - 1), ("center", encoded[1] // 2)):
        ET.SubElement(step, tag).text = str(value)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


def write_volume(
    path: str | Path,
    kspace_SCHW: np.ndarray,
    maps_CHW: np.ndarray,
    acquisition: str,
    patient_id: str,
    extra_attrs: dict[str, float] | None = None,
) -> None:
    """Write one volume atomically in the fastMRI multi-coil layout plus ``sensitivity_maps``.

    ``reconstruction_rss``, ``max`` and ``norm`` are computed from the k-space as fastMRI defines them
    (RSS of the coil images; volume maximum; Frobenius norm of the RSS volume). ``extra_attrs`` are written
    after those (e.g. the simulated k-space noise level).
    """
    # numpy float64, rounded once: the bytes must not depend on the torch build's FFT.
    coil_images = numpy_ifft2c(kspace_SCHW.astype(np.complex64).astype(np.complex128))
    recon = np.sqrt((coil_images.real**2 + coil_images.imag**2).sum(axis=1)).astype(np.float32)
    size = tuple(kspace_SCHW.shape[-2:])
    with atomic_path(path) as tmp, h5py.File(tmp, "w", track_order=True) as handle:
        # track_times=False keeps the bytes, and so the manifest's sha256, reproducible.
        handle.create_dataset("kspace", data=kspace_SCHW.astype(np.complex64), track_times=False)
        handle.create_dataset("reconstruction_rss", data=recon, track_times=False)
        handle.create_dataset(MAPS_KEY, data=maps_CHW.astype(np.complex64), track_times=False)
        handle.create_dataset("ismrmrd_header", data=ismrmrd_header(size, size), track_times=False)
        handle.attrs["acquisition"] = acquisition
        handle.attrs["patient_id"] = patient_id
        handle.attrs["max"] = float(recon.max())
        # Not np.linalg.norm: BLAS kernels (chosen per CPU) round it differently; fsum is exact everywhere.
        handle.attrs["norm"] = math.sqrt(math.fsum(np.square(recon, dtype=np.float64).ravel().tolist()))
        for key, value in (extra_attrs or {}).items():
            handle.attrs[key] = value


def _open_problem(error: OSError) -> str:
    """Why h5py cannot open a file with an HDF5 signature; a truncated file says how much of it is left."""
    sizes = re.search(r"truncated file: eof = (\d+).*stored_eof = (\d+)", str(error))
    if sizes:
        return f"truncated HDF5 file ({sizes[1]} of {sizes[2]} bytes)"
    return f"cannot be opened as HDF5, truncated or corrupt ({_first_line(error)})"


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__
