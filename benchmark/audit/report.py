"""``report AUDIT_DIR``: the audit's tables (markdown + LaTeX), ``audit.csv`` and the distillation verdict.

Captions follow the other tables' rule (data, maps, normalisation, from the clean run's ``run.json``) and add the
audit's own conventions: magnitudes in data units, magnitude-only outputs scored for NHE on the truth's phase.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from benchmark.audit.figures import plot_cr_curves, plot_lesion_grid
from benchmark.audit.lesions import LESIONS_PER_SLICE
from benchmark.audit.observers import CONSPICUITY_LEVELS
from benchmark.audit.run import CLEAN_RUN, LESION_TABLE, SLICE_TABLE
from benchmark.audit.tables import (
    BASE,
    DISTILLED,
    distillation_test,
    distillation_verdict,
    lesion_cells,
    slice_cells,
    tidy_audit,
)
from benchmark.data import dataset_files
from benchmark.io import atomic_path
from benchmark.reports.render import to_latex, to_markdown
from benchmark.reports.report import data_statement
from benchmark.reports.tables import Table
from benchmark.runner.record import RunRecord

AUDIT_CONVENTIONS = (
    f"Audit: up to {LESIONS_PER_SLICE} smooth disc lesions per test slice inserted through the forward model "
    "(same noise, same masks); magnitudes in data units; 95 % intervals resample subjects."
)


def is_audit(directory: str | Path) -> bool:
    return (Path(directory) / LESION_TABLE).is_file() and (Path(directory) / CLEAN_RUN).is_dir()


def write_audit_report(audit_dir: str | Path, out: str | Path) -> list[Path]:
    audit_dir, out = Path(audit_dir), Path(out)
    lesions, slices = pd.read_csv(audit_dir / LESION_TABLE), pd.read_csv(audit_dir / SLICE_TABLE)
    statement = f"{data_statement(RunRecord.read(audit_dir / CLEAN_RUN), 'audit')} {AUDIT_CONVENTIONS}"
    test = distillation_test(lesions, slices)
    cells = lesion_cells(lesions)
    tables = [lesion_table(cells, statement), slice_table(slice_cells(slices), statement)]
    if not test.empty:
        tables.append(distillation_table(test, statement))
    verdict = distillation_verdict(test)
    out.mkdir(parents=True, exist_ok=True)
    markdown = "# Hallucination audit\n\n" + "\n".join(to_markdown(t) for t in tables) + f"\n**{verdict}**\n"
    written = {
        out / "audit.md": markdown,
        out / "audit.tex": "\n".join(to_latex(t) for t in tables) + f"\n% {verdict}\n",
        out / "audit.csv": tidy_audit(lesions).to_csv(index=False),
        out / "distillation.csv": test.to_csv(index=False),
    }
    for path, text in written.items():
        with atomic_path(path) as tmp:
            tmp.write_text(text)
    return [*written, plot_cr_curves(cells, out / "cr_vs_radius"), *_grids(audit_dir, lesions, out)]


def _grids(audit_dir: Path, lesions: pd.DataFrame, out: Path) -> list[Path]:
    """One lesion grid per mask, on the first audited volume."""
    config = RunRecord.read(audit_dir / CLEAN_RUN).config
    first = lesions["file"].iloc[0]
    (file,) = [path for path in dataset_files(Path(config["data"]), config["split"]) if path.name == first]
    methods = list(lesions["method"].unique())
    return [plot_lesion_grid(audit_dir, methods, mask, file, out / f"grid_{mask}") for mask in lesions["mask"].unique()]


def _table(title: str, caption: str, cells: pd.DataFrame, groups, labels: dict[str, str], rows) -> Table:
    """A ``Table`` of ``cells`` (index: rows; columns: keys, with ``<key>_low``/``_high`` intervals), unbolded:
    CR's best is 1, not its largest value."""
    columns = [c for _, cols in groups for c in cols]
    values = cells.reindex(index=rows, columns=columns).astype(float)
    low = cells.reindex(index=rows, columns=[f"{c}_low" for c in columns]).set_axis(columns, axis=1)
    high = cells.reindex(index=rows, columns=[f"{c}_high" for c in columns]).set_axis(columns, axis=1)
    return Table(title, caption, rows, groups, values, ci_low=low.astype(float), ci_high=high.astype(float),
                 show_ci=True, bold={c: set() for c in columns}, column_labels=labels)  # fmt: skip


def lesion_table(cells: pd.DataFrame, statement: str) -> Table:
    measures = ["cr", "cr_low", "cr_high", "auc", "auc_low", "auc_high", "efficiency"]
    wide = cells.pivot_table(index=["mask", "method"], columns="radius_px", values=measures, sort=False)
    radii = sorted(cells["radius_px"].unique())
    wide.columns = [f"{name}@{radius:g}" for name, radius in wide.columns]
    wide.index = [f"{mask}|{method}" for mask, method in wide.index]
    groups = [(f"ρ = {r:g} px", [f"cr@{r:g}", f"auc@{r:g}", f"efficiency@{r:g}"]) for r in radii]
    labels = {f"{k}@{r:g}": label for r in radii for k, label in (("cr", "CR"), ("auc", "AUC"), ("efficiency", "eff."))}
    caption = (
        f"{statement} CR = 1 faithful, 0 erased, > 1 exaggerated. AUC: a non-prewhitening matched filter on the "
        "reconstruction with against without the lesion; eff. = (d'/d'_data)², d'_data the measurements' ideal "
        "observer (√2‖MFSℓ‖/σ), which knows the background exactly and faces only noise, while the matched "
        "filter on a reconstruction faces anatomy that differs from site to site: hence efficiencies far below 1; "
        "0 at or below chance (AUC ≤ 0.5)."
    )
    return _table("Known lesions: contrast recovery and detectability", caption, wide, groups, labels, list(wide.index))


def slice_table(cells: pd.DataFrame, statement: str) -> Table:
    cells = cells.set_index(cells["mask"] + "|" + cells["method"])
    levels = [f"false_c{level:g}" for level in CONSPICUITY_LEVELS]
    labels = {"nhe_own_phase": "NHE, own phase ↓", "nhe_truth_phase": "NHE, truth's phase ↓",
              "dc_error": "‖Ax̂ − y‖/‖y‖ ↓"} | {key: f"≥ {key.removeprefix('false_c')} ↓" for key in levels}  # fmt: skip
    caption = (
        f"{statement} NHE: null-space hallucination error ‖(I − A⁺A)e‖² / ‖(I − A⁺A)x‖² (Bhadra et al. 2021; "
        "A⁺A by conjugate gradients). On an output's own phase (complex outputs only) zero filling, which lies in "
        "the range of Aᴴ, has 1 by construction and the truth 0: its row calibrates the projector. On the "
        "truth's phase (every output, the only NHE a magnitude output has) phase errors are forgiven but an "
        "output's magnitude is kept, and a magnitude is not in the range of Aᴴ: zero filling's aliasing raises "
        "magnitudes everywhere, so its NHE there exceeds 1 most where the aliasing is incoherent (Gaussian-VD). "
        "False structures per image: lesion-like spots (the detection observer's filter, every lesion radius and "
        "sign) by which the lesion-free reconstruction exceeds the truth (within 1 px), counted where they are as "
        "conspicuous as an inserted lesion of contrast ≥ 0.1, 0.2 and 0.4 of the local background."
    )
    groups = [("", ["nhe_own_phase", "nhe_truth_phase", "dc_error"]), ("false structures / image", levels)]
    return _table(
        "Invented content: null space and false structures", caption, cells, groups, labels, list(cells.index)
    )


def distillation_table(test: pd.DataFrame, statement: str) -> Table:
    cells = test.set_index(test["mask"] + "|" + test["measure"]).rename(columns={"low": "difference_low",
                                                                             "high": "difference_high"})  # fmt: skip
    cells = cells.assign(**{f"{c}_{side}": np.nan for c in (BASE, DISTILLED, "p_holm") for side in ("low", "high")})
    labels = {BASE: "NASP base", DISTILLED: "NASP (distilled)", "difference": "distilled − base", "p_holm": "Holm p"}
    caption = (
        f"{statement} Per-subject means, paired over {int(test['subjects'].min())} subjects; lower is better for "
        "every measure (false structures: as conspicuous as the faintest inserted lesion, 0.1; NHE on the "
        "outputs' own phase, both complex; CR error: |CR − 1| per lesion); Wilcoxon signed-rank p, Holm-adjusted "
        "over the table."
    )
    groups = [("", [BASE, DISTILLED, "difference", "p_holm"])]
    return _table("Does distillation reduce hallucination? (§4.3, Fig. 5)", caption, cells, groups, labels,
                  list(cells.index))  # fmt: skip
