"""The coil-transfer subset: only the asked coil counts per split, the same bytes, a description that says so."""

import h5py
import pytest

from benchmark.data import EmbeddedSpec, LoadOptions, build_embedded, read_manifest, verify_dataset
from benchmark.data.manifest import dataset_description
from benchmark.data.subset import coil_subset
from benchmark.errors import BenchmarkError


def coils_by_split(root):
    counts = {}
    for entry in read_manifest(root)["entries"]:
        with h5py.File(root / entry.path) as file:
            counts.setdefault(entry.split, set()).add(file["kspace"].shape[1])
    return counts


#: Two subjects per split with 8 and 12 coils, small and coarse so it builds in seconds.
TWO_COUNTS = EmbeddedSpec(shape=(64, 64), pixel_mm=4.0, coil_counts=(8, 12),
                          splits=(("train", 2, 1), ("val", 2, 1), ("test", 2, 1)))  # fmt: skip


@pytest.fixture(scope="module")
def two_counts(tmp_path_factory):
    return build_embedded(tmp_path_factory.mktemp("two-counts") / "data", TWO_COUNTS)


def test_subset_keeps_only_the_asked_coil_counts_and_the_source_bytes(two_counts, tmp_path):
    assert coils_by_split(two_counts) == {"train": {8, 12}, "val": {8, 12}, "test": {8, 12}}
    subset = coil_subset(two_counts, tmp_path / "transfer", (8,), (12,))
    assert coils_by_split(subset) == {"train": {8}, "val": {8}, "test": {12}}
    kept = read_manifest(subset)["entries"]
    assert len(kept) == len(read_manifest(two_counts)["entries"]) // 2  # one subject of two per split
    verify_dataset(subset, check_hashes=True)  # every linked file still has the source's sha256
    source_entries = {entry.path: entry.sha256 for entry in read_manifest(two_counts)["entries"]}
    assert all(source_entries[e.path] == e.sha256 for e in kept)
    assert "test [12]" in dataset_description(subset, LoadOptions())["name"]


def test_a_rule_that_empties_a_split_is_refused_and_leaves_nothing(two_counts, tmp_path):
    with pytest.raises(BenchmarkError, match="no test files"):
        coil_subset(two_counts, tmp_path / "transfer", (8, 12), (99,))
    assert not (tmp_path / "transfer").exists()
