"""Convert real fastMRI multi-coil brain files into the benchmark's standard layout, at the scale of the brain set.

Each slice goes through the pipeline the loader applies (``read_slice``: crop the readout oversampling to the
recon size, centre-crop to the target size, optional SVD coil compression, ESPIRiT maps), without normalisation
(the loader normalises at read time); ESPIRiT runs once here instead of on every read.

Scaling out (written here: no library converts fastMRI files): each volume is validated just before it is
converted, written atomically straight to ``<root>/<split>/`` and recorded in its own fragment
(``benchmark.data.fragments``), so a kill, a bad file or a second process never costs converted volumes; a
rerun skips what is done. Volumes are spread over ``workers`` processes (one BLAS and torch thread each: the
bytes do not depend on the worker count) and, with ``shard = (i, n)`` or under ``torchrun``, over processes
that share the root; the manifest is assembled from the fragments when the whole list is done (one shard) or
by ``prepare --finalize``. ``on_error``: ``abort`` stops at the first bad volume (keeping the ones converted),
``skip`` converts the rest and lists each bad one with its reason in ``rejects.json``.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from threadpoolctl import threadpool_limits
from tqdm import tqdm

from benchmark.data.fastmri import (
    DEFAULT_OPTIONS,
    LoadOptions,
    VolumeInfo,
    crop_problem,
    open_fastmri,
    padded_kspace,
    read_slice,
    slice_problem,
    standardize_slice,
    write_volume,
)
from benchmark.data.fragments import (
    check_conversion_root,
    conversion_options,
    finalize,
    is_done,
    shard_of_environment,
    write_fragment,
    write_reject,
)
from benchmark.data.manifest import SPLITS, entry_for
from benchmark.data.noise import margin_noise_sigma, volume_noise_sigma
from benchmark.errors import BenchmarkError, DataError
from benchmark.physics.coils import reference_espirit_runs_on_gpu

ON_ERROR = ("abort", "skip")
#: The thread-count variables BLAS libraries read when they load (a spawned worker loads numpy afresh).
_THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


@dataclass(frozen=True)
class Conversion:
    """One ``prepare --from-fastmri``: which files go where, how, and what a bad file does."""

    sources: tuple[Path, ...]
    root: Path
    split: str = "test"
    options: LoadOptions = DEFAULT_OPTIONS
    workers: int = 1
    #: ``(i, n)``: convert every n-th source from the i-th (sorted by name); ``None``: torchrun's rank and world.
    shard: tuple[int, int] | None = None
    on_error: str = "abort"
    force: bool = False  # reconvert volumes already done
    pad: bool = False  # zero-pad an image smaller than ``options.size`` instead of rejecting it
    #: Where ESPIRiT runs: "auto" (a CUDA GPU when one is present), "cpu", "cuda" or "cuda:N".
    espirit_device: str = "auto"


@dataclass
class ConversionResult:
    converted: list[Path] = field(default_factory=list)
    skipped: int = 0  # already done with the same options and unchanged sources
    rejects: list[dict] = field(default_factory=list)
    manifest: Path | None = None  # written when this process converted the whole list


def convert_fastmri(conversion: Conversion) -> ConversionResult:
    """Convert this process's share of ``conversion.sources`` (see the module docstring)."""
    sources, index, count = _checked(conversion)
    conversion = replace(
        conversion, espirit_device=espirit_device(conversion.espirit_device, conversion.options.espirit)
    )
    root, split = Path(conversion.root), conversion.split
    check_conversion_root(root, {f"{split}/{source.name}" for source in sources})
    options = conversion_options(conversion.options, conversion.pad, conversion.espirit_device)
    mine = sources[index::count]
    todo = [source for source in mine if conversion.force or not is_done(root, split, source, options)]
    result = ConversionResult(skipped=len(mine) - len(todo))
    shard = f" (shard {index}/{count})" if count > 1 else ""
    with tqdm(total=len(todo), desc=f"convert fastMRI -> {split}{shard}", unit="volume") as bar:
        for source, written, problem in _converted(conversion, todo):
            bar.update()
            if written:
                result.converted.append(written)
            elif conversion.on_error == "skip":
                write_reject(root, split, source, problem)
                result.rejects.append({"source": str(source), "reason": problem})
            else:
                kept = len(result.converted) + result.skipped
                done = f"the {kept} volume(s) converted are kept, and a rerun skips them" if kept else "none converted"
                raise BenchmarkError(f"{problem}; stopped there ({done}; --on-error skip converts the rest)")
    if count == 1:
        result.manifest, result.rejects = finalize(root)
    return result


def _checked(conversion: Conversion) -> tuple[list[Path], int, int]:
    """The sources sorted by name, and this process's shard; one line for what is wrong."""
    if conversion.split not in SPLITS:
        raise BenchmarkError(f"unknown split {conversion.split!r}; known: {', '.join(SPLITS)}")
    if conversion.on_error not in ON_ERROR:
        raise BenchmarkError(f"--on-error must be one of {', '.join(ON_ERROR)}, got {conversion.on_error!r}")
    if not conversion.sources:
        raise BenchmarkError("no fastMRI .h5 files to convert")
    sources = sorted((Path(source) for source in conversion.sources), key=lambda path: path.name)
    names = [source.name for source in sources]
    if len(set(names)) < len(names):
        twice = sorted({name for name in names if names.count(name) > 1})
        raise BenchmarkError(f"two sources share the file name {twice[0]}; a split holds one file per name")
    index, count = conversion.shard or shard_of_environment()
    if not 0 <= index < count:
        raise BenchmarkError(f"--shard must be i/n with 0 <= i < n, got {index}/{count}")
    return sources, index, count


def _converted(conversion: Conversion, todo: list[Path]) -> Iterator[tuple[Path, Path | None, str]]:
    """``(source, written path or None, problem)`` per volume, as volumes finish; leaving early (abort) cancels
    the volumes not started, and the ones being converted finish and are recorded."""
    arguments = (conversion.root, conversion.split, conversion.options, conversion.pad, conversion.espirit_device)
    if conversion.workers == 1 or len(todo) <= 1:
        for source in todo:
            yield convert_volume(source, *arguments)
        return
    with (
        _blas_threads_for_spawned_workers(),
        ProcessPoolExecutor(
            min(conversion.workers, len(todo)), mp_context=multiprocessing.get_context("spawn")
        ) as pool,
    ):
        futures = [pool.submit(convert_volume, source, *arguments) for source in todo]
        try:
            for future in as_completed(futures):
                yield future.result()
        finally:
            for future in futures:
                future.cancel()


@contextmanager
def _blas_threads_for_spawned_workers() -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in _THREAD_VARIABLES}
    os.environ.update({name: "1" for name in _THREAD_VARIABLES})
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                del os.environ[name]
            else:
                os.environ[name] = value


@contextmanager
def _single_threaded() -> Iterator[None]:
    """One torch and one BLAS thread, in the main process and in every worker alike, so a file's bytes do not
    depend on how many workers converted the set."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with threadpool_limits(1):
            yield
    finally:
        torch.set_num_threads(threads)


def espirit_device(name: str, method: str = "fast") -> str:
    """The device ``name`` resolves to for ESPIRiT ``method``, or one line if it cannot run there. "auto": this
    rank's CUDA GPU (``LOCAL_RANK`` under torchrun) when one is present and the method can use it (the
    reference path needs CuPy there), else the CPU; "cuda" without an index: this rank's GPU too."""
    if name == "auto":
        usable = torch.cuda.is_available() and (method != "reference" or reference_espirit_runs_on_gpu())
        return _rank_gpu() if usable else "cpu"
    try:
        device = torch.device(name)
    except RuntimeError:
        raise BenchmarkError(f"--espirit-device {name!r} is not a device (auto, cpu, cuda or cuda:N)") from None
    if device.type not in ("cpu", "cuda"):
        raise BenchmarkError(f"--espirit-device {name}: ESPIRiT runs on cpu or cuda only")
    if device.type == "cpu":
        return name
    if not torch.cuda.is_available():
        raise BenchmarkError(f"--espirit-device {name}: no CUDA GPU is visible here (use cpu or auto)")
    if device.index is not None and device.index >= torch.cuda.device_count():
        raise BenchmarkError(f"--espirit-device {name}: only {torch.cuda.device_count()} CUDA GPU(s) are visible")
    if method == "reference" and not reference_espirit_runs_on_gpu():
        raise BenchmarkError(f"--espirit-device {name} --espirit reference: sigpy needs CuPy on a GPU (not "
                             "installed); the fast ESPIRiT runs there through torch")  # fmt: skip
    return name if device.index is not None else _rank_gpu()


def _rank_gpu() -> str:
    """This process's CUDA device: ``cuda:LOCAL_RANK`` under torchrun (modulo the GPUs it sees), else GPU 0."""
    return f"cuda:{int(os.environ.get('LOCAL_RANK') or 0) % torch.cuda.device_count()}"


def convert_volume(
    source: Path, root: Path, split: str, options: LoadOptions, pad: bool, device: str = "cpu"
) -> tuple[Path, Path | None, str]:
    """Validate, convert and write one volume, then its fragment: ``(source, written path, "")``, or
    ``(source, None, problem)`` for a file that cannot be used (returned, not raised, across processes)."""
    try:
        with _single_threaded():
            info, noise_sigma, padded = _validate_fully(source, options.size, pad)
            kspace, maps = _standard_volume(info, options, padded, device)
            path = Path(root) / split / source.name
            write_volume(path, kspace, maps, info.acquisition, info.patient_id)
    except DataError as error:
        return source, None, str(error)
    entry = entry_for(Path(root), path, split, info.contrast, info.patient_id, info.num_slices, noise_sigma)
    write_fragment(Path(root), split, entry, source, conversion_options(options, pad, device), padded)
    return source, path, ""


def _standard_volume(
    info: VolumeInfo, options: LoadOptions, padded: bool, device: str
) -> tuple[np.ndarray, np.ndarray]:
    """Every slice's k-space and maps at ``options.size`` (un-normalised), as the loader reads them."""
    raw_options = replace(options, normalization="none")
    slices = []
    for index in range(info.num_slices):
        if padded:
            with open_fastmri(info.path) as (handle, _):
                kspace = torch.from_numpy(handle["kspace"][index].astype(np.complex64))
            geometry = replace(info, kspace_shape=options.size, recon_size=options.size)
            slices.append(standardize_slice(geometry, index, padded_kspace(info, kspace, options.size), None,
                                            raw_options, device))  # fmt: skip
        else:
            slices.append(read_slice(info.path, index, raw_options, device))
    return torch.stack([s.kspace for s in slices]).numpy(), torch.stack([s.maps for s in slices]).numpy()


def _validate_fully(path: Path, size: tuple[int, int], pad: bool) -> tuple[VolumeInfo, float | None, bool]:
    """Open the file and read every slice once, so a file too small for ``size`` (unless ``pad``: then it is
    padded, the third value), NaN/Inf, empty slices or truncation fail before its write; on the way, estimate its
    k-space noise level from the readout margins (``benchmark.data.noise``; the manifest's ``noise_sigma``)."""
    slice_sigmas = []
    with open_fastmri(path) as (handle, info):
        problem = crop_problem(info, size)
        if problem and not pad:
            raise DataError(path, f"{problem}; --pad zero-pads it")
        for index in range(info.num_slices):
            try:
                kspace = handle["kspace"][index]
            except (OSError, RuntimeError):
                raise DataError(path, f"slice {index} unreadable, truncated or corrupt") from None
            if problem_of_slice := slice_problem(kspace, index):
                raise DataError(path, problem_of_slice)
            slice_sigmas.append(margin_noise_sigma(kspace, info.recon_size[0]))
    return info, volume_noise_sigma(slice_sigmas), bool(problem)
