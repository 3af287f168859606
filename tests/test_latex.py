"""Paper-ready LaTeX: captions without "Table N:", no markdown backticks, no machine paths, and a file
that pdflatex compiles without errors (where pdflatex is installed)."""

import re
import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest

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


def synthetic_scores() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = [
        dict(
            method=method,
            mask=mask,
            contrast=contrast,
            file=f"{contrast}.h5",
            slice=image,
            acceleration=32,
            psnr_paper=rng.normal(20, 2),
            ssim_paper=rng.uniform(0.3, 0.9),
            lpips_alex=np.nan,
            lpips_vgg=np.nan,
            dists=np.nan,
            stlpips_alex=rng.uniform(0.1, 0.5),
            runtime_s=rng.uniform(0.01, 1),
            batch_size=8,
            peak_memory_bytes=0,
            device="cpu",
        )  # fmt: skip
        for method in ("zero_filled", "unet", "unet:distilled")
        for mask in MASKS
        for contrast in ("T1", "T2", "FLAIR")
        for image in range(3)
    ]
    return pd.DataFrame(rows)


@pytest.fixture
def latex_tables(tmp_path, monkeypatch) -> str:
    # A torch cache under a machine-specific path, empty: the LPIPS/DISTS footnotes must not name it.
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "machine-specific-cache"))
    unavailable = {"lpips_alex": backbone_problem("alexnet"), "lpips_vgg": backbone_problem("vgg16")}
    scores = synthetic_scores()
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
