"""RecurrentVarNet, written here: data consistency of its update and parity with DIRECT's class."""

import pytest
import torch

from benchmark.physics import fft2c
from methods.recurrentvarnet.model import RecurrentVarNet, RecurrentVarNetBlock


def test_block_without_regularizer_is_exact_data_consistency():
    # alpha = 1 and a zero regulariser output: k <- k - M (k - y), so sampled k-space becomes the
    # measurement and unsampled k-space is untouched.
    torch.manual_seed(0)
    block = RecurrentVarNetBlock(hidden_channels=4, num_layers=1)
    final = block.regularizer.conv_blocks[-1][-1]
    torch.nn.init.zeros_(final.weight)
    torch.nn.init.zeros_(final.bias)
    kspace = torch.randn(2, 3, 16, 16, dtype=torch.complex64)
    measured = torch.randn(2, 3, 16, 16, dtype=torch.complex64)
    mask = torch.rand(2, 16, 16) < 0.3
    maps = torch.randn(2, 3, 16, 16, dtype=torch.complex64)
    updated, state = block(kspace, measured * mask[:, None], mask, maps, None)
    sampled = mask[:, None].expand_as(kspace)
    torch.testing.assert_close(updated[sampled], measured[sampled])
    torch.testing.assert_close(updated[~sampled], kspace[~sampled])
    assert state.shape == (2, 4, 16, 16, 1)


def test_regularizer_fills_unsampled_kspace():
    torch.manual_seed(1)
    model = RecurrentVarNet(
        num_steps=2, hidden_channels=4, num_layers=1, initializer_channels=(4, 4), initializer_dilations=(1, 2)
    )
    masked = fft2c(torch.randn(1, 3, 16, 16, dtype=torch.complex64))
    mask = torch.zeros(1, 16, 16, dtype=torch.bool)
    mask[:, :, ::4] = True
    masked = masked * mask[:, None]
    output = model(masked, mask, torch.randn(1, 3, 16, 16, dtype=torch.complex64))
    assert output[:, :, ~mask[0]].abs().sum() > 0  # the network fills in missing k-space


def test_parity_with_direct_when_it_imports():
    reason = 'needs DIRECT: pip install -e ".[direct]" (Python >= 3.12)'
    direct_model = pytest.importorskip("direct.nn.recurrentvarnet.recurrentvarnet", reason=reason)
    transforms = pytest.importorskip("direct.data.transforms", reason=reason)
    torch.manual_seed(2)
    settings = dict(
        num_steps=2,
        recurrent_hidden_channels=8,
        recurrent_num_layers=2,
        learned_initializer=True,
        initializer_channels=(4, 4, 8, 8),
        initializer_dilations=(1, 1, 2, 4),
        initializer_multiscale=1,
    )
    theirs = direct_model.RecurrentVarNet(
        transforms.fft2, transforms.ifft2, initializer_initialization="sense", **settings
    )
    ours = RecurrentVarNet(2, 8, 2, True, (4, 4, 8, 8), (1, 1, 2, 4), 1)
    ours.load_state_dict(theirs.state_dict(), strict=True)
    masked = fft2c(torch.randn(1, 4, 32, 32, dtype=torch.complex64))
    mask = torch.rand(1, 32, 32) < 0.3
    masked = masked * mask[:, None]
    maps = torch.randn(1, 4, 32, 32, dtype=torch.complex64)
    expected = theirs(torch.view_as_real(masked), mask[:, None, :, :, None], torch.view_as_real(maps))
    torch.testing.assert_close(torch.view_as_real(ours(masked, mask, maps)), expected, atol=1e-4, rtol=1e-4)
