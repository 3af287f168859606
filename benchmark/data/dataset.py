"""A torch ``Dataset`` of benchmark slices from fastMRI-layout files (embedded or real).

Every file is validated when the dataset is made, so a bad file fails before any work starts (given the dataset
folder, through its cached volume index: ``benchmark.data.volume_index``); each item is read from disk on access
(nothing is held in memory between items).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import torch
from torch.utils.data import Dataset

from benchmark.data.fastmri import DEFAULT_OPTIONS, LoadOptions, read_slice
from benchmark.data.volume_index import volume_infos


class SliceDataset(Dataset):
    """Slices of ``files`` in file order; items are dicts of tensors and identifying fields. ``root``: the
    dataset folder holding ``files``, whose volume index spares a start from opening every file."""

    def __init__(
        self, files: Sequence[str | Path], options: LoadOptions = DEFAULT_OPTIONS, root: str | Path | None = None
    ) -> None:
        self.options = options
        self.volumes = volume_infos(files, root)
        self.index: list[tuple[Path, int]] = []
        #: Coil count of every item (batches must not mix coil counts).
        self.coil_counts: list[int] = []
        for info in self.volumes:
            self.index.extend((info.path, s) for s in range(info.num_slices))
            self.coil_counts.extend([info.num_coils] * info.num_slices)

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, item: int) -> dict:
        path, slice_index = self.index[item]
        sample = asdict(read_slice(path, slice_index, self.options))
        sample["scale"] = torch.tensor(sample["scale"], dtype=torch.float64)
        return sample
