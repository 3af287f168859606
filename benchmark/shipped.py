"""Where the files the suite ships with live: the shipped checkpoints and the paper's published numbers.

From a source checkout (the README's editable install) they are the tree's own ``results/`` folder, so
``train --ship`` updates what the next run loads. A wheel carries a copy in ``benchmark/shipped/`` (``setup.py``
puts it there at build time), so an installed package runs its shipped models from anywhere.
``$MRIBENCH_CHECKPOINTS`` overrides the checkpoint root in both cases.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent
#: Relative paths, under ``results/`` in the source tree and under ``benchmark/shipped/`` in a wheel.
CHECKPOINTS = "checkpoints"
PAPER_TABLES = "paper/paper_tables.csv"


def shipped_root() -> Path:
    """``results/`` of the source tree this package runs from, else the copy packaged with it."""
    source = _PACKAGE.parent
    if (source / "pyproject.toml").is_file() and (source / "results").is_dir():
        return source / "results"
    return _PACKAGE / "shipped"
