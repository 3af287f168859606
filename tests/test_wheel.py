"""The package as a wheel: built from this tree's files, installed into a fresh virtual environment outside it,
it lists its methods with their shipped checkpoints, runs one shipped model and reports it beside the paper's
numbers, all from the files the wheel carries (``benchmark/shipped.py``, ``setup.py``).

The fresh environment takes its dependencies from the test environment's site-packages through a ``.pth`` path
line (which adds the folder to ``sys.path`` but runs none of its ``.pth`` files, so the editable install of this
tree stays invisible); the package itself is only the wheel's copy.
"""

import hashlib
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
#: What a build needs: the project files, the code and the shipped files the wheel carries.
BUILD_INPUTS = ("pyproject.toml", "setup.py", "README.md", "benchmark", "methods", "results/checkpoints",
                "results/paper")  # fmt: skip


def build_wheel(tmp_path: Path) -> Path:
    source = tmp_path / "source"  # a copy, so the build leaves nothing in the tree
    for name in BUILD_INPUTS:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(ROOT / name, source / name)
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path / "dist"),
                            str(source)], capture_output=True, text=True)  # fmt: skip
    assert built.returncode == 0, built.stderr[-3000:]
    (wheel,) = (tmp_path / "dist").glob("*.whl")
    return wheel


def fresh_environment(tmp_path: Path, wheel: Path) -> Path:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    installed = subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)],
                               capture_output=True, text=True)  # fmt: skip
    assert installed.returncode == 0, installed.stderr[-3000:]
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    (Path(site) / "test_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return python


def test_a_wheel_installed_outside_the_tree_lists_runs_and_reports_its_shipped_models(ci_embedded, tmp_path):
    python = fresh_environment(tmp_path, build_wheel(tmp_path))
    away = tmp_path / "elsewhere"
    away.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "MRIBENCH_CHECKPOINTS")}

    def call(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(python), *args], capture_output=True, text=True, cwd=away, env=env)

    located = call("-c", "import benchmark.checkpoint as c; print(c.__file__); print(c.CHECKPOINT_ROOT)")
    assert located.returncode == 0, located.stderr[-2000:]
    module, root = located.stdout.split()
    assert module.startswith(str(tmp_path / "venv")) and root.startswith(str(tmp_path / "venv")), located.stdout
    listed = call("-m", "benchmark", "methods")
    assert listed.returncode == 0, listed.stderr[-2000:]
    unet_sha = hashlib.sha256((ROOT / "results/checkpoints/unet/tiny.pt").read_bytes()).hexdigest()[:12]
    (unet_row,) = [line for line in listed.stdout.splitlines() if line.startswith("unet ")]
    assert f"tiny: shipped {unet_sha}" in unet_row
    ran = call("-m", "benchmark", "run", "--methods", "unet", "--data", str(ci_embedded), "--masks", "radial",
               "--out", str(away / "run"), "--device", "cpu")  # fmt: skip
    assert ran.returncode == 0, ran.stderr[-2000:]
    table = pd.read_csv(away / "run" / "metrics.csv")
    assert set(table["method"]) == {"unet"} and table["psnr_paper"].between(5, 60).all()
    reported = call("-m", "benchmark", "report", str(away / "run"), "--with-paper", "--out", str(away / "report"))
    assert reported.returncode == 0, reported.stderr[-2000:]
