"""Inference does not depend on training: running, reporting and timing every registered method import nothing
from ``benchmark.training`` (checked in a fresh interpreter, so no earlier test's imports count)."""

import subprocess
import sys

PROBE = """
import sys
import benchmark.cli_results, benchmark.perf, benchmark.runner.run
from benchmark.registry import get_method_class, known_methods
for name in known_methods():
    get_method_class(name)
print(",".join(sorted(module for module in sys.modules if module.startswith("benchmark.training"))))
"""


def test_the_inference_path_imports_nothing_from_training():
    result = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""


def test_the_probe_sees_training_when_it_is_imported():
    probe = PROBE.replace("import sys\n", "import sys\nimport benchmark.training.loop\n", 1)
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert "benchmark.training.loop" in result.stdout.split(",")
