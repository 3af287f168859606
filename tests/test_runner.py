"""The runner end to end on a small embedded dataset: table shape, determinism, kill -9 and resume, and the
refusals a library caller meets (the command line's one-line errors are in test_bad_inputs.py)."""

import signal
import subprocess
import sys
import time

import h5py
import numpy as np
import pandas as pd
import pytest
import sigpy.mri
import torch
from conftest import finished_units

from benchmark.data import LoadOptions, dataset_files, read_slice
from benchmark.errors import BenchmarkError, InputError
from benchmark.method import Method, ReconBatch
from benchmark.physics import MultiCoilOperator
from benchmark.registry import METHODS, get_method_class
from benchmark.runner import RunConfig, run_benchmark

MASKS = ("cartesian_x", "cartesian_y", "gaussian_2d", "radial")
METRIC_COLUMNS = ["psnr_fastmri", "ssim_fastmri", "nmse_fastmri", "psnr_paper", "ssim_paper", "nmse_paper"]


def config_for(data, out, methods=("zero_filled",), **overrides):
    settings = dict(methods=methods, masks=MASKS, contrasts=("T1", "T2", "FLAIR"), data=data, out=out)
    settings.update(load=LoadOptions(size=(64, 64)), device="cpu")
    settings.update(overrides)
    return RunConfig(**settings)


def cli(*arguments, **kwargs):
    return subprocess.run([sys.executable, "-m", "benchmark", *arguments], capture_output=True, text=True, **kwargs)


def test_zero_filled_with_a_full_mask_equals_the_target(small_embedded):
    path = dataset_files(small_embedded, "test", ("T1",))[0]
    sample = read_slice(path, 0, LoadOptions(size=(64, 64)))
    mask = torch.ones(1, 64, 64, dtype=torch.bool)
    batch = ReconBatch(sample.kspace[None], mask, sample.maps[None], "full", 1)
    recon = get_method_class("zero_filled")("tiny", torch.device("cpu")).reconstruct(batch)
    torch.testing.assert_close(recon[0].abs(), sample.target, atol=1e-5, rtol=0)


def test_sigpy_sense_operator_agrees_with_ours(small_embedded):
    # cs_wavelet solves with sigpy's SENSE model: it must be the same physics as benchmark.physics.
    path = dataset_files(small_embedded, "test", ("T2",))[0]
    sample = read_slice(path, 1, LoadOptions(size=(64, 64)))
    mask = torch.rand(64, 64, generator=torch.Generator().manual_seed(0)) < 0.4
    image = sample.target_complex.numpy()
    ours = MultiCoilOperator(sample.maps, mask).forward(sample.target_complex).numpy()
    theirs = sigpy.mri.linop.Sense(sample.maps.numpy(), weights=mask.numpy().astype(np.float32)) * image
    np.testing.assert_allclose(theirs, ours, atol=1e-5)


def test_run_writes_one_row_per_slice_and_is_deterministic(small_embedded, tmp_path):
    first = run_benchmark(config_for(small_embedded, tmp_path / "a", ("zero_filled", "cs_wavelet")))
    assert len(first) == 2 * len(MASKS) * 3 * 2  # methods x masks x volumes (3 contrasts) x 2 slices
    assert not first.duplicated(["method", "mask", "file", "slice"]).any()
    assert set(METRIC_COLUMNS + ["stlpips_alex", "runtime_s", "config_hash", "data_hash"]) <= set(first.columns)
    assert first["lpips_alex"].isna().all()  # no genuine AlexNet weights here: unavailable, never invented
    on_disk = pd.read_csv(tmp_path / "a" / "metrics.csv")
    pd.testing.assert_frame_equal(on_disk, first, check_dtype=False)
    second = run_benchmark(config_for(small_embedded, tmp_path / "b", ("zero_filled", "cs_wavelet")))
    pd.testing.assert_frame_equal(first[METRIC_COLUMNS], second[METRIC_COLUMNS])
    # cs_wavelet must improve on zero filling for every mask (the classical reference is not a no-op).
    means = first.groupby(["method", "mask"])["ssim_paper"].mean().unstack("method")
    assert (means["cs_wavelet"] > means["zero_filled"]).all()


def test_kill_9_then_resume_gives_the_same_table_without_duplicates(small_embedded, tmp_path):
    reference = run_benchmark(config_for(small_embedded, tmp_path / "reference", ("zero_filled", "cs_wavelet")))
    out = tmp_path / "killed"
    arguments = ["run", "--methods", "zero_filled,cs_wavelet", "--data", str(small_embedded), "--out", str(out)]
    arguments += ["--device", "cpu", "--size", "64", "64", "--batch-size", "8"]  # the reference's batch
    process = subprocess.Popen([sys.executable, "-m", "benchmark", *arguments], stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and process.poll() is None and len(finished_units(out)) < 2:
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL, f"the run ended before it was killed: {process.stderr.read()[-500:]}"
    assert not (out / "metrics.csv").exists()
    for recon in out.glob("recons/*/*/*.h5"):
        with h5py.File(recon, "r") as handle:  # every file that exists is whole
            assert handle["reconstruction"].shape[0] == 2
    resumed = cli(*arguments, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    table = pd.read_csv(out / "metrics.csv")
    assert not table.duplicated(["method", "mask", "file", "slice"]).any()
    pd.testing.assert_frame_equal(table[METRIC_COLUMNS], reference[METRIC_COLUMNS])


def test_existing_run_needs_resume_and_the_same_configuration(small_embedded, tmp_path):
    config = config_for(small_embedded, tmp_path / "run", masks=("radial",), contrasts=("T1",))
    run_benchmark(config)
    with pytest.raises(BenchmarkError, match="--resume"):
        run_benchmark(config)
    assert len(run_benchmark(config, resume=True)) == 2
    changed = config_for(small_embedded, tmp_path / "run", masks=("radial",), contrasts=("T1",), acceleration=16)
    with pytest.raises(BenchmarkError, match="different configuration"):
        run_benchmark(changed, resume=True)


def test_learned_method_without_checkpoint_is_refused():
    class Learned(Method):
        name = "learned"
        configs = {"tiny": {}}
        needs_checkpoint = True

        def reconstruct(self, batch):
            raise AssertionError("never reached")

    with pytest.raises(BenchmarkError, match="checkpoint .* not found"):
        Learned("tiny", torch.device("cpu"), checkpoint=None)
    with pytest.raises(InputError, match="unknown profile"):
        Learned("huge", torch.device("cpu"))


@pytest.mark.parametrize("name", sorted(METHODS))
def test_every_registered_method_imports_as_a_method(name):
    cls = get_method_class(name)
    assert issubclass(cls, Method) and cls.name == name and {"tiny", "paper"} <= set(cls.configs)


def test_resume_redoes_a_half_written_or_nan_holed_unit_and_report_rebuilds_a_cut_table(small_embedded, tmp_path):
    """Only a verified unit is skipped on resume; a merged table cut short is rebuilt from the unit files."""
    from benchmark.reports.loading import load_run_tables

    config = config_for(small_embedded, tmp_path / "run", masks=("radial", "cartesian_y"), contrasts=("T1",))
    reference = run_benchmark(config)
    units = sorted(finished_units(config.out))
    frame = pd.read_csv(units[0])
    frame.iloc[:1].to_csv(units[0], index=False)  # one of two rows
    frame.assign(psnr_paper=np.nan).to_csv(units[1], index=False)  # every row there, a score missing
    resumed = run_benchmark(config, resume=True)
    pd.testing.assert_frame_equal(resumed[METRIC_COLUMNS], reference[METRIC_COLUMNS])
    lines = (config.out / "metrics.csv").read_text().splitlines()
    (config.out / "metrics.csv").write_text("\n".join(lines[: 1 + 3 * (len(lines) - 1) // 4]) + "\n")
    images, volumes, _ = load_run_tables(config.out)
    pd.testing.assert_frame_equal(images[METRIC_COLUMNS], reference[METRIC_COLUMNS])
    assert len(volumes) == 2  # one volume x two masks


def test_a_run_that_fails_before_any_unit_finishes_leaves_no_folder(small_embedded, tmp_path, monkeypatch):
    import benchmark.runner.run as run_module

    def failing(*args, **kwargs):
        raise BenchmarkError("failed while reconstructing")

    monkeypatch.setattr(run_module, "infer_group", failing)
    config = config_for(small_embedded, tmp_path / "run", masks=("radial",), contrasts=("T1",))
    with pytest.raises(BenchmarkError, match="failed while reconstructing"):
        run_benchmark(config)
    assert not config.out.exists()  # the corrected rerun needs no --resume and no deleting by hand
    monkeypatch.undo()
    assert len(run_benchmark(config)) == 2


def test_volumes_are_grouped_by_coil_count_up_to_a_batch_in_file_order():
    from pathlib import Path

    from benchmark.runner.groups import volume_groups

    f = [Path(f"f{i}.h5") for i in range(8)]
    coils = dict(zip(f, [8, 8, 12, 8, 12, 8, 16, 8], strict=True))
    slices = dict.fromkeys(f, 1) | {f[5]: 3}  # f5 alone fills a batch of 3
    groups = volume_groups(f, slices, coils, batch_size=3)
    assert groups == [[f[0], f[1], f[3]], [f[2], f[4]], [f[5]], [f[6]], [f[7]]]
