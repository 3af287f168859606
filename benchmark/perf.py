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
trained in stages (NASP, MDPG) is built for this without its earlier stages' checkpoints (``for_timing``: no
parents, random weights throughout).

``--switches [NAMES]`` times, for a method with speed switches (``Method.speed_switches``; NASP: KV cache,
fused attention, bf16 autocast, ``torch.compile``), the defaults and then each named switch (all, without
names) flipped alone, side by side in one run. Each row records the largest change of the batch-1 output's
magnitude relative to the defaults' maximum (0: the switch computes the same image). FLOPs are counted eagerly
(the compiled graph does the same work). ``--with-scoring`` adds the scoring paths (``benchmark.perf_scoring``).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch
from torch.utils.flop_counter import FlopCounterMode

from benchmark.acquisition import acquire, volume_masks
from benchmark.data import LoadOptions, dataset_files
from benchmark.data.anatomy import CONTRASTS
from benchmark.errors import BenchmarkError
from benchmark.io import atomic_path
from benchmark.method import LearnedMethod, Method, ReconBatch
from benchmark.perf_scoring import scoring_rows
from benchmark.registry import check_method_name, get_method_class
from benchmark.runner.environment import Timer, device_name
from benchmark.runner.units import load_volume

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
    switches: tuple[str, ...] = ()  # speed switches to time flipped alone, each method's that it has; "all"
    time_scoring: bool = False  # also time the scoring paths (``benchmark.perf_scoring``)


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
    return cls.for_timing(profile, device), "random (timing only)"


def perf_batch(volume: dict, batch_size: int, device: torch.device) -> ReconBatch:
    """``batch_size`` slices of the volume (repeated as needed) under the perf mask, measured-scale normalised."""
    num_slices, shape = volume["kspace"].shape[0], tuple(volume["kspace"].shape[-2:])
    masks = volume_masks(PERF_MASK, Path(volume["file"]).name, num_slices, shape, PERF_ACCELERATION)
    acquisition = acquire(volume["kspace"], volume["maps"], masks, PERF_MASK, PERF_ACCELERATION, "volume")
    return acquisition.batch.select(torch.arange(batch_size) % num_slices).to(device)


def scoring_images(volume: dict, batch_size: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Zero-filled and target magnitudes ``(B, H, W)`` of the perf batch: what the scoring paths are timed on."""
    batch = perf_batch(volume, batch_size, device)
    take = torch.arange(batch_size) % volume["target"].shape[0]
    return batch.operator().adjoint(batch.kspace).abs(), volume["target"][take].to(device)


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


def switch_settings(method: Method, flip: tuple[str, ...]) -> list[tuple[str, dict[str, bool]]]:
    """``(label, switches)``: the defaults, then each of the method's switches named in ``flip`` (or all of
    them for ``"all"``) flipped alone."""
    settings = [("default", dict(method.speed_switches))]
    for name, default in method.speed_switches.items():
        if name in flip or "all" in flip:
            settings.append((f"{name}={'off' if default else 'on'}", method.speed_switches | {name: not default}))
    return settings


def method_rows(request: PerfRequest, name: str, volume: dict, peak: float) -> list[dict]:
    """One row per (switch setting, batch size) of one method."""
    method, weights = build_for_timing(name, request.profile, request.device)
    network = getattr(method, "model", None)
    probe = perf_batch(volume, 1, request.device)
    rows, reference = [], None
    for label, switches in switch_settings(method, request.switches):
        method.set_speed_switches(**(switches | dict.fromkeys(method.eager_only_switches, False)))
        flops = count_flops(method.reconstruct, probe)  # counted eagerly: the compiled graph does the same work
        method.set_speed_switches(**switches)
        with torch.no_grad():
            output = method.reconstruct(probe).abs().float()
        reference = output if reference is None else reference
        difference = ((output - reference).abs().max() / reference.abs().max()).item()
        for batch_size in request.batches:
            batch = perf_batch(volume, batch_size, request.device)
            if request.device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(request.device)
            seconds = time_method(method, batch, request.repeats, request.warmup)
            median = statistics.median(seconds)
            memory = torch.cuda.max_memory_allocated(request.device) if request.device.type == "cuda" else float("nan")
            rows.append(
                dict(method=name, setting=label, switches=_switch_text(switches), profile=request.profile,
                     weights=weights, device=device_name(request.device), batch=batch_size, s_per_image=median,
                     s_per_image_min=min(seconds), s_per_image_max=max(seconds), images_per_s=1 / median,
                     peak_memory_bytes=memory, parameters=parameter_count(network) if network is not None else 0,
                     flops_per_image=flops, measured_peak_flops=peak, fraction_of_peak=flops / median / peak,
                     max_rel_difference=difference, repeats=request.repeats, warmup=request.warmup)
            )  # fmt: skip
    return rows


def _switch_text(switches: dict[str, bool]) -> str:
    return ",".join(f"{name}={int(on)}" for name, on in switches.items()) or "none"


def run_perf(request: PerfRequest) -> pd.DataFrame:
    """The tidy perf table (one row per method, switch setting and batch size; with ``request.time_scoring``
    also the scoring paths'), also written to ``request.out``."""
    for name in request.methods:
        check_method_name(name)
    if min(request.batches) < 1 or request.repeats < 1 or request.warmup < 0:
        raise BenchmarkError("--batch values and --repeats must be >= 1 and --warmup >= 0")
    known = {name for method in request.methods for name in get_method_class(method).speed_switches}
    unknown = sorted(set(request.switches) - known - {"all"})
    if unknown:
        raise BenchmarkError(f"--switches {','.join(unknown)}: no such switch in {', '.join(request.methods)} "
                             f"(known: {', '.join(sorted(known)) or 'none'})")  # fmt: skip
    files = dataset_files(request.data, "test", CONTRASTS)
    if not files:
        raise BenchmarkError(f"no test volumes in {request.data}")
    volume = load_volume(files[0], LoadOptions(size=request.size)) | {"file": files[0].name}
    peak = measured_peak_flops(request.device)
    rows = [row for name in request.methods for row in method_rows(request, name, volume, peak)]
    for batch_size in request.batches if request.time_scoring else ():
        recon, target = scoring_images(volume, batch_size, request.device)
        rows += scoring_rows(recon, target, request.repeats, request.warmup)
    table = pd.DataFrame(rows)
    with atomic_path(request.out) as tmp:
        table.to_csv(tmp, index=False)
    return table
