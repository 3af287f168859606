"""The commands that read finished runs or time methods: ``report``, ``check`` and ``perf``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from benchmark.cli_args import (
    add_scoring,
    device_choice,
    int_list,
    nonnegative_int,
    positive_int,
    resolve_data,
    split_list,
)


def _report(args: argparse.Namespace) -> None:
    from benchmark.reports.report import write_report
    from benchmark.reports.sweep import write_sweep_report
    from benchmark.runner.sweep import is_sweep

    out = Path(args.out) if args.out else Path("reports") / Path(args.run_dir).name
    from benchmark.audit.report import is_audit, write_audit_report

    if is_audit(args.run_dir):  # an audit folder: its own tables and verdict
        for path in write_audit_report(args.run_dir, out):
            print(f"wrote {path}")
        return
    options = dict(with_paper=args.with_paper, slice_choice=args.slice, error_maps=args.error_maps,
                   with_stats=args.stats, reference=args.reference, seed_runs=tuple(args.seed_runs),
                   perf=args.perf, family=args.family, region=args.region,
                   shift_runs=tuple(args.shift))  # fmt: skip
    writer = write_sweep_report if is_sweep(args.run_dir) else write_report
    written = writer(args.run_dir, out, args.scoring, **options)
    if args.training:
        from benchmark.reports.training import write_training_report

        written = [*written, *write_training_report(out)]
    for path in written:
        print(f"wrote {path}")


def _check(args: argparse.Namespace) -> None:
    from benchmark.reports.drift import compare, load_baseline, write_baseline
    from benchmark.reports.loading import load_run

    table, metadata = load_run(args.run_dir)
    if args.update:
        origin = {key: getattr(metadata, key) for key in ("config_hash", "data_hash", "git_commit")}
        print(f"wrote baseline {write_baseline(table, args.baseline, origin)}")
        return
    baseline = load_baseline(args.baseline)
    problems = compare(table, baseline)
    if problems:
        print(f"{len(problems)} metric(s) drifted from {args.baseline}:", file=sys.stderr)
        for line in problems:
            print(f"  {line}", file=sys.stderr)
        raise SystemExit(1)
    print(f"no drift: {len(baseline['means'])} means within tolerance of {args.baseline}")


def add_report(commands: argparse._SubParsersAction) -> None:
    report = commands.add_parser(
        "report",
        help="write the paper's tables (markdown, LaTeX) and figure grids for a run",
        description="Tables 1-5 and Supp. Tables 1-2 from RUN_DIR/metrics.csv (mean, and mean ± std in "
        "tables_std.*), the mask figure, and one comparison grid per mask.",
    )
    report.add_argument("run_dir", help="a finished run directory")
    report.add_argument("--out", help="output folder (default: reports/<run name>)")
    add_scoring(report, "the tables' PSNR/SSIM")
    report.add_argument("--with-paper", action="store_true", help="print the paper's published numbers beside ours")
    report.add_argument("--slice", help="slice for the figures as FILE.h5:INDEX (default: most informative)")
    report.add_argument("--error-maps", action="store_true", help="add an error-map row to the figures")
    report.add_argument(
        "--stats",
        action="store_true",
        help="also write tables_ci.md/.tex (95%% subject-bootstrap intervals) and stats.csv (means, intervals, "
        "Wilcoxon p and Holm-adjusted p per cell)",
    )
    report.add_argument("--reference", help="method every other is tested against (default: the best of each column)")
    report.add_argument(
        "--family",
        choices=("column", "reference", "table"),
        help="the tests Holm's correction runs over: column (each column's methods vs its best; the default), "
        "reference (per mask, the --reference vs the baselines x contrasts x PSNR/SSIM; the default with "
        "--reference), table (every test of a table: the strictest)",
    )
    report.add_argument(
        "--seed-runs",
        nargs="+",
        default=(),
        metavar="RUN",
        help="runs of one method of RUN_DIR with checkpoints trained from other seeds: writes seeds.md (its means "
        "per seed beside the gaps to the other methods)",
    )
    report.add_argument("--perf", metavar="CSV", help="a `benchmark perf` table: adds the throughput table")
    report.add_argument(
        "--training",
        action="store_true",
        help="also write training.md and training_curves.png: every shipped checkpoint's validation curve, "
        "slices seen, wall time, best / last step and capacity check",
    )
    report.add_argument(
        "--shift",
        nargs="+",
        default=(),
        metavar="RUN",
        help="runs of the same methods on other data (shifted heads from `prepare --shifted`, converted fastMRI): "
        "adds the generalisation tables (in distribution beside each, and the difference to zero filling)",
    )
    report.set_defaults(handler=_report)


def add_check(commands: argparse._SubParsersAction) -> None:
    check = commands.add_parser(
        "check",
        help="fail when a run's metric means drift from a stored baseline",
        description="Compare every (method, mask, contrast, metric) mean with the baseline; exit 1 naming each "
        "that moved more than its tolerance. --update rewrites the baseline from this run, on purpose.",
    )
    check.add_argument("run_dir", help="a finished run directory")
    check.add_argument("--baseline", required=True, help="baseline JSON, e.g. results/baselines/ci-small.json")
    check.add_argument("--update", action="store_true", help="rewrite the baseline from this run")
    check.set_defaults(handler=_check)


def add_perf(commands: argparse._SubParsersAction) -> None:
    perf = commands.add_parser(
        "perf",
        help="time every method the same way: s/image, images/s, memory, parameters, FLOPs, fraction of peak",
        description="Per method and batch size: seconds per image (median, min, max over --repeats after "
        "--warmup untimed calls; CUDA events on a GPU), images/s, peak GPU memory, parameters, FLOPs per image "
        "(torch's FLOP counter) and the fraction of a matmul peak this command measures. --profile paper times "
        "random weights. Writes a tidy CSV (default results/perf/<profile>-<device>.csv); `report RUN --perf CSV` "
        "adds a throughput table from it beside the run's runtime table.",
    )
    perf.add_argument("--methods", required=True, help="comma-separated method names")
    perf.add_argument("--profile", default="tiny", choices=["tiny", "paper"])
    perf.add_argument("--batch", default="1,8", help="comma-separated batch sizes (default 1,8)")
    perf.add_argument("--device", default="auto", type=device_choice)
    perf.add_argument("--repeats", type=positive_int, default=5)
    perf.add_argument("--warmup", type=nonnegative_int, default=1)
    perf.add_argument("--data", help="dataset directory whose first test volume is the input (default: embedded)")
    perf.add_argument("--size", type=positive_int, nargs=2, default=[256, 256], metavar=("H", "W"))
    perf.add_argument("--out", help="output CSV")
    perf.add_argument("--switches", nargs="?", const="all", default="", metavar="NAMES",
                      help="also time these speed switches (comma-separated; all without names) flipped alone, "
                      "with the output's largest relative change (NASP: kv_cache, sdpa, bf16, compile)")  # fmt: skip
    perf.add_argument(
        "--with-scoring",
        action="store_true",
        help="also time scoring (PSNR/SSIM/NMSE): batched torch on the device vs skimage per slice",
    )
    perf.set_defaults(handler=_perf)


def _perf(args: argparse.Namespace) -> None:
    from benchmark.perf import PerfRequest, run_perf
    from benchmark.runner.environment import resolve_device

    device = resolve_device(args.device)
    out = Path(args.out) if args.out else Path("results/perf") / f"{args.profile}-{device.type}.csv"
    request = PerfRequest(methods=tuple(split_list(args.methods)), data=resolve_data(args.data), out=out,
                          profile=args.profile, batches=int_list(args.batch, "--batch"), device=device,
                          repeats=args.repeats, warmup=args.warmup, size=tuple(args.size),
                          switches=tuple(split_list(args.switches)), time_scoring=args.with_scoring)  # fmt: skip
    table = run_perf(request)
    shown = ["method", "setting", "batch", "s_per_image", "images_per_s", "parameters", "flops_per_image",
             "fraction_of_peak", "max_rel_difference"]  # fmt: skip
    print(table[shown].to_string(index=False))
    print(f"weights: {', '.join(sorted(set(table['weights'].dropna())))}; peak measured: "
          f"{table['measured_peak_flops'].iloc[0] / 1e9:.1f} GFLOP/s; table: {out}")  # fmt: skip
