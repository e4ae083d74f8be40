"""The rank grid (labutils.parallel.grid): coordinates, groups, and real process groups."""

from __future__ import annotations

import itertools

import pytest

from labutils.parallel import demos, grid
from labutils.parallel.launch import RankError, launch

SHAPES = [grid.GridShape(*s) for s in itertools.product((1, 2, 3), repeat=4)]


@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_coords_and_rank_of_are_inverse(shape):
    for rank in range(shape.world_size):
        assert shape.rank_of(**shape.coords(rank)) == rank


def test_tp_varies_fastest_then_cp_pp_dp():
    shape = grid.GridShape(dp=2, pp=2, cp=1, tp=2)
    assert shape.coords(1) == {"dp": 0, "pp": 0, "cp": 0, "tp": 1}
    assert shape.coords(2) == {"dp": 0, "pp": 1, "cp": 0, "tp": 0}
    assert shape.coords(4) == {"dp": 1, "pp": 0, "cp": 0, "tp": 0}
    assert shape.groups("tp") == [[0, 1], [2, 3], [4, 5], [6, 7]]
    assert shape.groups("pp") == [[0, 2], [1, 3], [4, 6], [5, 7]]
    assert shape.groups("dp") == [[0, 4], [1, 5], [2, 6], [3, 7]]
    assert shape.groups("cp") == [[r] for r in range(8)]


@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_groups_of_each_axis_partition_the_ranks(shape):
    for axis in grid.AXES:
        groups = shape.groups(axis)
        assert sorted(r for g in groups for r in g) == list(range(shape.world_size))
        assert all(len(g) == getattr(shape, axis) for g in groups)
        for g in groups:  # members differ only along the axis
            others = [{a: v for a, v in shape.coords(r).items() if a != axis} for r in g]
            assert all(o == others[0] for o in others)


def test_bad_sizes_raise_clear_errors():
    with pytest.raises(ValueError, match="tp"):
        grid.GridShape(tp=0)
    with pytest.raises(TypeError, match="dp"):
        grid.GridShape(dp=1.5)
    with pytest.raises(ValueError, match=r"2 × 1 × 1 × 2 = 4 ranks, but the world size is 6"):
        grid.GridShape(dp=2, tp=2).check_world(6)
    with pytest.raises(ValueError, match="rank must be"):
        grid.GridShape(tp=2).coords(2)
    with pytest.raises(ValueError, match="axis must be"):
        grid.GridShape().groups("ep")


def test_process_groups_reduce_over_the_right_ranks():
    shape = grid.GridShape(dp=2, pp=1, cp=1, tp=2)
    out = launch(demos.grid_sums_worker, 4, 2, 1, 1, 2, timeout_s=60)
    for rank, sums in enumerate(out):
        for axis in grid.AXES:
            assert sums[axis] == sum(shape.group_of(axis, rank)), (rank, axis)


def test_grid_that_does_not_fit_the_world_fails_on_every_rank():
    with pytest.raises(RankError, match="world size is 4"):
        launch(demos.grid_sums_worker, 4, 2, 1, 1, 1, timeout_s=60)
