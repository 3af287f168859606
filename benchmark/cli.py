"""Command line: ``python -m benchmark <command>``.

Commands: ``prepare``, ``run``, ``audit``, ``train``, ``methods``, ``report``, ``check``, ``weights`` and ``masks``,
one small parser builder and one handler each. User errors print one line ``error: ...`` on stderr and
exit with status 2; nothing is left half-written.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from benchmark.cli_args import (
    NORMALIZATION_HELP,
    add_conversion_arguments,
    add_grid_options,
    add_scoring,
    device_choice,
    grid_config,
    int_list,
    nonnegative_int,
    positive_int,
    resolve_data,
    resolve_scoring,
    split_list,
)
from benchmark.cli_audit import add_audit
from benchmark.cli_results import add_check, add_perf, add_report
from benchmark.cli_smoke import add_smoke
from benchmark.data.normalization import NORMALIZATIONS
from benchmark.errors import BenchmarkError
from benchmark.masks import PATTERN_NAMES


def _prepare(args: argparse.Namespace) -> None:
    from benchmark.data import build_embedded, default_data_root, verify_dataset

    root = Path(args.data) if args.data else _default_root(args, default_data_root())
    start = time.perf_counter()
    if args.coil_subset:
        from benchmark.data.subset import coil_subset

        coil_subset(Path(args.coil_subset), root, int_list(args.train_coils), int_list(args.test_coils))
        print(f"linked the coil-transfer subset of {args.coil_subset} into {root}")
    elif args.finalize:
        from benchmark.data.fragments import finalize

        _, rejects = finalize(root)
        print(f"finalized {root}/manifest.json" + (f"; {len(rejects)} rejected file(s) listed in rejects.json"
                                                   if rejects else ""))  # fmt: skip
    elif args.from_fastmri:
        if not _convert(args, root):
            return  # one shard of several: `prepare --finalize` assembles the manifest once all are done
    elif (root / "manifest.json").exists() and not args.force:
        print(f"dataset already at {root}; verifying {'hashes' if args.verify else 'sizes'}")
    else:
        build_embedded(root, _embedded_spec(args), force=args.force)
        print(f"built the embedded dataset at {root}")
    dataset_hash = verify_dataset(root, check_hashes=args.verify)
    print(f"dataset hash {dataset_hash[:16]}…  ({time.perf_counter() - start:.1f} s)")


def _convert(args: argparse.Namespace, root: Path) -> bool:
    """Convert this process's shard; whether the manifest was written (the whole list was this process's)."""
    from benchmark.data.convert import Conversion, convert_fastmri
    from benchmark.data.fastmri import LoadOptions

    source = Path(args.from_fastmri)
    if not source.exists():
        raise BenchmarkError(f"{source}: no such file or folder")
    files = sorted(source.glob("*.h5")) if source.is_dir() else [source]
    options = LoadOptions(size=tuple(args.size), num_virtual_coils=args.virtual_coils, espirit=args.espirit)
    conversion = Conversion(tuple(files), root, args.split, options, workers=args.workers, shard=args.shard,
                            on_error=args.on_error, force=args.force, pad=args.pad,
                            espirit_device=args.espirit_device)  # fmt: skip
    result = convert_fastmri(conversion)
    print(
        f"converted {len(result.converted)} fastMRI volume(s) into {root}/{args.split}, {result.skipped} already "
        f"done" + (f", {len(result.rejects)} rejected (reasons in {root}/rejects.json)" if result.rejects else "")
    )
    if result.manifest is None:
        print(f"this shard is done; once every shard is, run `python -m benchmark prepare --finalize --data {root}`")
    return result.manifest is not None


def _embedded_spec(args: argparse.Namespace):
    """The embedded dataset ``prepare`` builds: the default, its randomised train/val twin, or shifted heads."""
    from benchmark.data.embedded import SHIFTED_SPEC, EmbeddedSpec

    if args.shifted:
        return SHIFTED_SPEC
    return EmbeddedSpec(train_style=args.train_style)


def _default_root(args: argparse.Namespace, root: Path) -> Path:
    """Other embedded datasets than the default live beside it under their own names."""
    if args.shifted:
        return root.with_name(f"{root.name}-shift")
    return root if args.train_style == "realistic" else root.with_name(f"{root.name}-{args.train_style}")


def _masks(args: argparse.Namespace) -> None:
    from benchmark.reports.figures import plot_masks

    out = plot_masks(Path(args.out), tuple(args.shape), args.acceleration, args.seed)
    print(f"wrote {out}")


def _run(args: argparse.Namespace) -> None:
    import pandas as pd

    from benchmark.runner import run_benchmark, summarize
    from benchmark.runner.run import VOLUME_TABLE_FILE
    from benchmark.runner.shard import current_shard

    accelerations = int_list(args.acceleration, "--acceleration")
    name = f"{args.profile}-{'+'.join(split_list(args.methods))}" + (
        f"-R{'-'.join(map(str, accelerations))}" if len(accelerations) > 1 else ""
    )
    out = Path(args.out) if args.out else Path("results/runs") / name
    config = grid_config(args, out, accelerations[0])
    leader = current_shard().leader  # under torchrun, rank 0 alone prints
    if leader:
        print(f"run directory: {out}")
    if len(accelerations) > 1:
        from benchmark.runner.sweep import run_directory, run_sweep

        tables = run_sweep(config, accelerations, resume=args.resume)
        if not leader:
            return
        for acceleration, table in tables.items():
            volumes = pd.read_csv(run_directory(out, acceleration) / VOLUME_TABLE_FILE)
            print(f"R = {acceleration}")
            print(summarize(table, args.scoring, volumes, args.region).to_string(max_rows=500))
        print(f"sweep of R = {', '.join(map(str, accelerations))} in {out}; `report {out}` draws the curves")
        return
    table = run_benchmark(config, resume=args.resume)
    if not leader:
        return
    volumes = pd.read_csv(out / VOLUME_TABLE_FILE)
    print(summarize(table, args.scoring, volumes, args.region).to_string(max_rows=500))
    shown = f"{args.scoring}" + (f", {args.region} region" if args.region != "image" else "")
    print(f"per-image table: {out / 'metrics.csv'} ({len(table)} rows); PSNR/SSIM scoring shown: {shown}")


def _methods(args: argparse.Namespace) -> None:
    from benchmark.registry import describe_methods
    from benchmark.reports.tables import method_label

    rows = describe_methods()
    width = max(len(row["name"]) for row in rows)
    print(f"{'name':{width}s} {'paper name':18s} {'kind':10s} profiles: checkpoint")
    for row in rows:
        profiles = []
        for profile in row["profiles"]:
            if row["kind"] == "classical":
                profiles.append(f"{profile}: needs none")
            else:
                digest = row["checkpoints"][profile]
                profiles.append(f"{profile}: {'shipped ' + digest + '…' if digest else 'not shipped (train it)'}")
        label = "-" if row["kind"] == "stage" else method_label(row["name"])
        print(f"{row['name']:{width}s} {label:18s} {row['kind']:10s} {'; '.join(profiles)}")


def _weights(args: argparse.Namespace) -> None:
    from benchmark.metrics.weights import (
        BACKBONES,
        backbone_problem,
        checkpoint_dir,
        download_backbone,
        import_backbone,
    )

    for source in args.import_files or []:
        print(f"imported {source} -> {import_backbone(source)}")
    for key in args.download or []:
        print(f"downloading {BACKBONES[key].url}")
        print(f"installed {download_backbone(key)} (sha256 verified)")
    print(f"backbone weights in {checkpoint_dir()} (torchvision's cache; set $TORCH_HOME to move it):")
    for key, backbone in BACKBONES.items():
        problem = backbone_problem(key, verify=True)
        status = "ok (sha256 verified)" if not problem else f"unavailable: {problem}"
        print(f"  {backbone.file_name:28s} for {backbone.used_by:18s} {status}")
    print("  stlpips_alex: weights ship with stlpips-pytorch (always available)")


def _train(args: argparse.Namespace) -> None:
    from benchmark.training.chain import train_chain
    from benchmark.training.loop import TrainRequest, train

    data = resolve_data(args.data)
    run_name = "-".join(filter(None, (args.method, None if args.chain else args.stage, args.profile)))
    run_name += "-chain" if args.chain else ""
    out = Path(args.out) if args.out else Path("results/training") / run_name
    request = TrainRequest(
        method=args.method,
        profile=args.profile,
        data=data,
        out=out,
        masks=tuple(split_list(args.masks)) if args.masks else PATTERN_NAMES,
        device=args.device,
        resume=args.resume,
        steps=args.steps,
        batch_size=args.batch_size,
        seed=args.seed,
        stop_after=args.stop_after,
        save_every=args.save_every,
        normalization=args.normalization,
        size=tuple(args.size),
        ship=args.ship,
        below_capacity=args.below_capacity,
        stage=None if args.chain else args.stage,
        accumulate=args.accumulate,
        val_slices=args.val_slices,
        workers=args.workers,
    )
    best = train_chain(request, last=args.stage) if args.chain else train(request)
    if best.is_file():
        print(f"best checkpoint: {best}")
    else:
        print(f"no best checkpoint yet (stopped before the first validation); continue with --resume --out {out}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmark",
        description="Benchmark harness for extreme-acceleration (R=32) multi-coil MRI reconstruction.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    builders = (_add_prepare, _add_run, add_audit, _add_train, _add_methods, add_report, add_check, _add_weights,
                _add_masks, add_perf, add_smoke)  # fmt: skip
    for add_command in builders:
        add_command(commands)
    return parser


def _add_prepare(commands: argparse._SubParsersAction) -> None:
    prepare = commands.add_parser(
        "prepare",
        help="build the embedded offline dataset (or convert real fastMRI files)",
        description="Build the embedded dataset (whole heads around the MNI152 brain, simulated 8/12/16-coil k-space, "
        "fastMRI layout) at "
        "--data (default $MRIBENCH_DATA or data/embedded), or convert real fastMRI brain files with "
        "--from-fastmri. An existing dataset is verified against its manifest instead of rebuilt.",
    )
    prepare.add_argument("--data", help="dataset directory (default: $MRIBENCH_DATA or data/embedded)")
    prepare.add_argument(
        "--force", action="store_true", help="rebuild even if the dataset exists (conversion: reconvert what is done)"
    )
    prepare.add_argument("--verify", action="store_true", help="check every file's sha256, not only its size")
    prepare.add_argument("--from-fastmri", metavar="PATH", help="a fastMRI multi-coil .h5 file or a folder of them")
    add_conversion_arguments(prepare)
    prepare.add_argument(
        "--virtual-coils", type=positive_int, default=None, help="SVD-compress converted files to N virtual coils"
    )
    prepare.add_argument(
        "--coil-subset",
        metavar="SOURCE",
        help="link SOURCE's train/val files with --train-coils coils and its test files with --test-coils into "
        "--data (the coil-transfer check)",
    )
    prepare.add_argument(
        "--train-style",
        choices=("realistic", "randomised"),
        default="realistic",
        help="train/val heads: realistic (the template's T1/T2/FLAIR, birdcage coils; default) or randomised "
        "(domain randomisation: random tissue intensities, deformation, bias, blur, coils and noise; default "
        "--data: data/embedded-randomised); the test split is the same either way",
    )
    prepare.add_argument(
        "--shifted",
        action="store_true",
        help="build a test split of shifted heads instead (another site's sequences, a posterior 24-coil array, "
        "SNR 8, a stronger deformation: outside every training range; default --data: data/embedded-shift)",
    )
    prepare.add_argument("--train-coils", default="8,12", help="coil counts kept in train/val (default: 8,12)")
    prepare.add_argument("--test-coils", default="16", help="coil counts kept in test (default: 16)")
    prepare.set_defaults(handler=_prepare)


def _add_run(commands: argparse._SubParsersAction) -> None:
    run = commands.add_parser(
        "run",
        help="run methods on the test split and score them",
        description="Run every method on every mask pattern, contrast and test volume at one acceleration; "
        "reconstructions go to RUN_DIR/recons, per-image metrics to RUN_DIR/metrics.csv, and a per-mask, "
        "per-contrast summary is printed. Interrupt at any time and continue with --resume.",
    )
    add_grid_options(run)
    run.add_argument("--out", help="run directory (default: results/runs/<profile>-<methods>)")
    run.add_argument(
        "--acceleration",
        default="32",
        help="acceleration R (default 32), or several of the nested ladder, e.g. 4,8,16,32: a sweep with one run "
        "per R under --out (learned checkpoints trained at R = 32 need --allow-mismatch there; rows are marked)",
    )
    run.add_argument(
        "--sampler",
        metavar="METHOD.FIELD=N,...",
        help="lower a sampling method's counts for a quick check, e.g. diffuserecon.samples=1 (DiffuseRecon's "
        "fields: samples, coarse_steps, refine_steps); recorded in run.json, and the report's tables say so",
    )
    add_scoring(run, "the summary's PSNR/SSIM")
    run.set_defaults(handler=_run)


def _add_train(commands: argparse._SubParsersAction) -> None:
    train = commands.add_parser(
        "train",
        help="train a learned method (single process, or under torchrun for DDP)",
        description="Train METHOD on the train split at R=32 with one model for all mask patterns (one pattern "
        "drawn per step); validation SSIM picks best.pt. --ship copies it to results/checkpoints/<method>/<profile>.pt "
        "and records its sha256 and this command in the manifest. "
        "For DDP: `torchrun --nproc_per_node N -m benchmark train ...`.",
    )
    train.add_argument("method", help="method name, e.g. unet, e2evarnet")
    train.add_argument("--profile", default="tiny", choices=["tiny", "paper"])
    train.add_argument("--masks", help="comma-separated mask patterns (default: all four)")
    train.add_argument("--data", help="dataset directory (default: $MRIBENCH_DATA or data/embedded)")
    train.add_argument("--out", help="training directory (default: results/training/<method>-<profile>)")
    train.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    train.add_argument("--device", default="auto", type=device_choice, help="auto (CUDA when present), cpu, cuda:N")
    train.add_argument("--steps", type=positive_int, help="override the profile's number of steps")
    train.add_argument("--size", type=positive_int, nargs=2, default=[256, 256], metavar=("H", "W"))
    train.add_argument("--batch-size", type=positive_int, help="override the profile's per-process batch size")
    train.add_argument(
        "--accumulate",
        type=positive_int,
        default=1,
        help="split each step's batch into N micro-batches and add their gradients (same batch and weights, less "
        "memory; one-network methods)",
    )
    train.add_argument("--seed", type=nonnegative_int, help="override the profile's seed")
    train.add_argument(
        "--stop-after", type=positive_int, metavar="STEP", help="stop at this step with a checkpoint (--resume)"
    )
    train.add_argument(
        "--save-every",
        type=positive_int,
        metavar="N",
        help="also write OUT/last.pt every N steps (for jobs that may be killed)",
    )
    train.add_argument(
        "--workers",
        type=nonnegative_int,
        default=0,
        help="DataLoader processes reading training batches ahead (default 0: the training process reads them); "
        "the batches are the same either way",
    )
    train.add_argument(
        "--val-slices",
        type=positive_int,
        metavar="N",
        help="validate on the first N val slices (x each mask) instead of all of them: quick checks only, not --ship",
    )
    train.add_argument("--normalization", default="measured", choices=NORMALIZATIONS, help=NORMALIZATION_HELP)
    _add_stage_arguments(train)
    train.set_defaults(handler=_train)


def _add_stage_arguments(train: argparse.ArgumentParser) -> None:
    """``train``'s options for shipping and for the stages of a multi-stage method."""
    train.add_argument("--ship", action="store_true", help="install best.pt as the shipped checkpoint")
    train.add_argument(
        "--below-capacity",
        action="store_true",
        help="train a stage on an earlier one that missed its capacity check (recorded in the checkpoint)",
    )
    train.add_argument(
        "--stage",
        help="stage of a multi-stage method, e.g. `train nasp --stage tokenizer` (checkpoints under "
        "results/checkpoints/<method>/<stage>/); with --chain, the last stage to train",
    )
    train.add_argument(
        "--chain",
        action="store_true",
        help="train every stage of a multi-stage method in order into OUT/<stage>/ (default OUT: "
        "results/training/<method>-<profile>-chain), each on the earlier ones trained there; resumable; "
        "not with --ship",
    )


def _add_methods(commands: argparse._SubParsersAction) -> None:
    methods = commands.add_parser(
        "methods",
        help="list the registered methods, their profiles and shipped checkpoints",
        description="Every method `run --methods` accepts: paper name, kind (classical or learned), profiles, and "
        "for learned methods whether each profile's checkpoint is shipped (with its sha256 prefix).",
    )
    methods.set_defaults(handler=_methods)


def _add_weights(commands: argparse._SubParsersAction) -> None:
    weights = commands.add_parser(
        "weights",
        help="show or import the ImageNet backbones LPIPS and DISTS need",
        description="LPIPS-Alex needs torchvision's AlexNet ImageNet weights, LPIPS-VGG and DISTS its VGG16 weights. "
        "The suite never downloads on its own: import files you have (alexnet-owt-7be5be79.pth, vgg16-397923af.pth) "
        "or ask for --download from torchvision's own URLs; each is checked against the sha256 prefix torchvision "
        "publishes in its name before it is installed.",
    )
    weights.add_argument("--import", dest="import_files", nargs="+", metavar="FILE", help="weight files to import")
    weights.add_argument(
        "--download",
        nargs="+",
        choices=("alexnet", "vgg16"),
        metavar="NAME",
        help="fetch alexnet and/or vgg16 from torchvision's URLs (needs internet), verify, install",
    )
    weights.set_defaults(handler=_weights)


def _add_masks(commands: argparse._SubParsersAction) -> None:
    masks = commands.add_parser(
        "masks",
        help="draw the four sampling patterns (the paper's Supp. Fig. 1)",
        description="Draw cartesian_x, cartesian_y, gaussian_2d and radial masks side by side.",
    )
    masks.add_argument("--out", default="reports/masks.png", help="output image; format from the suffix")
    masks.add_argument("--acceleration", type=positive_int, default=32, help="acceleration factor R (default 32)")
    masks.add_argument("--shape", type=positive_int, nargs=2, default=[256, 256], metavar=("H", "W"))
    masks.add_argument("--seed", type=nonnegative_int, default=0)
    masks.set_defaults(handler=_masks)


def _os_error_line(error: OSError) -> str:
    """``PATH: problem``; ``mkdir`` on a path that is a file says "File exists", which reads as no problem."""
    name = error.filename or ""
    if isinstance(error, FileExistsError) and name and not Path(name).is_dir():
        return f"{name}: is a file, not a directory"
    return f"{name}: {error.strerror or error}"


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        resolve_scoring(args)
        args.handler(args)
    except BenchmarkError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        # An unwritable output path or a full disk is the user's to fix too: one line, no traceback.
        print(f"error: {_os_error_line(error)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 0
