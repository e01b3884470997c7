"""Slicing and integer indexing of sharded tensors: every placement, forward and backward.

A tensor of 130 x 11 (uneven blocks on 3 and 4 devices; 130 rows over 4 devices are 33, 33,
32, 32) and a small 3 x 5 one (empty blocks on 4 devices) are indexed as ``Shard(0)``,
``Shard(1)``, ``Replicate`` and ``Partial`` tensors on 2, 3 and 4 virtual devices with slices
(negative bounds, steps, empty results), ints, int arrays, boolean masks, ``None`` and
``Ellipsis``. Values must equal numpy's, the gradient of the (replicated) leaf must equal the
1-device gradient, and where DESIGN.md says so the result keeps its placement without a
collective: a slice along the sharded axis takes the overlapping part of each block.
"""

import numpy as np
import pytest

import gt
from gt.sharding.collectives import count_collectives
from gt.sharding.mesh import get_mesh, use_mesh
from gt.sharding.placement import Partial, Replicate, Shard
from helpers import randn

pytestmark = pytest.mark.own_mesh   # every mesh chosen with use_mesh (tests/conftest.py)

N_DEVICES = (2, 3, 4)
# "_leaf": the laid-out tensor is itself the leaf requiring grad (otherwise a replicated leaf is
# laid out by a differentiable shard()/partial construction)
PLACEMENTS = ("shard0", "shard1", "replicate", "partial", "shard0_leaf", "shard1_leaf", "partial_leaf")
RTOL, ATOL = 1e-10, 1e-12

BIG = randn(130, 11, seed=1)
SMALL = randn(3, 5, seed=2)
ROWS = np.random.default_rng(3).standard_normal(130) > 0
COLS = np.array([True, False, False, True, True, False, True, False, False, False, True])
FULL_MASK = randn(130, 11, seed=4) > 0.5

S0, S1, S2 = Shard(0), Shard(1), Shard(2)
ANY = "any"  # no rule promised: gathering is allowed (values and gradients are still checked)

# (name, index, expected placement of the result of a Shard(0) input, of a Shard(1) input).
# Replicate inputs give Replicate and Partial inputs Partial, always without a collective.
BIG_INDICES = [
    ("head", np.s_[:64], S0, S1),
    ("rows_all_cols", np.s_[10:20, :], S0, S1),
    ("column", np.s_[:, 3], S0, ANY),
    ("int_row", 3, ANY, S0),
    ("negative_int_row", -1, ANY, S0),
    ("int_int", (3, -2), ANY, ANY),
    ("negative_bounds", np.s_[-20:-3, -5:], S0, S1),
    ("step", np.s_[1::3], S0, S1),
    ("step_bounds", np.s_[7:120:5, 1:10:4], S0, S1),
    ("step_cols", np.s_[:, 1::3], S0, S1),
    ("one_row_on_a_boundary", np.s_[32:34], S0, S1),
    ("stop_beyond_end", np.s_[100:1000], S0, S1),
    ("empty_rows", np.s_[50:50], S0, S1),
    ("empty_past_end", np.s_[200:], S0, S1),
    ("empty_cols", np.s_[:, 5:2], S0, S1),
    ("none_front", np.s_[None, 5:9], S1, S2),
    ("none_middle", np.s_[:, None, 2:4], S0, S2),
    ("ellipsis_int", np.s_[..., 2], S0, ANY),
    ("ellipsis_none", np.s_[..., None], S0, S1),
    ("none_ellipsis_slice", np.s_[None, ..., 1:], S1, S2),
    ("rows_then_int", np.s_[10:20, 4], S0, ANY),
    ("int_then_slice", np.s_[7, 2:9], ANY, S0),
    ("int_array", np.array([0, 129, 64, 64, 3]), ANY, S1),
    ("negative_list", [5, -1, 5, -130], ANY, S1),
    ("int_array_2d", np.array([[0, 1], [5, 129]]), ANY, S2),
    ("cols_array", np.s_[:, [0, 10, 3, 3]], S0, ANY),
    ("slice_cols_array", np.s_[2:9, [0, 10]], S0, ANY),
    ("two_arrays", (np.array([1, 2, 129]), np.array([0, 10, 3])), ANY, ANY),
    ("empty_array", np.array([], dtype=np.int64), ANY, S1),
    ("bool_rows", ROWS, ANY, S1),
    ("bool_cols", np.s_[:, COLS], S0, ANY),
    ("bool_full", FULL_MASK, ANY, ANY),
    ("bool_rows_slice_cols", (ROWS, np.s_[3:7]), ANY, S1),
]

SMALL_INDICES = [
    ("head", np.s_[:2], S0, S1),
    ("tail", np.s_[1:], S0, S1),
    ("last_row_only", np.s_[2:], S0, S1),
    ("int", 2, ANY, S0),
    ("negative_int", -1, ANY, S0),
    ("step", np.s_[::2], S0, S1),
    ("column", np.s_[:, 4], S0, ANY),
    ("cols", np.s_[:, 1:4], S0, S1),
    ("cols_step", np.s_[:, ::3], S0, S1),
    ("empty", np.s_[1:1], S0, S1),
    ("empty_cols", np.s_[:, 5:], S0, S1),
    ("array", np.array([2, 0, 2]), ANY, S1),
    ("none_ellipsis_int", np.s_[None, ..., 1], S1, ANY),
    ("bool_rows", np.array([True, False, True]), ANY, S1),
]

def partial_of(t, n, seed=0):
    """A ``Partial`` tensor with the value of ``t``: random shares over the mesh, summed by
    ``sum(0)`` over a sharded axis. Differentiable in ``t``."""
    rng = np.random.default_rng(seed + 99)
    rest = [gt.tensor(rng.standard_normal(t.shape), dtype=t.dtype).replicate() for _ in range(n - 1)]
    first = t
    for r in rest:
        first = first - r
    return gt.stack([first] + rest).shard(0).sum(0)


def _lay_out(leaf, placement, n):
    if placement == "shard0":
        return leaf.shard(0)
    if placement == "shard1":
        return leaf.shard(1)
    if placement == "partial":
        return partial_of(leaf, n)
    return leaf


def _index_and_grad(array, index, placement, n):
    """``x[index]`` of ``array`` laid out as ``placement`` on ``n`` devices: (result, its value,
    the collectives of the indexing alone, the gradient of the leaf for a fixed upstream)."""
    own_leaf = placement.endswith("_leaf")
    placement = placement.removesuffix("_leaf")
    with use_mesh(n):
        assert get_mesh().size == n
        leaf = gt.tensor(array, dtype=gt.float64, requires_grad=not own_leaf)
        x = _lay_out(leaf, placement, n)
        if own_leaf:  # the sharded (or partial) tensor is the leaf: its .grad is laid out alike
            x = leaf = x.detach().requires_grad_(True)
        if n > 1:
            want = {"shard0": S0, "shard1": S1, "replicate": Replicate(), "partial": Partial()}[placement]
            assert x.placement == want, (placement, x.placement)
        with count_collectives() as c:
            out = x[index]
        value = np.array(out.numpy(), copy=True)
        up = np.random.default_rng(5).standard_normal(value.shape)
        out.backward(gt.tensor(up))
        assert leaf.grad.placement == leaf.placement and leaf.grad.shape == leaf.shape
        return out.placement, value, dict(c), np.array(leaf.grad.numpy(), copy=True)


def _check(array, index, placement, n, expected_shard):
    ref = array[index]
    _, ref_value, _, ref_grad = _index_and_grad(array, index, "replicate", 1)
    np.testing.assert_allclose(ref_value, ref, rtol=0, atol=0)

    got, value, counts, grad = _index_and_grad(array, index, placement, n)
    assert value.shape == ref.shape
    np.testing.assert_allclose(value, ref, rtol=RTOL, atol=ATOL, err_msg="forward")
    np.testing.assert_allclose(grad, ref_grad, rtol=RTOL, atol=ATOL, err_msg="gradient")

    expected = {"replicate": Replicate(), "partial": Partial()}.get(placement.removesuffix("_leaf"), expected_shard)
    if expected is ANY:
        return
    assert got == expected, f"x[{index!r}] of a {placement} tensor is {got}, expected {expected}"
    assert counts == {}, f"x[{index!r}] of a {placement} tensor ran collectives {counts}"


def _params(indices, array):
    for name, index, on0, on1 in indices:
        for placement in PLACEMENTS:
            expected = on0 if placement.startswith("shard0") else on1
            for n in N_DEVICES:
                yield pytest.param(array, index, placement, n, expected, id=f"{name}-{placement}-{n}dev")


@pytest.mark.parametrize("array, index, placement, n, expected", list(_params(BIG_INDICES, BIG)))
def test_index_130x11(array, index, placement, n, expected):
    _check(array, index, placement, n, expected)


@pytest.mark.parametrize("array, index, placement, n, expected", list(_params(SMALL_INDICES, SMALL)))
def test_index_3x5_with_empty_blocks(array, index, placement, n, expected):
    _check(array, index, placement, n, expected)


def test_slice_keeps_only_the_overlapping_blocks():
    """x[:64] of 130 rows on 4 devices (blocks 33, 33, 32, 32): 33 rows stay on device 0, 31 on
    device 1, none on devices 2 and 3; nothing moves."""
    with use_mesh(4):
        x = gt.tensor(BIG)
        assert x._placed.sizes == [33, 33, 32, 32]
        with count_collectives() as c:
            head, middle, tail = x[:64], x[40:100:2], x[-1:]
        assert dict(c) == {}
        assert head.placement == S0 and head._placed.sizes == [33, 31, 0, 0]
        assert middle._placed.sizes == [0, 13, 16, 1]
        assert tail._placed.sizes == [0, 0, 0, 1]
        for t, ref in ((head, BIG[:64]), (middle, BIG[40:100:2]), (tail, BIG[-1:])):
            np.testing.assert_array_equal(t.numpy(), ref)


@pytest.mark.parametrize("n", N_DEVICES)
def test_slices_of_slices_and_their_combinations(n):
    """Unevenly cut results feed further slicing and ops; the gradient flows back through all."""
    def fn(x):
        a = x[:64][10::3]                # a slice of a slice
        b = x[64:][1:-1:2][: a.shape[0]]  # blocks that do not line up with a's
        c = x[[1, 5, 100]].sum(0)         # gathered rows
        return ((a * b + c) @ x[:11, :].T).tanh()[::2]

    def run():
        leaf = gt.tensor(BIG, dtype=gt.float64, requires_grad=True)
        out = fn(leaf.shard(0))
        value = np.array(out.numpy(), copy=True)
        out.backward(gt.tensor(np.random.default_rng(6).standard_normal(out.shape)))
        return value, leaf.grad.numpy().copy()

    with use_mesh(1):
        ref_value, ref_grad = run()
    with use_mesh(n):
        value, grad = run()
    np.testing.assert_allclose(value, ref_value, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(grad, ref_grad, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("n", N_DEVICES)
def test_index_with_sharded_tensors(n):
    """Indices and masks that are themselves sharded tensors (an int tensor made from data, a
    mask computed from the sharded tensor), on a sharded tensor."""
    idx = np.array([0, 129, 64, 64, 3, 77])

    def fn(x, index):
        rows = x[index]                   # an int tensor index
        picked = x[x[:, 0] > 0.0]         # a boolean mask computed on the sharded tensor
        masked = x[x > 1.0]               # a full boolean mask
        return rows.sum() * 2.0 + picked.sum() - masked.sum()

    def run():
        leaf = gt.tensor(BIG, dtype=gt.float64, requires_grad=True)
        index = gt.tensor(idx)
        if get_mesh().size > 1:
            assert index.placement == S0  # data: sharded by default
        out = fn(leaf.shard(0), index)
        out.backward()
        return out.item(), leaf.grad.numpy().copy()

    with use_mesh(1):
        ref_value, ref_grad = run()
    with use_mesh(n):
        value, grad = run()
    np.testing.assert_allclose(value, ref_value, rtol=RTOL)
    np.testing.assert_allclose(grad, ref_grad, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("n", N_DEVICES)
def test_out_of_range_index_raises_like_unsharded(n):
    with use_mesh(n):
        x = gt.tensor(BIG)
        with pytest.raises(IndexError):
            x[130]
        with pytest.raises(IndexError):
            x[:, 11]
        with pytest.raises(IndexError):
            x[np.array([0, 131])]


@pytest.mark.parametrize("index", [np.s_[::-2], np.s_[:, ::-1]], ids=["reverse", "reverse_cols"])
def test_negative_steps_are_refused_on_sharded_tensors_as_on_one_device(index):
    """torch refuses negative slice steps; a sharded tensor refuses them the same way, before any
    collective runs."""
    array = np.arange(15.0).reshape(3, 5)
    with pytest.raises(ValueError, match="step must be greater than zero"):
        gt.tensor(array)[index]
    with use_mesh(2):
        x = gt.tensor(array).shard(0)
        with count_collectives() as c, pytest.raises(ValueError, match="step must be greater than zero"):
            x[index]
        assert not c
