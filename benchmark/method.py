"""The interface every reconstruction method implements, and the batch the harness hands it.

A method sees only what a scanner would give it: undersampled multi-coil k-space (zero where not
sampled), the sampling mask, the sensitivity maps every method shares, and the sampling pattern and
acceleration that produced the mask. It never sees the target. Training (a later stage) adds
``loss``; the shared loop supplies everything else.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, is_dataclass, replace
from pathlib import Path
from typing import Any, ClassVar, Self

import torch

from benchmark.checkpoint import CHECKPOINT_ROOT, checkpoint_reference, load_checkpoint, load_weights
from benchmark.errors import BenchmarkError, InputError
from benchmark.io import sha256_file
from benchmark.losses import magnitude_loss
from benchmark.physics import MultiCoilOperator

PROFILES = ("tiny", "paper")


@dataclass
class ReconBatch:
    """Inputs for one batch of slices (all tensors on the method's device)."""

    kspace: torch.Tensor  # (B, C, H, W) complex64, zero outside the mask
    mask: torch.Tensor  # (B, H, W) bool
    maps: torch.Tensor  # (B, C, H, W) complex64
    pattern: str  # mask pattern name, e.g. "radial" (``benchmark.masks.PATTERNS``)
    acceleration: int
    #: Seed of the method's own random draws (sampling methods seed their generator from it, never from the
    #: global RNG): the run's seed label, so a batch reconstructs the same whatever ran before it.
    seed: int = 0

    def operator(self) -> MultiCoilOperator:
        """``A = M F S`` for this batch (from ``benchmark.physics``, shared by all methods)."""
        return MultiCoilOperator(self.maps, self.mask)

    def to(self, device: torch.device) -> ReconBatch:
        return replace(self, kspace=self.kspace.to(device), mask=self.mask.to(device), maps=self.maps.to(device))

    def select(self, indices: torch.Tensor | list[int]) -> ReconBatch:
        """The slices ``indices`` of this batch (repeats allowed), as a batch of their own."""
        return replace(self, kspace=self.kspace[indices], mask=self.mask[indices], maps=self.maps[indices])

    @staticmethod
    def concatenated(parts: list[ReconBatch]) -> ReconBatch:
        """Batches of one pattern, acceleration and seed joined along the batch axis (slices of several volumes)."""
        if len({(part.pattern, part.acceleration, part.seed) for part in parts}) != 1:
            raise ValueError("only batches of one mask pattern, acceleration and seed can be joined")
        joined = {name: torch.cat([getattr(part, name) for part in parts]) for name in ("kspace", "mask", "maps")}
        return replace(parts[0], **joined)


@dataclass
class TrainingTarget:
    """What training compares a reconstruction with; never handed to ``reconstruct``."""

    magnitude: torch.Tensor  # (B, H, W) target magnitude, normalised like the batch
    kspace: torch.Tensor | None = None  # (B, C, H, W) fully sampled k-space, normalised like the batch
    hierarchy: dict[int, torch.Tensor] | None = None  # R -> (B, H, W) nested masks; [R of the batch] = its mask

    def to(self, device: torch.device) -> TrainingTarget:
        return TrainingTarget(
            self.magnitude.to(device),
            None if self.kspace is None else self.kspace.to(device),
            None if self.hierarchy is None else {r: m.to(device) for r, m in self.hierarchy.items()},
        )


class Configured:
    """What a method and a training stage share: a name, a config per profile, a device, a checkpoint path."""

    name: ClassVar[str] = ""
    #: Profile name -> frozen config dataclass (``tiny`` for CPU/CI, ``paper`` for the paper's sizes).
    configs: ClassVar[dict[str, Any]] = {}
    #: Learned methods need a checkpoint; classical ones do not.
    needs_checkpoint: ClassVar[bool] = False
    #: A stage of a multi-stage method (``train METHOD --stage STAGE``); its checkpoints live in
    #: ``results/checkpoints/<name>/<stage>/``.
    stage: ClassVar[str] = ""
    #: Size, R and normalisation the loaded checkpoint was trained with (``None``: nothing learned).
    training_setting: dict | None = None
    #: The loaded checkpoint's provenance (source checkpoints, substitutions); recorded in run metadata.
    checkpoint_provenance: dict | None = None
    #: The seed the loaded checkpoint was trained with (``None``: nothing learned); training-noise reports.
    training_seed: int | None = None

    def __init__(
        self, profile: str, device: torch.device, checkpoint: Path | None = None, for_training: bool = False
    ) -> None:
        if profile not in self.configs:
            raise InputError(f"{self.name}: unknown profile {profile!r}; known: {', '.join(self.configs)}")
        if self.needs_checkpoint and not for_training and (checkpoint is None or not Path(checkpoint).is_file()):
            stage = f" --stage {self.stage}" if self.stage else ""
            hint = f"train it with `python -m benchmark train {self.name}{stage} --profile {profile}`"
            raise BenchmarkError(f"{self.name}: checkpoint {checkpoint} not found; {hint}")
        self.profile = profile
        self.config = self.configs[profile]
        self.device = device
        self.checkpoint = Path(checkpoint) if checkpoint else None


class Method(Configured, ABC):
    """A reconstruction method: what the runner calls. Subclasses set ``name`` and ``configs`` and implement
    ``reconstruct``."""

    #: True for methods that estimate their own sensitivity maps instead of using the shared ones.
    estimates_own_maps: ClassVar[bool] = False
    #: A guess of one slice's cost (reconstruction and scoring) relative to a cheap network's; only balances the
    #: ranks of a sharded run, never changes a number.
    relative_cost: ClassVar[float] = 1.0
    #: Inference fast-path switches (name -> default), each another way to compute the reconstruction;
    #: ``benchmark perf --switches`` times every one flipped. Empty for methods without any.
    speed_switches: ClassVar[dict[str, bool]] = {}
    #: Switches that change how, not what, is computed and that the FLOP counter cannot see through
    #: (``torch.compile``): off while ``benchmark perf`` counts FLOPs.
    eager_only_switches: ClassVar[frozenset[str]] = frozenset()
    #: Config fields that count a sampler's work (steps, samples). ``run --sampler METHOD.FIELD=N`` may lower
    #: them for a quick check (``smoke``); the run records the counts and its tables say they were lowered.
    sampler_fields: ClassVar[tuple[str, ...]] = ()

    def __init__(
        self, profile: str, device: torch.device, checkpoint: Path | None = None, for_training: bool = False
    ) -> None:
        super().__init__(profile, device, checkpoint, for_training)
        self.switches = dict(self.speed_switches)
        #: The method's own random stream (sampling methods seed it from ``batch.seed``), never the global RNG.
        self.generator = torch.Generator(device=device)
        #: Sampler counts lowered by ``reduce_sampler`` (field -> count); empty for the method's own sampler.
        self.sampler_reduced: dict[str, int] = {}

    def set_speed_switches(self, **values: bool) -> None:
        """Turn fast-path switches on or off (names from ``speed_switches``)."""
        unknown = sorted(set(values) - set(self.speed_switches))
        if unknown:
            known = ", ".join(self.speed_switches) or "none"
            raise InputError(f"{self.name}: unknown speed switch {', '.join(unknown)}; known: {known}")
        self.switches.update({name: bool(value) for name, value in values.items()})

    def reduce_sampler(self, **counts: int) -> None:
        """Lower sampler counts (names from ``sampler_fields``) below the profile's, never raise them."""
        for field, count in counts.items():
            if field not in self.sampler_fields:
                known = ", ".join(self.sampler_fields) or "none"
                raise InputError(f"{self.name}: {field} is not a sampler count; known: {known}")
            if not 1 <= count <= getattr(self.config, field):
                raise InputError(f"{self.name}: {field}={count} must be between 1 and the profile's "
                                 f"{getattr(self.config, field)}")  # fmt: skip
        self.config = replace(self.config, **counts)
        self.sampler_reduced.update(counts)

    @abstractmethod
    def reconstruct(self, batch: ReconBatch) -> torch.Tensor:
        """Images ``(B, H, W)``: complex (magnitude is taken for scoring) or real magnitude."""

    def loss(self, batch: ReconBatch, target: torch.Tensor) -> torch.Tensor:
        """Training loss for one batch; methods that cannot be trained do not override this."""
        raise BenchmarkError(f"{self.name} has no training loss (it needs no training)")

    def describe(self) -> dict:
        """Plain values identifying this method instance in run metadata."""
        config = asdict(self.config) if is_dataclass(self.config) else dict(self.config or {})
        return {
            "name": self.name,
            "profile": self.profile,
            "config": config,
            "config_hash": hashlib.sha256(repr(sorted(config.items())).encode()).hexdigest()[:16],
            "checkpoint": str(self.checkpoint) if self.checkpoint else None,
            "checkpoint_sha256": sha256_file(self.checkpoint) if self.checkpoint else None,
            "training_setting": self.training_setting,
            "estimates_own_maps": self.estimates_own_maps,
            "checkpoint_provenance": self.checkpoint_provenance,
            "training_seed": self.training_seed,
            "speed_switches": dict(self.switches),
        } | ({"sampler_reduced": dict(self.sampler_reduced)} if self.sampler_reduced else {})


class TrainingStage(Configured, ABC):
    """A training recipe the shared loop runs: the network (``build_model``), its losses, the image validation
    scores and the earlier stages it is built on. A learned method is one (``LearnedMethod``); a stage that
    cannot reconstruct on its own (NASP's privileged teacher needs the fully sampled image) is only this.

    Loaded for inference or as a parent, the weights come from ``checkpoint`` (default: the shipped
    ``results/checkpoints/<name>[/<stage>]/<profile>.pt``), using the EMA weights when the checkpoint has them.
    """

    needs_checkpoint = True
    train_configs: ClassVar[dict[str, Any]] = {}
    #: Training batches carry the nested mask hierarchy and the fully sampled k-space.
    needs_hierarchy: ClassVar[bool] = False
    #: The method name its checkpoints are written under, when it runs another method's weights (a
    #: decoding variant sharing a checkpoint); ``None``: its own name.
    trained_as: ClassVar[str | None] = None
    #: A latent method's autoencoder: its validation image is the fully sampled image through the autoencoder,
    #: and the stages built on it train only once that reaches the protocol's capacity floor (issue 31).
    capacity_checked: ClassVar[bool] = False
    #: The loaded checkpoint's capacity check (``None``: not a checked stage, or trained before the check).
    capacity: dict | None = None
    #: The earlier stages this one is built on, by role: training loads each one's shipped checkpoint into
    #: ``parents`` before ``build_model`` (the trainer enforces their capacity checks); at inference this
    #: stage's own checkpoint holds every weight and no parent is loaded.
    parent_stages: ClassVar[dict[str, type[TrainingStage]]] = {}
    #: Loaded as a parent (``load_parents``): the checkpoint's path and sha256 when it was loaded, what the
    #: child's provenance records (the file could change while the child trains).
    loaded_from: dict | None = None

    def __init__(
        self, profile: str, device: torch.device, checkpoint: Path | None = None, for_training: bool = False,
        parents: Mapping[str, TrainingStage] | None = None,
    ) -> None:  # fmt: skip
        """``parents`` (training only): the earlier stages to build on, by role; by default each of
        ``parent_stages`` from its shipped checkpoint, ``{}`` for none (random weights: ``for_timing``)."""
        if checkpoint is None and not for_training:
            checkpoint = self.shipped_checkpoint(profile)
        super().__init__(profile, device, None if for_training else checkpoint, for_training)
        #: Built to be trained (or timed): no checkpoint of its own was loaded.
        self.for_training = for_training
        if parents is None:
            parents = load_parents(self.parent_stages, profile) if for_training else {}
        #: The earlier stages this one was built on while training, by role (empty at inference).
        self.parents: dict[str, TrainingStage] = dict(parents)
        self.model = self.build_model().to(device)
        if not for_training:
            payload = load_checkpoint(self.checkpoint, self.trained_as or self.name, self.config_record())
            state = payload["ema"] if payload.get("ema") is not None else payload.get("model")
            load_weights(self.model, state, self.checkpoint, f"{self.name} {profile}")
            self.training_setting = payload.get("training_setting")
            self.checkpoint_provenance = payload.get("provenance")
            self.training_seed = (payload.get("train_config") or {}).get("seed")
            self.capacity = payload.get("capacity")
            self.model.eval()

    @classmethod
    def for_timing(cls, profile: str, device: torch.device) -> Self:
        """Random weights of ``profile`` in inference mode, for ``benchmark perf`` (no method here stops early,
        so the cost does not depend on the weights' values)."""
        method = cls(profile, device, for_training=True, parents={})
        method.train_mode(False)
        return method

    @classmethod
    def shipped_checkpoint(cls, profile: str) -> Path:
        return CHECKPOINT_ROOT / cls.name / cls.stage / f"{profile}.pt"

    @classmethod
    def training_source(cls) -> tuple[str, str]:
        """``(method, stage)`` of the ``train`` run that writes the checkpoint this class loads (stage ``""``: a
        method trained in one stage)."""
        return cls.trained_as or cls.name, cls.stage

    @classmethod
    def substitutions(cls, profile: str) -> list[str]:
        """One line per component of the method's published recipe that this machine replaces when training
        ``profile`` (weights it cannot load), said before training starts; none by default."""
        return []

    @abstractmethod
    def build_model(self) -> torch.nn.Module:
        """The network for ``self.config``."""

    def config_record(self) -> dict:
        return asdict(self.config)

    def train_mode(self, training: bool) -> None:
        """Switch the network between training and evaluation behaviour."""
        self.model.train(training)

    def training_modules(self) -> dict[str, torch.nn.Module]:
        """Networks the loop optimises, by method attribute name; ``"model"`` is saved as the model."""
        return {"model": self.model}

    @abstractmethod
    def training_losses(self, batch: ReconBatch, target: TrainingTarget) -> Iterator[tuple[str, torch.Tensor]]:
        """``(network, loss)`` pairs; the loop steps each network on its loss before asking for the next
        (alternating GAN updates are a generator yielding the generator's loss, then the discriminator's)."""

    @abstractmethod
    def validation_image(self, batch: ReconBatch, target: TrainingTarget) -> torch.Tensor:
        """The image validation SSIM scores (selects ``best.pt``)."""

    def provenance(self) -> dict:
        """What a checkpoint was built from beyond the data: each parent's checkpoint (path, sha256) with that
        checkpoint's own provenance (the whole chain); methods add their substitutions."""
        return {
            role: {
                **(parent.loaded_from or checkpoint_reference(parent.checkpoint)),
                "provenance": parent.checkpoint_provenance,
            }
            for role, parent in self.parents.items()
        }


class LearnedMethod(TrainingStage, Method):
    """A method with an ``nn.Module`` trained by the shared loop. Subclasses implement ``build_model``,
    ``reconstruct`` and ``loss`` and set ``train_configs`` (profile -> ``TrainConfig``)."""

    def training_losses(self, batch: ReconBatch, target: TrainingTarget) -> Iterator[tuple[str, torch.Tensor]]:
        yield "model", self.loss(batch, target.magnitude)

    def validation_image(self, batch: ReconBatch, target: TrainingTarget) -> torch.Tensor:
        """By default the reconstruction."""
        return self.reconstruct(batch)


def load_parents(
    stages: Mapping[str, type[TrainingStage]], profile: str, chain: Path | None = None
) -> dict[str, TrainingStage]:
    """Each stage's checkpoint of ``profile``, loaded on the CPU (a missing one: one clear line): the shipped one,
    or with ``chain`` (a folder ``train --chain`` trains a method's stages into) ``chain/<stage>/best.pt``."""
    parents = {}
    for role, stage in stages.items():
        path = chain / stage.stage / "best.pt" if chain else stage.shipped_checkpoint(profile)
        parents[role] = stage(profile, torch.device("cpu"), path)
        parents[role].loaded_from = checkpoint_reference(path)
    return parents


def to_channels(image_BHW: torch.Tensor) -> torch.Tensor:
    """Complex images (B, H, W) -> real (B, 2, H, W): the real and imaginary parts as channels."""
    return torch.view_as_real(image_BHW).permute(0, 3, 1, 2).contiguous()


def to_complex(channels_B2HW: torch.Tensor) -> torch.Tensor:
    """Inverse of ``to_channels`` (computed in float32)."""
    return torch.view_as_complex(channels_B2HW.float().permute(0, 2, 3, 1).contiguous())


def zero_filled_and_scale(batch: ReconBatch) -> tuple[torch.Tensor, torch.Tensor]:
    """The zero-filled SENSE image (B, H, W) and its per-slice maximum (B,): image-domain methods divide their
    input by it (it is known at inference) and multiply their output back."""
    zero_filled = batch.operator().adjoint(batch.kspace)
    return zero_filled, zero_filled.abs().amax(dim=(-2, -1)).clamp_min(1e-12)


class ImageToImageMethod(LearnedMethod):
    """A learned method mapping the zero-filled SENSE image (real/imag channels) to the image (U-Net, Swin-Unet).

    Each input is divided by its zero-filled maximum (available at inference) and the output multiplied back.
    Loss: ``benchmark.losses.magnitude_loss`` (L1 + L2 on the magnitude, shared by all library baselines).
    """

    def reconstruct(self, batch: ReconBatch) -> torch.Tensor:
        zero_filled, scale = zero_filled_and_scale(batch)
        output = self.model(to_channels(zero_filled / scale[:, None, None]).float())
        return to_complex(output) * scale[:, None, None]

    def loss(self, batch: ReconBatch, target: torch.Tensor) -> torch.Tensor:
        return magnitude_loss(self.reconstruct(batch).abs(), target)
