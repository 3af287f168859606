"""ESPIRiT and coil compression against known truth."""

import pytest
import torch

from benchmark.physics import MultiCoilOperator, birdcage_maps, coil_compress, espirit_maps


def disc_phantom(size: int) -> torch.Tensor:
    y, x = torch.meshgrid(torch.linspace(-1, 1, size), torch.linspace(-1, 1, size), indexing="ij")
    image = ((x**2 + y**2) < 0.6).double() + 0.5 * (((x - 0.2) ** 2 + y**2) < 0.05).double()
    return image.to(torch.complex128)


def test_espirit_recovers_known_maps_up_to_a_common_phase():
    size = 64
    true_maps = birdcage_maps(6, (size, size)).to(torch.complex128)
    image = disc_phantom(size)
    kspace = MultiCoilOperator(true_maps).forward(image).to(torch.complex64)
    estimated = espirit_maps(kspace, calib_width=20).to(torch.complex128)
    inside = image.abs() > 0
    # ESPIRiT maps equal the truth up to one phase per pixel: |<S_est, S_true>| = 1 inside the object.
    coherence = (estimated.conj() * true_maps).sum(0).abs()[inside]
    assert coherence.mean() > 0.99
    assert coherence.min() > 0.9


def test_coil_compression_keeps_all_energy_of_rank_deficient_data():
    gen = torch.Generator().manual_seed(0)
    basis = torch.randn(2, 8, 8, dtype=torch.complex128, generator=gen)
    mixing = torch.randn(6, 2, dtype=torch.complex128, generator=gen)
    kspace = torch.einsum("cv,vhw->chw", mixing, basis)  # 6 coils spanning a 2-D subspace
    compressed = coil_compress(kspace, 2)
    assert compressed.shape == (2, 8, 8)
    assert torch.linalg.vector_norm(compressed) == pytest.approx(torch.linalg.vector_norm(kspace).item())
    assert torch.linalg.vector_norm(coil_compress(kspace, 1)) < torch.linalg.vector_norm(kspace)


def test_coil_compression_rejects_impossible_sizes():
    with pytest.raises(ValueError, match="num_virtual_coils"):
        coil_compress(torch.zeros(3, 4, 4, dtype=torch.complex64), 4)
