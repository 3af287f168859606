"""Centred orthonormal FFT against numpy.fft (independent implementation) and unitarity."""

import numpy as np
import pytest
import torch
from conftest import numpy_fft2c, numpy_ifft2c

from benchmark.physics import fft2c, ifft2c


@pytest.mark.parametrize("shape", [(2, 3, 16, 16), (5, 17, 12), (9, 8)])
def test_fft_matches_numpy_ortho_with_shifts(shape):
    rng = np.random.default_rng(0)
    array = rng.normal(size=shape) + 1j * rng.normal(size=shape)
    tensor = torch.from_numpy(array)
    np.testing.assert_allclose(fft2c(tensor).numpy(), numpy_fft2c(array), atol=1e-12)
    np.testing.assert_allclose(ifft2c(tensor).numpy(), numpy_ifft2c(array), atol=1e-12)


def test_dc_of_a_constant_image_sits_at_the_centre():
    # A constant image of value 1 on N x M has all energy at DC = sqrt(N M) under the orthonormal FFT.
    image = torch.ones(6, 8, dtype=torch.complex128)
    kspace = fft2c(image)
    assert kspace[3, 4] == pytest.approx(np.sqrt(48))
    assert kspace.abs().sum() == pytest.approx(np.sqrt(48))


def test_transform_is_unitary():
    x = torch.randn(4, 10, 14, dtype=torch.complex128)
    assert torch.linalg.vector_norm(fft2c(x)) == pytest.approx(torch.linalg.vector_norm(x).item())
    torch.testing.assert_close(ifft2c(fft2c(x)), x)


def test_real_input_is_refused():
    with pytest.raises(TypeError, match="complex"):
        fft2c(torch.ones(4, 4))
