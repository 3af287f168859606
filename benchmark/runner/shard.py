"""Sharded evaluation under ``torchrun``: the grid's units split across ranks, balanced by expected cost.

``torchrun --nproc_per_node N -m benchmark run ...`` (or several nodes through torchrun's rendezvous flags)
starts N copies of the run. Each joins a ``gloo`` process group (only for coordination: small objects and
barriers, so it works beside CUDA too), takes its share of the (method, mask, volume) units and writes each unit's
files atomically, exactly as a single process would; rank 0 alone prepares the run directory and merges the
tables once every rank is done. Because a unit's reconstruction depends only on the unit (its seed derives from
the run seed and the unit's names), the merged table equals a single-process run's except the runtime and memory
columns, and a run interrupted at any world size resumes with ``--resume`` at any other: resuming skips the units
whose files exist, whoever wrote them.

The balancing is longest-processing-time-first over ``slices x Method.relative_cost`` (a per-method guess of a
slice's cost, scoring included); it changes only how long ranks wait for one another, never a number.
"""

from __future__ import annotations

import heapq
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist

from benchmark.errors import BenchmarkError

#: Ranks wait for the slowest at the end of a run; a long evaluation must not hit gloo's 30-minute default.
BARRIER_TIMEOUT = timedelta(days=7)


@dataclass(frozen=True)
class Shard:
    """This process's place among the ranks torchrun started (rank 0 of 1 without torchrun)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def leader(self) -> bool:
        return self.rank == 0

    def device(self, device: torch.device) -> torch.device:
        """One GPU per local rank under torchrun (``cuda`` -> ``cuda:LOCAL_RANK``); the CPU is shared."""
        if device.type == "cuda" and self.world > 1 and device.index is None:
            return torch.device("cuda", self.local_rank)
        return device

    def barrier(self) -> None:
        if self.world > 1:
            dist.barrier()

    def leader_first(self, action: Callable[[], None]) -> None:
        """Run ``action`` on rank 0 only; an error there is raised on every rank (no rank waits forever)."""
        message = [None]
        if self.leader:
            try:
                action()
            except BenchmarkError as error:
                message = [str(error)]
        if self.world > 1:
            dist.broadcast_object_list(message, src=0)
        if message[0] is not None:
            raise BenchmarkError(message[0])


def current_shard() -> Shard:
    """The shard torchrun describes in the environment, joining its process group on first use."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return Shard()
    if not dist.is_initialized():
        dist.init_process_group("gloo", timeout=BARRIER_TIMEOUT)
    return Shard(dist.get_rank(), world, int(os.environ.get("LOCAL_RANK", "0")))


def assign(costs: Sequence[float], world: int) -> list[list[int]]:
    """Indices of ``costs`` per rank: each item, costliest first, goes to the least-loaded rank (ties: lowest
    item index first, lowest rank first), so every rank computes the same split."""
    order = sorted(range(len(costs)), key=lambda index: (-costs[index], index))
    loads = [(0.0, rank) for rank in range(world)]
    shares: list[list[int]] = [[] for _ in range(world)]
    for index in order:
        load, rank = heapq.heappop(loads)
        shares[rank].append(index)
        heapq.heappush(loads, (load + costs[index], rank))
    return [sorted(share) for share in shares]
