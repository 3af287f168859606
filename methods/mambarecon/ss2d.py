"""SS2D: VMamba's 2-D selective-scan layer (as MambaRecon uses it), on channels-last feature maps.

in-projection to x and a gate z (each ``expand`` x dim) -> depthwise 3x3 conv, SiLU -> the 4-direction cross scan
(row-major, column-major and both reversed), one selective scan per direction with its own Δ/B/C projections,
A and D -> merged back to the grid -> LayerNorm, gated by SiLU(z) -> out-projection. Written by hand because no
maintained package ships SS2D without ``mamba_ssm``'s CUDA build; the initialisation follows Mamba (A_n = n,
Δ log-uniform in [1e-3, 1e-1] through the inverse softplus of its bias, D = 1). The scan itself is
``methods.mambarecon.selective_scan`` (CUDA kernel or pure PyTorch).
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from methods.mambarecon.selective_scan import selective_scan

DIRECTIONS = 4


def cross_scan(x_BDHW: torch.Tensor) -> torch.Tensor:
    """(B, D, H, W) -> (B, 4, D, H*W): row-major, column-major, row-major reversed, column-major reversed."""
    rows = x_BDHW.flatten(2)
    columns = x_BDHW.transpose(-1, -2).flatten(2)
    forward = torch.stack([rows, columns], dim=1)
    return torch.cat([forward, forward.flip(-1)], dim=1)


def cross_merge(y_B4DL: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Inverse of ``cross_scan`` summed over the 4 directions: (B, 4, D, H*W) -> (B, D, H*W) in row-major order."""
    y = y_B4DL[:, :2] + y_B4DL[:, 2:].flip(-1)
    batch, _, channels, _ = y.shape
    columns_as_rows = y[:, 1].view(batch, channels, width, height).transpose(-1, -2).flatten(2)
    return y[:, 0] + columns_as_rows


class SS2D(nn.Module):
    def __init__(self, dim: int, d_state: int = 16, expand: int = 2, conv_kernel: int = 3) -> None:
        super().__init__()
        inner = expand * dim
        self.inner, self.d_state = inner, d_state
        self.dt_rank = math.ceil(dim / 16)
        self.in_proj = nn.Linear(dim, 2 * inner, bias=False)
        self.conv = nn.Conv2d(inner, inner, conv_kernel, padding=conv_kernel // 2, groups=inner)
        self.x_proj_weight = nn.Parameter(torch.randn(DIRECTIONS, self.dt_rank + 2 * d_state, inner) / math.sqrt(inner))
        dt_std = self.dt_rank**-0.5
        self.dt_proj_weight = nn.Parameter(torch.empty(DIRECTIONS, inner, self.dt_rank).uniform_(-dt_std, dt_std))
        dt = torch.exp(torch.rand(DIRECTIONS, inner) * (math.log(1e-1) - math.log(1e-3)) + math.log(1e-3))
        self.dt_proj_bias = nn.Parameter(dt + torch.log(-torch.expm1(-dt)))  # softplus(bias) == dt
        states = torch.arange(1, d_state + 1, dtype=torch.float32).repeat(DIRECTIONS * inner, 1)
        self.A_log = nn.Parameter(torch.log(states))
        self.D = nn.Parameter(torch.ones(DIRECTIONS * inner))
        self.out_norm = nn.LayerNorm(inner)
        self.out_proj = nn.Linear(inner, dim, bias=False)

    def forward(self, x_BHWC: torch.Tensor) -> torch.Tensor:
        batch, height, width, _ = x_BHWC.shape
        x, gate = self.in_proj(x_BHWC).chunk(2, dim=-1)
        x = F.silu(self.conv(x.permute(0, 3, 1, 2)))
        sequences = cross_scan(x)  # (B, 4, inner, L)
        projected = torch.einsum("bkdl,kcd->bkcl", sequences, self.x_proj_weight)
        dt_low, B, C = projected.split([self.dt_rank, self.d_state, self.d_state], dim=2)
        delta = torch.einsum("bkrl,kdr->bkdl", dt_low, self.dt_proj_weight)
        length = height * width
        y = selective_scan(
            sequences.reshape(batch, -1, length),
            delta.reshape(batch, -1, length),
            -torch.exp(self.A_log.float()),
            B.contiguous(),
            C.contiguous(),
            self.D,
            delta_bias=self.dt_proj_bias.flatten(),
            delta_softplus=True,
        )
        y = cross_merge(y.view(batch, DIRECTIONS, self.inner, length), height, width)
        y = y.transpose(1, 2).reshape(batch, height, width, self.inner)
        return self.out_proj(self.out_norm(y) * F.silu(gate))
