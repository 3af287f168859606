"""NASP's tokenizer and transformer stages, and the decoder the registered methods run. Part 1: the AQ-VAE
tokenizer stage (``python -m benchmark train nasp --stage tokenizer``).

Training (eq. 3, supp. §9): all six level images of a slice (R = 32 … 2 from the nested masks of the
batch's pattern, and FS) are encoded, quantised, fused and decoded; the generator loss is
1.0·(1 − SSIM) on the magnitude + 0.1·perceptual + 0.1·LSGAN + 0.25·commitment, then the projected
discriminator takes its LSGAN step on the detached reconstruction. Validation (best checkpoint) scores
the all-levels reconstruction. ``reconstruct`` is the R = 32-only decoding: the tokens of the measured
input alone, fused and decoded — what the tokenizer gives without the transformer.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict
from pathlib import Path
from typing import ClassVar

import torch
import torch.distributed as dist
import torch.nn.functional as F
from fastmri.losses import SSIMLoss

from benchmark.io import sha256_file
from benchmark.method import LearnedMethod, ReconBatch, TrainingStage, TrainingTarget
from methods.nasp.config import TOKENIZER_CONFIGS, TOKENIZER_TRAIN, TRANSFORMER_CONFIGS, TRANSFORMER_TRAIN
from methods.nasp.decoding import Sampler, generate
from methods.nasp.discriminator import (
    ProjectedHeads,
    build_feature_network,
    build_perceptual,
    feature_network_choice,
    lsgan_discriminator_loss,
    lsgan_generator_loss,
    perceptual_choice,
    to_feature_input,
)
from methods.nasp.levels import LEVELS, from_channels, level_images, to_channels
from methods.nasp.model import NASPModel
from methods.nasp.tokenizer import AQVAE, load_var_vqvae, randomise_codebook

#: Optional initialisation from VAR's ``vae_ch160v4096z32.pth`` (paper supp. §9); unset = from scratch.
VAR_VQVAE_ENV = "NASP_VAR_VQVAE"


class TokenizerStage(LearnedMethod):
    name = "nasp"
    stage = "tokenizer"
    configs = TOKENIZER_CONFIGS
    train_configs = TOKENIZER_TRAIN
    needs_hierarchy = True
    capacity_checked = True  # validation decodes all six true levels: the oracle

    def __init__(
        self, profile: str, device: torch.device, checkpoint: Path | None = None, for_training: bool = False,
        parents: Mapping[str, TrainingStage] | None = None,
    ) -> None:  # fmt: skip
        super().__init__(profile, device, checkpoint, for_training, parents)
        if for_training:
            self._build_training_networks()

    @classmethod
    def substitutions(cls, profile: str) -> list[str]:
        c = cls.configs[profile]
        records = feature_network_choice(c.discriminator_features)[1] | perceptual_choice(c.perceptual)[1]
        lines = [f"{role}: {text}" for role, text in records.items() if text.startswith("stlpips_alex")]
        if profile == "paper" and not os.environ.get(VAR_VQVAE_ENV):
            lines.append(f"initialisation: from scratch (${VAR_VQVAE_ENV} unset; the paper starts from VAR's "
                         "vae_ch160v4096z32.pth)")  # fmt: skip
        return lines

    def build_model(self) -> AQVAE:
        model = AQVAE(self.config, distributed=dist.is_available() and dist.is_initialized())
        var_path = os.environ.get(VAR_VQVAE_ENV)
        #: VAR's weights it was initialised from (training only: a checkpoint overrides them), or ``None``.
        self.var_vqvae: dict | None = None
        if var_path and self.for_training:
            self.var_vqvae = {**load_var_vqvae(model, var_path), "sha256": sha256_file(var_path)}
        return model

    def _build_training_networks(self) -> None:
        c = self.config
        self.features, feature_record = build_feature_network(c.discriminator_features)
        self.perceptual, perceptual_record = build_perceptual(c.perceptual)
        self.features.to(self.device), self.perceptual.to(self.device)
        self.substitution_record = feature_record | perceptual_record
        self.discriminator = ProjectedHeads(self.features.channels, c.discriminator_hidden).to(self.device)
        self.ssim_loss = SSIMLoss().to(self.device)

    def provenance(self) -> dict:
        return {"var_vqvae": self.var_vqvae, "substitutions": getattr(self, "substitution_record", None)}

    def training_modules(self) -> dict[str, torch.nn.Module]:
        return {"model": self.model, "discriminator": self.discriminator}

    def train_mode(self, training: bool) -> None:
        self.model.train(training)
        if hasattr(self, "discriminator"):
            self.discriminator.train(training)

    def _pattern_index(self, batch: ReconBatch) -> torch.Tensor:
        index = self.config.patterns.index(batch.pattern)
        return torch.full((batch.kspace.shape[0],), index, dtype=torch.long, device=batch.kspace.device)

    def all_levels(self, batch: ReconBatch, target: TrainingTarget):
        """Decoded complex image of all six fused levels and the quantiser output (the oracle)."""
        images = [to_channels(image) for image in level_images(target.kspace, batch.maps, target.hierarchy)]
        decoded, quantized = self.model(images, list(range(len(LEVELS))), self._pattern_index(batch))
        return from_channels(decoded), quantized

    def reconstruct(self, batch: ReconBatch) -> torch.Tensor:
        """R = 32 only: the measured input's 11 x 11 tokens, through Φ and the decoder."""
        zero_filled = to_channels(batch.operator().adjoint(batch.kspace))
        decoded, _ = self.model([zero_filled], [0], self._pattern_index(batch))
        return from_channels(decoded)

    def validation_image(self, batch: ReconBatch, target: TrainingTarget) -> torch.Tensor:
        return self.all_levels(batch, target)[0]

    def training_losses(self, batch: ReconBatch, target: TrainingTarget) -> Iterator[tuple[str, torch.Tensor]]:
        c = self.config
        recon, quantized = self.all_levels(batch, target)
        magnitude, reference = recon.abs(), target.magnitude
        peak = reference.amax(dim=(-2, -1))
        ssim = self.ssim_loss(magnitude[:, None], reference[:, None], data_range=peak)
        fake = to_feature_input(magnitude, peak, c.feature_size)
        real = to_feature_input(reference, peak, c.feature_size)
        perceptual = self.perceptual(fake, real, normalize=True).mean()
        adversarial = lsgan_generator_loss(self.discriminator(self.features(fake)))
        yield (
            "model",
            (
                c.ssim_weight * ssim
                + c.perceptual_weight * perceptual
                + c.adversarial_weight * adversarial
                + c.commitment_weight * quantized.commitment()
            ),
        )
        # Real and fake through the discriminator in one forward pass (one DDP reduction per backward).
        real_logits, fake_logits = self.discriminator(self.features(torch.cat([real, fake.detach()]))).chunk(2)
        yield "discriminator", lsgan_discriminator_loss(real_logits, fake_logits)


class NASPTransformerRecipe(TrainingStage):
    """What every NASP transformer-sized stage shares: the model (the shipped tokenizer, frozen, with its
    encoder as context and the transformer), its configs and its inputs from a batch. The privileged teacher is
    only this (it needs the fully sampled image, so it cannot reconstruct); ``NASPDecoder`` adds decoding."""

    name = "nasp"
    configs = TRANSFORMER_CONFIGS
    needs_hierarchy = True
    #: The stage whose config the tokenizer has.
    tokenizer_stage: ClassVar[type[TokenizerStage]] = TokenizerStage

    def tokenizer_config(self):
        return self.tokenizer_stage.configs[self.profile]

    def config_record(self) -> dict:
        return {"transformer": asdict(self.config), "tokenizer": asdict(self.tokenizer_config())}

    def build_model(self) -> NASPModel:
        tokenizer = AQVAE(self.tokenizer_config())
        if "tokenizer" in self.parents:  # a trained checkpoint carries its tokenizer's weights itself
            tokenizer.load_state_dict(self.parents["tokenizer"].model.state_dict())
        elif self.for_training:  # timing weights: random throughout, no tokenizer checkpoint needed
            randomise_codebook(tokenizer)
        return NASPModel(tokenizer, self.config)

    def _inputs(self, batch: ReconBatch) -> tuple[torch.Tensor, torch.Tensor]:
        index = self.tokenizer_config().patterns.index(batch.pattern)
        pattern = torch.full((batch.kspace.shape[0],), index, dtype=torch.long, device=batch.kspace.device)
        return to_channels(batch.operator().adjoint(batch.kspace)), pattern


class NASPDecoder(NASPTransformerRecipe, LearnedMethod):
    """NASP at inference: one checkpoint's tokenizer and transformer decode scale by scale from the R = 32 input
    alone (``decoding.generate``). The transformer stages train it; the registered methods run it."""

    sampler = Sampler("argmax")
    #: Put the measured samples back into the output, on the measured low-resolution phase (``describe`` says so).
    data_consistency = False
    #: The fast path (``benchmark perf --switches`` times each flipped): self-attention KV cache with
    #: cross-attention keys/values once per image, the transformer's attention through the fused kernels (the
    #: tokenizer's and context encoder's always are), bf16 autocast of the transformer (off by default: it
    #: changes argmax decisions, so scores would depend on the device's arithmetic; the tokenizer, its codebook
    #: search and the decoder stay float32) and ``torch.compile`` of the transformer (off by default: minutes
    #: of compilation per process on a CPU).
    speed_switches = {"kv_cache": True, "sdpa": True, "bf16": False, "compile": False}
    eager_only_switches = frozenset({"compile"})

    _compiled: tuple[torch.nn.Module, Callable] | None = None  # (transformer, its compiled run)

    def reconstruct(self, batch: ReconBatch) -> torch.Tensor:
        self.generator.manual_seed(batch.seed)
        image, pattern = self._inputs(batch)
        self.model.transformer.set_fused_attention(self.switches["sdpa"])
        run = self._transformer_run()
        indices, _ = generate(
            self.model, image, pattern, self.sampler, self.generator, self.switches["kv_cache"], run=run
        )
        return on_measurements(from_channels(self.model.decode(indices)), batch, self.data_consistency)

    def _transformer_run(self) -> Callable:
        """The transformer's ``run`` as the ``compile`` and ``bf16`` switches ask (compiled once per transformer:
        validation and shared variants swap ``self.model``)."""
        transformer = self.model.transformer
        run = transformer.run
        if self.switches["compile"]:
            if self._compiled is None or self._compiled[0] is not transformer:
                self._compiled = (transformer, torch.compile(transformer.run))
            run = self._compiled[1]
        if not self.switches["bf16"]:
            return run

        def bf16_run(*args):
            with torch.autocast(self.device.type, torch.bfloat16):
                return run(*args)

        return bf16_run


class TransformerStage(NASPDecoder):
    """Part 2 (``train nasp --stage transformer``): teacher-forced cross-entropy over the codebook on
    scales 1 … 5, from the shipped tokenizer (frozen) and its encoder (trained jointly as context)."""

    stage = "transformer"
    train_configs = TRANSFORMER_TRAIN
    parent_stages = {"tokenizer": TokenizerStage}

    def training_losses(self, batch: ReconBatch, target: TrainingTarget) -> Iterator[tuple[str, torch.Tensor]]:
        image, pattern = self._inputs(batch)
        levels = [to_channels(x) for x in level_images(target.kspace, batch.maps, target.hierarchy)]
        indices = self.model.tokens(levels, pattern)
        logits = self.model(image, indices, pattern)
        begin = self.model.transformer.begin_ends[1][0]
        labels = torch.cat(indices[1:], dim=1)
        yield "model", F.cross_entropy(logits[:, begin:].reshape(-1, logits.shape[-1]), labels.reshape(-1))


def on_measurements(decoded: torch.Tensor, batch: ReconBatch, data_consistency: bool = False) -> torch.Tensor:
    """The decoded image on the measurements' phase and intensity scale, then (``data_consistency``) with each
    coil's measured samples put back (``MultiCoilOperator.data_consistent``).

    The tokenizer learns magnitudes under an SSIM and a perceptual loss, which fix neither the phase nor the
    intensity scale (its oracle comes out ~35 % dark in the head on the tiny profile): the phase is taken from
    the measurements' low-resolution image and the scale is the least-squares gain matching the image's low
    frequencies to the measured ones — measurements only, never the target. The exact projection onto the
    measurements is ill-conditioned for smooth coil maps (conjugate gradients on birdcage maps at R = 32
    leave 2 % of the residual after 200 iterations), so data consistency is the one stable replacement step.
    """
    operator = batch.operator()
    image = decoded.abs() * torch.sgn(operator.low_resolution_image(batch.kspace))
    image = image * operator.windowed_gain(image, batch.kspace).clamp_min(0)[..., None, None]
    return operator.data_consistent(image, batch.kspace) if data_consistency else image
