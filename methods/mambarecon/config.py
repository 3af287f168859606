"""MambaRecon sizes and training per profile.

Paper profile: the released model (width 128, patch 2, 6 cascades of 2 SS2D blocks, d_state 16, expand 2).
Tiny profile (CPU): width 32, patch 4 (64² tokens instead of 128²: the scan's cost and memory grow with the token
count), 2 cascades of 2 blocks, d_state 4 — the same mechanisms at a size that trains on 2 cores. The width must
stay at least 2·patch² = 32: the unpatchify layer maps a token's features linearly to its patch's 32 real values,
so a narrower token cannot express an arbitrary patch (width 16 trained to val SSIM 0.365, no better than zero
filling).
Training: the policy every library baseline here shares (L1 + L2 on the magnitude, AdamW, warm-up then cosine),
not MambaRecon's own recipe (L1 on the magnitude, lr 1e-3, cosine to 1e-6), so the comparison differs in the
architecture only.
"""

from dataclasses import dataclass

from benchmark.recipes import TINY_PROTOCOL, TrainConfig


@dataclass(frozen=True)
class MambaReconConfig:
    dim: int = 128
    patch: int = 2
    num_cascades: int = 6
    blocks_per_cascade: int = 2
    d_state: int = 16
    expand: int = 2


CONFIGS = {
    "tiny": MambaReconConfig(dim=32, patch=4, num_cascades=2, d_state=4),
    "paper": MambaReconConfig(),
}
#: Training memory, not architecture (so not in the checkpointed config): recompute each SS2D block in the
#: backward pass instead of keeping its scan intermediates; without mamba_ssm's fused kernel the paper size
#: would hold ~100 GB of them at batch 4 (all 12 blocks).
GRADIENT_CHECKPOINTING = {"tiny": False, "paper": True}
TRAIN = {
    "tiny": TINY_PROTOCOL.recipe(2, lr=2e-3, warmup_steps=20),
    "paper": TrainConfig(steps=100_000, batch_size=4, lr=1e-3, warmup_steps=1_000, val_every=5_000, ema_decay=0.999),
}
