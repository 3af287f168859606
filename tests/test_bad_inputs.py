"""The bad-input matrix: every way of handing the command line something unusable ends alike, with exit status 2,
exactly one stderr line ``error: <the input>: <the problem>``, and nothing written or left behind.

Each case builds its inputs in a folder of its own and returns the command and the exact line it must print. The
command runs in that folder (with ``$TORCH_HOME`` inside it), and the folder's listing must not change: no output,
no partial or temporary file. A call is mostly interpreter start-up and imports, so the calls run a few at a time.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from conftest import BROKEN_FASTMRI, numpy_fft2c, raw_coil_images, write_raw_fastmri

from benchmark.data import dataset_files
from benchmark.masks import PATTERNS
from benchmark.registry import METHODS
from benchmark.training.checkpoint import CHECKPOINT_ROOT

ROOT = Path(__file__).resolve().parents[1]
SHIPPED_UNET = CHECKPOINT_ROOT / "unet" / "tiny.pt"


@dataclass(frozen=True)
class Inputs:
    """What the cases share and never change: a valid raw fastMRI file and the small embedded dataset."""

    raw: Path
    dataset: Path


#: A case: ``(its folder, shared inputs) -> (command-line arguments, the stderr line after "error: ")``.
Case = Callable[[Path, Inputs], tuple[list[str], str]]
CASES: dict[str, Case] = {}


def case(build: Case) -> Case:
    CASES[build.__name__] = build
    return build


def conversion(folder: Path, inputs: Inputs, name: str) -> tuple[Path, list[str]]:
    """Where a file ``name`` goes in a source folder that also holds a valid file (validated first), and the
    arguments of ``prepare --from-fastmri`` on that folder."""
    source = folder / "source"
    source.mkdir()
    shutil.copyfile(inputs.raw, source / "a_valid.h5")
    return source / name, ["prepare", "--from-fastmri", str(source), "--data", str(folder / "converted")]


def conversion_of(kind: str) -> Case:
    """The conversion of a folder with a file broken as ``BROKEN_FASTMRI[kind]`` says: refused before anything is
    converted."""

    def build(folder: Path, inputs: Inputs) -> tuple[list[str], str]:
        broken, arguments = conversion(folder, inputs, f"{kind}.h5")
        return arguments, f"{broken}: {BROKEN_FASTMRI[kind](broken, inputs.raw)}"

    return build


CASES.update({f"h5_{kind}": conversion_of(kind) for kind in BROKEN_FASTMRI})


@case
def h5_smaller_than_the_benchmark_size(folder: Path, inputs: Inputs) -> tuple[list[str], str]:
    small, arguments = conversion(folder, inputs, "small.h5")
    write_raw_fastmri(small, numpy_fft2c(raw_coil_images(1, 2, 40, 24)), recon=(20, 20))
    return arguments, f"{small}: image (20, 20) is smaller than the crop (256, 256)"


def run(inputs: Inputs, folder: Path, *options: str) -> list[str]:
    """``run`` of zero_filled on the small dataset into ``folder/run``; ``options`` (pairs) replace the defaults."""
    settings = {"--methods": "zero_filled", "--data": str(inputs.dataset), "--out": str(folder / "run")}
    settings |= {"--masks": "radial", "--contrasts": "T1"}
    settings |= dict(zip(options[::2], options[1::2], strict=True))
    return ["run", *(item for pair in settings.items() for item in pair), "--size", "64", "64"]


@case
def unknown_method(folder: Path, inputs: Inputs) -> tuple[list[str], str]:
    message = f"unknown method 'zero_fill' (did you mean 'zero_filled'?); known: {', '.join(sorted(METHODS))}"
    return run(inputs, folder, "--methods", "zero_fill"), message


@case
def unknown_mask(folder: Path, inputs: Inputs) -> tuple[list[str], str]:
    return run(inputs, folder, "--masks", "spiral"), f"unknown mask pattern 'spiral'; known: {', '.join(PATTERNS)}"


@case
def unknown_contrast(folder: Path, inputs: Inputs) -> tuple[list[str], str]:
    return run(inputs, folder, "--contrasts", "PD"), "unknown contrast 'PD'; this dataset has: FLAIR, T1, T2"


@case
def missing_data_directory(folder: Path, inputs: Inputs) -> tuple[list[str], str]:
    absent = folder / "absent"
    return run(inputs, folder, "--data", str(absent)), f"data directory {absent} does not exist"


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
    return run(inputs, folder, "--data", str(raw)), expected


@case
def raw_fastmri_file(folder: Path, inputs: Inputs) -> tuple[list[str], str]:
    raw = folder / "file_brain_AXT2_200_1.h5"
    shutil.copyfile(inputs.raw, raw)
    expected = convert_first(raw, "is a raw .h5 file", folder / "file_brain_AXT2_200_1-prepared")
    return run(inputs, folder, "--data", str(raw)), expected


def dataset_copy(folder: Path, inputs: Inputs) -> tuple[Path, Path, str]:
    """A copy of the small dataset, its first test file and the hint to rebuild it."""
    data = folder / "data"
    shutil.copytree(inputs.dataset, data)
    return data, dataset_files(data, "test")[0], f"rebuild it with `python -m benchmark prepare --data {data} --force`"


@case
def manifest_lists_a_missing_file(folder: Path, inputs: Inputs) -> tuple[list[str], str]:
    data, victim, rebuild = dataset_copy(folder, inputs)
    victim.unlink()
    return run(inputs, folder, "--data", str(data)), f"{victim}: listed in manifest.json but missing; {rebuild}"


@case
def manifest_size_differs(folder: Path, inputs: Inputs) -> tuple[list[str], str]:
    data, victim, rebuild = dataset_copy(folder, inputs)
    size = victim.stat().st_size
    with open(victim, "ab") as handle:
        handle.write(b"\0")
    found = f"{size + 1} bytes where it lists {size}: truncated or modified"
    return run(inputs, folder, "--data", str(data)), f"{victim}: differs from the manifest ({found}); {rebuild}"


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
    return run(inputs, folder, "--methods", method, "--checkpoint", f"{method}={path}")


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
    arguments = run(inputs, folder, "--checkpoint", f"unet={SHIPPED_UNET}")
    return arguments, "--checkpoint names 'unet', which is not among --methods"


@case
def output_directory_cannot_be_made(folder: Path, inputs: Inputs) -> tuple[list[str], str]:
    out = "/proc/benchmark-run"  # not even root may make a directory in /proc
    return run(inputs, folder, "--out", out), f"cannot write to {out}: No such file or directory"


@case
def output_directory_under_a_file(folder: Path, inputs: Inputs) -> tuple[list[str], str]:
    (folder / "a-file").write_text("")
    out = folder / "a-file" / "run"
    return run(inputs, folder, "--out", str(out)), f"cannot write to {out}: Not a directory"


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


@dataclass(frozen=True)
class Outcome:
    expected: str
    result: subprocess.CompletedProcess
    before: list[str]
    after: list[str]


def listing(folder: Path) -> list[str]:
    return sorted(path.relative_to(folder).as_posix() for path in folder.rglob("*"))


@pytest.fixture(scope="module")
def outcomes(request, tmp_path_factory, small_embedded) -> dict[str, Outcome]:
    """Every selected case, built here one by one, then its command run (as many at once as there are cores)."""
    raw = tmp_path_factory.mktemp("raw") / "file_brain_AXT2_200_6002.h5"
    kspace = numpy_fft2c(raw_coil_images(2, 2, 256, 256))  # the benchmark size: it would convert
    inputs = Inputs(write_raw_fastmri(raw, kspace, recon=(256, 256)), small_embedded)
    chosen = [item.callspec.params["name"] for item in request.session.items if item.module is request.module]
    built = {}
    for name in chosen:
        folder = tmp_path_factory.mktemp(name)
        arguments, expected = CASES[name](folder, inputs)
        built[name] = (folder, arguments, expected, listing(folder))
    environment = {key: value for key, value in os.environ.items() if key != "MRIBENCH_DATA"}
    environment["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))

    def call(name: str) -> subprocess.CompletedProcess:
        folder, arguments, _, _ = built[name]
        command = [sys.executable, "-m", "benchmark", *arguments]
        env = {**environment, "TORCH_HOME": str(folder / "torch-home")}
        return subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True, timeout=300)

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        results = dict(zip(chosen, pool.map(call, chosen), strict=True))
    return {
        name: Outcome(expected, results[name], before, listing(folder))
        for name, (folder, _, expected, before) in built.items()
    }


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input_exits_2_with_one_line_naming_it_and_leaves_nothing_behind(name, outcomes):
    outcome = outcomes[name]
    assert outcome.result.returncode == 2, outcome.result.stderr[-3000:]
    assert outcome.result.stderr.splitlines() == [f"error: {outcome.expected}"]
    assert outcome.after == outcome.before, "the failed command left files behind"
