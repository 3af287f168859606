"""The bad-input matrix's machinery, shared by ``test_bad_inputs.py`` (data, checkpoints, outputs) and
``test_bad_runs.py`` (runs, baselines, arguments).

Every way of handing the command line something unusable ends alike: exit status 2 and either exactly one stderr
line ``error: <the input>: <the problem>``, or, for an argument out of range, argparse's usage line(s) followed by
exactly one line ``python -m benchmark CMD: error: argument …``; and the case's folder lists the same files before
and after (nothing lost, nothing written, no partial or temporary file). Each case builds its inputs in a folder of
its own; the commands run a few at a time (a call is mostly interpreter start-up and imports).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Inputs:
    """What the cases share and never change."""

    raw: Path  # a valid raw fastMRI file
    dataset: Path  # the small embedded dataset
    run: Path | None = None  # a finished run of zero_filled on it (``RUN_ARGUMENTS``)
    other_dataset: Path | None = None  # the small dataset built from another seed: same names, other bytes


@dataclass(frozen=True)
class Call:
    """A case's command and what it must print: one ``error: …`` line, or (``usage``) argparse's usage and then
    exactly this last line."""

    arguments: list[str]
    expected: str
    usage: bool = False
    env: dict[str, str] = field(default_factory=dict)


#: A case: ``(its folder, shared inputs) -> Call`` (or ``(arguments, expected line)``).
Case = Callable[[Path, Inputs], "Call | tuple[list[str], str]"]


@dataclass(frozen=True)
class Outcome:
    call: Call
    result: subprocess.CompletedProcess
    before: list[str]
    after: list[str]


def run_cli(inputs: Inputs, folder: Path, *options: str) -> list[str]:
    """``run`` of zero_filled on the small dataset into ``folder/run``; ``options`` (pairs) replace the defaults."""
    settings = {"--methods": "zero_filled", "--data": str(inputs.dataset), "--out": str(folder / "run")}
    settings |= {"--masks": "radial", "--contrasts": "T1"}
    settings |= dict(zip(options[::2], options[1::2], strict=True))
    return ["run", *(item for pair in settings.items() for item in pair), "--size", "64", "64"]


def listing(folder: Path) -> list[str]:
    return sorted(path.relative_to(folder).as_posix() for path in folder.rglob("*"))


def run_cases(cases: dict[str, Case], chosen: list[str], make_folder: Callable[[str], Path], inputs: Inputs):
    """Build every chosen case (one by one, in its own folder), then run their commands concurrently."""
    built = {}
    for name in chosen:
        folder = make_folder(name)
        call = cases[name](folder, inputs)
        built[name] = (folder, call if isinstance(call, Call) else Call(*call), listing(folder))
    environment = {key: value for key, value in os.environ.items() if key not in ("MRIBENCH_DATA", "CI")}
    environment["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))

    def execute(name: str) -> subprocess.CompletedProcess:
        folder, call, _ = built[name]
        command = [sys.executable, "-m", "benchmark", *call.arguments]
        env = {**environment, "TORCH_HOME": str(folder / "torch-home"), **call.env}
        return subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True, timeout=300)

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        results = dict(zip(chosen, pool.map(execute, chosen), strict=True))
    return {
        name: Outcome(call, results[name], before, listing(folder)) for name, (folder, call, before) in built.items()
    }


#: A progress bar's line (tqdm: "| 3/10 [00:01<00:02, ...]"): shown while work runs, not part of the error.
PROGRESS = re.compile(r"\|\s*\d+/\d+ \[")


def check_outcome(outcome: Outcome) -> None:
    """Exit 2, the one expected line (after argparse's usage for a range error; progress bars of work done
    before the problem was found aside), nothing left behind."""
    result, call = outcome.result, outcome.call
    assert result.returncode == 2, result.stderr[-3000:]
    lines = [line for line in result.stderr.splitlines() if line.strip() and not PROGRESS.search(line)]
    if call.usage:
        assert lines[0].startswith("usage: python -m benchmark") and lines[-1] == call.expected, result.stderr
        assert not any(line.startswith(("Traceback", "error:")) for line in lines), result.stderr
    else:
        assert lines == [f"error: {call.expected}"]
    assert outcome.after == outcome.before, "the failed command left files behind or removed some"


def selected(request) -> list[str]:
    """The case names of the requesting module's selected tests."""
    return [item.callspec.params["name"] for item in request.session.items if item.module is request.module]
