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


NORMALIZATION_HELP = (
    "measured (default): divide by a scale from the R=32 measurements only; slice_max: by the target's "
    "maximum (the paper authors' pipeline); none"
)


def add_grid_options(parser: argparse.ArgumentParser) -> None:
    """What ``run`` and ``audit`` share: the grid of methods, masks, contrasts and volumes, and how it is loaded."""
    from benchmark.data.normalization import NORMALIZATIONS

    parser.add_argument(
        "--methods",
        default="zero_filled",
        help="comma-separated method names (default: zero_filled); `python -m benchmark methods` lists them",
    )
    parser.add_argument(
        "--masks", default="cartesian_x,cartesian_y,gaussian_2d,radial", help="comma-separated mask patterns"
    )
    parser.add_argument("--contrasts", default="T1,T2,FLAIR", help="comma-separated contrasts (default: T1,T2,FLAIR)")
    parser.add_argument("--data", help="dataset directory (default: $MRIBENCH_DATA or data/embedded, built if missing)")
    parser.add_argument("--profile", default="tiny", choices=["tiny", "paper"], help="method sizes (default: tiny)")
    parser.add_argument("--resume", action="store_true", help="continue, skipping finished (method, mask, volume)")
    parser.add_argument(
        "--device", default="auto", type=device_choice, help="auto (CUDA when present), cpu, cuda, cuda:N"
    )
    parser.add_argument("--split", default="test", help="dataset split to evaluate (default: test)")
    parser.add_argument("--target", default="sense", choices=["sense", "rss"], help="reference image (default: sense)")
    parser.add_argument(
        "--size", type=positive_int, nargs=2, default=[256, 256], metavar=("H", "W"), help="image size (256 256)"
    )
    parser.add_argument(
        "--batch-size",
        type=positive_int,
        help="slices per reconstruct call, shared by volumes of one coil count (default: 8 on a GPU, 2 on a CPU, "
        "where larger batches cost more per image)",
    )
    parser.add_argument("--seed", type=nonnegative_int, default=0, help="seed for stochastic methods (default 0)")
    parser.add_argument("--normalization", default="measured", choices=NORMALIZATIONS, help=NORMALIZATION_HELP)
    parser.add_argument(
        "--checkpoint",
        action="append",
        metavar="METHOD=PATH",
        help="score this checkpoint for METHOD instead of the shipped one (repeatable); recorded in run.json",
    )
    parser.add_argument(
        "--allow-mismatch",
        action="store_true",
        help="score checkpoints trained at another size, R or normalisation (recorded; rows marked in every table)",
    )


def grid_config(args: argparse.Namespace, out: Path, acceleration: int):
    """The ``RunConfig`` of ``add_grid_options``' arguments, writing to ``out`` at ``acceleration``."""
    from benchmark.data.fastmri import LoadOptions
    from benchmark.runner import RunConfig
    from benchmark.runner.config import default_batch_size
    from benchmark.runner.environment import resolve_device

    return RunConfig(
        methods=tuple(split_list(args.methods)),
        masks=tuple(split_list(args.masks)),
        contrasts=tuple(split_list(args.contrasts)),
        data=resolve_data(args.data),
        out=out,
        acceleration=acceleration,
        split=args.split,
        profile=args.profile,
        device=args.device,
        batch_size=args.batch_size or default_batch_size(resolve_device(args.device).type),
        seed=args.seed,
        load=LoadOptions(size=tuple(args.size), target=args.target, normalization=args.normalization),
        checkpoints=tuple(checkpoint_pair(text) for text in args.checkpoint or ()),
        allow_mismatch=args.allow_mismatch,
        sampler=tuple(sampler_count(text) for text in split_list(getattr(args, "sampler", None) or "")),
    )


def shard_pair(text: str) -> tuple[int, int]:
    """``I/N`` of ``--shard``."""
    index, sep, count = text.partition("/")
    if not (sep and index.isdigit() and count.isdigit() and int(index) < int(count)):
        raise argparse.ArgumentTypeError(f"--shard must be I/N with 0 <= I < N, got {text!r}")
    return int(index), int(count)


def sampler_count(text: str) -> tuple[str, str, int]:
    """``METHOD.FIELD=N`` of ``--sampler``."""
    name, sep, count = text.partition("=")
    method, dot, field = name.partition(".")
    if not (sep and dot and method and field and count.isdigit()):
        raise BenchmarkError(f"--sampler entries look like METHOD.FIELD=N, e.g. diffuserecon.samples=1; got {text!r}")
    return method, field, int(count)


def checkpoint_pair(text: str) -> tuple[str, Path]:
    """``METHOD=PATH`` of ``--checkpoint``."""
    method, sep, path = text.partition("=")
    if not sep or not method or not path:
        raise BenchmarkError(f"--checkpoint must look like METHOD=PATH, got {text!r}")
    if not Path(path).is_file():
        raise BenchmarkError(f"--checkpoint {method}: {path} is not a file")
    return method.strip(), Path(path)


def add_conversion_arguments(prepare: argparse.ArgumentParser) -> None:
    """``prepare --from-fastmri``'s options: where converted files go, scale-out, bad files, size and maps."""
    prepare.add_argument("--split", default="test", help="split the converted files join (default: test)")
    prepare.add_argument("--workers", type=positive_int, default=1,
                         help="convert volumes in N processes (one BLAS thread each; same bytes as 1)")  # fmt: skip
    prepare.add_argument(
        "--shard",
        type=shard_pair,
        metavar="I/N",
        help="convert every N-th source file from the I-th (by name), e.g. a job array's index; the processes share "
        "--data (one filesystem) and `prepare --finalize` writes the manifest once all are done (under torchrun: "
        "the rank and world size)",
    )
    prepare.add_argument(
        "--on-error",
        choices=("abort", "skip"),
        default="abort",
        help="a file that cannot be converted: abort (default; stop there, exit 2, keeping the volumes converted, "
        "which a rerun skips) or skip (convert the rest, exit 0, each rejected file's reason in rejects.json)",
    )
    prepare.add_argument(
        "--size",
        type=positive_int,
        nargs=2,
        default=[256, 256],
        metavar=("H", "W"),
        help="converted image size (default 256 256); an image smaller than it is rejected with its reason unless "
        "--pad",
    )
    prepare.add_argument(
        "--pad", action="store_true", help="zero-pad an image smaller than --size in image space (recorded)"
    )
    prepare.add_argument(
        "--espirit",
        choices=("fast", "reference"),
        default="fast",
        help="ESPIRiT maps: fast (default; the same eigenproblem on a coarser grid, SENSE images within 1 %% of the "
        "reference) or reference (sigpy's EspiritCalib); part of the options hash",
    )
    prepare.add_argument("--espirit-device", default="auto", metavar="DEVICE",
                         help="where ESPIRiT runs: auto (default: this rank's CUDA GPU when one is present and the "
                         "method runs there; reference needs CuPy), cpu, cuda or cuda:N; CPU and GPU round "
                         "differently, so a GPU is part of the options hash")  # fmt: skip
    prepare.add_argument("--finalize", action="store_true",
                         help="write the manifest of a sharded conversion from its per-volume records")  # fmt: skip
