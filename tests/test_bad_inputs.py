"""The bad-input matrix, part 1: datasets, conversions, checkpoints and output paths (``badinput.py`` says what
every case must show; ``test_bad_runs.py`` holds runs, baselines and arguments)."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from badinput import Case, Inputs, check_outcome, run_cases, run_cli, selected
from conftest import BROKEN_FASTMRI, numpy_fft2c, raw_coil_images, write_raw_fastmri

from benchmark.checkpoint import CHECKPOINT_ROOT, save_checkpoint
from benchmark.data import dataset_files
from benchmark.masks import PATTERNS
from benchmark.registry import METHODS

SHIPPED_UNET = CHECKPOINT_ROOT / "unet" / "tiny.pt"
CASES: dict[str, Case] = {}


def case(build: Case) -> Case:
    CASES[build.__name__] = build
    return build


#: How ``--on-error abort`` (the default) ends a conversion at its first file, before any file was converted.
ABORTED = "; stopped there (none converted; --on-error skip converts the rest)"


def conversion(folder: Path, inputs: Inputs, name: str) -> tuple[Path, list[str]]:
    """Where a file ``name`` goes in a source folder that also holds a valid file (converted after it, in name
    order; tests/test_convert.py checks what an abort keeps), and the arguments of ``prepare --from-fastmri``."""
    source = folder / "source"
    source.mkdir()
    shutil.copyfile(inputs.raw, source / "zz_valid.h5")
    return source / name, ["prepare", "--from-fastmri", str(source), "--data", str(folder / "converted")]


def conversion_of(kind: str) -> Case:
    """The conversion of a folder with a file broken as ``BROKEN_FASTMRI[kind]`` says: refused before anything is
    converted."""

    def build(folder: Path, inputs: Inputs) -> tuple[list[str], str]:
        broken, arguments = conversion(folder, inputs, f"{kind}.h5")
        return arguments, f"{broken}: {BROKEN_FASTMRI[kind](broken, inputs.raw)}{ABORTED}"

    return build


CASES.update({f"h5_{kind}": conversion_of(kind) for kind in BROKEN_FASTMRI})


@case
def h5_smaller_than_the_benchmark_size(folder: Path, inputs: Inputs) -> tuple[list[str], str]:
    small, arguments = conversion(folder, inputs, "small.h5")
    write_raw_fastmri(small, numpy_fft2c(raw_coil_images(1, 2, 40, 24)), recon=(20, 20))
    return arguments, f"{small}: image (20, 20) is smaller than the crop (256, 256); --pad zero-pads it{ABORTED}"


@case
def unknown_method(folder: Path, inputs: Inputs) -> tuple[list[str], str]:
    message = f"unknown method 'zero_fill' (did you mean 'zero_filled'?); known: {', '.join(sorted(METHODS))}"
    return run_cli(inputs, folder, "--methods", "zero_fill"), message


@case
def unknown_mask(folder: Path, inputs: Inputs) -> tuple[list[str], str]:
    return run_cli(inputs, folder, "--masks", "spiral"), f"unknown mask pattern 'spiral'; known: {', '.join(PATTERNS)}"


@case
def unknown_contrast(folder: Path, inputs: Inputs) -> tuple[list[str], str]:
    return run_cli(inputs, folder, "--contrasts", "PD"), "unknown contrast 'PD'; this dataset has: FLAIR, T1, T2"


@case
def missing_data_directory(folder: Path, inputs: Inputs) -> tuple[list[str], str]:
    absent = folder / "absent"
    return run_cli(inputs, folder, "--data", str(absent)), f"data directory {absent} does not exist"


def convert_first(raw: Path, found: str, prepared: Path) -> str:
    command = f"python -m benchmark prepare --from-fastmri {raw} --data {prepared}"
    return (
        f"{raw} {found}, not a prepared dataset (no manifest.json); run `{command}` first, then use --data {prepared}"
    )


@case
def raw_fastmri_folder(folder: Path, inputs: Inputs) -> tuple[list[str], str]:
    raw = folder / "multicoil_test"
    raw.mkdir()
    for name in ("file_brain_AXT2_200_1.h5", "file_brain_AXT2_200_2.h5"):
        shutil.copyfile(inputs.raw, raw / name)
    expected = convert_first(raw, "holds 2 raw .h5 file(s)", folder / "multicoil_test-prepared")
    return run_cli(inputs, folder, "--data", str(raw)), expected


@case
def raw_fastmri_file(folder: Path, inputs: Inputs) -> tuple[list[str], str]:
    raw = folder / "file_brain_AXT2_200_1.h5"
    shutil.copyfile(inputs.raw, raw)
    expected = convert_first(raw, "is a raw .h5 file", folder / "file_brain_AXT2_200_1-prepared")
    return run_cli(inputs, folder, "--data", str(raw)), expected


def dataset_copy(folder: Path, inputs: Inputs) -> tuple[Path, Path, str]:
    """A copy of the small dataset, its first test file and the hint to rebuild it."""
    data = folder / "data"
    shutil.copytree(inputs.dataset, data)
    return data, dataset_files(data, "test")[0], f"rebuild it with `python -m benchmark prepare --data {data} --force`"


@case
def manifest_lists_a_missing_file(folder: Path, inputs: Inputs) -> tuple[list[str], str]:
    data, victim, rebuild = dataset_copy(folder, inputs)
    victim.unlink()
    return run_cli(inputs, folder, "--data", str(data)), f"{victim}: listed in manifest.json but missing; {rebuild}"


@case
def manifest_size_differs(folder: Path, inputs: Inputs) -> tuple[list[str], str]:
    data, victim, rebuild = dataset_copy(folder, inputs)
    size = victim.stat().st_size
    with open(victim, "ab") as handle:
        handle.write(b"\0")
    found = f"{size + 1} bytes where it lists {size}: truncated or modified"
    return run_cli(inputs, folder, "--data", str(data)), f"{victim}: differs from the manifest ({found}); {rebuild}"


@case
def manifest_hash_differs(folder: Path, inputs: Inputs) -> tuple[list[str], str]:
    """Same size, one byte changed: only ``prepare --verify`` hashes the files (``run`` checks sizes)."""
    data, victim, rebuild = dataset_copy(folder, inputs)
    contents = bytearray(victim.read_bytes())
    listed = hashlib.sha256(contents).hexdigest()
    contents[-1] ^= 0xFF
    victim.write_bytes(contents)
    found = f"sha256 {hashlib.sha256(contents).hexdigest()[:12]}… where it lists {listed[:12]}…: modified"
    return ["prepare", "--data", str(data), "--verify"], f"{victim}: differs from the manifest ({found}); {rebuild}"


def with_checkpoint(inputs: Inputs, folder: Path, method: str, path: Path) -> list[str]:
    return run_cli(inputs, folder, "--methods", method, "--checkpoint", f"{method}={path}")


@case
def missing_checkpoint(folder: Path, inputs: Inputs) -> tuple[list[str], str]:
    absent = folder / "absent.pt"
    return with_checkpoint(inputs, folder, "unet", absent), f"--checkpoint unet: {absent} is not a file"


@case
def tampered_checkpoint(folder: Path, inputs: Inputs) -> tuple[list[str], str]:
    payload = torch.load(SHIPPED_UNET, map_location="cpu", weights_only=True)
    for state in filter(None, (payload["model"], payload.get("ema"))):
        name = next(iter(state))
        state[name] = state[name] + 1  # the weights change, their recorded sha256 does not
    tampered = folder / "tampered.pt"
    torch.save(payload, tampered)
    message = f"{tampered}: its weights do not match their recorded digest (modified or corrupt)"
    return with_checkpoint(inputs, folder, "unet", tampered), message


class OpensAFile:
    """Unpickled, this calls ``open(path, "w")``: a checkpoint that runs code when loaded without ``weights_only``."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return open, (str(self.path), "w")


@case
def checkpoint_holding_pickled_objects(folder: Path, inputs: Inputs) -> tuple[list[str], str]:
    hostile = folder / "hostile.pt"
    torch.save({"format_version": 2, "method": "unet", "hook": OpensAFile(folder / "written-by-unpickling")}, hostile)
    message = f"{hostile} holds a pickled Python object (io.open), which torch.load(weights_only=True) refuses to "
    message += "run; a checkpoint holds only tensors and plain values"
    return with_checkpoint(inputs, folder, "unet", hostile), message


@case
def checkpoint_of_another_method(folder: Path, inputs: Inputs) -> tuple[list[str], str]:
    message = f"{SHIPPED_UNET} is a checkpoint of 'unet', not 'e2evarnet'"
    return with_checkpoint(inputs, folder, "e2evarnet", SHIPPED_UNET), message


@case
def checkpoint_of_another_setting(folder: Path, inputs: Inputs) -> tuple[list[str], str]:
    height, width = torch.load(SHIPPED_UNET, map_location="cpu", weights_only=True)["training_setting"]["size"]
    differs = f"size {height}x{width} (trained) vs 64x64 (this run)"
    message = f"unet: checkpoint {SHIPPED_UNET} differs from this run in {differs}; "
    message += "pass --allow-mismatch to score it anyway (recorded, rows marked)"
    return with_checkpoint(inputs, folder, "unet", SHIPPED_UNET), message


@case
def checkpoint_for_a_method_not_run(folder: Path, inputs: Inputs) -> tuple[list[str], str]:
    arguments = run_cli(inputs, folder, "--checkpoint", f"unet={SHIPPED_UNET}")
    return arguments, "--checkpoint names 'unet', which is not among --methods"


@case
def output_directory_cannot_be_made(folder: Path, inputs: Inputs) -> tuple[list[str], str]:
    out = "/proc/benchmark-run"  # not even root may make a directory in /proc
    return run_cli(inputs, folder, "--out", out), f"cannot write to {out}: No such file or directory"


@case
def output_directory_under_a_file(folder: Path, inputs: Inputs) -> tuple[list[str], str]:
    (folder / "a-file").write_text("")
    out = folder / "a-file" / "run"
    return run_cli(inputs, folder, "--out", str(out)), f"cannot write to {out}: Not a directory"


@case
def figure_under_a_file(folder: Path, inputs: Inputs) -> tuple[list[str], str]:
    (folder / "a-file").write_text("")
    arguments = ["masks", "--out", str(folder / "a-file" / "masks.png"), "--shape", "64", "64"]
    return arguments, f"{folder / 'a-file'}: is a file, not a directory"


@case
def weights_import_of_a_corrupt_file(folder: Path, inputs: Inputs) -> tuple[list[str], str]:
    corrupt = folder / "alexnet-owt-7be5be79.pth"  # torchvision's name, other bytes
    corrupt.write_bytes(b"not the AlexNet ImageNet weights")
    digest = hashlib.sha256(corrupt.read_bytes()).hexdigest()
    known = "alexnet-owt-7be5be79.pth, vgg16-397923af.pth"
    message = f"{corrupt}: sha256 {digest[:12]}… matches none of torchvision's {known}"
    return ["weights", "--import", str(corrupt)], message


# Never delete what the suite did not make: --force replaces only an embedded dataset holding nothing else.
def folder_of_other_files(folder: Path, name: str = "mine") -> Path:
    mine = folder / name
    mine.mkdir()
    (mine / "thesis.tex").write_text("\\documentclass{article} three years of work\n")
    return mine


def refused(root: Path, what: str, builder: str = "an embedded dataset") -> str:
    return f"{root} holds {what}, not {builder}; refusing to replace it: choose another --data"


def with_description(folder: Path, inputs: Inputs, **changes) -> Path:
    data = dataset_copy(folder, inputs)[0]
    manifest = json.loads((data / "manifest.json").read_text())
    manifest["description"] |= changes
    (data / "manifest.json").write_text(json.dumps(manifest))
    return data


@case
def prepare_force_on_a_folder_that_is_not_a_dataset(folder: Path, inputs: Inputs) -> tuple[list[str], str]:
    mine = folder_of_other_files(folder)
    message = f"{mine} holds files that are not a dataset this suite built (no manifest.json); refusing to replace "
    return ["prepare", "--data", str(mine), "--force"], message + "it: choose another --data, or empty it yourself"


@case
def prepare_force_on_a_dataset_holding_an_unlisted_file(folder: Path, inputs: Inputs) -> tuple[list[str], str]:
    data = dataset_copy(folder, inputs)[0]
    (data / "notes.txt").write_text("my notes on this data\n")
    message = f"{data} also holds files its manifest does not list (notes.txt); refusing to replace it: move them out "
    return ["prepare", "--data", str(data), "--force"], message + "first"


@case
def prepare_force_on_a_converted_dataset(folder: Path, inputs: Inputs) -> tuple[list[str], str]:
    data = with_description(folder, inputs, builder="fastmri-convert")
    return ["prepare", "--data", str(data), "--force"], refused(data, "a dataset converted from fastMRI files")


@case
def prepare_force_on_a_coil_subset(folder: Path, inputs: Inputs) -> tuple[list[str], str]:
    data = with_description(folder, inputs, subset={"source_dataset_hash": "0" * 64})
    return ["prepare", "--data", str(data), "--force"], refused(data, "a coil subset")


@case
def prepare_force_on_an_unreadable_manifest(folder: Path, inputs: Inputs) -> tuple[list[str], str]:
    data = dataset_copy(folder, inputs)[0]
    (data / "manifest.json").write_text('{"files": [')
    message = f"{data} holds a manifest.json this suite cannot read; refusing to replace it: choose another --data"
    return ["prepare", "--data", str(data), "--force"], message


@case
def conversion_into_an_embedded_dataset(folder: Path, inputs: Inputs) -> tuple[list[str], str]:
    data = dataset_copy(folder, inputs)[0]
    message = refused(data, "an embedded dataset", "a dataset converted from fastMRI files")
    return ["prepare", "--from-fastmri", str(inputs.raw), "--data", str(data)], message


@case
def conversion_into_a_folder_of_other_files(folder: Path, inputs: Inputs) -> tuple[list[str], str]:
    mine = folder_of_other_files(folder)
    message = f"{mine} holds files that are not a dataset this suite built (no manifest.json); refusing to replace "
    arguments = ["prepare", "--from-fastmri", str(inputs.raw), "--data", str(mine)]
    return arguments, message + "it: choose another --data, or empty it yourself"


@case
def coil_subset_into_an_existing_folder(folder: Path, inputs: Inputs) -> tuple[list[str], str]:
    mine = folder_of_other_files(folder)
    arguments = ["prepare", "--coil-subset", str(inputs.dataset), "--data", str(mine), "--train-coils", "4"]
    return arguments + ["--test-coils", "4"], f"{mine} exists; choose a new directory for the subset"


@case
def run_into_a_folder_of_other_files(folder: Path, inputs: Inputs) -> tuple[list[str], str]:
    mine = folder_of_other_files(folder)
    message = f"{mine} exists and is not a run directory of this suite; choose another --out"
    return run_cli(inputs, folder, "--out", str(mine)), message


@case
def train_into_a_folder_of_other_files(folder: Path, inputs: Inputs) -> tuple[list[str], str]:
    mine = folder_of_other_files(folder)
    arguments = ["train", "unet", "--data", str(inputs.dataset), "--out", str(mine), "--size", "64", "64"]
    return arguments, f"{mine} exists and holds files that are not a training run; choose another --out"


# Data whose header or contents cannot be trusted.
@case
def h5_declaring_terabytes_per_slice(folder: Path, inputs: Inputs) -> tuple[list[str], str]:
    huge, arguments = conversion(folder, inputs, "huge.h5")
    with h5py.File(huge, "w") as handle:  # unallocated: the file is a few KB
        handle.create_dataset("kspace", shape=(2, 4, 2**18, 2**17), dtype=np.complex64)
    shape = "(2, 4, 262144, 131072)"
    return arguments, f"{huge}: 'kspace' declares 1.0 TiB per slice (shape {shape}), over the 2.0 GiB allowed{ABORTED}"


@case
def h5_declaring_more_than_it_stores(folder: Path, inputs: Inputs) -> tuple[list[str], str]:
    hollow, arguments = conversion(folder, inputs, "hollow.h5")
    with h5py.File(hollow, "w") as handle:
        handle.create_dataset("kspace", shape=(2000, 2, 256, 256), dtype=np.complex64)
    shape = "(2000, 2, 256, 256)"
    return arguments, f"{hollow}: 'kspace' declares 2.0 GiB (shape {shape}) but the file stores 0 bytes of it{ABORTED}"


@case
def dataset_with_nan_maps(folder: Path, inputs: Inputs) -> tuple[list[str], str]:
    """Found after the run started: the half-made run folder goes too, so the corrected rerun starts clean."""
    data = dataset_copy(folder, inputs)[0]
    victim = dataset_files(data, "test", ("T1",))[0]
    with h5py.File(victim, "r+") as handle:
        handle["sensitivity_maps"][0, 0, 0] = np.nan
    message = f"{victim}: 'sensitivity_maps' hold NaN or Inf values: the data is broken, not the method"
    return run_cli(inputs, folder, "--data", str(data)), message


def manifest_listing(folder: Path, inputs: Inputs, path: str) -> tuple[list[str], str]:
    data = dataset_copy(folder, inputs)[0]
    manifest = json.loads((data / "manifest.json").read_text())
    manifest["files"][0]["path"] = path
    (data / "manifest.json").write_text(json.dumps(manifest))
    message = f"{data / 'manifest.json'}: lists {path!r}, a path outside the dataset (entries are relative to it)"
    return run_cli(inputs, folder, "--data", str(data)), message


@case
def manifest_path_outside_the_dataset(folder: Path, inputs: Inputs) -> tuple[list[str], str]:
    return manifest_listing(folder, inputs, "../other/embedded_sub02_AXT1.h5")


@case
def manifest_absolute_path(folder: Path, inputs: Inputs) -> tuple[list[str], str]:
    return manifest_listing(folder, inputs, "/etc/passwd")


# Checkpoints whose digest is right but whose weights do not fit the model.
def reshaped_checkpoint(folder: Path, change) -> tuple[Path, str]:
    payload = torch.load(SHIPPED_UNET, map_location="cpu", weights_only=True)
    loaded = "ema" if payload.get("ema") is not None else "model"
    name = next(iter(payload[loaded]))
    detail = change(payload[loaded], name)
    path = folder / "reshaped.pt"
    save_checkpoint(path, {k: v for k, v in payload.items() if k not in ("format_version", "weights_sha256")})
    return path, f"{path}: its unet tiny weights do not fit ({detail})"


@case
def checkpoint_with_a_wrong_tensor_shape(folder: Path, inputs: Inputs) -> tuple[list[str], str]:
    def grow(state, name):
        shape = list(state[name].shape)
        state[name] = torch.zeros(shape[0] + 1, *shape[1:])
        grown = [shape[0] + 1, *shape[1:]]
        return f"size mismatch for {name}: copying a param with shape {grown} from checkpoint, the shape in current model is {shape}"  # noqa: E501

    path, message = reshaped_checkpoint(folder, grow)
    return with_checkpoint(inputs, folder, "unet", path), message


@case
def checkpoint_with_a_missing_key(folder: Path, inputs: Inputs) -> tuple[list[str], str]:
    def drop(state, name):
        del state[name]
        return f'Missing key(s) in state_dict: "{name}"'

    path, message = reshaped_checkpoint(folder, drop)
    return with_checkpoint(inputs, folder, "unet", path), message


@pytest.fixture(scope="module")
def outcomes(request, tmp_path_factory, small_embedded):
    """Every selected case, built here one by one, then its command run (as many at once as there are cores)."""
    raw = tmp_path_factory.mktemp("raw") / "file_brain_AXT2_200_6002.h5"
    kspace = numpy_fft2c(raw_coil_images(2, 2, 256, 256))  # the benchmark size: it would convert
    inputs = Inputs(write_raw_fastmri(raw, kspace, recon=(256, 256)), small_embedded)
    return run_cases(CASES, selected(request), tmp_path_factory.mktemp, inputs)


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input_exits_2_with_one_line_naming_it_and_leaves_nothing_behind(name, outcomes):
    check_outcome(outcomes[name])
