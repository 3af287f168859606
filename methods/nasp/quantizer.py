"""AQ-VAE's shared codebook, per-level token grids, the scale-indexed residual transform Φ and the
additive fusion of paper §4.1 / supp. §9.

The codebook is ``vector_quantize_pytorch.VectorQuantize``: nearest-neighbour ℓ2 search, EMA updates
(no codebook loss), the rotation trick instead of the straight-through estimator, no dead-code
re-initialisation, k-means initialisation on the first training batch (the codebook starts afresh), and
statistics all-reduced under DDP. Every argument that matters is set explicitly because the library's
defaults have changed between versions. All levels' tokens go through **one** call per step, so the
codebook receives exactly one EMA update per step.

Written here: the grids, Φ and the fusion, which are NASP's own (VAR's ``PhiPartiallyShared`` picks the
convolution by relative scale position; the same rule gives ``[0, 0, 1, 2, 3, 3]`` for six levels).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from vector_quantize_pytorch import VectorQuantize


def phi_indices(levels: int, count: int) -> list[int]:
    """Which of ``count`` shared Φ convolutions serves each of ``levels`` scales (VAR's tick rule)."""
    ticks = np.linspace(1 / (3 * count), 1 - 1 / (3 * count), count)
    return [int(np.argmin(np.abs(ticks - s / (levels - 1)))) for s in range(levels)]


class Phi(nn.Conv2d):
    """Φ(h) = (1 − r)·h + r·Conv3×3(h), VAR's ``Phi`` with residual ratio r."""

    def __init__(self, channels: int, ratio: float) -> None:
        super().__init__(channels, channels, 3, padding=1)
        self.ratio = ratio

    def forward(self, h_BChw: torch.Tensor) -> torch.Tensor:
        return h_BChw * (1 - self.ratio) + super().forward(h_BChw) * self.ratio


class PhiPartiallyShared(nn.Module):
    def __init__(self, channels: int, ratio: float, count: int, levels: int) -> None:
        super().__init__()
        self.qresi_ls = nn.ModuleList(Phi(channels, ratio) for _ in range(count))
        self.index = phi_indices(levels, count)

    def forward(self, h_BChw: torch.Tensor, level: int) -> torch.Tensor:
        return self.qresi_ls[self.index[level]](h_BChw)


@dataclass
class Quantized:
    """Quantiser output for the active levels (in the order given)."""

    fused: torch.Tensor  # (B, z, n, n): mean over active levels of Φ(bicubic(Q_k)), n = the finest grid
    indices: list[torch.Tensor]  # per level (B, g_k²) token indices, row-major
    latents: list[torch.Tensor]  # per level (B, z, g_k, g_k): area-resized encoder latent Z_k
    codes: list[torch.Tensor]  # per level (B, z, g_k, g_k): rotation-trick output (forward value = code)

    def commitment(self) -> torch.Tensor:
        """Mean over levels of MSE(Z_k, sg[Q_k]) (supp. §9; the 0.25 weight is applied by the loss)."""
        terms = [F.mse_loss(z, q.detach()) for z, q in zip(self.latents, self.codes, strict=True)]
        return torch.stack(terms).mean()


class AdditiveQuantizer(nn.Module):
    """Latents of the active levels -> tokens on each level's grid -> one fused latent."""

    def __init__(
        self, z_channels: int, codebook_size: int, grids: tuple[int, ...], phi_ratio: float, phi_count: int,
        ema_decay: float, kmeans_iters: int, distributed: bool,
    ) -> None:  # fmt: skip
        super().__init__()
        self.grids = grids
        self.codebook = VectorQuantize(
            dim=z_channels,
            codebook_size=codebook_size,
            codebook_dim=None,
            heads=1,
            decay=ema_decay,
            ema_update=True,
            learnable_codebook=False,
            rotation_trick=True,
            straight_through=False,
            threshold_ema_dead_code=0,
            kmeans_init=True,
            kmeans_iters=kmeans_iters,
            use_cosine_sim=False,
            commitment_weight=0.0,  # the commitment term is averaged per level by ``Quantized.commitment``
            orthogonal_reg_weight=0.0,
            stochastic_sample_codes=False,
            sync_codebook=distributed,
            sync_kmeans=True,
            channel_last=True,
            accept_image_fmap=False,
        )
        self.quant_resi = PhiPartiallyShared(z_channels, phi_ratio, phi_count, len(grids))

    def forward(self, latents_BCHW: list[torch.Tensor], levels: list[int]) -> Quantized:
        """``latents_BCHW[i]`` is level ``levels[i]``'s encoder latent at the finest grid size."""
        resized = [
            F.interpolate(z, size=(self.grids[k],) * 2, mode="area") for z, k in zip(latents_BCHW, levels, strict=True)
        ]
        tokens_BNC = torch.cat([z.flatten(2).transpose(1, 2) for z in resized], dim=1)
        quantized_BNC, indices_BN, _ = self.codebook(tokens_BNC)
        sizes = [z.shape[-1] ** 2 for z in resized]
        codes = [
            q.transpose(1, 2).reshape(z.shape) for q, z in zip(quantized_BNC.split(sizes, dim=1), resized, strict=True)
        ]
        fused = self.fuse(codes, levels)
        return Quantized(fused, list(indices_BN.split(sizes, dim=1)), resized, codes)

    def fuse(self, codes_BChw: list[torch.Tensor], levels: list[int]) -> torch.Tensor:
        """Bicubic to the finest grid, Φ of each level, summed and divided by the number of levels."""
        side = self.grids[-1]
        parts = [
            self.quant_resi(F.interpolate(q, size=(side, side), mode="bicubic") if q.shape[-1] != side else q, k)
            for q, k in zip(codes_BChw, levels, strict=True)
        ]
        return torch.stack(parts).mean(dim=0)

    def embed(self, indices_BN: torch.Tensor, level: int) -> torch.Tensor:
        """Token indices of one level -> code map ``(B, z, g, g)``."""
        side = self.grids[level]
        codes_BNC = self.codebook.get_codes_from_indices(indices_BN)
        return codes_BNC.transpose(1, 2).reshape(indices_BN.shape[0], -1, side, side)
