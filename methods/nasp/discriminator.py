"""AQ-VAE's perceptual and adversarial terms (eq. 3, supp. §9): frozen feature networks, projected
discriminator heads and the least-squares GAN losses.

Paper: LPIPS for the perceptual term, and projected heads on BiomedCLIP's ViT (blocks 2, 5, 8, 11) as
the discriminator. Neither LPIPS's ImageNet backbone nor BiomedCLIP can be downloaded here, so the
``stlpips_alex`` option uses the one perceptual network whose genuine weights install from PyPI,
shift-tolerant LPIPS (AlexNet), for both terms: its four deepest ReLU outputs feed the heads. The
substitution is recorded in every checkpoint and run (``feature_record``). The BiomedCLIP path loads
``open_clip`` weights from a local directory ($NASP_BIOMEDCLIP_DIR) and taps its ViT with hooks.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from benchmark.errors import BenchmarkError
from benchmark.metrics.perceptual import LPIPS, STLPIPS

BIOMEDCLIP_ENV = "NASP_BIOMEDCLIP_DIR"
BIOMEDCLIP_BLOCKS = (2, 5, 8, 11)
CLIP_MEAN, CLIP_STD = (0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711)


class AlexFeatures(nn.Module):
    """Frozen ST-LPIPS AlexNet: the four deepest ReLU maps of ``[0, 1]`` grey images, as tokens."""

    def __init__(self, lpips_model: nn.Module) -> None:
        super().__init__()
        self.lpips = lpips_model.eval().requires_grad_(False)
        self.channels = [192, 384, 256, 256]

    def forward(self, images_B3HW: torch.Tensor) -> list[torch.Tensor]:
        maps = self.lpips.net(self.lpips.scaling_layer(2 * images_B3HW - 1))[1:]
        return [m.flatten(2).transpose(1, 2) for m in maps]


class ViTFeatures(nn.Module):
    """Frozen ViT (BiomedCLIP's visual trunk in the paper): the tokens after the given blocks."""

    def __init__(self, vit: nn.Module, blocks: tuple[int, ...] = BIOMEDCLIP_BLOCKS) -> None:
        super().__init__()
        self.vit = vit.eval().requires_grad_(False)
        self.blocks = blocks
        self.channels = [vit.embed_dim] * len(blocks)
        self.register_buffer("mean", torch.tensor(CLIP_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(CLIP_STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, images_B3HW: torch.Tensor) -> list[torch.Tensor]:
        taps: list[torch.Tensor] = []
        hooks = [self.vit.blocks[i].register_forward_hook(lambda _m, _i, out: taps.append(out)) for i in self.blocks]
        try:
            self.vit.forward_features((images_B3HW - self.mean) / self.std)
        finally:
            for hook in hooks:
                hook.remove()
        return taps


def load_biomedclip_vit(directory: str | Path) -> nn.Module:
    """BiomedCLIP's timm ViT from a local ``open_clip`` directory (``open_clip_config.json`` + weights)."""
    try:
        import open_clip
    except ImportError:
        raise BenchmarkError("the BiomedCLIP discriminator needs `pip install .[biomedclip]` (open_clip)") from None
    directory = Path(directory)
    if not (directory / "open_clip_config.json").is_file():
        raise BenchmarkError(f"{directory} holds no open_clip_config.json (a local BiomedCLIP download)")
    model, _ = open_clip.create_model_from_pretrained(f"local-dir:{directory}")
    return model.visual.trunk


def feature_network_choice(kind: str) -> tuple[str | None, dict]:
    """Which discriminator feature network ``kind`` gets on this machine — the BiomedCLIP directory, or ``None``
    for ST-LPIPS's AlexNet — and the record of what it is (and what it replaces)."""
    if kind == "biomedclip":
        directory = os.environ.get(BIOMEDCLIP_ENV)
        if directory:
            return directory, {"discriminator": f"biomedclip:{directory}"}
        reason = f"BiomedCLIP not given (${BIOMEDCLIP_ENV} unset)"
    else:
        reason = "chosen by the profile"
    return None, {"discriminator": f"stlpips_alex ({reason}; the paper uses BiomedCLIP ViT blocks 2, 5, 8, 11)"}


def build_feature_network(kind: str) -> tuple[nn.Module, dict]:
    """The frozen network for the discriminator and the record of what it is (and what it replaces)."""
    directory, record = feature_network_choice(kind)
    if directory:
        return ViTFeatures(load_biomedclip_vit(directory)), record
    return AlexFeatures(STLPIPS().build()), record


def perceptual_choice(kind: str) -> tuple[LPIPS | None, dict]:
    """Which perceptual network ``kind`` gets on this machine — LPIPS (AlexNet, the paper's) when asked for and its
    ImageNet backbone is installed, else ``None`` for ST-LPIPS — and the record of what it is."""
    if kind == "lpips_alex":
        lpips = LPIPS("alex")
        if lpips.available:
            return lpips, {"perceptual": "lpips_alex"}
        reason = f"the paper's LPIPS is unavailable: {lpips.reason}"
    else:
        reason = "chosen by the profile; the paper uses LPIPS"
    return None, {"perceptual": f"stlpips_alex ({reason})"}


def build_perceptual(kind: str) -> tuple[nn.Module, dict]:
    """The perceptual network, called as ``net(x, y, normalize=True)`` on ``[0, 1]`` images (``perceptual_choice``)."""
    lpips, record = perceptual_choice(kind)
    network = lpips.build() if lpips else STLPIPS().build()
    return network.eval().requires_grad_(False), record


class ProjectedHeads(nn.Module):
    """One small MLP head per feature level on its tokens; the logit is the mean over tokens and levels."""

    def __init__(self, channels: list[int], hidden: int) -> None:
        super().__init__()
        self.heads = nn.ModuleList(
            nn.Sequential(nn.LayerNorm(c), nn.Linear(c, hidden), nn.LeakyReLU(0.2), nn.Linear(hidden, 1))
            for c in channels
        )

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        logits = [head(tokens_BNC).mean(dim=(1, 2)) for head, tokens_BNC in zip(self.heads, features, strict=True)]
        return torch.stack(logits).mean(dim=0)  # (B,)


def to_feature_input(magnitude_BHW: torch.Tensor, scale_B: torch.Tensor, size: int) -> torch.Tensor:
    """Magnitudes divided by the target's maximum (both images share it), resized, as 3 grey channels."""
    images = (magnitude_BHW / scale_B[:, None, None]).clamp(0, 1)[:, None]
    images = F.interpolate(images, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return images.expand(-1, 3, -1, -1)


def lsgan_generator_loss(fake_logits_B: torch.Tensor) -> torch.Tensor:
    """L_adv = MSE(D(φ(x̂)), 1)."""
    return F.mse_loss(fake_logits_B, torch.ones_like(fake_logits_B))


def lsgan_discriminator_loss(real_logits_B: torch.Tensor, fake_logits_B: torch.Tensor) -> torch.Tensor:
    """L_D = ½ [MSE(D(φ(x)), 1) + MSE(D(φ(x̂).detach()), 0)]."""
    real = F.mse_loss(real_logits_B, torch.ones_like(real_logits_B))
    return 0.5 * (real + F.mse_loss(fake_logits_B, torch.zeros_like(fake_logits_B)))
