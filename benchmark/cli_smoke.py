"""``python -m benchmark smoke``: every method's path from data to table at one profile (``benchmark.smoke``)."""

from __future__ import annotations

import argparse
from pathlib import Path

from benchmark.cli_args import device_choice, positive_int, resolve_data, split_list


def _smoke(args: argparse.Namespace) -> None:
    from benchmark.registry import known_methods
    from benchmark.smoke import SmokeRequest, smoke

    methods = tuple(split_list(args.methods)) if args.methods else tuple(known_methods())
    out = Path(args.out) if args.out else Path("results/smoke") / args.profile
    request = SmokeRequest(methods=methods, profile=args.profile, data=resolve_data(args.data), out=out,
                           mask=args.mask, batch_size=args.batch_size, sampler_cap=args.sampler_cap,
                           device=args.device, force=args.force)  # fmt: skip
    smoke(request)
    print((out / "smoke.md").read_text(), end="")
    print(f"per-step table: {out / 'smoke.csv'}; logs: {out / 'logs'}; reports: {out / 'reports'}")


def add_smoke(commands: argparse._SubParsersAction) -> None:
    smoke = commands.add_parser(
        "smoke",
        help="one training step per stage, then run and report on one test volume: every method's path at a profile",
        description="For every method (default: all registered): one optimiser step of each training stage, "
        "chained through the smoke's own folders under --out (never the shipped checkpoints), validation on one "
        "val slice, then `run` on the first test volume (one slice on the embedded data) with sampler counts "
        "capped, and `report` on it; each step in its own process, its wall time and peak memory in "
        "OUT/smoke.csv and smoke.md. Resumable: a rerun skips the steps smoke.csv holds.",
    )
    smoke.add_argument("--methods", help="comma-separated method names (default: every registered method)")
    smoke.add_argument("--profile", choices=("tiny", "paper"), default="paper")
    smoke.add_argument("--data", help="dataset whose first file of each split the smoke uses (default: "
                       "$MRIBENCH_DATA or data/embedded)")  # fmt: skip
    smoke.add_argument("--out", help="smoke folder (default: results/smoke/<profile>)")
    smoke.add_argument("--mask", default="gaussian_2d", help="the one mask pattern (default gaussian_2d)")
    smoke.add_argument("--batch-size", type=positive_int, default=1, help="training batch per step (default 1)")
    smoke.add_argument("--sampler-cap", type=positive_int, default=2,
                       help="cap on every sampler count (steps, samples) at `run` (default 2)")  # fmt: skip
    smoke.add_argument("--device", default="auto", type=device_choice, help="auto (CUDA when present), cpu, cuda:N")
    smoke.add_argument("--force", action="store_true", help="delete --out and start over")
    smoke.set_defaults(handler=_smoke)
