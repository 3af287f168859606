"""NASP part 3, stage ``distill`` (paper §4.3, eq. 4, Fig. 4): on-policy privileged-information distillation.

The student starts from the shipped base model (``nasp-base``); the privileged teacher (stage
``teacher``) is loaded frozen. Each step:

1. the student **rolls out** Q̂_16 … Q̂_FS from the R = 32 input by multinomial sampling, scale by scale
   with the KV cache, feeding each sampled scale back (no gradient, evaluation mode: the inference
   policy);
2. one teacher-forced pass of the student on its own rollout (with gradient) gives p_θ(·|Q̂≤k), and one
   of the frozen teacher on the same rollout plus x (no gradient) gives p_φ(·|Q̂≤k, x), at every
   predicted position;
3. the loss is eq. 4: the reverse KL D_KL(p_θ ‖ p_φ), computed exactly over the vocabulary, averaged
   over each scale's tokens and then over the five predicted scales. Only the student is optimised.

Written by hand: no library does on-policy distillation for scale-wise autoregressive models.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
import torch.nn.functional as F

from benchmark.method import ReconBatch, TrainingTarget
from benchmark.recipes import TINY_PROTOCOL, TrainConfig
from methods.nasp.adapter import TransformerStage
from methods.nasp.config import VAR_NO_DECAY
from methods.nasp.decoding import Sampler, generate
from methods.nasp.model import NASPModel
from methods.nasp.teacher import TeacherStage, fully_sampled_image
from methods.nasp.tokenizer import AQVAE

#: Paper: cosine schedule, base lr 1e-5, global batch 24, 100 epochs. Tiny: the training protocol's slices in
#: batches of 4.
DISTILL_TRAIN = {
    "tiny": TINY_PROTOCOL.recipe(
        4, lr=1e-4, betas=(0.9, 0.95), weight_decay=0.05, no_decay_keys=VAR_NO_DECAY,
        warmup_steps=10, schedule="cosine", grad_clip=2.0
    ),
    "paper": TrainConfig(
        steps=20_000, batch_size=3, lr=1e-5, betas=(0.9, 0.95), weight_decay=0.05, no_decay_keys=VAR_NO_DECAY,
        warmup_steps=500, schedule="cosine", grad_clip=2.0, val_every=1_000,
    ),
}  # fmt: skip

#: How the student samples its rollouts (its own distribution, untruncated).
ROLLOUT_SAMPLER = Sampler("multinomial")


def reverse_kl(student_logits: torch.Tensor, teacher_logits: torch.Tensor) -> torch.Tensor:
    """D_KL(p_student ‖ p_teacher) per position, exact over the last (vocabulary) axis."""
    log_p = F.log_softmax(student_logits.float(), dim=-1)
    log_q = F.log_softmax(teacher_logits.float(), dim=-1)
    return (log_p.exp() * (log_p - log_q)).sum(dim=-1)


def scale_averaged_reverse_kl(
    student_logits_BLV: torch.Tensor, teacher_logits_BLV: torch.Tensor, begin_ends: list[tuple[int, int]]
) -> torch.Tensor:
    """Eq. 4: reverse KL averaged over each predicted scale's tokens (and the batch), then over the scales."""
    per_position = reverse_kl(student_logits_BLV, teacher_logits_BLV)
    return torch.stack([per_position[:, begin:end].mean() for begin, end in begin_ends[1:]]).mean()


@torch.no_grad()
def rollout(student: NASPModel, image_B3HW: torch.Tensor, pattern_B: torch.Tensor) -> list[torch.Tensor]:
    """The student's own sampled token sequence (Q_32 observed, Q̂_16 … Q̂_FS drawn), as at inference."""
    training = student.training
    student.eval()
    try:
        indices, _ = generate(student, image_B3HW, pattern_B, ROLLOUT_SAMPLER)
    finally:
        student.train(training)
    return indices


class DistillStage(TransformerStage):
    """``train nasp --stage distill``: the student (``nasp``) distilled from the teacher on its rollouts."""

    stage = "distill"
    train_configs = DISTILL_TRAIN
    parent_stages = {"transformer": TransformerStage, "teacher": TeacherStage}

    def build_model(self) -> NASPModel:
        student = NASPModel(AQVAE(self.tokenizer_config()), self.config)
        if self.parents:  # the base model's weights, tokenizer included; the teacher beside it
            student.load_state_dict(self.parents["transformer"].model.state_dict())
            self.teacher = self.parents["teacher"].model.to(self.device).eval().requires_grad_(False)
        return student

    def training_losses(self, batch: ReconBatch, target: TrainingTarget) -> Iterator[tuple[str, torch.Tensor]]:
        image, pattern = self._inputs(batch)
        indices = rollout(self.model, image, pattern)
        yield "model", self.distillation_loss(image, pattern, fully_sampled_image(batch, target), indices)

    def distillation_loss(
        self, image_B3HW: torch.Tensor, pattern_B: torch.Tensor, privileged_B3HW: torch.Tensor, indices: list
    ) -> torch.Tensor:
        """Eq. 4 on the rollout ``indices``: gradient into the student only."""
        student_logits = self.model(image_B3HW, indices, pattern_B)
        with torch.no_grad():
            teacher_logits = self.teacher(image_B3HW, indices, pattern_B, privileged_B3HW)
        begin_ends = self.model.transformer.begin_ends
        return scale_averaged_reverse_kl(student_logits, teacher_logits, begin_ends)
