"""Markdown and LaTeX (booktabs) rendering of ``Table`` objects: bold best, ↑/↓ headers, footnotes."""

from __future__ import annotations

import math
import re

from benchmark.masks import PATTERN_NAMES
from benchmark.reports.tables import LOWER_IS_BETTER, METRIC_LABELS, Table, best_rows, method_label

DASH = "—"


def format_value(
    value: float, column: str, spread: float | None = None, interval: tuple[float, float] | None = None
) -> str:
    """A cell: 2 decimals for PSNR/batch/memory, 4 for runtime, 3 otherwise; "—" for missing; optional
    "± std" or "[low, high]"."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return DASH
    if math.isinf(value):
        return "∞" if value > 0 else "-∞"
    if column.endswith("|batch"):
        return f"{int(value)}" if float(value).is_integer() else f"{value:.1f}"
    if "efficiency" in column:  # a fraction of the data's ceiling, often far below 0.001: significant digits
        return f"{value:.2g}"
    digits = 2 if any(key in column for key in ("psnr", "peak")) else 4 if "s/image" in column else 3
    text = f"{value:.{digits}f}"
    if spread is not None and not math.isnan(spread):
        text += f" ± {spread:.{digits}f}"
    if interval is not None and not any(math.isnan(bound) for bound in interval):
        text += f" [{interval[0]:.{digits}f}, {interval[1]:.{digits}f}]"
    return text


def header_label(column: str) -> str:
    """The sub-column label with its direction arrow."""
    left, _, right = column.partition("|")
    metric, sub = (right, None) if left in PATTERN_NAMES else (left, right)
    if left == "runtime":
        return right + (" ↓" if right == "s/image" else "")
    label = METRIC_LABELS.get(metric, metric)
    arrow = "↓" if metric in LOWER_IS_BETTER else "↑"
    return f"{sub} {arrow}" if sub else f"{label} {arrow}"


def _row_label(row: str) -> str:
    mask, _, name = row.rpartition("|")
    return f"{mask}: {method_label(name)}" if mask else method_label(name)


def _cells(table: Table, with_std: bool, with_ci: bool = False) -> list[list[tuple[str, bool, str]]]:
    """(text, bold, mark) per cell."""
    best = best_rows(table) | table.bold
    columns = [c for _, cols in table.groups for c in cols]
    body = []
    for row in table.rows:
        cells = []
        for column in columns:
            spread = (
                table.spread.loc[row, column]
                if with_std and table.spread is not None and column in table.spread
                else None
            )
            interval = None
            if (with_ci or table.show_ci) and table.ci_low is not None and column in table.ci_low:
                interval = (table.ci_low.loc[row, column], table.ci_high.loc[row, column])
            text = format_value(table.values.loc[row, column], column, spread, interval)
            cells.append((text, row in best.get(column, set()), table.marks.get((row, column), "")))
        body.append(cells)
    return body


def to_markdown(table: Table, with_std: bool = False, with_ci: bool = False) -> str:
    columns = [c for _, cols in table.groups for c in cols]
    notes = list(table.notes)
    header = ["Method"] + [
        (f"{group} " if group else "") + table.column_labels.get(c, header_label(c))
        for group, cols in table.groups
        for c in cols
    ]
    lines = [f"### {table.title}", "", table.caption, "", "| " + " | ".join(header) + " |"]
    lines.append("|" + "---|" * len(header))
    for row, cells in zip(table.rows, _cells(table, with_std, with_ci), strict=True):
        label = _row_label(row)
        if row in table.row_notes:
            notes.append(f"{label}: {table.row_notes[row]}")
            label += f" [{len(notes)}]"
        rendered = [(f"**{t}**" if bold else t) + mark for t, bold, mark in cells]
        lines.append("| " + " | ".join([label] + rendered) + " |")
    if table.paper is not None:
        lines.append(f"| *{table.paper_label}* |" + " |" * len(columns))
        for method, published in table.paper.iterrows():
            values = [published.get(c, DASH) for c in columns]
            lines.append("| " + " | ".join([f"*{method_label(method)} (paper)*"] + values) + " |")
    lines += [""] + [f"[{i}] {note}" for i, note in enumerate(notes, start=1)]
    return "\n".join(lines).rstrip() + "\n"


def latex_escape(text: str) -> str:
    replacements = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                    "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}  # fmt: skip
    escaped = "".join(replacements.get(ch, ch) for ch in text)
    return (
        escaped.replace("↑", r"$\uparrow$")
        .replace("↓", r"$\downarrow$")
        .replace("±", r"$\pm$")
        .replace("—", "---")
        .replace("∞", r"$\infty$")
        .replace("▲", r"$^{\triangle}$")
        .replace("α", r"$\alpha$")
    )


def latex_caption(table: Table) -> str:
    """The caption without a "Table N:" prefix (LaTeX numbers its tables); the paper's number follows."""
    label, sep, rest = table.title.partition(": ")
    if sep and label.split()[-2:-1] == ["Table"]:
        return f"{rest} (the paper's {label}). {table.caption}"
    return f"{table.title}. {table.caption}"


def latex_text(text: str) -> str:
    """Escaped prose: markdown code spans (`x`) become ``\\texttt{x}``."""
    return re.sub(r"`([^`]*)`", r"\\texttt{\1}", latex_escape(text))


def to_latex(table: Table, with_std: bool = False, with_ci: bool = False) -> str:
    columns = [c for _, cols in table.groups for c in cols]
    spec = "l" + "c" * len(columns)
    lines = [r"\begin{table}[t]", r"\centering", rf"\caption{{{latex_text(latex_caption(table))}}}"]
    lines += [rf"\begin{{tabular}}{{{spec}}}", r"\toprule"]
    if any(group for group, _ in table.groups):
        spans = " & ".join(
            rf"\multicolumn{{{len(cols)}}}{{c}}{{{latex_escape(group)}}}" for group, cols in table.groups
        )
        lines.append(f" & {spans} \\\\")
        start = 2
        rules = []
        for _, cols in table.groups:
            rules.append(rf"\cmidrule(lr){{{start}-{start + len(cols) - 1}}}")
            start += len(cols)
        lines.append(" ".join(rules))
    labels = [table.column_labels.get(c, header_label(c)) for c in columns]
    lines.append("Method & " + " & ".join(latex_escape(label) for label in labels) + r" \\")
    lines.append(r"\midrule")
    notes = list(table.notes)
    for row, cells in zip(table.rows, _cells(table, with_std, with_ci), strict=True):
        label = latex_escape(_row_label(row))
        if row in table.row_notes:
            notes.append(f"{_row_label(row)}: {table.row_notes[row]}")
        rendered = [
            (rf"\textbf{{{latex_escape(t)}}}" if bold else latex_escape(t)) + latex_escape(mark)
            for t, bold, mark in cells
        ]
        lines.append(" & ".join([label] + rendered) + r" \\")
    if table.paper is not None:
        lines.append(r"\midrule")
        lines.append(rf"\multicolumn{{{len(columns) + 1}}}{{l}}{{\textit{{{latex_escape(table.paper_label)}}}}} \\")
        for method, published in table.paper.iterrows():
            values = [latex_escape(published.get(c, DASH)) for c in columns]
            lines.append(" & ".join([latex_escape(method_label(method))] + values) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    if notes:
        lines.append(r"\par\footnotesize " + "; ".join(latex_text(n) for n in notes))
    lines.append(r"\end{table}")
    return "\n".join(lines) + "\n"
