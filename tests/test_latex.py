"""Paper-ready LaTeX: captions without "Table N:", no markdown backticks, no machine paths, and a file
that pdflatex compiles without errors (where pdflatex is installed)."""

import re
import shutil
import subprocess

import pytest
from conftest import synthetic_scores

from benchmark.metrics.weights import backbone_problem
from benchmark.reports.render import to_latex
from benchmark.reports.tables import (
    ablation_table,
    distillation_table,
    mask_table,
    perceptual_table,
    runtime_table,
)

MASKS = ["cartesian_x", "radial", "cartesian_y", "gaussian_2d"]


@pytest.fixture
def latex_tables(tmp_path, monkeypatch) -> str:
    # A torch cache under a machine-specific path, empty: the LPIPS/DISTS footnotes must not name it.
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "machine-specific-cache"))
    unavailable = {"lpips_alex": backbone_problem("alexnet"), "lpips_vgg": backbone_problem("vgg16")}
    scores = synthetic_scores(methods=("zero_filled", "unet", "unet:distilled"), images=3)
    tables = [mask_table(scores, mask, "paper", unavailable, with_paper=True) for mask in MASKS]
    tables += [
        perceptual_table(scores, MASKS, unavailable, with_paper=True),
        ablation_table(scores, MASKS, "paper", unavailable),
        distillation_table(scores, MASKS, "paper", unavailable),
        runtime_table(scores),
    ]
    return "\n".join(to_latex(table, with_std=True) for table in tables)


def test_captions_have_no_table_number_backticks_or_paths(latex_tables, tmp_path):
    captions = re.findall(r"\\caption\{(.*)\}", latex_tables)
    assert len(captions) == 8
    for caption in captions:
        assert not re.match(r"(Supp\. )?Table \d", caption), caption  # LaTeX numbers tables itself
    assert "the paper's Table 1" in latex_tables  # the paper's numbering is still given
    assert "`" not in latex_tables
    assert "machine-specific-cache" not in latex_tables and str(tmp_path) not in latex_tables
    assert r"\texttt{X:distilled}" in latex_tables  # code spans become typewriter text


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="pdflatex is not installed")
def test_tables_compile_with_pdflatex(latex_tables, tmp_path):
    (tmp_path / "tables.tex").write_text(latex_tables)
    document = (
        "\\documentclass{article}\n\\usepackage{booktabs}\n"
        "\\usepackage[margin=1cm,landscape]{geometry}\n\\begin{document}\n\\input{tables.tex}\n\\end{document}\n"
    )
    (tmp_path / "main.tex").write_text(document)
    result = subprocess.run(
        ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "main.tex"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    log = (tmp_path / "main.log").read_text(errors="replace")
    errors = [line for line in log.splitlines() if line.startswith("!")]
    assert result.returncode == 0 and not errors, "\n".join(errors) or result.stdout[-2000:]
    assert (tmp_path / "main.pdf").stat().st_size > 0
