"""MDPG's training stages and the registered method (``mdpg`` = the stage-II ``unrolled`` stage).

``train mdpg --stage autoencoder`` -> ``--stage prior`` (on the shipped autoencoder, frozen) -> ``--stage unrolled``
(on the shipped prior, frozen; each training step samples the prior with DDIM like inference does). Every later
checkpoint carries the frozen weights it was built on and records their sha256. Images are divided by their
zero-filled maximum (known at inference) and multiplied back; the unrolled stage's loss is the library baselines'
L1 + L2 on the magnitude. Sampling is seeded by the run (``torch.Generator``): same seed, same reconstruction.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict
from functools import cached_property

import torch
import torch.nn as nn
import torch.nn.functional as F

from benchmark.losses import magnitude_loss
from benchmark.method import (
    LearnedMethod,
    ReconBatch,
    TrainingTarget,
    to_channels,
    to_complex,
    zero_filled_and_scale,
)
from benchmark.physics import MultiCoilOperator
from methods.mdpg import config as cfg
from methods.mdpg.prior import KLAutoencoder, LatentPrior, build_ddim, sample_prior
from methods.mdpg.unrolled import UnrolledNet


def scaled_inputs(batch: ReconBatch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Zero-filled image and measured k-space divided by the zero-filled maximum, and that maximum (B,)."""
    zero_filled, scale = zero_filled_and_scale(batch)
    return zero_filled / scale[:, None, None], batch.kspace / scale[:, None, None, None], scale


def fully_sampled(batch: ReconBatch, target: TrainingTarget, scale: torch.Tensor) -> torch.Tensor:
    return to_channels(MultiCoilOperator(batch.maps).adjoint(target.kspace) / scale[:, None, None])


class _Stage(LearnedMethod):
    name = "mdpg"
    needs_hierarchy = True  # stage I trains on fully sampled images

    @cached_property
    def scheduler(self):
        """The prior's DDIM sampler (stage I needs none)."""
        return build_ddim(cfg.PRIOR_CONFIGS[self.profile])

    def earlier_stage(self, role: str) -> nn.Module:
        """The earlier stage's network, frozen: its shipped weights when training, else a skeleton that this
        stage's own checkpoint fills (or random weights, for timing)."""
        if role in self.parents:
            return self.parents[role].model.requires_grad_(False)
        return self.parent_stages[role].assemble(self.profile)


class AutoencoderStage(_Stage):
    stage = "autoencoder"
    configs, train_configs = cfg.AUTOENCODER_CONFIGS, cfg.AUTOENCODER_TRAIN
    capacity_checked = True  # validation passes the fully sampled image through the autoencoder

    @classmethod
    def assemble(cls, profile: str) -> nn.Module:
        return KLAutoencoder(cls.configs[profile])

    def build_model(self) -> nn.Module:
        return self.assemble(self.profile)

    def reconstruct(self, batch: ReconBatch) -> torch.Tensor:
        zero_filled, _, scale = scaled_inputs(batch)
        return to_complex(self.model(to_channels(zero_filled), sample=False)[0]) * scale[:, None, None]

    def validation_image(self, batch: ReconBatch, target: TrainingTarget) -> torch.Tensor:
        """What the autoencoder keeps of the fully sampled image (a ceiling for the prior)."""
        scale = zero_filled_and_scale(batch)[1]
        return to_complex(self.model(fully_sampled(batch, target, scale), sample=False)[0]) * scale[:, None, None]

    def training_losses(self, batch: ReconBatch, target: TrainingTarget) -> Iterator[tuple[str, torch.Tensor]]:
        clean = fully_sampled(batch, target, zero_filled_and_scale(batch)[1])
        decoded, kl = self.model(clean)
        yield "model", F.l1_loss(decoded, clean) + self.config.kl_weight * kl


class PriorModel(nn.Module):
    """The frozen autoencoder and the latent prior; ``forward`` is the prior's (what training optimises)."""

    def __init__(self, autoencoder: KLAutoencoder, prior: LatentPrior) -> None:
        super().__init__()
        self.autoencoder, self.prior = autoencoder, prior

    def forward(self, noisy: torch.Tensor, condition: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
        return self.prior(noisy, condition, timesteps)


class PriorStage(_Stage):
    stage = "prior"
    configs, train_configs = cfg.PRIOR_CONFIGS, cfg.PRIOR_TRAIN
    parent_stages = {"autoencoder": AutoencoderStage}

    @classmethod
    def assemble(cls, profile: str) -> nn.Module:
        autoencoder = KLAutoencoder(cfg.AUTOENCODER_CONFIGS[profile]).requires_grad_(False)
        latent_channels = cfg.AUTOENCODER_CONFIGS[profile].latent_channels
        return PriorModel(autoencoder, LatentPrior(cls.configs[profile], latent_channels))

    def build_model(self) -> nn.Module:
        model = self.assemble(self.profile)
        if "autoencoder" in self.parents:
            model.autoencoder.load_state_dict(self.earlier_stage("autoencoder").state_dict())
        return model

    def config_record(self) -> dict:
        return {"prior": asdict(self.config), "autoencoder": asdict(cfg.AUTOENCODER_CONFIGS[self.profile])}

    def prior_image(self, zero_filled: torch.Tensor, steps: int) -> torch.Tensor:
        return sample_prior(
            self.model.autoencoder, self.model.prior, self.scheduler, to_channels(zero_filled), self.generator, steps
        )

    def reconstruct(self, batch: ReconBatch) -> torch.Tensor:
        self.generator.manual_seed(batch.seed)
        zero_filled, _, scale = scaled_inputs(batch)
        return to_complex(self.prior_image(zero_filled, self.config.ddim_steps)) * scale[:, None, None]

    def training_losses(self, batch: ReconBatch, target: TrainingTarget) -> Iterator[tuple[str, torch.Tensor]]:
        zero_filled, _, scale = scaled_inputs(batch)
        with torch.no_grad():
            clean = self.model.autoencoder.encode(fully_sampled(batch, target, scale))
            self.model.prior.measure_scale(clean)
            clean = clean * self.model.prior.latent_scale
            condition = self.model.autoencoder.encode(to_channels(zero_filled)) * self.model.prior.latent_scale
        noise = torch.randn_like(clean)
        steps = torch.randint(0, self.config.train_timesteps, (clean.shape[0],), device=clean.device)
        noisy = self.scheduler.add_noise(clean, noise, steps.cpu()).to(clean.device)
        yield "model", F.mse_loss(self.model(noisy, condition, steps), noise)


class MDPGModel(nn.Module):
    """Frozen stage I and the trained stage II; ``forward`` is stage II's (what training optimises)."""

    def __init__(self, stage_one: PriorModel, unrolled: UnrolledNet) -> None:
        super().__init__()
        self.stage_one, self.unrolled = stage_one, unrolled

    def forward(self, zero_filled, kspace, mask, maps, prior) -> torch.Tensor:
        return self.unrolled(zero_filled, kspace, mask, maps, prior)


class MDPG(_Stage):
    """The registered method: stage II on the frozen, shipped stage I."""

    stage = "unrolled"
    configs, train_configs = cfg.UNROLLED_CONFIGS, cfg.UNROLLED_TRAIN
    parent_stages = {"prior": PriorStage}

    def build_model(self) -> nn.Module:
        return MDPGModel(self.earlier_stage("prior"), UnrolledNet(self.config))

    def config_record(self) -> dict:
        return {"unrolled": asdict(self.config), "prior": asdict(cfg.PRIOR_CONFIGS[self.profile]),
                "autoencoder": asdict(cfg.AUTOENCODER_CONFIGS[self.profile])}  # fmt: skip

    def _reconstruct(self, batch: ReconBatch) -> torch.Tensor:
        zero_filled, kspace, scale = scaled_inputs(batch)
        stage_one = self.model.stage_one
        # The frozen prior samples in float32 in training too (the loop's bf16 autocast would change its numbers).
        with torch.no_grad(), torch.autocast(zero_filled.device.type, enabled=False):
            prior = sample_prior(stage_one.autoencoder, stage_one.prior, self.scheduler, to_channels(zero_filled),
                                 self.generator, cfg.PRIOR_CONFIGS[self.profile].ddim_steps)  # fmt: skip
        return self.model(zero_filled, kspace, batch.mask, batch.maps, prior) * scale[:, None, None]

    def reconstruct(self, batch: ReconBatch) -> torch.Tensor:
        self.generator.manual_seed(batch.seed)
        return self._reconstruct(batch)

    def training_losses(self, batch: ReconBatch, target: TrainingTarget) -> Iterator[tuple[str, torch.Tensor]]:
        self.generator.manual_seed(int(torch.randint(0, 2**62, ())))  # a fresh prior draw per step, seeded run
        yield "model", magnitude_loss(self._reconstruct(batch).abs(), target.magnitude)

    def describe(self) -> dict:
        ddim = {"ddim_steps": cfg.PRIOR_CONFIGS[self.profile].ddim_steps, "eta": 0.0}
        noise = "seeded per batch from the run's per-unit seed (every batch of a volume starts from that seed)"
        return super().describe() | {"sampler": ddim | {"noise": noise}, "choices": "see methods/mdpg/config.py"}
