"""VAR's VQ-VAE encoder and decoder (``FoundationVision/VAR``, ``models/basic_vae.py``), the encoder's
residual blocks FiLM-modulated by the acquisition label (paper supp. §9).

Written by hand because no library ships VAR's layout; module and parameter names follow VAR's so its
``vae_ch160v4096z32.pth`` loads key for key (``tokenizer.load_var_vqvae``). The one addition is
``ResnetBlock.film``: a bias-free linear map from the label embedding to a per-channel scale and
shift applied after the second normalisation, initialised to zero so an untrained conditioning path
leaves VAR's block unchanged (and a zero embedding always does).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def group_norm(channels: int) -> nn.GroupNorm:
    """VAR's GroupNorm (32 groups, eps 1e-6); narrower tiny widths use one group per channel."""
    return nn.GroupNorm(num_groups=min(32, channels), num_channels=channels, eps=1e-6, affine=True)


class ResnetBlock(nn.Module):
    """norm-SiLU-conv twice plus shortcut; with ``label_dim`` the second norm is FiLM-modulated."""

    def __init__(self, in_channels: int, out_channels: int, label_dim: int = 0) -> None:
        super().__init__()
        self.norm1 = group_norm(in_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.norm2 = group_norm(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        self.nin_shortcut = nn.Conv2d(in_channels, out_channels, 1) if in_channels != out_channels else nn.Identity()
        self.film = nn.Linear(label_dim, 2 * out_channels, bias=False) if label_dim else None
        if self.film is not None:
            nn.init.zeros_(self.film.weight)

    def forward(self, x_BCHW: torch.Tensor, label_BE: torch.Tensor | None = None) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x_BCHW)))
        h = self.norm2(h)
        if self.film is not None and label_BE is not None:
            scale_BC, shift_BC = self.film(label_BE).chunk(2, dim=1)
            h = h * (1 + scale_BC[:, :, None, None]) + shift_BC[:, :, None, None]
        return self.nin_shortcut(x_BCHW) + self.conv2(F.silu(h))


class AttnBlock(nn.Module):
    """Single-head spatial self-attention with a residual, VAR's ``AttnBlock``."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.norm = group_norm(channels)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.proj_out = nn.Conv2d(channels, channels, 1)

    def forward(self, x_BCHW: torch.Tensor) -> torch.Tensor:
        batch, channels, height, width = x_BCHW.shape
        q, k, v = self.qkv(self.norm(x_BCHW)).reshape(batch, 3, channels, height * width).unbind(1)
        h = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2))
        return x_BCHW + self.proj_out(h.transpose(1, 2).reshape(batch, channels, height, width))


class Downsample2x(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, stride=2)

    def forward(self, x_BCHW: torch.Tensor) -> torch.Tensor:
        return self.conv(F.pad(x_BCHW, (0, 1, 0, 1)))  # VAR pads right/bottom, then a stride-2 3x3 conv


class Upsample2x(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x_BCHW: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x_BCHW, scale_factor=2, mode="nearest"))


def _stage(blocks: list[nn.Module], attn: list[nn.Module]) -> nn.Module:
    stage = nn.Module()
    stage.block, stage.attn = nn.ModuleList(blocks), nn.ModuleList(attn)
    return stage


class Encoder(nn.Module):
    """VAR's encoder, FiLM-conditioned. ``forward`` returns the latent ``(B, z, H/16, W/16)`` and the
    features NASP's transformer cross-attends to: each stage's output before its downsampling, keyed by
    its side length, plus ``"mid"``, the coarsest map after the mid block (paper §4.2)."""

    def __init__(self, width: int, multipliers: tuple[int, ...], res_blocks: int, z_channels: int, label_dim: int):
        super().__init__()
        self.conv_in = nn.Conv2d(3, width, 3, padding=1)
        self.down = nn.ModuleList()
        channels = width
        for level, multiplier in enumerate(multipliers):
            out = width * multiplier
            blocks = [ResnetBlock(channels if i == 0 else out, out, label_dim) for i in range(res_blocks)]
            last = level == len(multipliers) - 1
            stage = _stage(blocks, [AttnBlock(out) for _ in range(res_blocks)] if last else [])
            if not last:
                stage.downsample = Downsample2x(out)
            self.down.append(stage)
            channels = out
        self.mid = nn.Module()
        self.mid.block_1 = ResnetBlock(channels, channels, label_dim)
        self.mid.attn_1 = AttnBlock(channels)
        self.mid.block_2 = ResnetBlock(channels, channels, label_dim)
        self.norm_out = group_norm(channels)
        self.conv_out = nn.Conv2d(channels, z_channels, 3, padding=1)

    def forward(self, x_B3HW: torch.Tensor, label_BE: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        h = self.conv_in(x_B3HW)
        features = {}
        for stage in self.down:
            for index, block in enumerate(stage.block):
                h = block(h, label_BE)
                if len(stage.attn):
                    h = stage.attn[index](h)
            features[str(h.shape[-1])] = h
            if hasattr(stage, "downsample"):
                h = stage.downsample(h)
        h = self.mid.block_2(self.mid.attn_1(self.mid.block_1(h, label_BE)), label_BE)
        features["mid"] = h
        return self.conv_out(F.silu(self.norm_out(h))), features


class Decoder(nn.Module):
    """VAR's decoder (unconditioned): latent ``(B, z, h, w)`` -> 3-channel image ``(B, 3, 16h, 16w)``."""

    def __init__(self, width: int, multipliers: tuple[int, ...], res_blocks: int, z_channels: int) -> None:
        super().__init__()
        channels = width * multipliers[-1]
        self.conv_in = nn.Conv2d(z_channels, channels, 3, padding=1)
        self.mid = nn.Module()
        self.mid.block_1 = ResnetBlock(channels, channels)
        self.mid.attn_1 = AttnBlock(channels)
        self.mid.block_2 = ResnetBlock(channels, channels)
        stages = []
        for level in reversed(range(len(multipliers))):
            out = width * multipliers[level]
            blocks = [ResnetBlock(channels if i == 0 else out, out) for i in range(res_blocks + 1)]
            coarsest = level == len(multipliers) - 1
            stage = _stage(blocks, [AttnBlock(out) for _ in range(res_blocks + 1)] if coarsest else [])
            if level != 0:
                stage.upsample = Upsample2x(out)
            stages.insert(0, stage)
            channels = out
        self.up = nn.ModuleList(stages)
        self.norm_out = group_norm(channels)
        self.conv_out = nn.Conv2d(channels, 3, 3, padding=1)

    def forward(self, z_BChw: torch.Tensor) -> torch.Tensor:
        h = self.mid.block_2(self.mid.attn_1(self.mid.block_1(self.conv_in(z_BChw))))
        for stage in reversed(self.up):
            for index, block in enumerate(stage.block):
                h = block(h)
                if len(stage.attn):
                    h = stage.attn[index](h)
            if hasattr(stage, "upsample"):
                h = stage.upsample(h)
        return self.conv_out(F.silu(self.norm_out(h)))
