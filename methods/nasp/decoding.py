"""Scale-by-scale NASP decoding (VAR's ``autoregressive_infer_cfg`` without guidance): the observed Q_32,
then every token of scales 1 … 5 in parallel per scale, with a self-attention KV cache and the
cross-attention keys/values computed once per image. Sampling draws from a seeded ``torch.Generator``,
never the global RNG: ``argmax`` (default), ``multinomial``, or ``top_k_top_p`` (VAR's filter: logits below
the k-th largest and outside the smallest set of cumulative probability ≥ p are dropped, the most likely
token always kept).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from methods.nasp.model import NASPModel

SAMPLING_MODES = ("argmax", "multinomial", "top_k_top_p")


@dataclass(frozen=True)
class Sampler:
    mode: str = "argmax"
    top_k: int = 0
    top_p: float = 0.0

    def __post_init__(self) -> None:
        if self.mode not in SAMPLING_MODES:
            raise ValueError(f"unknown sampling mode {self.mode!r}; known: {', '.join(SAMPLING_MODES)}")


def top_k_top_p_filter(logits_BlV: torch.Tensor, top_k: int, top_p: float) -> torch.Tensor:
    if top_k > 0:
        kth = logits_BlV.topk(min(top_k, logits_BlV.shape[-1]), dim=-1).values[..., -1:]
        logits_BlV = logits_BlV.masked_fill(logits_BlV < kth, -torch.inf)
    if top_p > 0:
        ascending, order = logits_BlV.sort(dim=-1)
        drop = ascending.softmax(dim=-1).cumsum(dim=-1) <= 1 - top_p
        drop[..., -1] = False
        logits_BlV = logits_BlV.masked_fill(drop.scatter(-1, order, drop), -torch.inf)
    return logits_BlV


def sample(logits_BlV: torch.Tensor, sampler: Sampler, generator: torch.Generator | None) -> torch.Tensor:
    if sampler.mode == "argmax":
        return logits_BlV.argmax(dim=-1)
    if sampler.mode == "top_k_top_p":
        logits_BlV = top_k_top_p_filter(logits_BlV, sampler.top_k, sampler.top_p)
    probabilities = logits_BlV.float().softmax(dim=-1)
    flat = torch.multinomial(probabilities.view(-1, probabilities.shape[-1]), 1, generator=generator)
    return flat.view(logits_BlV.shape[:-1])


@torch.no_grad()
def generate(
    model: NASPModel,
    image_B3HW: torch.Tensor,
    pattern_B: torch.Tensor,
    sampler: Sampler = Sampler(),
    generator: torch.Generator | None = None,
    use_cache: bool = True,
    privileged_B3HW: torch.Tensor | None = None,
    run: Callable | None = None,
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Token indices of every scale (Q_32 observed, the rest predicted) and each predicted scale's logits.
    ``privileged_B3HW``: the fully sampled image, for the privileged teacher only (validation).
    ``run``: the transformer's ``run`` to call (default: itself; a ``torch.compile`` of it for speed)."""
    transformer = model.transformer
    run = run or transformer.run
    indices = [model.tokens([image_B3HW], pattern_B)[0]]
    codes = model.codes(indices)
    cond_BD = transformer.class_emb(pattern_B)
    cross_kv = model.cross_keys_values(image_B3HW, pattern_B, privileged_B3HW)  # once per image
    all_logits = []
    transformer.set_caching(use_cache)
    try:
        if use_cache:  # fill the cache with the observed scale; its outputs predict nothing
            run(transformer.embed(model.scale_input(codes, 0), 0), cond_BD, None, cross_kv)
        for scale in range(1, len(transformer.grids)):
            begin, end = transformer.begin_ends[scale]
            if use_cache:
                x_BLC = transformer.embed(model.scale_input(codes, scale), begin)
                logits = run(x_BLC, cond_BD, None, cross_kv)
            else:
                inputs = torch.cat([model.scale_input(codes, s) for s in range(scale + 1)], dim=1)
                mask = transformer.causal_mask[:end, :end]
                logits = run(transformer.embed(inputs, 0), cond_BD, mask, cross_kv)[:, begin:end]
            all_logits.append(logits)
            indices.append(sample(logits, sampler, generator))
            codes.append(model.tokenizer.quantize.embed(indices[-1], scale))
    finally:
        transformer.set_caching(False)
    return indices, all_logits
