"""Reports: table cells against an independent groupby, bold = true best, LaTeX structure, the paper's
numbers against the paper's text, the drift check, and figure grids."""

import re
import subprocess
import sys
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest
from conftest import synthetic_scores

from benchmark.data import LoadOptions
from benchmark.reports.drift import compare, write_baseline
from benchmark.reports.figures import plot_comparison
from benchmark.reports.paper import load_paper_tables
from benchmark.reports.render import to_latex, to_markdown
from benchmark.reports.report import write_report
from benchmark.reports.tables import distillation_table, mask_table, perceptual_table
from benchmark.runner import RunConfig, run_benchmark

PAPER = Path(__file__).resolve().parents[2] / "shared" / "paper" / "next-acceleration-scale-prediction.md"
MASKS = ("cartesian_x", "cartesian_y", "gaussian_2d", "radial")
BASELINE = Path(__file__).resolve().parents[1] / "results" / "baselines" / "ci-small.json"


def test_mask_table_cells_equal_an_independent_groupby():
    table = synthetic_scores()
    result = mask_table(table, "radial", "paper", {}, with_paper=False)
    expected = table[table["mask"] == "radial"].groupby(["method", "contrast"])
    for method in ("zero_filled", "cs_wavelet", "my_method"):
        for contrast in ("T1", "T2", "FLAIR"):
            for metric in ("psnr_paper", "ssim_paper", "lpips_alex"):
                column = f"{metric.replace('_paper', '')}|{contrast}"
                assert result.values.loc[method, column] == pytest.approx(expected[metric].mean()[(method, contrast)])
                assert result.spread.loc[method, column] == pytest.approx(
                    expected[metric].std(ddof=0)[(method, contrast)]
                )
    assert np.isnan(result.values.loc["unet", "psnr|T1"])  # a paper method this run lacks
    perceptual = perceptual_table(table, list(MASKS), {"lpips_vgg": "no weights"}, with_paper=False)
    means = table.groupby(["method", "mask"])["stlpips_alex"].mean()
    assert perceptual.values.loc["cs_wavelet", "gaussian_2d|stlpips_alex"] == pytest.approx(
        means[("cs_wavelet", "gaussian_2d")]
    )


def test_table5_pairs_nasp_base_with_nasp_and_x_with_x_distilled():
    table = synthetic_scores(methods=("zero_filled", "nasp-base", "nasp", "unet", "unet:distilled"))
    result = distillation_table(table, list(MASKS), "paper", {})
    pairs = ["unet", "unet:distilled", "nasp-base", "nasp"]
    assert result.rows == [f"{mask}|{name}" for mask in MASKS for name in pairs]  # zero_filled has no pair
    means = table.groupby(["method", "mask", "contrast"])["psnr_paper"].mean()
    for name in ("nasp-base", "nasp"):
        assert result.values.loc[f"radial|{name}", "psnr|T2"] == pytest.approx(means[(name, "radial", "T2")])
    lone = distillation_table(synthetic_scores(methods=("nasp", "unet")), list(MASKS), "paper", {})
    assert lone.rows == [] and "no base/distilled pair" in lone.notes[0]


def markdown_rows(text):
    return [
        [cell.strip() for cell in line.strip("|").split("|")] for line in text.splitlines() if line.startswith("| ")
    ]


def test_bold_marks_the_best_value_in_each_column_by_direction():
    table = synthetic_scores(seed=1)
    result = mask_table(table, "cartesian_x", "paper", {}, with_paper=False)
    rows = markdown_rows(to_markdown(result))
    header, body = rows[0], rows[1:]
    for index, name in enumerate(header[1:], start=1):
        metric, contrast = (
            (
                "psnr"
                if "PSNR" in name
                else "ssim"
                if name.startswith("SSIM")
                else "lpips_alex"
                if name.startswith("LPIPS")
                else "stlpips_alex"
            ),
            name.split()[1],
        )
        column = result.values[f"{metric}|{contrast}"]
        best = column.idxmax() if metric in ("psnr", "ssim") else column.idxmin()
        bold = [row[0] for row in body if row[index].startswith("**")]
        assert len(bold) == 1 and bold[0].startswith(
            {"zero_filled": "Zero-filled", "cs_wavelet": "CS-Wavelet", "my_method": "my_method"}[best]
        )
        assert ("↓" in name) == (metric in ("lpips_alex", "stlpips_alex"))


def test_latex_has_the_right_column_count_and_escapes():
    result = mask_table(synthetic_scores(), "radial", "paper", {"lpips_alex": "weights 50% missing"}, with_paper=True)
    latex = to_latex(result)
    spec = re.search(r"\\begin\{tabular\}\{(lc*)\}", latex).group(1)
    columns = len(spec)
    assert columns == 1 + 12
    body = [line for line in latex.splitlines() if line.endswith(r"\\") and "&" in line and "multicolumn" not in line]
    assert body and all(line.count("&") == columns - 1 for line in body)
    assert r"my\_method" in latex and "my_method" not in latex.replace(r"my\_method", "")
    assert r"50\% missing" in latex and r"\toprule" in latex and r"\bottomrule" in latex


def parse_paper_rows(first_line_prefix, count):
    lines = PAPER.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(first_line_prefix))
    rows = []
    for line in lines[start + 1 :]:
        # Decimals not preceded by "=" (Table 4's "Top-p=0.96") even when glued to a label ("...)24.02").
        numbers = re.findall(r"(?<![=\w.])\d+\.\d+", line)
        if len(numbers) >= 9 and not line.startswith("Method"):
            rows.append(numbers)
        if len(rows) == count:
            return rows
    raise AssertionError(f"table {first_line_prefix} not found in full")


@pytest.mark.skipif(not PAPER.exists(), reason="the paper lives in ../shared/paper beside the checkout")
@pytest.mark.parametrize(
    ("prefix", "table", "count"),
    [
        ("Table 1:", "table1", 8),
        ("Table 2:", "table2", 8),
        ("Table 3:", "table3", 8),
        ("Supp.Table 1:", "supp_table1", 8),
        ("Supp.Table 2:", "supp_table2", 8),
        ("Table 4:", "table4", 6),
        ("Table 5:", "table5", 8),
    ],
)
def test_paper_numbers_round_trip_to_the_paper_text(prefix, table, count):
    printed = [number for row in parse_paper_rows(prefix, count) for number in row]
    stored = load_paper_tables()
    stored = stored[stored["table"] == table]
    # The CSV lists each table's numbers row by row in the paper's column order, as printed.
    assert stored["value"].tolist() == printed
    assert len(stored) == len(printed)


def test_check_passes_on_the_same_run_and_fails_on_a_perturbed_copy(tmp_path):
    table = synthetic_scores(seed=2)
    baseline = write_baseline(table, tmp_path / "baseline.json", {"origin": "test"})
    import json

    stored = json.loads(baseline.read_text())
    assert compare(table, stored) == []
    perturbed = table.copy()
    moved = (perturbed["method"] == "cs_wavelet") & (perturbed["mask"] == "radial") & (perturbed["contrast"] == "T2")
    perturbed.loc[moved, "psnr_paper"] += 0.5
    problems = compare(perturbed, stored)
    assert len(problems) == 1 and problems[0].startswith("cs_wavelet|radial|T2|psnr_paper")
    tiny = table.copy()
    tiny.loc[moved, "psnr_paper"] += 0.01  # within the 0.05 dB tolerance
    assert compare(tiny, stored) == []
    # A baseline that lacks a group the run has fails too: dropping means cannot switch the gate off.
    thinned = {**stored, "means": {k: v for k, v in stored["means"].items() if not k.startswith("my_method|")}}
    missing = compare(table, thinned)
    assert missing and all(line.startswith("my_method|") and "not in the baseline" in line for line in missing)


def test_a_looser_baseline_tolerance_warns_and_is_refused_under_ci(tmp_path, monkeypatch, capsys):
    import json

    from benchmark.errors import BenchmarkError
    from benchmark.reports.drift import DEFAULT_TOLERANCES, load_baseline

    path = write_baseline(synthetic_scores(), tmp_path / "baseline.json", {"origin": "test"})
    stored = json.loads(path.read_text())
    stored["tolerances"] = {"psnr_paper": 1e9, "ssim_paper": 0.0001}
    path.write_text(json.dumps(stored))
    monkeypatch.delenv("CI", raising=False)
    loaded = load_baseline(path)
    assert loaded["tolerances"]["ssim_paper"] == 0.0001 < DEFAULT_TOLERANCES["ssim_paper"]  # tightening is fine
    assert "loosens the psnr_paper tolerance" in capsys.readouterr().err
    monkeypatch.setenv("CI", "true")
    with pytest.raises(BenchmarkError, match="may only tighten"):
        load_baseline(path)


def test_figure_has_one_panel_per_method_plus_truth(tmp_path):
    rng = np.random.default_rng(0)
    target = rng.random((64, 64))
    panels = [(f"method {i}", target + 0.1 * rng.random((64, 64)), "PSNR 1") for i in range(3)]
    png, pdf = plot_comparison(panels, target, tmp_path / "grid", "test", error_maps=True)
    pixels = matplotlib.image.imread(png)
    assert pdf.exists() and pdf.stat().st_size > 0
    # 2.4 inches per panel at 150 dpi: four panels (truth + three methods).
    assert pixels.shape[1] == pytest.approx(4 * 2.4 * 150, abs=2)
    assert pixels.shape[0] == pytest.approx(3 * 2.5 * 150, abs=2)
    assert pixels[..., :3].std() > 0.1


@pytest.fixture(scope="module")
def small_run(ci_embedded, tmp_path_factory):
    """Every shipped method at the setting its checkpoint was trained at (256 x 256, R = 32), 2 slices; the
    diffusion baselines with their tiny profiles' short samplers (DiffuseRecon 2 x 20 coarse + 4 refinement
    steps, MDPG 10 DDIM steps)."""
    out = tmp_path_factory.mktemp("run") / "ci-small"
    methods = ("zero_filled", "cs_wavelet", "unet", "swinunet", "e2evarnet", "recurrentvarnet", "mambarecon",
               "diffuserecon", "mdpg", "nasp-base", "nasp", "nasp-nocross", "nasp-frozenenc", "nasp-flat")  # fmt: skip
    config = RunConfig(methods=methods, masks=MASKS, contrasts=("T1", "T2", "FLAIR"),
                       data=ci_embedded, out=out, device="cpu", load=LoadOptions(size=(256, 256)))  # fmt: skip
    run_benchmark(config)
    return out


def test_report_writes_tables_and_figures_for_a_run(small_run, tmp_path):
    written = write_report(small_run, tmp_path / "report", with_paper=True)
    names = {path.name for path in written}
    assert {"tables.md", "tables.tex", "tables_std.md", "tables_std.tex", "masks.png"} <= names
    assert {f"grid_{mask}_T1.png" for mask in MASKS} <= names
    text = (tmp_path / "report" / "tables.md").read_text()
    # four mask tables, Supp. Table 2, Tables 4 and 5 with their paired differences to NASP base, runtime
    assert text.count("### ") == 4 + 6
    assert {f"distillation_nasp-base_{mask}_T1.png" for mask in MASKS} <= names  # Fig. 5: base vs distilled
    assert "no base/distilled pair" not in text  # Table 5 pairs nasp-base with nasp
    assert "24.61" in text  # the paper's NASP PSNR, Table 1, in its labelled rows
    assert " ± " in (tmp_path / "report" / "tables_std.md").read_text()


def test_ci_drift_check_against_the_stored_baseline(small_run):
    """CI's drift check: a change that moves any metric of the small run fails here."""
    result = subprocess.run(
        [sys.executable, "-m", "benchmark", "check", str(small_run), "--baseline", str(BASELINE)],
        capture_output=True,
        text=True,
    )
    accept = f"python -m benchmark check {small_run} --baseline {BASELINE} --update"
    assert result.returncode == 0, f"{result.stderr}\nIf the change is intended, accept it with: {accept}"
    assert "no drift" in result.stdout


def test_ablation_rows_built_on_another_tokenizer_say_so():
    from benchmark.reports.report import tokenizer_notes

    def built_on(sha):
        return {"tokenizer": {"path": "tok.pt", "sha256": sha}}

    distilled = {"teacher": {"sha256": "t" * 64, "provenance": {"transformer": {"provenance": built_on("a" * 64)}}}}
    methods = {"zero_filled": {"checkpoint_provenance": None},
               "nasp-base": {"checkpoint_provenance": built_on("a" * 64)},
               "nasp": {"checkpoint_provenance": distilled},
               "nasp-nocross": {"checkpoint_provenance": built_on("b" * 64)}}  # fmt: skip
    assert tokenizer_notes(methods) == {"nasp-nocross": f"built on tokenizer {'b' * 12}, not NASP base's {'a' * 12}"}
    assert tokenizer_notes({k: v for k, v in methods.items() if k != "nasp-base"}) == {}


def test_generalisation_tables_put_each_dataset_beside_the_first_with_the_gap_to_zero_filling():
    from benchmark.reports.shift import shift_tables

    home = synthetic_scores(methods=("zero_filled", "unet"), seed=3)
    away = synthetic_scores(methods=("zero_filled", "unet"), seed=4)
    away.loc[away["method"] == "unet", "psnr_paper"] -= 10  # worse than zero filling on the other data
    from benchmark.runner.record import RunRecord

    def meta(data_hash):
        return RunRecord(config={}, config_hash="c", data_hash=data_hash, methods={}, metrics={},
                         dataset={"name": "embedded"})  # fmt: skip

    runs = [("in distribution", home, None, meta("a" * 64)), ("shifted heads", away, None, meta("b" * 64))]
    tables = shift_tables(runs, "paper")
    assert [t.title.split(",")[1].split(":")[0].strip() for t in tables] == ["ES Cartesian-X", "ES Cartesian-Y",
                                                                             "Gaussian-VD", "Radial"]  # fmt: skip
    radial = tables[-1]
    means = [run[run["mask"] == "radial"].groupby("method")["psnr_paper"].mean() for run in (home, away)]
    assert radial.values.loc["unet", "1|psnr"] == pytest.approx(means[1]["unet"])
    gap = radial.values.loc["unet", "1|psnr vs zero-filled"]
    assert gap == pytest.approx(means[1]["unet"] - means[1]["zero_filled"]) and gap < 0
    assert [group for group, _ in radial.groups] == ["in distribution", "shifted heads"]
    text = to_markdown(radial)
    assert "ΔPSNR vs ZF ↑" in text and "bbbbbbbbbbbbbbbb" in text
