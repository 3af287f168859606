"""The command line as a user meets it: the mask figure and one-line errors."""

import hashlib
import subprocess
import sys

import matplotlib.image
import pytest


def run_cli(*arguments):
    return subprocess.run([sys.executable, "-m", "benchmark", *arguments], capture_output=True, text=True)


def test_masks_command_writes_a_figure_with_four_panels(tmp_path):
    out = tmp_path / "figs" / "masks.png"
    result = run_cli("masks", "--out", str(out), "--shape", "64", "64")
    assert result.returncode == 0, result.stderr
    pixels = matplotlib.image.imread(out)
    assert pixels.shape[1] > 3 * pixels.shape[0]  # four square panels side by side
    assert pixels.std() > 0.1  # not a blank canvas


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["masks", "--shape", "1", "64"], "shape"),
        (["masks", "--out", "/proc/forbidden/masks.png"], "/proc/forbidden"),
        (["prepare", "--data", "/nonexistent-root-dir/x", "--from-fastmri", "/nonexistent.h5"], "no such file"),
    ],
)
def test_bad_input_gives_one_line_and_exit_code_2(arguments, message, tmp_path):
    result = run_cli(*arguments)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], result.stderr


def test_help_lists_the_commands():
    result = run_cli("--help")
    assert result.returncode == 0
    assert "prepare" in result.stdout and "masks" in result.stdout


def option_help(command, option):
    """The lines ``COMMAND --help`` prints for ``option`` (its usage entry and wrapped help text)."""
    result = run_cli(command, "--help")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip().startswith(option + " "))
    end = next((i for i in range(start + 1, len(lines)) if lines[i].strip().startswith("-")), len(lines))
    return " ".join(line.strip() for line in lines[start:end])


@pytest.mark.parametrize("command", ["run", "train"])
def test_masks_help_says_pattern_not_protocol(command):
    text = option_help(command, "--masks")
    assert "pattern" in text and "protocol" not in text, text


@pytest.fixture(scope="module")
def tiny_run(small_embedded, tmp_path_factory):
    """One zero-filled run (one mask, one contrast, 64 x 64) scored with ``--scoring fastmri``."""
    out = tmp_path_factory.mktemp("scoring") / "run"
    arguments = ["--methods", "zero_filled", "--masks", "radial", "--contrasts", "T1", "--data", str(small_embedded)]
    arguments += ["--out", str(out), "--device", "cpu", "--size", "64", "64"]
    return out, arguments, run_cli("run", *arguments, "--scoring", "fastmri")


def deprecation_lines(stderr):
    return [line for line in stderr.splitlines() if "deprecated" in line]


def test_run_and_report_accept_scoring_fastmri(tiny_run, tmp_path):
    out, _, result = tiny_run
    assert result.returncode == 0, result.stderr
    assert "scoring shown: fastmri" in result.stdout
    assert not deprecation_lines(result.stderr)
    report = run_cli("report", str(out), "--out", str(tmp_path / "report"), "--scoring", "fastmri")
    assert report.returncode == 0, report.stderr
    assert not deprecation_lines(report.stderr)
    assert "fastMRI protocol" in (tmp_path / "report" / "tables.md").read_text()


def test_deprecated_protocol_still_works_with_one_warning_line(tiny_run, tmp_path):
    out, arguments, first = tiny_run
    assert first.returncode == 0, first.stderr
    rerun = run_cli("run", *arguments, "--resume", "--protocol", "fastmri")
    assert rerun.returncode == 0, rerun.stderr
    assert "scoring shown: fastmri" in rerun.stdout
    assert deprecation_lines(rerun.stderr) == ["warning: --protocol is deprecated; use --scoring"], rerun.stderr
    report = run_cli("report", str(out), "--out", str(tmp_path / "report"), "--protocol", "fastmri")
    assert report.returncode == 0, report.stderr
    assert deprecation_lines(report.stderr) == ["warning: --protocol is deprecated; use --scoring"], report.stderr
    assert "fastMRI protocol" in (tmp_path / "report" / "tables.md").read_text()


def test_scoring_and_protocol_that_disagree_give_one_error_line(tiny_run, tmp_path):
    out, _, _ = tiny_run
    result = run_cli("report", str(out), "--out", str(tmp_path / "r"), "--scoring", "paper", "--protocol", "fastmri")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("error: "), result.stderr


def test_methods_command_lists_every_registered_method_with_its_checkpoints():
    from benchmark.checkpoint import CHECKPOINT_ROOT
    from benchmark.registry import METHODS, STAGES

    result = subprocess.run([sys.executable, "-m", "benchmark", "methods"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()[1:]
    rows = {line.split()[0]: line for line in lines if " --stage " not in line}
    assert set(rows) == set(METHODS)
    stages = [line for line in lines if " --stage " in line]
    assert len(stages) == sum(len(names) for names in STAGES.values()) and all(" stage " in s for s in stages)
    assert "classical" in rows["zero_filled"] and "learned" in rows["unet"]
    assert " learned " in rows["mdpg"]  # registered, though its class is also the last stage of its chain
    for name in ("unet", "e2evarnet", "recurrentvarnet"):
        shipped = CHECKPOINT_ROOT / name / "tiny.pt"
        digest = hashlib.sha256(shipped.read_bytes()).hexdigest()[:12]
        assert f"tiny: shipped {digest}" in rows[name]
        assert "paper: not shipped" in rows[name]
    help_text = subprocess.run([sys.executable, "-m", "benchmark", "run", "--help"], capture_output=True, text=True)
    assert "python -m benchmark methods" in " ".join(help_text.stdout.split())
