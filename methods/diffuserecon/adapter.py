"""DiffuseRecon adapter: an unconditional prior trained on fully sampled images, sampled with k-space guidance.

Each slice is divided by its zero-filled maximum (available at inference; the prior learns images of that scale)
and the output multiplied back. Training: ε-MSE at a uniform timestep on the fully sampled SENSE image (the
training batches carry the fully sampled k-space; inference sees only the masked measurement). Sampling is seeded
by the run (``torch.Generator``): the same seed gives the same reconstruction.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import cached_property

import torch
import torch.nn.functional as F

from benchmark.method import (
    LearnedMethod,
    ReconBatch,
    TrainingTarget,
    to_channels,
    zero_filled_and_scale,
)
from benchmark.physics import MultiCoilOperator
from methods.diffuserecon.config import CONFIGS, TRAIN
from methods.diffuserecon.prior import build_schedule, build_unet
from methods.diffuserecon.sampler import reconstruct


class DiffuseRecon(LearnedMethod):
    name = "diffuserecon"
    relative_cost = 25.0  # tens to a thousand network evaluations per slice
    sampler_fields = ("samples", "coarse_steps", "refine_steps")
    configs = CONFIGS
    train_configs = TRAIN
    needs_hierarchy = True  # training needs the fully sampled k-space (the prior is trained on full images)

    @cached_property
    def schedule(self):
        """The diffusion schedule of ``self.config``."""
        return build_schedule(self.config)

    def build_model(self) -> torch.nn.Module:
        return build_unet(self.config)

    def _sample(self, batch: ReconBatch, samples: int, steps: int, refine_steps: int) -> torch.Tensor:
        scale = zero_filled_and_scale(batch)[1]
        kspace = batch.kspace / scale[:, None, None, None]
        c = self.config
        image = reconstruct(self.model, self.schedule, kspace, batch.mask, batch.maps, self.generator, samples, steps,
                            c.refine_respacing, refine_steps)  # fmt: skip
        return image * scale[:, None, None]

    def reconstruct(self, batch: ReconBatch) -> torch.Tensor:
        self.generator.manual_seed(batch.seed)
        c = self.config
        return self._sample(batch, c.samples, c.coarse_steps, c.refine_steps)

    def validation_image(self, batch: ReconBatch, target: TrainingTarget) -> torch.Tensor:
        """A cheap sampler (one chain, few steps, no refinement), so validation does not run the full one."""
        self.generator.manual_seed(0)
        return self._sample(batch, 1, self.config.validation_steps, 0)

    def training_losses(self, batch: ReconBatch, target: TrainingTarget) -> Iterator[tuple[str, torch.Tensor]]:
        scale = zero_filled_and_scale(batch)[1]
        clean = to_channels(MultiCoilOperator(batch.maps).adjoint(target.kspace) / scale[:, None, None])
        noise = torch.randn_like(clean)
        steps = torch.randint(0, self.config.train_timesteps, (clean.shape[0],), device=clean.device)
        noisy = self.schedule.add_noise(clean, noise, steps.cpu()).to(clean.device)
        yield "model", F.mse_loss(self.model(noisy, steps).sample.float(), noise)

    def describe(self) -> dict:
        c = self.config
        evaluations = c.samples * c.coarse_steps + c.refine_steps
        sampler = {
            "coarse_steps": c.coarse_steps,
            "samples": c.samples,
            "refine_respacing": c.refine_respacing,
            "refine_steps": c.refine_steps,
            "network_evaluations_per_slice": evaluations,
            "train_timesteps": c.train_timesteps,
            "noise": "seeded per batch from the run's per-unit seed (every batch of a volume starts from that seed)",
        }
        return super().describe() | {"sampler": sampler}
