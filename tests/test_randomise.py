"""Domain-randomised training heads and shifted test heads: reproducible, varied where they should vary, geometry
and physics kept (label geometry under the warp, normalised coils, noise at its stated SNR, fastMRI's FFT)."""

import json

import fastmri
import h5py
import numpy as np
import pytest
import torch
from conftest import SMALL_SPEC
from scipy.ndimage import map_coordinates

from benchmark.data import EmbeddedSpec, build_embedded, dataset_files
from benchmark.data.anatomy import deformed_slices, draw_warp, load_template, subject_tissues, template_centre
from benchmark.data.coilmodels import COIL_MODELS, coil_maps
from benchmark.data.embedded import NOISE_SIGMA_ATTR, SHIFTED_SPEC, SNR_ATTR
from benchmark.data.randomise import RANDOMISED, SHIFTED, randomised_image

RANDOM_SPEC = EmbeddedSpec(**{**SMALL_SPEC.__dict__, "train_style": "randomised"})


@pytest.fixture(scope="module")
def randomised(tmp_path_factory):
    return build_embedded(tmp_path_factory.mktemp("randomised") / "data", RANDOM_SPEC)


def test_randomised_build_is_reproducible_and_keeps_the_realistic_test_split(randomised, small_embedded, tmp_path):
    again = build_embedded(tmp_path / "again", RANDOM_SPEC)
    manifests = [json.loads((root / "manifest.json").read_text()) for root in (randomised, again, small_embedded)]
    assert manifests[0]["dataset_hash"] == manifests[1]["dataset_hash"]
    tests = [{e["path"]: e["sha256"] for e in m["files"] if e["split"] == "test"} for m in manifests]
    assert tests[0] == tests[2]  # the scored split is the realistic one, byte for byte
    trains = [{e["path"] for e in m["files"] if e["split"] == "train"} for m in (manifests[0], manifests[2])]
    assert all("AXSYNTH" in path for path in trains[0]) and not trains[0] & trains[1]


def test_label_intensities_vary_across_volumes():
    """The white/grey-matter intensity ratio is fixed in the realistic heads (about 1.3 in T1); across randomised
    volumes its log spreads with SD above 0.5 (uniform label means: both orders, ratios far from 1)."""
    rng = np.random.default_rng(3)
    slices = deformed_slices(rng, 1, (96, 96), pixel_mm=2.5, warp=RANDOMISED.warp)
    tissues = subject_tissues(slices, rng)
    wm, gm = tissues["wm"] > 0.9, tissues["gm"] > 0.8
    ratios = []
    for draw in range(40):
        image, _, _ = randomised_image(slices, tissues, np.random.default_rng([5, draw]))
        ratios.append(image[wm].mean() / image[gm].mean())
    assert np.std(np.log(ratios)) > 0.5
    assert min(ratios) < 0.7 and max(ratios) > 1.4


@pytest.mark.parametrize("warp", [RANDOMISED.warp, SHIFTED.warp], ids=["randomised", "shifted"])
def test_the_warp_keeps_label_geometry_and_does_not_fold(warp):
    """The brain's fraction map after the warp (linear interpolation, > 0.5) against the binary template brain
    sampled independently at the warped coordinates (nearest neighbour): Dice >= 0.99. The warp's Jacobian
    determinant stays positive (no folding, so labels keep their topology)."""
    template, centre = load_template(), template_centre()
    brain = template["brain"] > 0.5
    for seed in range(6):
        slices = deformed_slices(np.random.default_rng([11, seed]), 1, (128, 128), pixel_mm=2.0, warp=warp)
        drawn = draw_warp(np.random.default_rng([11, seed]), warp)  # the same stream: the same deformation
        points = slices["points_mm"].reshape(3, -1) + centre[:, None]
        nearest = map_coordinates(brain.astype(float), drawn.apply(points, centre), order=0).reshape(128, 128) > 0.5
        ours = slices["brain"][0] > 0.5
        assert 2 * (ours & nearest).sum() / (ours.sum() + nearest.sum()) >= 0.99
        step = 1.0
        jacobian = np.stack([(drawn.apply(points + step * np.eye(3)[:, [i]], centre) - drawn.apply(points, centre))
                             / step for i in range(3)], axis=-1)  # fmt: skip
        assert np.linalg.det(jacobian.transpose(1, 0, 2)).min() > 0


@pytest.mark.parametrize("model", COIL_MODELS)
def test_every_coil_model_is_normalised(model):
    rng = np.random.default_rng(0)
    for count in (4, 20, 24):
        maps = coil_maps(rng, model, count, (64, 64), radius=1.3)
        assert maps.shape == (count, 64, 64)
        np.testing.assert_allclose((np.abs(maps) ** 2).sum(0), 1.0, atol=1e-12)


def test_the_posterior_array_receives_more_from_the_back_of_the_head_than_the_front():
    """Before normalisation the loops' summed sensitivity is the array's reception: behind (bottom rows: rows run
    anterior to posterior) it is several times what it is in front; a whole-head array is symmetric."""
    from benchmark.data.coilmodels import _loop_maps

    posterior = (np.abs(_loop_maps(np.random.default_rng(1), 24, (64, 64), 1.15, (0.0, np.pi))) ** 2).sum(0)
    assert posterior[48:].mean() > 3 * posterior[:16].mean()
    whole = (np.abs(_loop_maps(np.random.default_rng(1), 24, (64, 64), 1.15, (0.0, 2 * np.pi))) ** 2).sum(0)
    assert whole[48:].mean() == pytest.approx(whole[:16].mean(), rel=0.3)


def noise_and_signal(path):
    """The SENSE image's noise in its air corners, and the mean magnitude inside the head, of slice 0."""
    with h5py.File(path, "r") as handle:
        kspace, maps = handle["kspace"][0], handle["sensitivity_maps"][()]
        attrs = dict(handle.attrs)
    coils = fastmri.ifft2c(torch.view_as_real(torch.from_numpy(kspace.astype(np.complex64))))
    coils = torch.view_as_complex(coils).numpy().astype(np.complex128)
    combined = (np.conj(maps) * coils).sum(0)
    corners = np.concatenate([combined[:5, :5], combined[:5, -5:], combined[-5:, :5], combined[-5:, -5:]]).ravel()
    magnitude = np.abs(combined)
    return np.sqrt(np.mean(np.abs(corners) ** 2)), magnitude[magnitude > 0.05 * magnitude.max()].mean(), attrs, coils


def test_randomised_volumes_have_their_stated_noise_and_obey_the_sense_model(randomised):
    """Through fastMRI's own inverse FFT: the air-corner noise is the stored σ, the head's mean over σ is the
    stored SNR, and every coil image is its map times the SENSE image (up to noise: a single-image model)."""
    for path in dataset_files(randomised, "train") + dataset_files(randomised, "val"):
        noise, head, attrs, coils = noise_and_signal(path)
        assert noise == pytest.approx(attrs[NOISE_SIGMA_ATTR], rel=0.2)
        assert head / attrs[NOISE_SIGMA_ATTR] == pytest.approx(attrs[SNR_ATTR], rel=0.3)
        assert RANDOMISED.snr[0] <= attrs[SNR_ATTR] <= RANDOMISED.snr[1]
        with h5py.File(path, "r") as handle:
            maps = handle["sensitivity_maps"][()]
        combined = (np.conj(maps) * coils).sum(0)
        residual = coils - maps * combined
        assert np.sqrt(np.mean(np.abs(residual) ** 2)) < 2 * attrs[NOISE_SIGMA_ATTR]


def test_shifted_heads_are_outside_every_training_range(tmp_path):
    spec = EmbeddedSpec(**{**SHIFTED_SPEC.__dict__, "shape": (64, 64), "pixel_mm": 4.0, "splits": (("test", 2, 1),)})
    root = build_embedded(tmp_path / "shift", spec)
    files = dataset_files(root, "test")
    assert len(files) == 6 and all("shift" in path.name for path in files)
    for path in files:
        _, _, attrs, coils = noise_and_signal(path)
        assert coils.shape[0] == SHIFTED.coil_count > max(RANDOMISED.coil_counts)
        assert attrs[SNR_ATTR] == SHIFTED.snr < RANDOMISED.snr[0]
    assert SHIFTED.warp.yaw_deg > RANDOMISED.warp.yaw_deg and SHIFTED.warp.scale > RANDOMISED.warp.scale
