"""Command line: ``python -m benchmark <command>``.

Commands: ``prepare`` (build or verify the embedded dataset, or convert real fastMRI files) and
``masks`` (draw the four sampling protocols). User errors print one line ``error: ...`` on stderr and
exit with status 2; nothing is left half-written.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from benchmark.errors import BenchmarkError


def _prepare(args: argparse.Namespace) -> None:
    from benchmark.data import build_embedded, default_data_root, verify_dataset
    from benchmark.data.convert import convert_fastmri
    from benchmark.data.fastmri import LoadOptions

    root = Path(args.data) if args.data else default_data_root()
    start = time.perf_counter()
    if args.from_fastmri:
        source = Path(args.from_fastmri)
        files = sorted(source.glob("*.h5")) if source.is_dir() else [source]
        options = LoadOptions(num_virtual_coils=args.virtual_coils)
        written = convert_fastmri(files, root, args.split, options)
        print(f"converted {len(written)} fastMRI volume(s) into {root}/{args.split}")
    elif (root / "manifest.json").exists() and not args.force:
        print(f"dataset already at {root}; verifying {'hashes' if args.verify else 'sizes'}")
    else:
        build_embedded(root, force=args.force)
        print(f"built the embedded dataset at {root}")
    dataset_hash = verify_dataset(root, check_hashes=args.verify)
    print(f"dataset hash {dataset_hash[:16]}…  ({time.perf_counter() - start:.1f} s)")


def _masks(args: argparse.Namespace) -> None:
    from benchmark.reports.figures import plot_masks

    out = plot_masks(Path(args.out), tuple(args.shape), args.acceleration, args.seed)
    print(f"wrote {out}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmark",
        description="Benchmark harness for extreme-acceleration (R=32) multi-coil MRI reconstruction.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    prepare = commands.add_parser(
        "prepare",
        help="build the embedded offline dataset (or convert real fastMRI files)",
        description="Build the embedded dataset (MNI152 anatomy, simulated 8-coil k-space, fastMRI layout) at "
        "--data (default $MRIBENCH_DATA or data/embedded), or convert real fastMRI brain files with "
        "--from-fastmri. An existing dataset is verified against its manifest instead of rebuilt.",
    )
    prepare.add_argument("--data", help="dataset directory (default: $MRIBENCH_DATA or data/embedded)")
    prepare.add_argument("--force", action="store_true", help="rebuild even if the dataset exists")
    prepare.add_argument("--verify", action="store_true", help="check every file's sha256, not only its size")
    prepare.add_argument("--from-fastmri", metavar="PATH", help="a fastMRI multi-coil .h5 file or a folder of them")
    prepare.add_argument("--split", default="test", help="split the converted files join (default: test)")
    prepare.add_argument(
        "--virtual-coils", type=int, default=None, help="SVD-compress converted files to N virtual coils"
    )
    prepare.set_defaults(handler=_prepare)

    masks = commands.add_parser(
        "masks",
        help="draw the four sampling protocols (the paper's Supp. Fig. 1)",
        description="Draw cartesian_x, cartesian_y, gaussian_2d and radial masks side by side.",
    )
    masks.add_argument("--out", default="reports/masks.png", help="output image; format from the suffix")
    masks.add_argument("--acceleration", type=int, default=32, help="acceleration factor R (default 32)")
    masks.add_argument("--shape", type=int, nargs=2, default=[256, 256], metavar=("H", "W"))
    masks.add_argument("--seed", type=int, default=0)
    masks.set_defaults(handler=_masks)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.handler(args)
    except BenchmarkError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        # An unwritable output path or a full disk is the user's to fix too: one line, no traceback.
        print(f"error: {error.filename or ''}: {error.strerror or error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 0
