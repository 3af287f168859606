"""``python -m benchmark perf``: every method's inference cost, measured the same way.

Protocol. The input is the first test volume of ``--data`` under an R = 32 radial mask, each slice's k-space
divided by the volume's measured scale (as a run does); a batch of B images holds its slices, repeated to B.
Per (method, batch size): ``warmup`` untimed ``reconstruct`` calls (allocations, kernel selection), then
``repeats`` timed calls through the runner's ``Timer`` (CUDA events with synchronisation on a GPU,
``perf_counter`` on a CPU). Reported per image: the median and the min/max over repeats; images/s at that
batch; peak GPU memory (``torch.cuda.max_memory_allocated``; not measured on a CPU); parameters; floating-point
operations per image counted by ``torch.utils.flop_counter.FlopCounterMode`` on one batch-1 call (matrix
products, convolutions and attention; FFTs, element-wise work and numpy code such as sigpy's are not counted,
so a method's count is a lower bound and 0 for cs_wavelet); and the achieved fraction of a peak this command
measures itself (the median FLOP/s of a 2048² float32 matmul on the same device), not a datasheet's.

``--profile tiny`` times the shipped checkpoints. ``--profile paper`` times random weights of the paper's sizes
(the output says so): no method here stops early, so its cost does not depend on the weights' values. A method
whose paper profile is built on an earlier stage's checkpoint (NASP, MDPG) cannot be assembled without it and
is refused with one line. ``methods.nasp.size`` counts NASP's paper-profile parameters and FLOPs on random
weights without checkpoints.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch
from torch.utils.flop_counter import FlopCounterMode

from benchmark.data import LoadOptions, dataset_files
from benchmark.data.normalization import measured_volume_scale
from benchmark.errors import BenchmarkError
from benchmark.io import atomic_path
from benchmark.method import LearnedMethod, Method, ReconBatch
from benchmark.registry import check_method_name, get_method_class
from benchmark.runner.environment import Timer, device_name
from benchmark.runner.units import Unit, load_volume, volume_masks

PERF_ACCELERATION = 32
PERF_MASK = "radial"


@dataclass(frozen=True)
class PerfRequest:
    methods: tuple[str, ...]
    data: Path
    out: Path
    profile: str = "tiny"
    batches: tuple[int, ...] = (1, 8)
    device: torch.device = torch.device("cpu")
    repeats: int = 5
    warmup: int = 1
    size: tuple[int, int] = (256, 256)


def parameter_count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def count_flops(function, *args) -> int:
    """Floating-point operations of one call of ``function(*args)`` (a multiply-add counts 2)."""
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        function(*args)
    return counter.get_total_flops()


def measured_peak_flops(device: torch.device, size: int = 2048, repeats: int = 5) -> float:
    """FLOP/s of a ``size``² float32 matmul on ``device`` (median of ``repeats``, after one warm-up)."""
    a, b = (torch.randn(size, size, device=device) for _ in range(2))
    torch.mm(a, b)  # warm-up
    times = []
    for _ in range(repeats):
        with Timer(device) as timer:
            torch.mm(a, b)
        times.append(timer.seconds)
    return 2 * size**3 / statistics.median(times)


def build_for_timing(name: str, profile: str, device: torch.device) -> tuple[Method, str]:
    """The method and what its weights are: the shipped checkpoint (tiny) or random (paper)."""
    cls = get_method_class(name)
    if not issubclass(cls, LearnedMethod) or profile == "tiny":
        method = cls(profile, device)
        return method, f"shipped {method.checkpoint}" if getattr(method, "checkpoint", None) else "none (classical)"
    try:
        method = cls(profile, device, for_training=True)
    except BenchmarkError as error:  # built on an earlier stage's checkpoint, which is not there
        raise BenchmarkError(f"{name}: cannot assemble the {profile} profile on random weights: {error}") from None
    method.train_mode(False)
    return method, "random (timing only)"


def perf_batch(volume: dict, batch_size: int, device: torch.device) -> ReconBatch:
    """``batch_size`` slices of the volume (repeated as needed) under the perf mask, measured-scale normalised."""
    num_slices, shape = volume["kspace"].shape[0], tuple(volume["kspace"].shape[-2:])
    unit = Unit("perf", PERF_MASK, Path(volume["file"]), "")
    masks = volume_masks(unit, num_slices, shape, PERF_ACCELERATION)
    measured = volume["kspace"] * masks[:, None]
    scale = measured_volume_scale(measured, volume["maps"], masks)
    take = torch.arange(batch_size) % num_slices
    return ReconBatch(measured[take] / scale, masks[take], volume["maps"][take], PERF_MASK, PERF_ACCELERATION).to(
        device
    )


def time_method(method: Method, batch: ReconBatch, repeats: int, warmup: int) -> list[float]:
    """Seconds per image of ``repeats`` timed ``reconstruct`` calls after ``warmup`` untimed ones."""
    images = batch.mask.shape[0]
    with torch.no_grad():
        for _ in range(warmup):
            method.reconstruct(batch)
        seconds = []
        for _ in range(repeats):
            with Timer(method.device) as timer:
                method.reconstruct(batch)
            seconds.append(timer.seconds / images)
    return seconds


def run_perf(request: PerfRequest) -> pd.DataFrame:
    """The tidy perf table (one row per method and batch size), also written to ``request.out``."""
    for name in request.methods:
        check_method_name(name)
    if min(request.batches) < 1 or request.repeats < 1 or request.warmup < 0:
        raise BenchmarkError("--batch values and --repeats must be >= 1 and --warmup >= 0")
    files = dataset_files(request.data, "test", ("T1", "T2", "FLAIR"))
    if not files:
        raise BenchmarkError(f"no test volumes in {request.data}")
    volume = load_volume(files[0], LoadOptions(size=request.size)) | {"file": files[0].name}
    peak = measured_peak_flops(request.device)
    rows = []
    for name in request.methods:
        method, weights = build_for_timing(name, request.profile, request.device)
        network = getattr(method, "model", None)
        flops = count_flops(method.reconstruct, perf_batch(volume, 1, request.device))
        for batch_size in request.batches:
            batch = perf_batch(volume, batch_size, request.device)
            if request.device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(request.device)
            seconds = time_method(method, batch, request.repeats, request.warmup)
            median = statistics.median(seconds)
            memory = torch.cuda.max_memory_allocated(request.device) if request.device.type == "cuda" else float("nan")
            rows.append(
                dict(method=name, profile=request.profile, weights=weights, device=device_name(request.device),
                     batch=batch_size, s_per_image=median, s_per_image_min=min(seconds),
                     s_per_image_max=max(seconds), images_per_s=1 / median, peak_memory_bytes=memory,
                     parameters=parameter_count(network) if network is not None else 0, flops_per_image=flops,
                     measured_peak_flops=peak, fraction_of_peak=flops / median / peak,
                     repeats=request.repeats, warmup=request.warmup)
            )  # fmt: skip
    table = pd.DataFrame(rows)
    with atomic_path(request.out) as tmp:
        table.to_csv(tmp, index=False)
    return table
