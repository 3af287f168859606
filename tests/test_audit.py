"""Hallucination audit: the null-space split against its algebra and closed forms; the lesion split against
the physics (its k-space difference is F(S ℓ), confined to the lesions) and its placement and balance rules."""

import shutil
from collections import Counter
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
import torch
from scipy import ndimage

from benchmark.audit.lesions import (
    LESION_CONTRASTS,
    LESION_RADII,
    LESIONS_PER_SLICE,
    SITE_SPACING,
    SKULL_CLEARANCE_PX,
    Lesion,
    draw_lesions,
    interior_region,
    place_lesions,
    sidecar_path,
    smooth_disc,
    write_lesion_split,
)
from benchmark.audit.nullspace import (
    data_consistency_error,
    measurement_projection,
    null_space_split,
    slice_operator,
)
from benchmark.audit.observers import (
    contrast_recovery,
    detection_auc,
    false_structures,
    ideal_dprime,
    observer_score,
)
from benchmark.audit.report import distillation_table
from benchmark.audit.tables import distillation_test, distillation_verdict, lesion_cells, subject_auc_interval
from benchmark.data import LoadOptions, SliceDataset, dataset_files, verify_dataset
from benchmark.errors import BenchmarkError
from benchmark.masks import make_mask, mask_seed
from benchmark.metrics.region import HEAD_MARGIN_PX
from benchmark.physics import fft2c, ifft2c, normalize_maps
from benchmark.reports.render import to_markdown


def random_problem(coils=4, size=32, batch=2, seed=0):
    generator = torch.Generator().manual_seed(seed)
    shape = (batch, coils, size, size)
    maps = normalize_maps(
        torch.complex(torch.randn(shape, generator=generator), torch.randn(shape, generator=generator))
    )
    mask = torch.stack([make_mask("gaussian_2d", (size, size), 4, seed=seed + b) for b in range(batch)])
    image = torch.complex(torch.randn(batch, size, size, generator=generator, dtype=torch.float64),
                          torch.randn(batch, size, size, generator=generator, dtype=torch.float64))  # fmt: skip
    return maps, mask, image


def norm(x):
    return x.abs().pow(2).sum((-2, -1)).sqrt()


def dense_operator(maps, mask):
    """``A = M F S`` of one slice as a matrix (rows: sampled coil k-space values; columns: pixels)."""
    coils, height, width = maps.shape
    basis = torch.eye(height * width, dtype=torch.complex128).reshape(-1, height, width)
    columns = fft2c(maps.to(torch.complex128)[None] * basis[:, None])[:, :, mask]  # (pixels, coils, samples)
    return columns.reshape(height * width, -1).T.numpy()


def test_the_projector_matches_numpys_pseudo_inverse_is_idempotent_and_its_complement_is_unmeasured():
    maps, _, v = random_problem(coils=3, size=12, batch=1)
    mask = torch.rand(1, 12, 12, generator=torch.Generator().manual_seed(3)) < 0.3  # ~R = 3.3, irregular
    operator = slice_operator(maps, mask)
    # 144 unknowns: CG is exact after at most 144 steps in exact arithmetic.
    projected = measurement_projection(operator, v, tolerance=1e-13, max_iterations=400)
    matrix = dense_operator(maps[0], mask[0])
    expected = (np.linalg.pinv(matrix, rcond=1e-10) @ matrix @ v[0].reshape(-1).numpy()).reshape(12, 12)
    scale = float(norm(v).max())
    torch.testing.assert_close(projected.measured[0], torch.from_numpy(expected), rtol=0, atol=1e-6 * scale)
    again = measurement_projection(operator, projected.measured, tolerance=1e-13, max_iterations=400).measured
    torch.testing.assert_close(again, projected.measured, rtol=0, atol=1e-6 * scale)
    unmeasured = operator.forward(v - projected.measured).abs().pow(2).sum().sqrt()
    assert unmeasured < 1e-6 * operator.forward(v).abs().pow(2).sum().sqrt()


@pytest.mark.parametrize("size", [12, 16])
@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_cg_run_past_its_precision_floor_keeps_its_best_iterate_and_reports_its_true_residual(seed, size):
    """Tolerance 0 and 1,000 iterations: past the single-precision products' floor CG diverges (to NaN on most
    of these problems before); the projection must stay the pseudo-inverse's and its residual the true one."""
    maps, _, v = random_problem(coils=3, size=size, batch=1, seed=seed)
    mask = torch.rand(1, size, size, generator=torch.Generator().manual_seed(3 + seed)) < 0.3
    projected = measurement_projection(slice_operator(maps, mask), v, tolerance=0.0, max_iterations=1000)
    matrix = dense_operator(maps[0], mask[0])
    expected = np.linalg.pinv(matrix, rcond=1e-10) @ matrix @ v[0].reshape(-1).numpy()
    scale = float(norm(v).max())
    assert np.abs(projected.measured[0].reshape(-1).numpy() - expected).max() < 1e-4 * scale
    gram = matrix.conj().T @ matrix
    rhs = gram @ v[0].reshape(-1).numpy()
    true_residual = np.linalg.norm(rhs - gram @ projected.measured[0].reshape(-1).numpy()) / np.linalg.norm(rhs)
    assert true_residual < 1e-5
    assert float(projected.residual[0]) == pytest.approx(true_residual, rel=0.2, abs=1e-8)


def test_with_one_uniform_coil_the_projector_is_the_k_space_mask():
    _, mask, v = random_problem(coils=1)
    maps = torch.ones(2, 1, 32, 32, dtype=torch.complex64)
    projected = measurement_projection(slice_operator(maps, mask), v).measured
    expected = ifft2c(fft2c(v) * mask)  # F⁻¹ M F: what a single uniform coil measures
    torch.testing.assert_close(projected, expected, rtol=0, atol=1e-6 * float(norm(v).max()))


def embedded_slices(data, count=2):
    dataset = SliceDataset(dataset_files(data, "test")[:1], LoadOptions(size=(64, 64)))
    items = [dataset[i] for i in range(count)]
    kspace, maps = (torch.stack([item[key] for item in items]) for key in ("kspace", "maps"))
    mask = torch.stack([make_mask("gaussian_2d", (64, 64), 8, seed=i) for i in range(count)])
    return kspace, maps, mask


def test_zero_filling_scores_nhe_one_the_truth_zero_and_its_data_consistency(small_embedded):
    kspace, maps, mask = embedded_slices(small_embedded)
    truth = slice_operator(maps, torch.ones_like(mask)).adjoint(kspace.to(torch.complex128))  # SENSE image
    operator = slice_operator(maps, mask)
    measured = operator.forward(truth)  # noise-free measurements of that truth
    zero_filled = operator.adjoint(measured)  # the minimum-norm-range image: no null-space content
    split = null_space_split(operator, zero_filled, truth)
    assert (split.residual < 1e-3).all()  # truncated CG: R = 8 leaves eigenvalues all the way down to zero
    torch.testing.assert_close(split.nhe, torch.ones(2, dtype=torch.float64), rtol=0, atol=0.02)
    assert (null_space_split(operator, truth, truth).nhe < 1e-10).all()
    torch.testing.assert_close(split.error, split.measured + split.null)
    dc = data_consistency_error(operator, truth, measured)
    assert (dc < 1e-6).all() and torch.allclose(
        data_consistency_error(operator, 0 * truth, measured), torch.ones(2, dtype=torch.float64)
    )


def test_the_lesion_split_adds_exactly_the_lesions_k_space_and_keeps_names_noise_and_manifest(small_embedded, tmp_path):
    out = write_lesion_split(small_embedded, tmp_path / "lesions")
    assert verify_dataset(out, check_hashes=True)
    sources = {path.name: path for path in dataset_files(small_embedded, "test")}
    written = dataset_files(out, "test")
    assert sorted(path.name for path in written) == sorted(sources)  # same names: the same masks
    for path in written:
        with h5py.File(path) as lesioned, h5py.File(sources[path.name]) as source, \
                h5py.File(sidecar_path(out, path.name)) as sidecar:  # fmt: skip
            assert sidecar.attrs["source_file"] == path.name
            assert lesioned.attrs["kspace_noise_sigma"] == source.attrs["kspace_noise_sigma"]
            maps = torch.from_numpy(lesioned["sensitivity_maps"][()])
            torch.testing.assert_close(maps, torch.from_numpy(source["sensitivity_maps"][()]), rtol=0, atol=0)
            lesion = torch.from_numpy(sidecar["lesion_image"][()])
            labels = sidecar["lesion_labels"][()]
            added = torch.from_numpy(lesioned["kspace"][()]) - torch.from_numpy(source["kspace"][()])
        expected = fft2c(maps[None] * lesion[:, None])  # F(S ℓ), computed here with the shared FFT
        scale = float(torch.from_numpy(h5py.File(sources[path.name])["kspace"][()]).abs().max())
        torch.testing.assert_close(added, expected, rtol=0, atol=2e-6 * scale)  # float32 storage of y and y_L
        energy = ifft2c(added).abs().pow(2).sum(1).numpy()  # every coil's image of the difference
        support = ndimage.binary_dilation(labels > 0, iterations=2)
        assert energy[~support].sum() < 0.01 * energy.sum()


def test_lesions_lie_inside_the_head_apart_and_their_classes_are_balanced_over_the_split():
    generator = np.random.default_rng(0)
    rows, cols = np.ogrid[:256, :256]
    head = np.hypot(rows - 128, cols - 128) < 100  # a uniform disc "head" of radius 100
    image = head * (1.0 + 0.1 * generator.standard_normal((256, 256)))
    interior = interior_region(image)
    number, classes = 0, []
    for _ in range(12):
        lesions, number = place_lesions(image, number, generator)
        assert len(lesions) == LESIONS_PER_SLICE  # a 100-pixel head has room for four
        for a in lesions:
            # The whole disc (edge at ρ + 0.5) stays the clearance inside the head region (the disc grown by 3 px).
            assert interior[a.row, a.col]
            assert np.hypot(a.row - 128, a.col - 128) + a.radius + 0.5 <= 100 + HEAD_MARGIN_PX - SKULL_CLEARANCE_PX
            for b in lesions:
                if a is not b:
                    assert np.hypot(a.row - b.row, a.col - b.col) >= SITE_SPACING * max(a.radius, b.radius)
        classes += [(lesion.radius, lesion.contrast) for lesion in lesions]
    counts = Counter(classes)
    assert len(counts) == len(LESION_RADII) * len(LESION_CONTRASTS) and set(counts.values()) == {2}  # 48 = 2 x 24


def test_a_lesion_carries_its_contrast_of_the_local_background_on_the_truths_phase():
    image = np.full((64, 64), 3.0 * np.exp(1j * 0.7))
    lesion_image, labels, (drawn,) = draw_lesions(image, [Lesion(32, 32, 3.0, -0.2)])
    assert drawn.background == pytest.approx(3.0, rel=1e-12)
    disc = smooth_disc((64, 64), 32, 32, 3.0)
    np.testing.assert_allclose(lesion_image, -0.2 * 3.0 * disc * np.exp(1j * 0.7), atol=1e-12)
    assert disc[32, 32] == 1.0 and disc[32, 36] == 0.0 and 0 < disc[32, 35] < 1  # ρ = 3: edge between 2.5 and 3.5
    assert (labels > 0).sum() == (disc > 0).sum()


def test_a_source_without_stored_maps_is_one_line_and_leaves_nothing(small_embedded, tmp_path):
    copy = tmp_path / "nomaps"
    shutil.copytree(small_embedded, copy)
    for path in dataset_files(copy, "test"):
        with h5py.File(path, "a") as handle:
            del handle["sensitivity_maps"]
    with pytest.raises(BenchmarkError, match="has no stored sensitivity_maps"):
        write_lesion_split(copy, tmp_path / "out")
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out.*"))


def uniform_head(value=2.0, size=96):
    """A smooth, noise-free complex truth: a uniform disc of radius 44 on a constant phase."""
    rows, cols = np.ogrid[:size, :size]
    return value * (np.hypot(rows - size / 2, cols - size / 2) < 44) * np.exp(0.3j)


def sites(contrast=0.2, radius=3.0):
    return [Lesion(48, 30, radius, contrast, 2.0), Lesion(48, 66, radius, -contrast, 2.0),
            Lesion(30, 48, radius, contrast, 2.0), Lesion(66, 48, radius, -contrast, 2.0)]  # fmt: skip


def with_lesions(truth, lesions):
    image, _, _ = draw_lesions(
        truth, [Lesion(lesion.row, lesion.col, lesion.radius, lesion.contrast) for lesion in lesions]
    )
    return truth + image


def test_contrast_recovery_and_detection_of_a_faithful_a_blind_and_a_blurring_reconstruction():
    truth = uniform_head()
    lesions = sites()
    lesioned = with_lesions(truth, lesions)
    faithful = [contrast_recovery(lesioned, truth, lesion) for lesion in lesions]
    np.testing.assert_allclose(faithful, 1.0, atol=1e-12)
    blind = [contrast_recovery(truth, truth, lesion) for lesion in lesions]  # ignores its input
    np.testing.assert_allclose(blind, 0.0, atol=1e-12)
    present = np.array([observer_score(lesioned, lesion) for lesion in lesions])
    absent = np.array([observer_score(truth, lesion) for lesion in lesions])
    assert detection_auc(present, absent) == 1.0 and detection_auc(absent, absent) == 0.5
    # A Gaussian blur K: CR = ⟨b, K∗b⟩ / ⟨b, b⟩, here by Parseval: Σ|B(k)|² G(k) / Σ|B(k)|².
    blur = 1.5
    blurred = [contrast_recovery(ndimage.gaussian_filter(np.abs(lesioned), blur, mode="constant"),
                                 ndimage.gaussian_filter(np.abs(truth), blur, mode="constant"), lesion)
               for lesion in lesions]  # fmt: skip
    spectrum = np.abs(np.fft.fft2(smooth_disc((96, 96), 48, 48, 3.0))) ** 2
    frequencies = np.fft.fftfreq(96)
    gain = np.exp(-2 * (np.pi * blur) ** 2 * (frequencies[:, None] ** 2 + frequencies[None, :] ** 2))
    np.testing.assert_allclose(blurred, (spectrum * gain).sum() / spectrum.sum(), rtol=2e-3)


def test_the_ideal_observer_dprime_matches_a_monte_carlo_of_the_measurements():
    generator = np.random.default_rng(1)
    maps = np.ones((1, 32, 32), dtype=np.complex128)
    mask = generator.random((32, 32)) < 0.25
    lesion = 0.5 * smooth_disc((32, 32), 16, 16, 3.0) * np.exp(0.4j)
    sigma = 0.8
    signal = np.fft.fftshift(np.fft.fft2(np.fft.ifftshift(lesion), norm="ortho"))[mask]  # M F S ℓ, S = 1
    draws = 20000
    real, imaginary = generator.standard_normal((2, draws, signal.size))
    noise = (real + 1j * imaginary) * sigma / np.sqrt(2)  # E|n|² = σ², as the embedded data store σ
    statistic = lambda y: (np.conj(signal) * y).real.sum(-1)  # noqa: E731  (the ideal, prewhitened observer)
    absent, present = statistic(noise), statistic(signal + noise)
    simulated = (present.mean() - absent.mean()) / absent.std()
    assert ideal_dprime(maps, mask, lesion, sigma) == pytest.approx(simulated, rel=0.03)


def test_the_false_structure_counter_finds_the_planted_spots_at_their_contrast_and_nothing_in_faint_noise():
    truth = uniform_head()
    interior = interior_region(truth)
    planted = sites(contrast=0.2)
    recon = with_lesions(truth, planted)
    for sign in (1, -1):
        found = false_structures(recon, truth, interior, 3.0, sign)
        expected = [(lesion.row, lesion.col, 0.2) for lesion in planted if np.sign(lesion.contrast) == sign]
        assert sorted(found) == sorted(expected)  # conspicuity: a planted 0.2 spot reads as contrast 0.2
    # Noise whose matched-filter response stays far below a 0.1-contrast lesion's: nothing is invented.
    noisy = np.abs(truth) + 0.01 * np.random.default_rng(2).standard_normal(truth.shape)
    assert (
        false_structures(noisy, truth, interior, 3.0, 1) == []
        and false_structures(noisy, truth, interior, 3.0, -1) == []
    )


def test_false_structures_are_spots_the_truth_lacks_not_its_shifted_or_erased_anatomy():
    truth = with_lesions(uniform_head(), sites(contrast=0.4))  # anatomy with spots of its own, both signs
    interior = interior_region(truth)
    shifted = np.roll(truth, 1, axis=1)  # the same anatomy a pixel over
    erased = uniform_head()  # the truth's spots blurred away: an error of either sign there, nothing shown
    for sign in (1, -1):
        assert false_structures(shifted, truth, interior, 3.0, sign) == []
        assert false_structures(erased, truth, interior, 3.0, sign) == []
    # A 0.4 spot invented 10 px (2ρ + 4) from a faint real one is still found, and as a spot of about 0.4.
    faint = with_lesions(uniform_head(), [Lesion(48, 38, 3.0, 0.15, 2.0)])
    invented = with_lesions(faint, [Lesion(48, 48, 3.0, 0.4, 2.0)])
    [(row, col, conspicuity)] = false_structures(invented, faint, interior_region(faint), 3.0, 1)
    assert (row, col) == (48, 48) and 0.3 < conspicuity <= 0.4 + 1e-6
    # A real spot made stronger in the reconstruction: only the excess over the truth counts.
    brighter = with_lesions(uniform_head(), [Lesion(48, 48, 3.0, 0.35, 2.0)])
    real = with_lesions(uniform_head(), [Lesion(48, 48, 3.0, 0.1, 2.0)])
    [(_, _, excess)] = false_structures(brighter, real, interior_region(real), 3.0, 1)
    disc = smooth_disc(real.shape, 48, 48, 3.0)
    local_mean = (disc * np.abs(real)).sum() / disc.sum()  # μ_bg of the truth there, its own spot included
    assert excess == pytest.approx((0.35 - 0.1) * 2.0 / local_mean, abs=1e-6)  # the excess, in contrast units


def test_the_audit_command_scores_zero_filling_and_its_clean_run_is_the_ordinary_run(
    small_embedded, tmp_path, monkeypatch
):
    import benchmark.audit.run as audit_run
    from benchmark.cli import main

    common = ["--methods", "zero_filled", "--masks", "radial", "--data", str(small_embedded), "--size", "64", "64",
              "--device", "cpu"]  # fmt: skip
    assert main(["audit", *common, "--out", str(tmp_path / "audit")]) == 0
    assert main(["run", *common, "--out", str(tmp_path / "run")]) == 0
    for path in sorted((tmp_path / "run" / "recons").rglob("*.h5")):
        audited = tmp_path / "audit" / "runs" / "clean" / path.relative_to(tmp_path / "run")
        with h5py.File(path) as ordinary, h5py.File(audited) as clean:
            assert np.array_equal(ordinary["reconstruction"][()], clean["reconstruction"][()])  # bit for bit
    lesions = pd.read_csv(tmp_path / "audit" / "lesions.csv")
    slices = pd.read_csv(tmp_path / "audit" / "slices.csv")
    placed = 0
    for path in dataset_files(tmp_path / "audit" / "lesion-data", "test"):
        with h5py.File(sidecar_path(tmp_path / "audit" / "lesion-data", path.name)) as sidecar:
            placed += len(sidecar["lesions"])
    assert len(lesions) == placed > 0 and len(slices) == 6  # 3 volumes x 2 slices, one mask
    # Zero filling is A^H y (scaled): no null-space content, so NHE = 1 on its own phase.
    np.testing.assert_allclose(slices["nhe_own_phase"], 1.0, atol=0.02)
    assert lesions["dprime_data"].gt(0).all() and lesions["cr"].notna().all()
    np.testing.assert_allclose(lesions["dprime_data"], closed_form_dprimes(small_embedded, tmp_path / "audit", lesions),
                               rtol=1e-4)  # fmt: skip
    assert lesions.groupby(["file", "slice"])["dprime_data"].nunique().max() > 1  # each lesion its own d'
    assert main(["report", str(tmp_path / "audit"), "--out", str(tmp_path / "report")]) == 0
    report = (tmp_path / "report" / "audit.md").read_text()
    assert "Known lesions" in report and "radial: Zero-filled" in report and "No distillation verdict" in report
    assert len(pd.read_csv(tmp_path / "report" / "audit.csv")) > 0
    assert (tmp_path / "report" / "cr_vs_radius.png").is_file() and (tmp_path / "report" / "grid_radial.png").is_file()
    before = (tmp_path / "audit" / "lesions.csv").read_bytes()
    monkeypatch.setattr(audit_run, "score_unit", lambda *args: pytest.fail("a scored volume was scored again"))
    assert main(["audit", *common, "--out", str(tmp_path / "audit"), "--resume"]) == 0
    assert (tmp_path / "audit" / "lesions.csv").read_bytes() == before


def closed_form_dprimes(data: Path, audit: Path, lesions: pd.DataFrame) -> list[float]:
    """Each audited lesion's ideal-observer d' alone, √2‖M F S ℓ‖/σ with ℓ = c μ_bg b e^{i∠x}, rebuilt from the
    source file, its sidecar's lesion table and the run's mask (not from the sidecar's lesion image)."""
    values = []
    for row in lesions.itertuples():
        (path,) = [p for p in dataset_files(data, "test") if p.name == row.file]
        with h5py.File(path) as handle:
            kspace, maps, sigma = handle["kspace"][row.slice], handle["sensitivity_maps"][()], \
                handle.attrs["kspace_noise_sigma"]  # fmt: skip
        maps = maps[row.slice] if maps.ndim == 4 else maps  # per-slice maps, or one set for the volume
        with h5py.File(sidecar_path(audit / "lesion-data", row.file)) as sidecar:
            table = sidecar["lesions"][()]
        _, r, c, radius, contrast, background = table[table[:, 0] == row.slice][row.lesion]
        coils = np.fft.fftshift(np.fft.ifft2(np.fft.ifftshift(kspace, axes=(-2, -1)), norm="ortho"), axes=(-2, -1))
        phase = np.exp(1j * np.angle((np.conj(maps) * coils).sum(0)))
        lesion = contrast * background * smooth_disc(kspace.shape[-2:], r, c, radius) * phase
        mask = make_mask(row.mask, kspace.shape[-2:], 32, mask_seed(row.file, row.slice)).numpy()
        signal = np.fft.fftshift(np.fft.fft2(np.fft.ifftshift(maps * lesion, axes=(-2, -1)), norm="ortho"),
                                 axes=(-2, -1)) * mask  # fmt: skip
        values.append(np.sqrt(2) * np.linalg.norm(signal) / sigma)
    return values


def paired_audit(effect: float, subjects: int = 12):
    """Per-subject lesions and slices of nasp-base and nasp, nasp's false structures lower by ``effect``."""
    generator = np.random.default_rng(5)
    lesion_rows, slice_rows = [], []
    for subject in range(subjects):
        background = generator.normal(3.0, 1.0)
        for method, false in (("nasp-base", background), ("nasp", background - effect)):
            identity = {"method": method, "mask": "radial", "contrast": "T1", "subject": f"s{subject:02d}"}
            slice_rows.append(
                {
                    **identity,
                    "slice": 0,
                    "nhe_own_phase": 0.8,
                    "nhe_truth_phase": 0.8,
                    "dc_error": 0.1,
                    "false_r1_bright_c0.1": false,
                    "false_r1_bright_c0.4": 0.0,
                }
            )
            for lesion in range(4):
                lesion_rows.append({**identity, "slice": 0, "lesion": lesion, "radius_px": 2.0,
                                    "lesion_contrast": 0.2, "cr": 0.9, "t_present": 1.0 + lesion,
                                    "t_absent": 0.5 + lesion, "dprime_data": 3.0})  # fmt: skip
    return pd.DataFrame(lesion_rows), pd.DataFrame(slice_rows)


def test_the_distillation_verdict_follows_a_planted_effect_and_only_then():
    lesions, slices = paired_audit(effect=1.0)
    test = distillation_test(lesions, slices)
    false = test.set_index("measure").loc["false structures / image"]  # at the faintest lesion's contrast
    assert false["difference"] == pytest.approx(-1.0) and false["high"] < 0
    assert false["p"] == pytest.approx(2 / 2**12)  # exact signed-rank p: all 12 differences negative
    assert distillation_verdict(test).startswith("The claim holds at this size (12 subjects)")
    rendered = to_markdown(distillation_table(test, "Data: synthetic.")).splitlines()
    rows = [line for line in rendered if line.startswith("| radial")]
    assert len(rows) == 3 and {line.count("|") for line in rows} == {rendered[-len(rows) - 2].count("|")}
    lesions, slices = paired_audit(effect=1.0)
    distilled = slices["method"] == "nasp"
    slices.loc[distilled, "nhe_own_phase"] += 0.1 + 0.01 * np.arange(distilled.sum())  # worse for every subject
    assert distillation_verdict(distillation_test(lesions, slices)).startswith(
        "The claim is not supported at this size (12 subjects): distillation lowers false structures / image on "
        "radial but raises NHE (own phase) on radial"
    )
    unchanged = distillation_test(*paired_audit(effect=0.0))
    assert distillation_verdict(unchanged).startswith("The claim is not shown at this size")
    assert distillation_verdict(distillation_test(*[frame[frame["method"] == "nasp"] for frame in paired_audit(0.0)]))\
        .startswith("No distillation verdict")  # fmt: skip


def test_auc_and_its_subject_bootstrap_against_mann_whitney():
    lesions, _ = paired_audit(effect=0.0)
    cells = lesion_cells(lesions).set_index("method")
    # Present scores 1..4 against absent 0.5..3.5 per subject: P(present > absent) = 10/16 by counting.
    assert cells.loc["nasp", "auc"] == pytest.approx(10 / 16)
    low, high = subject_auc_interval(lesions[lesions["method"] == "nasp"])
    assert low == pytest.approx(10 / 16) and high == pytest.approx(10 / 16)  # every subject alike: no spread
    reversed_scores = lesions.assign(t_present=lesions["t_absent"].min() - 1.0)  # every present below every absent
    assert (lesion_cells(reversed_scores)["auc"] == 0).all() and (
        lesion_cells(reversed_scores)["efficiency"] == 0
    ).all()
    shuffled = lesions[lesions["method"] == "nasp"].assign(t_present=np.random.default_rng(0).normal(size=48))
    low, high = subject_auc_interval(shuffled)
    point = detection_auc(shuffled["t_present"].to_numpy(), shuffled["t_absent"].to_numpy())
    assert low < point < high
