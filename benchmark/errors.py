"""Errors the command line turns into one line on stderr and a non-zero exit code."""

from __future__ import annotations

from pathlib import Path


class BenchmarkError(Exception):
    """A problem the user can fix (bad input, missing data); printed as one line, never a traceback."""


class InputError(BenchmarkError, ValueError):
    """A bad argument value (shape, acceleration, seed, name); also a ``ValueError`` for library callers."""


class DataError(BenchmarkError):
    """A data file that cannot be used; the message always names the file."""

    def __init__(self, path: str | Path, problem: str) -> None:
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")
