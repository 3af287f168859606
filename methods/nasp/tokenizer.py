"""AQ-VAE (paper §4.1, Fig. 2, supp. §9): a FiLM-conditioned VAR encoder shared by all six acquisition
levels, one EMA codebook, per-level token grids, Φ and additive fusion, and VAR's decoder.

``AQVAE.forward`` encodes any subset of levels in one encoder pass, quantises them in one codebook
call and decodes their fused latent; ``encode`` exposes the encoder's multi-resolution features for
the transformer (part 2). ``load_var_vqvae`` initialises from VAR's ``vae_ch160v4096z32.pth``.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from benchmark.errors import BenchmarkError
from methods.nasp.blocks import Decoder, Encoder
from methods.nasp.config import TokenizerConfig
from methods.nasp.levels import LEVELS, label_index
from methods.nasp.quantizer import AdditiveQuantizer, Quantized


class AQVAE(nn.Module):
    def __init__(self, config: TokenizerConfig, distributed: bool = False) -> None:
        super().__init__()
        c = config
        self.config = config
        self.label_embedding = nn.Embedding((len(LEVELS) - 1) * len(c.patterns) + 1, c.label_dim)
        self.encoder = Encoder(c.width, c.multipliers, c.res_blocks, c.z_channels, c.label_dim)
        self.quant_conv = nn.Conv2d(c.z_channels, c.z_channels, 3, padding=1)
        self.quantize = AdditiveQuantizer(
            c.z_channels, c.codebook_size, c.grids, c.phi_ratio, c.phi_count, c.ema_decay, c.kmeans_iters, distributed
        )
        self.post_quant_conv = nn.Conv2d(c.z_channels, c.z_channels, 3, padding=1)
        self.decoder = Decoder(c.width, c.multipliers, c.res_blocks, c.z_channels)

    def encode(
        self, images_B3HW: torch.Tensor, level: int, pattern_BL: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """One level's continuous latent ``(B, z, 16, 16)`` (after ``quant_conv``) and encoder features."""
        label = self.label_embedding(label_index(level, pattern_BL, len(self.config.patterns)))
        latent, features = self.encoder(images_B3HW, label)
        return self.quant_conv(latent), features

    def forward(
        self, images_B3HW: list[torch.Tensor], levels: list[int], pattern_BL: torch.Tensor
    ) -> tuple[torch.Tensor, Quantized]:
        """Decoded image ``(B, 3, H, W)`` of the fused active ``levels`` (indices into ``LEVELS``)."""
        quantized = self.quantize_levels(images_B3HW, levels, pattern_BL)
        return self.decode(quantized.fused), quantized

    def quantize_levels(
        self, images_B3HW: list[torch.Tensor], levels: list[int], pattern_BL: torch.Tensor
    ) -> Quantized:
        """Tokens of the given levels: one encoder pass and one codebook call for all of them."""
        batch = images_B3HW[0].shape[0]
        labels = torch.cat([label_index(k, pattern_BL, len(self.config.patterns)) for k in levels])
        latent, _ = self.encoder(torch.cat(images_B3HW), self.label_embedding(labels))
        return self.quantize(list(self.quant_conv(latent).split(batch)), levels)

    def decode(self, fused_BChw: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.post_quant_conv(fused_BChw))


def randomise_codebook(model: AQVAE) -> AQVAE:
    """Random (unit normal) codes marked initialised: a tokenizer for counting and timing, not for use."""
    model.quantize.codebook._codebook.embed.normal_()
    model.quantize.codebook._codebook.initted.fill_(True)
    return model


def load_var_vqvae(model: AQVAE, path: str | Path) -> dict:
    """Initialise encoder, decoder, quant convs and Φ from VAR's VQ-VAE checkpoint (paper supp. §9).

    The codebook is not taken (the paper re-initialises it); FiLM and label weights are new. Any other
    key that is missing, unexpected or of another shape is an error. Returns what was loaded.
    """
    path = Path(path)
    if not path.is_file():
        raise BenchmarkError(
            f"VAR VQ-VAE checkpoint {path} not found (vae_ch160v4096z32.pth from FoundationVision/VAR)"
        )
    state = torch.load(path, map_location="cpu", weights_only=True)
    state = {k: v for k, v in state.items() if not k.startswith(("quantize.embedding", "quantize.ema_vocab"))}
    own = model.state_dict()
    shape_errors = [k for k, v in state.items() if k in own and own[k].shape != v.shape]
    unexpected = [k for k in state if k not in own]
    new = ("label_embedding.", "quantize.codebook.")
    missing = [k for k in own if k not in state and not k.startswith(new) and ".film." not in k]
    if shape_errors or unexpected or missing:
        raise BenchmarkError(
            f"{path} does not fit this AQ-VAE config (shape: {shape_errors[:3]}, unexpected: {unexpected[:3]}, "
            f"missing: {missing[:3]}); the paper profile matches vae_ch160v4096z32"
        )
    model.load_state_dict(state, strict=False)
    return {"path": str(path), "keys": len(state)}
