"""NASP part 3, stage ``teacher`` (paper §4.3): the privileged teacher.

The part-2 transformer, additionally cross-attending in every block to the context encoder's features
of the fully sampled image x (``NASPModel(privileged=True)``), initialised from the shipped base
(``nasp-base``) weights with its privileged branches starting at zero, and trained with teacher forcing
on **randomised prefixes**: a fraction ``prefix_noise`` of the input tokens of the predicted scales
(Q_16 … Q_2; the observed Q_32 is never corrupted, as it is never predicted) is replaced by uniformly
random codebook indices in the input only, the labels left clean — RemoteVAR's ``noisy_tf_mask_prob``
— so that the teacher learns to correct the imperfect histories a student rollout produces.

The teacher needs x, which no reconstruction gets, so it is a training stage only (a
``TrainingStage``, not a ``Method``: it has no ``reconstruct``); its validation decodes with x from the
training target.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F

from benchmark.errors import BenchmarkError
from benchmark.method import ReconBatch, TrainingTarget
from benchmark.recipes import TINY_PROTOCOL, TrainConfig
from methods.nasp.adapter import NASPTransformerRecipe, TransformerStage
from methods.nasp.config import VAR_NO_DECAY
from methods.nasp.decoding import generate
from methods.nasp.levels import from_channels, level_images, to_channels
from methods.nasp.model import NASPModel
from methods.nasp.tokenizer import AQVAE


@dataclass(frozen=True)
class TeacherConfig:
    #: Fraction of the predicted scales' input tokens replaced by random codebook indices (labels clean).
    prefix_noise: float = 0.2


TEACHER_CONFIGS = {"tiny": TeacherConfig(), "paper": TeacherConfig()}

#: From the base model's weights, so fewer steps than the base itself: the privileged branches and the
#: encoder's FS features are what is new. Tiny: the training protocol's slices in batches of 4.
TEACHER_TRAIN = {
    "tiny": TINY_PROTOCOL.recipe(
        4, lr=5e-4, betas=(0.9, 0.95), weight_decay=0.05, no_decay_keys=VAR_NO_DECAY,
        warmup_steps=20, schedule="linear", grad_clip=2.0
    ),
    "paper": TrainConfig(
        steps=50_000, batch_size=16, lr=3.125e-5, betas=(0.9, 0.95), weight_decay=0.05, no_decay_keys=VAR_NO_DECAY,
        warmup_steps=1_000, schedule="linear", grad_clip=2.0, val_every=2_000,
    ),
}  # fmt: skip


def corrupt_prefix(
    indices: list[torch.Tensor], rate: float, vocab: int, generator: torch.Generator | None = None
) -> list[torch.Tensor]:
    """Copies of ``indices`` with each token of scales ≥ 1 replaced, with probability ``rate``, by a
    uniformly random index in ``[0, vocab)``; scale 0 (the observed Q_32) is returned unchanged."""
    corrupted = [indices[0]]
    for tokens in indices[1:]:
        hit = torch.rand(tokens.shape, generator=generator, device=tokens.device) < rate
        noise = torch.randint(vocab, tokens.shape, generator=generator, device=tokens.device)
        corrupted.append(torch.where(hit, noise, tokens))
    return corrupted


def fully_sampled_image(batch: ReconBatch, target: TrainingTarget) -> torch.Tensor:
    """x, the privileged input: the coil-combined fully sampled image in VAR's 3-channel layout."""
    return to_channels(level_images(target.kspace, batch.maps, target.hierarchy)[-1])


class TeacherStage(NASPTransformerRecipe):
    """``train nasp --stage teacher``: privileged teacher from the shipped ``transformer`` stage."""

    stage = "teacher"
    train_configs = TEACHER_TRAIN
    teacher_configs = TEACHER_CONFIGS
    parent_stages = {"transformer": TransformerStage}

    def config_record(self) -> dict:
        return super().config_record() | {"teacher": asdict(self.teacher_configs[self.profile])}

    def build_model(self) -> NASPModel:
        teacher = NASPModel(AQVAE(self.tokenizer_config()), self.config, privileged=True)
        if "transformer" in self.parents:  # start from the base model: its weights, privileged branches at zero
            base = self.parents["transformer"]
            missing, unexpected = teacher.load_state_dict(base.model.state_dict(), strict=False)
            if unexpected or any(".privileged." not in key for key in missing):
                raise BenchmarkError(
                    f"{base.checkpoint} does not fit the teacher (missing {missing[:3]}, unexpected {unexpected[:3]})"
                )
        return teacher

    def validation_image(self, batch: ReconBatch, target: TrainingTarget) -> torch.Tensor:
        """Argmax decoding with x: how well the teacher predicts when it sees the answer's image."""
        image, pattern = self._inputs(batch)
        indices, _ = generate(self.model, image, pattern, privileged_B3HW=fully_sampled_image(batch, target))
        return from_channels(self.model.decode(indices))

    def training_losses(self, batch: ReconBatch, target: TrainingTarget) -> Iterator[tuple[str, torch.Tensor]]:
        image, pattern = self._inputs(batch)
        levels = [to_channels(x) for x in level_images(target.kspace, batch.maps, target.hierarchy)]
        indices = self.model.tokens(levels, pattern)
        noisy = corrupt_prefix(
            indices, self.teacher_configs[self.profile].prefix_noise, self.model.tokenizer.config.codebook_size
        )
        logits = self.model(image, noisy, pattern, levels[-1])
        begin = self.model.transformer.begin_ends[1][0]
        labels = torch.cat(indices[1:], dim=1)  # clean labels
        yield "model", F.cross_entropy(logits[:, begin:].reshape(-1, logits.shape[-1]), labels.reshape(-1))
