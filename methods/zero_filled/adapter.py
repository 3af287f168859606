"""Zero-filled, coil-combined reconstruction ``x = S^H F^H M y`` (no training, no parameters)."""

from __future__ import annotations

import torch

from benchmark.method import Method, ReconBatch


class ZeroFilled(Method):
    name = "zero_filled"
    configs = {"tiny": {}, "paper": {}}

    def reconstruct(self, batch: ReconBatch) -> torch.Tensor:
        return batch.operator().adjoint(batch.kspace)
