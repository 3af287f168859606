"""What each training step reads, and a ``DataLoader`` that reads it ahead in worker processes.

Every step's batch is a pure function of the recipe's seed and the step: the slice order of its epoch
(``epoch_batches``), its mask pattern and each slice's mask (``training_masks``), then the acquisition through
the one path (``make_batch``). So ``StepBatches[step]`` is that batch, any process can build it, and a
``DataLoader`` with workers and prefetching yields exactly the batches the loop would read itself, in step
order, from any step a resume starts at. Validation images are spread over the ranks the same way
(``validation_units``), each rank scoring every ``world``-th (mask, slice) pair.
"""

from __future__ import annotations

import torch
from torch.utils.data import DataLoader, Dataset

from benchmark.acquisition import acquire, scale_policy
from benchmark.data import SliceDataset
from benchmark.masks import make_mask, make_mask_hierarchy
from benchmark.method import ReconBatch, TrainingTarget
from benchmark.recipes import TrainConfig
from benchmark.seeds import derive_seed


def make_batch(
    dataset: SliceDataset,
    indices: list[int],
    masks: list[torch.Tensor],
    pattern: str,
    acceleration: int,
    hierarchies: list[dict[int, torch.Tensor]] | None = None,
) -> tuple[ReconBatch, TrainingTarget]:
    """Stack slices and their masks into a ``ReconBatch`` and its ``TrainingTarget``.

    Under ``measured`` normalisation each slice's k-space and target are divided by the scale of its own
    undersampled input (``benchmark.data.normalization``), never by anything from the target. With
    ``hierarchies`` (one nested mask chain per slice, whose R = 32 level is the slice's mask) the target
    also carries the fully sampled k-space, scaled alike, for methods trained on the whole hierarchy.
    """
    items = [dataset[i] for i in indices]
    full, maps, target = (torch.stack([item[key] for item in items]) for key in ("kspace", "maps", "target"))
    policy = scale_policy(dataset.options.normalization, per="slice")
    acquisition = acquire(full, maps, torch.stack(masks), pattern, acceleration, policy)
    target = acquisition.normalised(target)
    if hierarchies is None:
        return acquisition.batch, TrainingTarget(target)
    levels = {r: torch.stack([h[r] for h in hierarchies]) for r in hierarchies[0]}
    return acquisition.batch, TrainingTarget(target, acquisition.normalised(full), levels)


def training_masks(
    config: TrainConfig, step: int, indices: list[int], patterns, shape, hierarchy: bool = False
) -> tuple[str, list, list | None]:
    """The step's pattern, each slice's R mask and, with ``hierarchy``, each slice's nested chain
    (same seed, so its R = 32 level is that mask)."""
    # The seed label "protocol" is kept as it was: renaming it would change every step's pattern draw.
    pattern = patterns[derive_seed(config.seed, "protocol", step) % len(patterns)]
    seeds = [derive_seed(config.seed, step, i) for i in indices]
    if not hierarchy:
        return pattern, [make_mask(pattern, shape, config.acceleration, seed) for seed in seeds], None
    chains = [make_mask_hierarchy(pattern, shape, seed) for seed in seeds]
    return pattern, [chain[config.acceleration] for chain in chains], chains


def epoch_batches(dataset: SliceDataset, config: TrainConfig, epoch: int, rank: int, world: int) -> list[list[int]]:
    """This rank's batches for one epoch, every slice of a global batch with the same coil count.

    The slice order is ``DistributedSampler``'s (``randperm`` seeded with seed + epoch); walking it, each
    slice joins the open global batch of its coil count, which is emitted when it holds
    ``batch_size x world`` slices (leftovers are dropped, like ``drop_last``), and rank ``r`` takes every
    ``world``-th slice of it from ``r``. With one coil count this is exactly ``DistributedSampler``'s
    split; the number of batches per epoch is the same on every rank and in every epoch.
    """
    generator = torch.Generator()
    generator.manual_seed(config.seed + epoch)
    global_size = config.batch_size * world
    open_batches: dict[int, list[int]] = {}
    batches = []
    for index in torch.randperm(len(dataset), generator=generator).tolist():
        batch = open_batches.setdefault(dataset.coil_counts[index], [])
        batch.append(index)
        if len(batch) == global_size:
            batches.append(batch[rank::world])
            open_batches[dataset.coil_counts[index]] = []
    return batches


class StepBatches(Dataset):
    """Item ``step``: this rank's batch of that step as ``parts`` equal micro-batches (``--accumulate``), each a
    ``(ReconBatch, TrainingTarget)`` on the CPU."""

    def __init__(self, dataset: SliceDataset, config: TrainConfig, patterns: tuple[str, ...], shape: tuple[int, int],
                 hierarchy: bool, rank: int, world: int, parts: int = 1) -> None:  # fmt: skip
        self.dataset, self.config, self.patterns, self.shape = dataset, config, patterns, shape
        self.hierarchy, self.rank, self.world, self.parts = hierarchy, rank, world, parts
        self._epochs: dict[int, list[list[int]]] = {}
        self.steps_per_epoch = len(self._epoch(0))

    def _epoch(self, epoch: int) -> list[list[int]]:
        if epoch not in self._epochs:
            self._epochs = {epoch: epoch_batches(self.dataset, self.config, epoch, self.rank, self.world)}
        return self._epochs[epoch]

    def __len__(self) -> int:
        return self.config.steps

    def indices(self, step: int) -> list[int]:
        epoch, position = divmod(step, self.steps_per_epoch)
        return self._epoch(epoch)[position]

    def __getitem__(self, step: int) -> list[tuple[ReconBatch, TrainingTarget]]:
        indices = self.indices(step)
        pattern, masks, chains = training_masks(self.config, step, indices, self.patterns, self.shape, self.hierarchy)
        size = len(indices) // self.parts
        spans = [slice(part * size, (part + 1) * size) for part in range(self.parts)]
        return [make_batch(self.dataset, indices[span], masks[span], pattern, self.config.acceleration,
                           chains and chains[span]) for span in spans]  # fmt: skip


def training_loader(batches: StepBatches, start: int, workers: int) -> DataLoader:
    """The batches of steps ``start`` to the last, in order, read ``workers`` processes ahead (0: in this one)."""
    ahead = {"prefetch_factor": 2, "persistent_workers": False} if workers else {}
    # Its own generator: a DataLoader draws its workers' base seed from the global RNG otherwise, and a resume
    # (a new loader) would then shift the stream that methods sampling during training read.
    return DataLoader(batches, batch_size=None, sampler=range(start, len(batches)), num_workers=workers,
                      collate_fn=_as_is, generator=torch.Generator(), **ahead)  # fmt: skip


def _as_is(item):
    return item


def validation_units(patterns: tuple[str, ...], count: int, rank: int, world: int) -> list[tuple[str, int]]:
    """This rank's share of the validation images: every ``world``-th (mask pattern, val slice) pair."""
    return [(pattern, index) for pattern in patterns for index in range(count)][rank::world]
