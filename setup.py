"""Build hook: a wheel carries the shipped checkpoints and the paper's numbers (``benchmark/shipped.py``).

Everything else is declared in ``pyproject.toml``. Only the shipped checkpoints (``*.pt`` files the manifest
lists, and the manifest) and ``results/paper/paper_tables.csv`` are copied, into ``benchmark/shipped/``;
an editable install reads them from ``results/`` in place and copies nothing.
"""

import json
import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

RESULTS = Path(__file__).resolve().parent / "results"


class BuildWithShippedFiles(build_py):
    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return
        target = Path(self.build_lib) / "benchmark" / "shipped"
        manifest = RESULTS / "checkpoints" / "manifest.json"
        files = [Path("checkpoints") / key for key in json.loads(manifest.read_text())]
        for relative in [*files, Path("checkpoints/manifest.json"), Path("paper/paper_tables.csv")]:
            (target / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(RESULTS / relative, target / relative)


setup(cmdclass={"build_py": BuildWithShippedFiles})
