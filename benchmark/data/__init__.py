"""Data: the fastMRI-layout reader/writer, the embedded offline dataset, manifests, the slice dataset."""

from benchmark.data.dataset import SliceDataset
from benchmark.data.embedded import EmbeddedSpec, build_embedded, default_data_root
from benchmark.data.fastmri import LoadOptions, MRSlice, open_fastmri, read_slice, write_volume
from benchmark.data.manifest import dataset_files, read_manifest, verify_dataset

__all__ = [
    "EmbeddedSpec",
    "LoadOptions",
    "MRSlice",
    "SliceDataset",
    "build_embedded",
    "dataset_files",
    "default_data_root",
    "open_fastmri",
    "read_manifest",
    "read_slice",
    "verify_dataset",
    "write_volume",
]
