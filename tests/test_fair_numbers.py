"""Fair and reproducible numbers: no target information in what methods receive, fastMRI-exact volume
scores, determinism under resume, pinned weights, and tables that name their data."""

import signal
import subprocess
import sys
import time

import fastmri.evaluate
import h5py
import numpy as np
import pandas as pd
import pytest
import torch
from conftest import finished_units, numpy_ifft2c, write_raw_fastmri

from benchmark.data import LoadOptions, SliceDataset, dataset_files, read_slice
from benchmark.data.normalization import MEASURED_PERCENTILE, measured_scale
from benchmark.errors import BenchmarkError
from benchmark.io import sha256_file
from benchmark.masks import make_mask, mask_seed
from benchmark.method import Method, ReconBatch
from benchmark.reports.report import write_report
from benchmark.runner import RunConfig, run_benchmark
from benchmark.runner.groups import infer_group
from benchmark.runner.units import InferenceSettings, Unit, load_volume
from benchmark.training.batches import make_batch
from benchmark.training.loop import TrainRequest, train

CPU = torch.device("cpu")
SIZE = (64, 64)
METRIC_COLUMNS = ["psnr_fastmri", "ssim_fastmri", "nmse_fastmri", "psnr_paper", "ssim_paper", "nmse_paper"]


class InputRecorder(Method):
    """A method that records the k-space it is given and returns the zero-filled image."""

    name = "recorder"
    configs = {"tiny": {}}

    def __init__(self) -> None:
        super().__init__("tiny", CPU)
        self.seen: list[torch.Tensor] = []

    def reconstruct(self, batch: ReconBatch) -> torch.Tensor:
        self.seen.append(batch.kspace.clone())
        return batch.operator().adjoint(batch.kspace)


def _twin_volumes(small_embedded, tmp_path, mask_name):
    """The same test volume twice: the second has its k-space outside every R = 32 mask multiplied by 3.

    The two differ only in data no method may see (unsampled k-space), and so in the fully sampled target.
    """
    source = dataset_files(small_embedded, "test", ("T1",))[0]
    with h5py.File(source, "r") as handle:
        kspace, maps = handle["kspace"][()], handle["sensitivity_maps"][()]
    altered = kspace.copy()
    for index in range(kspace.shape[0]):
        unsampled = ~make_mask(mask_name, SIZE, 32, mask_seed(source.name, index)).numpy()
        altered[index][:, unsampled] *= 3
    paths = []
    for folder, data in (("original", kspace), ("altered", altered)):
        (tmp_path / folder).mkdir()
        path = write_raw_fastmri(tmp_path / folder / source.name, data, SIZE, acquisition="AXT1")
        with h5py.File(path, "a") as handle:
            handle.create_dataset("sensitivity_maps", data=maps)
        paths.append(path)
    return paths


@pytest.mark.parametrize(("normalization", "leaks"), [("measured", False), ("slice_max", True)])
def test_runner_inputs_carry_nothing_from_the_target(small_embedded, tmp_path, normalization, leaks):
    """Changing only unsampled k-space (hence the target) leaves every method input bit-identical under
    ``measured``; under the authors' ``slice_max`` it does not (the target's peak leaks into the input)."""
    inputs = []
    for path in _twin_volumes(small_embedded, tmp_path, "cartesian_y"):
        options = LoadOptions(size=SIZE, normalization=normalization)
        recorder = InputRecorder()
        unit = Unit("recorder", "cartesian_y", path, "T1")
        settings = InferenceSettings(32, 8, normalization, CPU)
        volumes = {path: load_volume(path, options)}
        infer_group([unit], tmp_path / f"out-{path.parent.name}", recorder, volumes, settings, 0, False, [unit])
        inputs.append(torch.cat(recorder.seen))
    assert torch.equal(inputs[0], inputs[1]) is not leaks


def test_training_batches_carry_nothing_from_the_target(small_embedded, tmp_path):
    kspaces = []
    for path in _twin_volumes(small_embedded, tmp_path, "radial"):
        dataset = SliceDataset([path], LoadOptions(size=SIZE))
        masks = [make_mask("radial", SIZE, 32, mask_seed(path.name, index)) for index in range(2)]
        batch, target = make_batch(dataset, [0, 1], masks, "radial", 32)
        kspaces.append(batch.kspace)
    assert torch.equal(kspaces[0], kspaces[1])


def test_measured_scale_is_the_percentile_of_the_zero_filled_image(small_embedded):
    """Against numpy: FFT, SENSE combination and percentile computed independently."""
    path = dataset_files(small_embedded, "test", ("T2",))[0]
    sample = read_slice(path, 1, LoadOptions(size=SIZE))
    mask = make_mask("gaussian_2d", SIZE, 32, seed=3)
    kspace = sample.kspace * mask
    coil_images = numpy_ifft2c(kspace.numpy().astype(np.complex128))
    combined = np.abs((np.conj(sample.maps.numpy()) * coil_images).sum(axis=0))
    expected = np.percentile(combined, MEASURED_PERCENTILE)
    scale = measured_scale(kspace[None], sample.maps[None], mask[None])
    assert float(scale[0]) == pytest.approx(expected, rel=1e-5)
    # Training: the target shares the input's scale, so target / input keeps its physical ratio.
    dataset = SliceDataset([path], LoadOptions(size=SIZE))
    batch, target = make_batch(dataset, [1], [mask], "gaussian_2d", 32)
    assert torch.allclose(target.magnitude[0], sample.target / expected, rtol=1e-4)
    assert torch.allclose(batch.kspace[0], kspace / expected, rtol=1e-4, atol=1e-7)


@pytest.fixture(scope="module")
def zero_filled_run(small_embedded, tmp_path_factory):
    out = tmp_path_factory.mktemp("volume-run") / "run"
    config = RunConfig(methods=("zero_filled",), masks=("cartesian_y", "radial"), contrasts=("T1", "FLAIR"),
                       data=small_embedded, out=out, device="cpu", load=LoadOptions(size=SIZE))  # fmt: skip
    run_benchmark(config)
    return out


def test_volume_scores_equal_fastmri_evaluate_on_the_stored_volumes(small_embedded, zero_filled_run):
    volumes = pd.read_csv(zero_filled_run / "volume_metrics.csv")
    assert len(volumes) == 2 * 2  # masks x test volumes
    for row in volumes.itertuples():
        with h5py.File(zero_filled_run / "recons" / row.method / row.mask / row.file, "r") as handle:
            recon = np.abs(handle["reconstruction"][()]).astype(np.float64)
        path = next(p for p in dataset_files(small_embedded, "test") if p.name == row.file)
        target = np.stack([read_slice(path, s, LoadOptions(size=SIZE)).target.numpy() for s in range(len(recon))])
        target = target.astype(np.float64)
        assert row.psnr_fastmri == pytest.approx(fastmri.evaluate.psnr(target, recon), abs=1e-6)
        assert row.nmse_fastmri == pytest.approx(fastmri.evaluate.nmse(target, recon), rel=1e-6)
        assert row.ssim_fastmri == pytest.approx(fastmri.evaluate.ssim(target, recon), abs=1e-6)


def test_fastmri_protocol_tables_report_volume_means(zero_filled_run, tmp_path):
    write_report(zero_filled_run, tmp_path / "report", scoring="fastmri")
    text = (tmp_path / "report" / "tables.md").read_text()
    by_volume = pd.read_csv(zero_filled_run / "volume_metrics.csv").groupby(["mask", "contrast"])["psnr_fastmri"]
    by_image = pd.read_csv(zero_filled_run / "metrics.csv").groupby(["mask", "contrast"])["psnr_fastmri"]
    gap = (by_volume.mean() - by_image.mean()).abs()
    mask, contrast = gap.idxmax()  # the cell where the two conventions differ most
    volume_mean, image_mean = f"{by_volume.mean()[(mask, contrast)]:.2f}", f"{by_image.mean()[(mask, contrast)]:.2f}"
    assert volume_mean != image_mean
    title = {"radial": "### Table 2", "cartesian_y": "### Table 3"}[mask]
    row = next(line for line in text.split(title)[1].splitlines() if line.startswith("| Zero-filled"))
    psnr_cells = [cell.strip().strip("*") for cell in row.strip("|").split("|")][1:4]
    assert psnr_cells[("T1", "T2", "FLAIR").index(contrast)] == volume_mean


def test_tables_name_data_maps_normalisation_target_and_scoring(zero_filled_run, tmp_path):
    write_report(zero_filled_run, tmp_path / "report", with_paper=True)
    for name in ("tables.md", "tables.tex"):
        text = (tmp_path / "report" / name).read_text()
        for phrase in ("embedded MNI152-derived simulation", "true simulated coil maps", "99th percentile",
                       "SENSE coil-combined magnitude at 64x64", "paper protocol"):  # fmt: skip
            assert phrase in text, f"{name} does not say {phrase!r}"
        assert "not comparable" in text  # the published fastMRI rows next to simulated data


def test_resumed_cs_wavelet_run_equals_an_uninterrupted_one(small_embedded, tmp_path):
    """cs_wavelet draws from numpy's global RNG (sigpy's power iteration): the warm-up must not shift it."""
    arguments = ["run", "--methods", "cs_wavelet", "--masks", "radial,gaussian_2d", "--contrasts", "T1,T2"]
    arguments += ["--data", str(small_embedded), "--device", "cpu", "--size", "64", "64"]
    whole = subprocess.run([sys.executable, "-m", "benchmark", *arguments, "--out", str(tmp_path / "whole")],
                           capture_output=True, text=True)  # fmt: skip
    assert whole.returncode == 0, whole.stderr
    out = tmp_path / "killed"
    process = subprocess.Popen([sys.executable, "-m", "benchmark", *arguments, "--out", str(out)],
                               stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.time() + 120
    while time.time() < deadline and process.poll() is None and not finished_units(out):
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL, "the run ended before it was killed"
    assert 1 <= len(finished_units(out)) < 4
    resumed = subprocess.run([sys.executable, "-m", "benchmark", *arguments, "--out", str(out), "--resume"],
                             capture_output=True, text=True)  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    table, reference = pd.read_csv(out / "metrics.csv"), pd.read_csv(tmp_path / "whole" / "metrics.csv")
    assert not table.duplicated(["method", "mask", "file", "slice"]).any()
    pd.testing.assert_frame_equal(table[METRIC_COLUMNS], reference[METRIC_COLUMNS], check_exact=True)


@pytest.fixture(scope="module")
def two_checkpoints(small_embedded, tmp_path_factory):
    """Two tiny UNets trained for 2 steps at 64 x 64 with different seeds (different weights)."""
    paths = []
    for seed in (0, 1):
        out = tmp_path_factory.mktemp(f"unet-seed{seed}")
        request = TrainRequest(method="unet", profile="tiny", data=small_embedded, out=out, device="cpu",
                               steps=2, seed=seed, size=SIZE)  # fmt: skip
        paths.append(train(request))
    return paths


def _unet_config(data, out, checkpoint, **overrides):
    settings = dict(methods=("unet",), masks=("radial",), contrasts=("T1",), data=data, out=out, device="cpu",
                    load=LoadOptions(size=SIZE), checkpoints=(("unet", checkpoint),))  # fmt: skip
    return RunConfig(**{**settings, **overrides})


def test_resume_with_other_weights_is_refused(small_embedded, two_checkpoints, tmp_path):
    first, second = two_checkpoints
    table = run_benchmark(_unet_config(small_embedded, tmp_path / "run", first))
    assert set(table["checkpoint_sha256"]) == {sha256_file(first)}
    with pytest.raises(BenchmarkError, match="other weights"):
        run_benchmark(_unet_config(small_embedded, tmp_path / "run", second), resume=True)
    run_benchmark(_unet_config(small_embedded, tmp_path / "run", first), resume=True)  # same weights: fine


def test_checkpoint_from_another_setting_is_refused_unless_allowed(small_embedded, two_checkpoints, tmp_path):
    checkpoint = two_checkpoints[0]
    other = LoadOptions(size=SIZE, normalization="slice_max")
    with pytest.raises(BenchmarkError, match="normalization measured \\(trained\\) vs slice_max \\(this run\\)"):
        run_benchmark(_unet_config(small_embedded, tmp_path / "refused", checkpoint, load=other))
    assert not (tmp_path / "refused").exists()
    out = tmp_path / "allowed"
    table = run_benchmark(_unet_config(small_embedded, out, checkpoint, load=other, allow_mismatch=True))
    assert (table["setting_mismatch"].str.contains("slice_max")).all()
    write_report(out, tmp_path / "report")
    assert "scored outside its training setting" in (tmp_path / "report" / "tables.md").read_text()
