"""The cached volume index: a start takes unchanged files from it, and never a changed file."""

from __future__ import annotations

import json
import os

import pytest
from conftest import numpy_fft2c, raw_coil_images, write_raw_fastmri

import benchmark.data.volume_index as volume_index
from benchmark.data.dataset import SliceDataset
from benchmark.data.fastmri import LoadOptions
from benchmark.data.manifest import entry_for, write_manifest
from benchmark.data.ownership import check_replaceable
from benchmark.errors import BenchmarkError, DataError

OPTIONS = LoadOptions(size=(32, 32), target="rss")


@pytest.fixture
def dataset_folder(tmp_path):
    """Two raw files of 2 and 3 slices, 4 and 2 coils, in a split folder as a dataset holds them."""
    split = tmp_path / "train"
    split.mkdir()
    first = write_raw_fastmri(split / "a.h5", numpy_fft2c(raw_coil_images(2, 4, 64, 40)), recon=(32, 32))
    second = write_raw_fastmri(split / "b.h5", numpy_fft2c(raw_coil_images(3, 2, 64, 40, seed=1)), recon=(32, 32))
    return tmp_path, [first, second]


def _refuse_opening(monkeypatch):
    def refuse(path):
        raise AssertionError(f"{path} was opened although the index holds it unchanged")

    monkeypatch.setattr(volume_index, "open_fastmri", refuse)


def test_an_indexed_start_opens_no_file_and_indexes_the_same_slices(dataset_folder, monkeypatch):
    root, files = dataset_folder
    validated = SliceDataset(files, OPTIONS)
    SliceDataset(files, OPTIONS, root=root)
    written = (root / volume_index.VOLUME_INDEX_NAME).stat().st_mtime_ns
    _refuse_opening(monkeypatch)
    indexed = SliceDataset(files, OPTIONS, root=root)
    assert (root / volume_index.VOLUME_INDEX_NAME).stat().st_mtime_ns == written  # nothing changed: not rewritten
    assert indexed.index == validated.index == [(files[0], 0), (files[0], 1)] + [(files[1], s) for s in range(3)]
    assert indexed.coil_counts == [4, 4, 2, 2, 2]
    assert indexed.volumes == validated.volumes
    assert indexed[3]["kspace"].shape == (2, 32, 32)


def test_a_file_changed_after_indexing_is_validated_again(dataset_folder):
    root, files = dataset_folder
    SliceDataset(files, OPTIONS, root=root)
    files[1].write_bytes(files[1].read_bytes()[:2048])  # truncated in place: size and mtime change
    with pytest.raises(DataError, match="b.h5"):
        SliceDataset(files, OPTIONS, root=root)


def test_a_file_replaced_by_another_of_the_same_size_and_mtime_is_validated_again(dataset_folder, monkeypatch):
    root, files = dataset_folder
    SliceDataset(files, OPTIONS, root=root)
    stamp = files[0].stat()
    other = write_raw_fastmri(root / "other.h5", numpy_fft2c(raw_coil_images(2, 4, 64, 40, seed=2)), recon=(32, 32))
    assert other.stat().st_size == stamp.st_size  # what size + mtime alone could not tell apart
    os.replace(other, files[0])
    os.utime(files[0], ns=(stamp.st_atime_ns, stamp.st_mtime_ns))  # as `cp -p` or `rsync -a` keep it
    opened = []
    original = volume_index.open_fastmri
    monkeypatch.setattr(volume_index, "open_fastmri", lambda path: opened.append(path) or original(path))
    SliceDataset(files, OPTIONS, root=root)
    assert opened == [files[0]]


@pytest.mark.parametrize(
    "payload",
    [
        lambda version, stamp: [1, 2],
        lambda version, stamp: {"version": version, "volumes": [3]},
        lambda version, stamp: {"version": version, "volumes": {"train/a.h5": {"stamp": stamp}, "train/b.h5": 7}},
    ],
    ids=["not-a-mapping", "volumes-not-a-mapping", "records-incomplete-or-not-mappings"],
)
def test_an_index_of_another_shape_counts_as_empty(dataset_folder, payload):
    root, files = dataset_folder
    index = root / volume_index.VOLUME_INDEX_NAME
    stamp = volume_index._stamp(files[0])  # a matching stamp, so only the record's shape can refuse it
    index.write_text(json.dumps(payload(volume_index.VOLUME_INDEX_VERSION, stamp)))
    assert SliceDataset(files, OPTIONS, root=root).coil_counts == [4, 4, 2, 2, 2]
    assert set(json.loads(index.read_text())["volumes"]) == {"train/a.h5", "train/b.h5"}  # rewritten whole


def test_entries_of_deleted_files_leave_the_index(dataset_folder):
    root, files = dataset_folder
    SliceDataset(files, OPTIONS, root=root)
    files[1].unlink()
    SliceDataset(files[:1], OPTIONS, root=root)
    index = json.loads((root / volume_index.VOLUME_INDEX_NAME).read_text())
    assert set(index["volumes"]) == {"train/a.h5"}


def test_an_unwritable_index_does_not_stop_a_start(dataset_folder):
    root, files = dataset_folder
    (root / volume_index.VOLUME_INDEX_NAME).mkdir()  # neither readable nor replaceable as a file, even by root
    assert len(SliceDataset(files, OPTIONS, root=root)) == 5
    assert not [path for path in root.iterdir() if path.name.endswith(".tmp")]


def test_a_dataset_holding_its_index_stays_replaceable(dataset_folder):
    root, files = dataset_folder
    entries = [entry_for(root, path, "train", "T2", "raw0001", 2) for path in files]
    write_manifest(root, entries, {"builder": "embedded"})
    SliceDataset(files, OPTIONS, root=root)
    check_replaceable(root, "embedded")  # `prepare --force` may replace it: the index is the suite's own
    (root / "notes.txt").write_text("a user's file")
    with pytest.raises(BenchmarkError, match="notes.txt"):
        check_replaceable(root, "embedded")
