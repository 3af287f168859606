"""The multi-coil operator: adjointness, identity on full masks, coil combination against numpy."""

import numpy as np
import pytest
import torch

from benchmark.masks import PATTERNS, make_mask
from benchmark.physics import MultiCoilOperator, birdcage_maps, fft2c, normalize_maps, rss, sense_combine

SHAPE = (24, 20)


def random_complex(generator, *shape):
    return torch.randn(*shape, generator=generator, dtype=torch.complex128)


def random_masks():
    rng = torch.Generator().manual_seed(1)
    yield "bernoulli", torch.rand(SHAPE, generator=rng) < 0.3
    yield "full", torch.ones(SHAPE, dtype=torch.bool)
    for name in PATTERNS:
        yield name, make_mask(name, SHAPE, 4, seed=7)


@pytest.mark.parametrize(("name", "mask"), list(random_masks()))
def test_adjointness_in_float64(name, mask):
    gen = torch.Generator().manual_seed(3)
    maps = random_complex(gen, 2, 5, *SHAPE)  # batch of 2, 5 coils, not normalised: adjointness must hold anyway
    x = random_complex(gen, 2, *SHAPE)
    y = random_complex(gen, 2, 5, *SHAPE)
    operator = MultiCoilOperator(maps, mask)
    lhs = torch.vdot(operator.forward(x).flatten(), y.flatten())
    rhs = torch.vdot(x.flatten(), operator.adjoint(y).flatten())
    assert abs(lhs - rhs) < 1e-10 * abs(lhs), name


def test_adjoint_of_forward_is_identity_for_full_mask_and_normalised_maps():
    gen = torch.Generator().manual_seed(4)
    maps = normalize_maps(random_complex(gen, 6, *SHAPE))
    x = random_complex(gen, *SHAPE)
    operator = MultiCoilOperator(maps)
    torch.testing.assert_close(operator.adjoint(operator.forward(x)), x)


def test_forward_zeroes_exactly_the_unsampled_locations():
    mask = make_mask("radial", SHAPE, 4, seed=2)
    gen = torch.Generator().manual_seed(5)
    maps, x = random_complex(gen, 3, *SHAPE), random_complex(gen, *SHAPE)
    kspace = MultiCoilOperator(maps, mask).forward(x)
    assert torch.all(kspace[:, ~mask] == 0)
    torch.testing.assert_close(kspace[:, mask], fft2c(maps * x)[:, mask])


def test_birdcage_maps_are_normalised():
    maps = birdcage_maps(8, (32, 40))
    energy = maps.abs().pow(2).sum(0)
    torch.testing.assert_close(energy, torch.ones_like(energy), atol=1e-5, rtol=0)


def test_rss_and_sense_combine_match_numpy():
    rng = np.random.default_rng(0)
    coils = rng.normal(size=(4, 8, 8)) + 1j * rng.normal(size=(4, 8, 8))
    maps = rng.normal(size=(4, 8, 8)) + 1j * rng.normal(size=(4, 8, 8))
    np.testing.assert_allclose(rss(torch.from_numpy(coils)).numpy(), np.sqrt((np.abs(coils) ** 2).sum(0)))
    expected = (np.conj(maps) * coils).sum(0)
    np.testing.assert_allclose(sense_combine(torch.from_numpy(coils), torch.from_numpy(maps)).numpy(), expected)


def test_low_resolution_image_recovers_a_smooth_phase_from_a_centre_sampled_mask():
    shape = (64, 64)
    rows, cols = torch.meshgrid(torch.linspace(-1, 1, 64), torch.linspace(-1, 1, 64), indexing="ij")
    phase = 0.8 * rows + 0.5 * cols**2  # smooth, as in a real head
    magnitude = ((rows**2 + cols**2) < 0.6).double() + 0.2
    truth = (magnitude * torch.exp(1j * phase)).to(torch.complex128)
    maps = normalize_maps(birdcage_maps(8, shape).to(torch.complex128))
    operator = MultiCoilOperator(maps, make_mask("gaussian_2d", shape, 8, seed=0))
    estimate = torch.angle(operator.low_resolution_image(operator.forward(truth), width=0.1))
    inside = magnitude > 1
    difference = torch.angle(torch.exp(1j * (estimate - phase)))[inside]
    assert difference.abs().mean() < 0.1, difference.abs().mean()
    assert estimate.std() > 0.3  # it is not a constant: the phase varies across the head
