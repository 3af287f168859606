"""NASP's cross-attentive next-acceleration-scale transformer (paper §4, §4.2, Fig. 3, eq. 2).

VAR's AdaLN blocks (``FoundationVision/VAR``, ``models/basic_var.py``: 6-way modulation from the
condition, no-affine LayerNorm, q/k L2-normalised with a learned per-head scale, q and v biases,
tanh-GELU FFN, VAR's initialisation) with a cross-attention step in front of each, as the paper author's
RemoteVAR places it: ``x += DropPath(XAttn(LN(x), ctx + pos))``. Written by hand because no library
ships VAR's block; names follow VAR's.

Self-attention keeps a KV cache for scale-by-scale decoding; cross-attention keys and values depend only
on the image's context, so ``CrossAttention.keys_values`` computes them once per image and every scale
reuses them.

The privileged teacher of part 3 (paper §4.3) adds, per block, a second cross-attention to the
encoder's features of the fully sampled image, after the first and of the same form; its output
projection starts at zero, so a teacher initialised from the base model first predicts exactly as it.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from timm.layers import DropPath
from torch import nn

MAX_LOG_SCALE = math.log(100.0)


def sincos_2d(side: int, channels: int) -> torch.Tensor:
    """Fixed 2-D sin-cos position table ``(side², channels)`` (half the channels per axis)."""
    quarter = channels // 4
    frequencies = 1.0 / 10000 ** (torch.arange(quarter, dtype=torch.float64) / quarter)
    rows, cols = torch.meshgrid(
        torch.arange(side, dtype=torch.float64), torch.arange(side, dtype=torch.float64), indexing="ij"
    )
    parts = []
    for axis in (rows, cols):
        angles = axis.reshape(-1, 1) * frequencies
        parts += [angles.sin(), angles.cos()]
    table = torch.cat(parts, dim=1)
    return F.pad(table, (0, channels - table.shape[1])).float()


class _L2Attention(nn.Module):
    """Shared parts of VAR's attention: q/k L2-normalised, learned per-head scale (init log 4, clamp log 100)."""

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.heads, self.head_dim = heads, width // heads
        self.scale_mul_1H11 = nn.Parameter(torch.full((1, heads, 1, 1), 4.0).log())
        self.proj = nn.Linear(width, width)
        self.fused = True  # the ``sdpa`` speed switch (``NextScaleTransformer.set_fused_attention``)

    def split(self, x_BLC: torch.Tensor) -> torch.Tensor:
        batch, length, _ = x_BLC.shape
        return x_BLC.view(batch, length, self.heads, self.head_dim).transpose(1, 2)

    def attend(self, q_BHLc, k_BHLc, v_BHLc, mask=None) -> torch.Tensor:
        q_BHLc = F.normalize(q_BHLc, dim=-1) * self.scale_mul_1H11.clamp_max(MAX_LOG_SCALE).exp()
        k_BHLc = F.normalize(k_BHLc, dim=-1)
        if self.fused:  # the device's fused kernel (flash / memory-efficient on a GPU where eligible)
            out = F.scaled_dot_product_attention(q_BHLc, k_BHLc, v_BHLc, attn_mask=mask, scale=1.0)
        else:  # the textbook softmax(q kᵀ + mask) v, materialising the attention matrix
            scores = q_BHLc @ k_BHLc.transpose(-2, -1)
            out = (scores if mask is None else scores + mask).softmax(dim=-1) @ v_BHLc
        batch, _, length, _ = out.shape
        return self.proj(out.transpose(1, 2).reshape(batch, length, -1))


class SelfAttention(_L2Attention):
    def __init__(self, width: int, heads: int) -> None:
        super().__init__(width, heads)
        self.mat_qkv = nn.Linear(width, 3 * width, bias=False)
        self.q_bias, self.v_bias = nn.Parameter(torch.zeros(width)), nn.Parameter(torch.zeros(width))
        self.register_buffer("zero_k_bias", torch.zeros(width), persistent=False)
        self.cache: tuple[torch.Tensor, torch.Tensor] | None = None
        self.caching = False

    def forward(self, x_BLC: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        qkv = F.linear(x_BLC, self.mat_qkv.weight, torch.cat([self.q_bias, self.zero_k_bias, self.v_bias]))
        q, k, v = (self.split(part) for part in qkv.chunk(3, dim=-1))
        if self.caching:
            if self.cache is not None:
                k, v = torch.cat([self.cache[0], k], dim=2), torch.cat([self.cache[1], v], dim=2)
            self.cache = (k, v)
        return self.attend(q, k, v, mask)


class CrossAttention(_L2Attention):
    """Queries from the tokens, keys and values from one context map (RemoteVAR's ``CrossAttention``)."""

    def __init__(self, width: int, heads: int, context_channels: int) -> None:
        super().__init__(width, heads)
        self.mat_q = nn.Linear(width, width, bias=False)
        self.q_bias = nn.Parameter(torch.zeros(width))
        self.mat_kv = nn.Linear(context_channels, 2 * width, bias=False)
        self.v_bias = nn.Parameter(torch.zeros(width))
        self.register_buffer("zero_k_bias", torch.zeros(width), persistent=False)

    def keys_values(self, context_BNC: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        k, v = F.linear(context_BNC, self.mat_kv.weight, torch.cat([self.zero_k_bias, self.v_bias])).chunk(2, dim=-1)
        return self.split(k), self.split(v)

    def forward(self, x_BLC: torch.Tensor, keys_values: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        return self.attend(self.split(self.mat_q(x_BLC) + self.q_bias), *keys_values)


class Block(nn.Module):
    """Cross-attention (optional), privileged cross-attention (teacher only), then VAR's AdaLN
    self-attention and FFN."""

    def __init__(
        self, width: int, heads: int, mlp_ratio: float, drop_path: float, context_channels: int | None,
        privileged_channels: int | None = None,
    ) -> None:  # fmt: skip
        super().__init__()
        self.width = width
        self.ln_wo_grad = nn.LayerNorm(width, eps=1e-6, elementwise_affine=False)
        self.cross = CrossAttention(width, heads, context_channels) if context_channels else None
        self.privileged = CrossAttention(width, heads, privileged_channels) if privileged_channels else None
        self.attn = SelfAttention(width, heads)
        hidden = round(width * mlp_ratio)
        self.ffn = nn.Sequential(nn.Linear(width, hidden), nn.GELU(approximate="tanh"), nn.Linear(hidden, width))
        self.ada_lin = nn.Sequential(nn.SiLU(), nn.Linear(width, 6 * width))
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def forward(self, x_BLC, cond_BD, mask, cross_kv) -> torch.Tensor:
        """``cross_kv``: keys/values of the R = 32 context and of the privileged context (or ``None``)."""
        for attention, keys_values in zip((self.cross, self.privileged), cross_kv, strict=True):
            if attention is not None:
                x_BLC = x_BLC + self.drop_path(attention(self.ln_wo_grad(x_BLC), keys_values))
        gamma1, gamma2, scale1, scale2, shift1, shift2 = self.ada_lin(cond_BD).view(-1, 1, 6, self.width).unbind(2)
        h = self.attn(self.ln_wo_grad(x_BLC) * (1 + scale1) + shift1, mask)
        x_BLC = x_BLC + self.drop_path(h * gamma1)
        return x_BLC + self.drop_path(self.ffn(self.ln_wo_grad(x_BLC) * (1 + scale2) + shift2) * gamma2)


class NextScaleTransformer(nn.Module):
    """Logits of every scale's tokens from the teacher-forcing inputs of all scales (eq. 2).

    ``grids`` are the token grids (scale 0 is the observed Q_32); ``context_channels[i]`` is the channel
    count of block ``i``'s cross-attention context (``None``: no cross-attention in that block), and
    ``privileged_channels[i]`` that of its privileged context (the teacher's; ``None`` by default).
    """

    def __init__(
        self, grids: tuple[int, ...], z_channels: int, vocab: int, num_patterns: int, depth: int, width: int,
        heads: int, mlp_ratio: float, drop_path: float, context_channels: list[int | None],
        privileged_channels: list[int | None] | None = None,
    ) -> None:  # fmt: skip
        super().__init__()
        self.grids, self.width = grids, width
        lengths = [g * g for g in grids]
        self.begin_ends = [(sum(lengths[:s]), sum(lengths[: s + 1])) for s in range(len(grids))]
        scale_of_position = torch.cat([torch.full((n,), s) for s, n in enumerate(lengths)])
        self.register_buffer("scale_of_position", scale_of_position, persistent=False)
        # Block-causal: a token attends to every token of its own and earlier scales (0 or -inf).
        visible = scale_of_position[:, None] >= scale_of_position[None, :]
        self.register_buffer(
            "causal_mask", torch.zeros(visible.shape).masked_fill(~visible, -math.inf), persistent=False
        )
        std = math.sqrt(1 / width / 3)
        self.word_embed = nn.Linear(z_channels, width)
        self.class_emb = nn.Embedding(num_patterns, width)
        self.lvl_embed = nn.Embedding(len(grids), width)
        self.pos_1LC = nn.Parameter(torch.empty(1, sum(lengths), width))
        rates = torch.linspace(0, drop_path, depth).tolist()
        privileged_channels = privileged_channels or [None] * depth
        self.blocks = nn.ModuleList(
            Block(width, heads, mlp_ratio, rate, channels, privileged)
            for rate, channels, privileged in zip(rates, context_channels, privileged_channels, strict=True)
        )
        self.head_nm_ln = nn.LayerNorm(width, eps=1e-6, elementwise_affine=False)
        self.head_nm_ada = nn.Sequential(nn.SiLU(), nn.Linear(width, 2 * width))
        self.head = nn.Linear(width, vocab)
        self._init_weights(std)

    def _init_weights(self, std: float) -> None:
        """VAR's ``init_weights`` (init_std 0.02, head x0.02, AdaLN x0.5, gates x1e-5, out-projections / √(2·depth))."""
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.trunc_normal_(module.weight, std=0.02)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Embedding):
                nn.init.trunc_normal_(module.weight, std=std)
        nn.init.trunc_normal_(self.pos_1LC, std=std)
        self.head.weight.data.mul_(0.02)
        self.head_nm_ada[-1].weight.data.mul_(0.5)
        depth = len(self.blocks)
        for block in self.blocks:
            block.attn.proj.weight.data.div_(math.sqrt(2 * depth))
            block.ffn[-1].weight.data.div_(math.sqrt(2 * depth))
            block.ada_lin[-1].weight.data[2 * self.width :].mul_(0.5)
            block.ada_lin[-1].weight.data[: 2 * self.width].mul_(1e-5)
            if block.privileged is not None:  # the teacher starts as the model it is initialised from
                nn.init.zeros_(block.privileged.proj.weight), nn.init.zeros_(block.privileged.proj.bias)

    def embed(self, inputs_BLz: torch.Tensor, start: int) -> torch.Tensor:
        """Word + level + position embedding of inputs occupying positions ``start:start+L``."""
        positions = slice(start, start + inputs_BLz.shape[1])
        level = self.lvl_embed(self.scale_of_position[positions])
        return self.word_embed(inputs_BLz) + level + self.pos_1LC[:, positions]

    def cross_keys_values(self, contexts: list, privileged: list | None = None) -> list:
        """Each block's cross-attention keys/values, from its context ``(B, N, C_ctx)`` and its privileged
        context (teacher only), once per image: ``[(context kv | None, privileged kv | None)] * depth``."""
        privileged = privileged or [None] * len(self.blocks)
        return [
            tuple(
                attention.keys_values(context) if attention is not None else None
                for attention, context in ((block.cross, own), (block.privileged, extra))
            )
            for block, own, extra in zip(self.blocks, contexts, privileged, strict=True)
        ]

    def run(self, x_BLC: torch.Tensor, cond_BD: torch.Tensor, mask, cross_kv: list) -> torch.Tensor:
        for block, keys_values in zip(self.blocks, cross_kv, strict=True):
            x_BLC = block(x_BLC, cond_BD, mask, keys_values)
        scale, shift = self.head_nm_ada(cond_BD).view(-1, 1, 2, self.width).unbind(2)
        return self.head(self.head_nm_ln(x_BLC) * (1 + scale) + shift).float()

    def forward(self, inputs_BLz: torch.Tensor, pattern_B: torch.Tensor, cross_kv: list) -> torch.Tensor:
        """Teacher forcing: logits ``(B, L, V)`` for all positions under the block-causal mask."""
        return self.run(self.embed(inputs_BLz, 0), self.class_emb(pattern_B), self.causal_mask, cross_kv)

    def set_fused_attention(self, enabled: bool) -> None:
        """The transformer's attention (self, cross, privileged) through ``scaled_dot_product_attention`` (True)
        or the explicit formula (False); the tokenizer's and context encoder's attention is not affected."""
        for module in self.modules():
            if isinstance(module, _L2Attention):
                module.fused = enabled

    def set_caching(self, enabled: bool) -> None:
        for block in self.blocks:
            block.attn.caching, block.attn.cache = enabled, None
