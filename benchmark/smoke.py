"""``python -m benchmark smoke``: every method's whole path at one profile, from data to table: one optimiser step
per training stage, chained through the smoke's own checkpoint folders (never the shipped ones), then ``run`` on
one test volume (one slice on the embedded data) and ``report`` on that run, with each step's wall time and peak
memory.

Each step is its own ``python -m benchmark`` process, so its peak resident memory (``wait4``'s ``ru_maxrss``) is
that step's alone; a step that fails stops the smoke with its command and the end of its log. What keeps it
short, all stated in the table: one training step at ``--batch-size`` (default 1), validation on one val slice
and one mask, one test volume, and every sampler count capped at ``--sampler-cap`` (DiffuseRecon's paper sampler
is ~1,000 network evaluations per slice). The data is the first file of each split of ``--data``, linked. A
rerun skips the steps ``smoke.csv`` already holds (``--force`` starts over). A finished training step's
``last.pt`` (weights and optimiser state for a resume the smoke never makes: ~6 GB for a paper-profile NASP
transformer) is deleted at once, so a paper smoke fits on a disk; its ``best.pt`` stays for the next stage and the
run.
"""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from benchmark.data.manifest import read_manifest
from benchmark.data.subset import first_of_each_split
from benchmark.errors import BenchmarkError
from benchmark.io import atomic_path
from benchmark.masks import get_pattern
from benchmark.method import TrainingStage
from benchmark.registry import STAGES, check_method_name, get_method_class
from benchmark.runner.environment import resolve_device
from benchmark.training.chain import chain_stages

#: One row per step: what ran, how long, its peak memory, and the command that reproduces it.
SMOKE_COLUMNS = ("method", "step", "seconds", "peak_rss_mib", "command")


@dataclass(frozen=True)
class SmokeRequest:
    methods: tuple[str, ...]
    profile: str
    data: Path
    out: Path
    mask: str = "gaussian_2d"
    batch_size: int = 1
    sampler_cap: int = 2
    device: str = "auto"
    force: bool = False


@dataclass(frozen=True)
class SmokeStep:
    method: str
    step: str  # "train <stage>", "run" or "report"
    args: tuple[str, ...]  # after ``python -m benchmark``
    folder: Path | None = None  # a training step's output folder


def training_steps(request: SmokeRequest, data: Path) -> list[SmokeStep]:
    """One ``train`` per stage the methods need, each stage once, in chain order; a multi-stage method's
    stages share one chain folder, so each builds on the ones trained before it."""
    common = ("--profile", request.profile, "--data", str(data), "--steps", "1", "--val-slices", "1",
              "--batch-size", str(request.batch_size), "--masks", request.mask, "--device", request.device)  # fmt: skip
    steps, seen = [], set()
    for name in request.methods:
        cls = get_method_class(name)
        if not issubclass(cls, TrainingStage):
            continue
        family, stage = cls.training_source()
        stages = chain_stages(family, stage) if family in STAGES else [""]
        for each in stages:
            if (family, each) in seen:
                continue
            seen.add((family, each))
            out = request.out / "train" / family
            # One step never reaches a capacity floor: the later stages train on it anyway (recorded).
            chain = ("--chain", "--stage", each, "--below-capacity") if each else ()
            args = ("train", family, *chain, "--out", str(out), *common)
            steps.append(SmokeStep(family, f"train {each or family}", args, folder=out / each if each else out))
    return steps


def checkpoint_of(request: SmokeRequest, name: str) -> Path | None:
    """The smoke's own best checkpoint for method ``name`` (``None``: a classical method)."""
    cls = get_method_class(name)
    if not issubclass(cls, TrainingStage):
        return None
    family, stage = cls.training_source()
    return request.out / "train" / family / (stage if family in STAGES else "") / "best.pt"


def evaluation_steps(request: SmokeRequest, data: Path) -> list[SmokeStep]:
    """Per method, ``run`` on the one test volume, then ``report`` on that run."""
    contrast = next(entry.contrast for entry in read_manifest(data)["entries"] if entry.split == "test")
    steps = []
    for name in request.methods:
        run_dir = request.out / "runs" / name
        args = ["run", "--methods", name, "--profile", request.profile, "--data", str(data), "--masks", request.mask,
                "--contrasts", contrast, "--out", str(run_dir), "--device", request.device, "--resume"]  # fmt: skip
        checkpoint = checkpoint_of(request, name)
        if checkpoint is not None:
            args += ["--checkpoint", f"{name}={checkpoint}"]
        cls = get_method_class(name)
        capped = [f"{name}.{field}={request.sampler_cap}" for field in cls.sampler_fields
                  if getattr(cls.configs[request.profile], field) > request.sampler_cap]  # fmt: skip
        args += ["--sampler", ",".join(capped)] if capped else []
        steps.append(SmokeStep(name, "run", tuple(args)))
        report = ("report", str(run_dir), "--out", str(request.out / "reports" / name))
        steps.append(SmokeStep(name, "report", report))
    return steps


def run_step(step: SmokeStep, logs: Path) -> dict:
    """Run ``step`` as its own process; its wall time and peak resident memory, or an error naming its log."""
    command = [sys.executable, "-m", "benchmark", *step.args]
    log = logs / f"{step.method}-{step.step.replace(' ', '-')}.log"
    start = time.perf_counter()
    with open(log, "w") as stream:
        process = subprocess.Popen(command, stdout=stream, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(process.pid, 0)  # this child's own peak memory, not the smoke's
    seconds = time.perf_counter() - start
    code = os.waitstatus_to_exitcode(status)
    if code:
        tail = "".join(log.read_text().splitlines(keepends=True)[-5:]).rstrip()
        raise BenchmarkError(f"smoke: {step.method} {step.step} failed (exit {code}; log {log}):\n"
                             f"  {' '.join(command[1:])}\n{tail}")  # fmt: skip
    return {"method": step.method, "step": step.step, "seconds": round(seconds, 1),
            "peak_rss_mib": round(usage.ru_maxrss / 1024), "command": "python " + " ".join(command[1:])}  # fmt: skip


def smoke(request: SmokeRequest) -> list[dict]:
    """Run every step not yet in ``<out>/smoke.csv``; return all rows (also written there and as markdown)."""
    for name in request.methods:
        check_method_name(name)
    get_pattern(request.mask)
    ours = (request.out / "smoke.csv").exists() or (request.out / "logs").is_dir()  # a smoke, finished or not
    if request.out.exists() and any(request.out.iterdir()) and not ours:
        raise BenchmarkError(f"{request.out} holds files that are not a smoke of this suite; choose another --out")
    if request.force and request.out.exists():
        shutil.rmtree(request.out)  # a smoke folder (checked above): never a folder of someone else's files
    (request.out / "logs").mkdir(parents=True, exist_ok=True)
    data = request.out / "data"
    if not data.exists():
        first_of_each_split(request.data, data)
    table = request.out / "smoke.csv"
    rows = list(csv.DictReader(table.open())) if table.exists() else []
    done = {(row["method"], row["step"]) for row in rows}
    steps = training_steps(request, data) + evaluation_steps(request, data)
    for step in tqdm([s for s in steps if (s.method, s.step) not in done], desc="smoke", unit="step"):
        rows.append(run_step(step, request.out / "logs"))
        if step.folder is not None:
            (step.folder / "last.pt").unlink(missing_ok=True)  # best.pt carries what the next steps read
        write_table(rows, table)
    write_markdown(request, rows, request.out / "smoke.md")
    return rows


def write_table(rows: list[dict], path: Path) -> None:
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as stream:
        writer = csv.DictWriter(stream, SMOKE_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)


def write_markdown(request: SmokeRequest, rows: list[dict], path: Path) -> None:
    """The table the README quotes: per step, seconds and peak memory, under what the smoke lowered."""
    lines = [
        f"Smoke, {request.profile} profile: one training step per stage at batch {request.batch_size}, validation "
        f"on one val slice ({request.mask}), `run` on one test volume, sampler counts capped at "
        f"{request.sampler_cap}; device {resolve_device(request.device)}; data: the first file of each split of "
        f"{request.data}.",
        "",
        "| method | step | seconds | peak RSS (MiB) |",
        "|---|---|---|---|",
        *[f"| {r['method']} | {r['step']} | {r['seconds']} | {r['peak_rss_mib']} |" for r in rows],
    ]
    with atomic_path(path) as tmp:
        tmp.write_text("\n".join(lines) + "\n")
