"""Property tests (hypothesis) on the two places that take whatever a user brings: the fastMRI ``.h5`` reader
(truncated files, ``kspace`` of any shape and dtype) and the mask generators (any shape, R and seed). Either the
result is right (a finite slice; a mask with exactly ``round(N / R)`` units, nested across the ladder) or the
project's own one-line error is raised, never another exception. Derandomized and bounded, so CI runs the same
few hundred examples every time, in seconds.
"""

from __future__ import annotations

import warnings

import h5py
import numpy as np
import pytest
import torch
from conftest import numpy_fft2c, raw_coil_images, write_raw_fastmri
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmark.data import LoadOptions, read_slice
from benchmark.errors import DataError, InputError
from benchmark.masks import HIERARCHY_ACCELERATIONS, PATTERNS, make_mask, make_mask_hierarchy

#: The same examples on every run and machine (no example database), bounded to stay fast in CI.
FAST = settings(max_examples=200, deadline=None, derandomize=True, database=None)
READ = LoadOptions(size=(16, 16), target="rss", normalization="none", espirit_calib_width=8)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz")


@pytest.fixture(scope="module")
def valid_file(folder):
    kspace = numpy_fft2c(raw_coil_images(2, 2, 32, 24))
    return write_raw_fastmri(folder / "file_brain_AXT2_200_6002.h5", kspace, recon=(16, 16))


def refused(path, slice_index: int, options: LoadOptions) -> DataError | None:
    """The reader's DataError for ``path`` (None when it reads); it must name the file, in one line, and the
    read must not warn (a warning is a second stderr line on the command line)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        try:
            sample = read_slice(path, slice_index, options)
        except DataError as error:
            assert str(error).startswith(f"{path}: ") and "\n" not in str(error), str(error)
            return error
    for name in ("kspace", "maps", "target"):
        assert torch.isfinite(getattr(sample, name)).all(), f"{name} of a read slice is not finite"
    assert sample.kspace.shape[-2:] == sample.maps.shape[-2:] == sample.target.shape == options.size
    return None


def test_the_untouched_file_reads(valid_file):
    assert refused(valid_file, 0, READ) is None


@FAST
@given(data=st.data())
def test_every_truncation_of_a_valid_file_is_refused(valid_file, folder, data):
    contents = valid_file.read_bytes()
    length = data.draw(st.integers(0, len(contents) - 1), label="bytes kept")
    truncated = folder / "truncated.h5"
    truncated.write_bytes(contents[:length])
    assert refused(truncated, 0, READ) is not None, f"a file cut to {length} of {len(contents)} bytes was read"


#: Complex types twice over and 4-D shapes two times in three, so about a third of the files are readable.
DTYPES = ["complex64", "complex128", "complex64", "complex128", "float32", "float64", "int16", "uint8", "bool", "S4"]
FOUR_D = st.tuples(st.integers(1, 2), st.integers(1, 3), st.integers(1, 8), st.integers(1, 8))
SHAPES = st.one_of(FOUR_D, FOUR_D, st.lists(st.integers(0, 4), max_size=5).map(tuple))


def kspace_of(shape: tuple[int, ...], dtype: str, fill: str) -> np.ndarray:
    values = np.random.default_rng(0).normal(size=(2, *shape))
    base = fill.removesuffix("+nan")
    array = {"zeros": 0 * values[0], "ones": 1 + 0 * values[0], "noise": values[0] + 1j * values[1]}[base]
    array = array.astype(dtype) if dtype.startswith("complex") or dtype == "S4" else array.real.astype(dtype)
    if base != fill and array.size and array.dtype.kind in "fc":
        array.flat[-1] = np.nan
    return array


@settings(FAST, max_examples=300)
@given(
    shape=SHAPES,
    dtype=st.sampled_from(DTYPES),
    fill=st.sampled_from(["noise", "ones", "zeros", "noise+nan"]),
    margin=st.tuples(st.integers(-1, 3), st.integers(-1, 3)),
    target=st.sampled_from(["rss", "sense"]),
)
def test_kspace_of_any_shape_and_dtype_reads_or_is_refused(folder, shape, dtype, fill, margin, target):
    kspace = kspace_of(shape, dtype, fill)
    path = folder / "any.h5"
    with h5py.File(path, "w") as handle:
        handle.create_dataset("kspace", data=kspace)
    # The benchmark size: the image less ``margin`` (a margin of -1 asks for a crop larger than the image).
    size = tuple(max(1, n - m) for n, m in zip((*(8, 8), *shape)[-2:], margin, strict=True))
    error = refused(path, 0, LoadOptions(size=size, target=target, normalization="none", espirit_calib_width=6))
    unusable = kspace.ndim != 4 or 0 in kspace.shape or kspace.dtype.kind != "c"
    unusable = unusable or not np.isfinite(kspace[0]).all() or not kspace[0].any()
    unusable = unusable or size[0] > kspace.shape[-2] or size[1] > kspace.shape[-1]
    assert error is not None or not unusable, f"read {kspace.dtype} k-space of shape {kspace.shape} ({fill})"


def sampled_units(pattern: str, mask: torch.Tensor) -> int:
    """Lines for the Cartesian patterns (which must keep whole lines), points otherwise."""
    if pattern.startswith("cartesian"):
        lines = mask.any(dim=0 if pattern == "cartesian_y" else 1)
        whole = lines.expand_as(mask) if pattern == "cartesian_y" else lines[:, None].expand_as(mask)
        assert torch.equal(mask, whole), f"{pattern} must keep whole lines"
        return int(lines.sum())
    return int(mask.sum())


def total_units(pattern: str, shape: tuple[int, int]) -> int:
    return {"cartesian_y": shape[1], "cartesian_x": shape[0]}.get(pattern, shape[0] * shape[1])


PATTERN_NAMES = st.sampled_from(sorted(PATTERNS))
MASK_SHAPES = st.tuples(st.integers(2, 96), st.integers(2, 96))
SEEDS = st.integers(0, 2**64)


@FAST
@given(pattern=PATTERN_NAMES, shape=MASK_SHAPES, acceleration=st.integers(1, 48), seed=SEEDS)
def test_any_mask_has_its_exact_count_and_holds_every_coarser_ladder_level_with_samples(
    pattern, shape, acceleration, seed
):
    total = total_units(pattern, shape)
    count = round(total / acceleration)
    if count < 1:
        with pytest.raises(InputError, match="leaves no samples") as info:
            make_mask(pattern, shape, acceleration, seed)
        assert "\n" not in str(info.value)
        return
    mask = make_mask(pattern, shape, acceleration, seed)
    assert mask.dtype == torch.bool and tuple(mask.shape) == shape
    assert sampled_units(pattern, mask) == count
    for coarser in (r for r in HIERARCHY_ACCELERATIONS if r > acceleration and round(total / r) >= 1):
        inner = make_mask(pattern, shape, coarser, seed)
        assert torch.all(mask[inner]), f"mask(R={coarser}) is not inside mask(R={acceleration})"


@FAST
@given(pattern=PATTERN_NAMES, shape=MASK_SHAPES, seed=SEEDS)
def test_the_ladder_is_nested_exact_and_equals_make_mask(pattern, shape, seed):
    total = total_units(pattern, shape)
    if round(total / max(HIERARCHY_ACCELERATIONS)) < 1:
        with pytest.raises(InputError, match="leaves no samples"):
            make_mask_hierarchy(pattern, shape, seed)
        return
    ladder = make_mask_hierarchy(pattern, shape, seed)
    assert list(ladder) == list(HIERARCHY_ACCELERATIONS)
    for coarse, fine in zip(HIERARCHY_ACCELERATIONS, HIERARCHY_ACCELERATIONS[1:], strict=False):
        assert torch.all(ladder[fine][ladder[coarse]]), f"mask(R={coarse}) is not inside mask(R={fine})"
    for acceleration, mask in ladder.items():
        assert sampled_units(pattern, mask) == round(total / acceleration)
        assert torch.equal(make_mask(pattern, shape, acceleration, seed), mask)


BAD_ARGUMENTS = st.one_of(
    st.tuples(st.just("acceleration"), st.just((16, 16)), st.floats(-8, 0.999), st.just(0)),
    st.tuples(st.just("shape"), st.lists(st.integers(-2, 6), max_size=3).map(tuple), st.just(2), st.just(0)),
    st.tuples(st.just("seed"), st.just((16, 16)), st.just(2), st.one_of(st.integers(max_value=-1), st.just(True))),
)


@FAST
@given(pattern=PATTERN_NAMES, arguments=BAD_ARGUMENTS)
def test_bad_mask_arguments_give_one_clean_line(pattern, arguments):
    what, shape, acceleration, seed = arguments
    if what == "shape" and len(shape) == 2 and min(shape) >= 2:
        return  # a valid shape drawn by chance
    with pytest.raises(InputError, match=what) as info:
        make_mask(pattern, shape, acceleration, seed)
    assert "\n" not in str(info.value)
