"""The coil-transfer subset: only the asked coil counts per split, the same bytes, a description that says so."""

import h5py
import pytest

from benchmark.data import LoadOptions, read_manifest, verify_dataset
from benchmark.data.manifest import dataset_description
from benchmark.data.subset import coil_subset
from benchmark.errors import BenchmarkError


def coils_by_split(root):
    counts = {}
    for entry in read_manifest(root)["entries"]:
        with h5py.File(root / entry.path) as file:
            counts.setdefault(entry.split, set()).add(file["kspace"].shape[1])
    return counts


def test_subset_keeps_the_asked_coil_counts_and_the_source_bytes(ci_embedded, tmp_path):
    source = coils_by_split(ci_embedded)
    train_counts, test_count = tuple(sorted(source["train"] | source["val"])), max(source["test"])
    subset = coil_subset(ci_embedded, tmp_path / "transfer", train_counts, (test_count,))
    kept = coils_by_split(subset)
    assert kept["test"] == {test_count} and kept["train"] <= set(train_counts)
    verify_dataset(subset, check_hashes=True)  # every linked file still has the source's sha256
    source_entries = {entry.path: entry.sha256 for entry in read_manifest(ci_embedded)["entries"]}
    assert all(source_entries[e.path] == e.sha256 for e in read_manifest(subset)["entries"])
    assert f"test [{test_count}]" in dataset_description(subset, LoadOptions())["name"]


def test_a_rule_that_empties_a_split_is_refused_and_leaves_nothing(ci_embedded, tmp_path):
    with pytest.raises(BenchmarkError, match="no test files"):
        coil_subset(ci_embedded, tmp_path / "transfer", (8, 12), (99,))
    assert not (tmp_path / "transfer").exists()
