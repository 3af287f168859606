"""MambaRecon: the selective scan against a sequential recurrence, the cross scan's geometry, and the physics of
its hard data consistency."""

import pytest
import torch
import torch.nn.functional as F

from benchmark.physics import MultiCoilOperator
from methods.mambarecon import selective_scan as scan_module
from methods.mambarecon.config import CONFIGS
from methods.mambarecon.model import MambaReconNet
from methods.mambarecon.selective_scan import selective_scan
from methods.mambarecon.ss2d import cross_merge, cross_scan


def scan_inputs(generator, batch=2, channels=6, length=37, states=4, groups=2, dtype=torch.float64):
    def draw(*shape):
        return torch.randn(*shape, generator=generator, dtype=dtype).requires_grad_()

    A = (-torch.rand(channels, states, generator=generator, dtype=dtype) - 0.1).requires_grad_()
    return dict(
        u=draw(batch, channels, length),
        delta=draw(batch, channels, length),
        A=A,
        B=draw(batch, groups, states, length),
        C=draw(batch, groups, states, length),
        D=draw(channels),
        delta_bias=draw(channels),
    )


def sequential_scan(u, delta, A, B, C, D, delta_bias):
    """The S6 recurrence one position at a time, exactly as Mamba defines it."""
    delta = F.softplus(delta + delta_bias[:, None])
    per_group = u.shape[1] // B.shape[1]
    B, C = B.repeat_interleave(per_group, dim=1), C.repeat_interleave(per_group, dim=1)
    state = u.new_zeros(u.shape[0], u.shape[1], A.shape[1])
    outputs = []
    for t in range(u.shape[-1]):
        step = delta[..., t, None]
        state = torch.exp(step * A) * state + step * B[..., t] * u[..., t, None]
        outputs.append((state * C[..., t]).sum(-1))
    return torch.stack(outputs, dim=-1) + D[:, None] * u


@pytest.mark.parametrize("chunk_size", [8, 64])
def test_torch_selective_scan_matches_the_sequential_recurrence_and_its_gradients(chunk_size):
    # chunk 8 splits 37 positions into five chunks (state carried across), 64 holds them in one padded chunk.
    inputs = scan_inputs(torch.Generator().manual_seed(0))
    expected = sequential_scan(**inputs)
    actual = selective_scan(**inputs, backend="torch", chunk_size=chunk_size)
    torch.testing.assert_close(actual, expected, rtol=1e-10, atol=1e-10)
    weights = torch.randn(expected.shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    expected_grads = torch.autograd.grad((expected * weights).sum(), list(inputs.values()))
    actual_grads = torch.autograd.grad((actual * weights).sum(), list(inputs.values()))
    for name, want, got in zip(inputs, expected_grads, actual_grads, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-9, msg=name)


@pytest.mark.skipif(
    not (scan_module.cuda_kernel_available() and torch.cuda.is_available()), reason="needs mamba_ssm and a CUDA GPU"
)
def test_cuda_kernel_and_torch_backends_agree():
    inputs = {k: v.detach().float().cuda() for k, v in scan_inputs(torch.Generator().manual_seed(2)).items()}
    torch.testing.assert_close(
        selective_scan(**inputs, backend="cuda"), selective_scan(**inputs, backend="torch"), rtol=1e-4, atol=1e-4
    )


def test_cross_scan_orders_and_its_merge_restores_the_grid():
    x = torch.randn(2, 3, 4, 5)
    sequences = cross_scan(x)
    rows, columns = x.reshape(2, 3, 20), x.transpose(-1, -2).reshape(2, 3, 20)
    torch.testing.assert_close(sequences[:, 0], rows)
    torch.testing.assert_close(sequences[:, 1], columns)
    torch.testing.assert_close(sequences[:, 2], rows.flip(-1))
    torch.testing.assert_close(sequences[:, 3], columns.flip(-1))
    # Each direction's inverse brings its sequence back to row-major order: the merge of four copies is 4 x.
    torch.testing.assert_close(cross_merge(sequences, 4, 5), 4 * rows)


def hard_data_consistency(image, kspace, mask, maps):
    return MultiCoilOperator(maps, mask).data_consistent(image, kspace)


def random_problem(coils, generator, size=32, rate=0.25):
    maps = torch.randn(1, coils, size, size, dtype=torch.complex64, generator=generator)
    maps = maps / maps.abs().pow(2).sum(1, keepdim=True).sqrt()  # sum_c |S_c|^2 = 1
    mask = torch.rand(1, size, size, generator=generator) < rate
    truth = torch.randn(1, size, size, dtype=torch.complex64, generator=generator)
    return maps, mask, MultiCoilOperator(maps, mask).forward(truth)


def test_single_coil_output_is_consistent_with_the_measurement_and_the_step_is_idempotent():
    # With one coil (|S| = 1) replacing the sampled k-space is the projection onto {x : A x = y}: the network's
    # output, whatever its weights, reproduces the measurement at the sampled locations.
    generator = torch.Generator().manual_seed(3)
    maps, mask, kspace = random_problem(1, generator)
    operator = MultiCoilOperator(maps, mask)
    torch.manual_seed(0)
    net = MambaReconNet(CONFIGS["tiny"])
    with torch.no_grad():
        output = net(operator.adjoint(kspace), kspace, mask, maps)
    torch.testing.assert_close(operator.forward(output), kspace, atol=1e-5, rtol=0)
    image = torch.randn(1, 32, 32, dtype=torch.complex64, generator=generator)
    once = hard_data_consistency(image, kspace, mask, maps)
    torch.testing.assert_close(hard_data_consistency(once, kspace, mask, maps), once, atol=1e-5, rtol=0)


def test_multi_coil_consistency_keeps_a_consistent_image_and_uses_the_measurement():
    # With several coils, S^H F^H (M y + (1 - M) F S x) is not a projection in image space (coil-wise
    # replacement leaves the range of S), so A x' = y does not hold for arbitrary x. What holds: an image already
    # consistent with the data is left unchanged (S^H S = 1), and the measurement enters only as A^H y.
    generator = torch.Generator().manual_seed(4)
    maps, mask, _ = random_problem(8, generator)
    operator = MultiCoilOperator(maps, mask)
    image, other = torch.randn(2, 1, 32, 32, dtype=torch.complex64, generator=generator)
    consistent = operator.forward(image)
    torch.testing.assert_close(hard_data_consistency(image, consistent, mask, maps), image, atol=1e-5, rtol=0)
    changed = consistent + operator.forward(other)
    before = hard_data_consistency(image, consistent, mask, maps)
    difference = hard_data_consistency(image, changed, mask, maps) - before
    torch.testing.assert_close(difference, operator.adjoint(operator.forward(other)), atol=1e-5, rtol=0)


def test_gradient_checkpointing_gives_the_same_gradients():
    maps, mask, kspace = random_problem(2, torch.Generator().manual_seed(5))
    operator = MultiCoilOperator(maps, mask)
    grads = []
    for recompute in (False, True):
        torch.manual_seed(0)
        net = MambaReconNet(CONFIGS["tiny"], gradient_checkpointing=recompute).train()
        net(operator.adjoint(kspace), kspace, mask, maps).abs().mean().backward()
        grads.append(torch.cat([p.grad.flatten() for p in net.parameters()]))
    torch.testing.assert_close(grads[1], grads[0], rtol=1e-5, atol=1e-7)
