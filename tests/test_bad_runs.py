"""The bad-input matrix, part 2: runs resumed, reported and checked against what they cannot trust, baselines without
teeth, and argument values out of range (``badinput.py`` says what every case must show)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from badinput import ROOT, Call, Case, Inputs, check_outcome, run_cases, run_cli, selected

from benchmark.data import EmbeddedSpec, build_embedded
from benchmark.runner.identity import code_hash

CASES: dict[str, Case] = {}


def case(build: Case) -> Case:
    CASES[build.__name__] = build
    return build


def run_copy(folder: Path, inputs: Inputs) -> Path:
    """A copy of the finished run (zero_filled, radial, T1, 64 x 64; one unit of 2 slices)."""
    copy = folder / "run"
    shutil.copytree(inputs.run, copy)
    return copy


def unit_file(run: Path) -> Path:
    return next(path for path in run.glob("metrics/*/*/*.csv") if not path.name.endswith(".volume.csv"))


def report(run: Path, folder: Path) -> list[str]:
    return ["report", str(run), "--out", str(folder / "report")]


def check(run: Path, baseline: Path) -> list[str]:
    return ["check", str(run), "--baseline", str(baseline)]


# A run is one dataset and one code version.
@case
def resume_on_other_data(folder: Path, inputs: Inputs) -> Call:
    run = run_copy(folder, inputs)
    stored = json.loads((run / "run.json").read_text())
    other = json.loads((inputs.other_dataset / "manifest.json").read_text())["dataset_hash"]
    message = f"{run} was run on data {stored['data_hash'][:16]} ({inputs.dataset}), not {other[:16]} "
    message += f"({inputs.other_dataset}); resume it on its own data or use another --out"
    return Call(run_cli(inputs, folder, "--data", str(inputs.other_dataset)) + ["--resume"], message)


@case
def resume_after_a_code_change(folder: Path, inputs: Inputs) -> Call:
    run = run_copy(folder, inputs)
    stored = json.loads((run / "run.json").read_text())
    stored["code_hash"]["zero_filled"] = "0" * 16  # as if zero_filled's source had changed since the run began
    (run / "run.json").write_text(json.dumps(stored))
    now = code_hash(["zero_filled"])["zero_filled"]
    message = f"{run} was run with other code (zero_filled {'0' * 16} -> {now}); finish it with that code or use "
    return Call(run_cli(inputs, folder) + ["--resume"], message + "another --out")


FOREIGN = "not a run of this suite (no config, config_hash, data_hash, methods, metrics)"


def foreign_run(folder: Path) -> Path:
    run = folder / "run"
    run.mkdir()
    (run / "run.json").write_text('{"experiment": "mine", "metrics.csv": "elsewhere"}')
    return run


@case
def resume_into_a_foreign_run_folder(folder: Path, inputs: Inputs) -> Call:
    run = foreign_run(folder)
    return Call(run_cli(inputs, folder) + ["--resume"], f"{run / 'run.json'}: {FOREIGN}")


@case
def report_on_a_foreign_run_folder(folder: Path, inputs: Inputs) -> Call:
    run = foreign_run(folder)
    return Call(report(run, folder), f"{run / 'run.json'}: {FOREIGN}")


def mixed_run(folder: Path, inputs: Inputs) -> tuple[Path, str]:
    """A run whose merged table has one row of another run spliced in (another configuration hash)."""
    run = run_copy(folder, inputs)
    lines = (run / "metrics.csv").read_text().splitlines()
    own = json.loads((run / "run.json").read_text())["config_hash"]
    lines[1] = lines[1].replace(own, "f" * 16)
    (run / "metrics.csv").write_text("\n".join(lines) + "\n")
    found = ", ".join(sorted([own, "f" * 16]))
    return run, f"{run / 'metrics.csv'}: mixes 2 runs (config_hash {found}); rerun into a new --out"


@case
def report_on_a_table_mixing_runs(folder: Path, inputs: Inputs) -> Call:
    run, message = mixed_run(folder, inputs)
    return Call(report(run, folder), message)


@case
def check_on_a_table_mixing_runs(folder: Path, inputs: Inputs) -> Call:
    run, message = mixed_run(folder, inputs)
    return Call(check(run, ROOT / "results" / "baselines" / "ci-small.json"), message)


# Verify before trusting: the merged table is checked against the grid, the unit files against their volume.
@case
def report_on_truncated_tables(folder: Path, inputs: Inputs) -> Call:
    run = run_copy(folder, inputs)
    for path in (run / "metrics.csv", unit_file(run)):
        path.write_text("\n".join(path.read_text().splitlines()[:2]) + "\n")  # the header and 1 of 2 rows
    return Call(report(run, folder), f"{unit_file(run)}: corrupt (holds 1 rows where the grid has 2)")


@case
def report_on_empty_tables(folder: Path, inputs: Inputs) -> Call:
    run = run_copy(folder, inputs)
    for path in (run / "metrics.csv", unit_file(run)):
        path.write_text("")
    return Call(report(run, folder), f"{unit_file(run)}: corrupt (No columns to parse from file)")


@case
def report_on_an_unfinished_run(folder: Path, inputs: Inputs) -> Call:
    run = run_copy(folder, inputs)
    victim = unit_file(run)
    for path in (run / "metrics.csv", victim):
        path.unlink()
    return Call(report(run, folder), f"{victim} is missing: the run is unfinished; finish it with --resume")


def half_run_json(folder: Path, inputs: Inputs) -> tuple[Path, str]:
    run = run_copy(folder, inputs)
    text = (run / "run.json").read_text()
    (run / "run.json").write_text(text[: len(text) // 2])
    try:
        json.loads(text[: len(text) // 2])
    except json.JSONDecodeError as error:
        return run, f"{run / 'run.json'}: corrupt ({error})"
    raise AssertionError("half a run.json parsed")


@case
def report_on_half_a_run_json(folder: Path, inputs: Inputs) -> Call:
    run, message = half_run_json(folder, inputs)
    return Call(report(run, folder), message)


@case
def check_on_half_a_run_json(folder: Path, inputs: Inputs) -> Call:
    run, message = half_run_json(folder, inputs)
    return Call(check(run, ROOT / "results" / "baselines" / "ci-small.json"), message)


@case
def resume_on_half_a_run_json(folder: Path, inputs: Inputs) -> Call:
    run, message = half_run_json(folder, inputs)
    return Call(run_cli(inputs, folder) + ["--resume"], message)


# Baselines have teeth: an unusable one exits 2 (drift keeps exit 1), tolerances only tighten under CI.
def baseline_file(folder: Path, content: str) -> Path:
    path = folder / "baseline.json"
    path.write_text(content)
    return path


def with_baseline(folder: Path, inputs: Inputs, content: str, problem: str, env=None) -> Call:
    path = baseline_file(folder, content)
    return Call(check(inputs.run, path), problem.format(path=path), env=env or {})


@case
def baseline_without_means(folder: Path, inputs: Inputs) -> Call:
    return with_baseline(
        folder, inputs, "{}", "baseline {path} has no means (not a baseline written by `check --update`)"
    )


@case
def baseline_with_no_means_at_all(folder: Path, inputs: Inputs) -> Call:
    message = "baseline {path} has no means: a check against it would pass anything"
    return with_baseline(folder, inputs, '{"means": {}}', message)


MEAN = '"zero_filled|radial|T1|psnr_paper": 20.0'


@case
def baseline_loosened_under_ci(folder: Path, inputs: Inputs) -> Call:
    content = f'{{"means": {{{MEAN}}}, "tolerances": {{"psnr_paper": 1e9}}}}'
    message = "baseline {path} loosens the psnr_paper tolerance to 1e+09 (code: 0.05); a baseline may only tighten "
    return with_baseline(folder, inputs, content, message + "tolerances under CI", {"CI": "true"})


@case
def baseline_with_a_negative_tolerance(folder: Path, inputs: Inputs) -> Call:
    content = f'{{"means": {{{MEAN}}}, "tolerances": {{"ssim_paper": -1}}}}'
    return with_baseline(
        folder, inputs, content, "baseline {path}: tolerance of ssim_paper must be a number >= 0, got -1"
    )


@case
def baseline_with_a_tolerance_for_an_unknown_metric(folder: Path, inputs: Inputs) -> Call:
    content = f'{{"means": {{{MEAN}}}, "tolerances": {{"psnr": 0.1}}}}'
    return with_baseline(folder, inputs, content, "baseline {path}: tolerance for unknown metric 'psnr'")


@case
def baseline_with_a_malformed_key(folder: Path, inputs: Inputs) -> Call:
    message = "baseline {path}: 'zero_filled|psnr_paper' is not a method|mask|contrast|metric this check compares"
    return with_baseline(folder, inputs, '{"means": {"zero_filled|psnr_paper": 20.0}}', message)


@case
def baseline_not_json(folder: Path, inputs: Inputs) -> Call:
    message = "baseline {path} is not valid JSON (Expecting value: line 1 column 1 (char 0))"
    return with_baseline(folder, inputs, "means: none", message)


@case
def baseline_missing(folder: Path, inputs: Inputs) -> Call:
    path = folder / "absent.json"
    message = f"baseline {path} not found; create it with `python -m benchmark check RUN --baseline {path} --update`"
    return Call(check(inputs.run, path), message)


# Argument values checked before anything runs: argparse's usage line, then one line.
def usage(command: str, option: str, problem: str) -> str:
    return f"python -m benchmark {command}: error: argument {option}: {problem}"


ARGUMENTS = {
    "run_batch_size_zero": (["--batch-size", "0"], "run", "--batch-size", "must be a positive integer, got 0"),
    "run_batch_size_negative": (["--batch-size", "-1"], "run", "--batch-size", "must be a positive integer, got -1"),
    "run_size_zero": (["--size", "0", "0"], "run", "--size", "must be a positive integer, got 0"),
    "run_seed_negative": (["--seed", "-3"], "run", "--seed", "must be an integer >= 0, got -3"),
    "run_device_unknown": (["--device", "tpu9"], "run", "--device", "must be auto, cpu, cuda or cuda:N, got 'tpu9'"),
    "run_region_unknown": (
        ["--region", "brain"],
        "run",
        "--region",
        "invalid choice: 'brain' (choose from 'image', 'head')",
    ),  # fmt: skip
    "train_steps_zero": (["train", "unet", "--steps", "0"], "train", "--steps", "must be a positive integer, got 0"),
    "train_save_every_zero": (
        ["train", "unet", "--save-every", "0"],
        "train",
        "--save-every",
        "must be a positive integer, got 0",
    ),  # fmt: skip
    "train_device_unknown": (
        ["train", "unet", "--device", "gpu"],
        "train",
        "--device",
        "must be auto, cpu, cuda or cuda:N, got 'gpu'",
    ),  # fmt: skip
    "perf_repeats_zero": (
        ["perf", "--methods", "unet", "--repeats", "0"],
        "perf",
        "--repeats",
        "must be a positive integer, got 0",
    ),  # fmt: skip
    "masks_shape_zero": (["masks", "--shape", "0", "64"], "masks", "--shape", "must be a positive integer, got 0"),
    "masks_acceleration_zero": (
        ["masks", "--acceleration", "0"],
        "masks",
        "--acceleration",
        "must be a positive integer, got 0",
    ),  # fmt: skip
    "prepare_virtual_coils_zero": (
        ["prepare", "--virtual-coils", "0"],
        "prepare",
        "--virtual-coils",
        "must be a positive integer, got 0",
    ),  # fmt: skip
    "report_unknown_family": (
        ["report", "RUN", "--family", "all"],
        "report",
        "--family",
        "invalid choice: 'all' (choose from 'column', 'reference', 'table')",
    ),  # fmt: skip
}


def argument_case(arguments: list[str], command: str, option: str, problem: str) -> Case:
    def build(folder: Path, inputs: Inputs) -> Call:
        full = run_cli(inputs, folder) + arguments if command == "run" else arguments
        return Call(full, usage(command, option, problem), usage=True)

    return build


CASES.update({name: argument_case(*spec) for name, spec in ARGUMENTS.items()})


@case
def run_acceleration_zero(folder: Path, inputs: Inputs) -> Call:
    return Call(run_cli(inputs, folder, "--acceleration", "0"), "--acceleration must be positive integers, got '0'")


@case
def train_name_leaving_the_repository(folder: Path, inputs: Inputs) -> Call:
    """A name that would make results/training/../x: refused before any folder is made."""
    from benchmark.registry import known_methods

    message = f"unknown method '../x'; known: {', '.join(known_methods())}"
    return Call(["train", "../x", "--data", str(inputs.dataset)], message)


@pytest.fixture(scope="module")
def outcomes(request, tmp_path_factory, small_embedded):
    """A finished run and a second dataset (same names, other bytes) for the cases, then every selected case."""
    shared = tmp_path_factory.mktemp("shared")
    other = build_embedded(shared / "other", EmbeddedSpec(**{**small_spec_of(small_embedded), "seed": 7}))
    inputs = Inputs(raw=shared / "unused.h5", dataset=small_embedded, run=shared / "run", other_dataset=other)
    command = [sys.executable, "-m", "benchmark", *run_cli(inputs, shared)]
    subprocess.run(command, cwd=shared, capture_output=True, text=True, check=True, timeout=600)
    return run_cases(CASES, selected(request), tmp_path_factory.mktemp, inputs)


def small_spec_of(dataset: Path) -> dict:
    """The ``EmbeddedSpec`` a dataset was built with, from its manifest."""
    description = json.loads((dataset / "manifest.json").read_text())["description"]
    fields = EmbeddedSpec.__dataclass_fields__
    spec = {key: value for key, value in description.items() if key in fields}
    spec["shape"], spec["coil_counts"] = tuple(spec["shape"]), tuple(spec["coil_counts"])
    spec["splits"] = tuple(tuple(split) for split in spec["splits"])
    return spec


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input_exits_2_with_one_line_naming_it_and_leaves_nothing_behind(name, outcomes):
    check_outcome(outcomes[name])
