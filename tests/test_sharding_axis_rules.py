"""Ops along the sharded axis itself (gt/tensor/axis_rules.py), on 2, 3 and 4 virtual devices
with uneven and empty blocks: max/min over the axis with a gradient (ties, NaN), argmax and
``max(dim)``, ``cat`` along the axis, integer-array lookups (``x[idx]``, ``index_select``,
``gather``), float16 sums, and a ``Partial`` value times a tensor holding inf. Each gives the
one-device values and gradients bit for bit (the order of every sum is unchanged), and moves
only small results between devices: no collective carries as many elements as the input (a
gather of the whole tensor would). The tests at the end run on whatever mesh the process has
(GT_DEVICES=4 in CI's sharded passes) and compare with torch.
"""

import numpy as np
import pytest

import gt
from gt.sharding import Partial, Shard, count_collectives, get_mesh, use_mesh
from helpers import assert_same_bits, collective_moves

MESHES = (2, 3, 4)


def _data(seed, shape=(7, 3), ties=False, nan=False):
    rng = np.random.default_rng(seed)
    a = rng.integers(-2, 3, shape).astype(np.float64) if ties else rng.standard_normal(shape)
    if nan:
        a[2, 1] = a[5, 0] = np.nan
    return a


def _run(fn, arr, n, dtype="float64"):
    """``fn(x)`` with x cut along axis 0 over ``n`` devices (n=1: whole): the value, x's gradient
    under a fixed upstream gradient, the collectives (one entry per call) and the output placement."""
    with use_mesh(n):
        x = gt.tensor(arr.astype(dtype))
        x = (x.shard(0) if n > 1 else x).requires_grad_(True)
        with collective_moves() as c, np.errstate(all="ignore"):
            y = fn(x)
            if isinstance(y, tuple):
                y, extra = y[0], [np.asarray(t.numpy()) for t in y[1:]]
            else:
                extra = []
            up = gt.tensor(np.random.default_rng(5).standard_normal(y.shape).astype(dtype))
            (y * up).sum().backward()
        if n > 1:
            assert x.grad.placement == Shard(0)
        return [np.asarray(y.numpy()), np.asarray(x.grad.numpy())] + extra, c, y.placement


def _small_moves(calls, bound):
    """No collective carried ``bound`` elements (the input's size: a gather of it) or more."""
    assert all(m < bound for _, m in calls), calls


def _names(calls):
    return {name for name, _ in calls}


EXTREMA = {
    "amax0": lambda x: x.amax(0),
    "amin0": lambda x: x.amin(0, keepdim=True),
    "amax01": lambda x: x.amax((0, 1)),
    "max_all": lambda x: x.max(),
    "min_all": lambda x: x.min(),
    "max_axis_numpy": lambda x: x.max(0),
    "norm_inf": lambda x: x.norm(float("inf"), dim=0),
    "norm_minus_inf": lambda x: x.norm(float("-inf"), dim=0),
    "max_dim": lambda x: tuple(x.max(dim=0)),
    "min_dim_keep": lambda x: tuple(x.min(0, keepdim=True)),
}


@pytest.mark.own_mesh
@pytest.mark.parametrize("n", MESHES)
@pytest.mark.parametrize("kind", ["plain", "ties", "nan"])
@pytest.mark.parametrize("name", sorted(EXTREMA))
def test_max_min_over_sharded_axis_with_grad_is_local_and_exact(name, kind, n):
    arr = _data(1, ties=kind == "ties", nan=kind == "nan")
    one, _, _ = _run(EXTREMA[name], arr, 1)
    many, counts, _ = _run(EXTREMA[name], arr, n)
    assert_same_bits(one, many)
    _small_moves(counts, arr.size)


@pytest.mark.own_mesh
@pytest.mark.parametrize("rows", [1, 2, 5, 9])
@pytest.mark.parametrize("op", ["argmax", "argmin"])
def test_argmax_along_sharded_axis_takes_the_first_winner(op, rows):
    arr = np.random.default_rng(rows).integers(0, 3, (rows, 4)).astype(np.float32)
    arr[rows // 2, 1] = np.nan
    want = getattr(gt.tensor(arr), op)(0).numpy()
    with use_mesh(4), count_collectives() as counts:
        got = getattr(gt.tensor(arr).shard(0), op)(0, keepdim=True).numpy()
    np.testing.assert_array_equal(got[0], want)
    assert counts["all_gather"] == 2 and counts.elements_moved["all_gather"] <= 2 * 4 * 4   # n candidates each


CATS = {
    "x_2x": lambda x: gt.cat([x, x * 2], 0),
    "three": lambda x: gt.cat([x[1:], x, x[:2] - 1], 0),
    "with_replicated": lambda x: gt.cat([x, gt.ones(2, 3, dtype=x.dtype)], 0) * 3,
    "replicated_first": lambda x: gt.cat([gt.zeros(3, 3, dtype=x.dtype), x], dim=0).exp(),
    "alone": lambda x: gt.cat([x], 0),
}


@pytest.mark.own_mesh
@pytest.mark.parametrize("n", MESHES)
@pytest.mark.parametrize("name", sorted(CATS))
def test_cat_along_sharded_axis_stays_sharded(name, n):
    arr = _data(2)
    one, _, _ = _run(CATS[name], arr, 1)
    many, counts, placement = _run(CATS[name], arr, n)
    assert_same_bits(one, many)
    assert placement == Shard(0)
    assert _names(counts) <= {"all_to_all"}
    _small_moves(counts, arr.size)


@pytest.mark.own_mesh
def test_cat_keeps_each_devices_share_and_moves_only_the_rest():
    """Device d holds the sum of its blocks of the inputs; a block already in its device's
    range of the output stays put (a view, not a copy)."""
    arr = np.arange(24.0).reshape(8, 3)
    with use_mesh(4):
        x = gt.tensor(arr).shard(0)
        with count_collectives() as counts:
            y = gt.cat([x, x + 100], 0)
            alone = gt.cat([x], 0)
        assert y._placed.sizes == [4, 4, 4, 4] and alone._placed.sizes == [2, 2, 2, 2]
        np.testing.assert_array_equal(y.numpy(), np.concatenate([arr, arr + 100]))
    # x: rows 2-3 to device 0, rows 4-7 to device 1; x + 100: rows 0-3 to device 2, rows 4-5 to device 3
    assert counts["all_to_all"] == 2 and counts.elements_moved["all_to_all"] == 12 * 3


INDEXING = {
    "getitem": lambda x: x[gt.tensor([10, 0, -1])],
    "getitem_cols": lambda x: x[gt.tensor([[3], [11]]), 1:],
    "index_select": lambda x: x.index_select(0, gt.tensor([9, 2])),
    "gather": lambda x: x.gather(0, gt.tensor([[1, 11, 4], [0, 0, 6]])),
    "take_along_dim": lambda x: x.take_along_dim(gt.tensor([[5, 2, 7]]), 0),
}


@pytest.mark.own_mesh
@pytest.mark.parametrize("n", MESHES)
@pytest.mark.parametrize("name", sorted(INDEXING))
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_index_arrays_on_sharded_axis_look_up_per_device(name, n, dtype):
    arr = _data(3, shape=(16, 3))
    arr[0, 0], arr[10, 2] = -0.0, 0.0        # the sign of a looked-up zero survives the sum
    one, _, _ = _run(INDEXING[name], arr, 1, dtype)
    many, counts, _ = _run(INDEXING[name], arr, n, dtype)
    assert_same_bits(one, many)
    assert [name for name, _ in counts].count("all_reduce") == 1   # the lookups summed once
    _small_moves(counts, arr.size)


@pytest.mark.own_mesh
def test_index_array_longer_than_the_axis_over_the_mesh_gathers():
    """A lookup that would move more than the tensor (n times the output) gathers it instead."""
    arr = _data(4, shape=(6, 2))
    idx = np.arange(6)[::-1].copy()
    with use_mesh(4):
        x = gt.tensor(arr).shard(0)
        with collective_moves() as counts:
            y = x[gt.tensor(idx)]
    np.testing.assert_array_equal(y.numpy(), arr[idx])
    assert ("all_gather", arr.size) in counts and "all_reduce" not in _names(counts)


@pytest.mark.own_mesh
@pytest.mark.parametrize("op", ["sum", "mean"])
def test_float16_sum_over_sharded_axis_rounds_once(op):
    torch = pytest.importorskip("torch")
    arr = np.random.default_rng(6).uniform(0, 4, (64, 5)).astype(np.float16)
    want = getattr(torch.tensor(arr), op)(0).numpy()
    for n in (1, 4):
        with use_mesh(n):
            x = gt.tensor(arr)
            got = getattr(x.shard(0) if n > 1 else x, op)(0).numpy()
        assert got.dtype == np.float16
        np.testing.assert_array_equal(got, want)


@pytest.mark.own_mesh
@pytest.mark.parametrize("op", ["mul", "rmul", "div"])
def test_partial_times_replicated_tensor_holding_inf_or_zero(op):
    arr = np.array([[1.0, 2.0, -1.0], [0.0, -2.0, 3.0], [-1.0, 1.0, 0.0], [3.0, 0.0, 5.0]], np.float32)
    other = np.array([np.inf, -np.inf, 2.0], np.float32) if op != "div" else np.array([0.0, 0.0, 2.0], np.float32)
    fn = {"mul": lambda s, r: s * r, "rmul": lambda s, r: r * s, "div": lambda s, r: s / r}[op]
    results = []
    for n in (1, 4):
        with use_mesh(n), np.errstate(all="ignore"):
            x = gt.tensor(arr)
            s = (x.shard(0) if n > 1 else x).sum(0)
            if n > 1:
                assert s.placement == Partial()
            results.append(fn(s, gt.tensor(other)).numpy())
    np.testing.assert_array_equal(results[1], results[0])


@pytest.mark.own_mesh
def test_partial_times_finite_tensor_stays_partial():
    with use_mesh(4):
        s = gt.tensor(np.ones((5, 2), np.float32)).shard(0).sum(0)
        assert (s * gt.tensor([2.0, 3.0])).placement == Partial()
        assert (s / gt.tensor([2.0, 3.0])).placement == Partial()


# ---- on the process's own mesh (GT_DEVICES=4 in the sharded passes), beside torch ----------------
def _torch_pair(arr):
    torch = pytest.importorskip("torch")
    tx = torch.tensor(arr, requires_grad=True)
    x = gt.tensor(arr)
    x = (x.shard(0) if get_mesh().size > 1 else x).requires_grad_(True)
    return torch, tx, x


PICKS = {
    "amax": lambda t, T: t.amax(0),
    "max_dim": lambda t, T: t.max(dim=0).values * (t.max(dim=0).indices + 1),
    "cat": lambda t, T: T.cat([t, t * 2], 0) ** 2,
    "index_select": lambda t, T: t.index_select(0, T.tensor([8, 1, 8])),
}
LOOKUPS = {"index_select"}


@pytest.mark.parametrize("name", sorted(PICKS))
def test_axis_ops_match_torch_on_this_mesh(name):
    arr = np.random.default_rng(7).integers(-2, 3, (17, 4)).astype(np.float32)
    torch, tx, x = _torch_pair(arr)
    want = PICKS[name](tx, torch)
    with collective_moves() as counts:
        got = PICKS[name](x, gt)
        up = np.random.default_rng(8).standard_normal(tuple(want.shape)).astype(np.float32)
        (got * gt.tensor(up)).sum().backward()
    (want * torch.tensor(up)).sum().backward()
    np.testing.assert_array_equal(got.numpy(), want.detach().numpy())
    np.testing.assert_array_equal(x.grad.numpy(), tx.grad.numpy())
    # a lookup sums n copies of its output; where that is more than the input (3 rows of 17 over 6 or
    # more devices) the rule gathers the input instead, the smaller move (gt/tensor/axis_rules.py)
    lookup_costs_more = name in LOOKUPS and get_mesh().size * want.numel() > arr.size
    _small_moves(counts, arr.size + 1 if lookup_costs_more else arr.size - 1)
