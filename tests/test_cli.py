"""The command line as a user meets it: the mask figure and one-line errors."""

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
        (["masks", "--acceleration", "0"], "acceleration must be >= 1"),
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
