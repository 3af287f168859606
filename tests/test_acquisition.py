"""The one acquisition path: what a method receives depends on the measurements only, and each scale policy
normalises as it says (checked against the zero-filled image's percentile, computed here independently)."""

import pytest
import torch

from benchmark.acquisition import acquire, volume_masks
from benchmark.data.normalization import MEASURED_PERCENTILE
from benchmark.masks import make_mask, mask_seed
from benchmark.method import ReconBatch


def slices(count: int = 3, coils: int = 4, size: int = 32, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    kspace = torch.randn(count, coils, size, size, dtype=torch.complex64, generator=generator)
    kspace *= torch.logspace(0, 2, count)[:, None, None, None]  # slices of different brightness
    maps = torch.randn(count, coils, size, size, dtype=torch.complex64, generator=generator)
    maps /= maps.abs().pow(2).sum(1, keepdim=True).sqrt()
    mask = torch.rand(count, size, size, generator=generator) < 0.3
    return kspace, maps, mask


def zero_filled_percentile(kspace, maps, pooled: bool) -> torch.Tensor:
    """The percentile ``measured`` maps to 1, from sum_c conj(S_c) F^H y_c written out with numpy-order FFTs."""
    coil_images = torch.fft.fftshift(
        torch.fft.ifft2(torch.fft.ifftshift(kspace, dim=(-2, -1)), norm="ortho"), dim=(-2, -1)
    )
    magnitude = (maps.conj() * coil_images).sum(1).abs().to(torch.float64)
    values = magnitude.flatten() if pooled else magnitude.flatten(1)
    return torch.quantile(values, MEASURED_PERCENTILE / 100, dim=-1)


def test_the_method_receives_only_measurements_and_nothing_from_outside_the_mask():
    kspace, maps, mask = slices()
    altered = kspace.clone()
    altered[~mask[:, None].expand_as(kspace)] = 1e6  # unmeasured k-space, the target's only source, changes
    for policy in ("volume", "slice", "none"):
        first, second = (acquire(k, maps, mask, "radial", 32, policy) for k in (kspace, altered))
        assert torch.equal(first.batch.kspace, second.batch.kspace)
        assert torch.equal(first.scale, second.scale)
        assert not first.batch.kspace[~mask[:, None].expand_as(kspace)].any()


def test_volume_policy_pools_the_slices_and_maps_their_percentile_to_one():
    kspace, maps, mask = slices()
    acquisition = acquire(kspace, maps, mask, "radial", 32, "volume")
    assert torch.equal(acquisition.scale, acquisition.scale[:1].expand(3))
    normalised = zero_filled_percentile(acquisition.batch.kspace, maps, pooled=True)
    assert normalised.item() == pytest.approx(1.0, rel=1e-4)


def test_slice_policy_gives_each_slice_its_own_scale_whatever_it_is_batched_with():
    kspace, maps, mask = slices()
    together = acquire(kspace, maps, mask, "radial", 32, "slice")
    alone = acquire(kspace[1:2], maps[1:2], mask[1:2], "radial", 32, "slice")
    assert together.scale[1].item() == alone.scale[0].item()
    assert torch.equal(together.batch.kspace[1:2], alone.batch.kspace)
    per_slice = zero_filled_percentile(together.batch.kspace, maps, pooled=False)
    assert per_slice.tolist() == pytest.approx([1.0] * 3, rel=1e-4)
    assert together.scale[2] / together.scale[0] == pytest.approx(100.0, rel=0.2)  # the slices' brightness


def test_the_target_is_divided_like_the_batch_and_no_policy_means_no_division():
    kspace, maps, mask = slices()
    acquisition = acquire(kspace, maps, mask, "radial", 32, "slice")
    target = torch.rand(3, 32, 32)
    restored = acquisition.normalised(target) * acquisition.scale[:, None, None]
    assert torch.allclose(restored.float(), target, rtol=1e-6)
    untouched = acquire(kspace, maps, mask, "radial", 32, "none")
    assert torch.equal(untouched.batch.kspace, kspace * mask[:, None])
    with pytest.raises(ValueError, match="unknown scale policy"):
        acquire(kspace, maps, mask, "radial", 32, "per_coil")


def test_volume_masks_are_the_seeded_masks_of_each_slice():
    masks = volume_masks("gaussian_2d", "file_a.h5", 3, (64, 64), 8)
    for index in range(3):
        assert torch.equal(masks[index], make_mask("gaussian_2d", (64, 64), 8, mask_seed("file_a.h5", index)))
    assert not torch.equal(masks[0], masks[1])


def test_batches_join_and_split_along_slices_and_refuse_mixed_masks_or_seeds():
    kspace, maps, mask = slices()
    batch = ReconBatch(kspace, mask, maps, "radial", 32)
    joined = ReconBatch.concatenated([batch.select([2]), batch.select([0, 1])])
    assert torch.equal(joined.kspace, kspace[[2, 0, 1]]) and torch.equal(joined.maps, maps[[2, 0, 1]])
    with pytest.raises(ValueError, match="one mask pattern"):
        ReconBatch.concatenated([batch, ReconBatch(kspace, mask, maps, "cartesian_x", 32)])
    with pytest.raises(ValueError, match="seed"):  # one batch, one stream of draws
        ReconBatch.concatenated([batch, ReconBatch(kspace, mask, maps, "radial", 32, seed=1)])
