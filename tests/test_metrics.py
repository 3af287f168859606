"""Pixel metrics against fastmri.evaluate and skimage under both protocols, plus closed-form cases."""

import math

import numpy as np
import pytest
import torch
from fastmri import evaluate
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from benchmark.data import LoadOptions, dataset_files, read_slice
from benchmark.metrics import ScoringBatch, build_metric_suite
from benchmark.metrics.pixel import NMSE, PSNR, SSIM
from benchmark.metrics.ssim import ssim


def random_pair(seed=0, shape=(3, 48, 40)):
    rng = np.random.default_rng(seed)
    target = np.abs(rng.normal(size=shape)).cumsum(axis=-1)  # smooth-ish, non-negative
    recon = np.abs(target + 0.3 * rng.normal(size=shape))
    return recon, target


def real_pair(small_embedded):
    path = dataset_files(small_embedded, "test", ("T2",))[0]
    target = np.stack([read_slice(path, s, LoadOptions(size=(64, 64))).target.numpy() for s in range(2)])
    rng = np.random.default_rng(1)
    return np.abs(target + 0.05 * rng.normal(size=target.shape)), target


def batch_of(recon, target, with_region=False):
    from benchmark.metrics.region import head_region

    target = torch.from_numpy(target)
    region = head_region(target) if with_region else None
    return ScoringBatch(torch.from_numpy(recon), target, target.amax().expand(len(target)), region=region)


@pytest.mark.parametrize("source", ["random", "real"])
def test_fastmri_protocol_matches_fastmri_evaluate(source, small_embedded):
    recon, target = random_pair() if source == "random" else real_pair(small_embedded)
    batch = batch_of(recon, target)
    volume_max = target.max()
    for index in range(len(target)):
        gt, pred = target[index : index + 1], recon[index : index + 1]
        # fastmri.evaluate's psnr/ssim take the data range from gt.max(); pass the volume max explicitly.
        expected_psnr = peak_signal_noise_ratio(gt, pred, data_range=volume_max)
        expected_ssim = evaluate.ssim(gt, pred, maxval=volume_max)
        assert PSNR("fastmri")(batch)[index].item() == pytest.approx(expected_psnr, abs=1e-6)
        assert SSIM("fastmri")(batch)[index].item() == pytest.approx(expected_ssim, abs=1e-4)
        assert NMSE("fastmri")(batch)[index].item() == pytest.approx(evaluate.nmse(gt, pred), rel=1e-6)


@pytest.mark.parametrize("source", ["random", "real"])
def test_paper_protocol_matches_the_authors_skimage_calls(source, small_embedded):
    recon, target = random_pair(2) if source == "random" else real_pair(small_embedded)
    batch = batch_of(recon, target)
    for index in range(len(target)):
        gt, pred = target[index] / target[index].max(), recon[index] / recon[index].max()
        expected_ssim = structural_similarity(
            gt, pred, sigma=1.5, gaussian_weights=True, use_sample_covariance=False, data_range=1.0
        )
        assert SSIM("paper")(batch)[index].item() == pytest.approx(expected_ssim, abs=1e-4)
        assert PSNR("paper")(batch)[index].item() == pytest.approx(peak_signal_noise_ratio(gt, pred, data_range=1.0))


@pytest.mark.parametrize("window", ["uniform", "gaussian"])
def test_batched_ssim_equals_skimage_to_1e4_on_256_slices(window):
    rng = np.random.default_rng(3)
    x = rng.random((4, 256, 256))
    y = np.clip(x + 0.2 * rng.normal(size=x.shape), 0, None)
    options = {} if window == "uniform" else dict(gaussian_weights=True, sigma=1.5, use_sample_covariance=False)
    expected = [structural_similarity(x[i], y[i], data_range=1.0, **options) for i in range(4)]
    ours = ssim(torch.from_numpy(x), torch.from_numpy(y), 1.0, window).numpy()
    np.testing.assert_allclose(ours, expected, atol=1e-4)


def test_identical_images_give_ssim_one_psnr_infinity_nmse_zero():
    _, target = random_pair(4)
    batch = batch_of(target, target)
    for protocol in ("fastmri", "paper"):
        torch.testing.assert_close(SSIM(protocol)(batch), torch.ones(3, dtype=torch.float64), atol=1e-12, rtol=0)
        assert torch.all(torch.isposinf(PSNR(protocol)(batch)))
        assert torch.all(NMSE(protocol)(batch) == 0)


def test_psnr_closed_form():
    target = torch.zeros(1, 8, 8)
    target[0, 0, 0] = 2.0
    recon = target + 0.1  # MSE = 0.01 everywhere
    batch = ScoringBatch(recon, target, torch.tensor([2.0]))
    assert PSNR("fastmri")(batch).item() == pytest.approx(10 * math.log10(4 / 0.01))


def test_more_noise_is_worse_for_every_available_metric(small_embedded):
    _, target = real_pair(small_embedded)
    rng = np.random.default_rng(5)
    noise = rng.normal(size=target.shape)
    scores = []
    for level in (0.02, 0.1):
        recon = np.abs(target + level * noise)
        batch = batch_of(recon, target, with_region=True)
        scores.append({m.name: (m(batch).mean().item(), m.direction) for m in build_metric_suite() if m.available})
    assert {"psnr_fastmri", "ssim_paper", "nmse_paper", "stlpips_alex", "ssim_paper_head"} <= set(scores[0])
    for name, (low_noise, direction) in scores[0].items():
        high_noise = scores[1][name][0]
        assert (low_noise > high_noise) if direction == "higher" else (low_noise < high_noise), name


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_pixel_metrics_scored_on_the_gpu_match_the_cpu():
    generator = torch.Generator().manual_seed(0)
    target = torch.rand(4, 64, 64, generator=generator)
    batch = ScoringBatch(target + 0.05 * torch.rand(4, 64, 64, generator=generator), target, target.amax().expand(4))
    for cls in (PSNR, SSIM, NMSE):
        for protocol in ("paper", "fastmri"):
            on_gpu = cls(protocol, "cuda")(batch)
            assert on_gpu.device.type == "cpu"
            torch.testing.assert_close(on_gpu, cls(protocol)(batch), rtol=1e-6, atol=1e-6)


def head_phantom(size=96, outer=36.0, skull=(28.0, 31.0)):
    """A head-like disc: bright scalp ring, a dark skull ring (zero) and a brain inside, on black air."""
    y, x = np.mgrid[:size, :size] - (size - 1) / 2
    radius = np.hypot(y, x)
    image = np.where(radius < outer, 1.0, 0.0) * (0.6 + 0.4 * np.cos(x / 7.0) ** 2)
    image[(radius >= skull[0]) & (radius < skull[1])] = 0.0
    return image, radius


def test_head_region_is_the_filled_head_grown_by_its_margin():
    from benchmark.metrics.region import HEAD_MARGIN_PX, head_region

    image, radius = head_phantom()
    region = head_region(torch.from_numpy(image)[None])[0].numpy()
    # The dark skull and everything inside it belong to the head; air beyond the margin does not.
    assert region[radius < 35].all()
    assert not region[radius > 36 + HEAD_MARGIN_PX + 1].any()
    area = math.pi * (36 + HEAD_MARGIN_PX) ** 2
    assert region.sum() == pytest.approx(area, rel=0.06)


def test_head_region_metrics_ignore_errors_in_the_air_and_match_skimage_inside():
    from benchmark.metrics.region import HEAD, head_region

    image, radius = head_phantom()
    rng = np.random.default_rng(3)
    recon = image.copy()
    recon[radius > 46] += 0.2 * rng.random((radius > 46).sum())  # errors only far out in the air
    target, estimate = image[None], recon[None]
    region = head_region(torch.from_numpy(target))
    batch = ScoringBatch(torch.from_numpy(estimate), torch.from_numpy(target), torch.ones(1), region=region)
    assert math.isinf(PSNR("paper", region=HEAD)(batch).item()) and PSNR("paper")(batch).item() < 40
    assert SSIM("fastmri", region=HEAD)(batch).item() == pytest.approx(1.0, abs=1e-9)
    # Errors inside the head: region PSNR from the masked MSE, region SSIM = skimage's SSIM map over the region.
    recon = image + 0.05 * rng.normal(size=image.shape)
    batch = ScoringBatch(torch.from_numpy(recon[None]), torch.from_numpy(target), torch.ones(1), region=region)
    mask = region[0].numpy()
    mse = ((recon - image) ** 2)[mask].mean()
    assert PSNR("fastmri", region=HEAD)(batch).item() == pytest.approx(10 * math.log10(1 / mse), abs=1e-9)
    _, ssim_map = structural_similarity(image, recon, data_range=1.0, full=True)
    pad = 3  # skimage's 7 x 7 window: the map is averaged over the pixels at least 3 from every edge
    inner = np.zeros_like(mask)
    inner[pad:-pad, pad:-pad] = True
    expected = ssim_map[mask & inner].mean()
    assert SSIM("fastmri", region=HEAD)(batch).item() == pytest.approx(expected, abs=1e-5)
    with pytest.raises(ValueError, match="carries no region mask"):
        SSIM("paper", region=HEAD)(batch_of(recon[None], target))
