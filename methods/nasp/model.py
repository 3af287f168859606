"""The NASP network: a frozen AQ-VAE tokenizer (targets, the observed Q_32, decoding), a context encoder
initialised from the tokenizer's encoder and trained jointly (or frozen: ``nasp-frozenenc``), and the
next-acceleration-scale transformer cross-attending to the context encoder's features of the R = 32 input.

Sequence (paper §4, eq. 2): scale 0 holds Q_32 (observed, never predicted); scale s ≥ 1 is predicted at
positions whose input is the tokenizer's fused latent of scales < s (part 1's fusion: Φ of each level's
codes, averaged) area-resized to grid s. Context per block (paper §4.2): the depth is split into four
equal groups fed, coarse to fine, the 16² map after the mid block, the 16² map before it, 32² and 64².

With ``privileged=True`` the model is part 3's privileged teacher: every block also cross-attends to the
same encoder's features of the fully sampled image (its FS label), at the resolution of its own context.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from methods.nasp.config import TransformerConfig
from methods.nasp.levels import LEVELS, label_index
from methods.nasp.tokenizer import AQVAE
from methods.nasp.transformer import NextScaleTransformer, sincos_2d

#: Context levels, coarse to fine: the encoder feature keys (``blocks.Encoder``) at 256² input.
CONTEXT_LEVELS = ("mid", "16", "32", "64")


def context_assignment(depth: int) -> list[str]:
    """Which context each block receives: ``depth / 4`` consecutive blocks per level, coarse first."""
    per_level = max(1, depth // len(CONTEXT_LEVELS))
    return [CONTEXT_LEVELS[min(i // per_level, len(CONTEXT_LEVELS) - 1)] for i in range(depth)]


def context_channels(tokenizer: AQVAE) -> dict[str, int]:
    """Channel count of each context level for this tokenizer's widths."""
    c = tokenizer.config
    widths = {str(256 >> i): c.width * m for i, m in enumerate(c.multipliers)}
    return {"mid": c.width * c.multipliers[-1], "16": widths["16"], "32": widths["32"], "64": widths["64"]}


class NASPModel(nn.Module):
    def __init__(self, tokenizer: AQVAE, config: TransformerConfig, privileged: bool = False) -> None:
        super().__init__()
        self.config, self.privileged = config, privileged
        self.tokenizer = tokenizer.eval().requires_grad_(False)
        # Without cross-attention (``nasp-nocross``) only the teacher reads a context; the student has no
        # context encoder at all, so none is counted, kept in its checkpoint or left without a gradient.
        self.has_context = config.cross_attention or privileged
        self.context_encoder = copy.deepcopy(tokenizer.encoder) if self.has_context else None
        self.context_labels = copy.deepcopy(tokenizer.label_embedding) if self.has_context else None
        if self.has_context:
            self.context_encoder.requires_grad_(config.trainable_encoder)
            self.context_labels.requires_grad_(config.trainable_encoder)
        self.assignment = context_assignment(config.depth)
        channels = context_channels(tokenizer)
        tc = tokenizer.config
        self.transformer = NextScaleTransformer(
            tc.grids, tc.z_channels, tc.codebook_size, len(tc.patterns), config.depth, config.width, config.heads,
            config.mlp_ratio, config.drop_path,
            [channels[level] if config.cross_attention else None for level in self.assignment],
            [channels[level] for level in self.assignment] if privileged else None,
        )  # fmt: skip

    def train(self, mode: bool = True) -> NASPModel:
        super().train(mode)
        self.tokenizer.eval()  # frozen: no codebook EMA updates, no dropout, whatever the mode
        if self.has_context and not self.config.trainable_encoder:
            self.context_encoder.eval(), self.context_labels.eval()
        return self

    @torch.no_grad()
    def tokens(self, images_B3HW: list[torch.Tensor], pattern_B: torch.Tensor) -> list[torch.Tensor]:
        """Token indices of each given level (all six for training, ``[R = 32]`` at inference)."""
        return self.tokenizer.quantize_levels(images_B3HW, list(range(len(images_B3HW))), pattern_B).indices

    def contexts(
        self, image_B3HW: torch.Tensor, pattern_B: torch.Tensor, input_level: int = 0
    ) -> list[torch.Tensor | None]:
        """Each block's context tokens ``(B, N, C)`` (+ 2-D sin-cos position) from the input of acquisition
        level ``input_level`` (0: the R = 32 input; the last level: the teacher's fully sampled image)."""
        if not self.config.cross_attention and input_level == 0:
            return [None] * len(self.assignment)
        labels = self.context_labels(label_index(input_level, pattern_B, len(self.tokenizer.config.patterns)))
        _, features = self.context_encoder(image_B3HW, labels)
        tokens = {}
        for level in set(self.assignment):
            feature = features[level]
            table = sincos_2d(feature.shape[-1], feature.shape[1]).to(feature)
            tokens[level] = feature.flatten(2).transpose(1, 2) + table
        return [tokens[level] for level in self.assignment]

    def cross_keys_values(
        self, image_B3HW: torch.Tensor, pattern_B: torch.Tensor, privileged_B3HW: torch.Tensor | None = None
    ) -> list:
        """Every block's cross-attention keys/values for one image, computed once and reused at every scale.
        The teacher (``privileged``) needs the fully sampled image ``privileged_B3HW``; the student never gets it."""
        if self.privileged != (privileged_B3HW is not None):
            raise ValueError("the privileged teacher, and only it, takes the fully sampled image")
        privileged = self.contexts(privileged_B3HW, pattern_B, len(LEVELS) - 1) if self.privileged else None
        return self.transformer.cross_keys_values(self.contexts(image_B3HW, pattern_B), privileged)

    def scale_input(self, codes: list[torch.Tensor], scale: int) -> torch.Tensor:
        """Input ``(B, g_s², z)`` of scale ``s``: fused codes of scales < s (scale 0: Q_32 itself) on grid s."""
        quantizer = self.tokenizer.quantize
        known = codes[: max(1, scale)]
        fused = quantizer.fuse(known, list(range(len(known))))
        side = quantizer.grids[scale]
        return F.interpolate(fused, size=(side, side), mode="area").flatten(2).transpose(1, 2)

    def codes(self, indices: list[torch.Tensor]) -> list[torch.Tensor]:
        return [self.tokenizer.quantize.embed(idx, level) for level, idx in enumerate(indices)]

    def forward(
        self,
        image_B3HW: torch.Tensor,
        indices: list[torch.Tensor],
        pattern_B: torch.Tensor,
        privileged_B3HW: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Teacher forcing: logits ``(B, L, V)`` of all positions from the given tokens of every scale."""
        codes = self.codes(indices)
        inputs = torch.cat([self.scale_input(codes, s) for s in range(len(indices))], dim=1)
        return self.transformer(inputs, pattern_B, self.cross_keys_values(image_B3HW, pattern_B, privileged_B3HW))

    def decode(self, indices: list[torch.Tensor]) -> torch.Tensor:
        """Image ``(B, 3, H, W)`` from all levels' tokens: fused as in part 1 and decoded."""
        codes = self.codes(indices)
        return self.tokenizer.decode(self.tokenizer.quantize.fuse(codes, list(range(len(codes)))))
