"""Masks: exact acceleration, nesting, seeding, RNG hygiene, and each pattern's geometry."""

import random

import numpy as np
import pytest
import torch

from benchmark.errors import InputError
from benchmark.masks import HIERARCHY_ACCELERATIONS, PATTERNS, make_mask, make_mask_hierarchy, mask_seed

SHAPES = [(256, 256), (320, 184)]


def sampled_units(pattern: str, mask: torch.Tensor) -> int:
    """Count lines for Cartesian patterns (checking they are whole lines), points otherwise."""
    if pattern == "cartesian_y":
        columns = mask.any(dim=0)
        assert torch.equal(mask, columns.expand_as(mask)), "cartesian_y must keep whole columns"
        return int(columns.sum())
    if pattern == "cartesian_x":
        rows = mask.any(dim=1)
        assert torch.equal(mask, rows[:, None].expand_as(mask)), "cartesian_x must keep whole rows"
        return int(rows.sum())
    return int(mask.sum())


def total_units(pattern: str, shape) -> int:
    return {"cartesian_y": shape[1], "cartesian_x": shape[0]}.get(pattern, shape[0] * shape[1])


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("pattern", sorted(PATTERNS))
@pytest.mark.parametrize("acceleration", HIERARCHY_ACCELERATIONS)
def test_every_pattern_hits_its_acceleration_exactly(pattern, shape, acceleration):
    mask = make_mask(pattern, shape, acceleration, seed=11)
    assert mask.dtype == torch.bool and tuple(mask.shape) == shape
    assert sampled_units(pattern, mask) == round(total_units(pattern, shape) / acceleration)


@pytest.mark.parametrize("acceleration", [3, 6, 12])
@pytest.mark.parametrize("pattern", sorted(PATTERNS))
def test_off_ladder_accelerations_are_exact_too(pattern, acceleration):
    mask = make_mask(pattern, (128, 96), acceleration, seed=5)
    assert sampled_units(pattern, mask) == round(total_units(pattern, (128, 96)) / acceleration)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("pattern", sorted(PATTERNS))
def test_hierarchy_is_nested_and_equals_make_mask(pattern, shape):
    hierarchy = make_mask_hierarchy(pattern, shape, seed=3)
    assert list(hierarchy) == [32, 16, 8, 4, 2]
    for coarse, fine in zip(HIERARCHY_ACCELERATIONS, HIERARCHY_ACCELERATIONS[1:], strict=False):
        assert torch.all(hierarchy[fine][hierarchy[coarse]]), f"mask({coarse}) not inside mask({fine})"
        assert hierarchy[fine].sum() > hierarchy[coarse].sum()
    for acceleration, mask in hierarchy.items():
        assert torch.equal(make_mask(pattern, shape, acceleration, seed=3), mask)


@pytest.mark.parametrize("pattern", sorted(PATTERNS))
def test_same_seed_same_mask_different_seed_different_mask(pattern):
    first = make_mask(pattern, (256, 256), 32, seed=1)
    assert torch.equal(first, make_mask(pattern, (256, 256), 32, seed=1))
    assert not torch.equal(first, make_mask(pattern, (256, 256), 32, seed=2))


@pytest.mark.parametrize("pattern", sorted(PATTERNS))
def test_global_rng_states_are_left_untouched(pattern):
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)
    before = (random.getstate(), np.random.get_state()[1].copy(), torch.get_rng_state().clone())
    make_mask_hierarchy(pattern, (64, 64), seed=9)
    after = (random.getstate(), np.random.get_state()[1], torch.get_rng_state())
    assert before[0] == after[0]
    assert np.array_equal(before[1], after[1])
    assert torch.equal(before[2], after[2])


@pytest.mark.parametrize("pattern", ["cartesian_x", "cartesian_y"])
def test_cartesian_centre_is_fully_sampled_and_counts_toward_r(pattern):
    mask = make_mask(pattern, (256, 256), 32, seed=4)
    lines = mask.any(dim=0) if pattern == "cartesian_y" else mask.any(dim=1)
    # 8 lines in total at R=32 of 256; round(0.32 * 8) = 3 of them are the contiguous centre 127..129.
    assert lines[127:130].all()
    assert int(lines.sum()) == 8


def test_cartesian_outer_lines_are_equispaced():
    lines = make_mask("cartesian_y", (256, 256), 8, seed=4).any(dim=0)
    centre = set(range(128 - 5, 128 + 5))  # round(0.32 * 32) = 10 centre lines
    outer = np.array(sorted(set(torch.nonzero(lines).flatten().tolist()) - centre))
    gaps = np.diff(outer)
    # 22 outer lines over 256: spacing 256 / 22 ≈ 11.6; a gap may straddle the centre block.
    assert np.median(gaps) == pytest.approx(256 / 22, abs=1)


def centre_run(lines: list[int], num_lines: int) -> tuple[int, int]:
    """First and last index of the contiguous run of sampled lines that contains the DC line ``N // 2``."""
    sampled = set(lines)
    assert num_lines // 2 in sampled, "the DC line must be sampled"
    first = last = num_lines // 2
    while first - 1 in sampled:
        first -= 1
    while last + 1 in sampled:
        last += 1
    return first, last


@pytest.mark.parametrize("shape", [(256, 256), (320, 320), (256, 320)])
@pytest.mark.parametrize("pattern", ["cartesian_x", "cartesian_y"])
def test_every_cartesian_level_is_equispaced(pattern, shape):
    """Each ladder level, not only the coarsest, has outer gaps within 0.5..1.5 of its ideal spacing.

    The ideal spacing is ``(N - c) / (n - c)`` with ``c`` the length of the measured centre run (the
    contiguous sampled lines around ``N // 2``). Ignored: gaps of 1 and the two gaps touching the centre run.
    """
    num_lines = shape[1] if pattern == "cartesian_y" else shape[0]
    failures = []
    for seed in range(10):
        hierarchy = make_mask_hierarchy(pattern, shape, seed)
        finer_lines = None
        for acceleration in reversed(HIERARCHY_ACCELERATIONS):  # finest first, so each level checks nesting
            mask = hierarchy[acceleration]
            is_sampled = mask.any(dim=0) if pattern == "cartesian_y" else mask.any(dim=1)
            lines = torch.nonzero(is_sampled).flatten().tolist()
            count = round(num_lines / acceleration)
            assert len(lines) == count, f"seed {seed}, R={acceleration}: {len(lines)} lines, not {count}"
            assert finer_lines is None or set(lines) <= finer_lines, f"seed {seed}: R={acceleration} not nested"
            finer_lines = set(lines)
            first, last = centre_run(lines, num_lines)
            centre = last - first + 1
            assert centre >= max(1, round(0.32 * count)), f"seed {seed}, R={acceleration}: centre of {centre}"
            ideal = (num_lines - centre) / (count - centre)
            ratios = [
                (right - left) / ideal
                for left, right in zip(lines, lines[1:], strict=False)
                if right - left > 1 and right != first and left != last
            ]
            if ratios and (min(ratios) < 0.5 or max(ratios) > 1.5):
                failures.append(f"seed {seed} R={acceleration}: gap/ideal {min(ratios):.2f}..{max(ratios):.2f}")
    assert not failures, f"{len(failures)} of 50 levels not equispaced: " + "; ".join(failures)


def test_gaussian_density_falls_off_from_the_centre():
    mask = make_mask("gaussian_2d", (256, 256), 8, seed=0).double()
    y, x = torch.meshgrid(torch.arange(256) - 128, torch.arange(256) - 128, indexing="ij")
    radius = torch.sqrt(x.double() ** 2 + y.double() ** 2)
    inner, outer = mask[radius < 20].mean(), mask[(radius > 60) & (radius < 80)].mean()
    assert inner > 3 * outer > 0


def test_radial_mask_passes_through_the_centre_with_spokes():
    mask = make_mask("radial", (256, 256), 32, seed=0)
    assert mask[128, 128]
    # A spoke is a full diameter: points on opposite sides of the centre, far out.
    angles = np.angle(
        np.array(
            [
                complex(c - 128, r - 128)
                for r, c in torch.nonzero(mask).tolist()
                if (r - 128) ** 2 + (c - 128) ** 2 > 90**2
            ]
        )
    )
    folded = np.mod(angles, np.pi)
    histogram, _ = np.histogram(folded, bins=180, range=(0, np.pi))
    assert (histogram > 20).sum() >= 5  # at least five distinct spoke directions


def test_mask_seed_depends_on_file_name_and_slice_not_directory():
    assert mask_seed("/a/b/file_brain_1.h5", 3) == mask_seed("/other/file_brain_1.h5", 3)
    assert mask_seed("file_brain_1.h5", 3) != mask_seed("file_brain_1.h5", 4)
    assert mask_seed("file_brain_1.h5", 3) != mask_seed("file_brain_2.h5", 3)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (("radial", (64, 64), 0, 1), "acceleration"),
        (("radial", (64,), 4, 1), "shape"),
        (("radial", (64, 64), 4, -1), "seed"),
        (("cartesian_y", (64, 64), 200, 1), "no samples"),
    ],
)
def test_bad_arguments_raise_a_clear_error(arguments, message):
    with pytest.raises(InputError, match=message):
        make_mask(*arguments)


def test_unknown_pattern_names_the_closest_match():
    with pytest.raises(InputError, match="did you mean 'radial'"):
        make_mask("radail", (64, 64), 4, 1)
