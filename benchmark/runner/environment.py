"""Facts about where a run happened: library versions, git commit, device; and a device-aware timer."""

from __future__ import annotations

import platform
import subprocess
import time
from importlib import metadata

import torch

LIBRARIES = (
    "torch", "torchvision", "numpy", "scipy", "h5py", "sigpy", "scikit-image", "fastmri",
    "lpips", "DISTS-pytorch", "stlpips-pytorch", "extreme-accel-mri-benchmark",
)  # fmt: skip


def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def git_commit(ignore: tuple[str, ...] = ()) -> str:
    """The commit of the working directory's repository, marked ``-dirty`` when it has changes.

    Changes under the ``ignore`` paths do not count (shipping a checkpoint rewrites tracked files under
    ``results/checkpoints`` before its manifest entry records the commit that trained it).
    """
    excluded = [f":(top,exclude){path}" for path in ignore]
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "--", ":(top)", *excluded],
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    if commit.returncode != 0:
        return "unknown"
    return commit.stdout.strip() + ("-dirty" if status.stdout.strip() else "")


def resolve_device(requested: str) -> torch.device:
    """``auto`` picks CUDA when present, else the CPU."""
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(requested)
    if device.type == "cuda" and not torch.cuda.is_available():
        from benchmark.errors import InputError

        raise InputError(f"device {requested!r} requested but CUDA is not available")
    return device


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


class Timer:
    """Elapsed seconds of a region: CUDA events with synchronisation on GPU, ``perf_counter`` on CPU."""

    def __init__(self, device: torch.device) -> None:
        self.cuda = device.type == "cuda"
        self.seconds = 0.0

    def __enter__(self) -> Timer:
        if self.cuda:
            self._start, self._end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            torch.cuda.synchronize()
            self._start.record()
        else:
            self._t0 = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        if self.cuda:
            self._end.record()
            torch.cuda.synchronize()
            self.seconds = self._start.elapsed_time(self._end) / 1000.0
        else:
            self.seconds = time.perf_counter() - self._t0
