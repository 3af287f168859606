"""NASP as registered methods and Table 4's ablations, all variants of the same code.

``nasp`` (the paper's "Proposed") is the distilled student of part 3 with argmax decoding; ``nasp-base``
is the model before distillation: it decodes with argmax from the transformer stage's checkpoint;
``nasp-base-multinomial``, ``nasp-base-topkp`` (paper: k = 900, p = 0.96) and ``nasp-base-dc`` (data
consistency on the output) share that checkpoint **and its weights in memory**: loading several in one
run keeps one model per (checkpoint, device). The component ablations train their own stages:
``nasp-nocross`` (no cross-attention), ``nasp-frozenenc`` (context encoder frozen) and ``nasp-flat`` (its
own tokenizer with 16 x 16 tokens at every level, and a transformer on it).
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

import torch

from benchmark.io import sha256_file
from benchmark.method import TrainingStage
from methods.nasp.adapter import NASPDecoder, TokenizerStage, TransformerStage
from methods.nasp.config import TOKENIZER_CONFIGS, TRANSFORMER_CONFIGS
from methods.nasp.decoding import Sampler
from methods.nasp.distill import DistillStage

_SHARED_MODELS: weakref.WeakValueDictionary = weakref.WeakValueDictionary()


class _Registered(NASPDecoder):
    """A registered NASP method: runs the checkpoint of stage ``source`` and shares its loaded weights."""

    source: type[TransformerStage] = TransformerStage
    trained_as = "nasp"

    def __init__(
        self, profile: str, device: torch.device, checkpoint: Path | None = None, for_training: bool = False,
        parents: Mapping[str, TrainingStage] | None = None,
    ) -> None:  # fmt: skip
        super().__init__(profile, device, checkpoint, for_training, parents)
        if not for_training:
            key = (sha256_file(self.checkpoint), str(device))
            self.model = _SHARED_MODELS.setdefault(key, self.model)

    @classmethod
    def shipped_checkpoint(cls, profile: str) -> Path:
        return cls.source.shipped_checkpoint(profile)

    @classmethod
    def training_source(cls) -> tuple[str, str]:
        return cls.source.training_source()

    def describe(self) -> dict:
        decoding = {"sampling": self.sampler.mode, "top_k": self.sampler.top_k, "top_p": self.sampler.top_p}
        return super().describe() | {"decoding": decoding | {"data_consistency": self.data_consistency}}


class NASP(_Registered):
    name, source = "nasp", DistillStage


class NASPBase(_Registered):
    name = "nasp-base"


class NASPBaseMultinomial(_Registered):
    name = "nasp-base-multinomial"
    sampler = Sampler("multinomial")


class NASPBaseTopKP(_Registered):
    name = "nasp-base-topkp"
    sampler = Sampler("top_k_top_p", top_k=900, top_p=0.96)


class NASPBaseDC(_Registered):
    name = "nasp-base-dc"
    data_consistency = True


class NoCrossStage(TransformerStage):
    stage = "transformer-nocross"
    configs = {p: replace(c, cross_attention=False) for p, c in TRANSFORMER_CONFIGS.items()}


class FrozenEncoderStage(TransformerStage):
    stage = "transformer-frozenenc"
    configs = {p: replace(c, trainable_encoder=False) for p, c in TRANSFORMER_CONFIGS.items()}


class FlatTokenizerStage(TokenizerStage):
    stage = "tokenizer-flat"
    configs = {p: replace(c, grids=(16,) * 6) for p, c in TOKENIZER_CONFIGS.items()}


class FlatStage(TransformerStage):
    stage = "transformer-flat"
    tokenizer_stage = FlatTokenizerStage
    parent_stages = {"tokenizer": FlatTokenizerStage}


class NASPNoCross(_Registered):
    name, source = "nasp-nocross", NoCrossStage
    configs = NoCrossStage.configs


class NASPFrozenEncoder(_Registered):
    name, source = "nasp-frozenenc", FrozenEncoderStage
    configs = FrozenEncoderStage.configs


class NASPFlat(_Registered):
    name, source = "nasp-flat", FlatStage
    tokenizer_stage = FlatTokenizerStage
