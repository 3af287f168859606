"""Argument helpers every command shares: comma lists, the dataset directory, the scoring protocol."""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from benchmark.errors import BenchmarkError
from benchmark.metrics.base import SCORING_PROTOCOLS

#: Devices a command accepts: ``auto`` (CUDA when present), the CPU, a CUDA device.
DEVICE_PATTERN = re.compile(r"auto|cpu|cuda(:\d+)?")


def positive_int(text: str) -> int:
    """An argparse type: an integer >= 1 (argparse prints its usage line and this one error line otherwise)."""
    return _bounded_int(text, 1, "a positive integer")


def nonnegative_int(text: str) -> int:
    """An argparse type: an integer >= 0."""
    return _bounded_int(text, 0, "an integer >= 0")


def _bounded_int(text: str, lowest: int, wanted: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be {wanted}, got {text!r}") from None
    if value < lowest:
        raise argparse.ArgumentTypeError(f"must be {wanted}, got {value}")
    return value


def device_choice(text: str) -> str:
    """An argparse type: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``."""
    if not DEVICE_PATTERN.fullmatch(text):
        raise argparse.ArgumentTypeError(f"must be auto, cpu, cuda or cuda:N, got {text!r}")
    return text


def int_list(text: str, option: str = "coil counts") -> tuple[int, ...]:
    """``"8,12"`` -> ``(8, 12)``; anything else is a one-line error naming ``option``."""
    try:
        values = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise BenchmarkError(f"{option} must be comma-separated integers, got {text!r}") from None
    if any(value < 1 for value in values):
        raise BenchmarkError(f"{option} must be positive integers, got {text!r}")
    return values


def resolve_data(requested: str | None) -> Path:
    """The dataset directory: a given one must exist; the default embedded one is built when missing."""
    from benchmark.data import build_embedded, default_data_root

    data = Path(requested) if requested else default_data_root()
    if not data.exists():
        if requested:
            raise BenchmarkError(f"data directory {data} does not exist")
        print(f"no dataset at {data}: building the embedded default (about a minute)")
        build_embedded(data)
    return data


def add_scoring(parser: argparse.ArgumentParser, shown: str) -> None:
    """``--scoring`` and its deprecated alias ``--protocol`` (resolved by ``resolve_scoring``), and ``--region``."""
    parser.add_argument("--scoring", choices=SCORING_PROTOCOLS, help=f"scoring protocol for {shown} (default: paper)")
    parser.add_argument(
        "--protocol", dest="deprecated_protocol", choices=SCORING_PROTOCOLS, help="deprecated alias of --scoring"
    )
    parser.add_argument(
        "--region",
        choices=("image", "head"),
        default="image",
        help=f"where {shown} average: the whole image (default, the paper's) or the head region only (a mask "
        "derived from the fully sampled target, for scoring only; every run stores both)",
    )


def resolve_scoring(args: argparse.Namespace) -> None:
    """Fill ``args.scoring`` from ``--scoring`` or the deprecated ``--protocol`` (one warning line on stderr)."""
    if not hasattr(args, "scoring"):
        return
    old = args.deprecated_protocol
    if old is not None:
        print("warning: --protocol is deprecated; use --scoring", file=sys.stderr)
        if args.scoring is not None and args.scoring != old:
            raise BenchmarkError(f"--scoring {args.scoring} and --protocol {old} disagree; give --scoring only")
    args.scoring = args.scoring or old or "paper"


def split_list(text: str) -> list[str]:
    """``"a, b,"`` -> ``["a", "b"]``."""
    return [item.strip() for item in text.split(",") if item.strip()]
