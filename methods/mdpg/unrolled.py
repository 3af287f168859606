"""MDPG's stage II: per cascade a VMamba U-Net fusing the decoded prior, then hard multi-coil data consistency.

The U-Net's blocks are MambaRecon's SS2D blocks (the shared selective scan); its patch embedding, unpatchify and
data consistency are MambaRecon's too. Written here: the U-Net around them (strided-conv downsampling, transposed-
conv upsampling, skip concatenation) and the prior fusion of the last encoder stages: the prior image is embedded
and downsampled alongside, and each fused stage adds ``sigmoid(W_g p) * W_v [x, p]`` to its features.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from benchmark.method import to_channels
from benchmark.physics import MultiCoilOperator
from methods.mambarecon.model import PatchEmbed, SS2DBlock, Unpatchify
from methods.mdpg.config import UnrolledConfig


class Resample(nn.Module):
    """Channels-last ×2 down (strided conv) or up (transposed conv) with a width change, then LayerNorm."""

    def __init__(self, width_in: int, width_out: int, up: bool) -> None:
        super().__init__()
        layer = nn.ConvTranspose2d if up else nn.Conv2d
        self.conv = layer(width_in, width_out, kernel_size=2, stride=2)
        self.norm = nn.LayerNorm(width_out)

    def forward(self, x_BHWC: torch.Tensor) -> torch.Tensor:
        return self.norm(self.conv(x_BHWC.permute(0, 3, 1, 2)).permute(0, 2, 3, 1))


class GatedFusion(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.value = nn.Linear(2 * width, width)
        self.gate = nn.Linear(width, width)

    def forward(self, x_BHWC: torch.Tensor, prior_BHWC: torch.Tensor) -> torch.Tensor:
        return x_BHWC + torch.sigmoid(self.gate(prior_BHWC)) * self.value(torch.cat([x_BHWC, prior_BHWC], dim=-1))


class VMambaUNet(nn.Module):
    """Complex image and prior channels -> the image plus a learned residual."""

    def __init__(self, config: UnrolledConfig) -> None:
        super().__init__()
        c, widths = config, config.widths
        levels = len(widths)
        block = lambda width: SS2DBlock(width, c.d_state, c.expand)  # noqa: E731
        self.embed, self.prior_embed = PatchEmbed(widths[0], c.patch), PatchEmbed(widths[0], c.patch)
        self.encoder = nn.ModuleList(block(w) for w in widths)
        self.downs = nn.ModuleList(Resample(widths[i], widths[i + 1], up=False) for i in range(levels - 1))
        self.prior_downs = nn.ModuleList(Resample(widths[i], widths[i + 1], up=False) for i in range(levels - 1))
        self.fused = list(range(levels - c.fused_stages, levels))
        self.fusions = nn.ModuleList(GatedFusion(widths[i]) for i in self.fused)
        self.ups = nn.ModuleList(Resample(widths[i + 1], widths[i], up=True) for i in range(levels - 1))
        self.skips = nn.ModuleList(nn.Linear(2 * widths[i], widths[i]) for i in range(levels - 1))
        self.decoder = nn.ModuleList(block(widths[i]) for i in range(levels - 1))
        self.head = Unpatchify(widths[0], c.patch)

    def forward(self, image_BHW: torch.Tensor, prior_B2HW: torch.Tensor) -> torch.Tensor:
        x, prior = self.embed(to_channels(image_BHW).float()), self.prior_embed(prior_B2HW.float())
        skips = []
        for index, block in enumerate(self.encoder):
            if index > 0:
                x, prior = self.downs[index - 1](x), self.prior_downs[index - 1](prior)
            if index in self.fused:
                x = self.fusions[self.fused.index(index)](x, prior)
            x = block(x)
            skips.append(x)
        for index in reversed(range(len(self.decoder))):
            x = self.skips[index](torch.cat([self.ups[index](x), skips[index]], dim=-1))
            x = self.decoder[index](x)
        return image_BHW + self.head(x)


class UnrolledNet(nn.Module):
    def __init__(self, config: UnrolledConfig) -> None:
        super().__init__()
        self.cascades = nn.ModuleList(VMambaUNet(config) for _ in range(config.cascades))

    def forward(self, zero_filled_BHW, kspace_BCHW, mask_BHW, maps_BCHW, prior_B2HW) -> torch.Tensor:
        operator, image = MultiCoilOperator(maps_BCHW, mask_BHW), zero_filled_BHW
        for cascade in self.cascades:
            image = operator.data_consistent(cascade(image, prior_B2HW), kspace_BCHW)
        return image
