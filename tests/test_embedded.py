"""The embedded dataset: fastMRI layout, determinism, subject splits, physics of the simulation."""

import subprocess
import sys
import xml.etree.ElementTree as ET

import h5py
import numpy as np
import pytest
import torch
from conftest import SMALL_SPEC, numpy_fft2c, numpy_ifft2c, raw_coil_images, write_raw_fastmri
from fastmri.data.mri_data import et_query

from benchmark.data import LoadOptions, build_embedded, convert, dataset_files, read_slice, verify_dataset
from benchmark.data.anatomy import deformed_slices, subject_tissues, synthesize_contrast
from benchmark.data.convert import Conversion, convert_fastmri
from benchmark.data.manifest import read_manifest
from benchmark.errors import BenchmarkError, DataError


def test_files_follow_the_fastmri_multicoil_layout(small_embedded):
    files = dataset_files(small_embedded, "test")
    assert [f.name for f in files] == [
        "embedded_sub02_AXFLAIR.h5",
        "embedded_sub02_AXT1.h5",
        "embedded_sub02_AXT2.h5",
    ]
    with h5py.File(files[2], "r") as handle:
        kspace = handle["kspace"][()]
        assert kspace.dtype == np.complex64 and kspace.shape == (2, 4, 64, 64)
        rss = np.sqrt((np.abs(numpy_ifft2c(kspace.astype(np.complex128))) ** 2).sum(1))
        np.testing.assert_allclose(handle["reconstruction_rss"][()], rss, rtol=1e-4, atol=1e-6)
        assert handle.attrs["max"] == pytest.approx(rss.max(), rel=1e-5)
        assert handle.attrs["norm"] == pytest.approx(np.linalg.norm(rss), rel=1e-5)
        assert handle.attrs["acquisition"] == "AXT2" and handle.attrs["patient_id"] == "sub02"
        # fastMRI's own header parser reads our encoded/recon sizes.
        root = ET.fromstring(handle["ismrmrd_header"][()])
        enc = ["encoding", "encodedSpace", "matrixSize"]
        assert int(et_query(root, enc + ["x"])) == 64 and int(et_query(root, enc + ["y"])) == 64
        maps = handle["sensitivity_maps"][()]
        np.testing.assert_allclose((np.abs(maps) ** 2).sum(0), 1.0, atol=1e-5)


def test_splits_are_by_subject(small_embedded):
    entries = read_manifest(small_embedded)["entries"]
    subjects = {split: {e.patient_id for e in entries if e.split == split} for split in ("train", "val", "test")}
    assert subjects["train"] and subjects["val"] and subjects["test"]
    assert not (
        subjects["train"] & subjects["val"]
        or subjects["train"] & subjects["test"]
        or subjects["val"] & subjects["test"]
    )
    assert {e.contrast for e in entries} == {"T1", "T2", "FLAIR"}


def test_build_is_deterministic(small_embedded, tmp_path):
    again = build_embedded(tmp_path / "again", SMALL_SPEC)
    assert read_manifest(again)["dataset_hash"] == read_manifest(small_embedded)["dataset_hash"]


def test_full_data_reconstructs_the_target_and_noise_matches_the_stated_snr(small_embedded):
    path = dataset_files(small_embedded, "test", ("T1",))[0]
    sample = read_slice(path, 0, LoadOptions(size=(64, 64), normalization="none"))
    # SENSE combination of full k-space with the true maps; the 6 x 6 corners (outside the head) hold
    # only noise, whose complex rms is the stated sigma.
    image = sample.target_complex
    corners = torch.cat([image[:6, :6], image[:6, -6:], image[-6:, :6], image[-6:, -6:]]).flatten()
    noise_sigma = corners.abs().pow(2).mean().sqrt()
    head = sample.target[sample.target > 0.05 * sample.target.max()]
    measured_snr = float(head.mean() / noise_sigma)
    assert measured_snr == pytest.approx(40.0, rel=0.25)


def test_contrasts_follow_the_signal_equations():
    rng = np.random.default_rng(0)
    slices = deformed_slices(rng, 2, (128, 128), pixel_mm=2.0)
    tissues = subject_tissues(slices, rng)
    csf, wm, gm = slices["csf"] > 0.9, slices["wm"] > 0.9, slices["gm"] > 0.8
    images = {c: synthesize_contrast(slices, tissues, c) for c in ("T1", "T2", "FLAIR")}
    assert images["T1"][csf].mean() < images["T1"][gm].mean() < images["T1"][wm].mean()
    assert images["T2"][wm].mean() < images["T2"][gm].mean() < images["T2"][csf].mean()
    # FLAIR nulls CSF: darker than both tissues; grey matter brighter than white as in T2.
    assert images["FLAIR"][csf].mean() < 0.3 * images["FLAIR"][wm].mean()
    assert images["FLAIR"][wm].mean() < images["FLAIR"][gm].mean()


def test_verify_detects_a_truncated_file(small_embedded, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(small_embedded, copy)
    victim = dataset_files(copy, "val")[0]
    victim.write_bytes(victim.read_bytes()[:1000])
    with pytest.raises(DataError, match="differs from the manifest"):
        verify_dataset(copy)
    assert verify_dataset(small_embedded) == read_manifest(small_embedded)["dataset_hash"]


def test_existing_dataset_is_not_overwritten_without_force(small_embedded):
    with pytest.raises(BenchmarkError, match="--force"):
        build_embedded(small_embedded)


def test_unknown_contrast_and_split_are_refused(small_embedded):
    with pytest.raises(BenchmarkError, match="unknown contrast 'PD'"):
        dataset_files(small_embedded, "test", ("PD",))
    with pytest.raises(BenchmarkError, match="unknown split"):
        dataset_files(small_embedded, "tset")


def test_converted_fastmri_file_reads_back_identically(tmp_path):
    images = raw_coil_images(num_slices=2, num_coils=4, rows=160, cols=92)
    source = write_raw_fastmri(
        tmp_path / "file_brain_AXFLAIR_7.h5", numpy_fft2c(images), recon=(80, 80), acquisition="AXFLAIR"
    )
    options = LoadOptions(size=(64, 64), espirit_calib_width=16)
    root = tmp_path / "converted"
    convert_fastmri(Conversion((source,), root, "val", options))
    converted = dataset_files(root, "val", ("FLAIR",))
    assert [p.name for p in converted] == [source.name]
    direct, stored = read_slice(source, 1, options), read_slice(converted[0], 1, options)
    torch.testing.assert_close(stored.kspace, direct.kspace, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(stored.maps, direct.maps)
    torch.testing.assert_close(stored.target, direct.target, atol=1e-6, rtol=1e-5)
    verify_dataset(root, check_hashes=True)


def test_a_conversion_aborted_midway_keeps_the_volumes_converted_before_it(tmp_path, monkeypatch):
    """The second file fails only while it is converted: the first stays, complete and recorded (a fragment,
    no manifest yet), and nothing half-written is left; the rerun converts only the second."""
    kspace = numpy_fft2c(raw_coil_images(num_slices=1, num_coils=2, rows=32, cols=24))
    sources = [write_raw_fastmri(tmp_path / f"file_brain_AXT2_{i}.h5", kspace, recon=(16, 16)) for i in (1, 2)]
    read = convert.read_slice

    def read_failing_on_the_second_file(path, index, options, maps_device="cpu"):
        if path == sources[1]:
            raise DataError(path, "failed while converting")
        return read(path, index, options, maps_device)

    monkeypatch.setattr(convert, "read_slice", read_failing_on_the_second_file)
    conversion = Conversion(tuple(sources), tmp_path / "converted", "test", LoadOptions(size=(16, 16),
                            espirit_calib_width=8))  # fmt: skip
    with pytest.raises(BenchmarkError, match="failed while converting; stopped there .the 1 volume"):
        convert.convert_fastmri(conversion)
    files = sorted(p.relative_to(conversion.root).as_posix() for p in conversion.root.rglob("*") if p.is_file())
    assert files == [".fragments/test/file_brain_AXT2_1.h5.json", "test/file_brain_AXT2_1.h5"]
    monkeypatch.setattr(convert, "read_slice", read)
    result = convert.convert_fastmri(conversion)
    assert ([p.name for p in result.converted], result.skipped) == (["file_brain_AXT2_2.h5"], 1)
    assert [entry.path for entry in read_manifest(conversion.root)["entries"]] == [f"test/{s.name}" for s in sources]


def test_prepare_command_verifies_an_existing_dataset(small_embedded):
    result = subprocess.run(
        [sys.executable, "-m", "benchmark", "prepare", "--data", str(small_embedded), "--verify"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert read_manifest(small_embedded)["dataset_hash"][:16] in result.stdout


def test_force_replaces_our_own_dataset_and_removes_the_old_one_only_after(small_embedded, tmp_path):
    import shutil

    from benchmark.data import EmbeddedSpec

    root = tmp_path / "data"
    shutil.copytree(small_embedded, root)
    old = read_manifest(root)["dataset_hash"]
    spec = EmbeddedSpec(**{**SMALL_SPEC.__dict__, "seed": 11})
    build_embedded(root, spec, force=True)
    assert read_manifest(root)["dataset_hash"] != old and verify_dataset(root, check_hashes=True)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["data"]  # no staging or retired folder left
