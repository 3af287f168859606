"""``python -m benchmark train METHOD``: one loop for every learned method, single process or torchrun DDP.

The method supplies ``build_model`` and ``loss``; the loop does the rest: AdamW with warm-up and a
cosine or linear schedule, gradient clipping, optional EMA (``torch.optim.swa_utils``), bf16 autocast
and TF32 on CUDA, validation SSIM (paper protocol) selecting the best checkpoint, a CSV log, and
atomic checkpoints that resume bit for bit on the CPU.

Determinism across resumes and ranks: the slice order is ``DistributedSampler``'s permutation for
(seed, epoch), cut into batches whose slices share one coil count (``epoch_batches``); each step draws
one mask pattern from (seed, step) for every rank, and each slice's mask from (seed, step, slice
index). Under torchrun every rank sees different slices with identical masks
rules, gradients are averaged by DDP (applied in place by ``replicate``, so a method only ever holds its bare
networks), and only rank 0 validates, logs and writes.
"""

from __future__ import annotations

import math
import os
import shutil
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import pandas as pd
import torch
import torch.distributed as dist
from torch.distributed._composable import replicate
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from tqdm import tqdm

from benchmark.checkpoint import (
    load_checkpoint,
    load_weights,
    plain_values,
    record_shipped,
    save_checkpoint,
)
from benchmark.data import LoadOptions, SliceDataset, dataset_files, read_manifest, verify_dataset
from benchmark.data.manifest import trainval_hash
from benchmark.errors import BenchmarkError, InputError
from benchmark.io import atomic_path
from benchmark.masks import PATTERN_NAMES, get_pattern, make_mask, make_mask_hierarchy, mask_seed
from benchmark.method import ReconBatch, TrainingStage, TrainingTarget, load_parents
from benchmark.metrics.base import ScoringBatch
from benchmark.metrics.pixel import PSNR, SSIM
from benchmark.recipes import PROTOCOLS, TINY_PROTOCOL, protocol_breaches
from benchmark.registry import get_training_class
from benchmark.runner.environment import git_commit, resolve_device
from benchmark.seeds import derive_seed
from benchmark.training.batches import StepBatches, make_batch, training_loader, validation_units
from benchmark.training.capacity import capacity_gate, check_same_parents
from benchmark.training.optim import Optimizers, averaged_weights

#: What a training run writes into its folder.
TRAINING_FILES = ("last.pt", "best.pt", "log.csv")


@dataclass(frozen=True)
class TrainRequest:
    method: str
    profile: str
    data: Path
    out: Path
    masks: tuple[str, ...] = PATTERN_NAMES
    device: str = "auto"
    resume: bool = False
    steps: int | None = None  # override the profile's step count (tests, quick checks)
    batch_size: int | None = None  # override the per-process batch size
    seed: int | None = None  # override the profile's seed
    normalization: str = "measured"
    stop_after: int | None = None  # stop (with a checkpoint) at this step; --resume continues
    #: Also write ``last.pt`` every this many steps (besides each validation), so a job killed or pre-empted
    #: between validations loses at most this many steps on ``--resume``.
    save_every: int | None = None
    size: tuple[int, int] = (256, 256)
    ship: bool = False
    stage: str | None = None  # the stage of a multi-stage method (``train nasp --stage tokenizer``)
    #: Split each step's batch into this many micro-batches whose gradients add up before one optimiser step
    #: (same batch, same weights up to float rounding, less memory); methods that train one network only.
    accumulate: int = 1
    #: Train a stage although an earlier stage it builds on missed the protocol's capacity floor (recorded).
    below_capacity: bool = False
    #: A chain folder (``train --chain``): the earlier stages come from ``<chain>/<stage>/best.pt``, not the
    #: shipped checkpoints.
    parents_from: Path | None = None
    #: Processes reading training batches ahead (``DataLoader`` workers; 0: the training process reads them).
    workers: int = 0
    #: Validate on the first this many val slices (x each mask), not all (``smoke``; never shipped).
    val_slices: int | None = None


def init_distributed(device: torch.device) -> tuple[int, int]:
    """(rank, world size); joins the process group torchrun describes in the environment."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return (dist.get_rank(), world) if world > 1 else (0, 1)


def global_batch_config(train_config: dict, world: int) -> dict:
    """A training config with the per-process batch replaced by the global one (``batch_size x world``): what
    a resume must match, so a run may continue under another number of ranks on the same global batch."""
    record = plain_values(train_config)
    return record | {"batch_size": record["batch_size"] * world}


class Trainer:
    """State of one training run (networks, optimisers, schedules, EMA, step) and its loop."""

    def __init__(self, request: TrainRequest, training_class: type | None = None) -> None:
        """``training_class``: the class to train instead of the registry's (a capacity sweep's resized stage)."""
        self.request = request
        self.device = resolve_device(request.device)
        self.rank, self.world = init_distributed(self.device)
        cls = training_class or get_training_class(request.method, request.stage)
        if not issubclass(cls, TrainingStage):
            raise InputError(f"{request.method} has nothing to train")
        for name in request.masks:
            get_pattern(name)
        overrides = {"steps": request.steps, "batch_size": request.batch_size, "seed": request.seed,
                     "val_slices": request.val_slices}  # fmt: skip
        base = cls.train_configs[request.profile]
        breaches = protocol_breaches(base, request.profile, may_exceed=cls.capacity_checked)
        if breaches:
            raise InputError(f"the {request.profile} recipe of {cls.__name__} breaks the training protocol: "
                             f"{'; '.join(breaches)}")  # fmt: skip
        self.config = replace(base, **{k: v for k, v in overrides.items() if v is not None})
        protocol = PROTOCOLS.get(request.profile)
        seen = self.config.steps * self.config.batch_size * int(os.environ.get("WORLD_SIZE", "1"))
        if request.ship and protocol and seen < protocol.training_slices:
            raise InputError(f"--ship needs the {request.profile} protocol's {protocol.training_slices} training "
                             f"slices; this run sees {seen} (drop --steps/--batch-size or --ship)")  # fmt: skip
        if request.ship and request.val_slices:
            raise InputError("--ship picks its checkpoint on every val slice (the protocol's); drop --val-slices")
        if request.accumulate < 1 or self.config.batch_size % request.accumulate:
            size = self.config.batch_size
            raise InputError(f"--accumulate {request.accumulate} must divide the batch size {size} into equal parts")
        torch.manual_seed(self.config.seed)  # identical initial weights on every rank
        if self.device.type == "cuda":
            torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = self.config.tf32
        for line in cls.substitutions(request.profile) if self.rank == 0 else ():
            print(" ".join(filter(None, (request.method, request.stage, "substitutes", line))), flush=True)
        parents = load_parents(cls.parent_stages, request.profile, request.parents_from)
        self.method = cls(request.profile, self.device, for_training=True, parents=parents)
        self.capacity_gate = capacity_gate(self.method, request.profile, request.below_capacity)
        self.modules = self.method.training_modules()
        self.model = self.modules["model"]
        self.data_hash = verify_dataset(request.data)
        self.trainval_hash = trainval_hash(read_manifest(request.data)["entries"])
        options = LoadOptions(size=request.size, normalization=request.normalization)
        self.train_set = SliceDataset(dataset_files(request.data, "train"), options, root=request.data)
        self.val_set = SliceDataset(dataset_files(request.data, "val"), options, root=request.data)
        self.optimizers = Optimizers(self.modules, self.config)
        decay = self.config.ema_decay
        self.ema = AveragedModel(self.model, multi_avg_fn=get_ema_multi_avg_fn(decay)) if decay else None
        self.step, self.best, self.log_rows, self.capacity = 0, -math.inf, [], None
        self.wall_seconds, self.started = 0.0, time.monotonic()  # training time over all sessions of this run
        self._seed_rank()
        if request.resume and (request.out / "last.pt").exists():
            self._restore(request.out / "last.pt")
        if self.world > 1:
            # DDP in place (forward hooks on the module itself): the method keeps its bare networks, and a
            # forward pass through the network's root module all-reduces its gradients, as DDP's wrapper does.
            for module in self.modules.values():
                replicate(module)

    def _seed_rank(self) -> None:
        """Under torchrun, give each rank its own random stream once the (identical) weights exist, so
        methods that draw noise in training (diffusion timesteps, rollouts) draw different noise per rank.
        A single process keeps the profile's seed, so shipped checkpoints reproduce as before."""
        if self.world > 1:
            torch.manual_seed(derive_seed(self.config.seed, "rank", self.rank, "step", self.step))

    def payload(self, with_optimizer: bool = True) -> dict:
        payload = {
            "method": self.request.method,
            "stage": self.request.stage,
            "profile": self.request.profile,
            "config": self.method.config_record(),
            "train_config": asdict(self.config),
            "model": self.model.state_dict(),
            "modules": {name: m.state_dict() for name, m in self.modules.items() if name != "model"},
            "ema": {k.removeprefix("module."): v for k, v in self.ema.state_dict().items() if k != "n_averaged"}
            if self.ema
            else None,
            "step": self.step,
            "world": self.world,
            "accumulate": self.request.accumulate,
            "best_val_ssim": self.best,
            "training_slices": self.step * self.config.batch_size * self.world,
            "wall_seconds": self.wall_seconds + time.monotonic() - self.started,
            "capacity": self.capacity,
            "capacity_gate": self.capacity_gate,
            "log": self.log_rows,  # the curve (step, losses, lr; val metrics at each validation)
            "data_hash": self.data_hash,
            "trainval_hash": self.trainval_hash,
            "provenance": self.method.provenance(),
            "training_setting": {
                "size": list(self.request.size),
                "acceleration": self.config.acceleration,
                "normalization": self.request.normalization,
            },
        }
        if with_optimizer:
            payload |= {
                **self.optimizers.state_dict(),
                "ema_full": self.ema.state_dict() if self.ema else None,
                "rng_torch": torch.get_rng_state(),
                "rng_cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
            }
        return payload

    def _restore(self, path: Path) -> None:
        payload = load_checkpoint(path, self.request.method, self.method.config_record())
        if global_batch_config(payload["train_config"], payload.get("world", 1)) != global_batch_config(
            asdict(self.config), self.world
        ):
            raise BenchmarkError(
                f"{path} was written with a different training config (under another number of ranks, keep the "
                "global batch: --batch-size x ranks); use another --out"
            )
        load_weights(self.model, payload.get("model"), path, "model")
        for name, module in self.modules.items():
            if name != "model":
                load_weights(module, (payload.get("modules") or {}).get(name), path, name)
        self.optimizers.load_state_dict(payload)
        if self.ema:
            self.ema.load_state_dict(payload["ema_full"])
        torch.set_rng_state(payload["rng_torch"])
        cuda_states = payload.get("rng_cuda")
        if cuda_states is not None and torch.cuda.is_available() and len(cuda_states) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda_states)
        check_same_parents(path, payload.get("provenance") or {}, self.method)
        self.step, self.best, self.log_rows = payload["step"], payload["best_val_ssim"], list(payload["log"])
        self.capacity, self.wall_seconds = payload.get("capacity"), payload.get("wall_seconds", 0.0)
        self.started = time.monotonic()
        self._seed_rank()  # rank 0's saved stream would otherwise be every rank's after a resume

    def fit(self) -> Path:
        config, request = self.config, self.request
        shape = tuple(self.train_set[0]["target"].shape)
        batches = StepBatches(self.train_set, config, request.masks, shape, self.method.needs_hierarchy, self.rank,
                              self.world, request.accumulate)  # fmt: skip
        if batches.steps_per_epoch == 0:
            raise BenchmarkError(
                f"the train split has {len(self.train_set)} slices, too few for {config.batch_size} x {self.world} "
                "slices of one coil count"
            )
        label = request.method + (f" {request.stage}" if request.stage else "")
        progress = tqdm(total=config.steps, initial=self.step, desc=f"train {label}", disable=self.rank != 0)
        for parts in training_loader(batches, self.step, request.workers):
            losses = self._train_step(parts)
            progress.update()
            progress.set_postfix({k: f"{v:.4g}" for k, v in losses.items()} | {"lr": f"{self.optimizers.lr():.2e}"})
            if self.step % config.log_every == 0:
                self.log_rows.append({"step": self.step, **losses, "lr": self.optimizers.lr()})
            if self.step % config.val_every == 0 or self.step == config.steps:
                self._validate_and_save()
            elif self.step == request.stop_after or (request.save_every and self.step % request.save_every == 0):
                self._save_last()
            if self.step == request.stop_after:
                progress.close()
                return request.out / "best.pt"
        progress.close()
        best = request.out / "best.pt"
        if self.rank == 0 and best.is_file():
            self._finish(best)
        return best

    def _finish(self, best: Path) -> None:
        """Give ``best.pt`` the whole curve (its steps after the best included), print the capacity check and
        ship when asked."""
        payload = load_checkpoint(best, self.request.method)
        if payload.get("last_step") != self.step:  # a finished run resumed again leaves its best.pt's bytes as they are
            # training_slices is what the kept weights saw (to the best step); the run's total is recorded beside it
            run_slices = self.step * self.config.batch_size * self.world
            payload |= {"log": self.log_rows, "last_step": self.step, "run_training_slices": run_slices}
            payload.pop("format_version"), payload.pop("weights_sha256")
            save_checkpoint(best, payload)
        if self.capacity:
            verdict = "passes" if self.capacity["passed"] else "MISSES"
            print(f"capacity check: validation PSNR {self.capacity['val_psnr']:.2f} dB of the fully sampled images "
                  f"through the autoencoder {verdict} the floor of {self.capacity['floor_db']:.0f} dB")  # fmt: skip
        if self.request.ship:
            self._ship(best)

    def _train_step(self, parts: list[tuple[ReconBatch, TrainingTarget]]) -> dict[str, float]:
        """One step on its batch (``parts``: the micro-batches of ``--accumulate``, else one): each loss the method
        yields is backpropagated into its network, which then steps."""
        self.method.train_mode(True)
        parts = [(batch.to(self.device), target.to(self.device)) for batch, target in parts]
        if self.request.accumulate > 1:
            losses = self._accumulated_step(parts)
        else:
            (batch, target), losses = parts[0], {}
            with self._autocast():
                for name, loss in self.method.training_losses(batch, target):
                    with torch.autocast(self.device.type, enabled=False):
                        self.optimizers.step(name, loss)
                    losses["loss" if name == "model" else f"loss_{name}"] = float(loss.detach())
        if self.ema:
            self.ema.update_parameters(self.model)
            # Buffers (a codebook updated by EMA, norm statistics) are taken verbatim, never averaged or stale.
            for ema_buffer, buffer in zip(self.ema.module.buffers(), self.model.buffers(), strict=True):
                ema_buffer.copy_(buffer)
        self.step += 1
        return losses

    def _autocast(self):
        return torch.autocast(
            self.device.type, dtype=torch.bfloat16, enabled=self.device.type == "cuda" and self.config.bf16
        )

    def _accumulated_step(self, parts: list[tuple[ReconBatch, TrainingTarget]]) -> dict[str, float]:
        """The step's batch as ``accumulate`` equal micro-batches: each mean loss, weighted by its share of the
        batch, adds its gradients; one clip and optimiser step follow (under DDP every backward all-reduces,
        and the sum of averaged gradients is the average of the summed ones)."""
        total = 0.0
        for part, (batch, target) in enumerate(parts):
            with self._autocast():
                yielded = list(self.method.training_losses(batch, target))
            if [name for name, _ in yielded] != ["model"]:
                raise InputError(f"--accumulate needs a method that trains one network; this one trains "
                                 f"{', '.join(name for name, _ in yielded)}")  # fmt: skip
            loss = yielded[0][1]
            self.optimizers.backward("model", loss / len(parts), fresh=part == 0)
            total += float(loss.detach()) / len(parts)
        self.optimizers.apply("model")
        return {"loss": total}

    def validate(self) -> dict[str, float]:
        """Mean SSIM and PSNR (paper protocol) of the validation images: every val slice x each mask pattern
        (``val_slices``, when a recipe or ``--val-slices`` sets it, keeps the first that many), masks fixed per
        slice; under DDP each rank scores its share (``validation_units``) and the sums are all-reduced."""
        self.method.train_mode(False)
        sums = torch.zeros(3, dtype=torch.float64)  # SSIM, PSNR, images
        count = min(self.config.val_slices or len(self.val_set), len(self.val_set))
        shape = tuple(self.val_set[0]["target"].shape)
        with torch.no_grad(), averaged_weights(self.model, self.ema):
            for pattern, index in validation_units(self.request.masks, count, self.rank, self.world):
                path, slice_index = self.val_set.index[index]
                seed = mask_seed(path.name, slice_index)
                chains = [make_mask_hierarchy(pattern, shape, seed)] if self.method.needs_hierarchy else None
                mask = make_mask(pattern, shape, self.config.acceleration, seed)
                batch, target = make_batch(self.val_set, [index], [mask], pattern, self.config.acceleration, chains)
                batch, target = batch.to(self.device), target.to(self.device)
                recon = self.method.validation_image(batch, target).abs().float().cpu()
                magnitude = target.magnitude.cpu()
                scoring = ScoringBatch(recon, magnitude, magnitude.amax().reshape(1))
                scores = [SSIM("paper")(scoring).item(), PSNR("paper")(scoring).item(), 1.0]
                sums += torch.tensor(scores, dtype=torch.float64)
        if self.world > 1:
            dist.all_reduce(sums)
        return {"val_ssim": float(sums[0] / sums[2]), "val_psnr": float(sums[1] / sums[2])}

    def _save_last(self) -> None:
        if self.rank == 0:
            save_checkpoint(self.request.out / "last.pt", self.payload())
        if self.world > 1:
            dist.barrier()

    def _validate_and_save(self) -> None:
        scores = self.validate()
        if self.rank == 0:
            self.log_rows.append({"step": self.step, **scores})
            out = self.request.out
            save_checkpoint(out / "last.pt", self.payload())
            if scores["val_ssim"] > self.best:
                self.best = scores["val_ssim"]
                if self.method.capacity_checked:
                    floor = PROTOCOLS.get(self.request.profile, TINY_PROTOCOL).capacity_floor_db
                    passed = scores["val_psnr"] >= floor
                    self.capacity = {"val_psnr": scores["val_psnr"], "floor_db": floor, "passed": passed}
                save_checkpoint(out / "best.pt", self.payload(with_optimizer=False))
                save_checkpoint(out / "last.pt", self.payload())  # records the new best for a resume
            with atomic_path(out / "log.csv") as tmp:
                pd.DataFrame(self.log_rows).to_csv(tmp, index=False)
        if self.world > 1:
            dist.barrier()

    def _ship(self, best: Path) -> None:
        target = type(self.method).shipped_checkpoint(self.request.profile)
        target.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(target) as tmp:
            shutil.copyfile(best, tmp)
        request = self.request
        stage = f" --stage {request.stage}" if request.stage else ""
        command = f"python -m benchmark train {request.method}{stage} --profile {request.profile} --ship"
        for flag, value in (("--steps", request.steps), ("--batch-size", request.batch_size), ("--seed", request.seed)):
            command += f" {flag} {value}" if value is not None else ""
        if request.normalization != "measured":
            command += f" --normalization {request.normalization}"
        command += " --below-capacity" if request.below_capacity else ""
        commit = git_commit(ignore=("results/checkpoints",))
        best_step = max((row for row in self.log_rows if "val_ssim" in row), key=lambda row: row["val_ssim"])["step"]
        training = {
            "training_slices": self.step * self.config.batch_size * self.world,
            "wall_seconds": round(self.wall_seconds + time.monotonic() - self.started),
            "best_step": best_step, "last_step": self.step, "capacity": self.capacity,
        }  # fmt: skip
        record_shipped(target, command, self.data_hash, commit, self.trainval_hash, training)


def train(request: TrainRequest) -> Path:
    """Train as ``request`` says; the method, stage and output folder are checked before anything is written."""
    get_training_class(request.method, request.stage)  # a bad name makes no folder
    out = request.out
    if not request.resume and (out / "last.pt").exists():
        raise BenchmarkError(f"{out} already holds a training run; pass --resume or choose another --out")
    if out.is_dir() and any(out.iterdir()) and not _is_training_folder(out):
        raise BenchmarkError(f"{out} exists and holds files that are not a training run; choose another --out")
    made = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    try:
        return Trainer(request).fit()
    except BaseException:
        if made and not any(out.iterdir()):
            out.rmdir()  # nothing was written: leave no empty folder behind
        raise


def _is_training_folder(out: Path) -> bool:
    """Whether ``out`` holds only what a training run writes."""
    return all(path.name in TRAINING_FILES or path.name.startswith(".") for path in out.iterdir())
