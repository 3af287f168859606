"""Swin-Unet: the shifted-window mask, the hand-written patch expanding, shapes, size checks and overfitting."""

from dataclasses import replace

import einops
import pytest
import torch

from benchmark.errors import InputError
from benchmark.registry import get_method_class
from methods.swinunet.config import CONFIGS
from methods.swinunet.model import PatchExpand, SwinUNetNet, swin_stage
from tests.test_training import CPU, assert_overfits_one_batch, small_batch


def test_shifted_windows_do_not_attend_across_the_wrapped_boundary():
    # After the cyclic shift by half a window, the bottom-right window holds tokens from the four image corners.
    # The attention mask keeps the corners apart: perturbing token (0, 0) moves its own corner's tokens and
    # leaves the opposite corner (H-1, W-1), which shares the window but not the region, untouched.
    torch.manual_seed(0)
    shifted = swin_stage(dim=8, resolution=16, depth=2, heads=2, window=8, mlp_ratio=2.0)[1].eval()
    assert shifted.shift_size == (4, 4)
    x = torch.randn(1, 16, 16, 8)
    bumped = x.clone()
    bumped[0, 0, 0] += 5.0 * torch.randn(8)  # not a constant: LayerNorm would remove that
    with torch.no_grad():
        change = (shifted(bumped) - shifted(x)).abs().sum(-1)[0]
    assert change[0, 1] > 1e-3 and change[1, 0] > 1e-3  # same region: attention reaches them
    assert change[15, 15] == 0 and change[0, 15] == 0 and change[15, 0] == 0  # other regions of that window
    assert change[8, 8] == 0  # another window altogether


def test_patch_expand_is_swin_unets_pixel_rearrangement():
    expand = PatchExpand(dim=12, factor=2, out_dim=6)
    x = torch.randn(2, 3, 5, 12)
    projected = expand.proj(x)
    reference = einops.rearrange(projected, "b h w (p1 p2 c) -> b (h p1) (w p2) c", p1=2, p2=2, c=6)
    torch.testing.assert_close(expand(x), expand.norm(reference))
    assert expand(x).shape == (2, 6, 10, 6)


def small_swinunet():
    method = get_method_class("swinunet")("tiny", CPU, for_training=True)
    method.model = SwinUNetNet(replace(CONFIGS["tiny"], image_size=64))  # the test batches are 64 x 64
    return method


def test_reconstruct_shapes_and_a_clear_error_for_another_size(small_embedded):
    torch.manual_seed(0)
    method = small_swinunet()
    batch, target = small_batch(small_embedded)
    with torch.no_grad():
        output = method.reconstruct(batch)
    assert output.shape == target.shape and output.dtype == torch.complex64
    assert torch.isfinite(output).all()
    with pytest.raises(InputError, match="built for 256x256 images, got 64x64"):
        get_method_class("swinunet")("tiny", CPU, for_training=True).reconstruct(batch)


def test_overfitting_one_batch_cuts_the_loss_tenfold(small_embedded):
    torch.manual_seed(0)
    assert_overfits_one_batch(small_swinunet(), small_embedded)
