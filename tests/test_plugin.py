"""A method from outside the repository: a throw-away package registers itself under the ``mribench.methods``
entry-point group, and the harness lists it, trains it one step with the shared loop and runs it through ``run``.

The package is installed the way pip lays one out (the package folder plus a ``.dist-info`` with its
``entry_points.txt``) in a temporary folder on ``PYTHONPATH``, so the test needs no network and leaves the
environment as it found it.
"""

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

ADAPTER = """
from dataclasses import dataclass

import torch

from benchmark.method import ImageToImageMethod
from benchmark.recipes import TINY_PROTOCOL


@dataclass(frozen=True)
class DemoConfig:
    chans: int = 2


class Demo(ImageToImageMethod):
    name = "demo-plugin"
    configs = {"tiny": DemoConfig()}
    train_configs = {"tiny": TINY_PROTOCOL.recipe(2)}

    def build_model(self) -> torch.nn.Module:
        return torch.nn.Conv2d(2, self.config.chans, 3, padding=1)
"""


def install_plugin(root: Path, entry: str, one_file: bool = False) -> dict:
    """The plugin as a package ``mribench_demo_plugin`` (module ``.adapter``) or, ``one_file``, a lone module."""
    root.mkdir(parents=True)
    if one_file:
        (root / "mribench_demo_module.py").write_text(ADAPTER)
    else:
        (root / "mribench_demo_plugin").mkdir()
        (root / "mribench_demo_plugin" / "__init__.py").write_text("")
        (root / "mribench_demo_plugin" / "adapter.py").write_text(ADAPTER)
    info = root / "mribench_demo_plugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: mribench-demo-plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[mribench.methods]\n{entry}\n")
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")])}


def benchmark(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "benchmark", *args], capture_output=True, text=True, env=env)


@pytest.mark.parametrize(
    ("entry", "one_file"),
    [("mribench_demo_plugin.adapter:Demo", False), ("mribench_demo_module:Demo", True)],
    ids=["package", "one-file module"],
)
def test_an_entry_point_method_lists_trains_and_runs(small_embedded, tmp_path, entry, one_file):
    env = install_plugin(tmp_path / "site", f"demo-plugin = {entry}", one_file)
    listed = benchmark(env, "methods")
    assert listed.returncode == 0 and "demo-plugin" in listed.stdout, listed.stderr[-2000:]
    trained = benchmark(env, "train", "demo-plugin", "--profile", "tiny", "--data", str(small_embedded), "--steps",
                        "1", "--out", str(tmp_path / "trained"), "--device", "cpu", "--size", "64", "64")  # fmt: skip
    assert trained.returncode == 0, trained.stderr[-2000:]
    assert (tmp_path / "trained" / "best.pt").is_file()
    ran = benchmark(env, "run", "--methods", "zero_filled,demo-plugin", "--data", str(small_embedded),
                    "--checkpoint", f"demo-plugin={tmp_path / 'trained' / 'best.pt'}", "--masks", "radial",
                    "--size", "64", "64", "--out", str(tmp_path / "run"), "--device", "cpu")  # fmt: skip
    assert ran.returncode == 0, ran.stderr[-2000:]
    table = pd.read_csv(tmp_path / "run" / "metrics.csv")
    assert set(table["method"]) == {"zero_filled", "demo-plugin"}
    assert table["psnr_paper"].notna().all()


def test_an_entry_point_may_not_take_a_built_in_name(tmp_path):
    env = install_plugin(tmp_path / "site", "unet = mribench_demo_plugin.adapter:Demo")
    listed = benchmark(env, "methods")
    assert listed.returncode == 2
    assert listed.stderr.strip().splitlines()[-1] == (
        "error: mribench-demo-plugin registers method 'unet', a built-in name; rename its entry point"
    )
