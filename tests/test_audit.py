"""Hallucination audit: the null-space split against its algebra and closed forms."""

import numpy as np
import torch

from benchmark.audit.nullspace import (
    data_consistency_error,
    measurement_projection,
    null_space_split,
    slice_operator,
)
from benchmark.data import LoadOptions, SliceDataset, dataset_files
from benchmark.masks import make_mask
from benchmark.physics import fft2c, ifft2c, normalize_maps


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
