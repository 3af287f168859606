"""Swin-Unet (Cao et al. 2022) for complex MR images: 2 channels (real, imaginary) in, 2 out.

patch embedding (conv p x p, LayerNorm) -> 4 encoder stages of Swin blocks (W-MSA / SW-MSA alternating), patch
merging between them -> decoder mirroring them with patch expanding, each stage concatenating the encoder's skip
and projecting back to its width -> 4x final patch expanding -> 1x1 conv. The output is added to the input image
(residual learning on the zero-filled image, as MRI Swin models do; the segmentation original predicts directly).
``timm`` provides the Swin blocks (with the shifted-window mask) and patch merging; written by hand here only the
patch-expanding layers, which ``timm`` lacks.
"""

from __future__ import annotations

import torch
import torch.nn as nn
from timm.models.swin_transformer import PatchMerging, SwinTransformerBlock

from benchmark.errors import InputError
from methods.swinunet.config import SwinUNetConfig


class PatchExpand(nn.Module):
    """(B, H, W, dim) -> (B, f H, f W, out_dim): a linear layer to f² x out_dim channels, pixel-shuffled, LayerNorm."""

    def __init__(self, dim: int, factor: int, out_dim: int) -> None:
        super().__init__()
        self.factor, self.out_dim = factor, out_dim
        self.proj = nn.Linear(dim, factor * factor * out_dim, bias=False)
        self.norm = nn.LayerNorm(out_dim)

    def forward(self, x_BHWC: torch.Tensor) -> torch.Tensor:
        batch, height, width, _ = x_BHWC.shape
        f = self.factor
        x = self.proj(x_BHWC).view(batch, height, width, f, f, self.out_dim).permute(0, 1, 3, 2, 4, 5)
        return self.norm(x.reshape(batch, height * f, width * f, self.out_dim))


def swin_stage(dim: int, resolution: int, depth: int, heads: int, window: int, mlp_ratio: float) -> nn.Sequential:
    """``depth`` Swin blocks at one resolution, every second one with windows shifted by half a window."""
    return nn.Sequential(
        *(
            SwinTransformerBlock(
                dim,
                input_resolution=(resolution, resolution),
                num_heads=heads,
                window_size=window,
                shift_size=0 if index % 2 == 0 else window // 2,
                mlp_ratio=mlp_ratio,
            )
            for index in range(depth)
        )
    )


class SwinUNetNet(nn.Module):
    def __init__(self, config: SwinUNetConfig) -> None:
        super().__init__()
        c = config
        image_size = self.image_size = c.image_size
        levels = len(c.depths)
        widths = [c.embed_dim * 2**i for i in range(levels)]
        sides = [image_size // c.patch // 2**i for i in range(levels)]
        stage = lambda i: swin_stage(widths[i], sides[i], c.depths[i], c.heads[i], c.window, c.mlp_ratio)  # noqa: E731
        self.patch_embed = nn.Conv2d(2, c.embed_dim, kernel_size=c.patch, stride=c.patch)
        self.embed_norm = nn.LayerNorm(c.embed_dim)
        self.encoder = nn.ModuleList(stage(i) for i in range(levels))
        self.merges = nn.ModuleList(PatchMerging(widths[i]) for i in range(levels - 1))
        self.bottleneck_norm = nn.LayerNorm(widths[-1])
        self.expands = nn.ModuleList(PatchExpand(widths[i + 1], 2, widths[i]) for i in range(levels - 1))
        self.skip_projections = nn.ModuleList(nn.Linear(2 * widths[i], widths[i]) for i in range(levels - 1))
        self.decoder = nn.ModuleList(stage(i) for i in range(levels - 1))
        self.decoder_norm = nn.LayerNorm(c.embed_dim)
        self.final_expand = PatchExpand(c.embed_dim, c.patch, c.embed_dim)
        self.head = nn.Conv2d(c.embed_dim, 2, kernel_size=1)

    def forward(self, image_B2HW: torch.Tensor) -> torch.Tensor:
        if image_B2HW.shape[-2:] != (self.image_size, self.image_size):
            # Window sizes and shifted-window masks are fixed at construction for one token grid.
            size = "x".join(map(str, image_B2HW.shape[-2:]))
            raise InputError(f"swinunet is built for {self.image_size}x{self.image_size} images, got {size}")
        x = self.embed_norm(self.patch_embed(image_B2HW).permute(0, 2, 3, 1))
        skips = []
        for index, blocks in enumerate(self.encoder):
            if index > 0:
                skips.append(x)
                x = self.merges[index - 1](x)
            x = blocks(x)
        x = self.bottleneck_norm(x)
        for index in reversed(range(len(self.decoder))):
            x = self.expands[index](x)
            x = self.skip_projections[index](torch.cat([x, skips[index]], dim=-1))
            x = self.decoder[index](x)
        x = self.final_expand(self.decoder_norm(x))
        return image_B2HW + self.head(x.permute(0, 3, 1, 2))
