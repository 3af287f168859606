"""NASP's size: ``python -m methods.nasp.size [--profile paper|tiny]``.

Parameter counts (tokenizer, transformer with its context encoder) and floating-point operations for one image
— the R = 32 encoding, scale-by-scale decoding with or without the KV cache, and the tokenizer's decoder —
counted by ``torch.utils.flop_counter.FlopCounterMode`` on random weights (a count, not a timing: weights do not
change it). A multiply-add counts as 2 operations, as the counter does.
"""

from __future__ import annotations

import argparse

import torch

from benchmark.perf import count_flops, parameter_count
from methods.nasp.config import TOKENIZER_CONFIGS, TRANSFORMER_CONFIGS
from methods.nasp.decoding import generate
from methods.nasp.model import NASPModel
from methods.nasp.tokenizer import AQVAE, randomise_codebook


def nasp_size(profile: str) -> dict[str, float]:
    torch.manual_seed(0)
    tokenizer = randomise_codebook(AQVAE(TOKENIZER_CONFIGS[profile]))
    model = NASPModel(tokenizer, TRANSFORMER_CONFIGS[profile]).eval()
    image, pattern = torch.randn(1, 3, 256, 256), torch.tensor([0])
    transformer_parameters = parameter_count(model) - parameter_count(tokenizer)
    result = {"tokenizer_parameters": parameter_count(tokenizer), "transformer_parameters": transformer_parameters}
    for cached in (True, False):
        decode = lambda: model.decode(generate(model, image, pattern, use_cache=cached)[0])  # noqa: B023, E731
        result[f"flops_per_image_{'kv_cache' if cached else 'no_cache'}"] = count_flops(decode)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="paper", choices=sorted(TRANSFORMER_CONFIGS))
    for key, value in nasp_size(parser.parse_args().profile).items():
        scaled = f"{value / 1e6:10.3f} M" if key.endswith("parameters") else f"{value / 1e9:10.2f} GFLOP"
        print(f"{key:32s} {scaled}")


if __name__ == "__main__":
    main()
