"""``python -m benchmark audit``: the hallucination audit (``benchmark.audit``) from the command line."""

from __future__ import annotations

import argparse
from pathlib import Path

from benchmark.cli_args import add_grid_options, grid_config, positive_int, split_list


def _audit(args: argparse.Namespace) -> None:
    from benchmark.audit.observers import CONSPICUITY_LEVELS
    from benchmark.audit.run import run_audit
    from benchmark.audit.tables import false_per_image

    name = f"{args.profile}-{'+'.join(split_list(args.methods))}"
    out = Path(args.out) if args.out else Path("results/audit") / name
    print(f"audit directory: {out}")
    lesions, slices = run_audit(grid_config(args, out, args.acceleration), resume=args.resume)
    keys = ["method", "mask"]
    summary = lesions.groupby(keys, sort=False)["cr"].median().rename("median CR").to_frame()

    for column, label in (("nhe_own_phase", "NHE (own phase)"), ("nhe_truth_phase", "NHE (truth's phase)")):
        summary[label] = slices.groupby(keys, sort=False)[column].mean()
    for level in (CONSPICUITY_LEVELS[0], CONSPICUITY_LEVELS[-1]):
        rate = false_per_image(slices, level).groupby([slices[k] for k in keys], sort=False).mean()
        summary[f"false structures / image (>= {level:g})"] = rate
    print(summary.round(3).to_string())
    print(f"per-lesion table: {out / 'lesions.csv'} ({len(lesions)} rows); per-slice: {out / 'slices.csv'}")


def add_audit(commands: argparse._SubParsersAction) -> None:
    audit = commands.add_parser(
        "audit",
        help="hallucination audit: known lesions through the physics, null-space errors, false structures",
        description="Insert known synthetic lesions into a paired copy of the test split through the forward "
        "model, reconstruct both splits with every method (two ordinary runs, same masks and seeds), and score "
        "contrast recovery, matched-filter detectability against the measurements' ideal observer, null-space "
        "hallucination error and false structures. Interrupt at any time and continue with --resume.",
    )
    add_grid_options(audit)
    audit.add_argument("--out", help="audit directory (default: results/audit/<profile>-<methods>)")
    audit.add_argument("--acceleration", type=positive_int, default=32, help="acceleration R (default 32)")
    audit.set_defaults(handler=_audit)
