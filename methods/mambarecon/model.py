"""MambaRecon's unrolled network (Korkmaz et al.): patch embedding, cascades of SS2D blocks, hard data consistency.

image (2 channels) -> patch embedding (conv, LayerNorm) -> N cascades of [k x (x + SS2D(LN x))] each followed by
data consistency -> LayerNorm -> a last data consistency whose image is the output. Data consistency
unpatchifies the features to an image, expands it to coil k-space with the shared maps (``benchmark.physics``'s
operator), replaces the sampled locations by the measurement, combines the coils with the conjugate maps and,
between cascades, adds SiLU(image) re-embedded to the features. One deliberate difference from the released code:
the replaced samples are the measured k-space itself, where the original re-expands the coil-combined zero-filled
image (which equals the measurement only if the maps are exact).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

from benchmark.method import to_channels
from benchmark.physics.operators import MultiCoilOperator
from methods.mambarecon.config import MambaReconConfig
from methods.mambarecon.ss2d import SS2D


class PatchEmbed(nn.Module):
    """Complex image (B, H, W) as 2 channels -> (B, H/p, W/p, dim) tokens."""

    def __init__(self, dim: int, patch: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(2, dim, kernel_size=patch, stride=patch)
        self.norm = nn.LayerNorm(dim)

    def forward(self, channels_B2HW: torch.Tensor) -> torch.Tensor:
        return self.norm(self.proj(channels_B2HW).permute(0, 2, 3, 1))


class Unpatchify(nn.Module):
    """(B, H/p, W/p, dim) tokens -> complex image (B, H, W)."""

    def __init__(self, dim: int, patch: int) -> None:
        super().__init__()
        self.patch = patch
        self.proj = nn.Linear(dim, 2 * patch * patch, bias=False)

    def forward(self, tokens_BhwC: torch.Tensor) -> torch.Tensor:
        batch, rows, cols, _ = tokens_BhwC.shape
        p = self.patch
        pixels = self.proj(tokens_BhwC).view(batch, rows, cols, p, p, 2).permute(0, 1, 3, 2, 4, 5)
        return torch.view_as_complex(pixels.reshape(batch, rows * p, cols * p, 2).float().contiguous())


class DataConsistency(nn.Module):
    def __init__(self, dim: int, patch: int, reembed: bool) -> None:
        super().__init__()
        self.unpatchify = Unpatchify(dim, patch)
        self.embed = PatchEmbed(dim, patch) if reembed else None

    def forward(self, tokens, kspace, mask, maps):
        image = MultiCoilOperator(maps, mask).data_consistent(self.unpatchify(tokens), kspace)
        if self.embed is None:
            return image
        return tokens + self.embed(F.silu(to_channels(image)))


class SS2DBlock(nn.Module):
    def __init__(self, dim: int, d_state: int, expand: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.mixer = SS2D(dim, d_state=d_state, expand=expand)

    def forward(self, x_BHWC: torch.Tensor) -> torch.Tensor:
        return x_BHWC + self.mixer(self.norm(x_BHWC))


class MambaReconNet(nn.Module):
    def __init__(self, config: MambaReconConfig, gradient_checkpointing: bool = False) -> None:
        super().__init__()
        c = config
        self.embed = PatchEmbed(c.dim, c.patch)
        self.cascades = nn.ModuleList(
            nn.ModuleList(SS2DBlock(c.dim, c.d_state, c.expand) for _ in range(c.blocks_per_cascade))
            for _ in range(c.num_cascades)
        )
        self.consistency = nn.ModuleList(DataConsistency(c.dim, c.patch, reembed=True) for _ in range(c.num_cascades))
        self.final_norm = nn.LayerNorm(c.dim)
        self.output = DataConsistency(c.dim, c.patch, reembed=False)
        self.gradient_checkpointing = gradient_checkpointing

    def forward(self, zero_filled_BHW, kspace_BCHW, mask_BHW, maps_BCHW) -> torch.Tensor:
        tokens = self.embed(to_channels(zero_filled_BHW).float())
        recompute = self.gradient_checkpointing and self.training and torch.is_grad_enabled()
        for blocks, consistency in zip(self.cascades, self.consistency, strict=True):
            for block in blocks:
                tokens = checkpoint(block, tokens, use_reentrant=False) if recompute else block(tokens)
            tokens = consistency(tokens, kspace_BCHW, mask_BHW, maps_BCHW)
        return self.output(self.final_norm(tokens), kspace_BCHW, mask_BHW, maps_BCHW)
