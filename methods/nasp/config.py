"""NASP configs per stage and profile (paper §4.1, supp. §9); the tiny profile keeps every mechanism at
widths that train on two CPU cores."""

from __future__ import annotations

from dataclasses import dataclass

from benchmark.masks import PATTERN_NAMES
from benchmark.recipes import TINY_PROTOCOL, OptimizerConfig, TrainConfig


@dataclass(frozen=True)
class TokenizerConfig:
    """AQ-VAE (paper: VAR's ``vae_ch160v4096z32`` layout with FiLM, 4096 x 32 codebook, grids 11..16)."""

    width: int = 160
    multipliers: tuple[int, ...] = (1, 1, 2, 2, 4)
    res_blocks: int = 2
    z_channels: int = 32
    codebook_size: int = 4096
    grids: tuple[int, ...] = (11, 12, 13, 14, 15, 16)  # tokens per side for R = 32, 16, 8, 4, 2, FS
    phi_ratio: float = 0.5
    phi_count: int = 4
    ema_decay: float = 0.99
    kmeans_iters: int = 10
    label_dim: int = 128
    patterns: tuple[str, ...] = PATTERN_NAMES
    # Loss weights of eq. 3.
    ssim_weight: float = 1.0
    perceptual_weight: float = 0.1
    adversarial_weight: float = 0.1
    commitment_weight: float = 0.25
    #: Perceptual network: "lpips_alex" (the paper's, when its backbone is installed) or "stlpips_alex".
    perceptual: str = "lpips_alex"
    #: Frozen network for the discriminator: "biomedclip" (needs $NASP_BIOMEDCLIP_DIR) or "stlpips_alex".
    discriminator_features: str = "biomedclip"
    #: Side the magnitude is resized to for the perceptual and discriminator networks.
    feature_size: int = 224
    discriminator_hidden: int = 256


TOKENIZER_CONFIGS = {
    "tiny": TokenizerConfig(
        width=16, codebook_size=512, z_channels=16, label_dim=32, kmeans_iters=5,
        perceptual="stlpips_alex", discriminator_features="stlpips_alex", feature_size=128, discriminator_hidden=64,
    ),
    "paper": TokenizerConfig(),
}  # fmt: skip

#: Supp. §9: AdamW 1e-4 / wd 1e-4 for both networks, clip 5.0 (generator) and 1.0 (discriminator), 10
#: warm-up epochs then cosine to 1e-6, best by validation SSIM; batch 16 for 100 epochs (paper profile:
#: steps = 100 epochs of a fastMRI-sized train split, set on the command line with --steps). Tiny: batches
#: of 2, lr 1e-3, and the capacity-checked stage's longer budget, 7,560 slices (70 passes, ~1.65 h on 2 cores
#: at the plan's 0.77 s per slice): the capacity table (``results/nasp/capacity``) shows every size still
#: rising at the protocol's 2,160, and width 32 costs twice per slice without gaining at that budget.
TOKENIZER_TRAIN = {
    "tiny": TINY_PROTOCOL.recipe(
        2, capacity_slices=7560, lr=1e-3, weight_decay=1e-4, warmup_steps=90, grad_clip=5.0, min_lr_ratio=0.01,
        optimizers=(("discriminator", OptimizerConfig(lr=1e-3, grad_clip=1.0)),),
    ),
    "paper": TrainConfig(
        steps=100_000, batch_size=16, lr=1e-4, weight_decay=1e-4, warmup_steps=10_000, grad_clip=5.0,
        min_lr_ratio=0.01, val_every=1_000, bf16=False,
        optimizers=(("discriminator", OptimizerConfig(lr=1e-4, grad_clip=1.0)),),
    ),
}  # fmt: skip


@dataclass(frozen=True)
class TransformerConfig:
    """Next-acceleration-scale transformer (paper §4.2: VAR depth 16, width 1024, 16 heads)."""

    depth: int = 16
    width: int = 1024
    heads: int = 16
    mlp_ratio: float = 4.0
    drop_path: float = 0.025
    cross_attention: bool = True  # False: ``nasp-nocross``
    trainable_encoder: bool = True  # False: ``nasp-frozenenc``


TRANSFORMER_CONFIGS = {
    "tiny": TransformerConfig(depth=4, width=64, heads=4, drop_path=0.0),
    "paper": TransformerConfig(),
}

#: VAR's exemptions from weight decay (``train.py``, ``nowd_keys``), besides 1-D parameters and biases.
VAR_NO_DECAY = (
    "cls_token", "start_token", "task_token", "cfg_uncond", "pos_embed", "pos_1LC", "pos_start", "start_pos",
    "lvl_embed", "gamma", "beta", "ada_gss", "moe_bias", "scale_mul",
)  # fmt: skip

#: VAR's recipe with the paper's lr: AdamW β = (0.9, 0.95), wd 0.05 with VAR's exemptions, clip 2, warm-up
#: then linear decay.
TRANSFORMER_TRAIN = {
    "tiny": TINY_PROTOCOL.recipe(
        4, lr=1e-3, betas=(0.9, 0.95), weight_decay=0.05, no_decay_keys=VAR_NO_DECAY, warmup_steps=30,
        schedule="linear", grad_clip=2.0,
    ),
    "paper": TrainConfig(
        steps=100_000, batch_size=16, lr=3.125e-5, betas=(0.9, 0.95), weight_decay=0.05, no_decay_keys=VAR_NO_DECAY,
        warmup_steps=2_000, schedule="linear", grad_clip=2.0, val_every=2_000,
    ),
}  # fmt: skip
