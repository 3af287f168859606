"""The benchmark runner: inference to ``.h5``, scoring from disk, one tidy per-image table."""

from benchmark.runner.config import RunConfig
from benchmark.runner.run import run_benchmark, summarize

__all__ = ["RunConfig", "run_benchmark", "summarize"]
