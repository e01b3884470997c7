"""Top-k and running scans along the sharded axis (gt/tensor/axis_scans.py) on 2, 3 and 4 virtual
devices, with even, uneven and empty blocks: ``topk`` merges each device's own top k, ``cumsum``,
``cumprod``, ``cummax``, ``cummin`` and ``logcumsumexp`` scan block after block from the carry of
the blocks before. Each gives one device's values, indices and gradients bit for bit (ties, NaN,
-0.0; float32, float64 and integers; logcumsumexp within rounding), and moves only the
candidates (topk) or one row per block boundary (the scans' ``send``s), never the tensor; ``sort``
gathers it once. The tests at the end run on whatever mesh the process has (GT_DEVICES=4 in CI's
sharded passes) and compare with torch.
"""

import numpy as np
import pytest

import gt
from gt.sharding import Shard, get_mesh, use_mesh
from gt.tensor.dispatch import redistribute
from helpers import assert_same_bits, collective_moves

MESHES = (2, 3, 4)


def _data(seed, shape, kind="plain", dtype="float64"):
    rng = np.random.default_rng(seed)
    a = rng.integers(-2, 3, shape).astype(np.float64) if kind == "ties" else rng.standard_normal(shape)
    if kind == "nan":
        a[2, 1] = a[5, 0] = a[9, 1] = np.nan
    if kind == "zeros":          # signed zeros, ties of them and a zero on the axis
        a[1, 0], a[4, 0], a[6, 1] = -0.0, 0.0, -0.0
    if dtype == "bool":
        return a > 0
    return np.nan_to_num(a).astype(dtype) if dtype.startswith("int") else a.astype(dtype)


def _run(fn, arr, n, axis=0, sizes=None):
    """``fn(x)`` with x cut along ``axis`` over ``n`` devices (``sizes``: its blocks; n=1: whole):
    the outputs, x's gradient under a fixed upstream gradient (float inputs), the collectives of
    the op and its backward, and the first output's placement."""
    with use_mesh(n), np.errstate(all="ignore"):
        x = gt.tensor(arr)
        if n > 1:
            x = redistribute(x, Shard(axis), sizes) if sizes else x.shard(axis)
        grad = x.dtype.is_floating_point
        if grad:
            x.requires_grad_(True)
        with collective_moves() as calls:
            outs = fn(x)
            outs = tuple(outs) if isinstance(outs, tuple) else (outs,)
        if grad:    # an upstream gradient laid out as the output (not counted), then the backward
            up = gt.tensor(np.random.default_rng(5).standard_normal(outs[0].shape).astype(arr.dtype))
            if n > 1:
                sharded = outs[0].placement == Shard(axis)
                up = redistribute(up, Shard(axis), outs[0]._placed.sizes) if sharded else up.replicate()
            with collective_moves() as back:
                (outs[0] * up).sum().backward()
            calls += back
        if grad and n > 1:
            assert x.grad.placement == Shard(axis)
        got = [np.asarray(t.numpy()) for t in outs] + ([np.asarray(x.grad.numpy())] if grad else [])
        return got, calls, outs[0].placement


TOPK = {
    "largest_1": lambda x: x.topk(1, 0),
    "largest_3": lambda x: x.topk(3, 0),
    "smallest_2": lambda x: x.topk(2, 0, largest=False),
    "unsorted_4": lambda x: x.topk(4, dim=0, sorted=False),
}


@pytest.mark.own_mesh
@pytest.mark.parametrize("n", MESHES)
@pytest.mark.parametrize("kind", ["plain", "ties", "nan", "zeros"])
@pytest.mark.parametrize("name", sorted(TOPK))
def test_topk_along_sharded_axis_merges_each_devices_top_k(name, kind, n):
    arr = _data(1, (40, 3), kind)
    one, _, _ = _run(TOPK[name], arr, 1)
    many, calls, placement = _run(TOPK[name], arr, n)
    assert_same_bits(one, many)
    k = one[0].shape[0]
    # the candidates (values and positions): n * k rows of 3, gathered once each; no other collective
    assert calls == [("all_gather", n * k * 3), ("all_gather", n * k * 3)], calls


@pytest.mark.own_mesh
@pytest.mark.parametrize("dtype", ["float32", "int64", "int32"])
@pytest.mark.parametrize("sizes", [[9, 0, 14, 1], [0, 0, 24, 0], [1, 1, 1, 21]])
def test_topk_with_uneven_and_empty_blocks_and_integers(sizes, dtype):
    arr = _data(2, (24, 2), "ties", dtype)
    for k, largest in [(1, True), (2, False), (3, True)]:
        fn = lambda x: x.topk(k, 0, largest)     # noqa: E731
        one, _, _ = _run(fn, arr, 1)
        many, calls, _ = _run(fn, arr, 4, sizes=sizes)
        assert_same_bits(one, many)
        assert sum(m for _, m in calls) < arr.size


@pytest.mark.own_mesh
def test_topk_with_more_candidates_than_rows_gathers():
    """2 * sum(min(k, block)) >= the axis's length: gathering moves less, and is exact as well."""
    arr = _data(3, (8, 2), "ties")
    one, _, _ = _run(lambda x: x.topk(3, 0), arr, 1)
    many, calls, _ = _run(lambda x: x.topk(3, 0), arr, 4)
    assert_same_bits(one, many)
    assert calls == [("all_gather", arr.size)]     # once: the values come from the same copy


SORTS = {
    "sort": lambda x: x.sort(0),
    "descending": lambda x: x.sort(0, descending=True),
    "stable": lambda x: x.sort(dim=0, stable=True),
    "msort": lambda x: x.msort(),
    "gt_sort": lambda x: gt.sort(x, 0, descending=True),
}


@pytest.mark.own_mesh
@pytest.mark.parametrize("n", MESHES)
@pytest.mark.parametrize("kind", ["ties", "nan", "zeros"])
@pytest.mark.parametrize("name", sorted(SORTS))
def test_sort_along_sharded_axis_gathers_once(name, kind, n):
    """A sort permutes the axis: no per-device rule moves much less (module docstring of
    axis_scans.py); the tensor is gathered once, its values taken from that copy."""
    arr = _data(17, (12, 2), kind)
    one, _, _ = _run(SORTS[name], arr, 1)
    many, calls, _ = _run(SORTS[name], arr, n)
    assert_same_bits(one, many)
    assert calls == [("all_gather", arr.size)]


@pytest.mark.own_mesh
def test_topk_along_a_sharded_inner_axis():
    arr = _data(4, (3, 50), "ties")
    fn = lambda x: x.topk(2, 1, largest=False)     # noqa: E731
    one, _, _ = _run(fn, arr.copy(), 1)
    many, calls, _ = _run(fn, arr.copy(), 3, axis=1)
    assert_same_bits(one, many)
    assert sum(m for _, m in calls) == 2 * 3 * 2 * 3


SCANS = {
    "cumsum": lambda x: x.cumsum(0),
    "cumprod": lambda x: x.cumprod(0),
    "cummax": lambda x: x.cummax(0),
    "cummin": lambda x: x.cummin(dim=0),
    "chain": lambda x: (x.cummax(0).values * 2).cumsum(0).cummin(0).values,
}


def _sends_only(calls, rows, boundaries, per=8):
    """Only ``send``s, each of one row of ``rows`` elements (a carry), a few per block boundary
    (``per``: cummax's backward sends its carries and writes sums back)."""
    assert {name for name, _ in calls} <= {"send"}, calls
    assert all(m == rows for _, m in calls), calls
    assert len(calls) <= per * boundaries, calls


def _no_zero(arr, name):
    """cumprod's data without zeros (with one and a gradient it gathers: tested below)."""
    return np.where(arr == 0, 0.5, arr).astype(arr.dtype) if name == "cumprod" else arr


@pytest.mark.own_mesh
@pytest.mark.parametrize("n", MESHES)
@pytest.mark.parametrize("kind", ["plain", "ties", "nan", "zeros"])
@pytest.mark.parametrize("name", sorted(SCANS))
def test_scans_along_sharded_axis_continue_the_carry(name, kind, n):
    if name == "cumprod" and kind == "zeros":
        pytest.skip("a zero on the axis with a gradient gathers: test_cumprod_with_a_zero_and_a_gradient_gathers")
    arr = _no_zero(_data(5, (13, 2), kind) * (0.5 if name == "cumprod" else 1), name)
    one, _, _ = _run(SCANS[name], arr, 1)
    many, calls, placement = _run(SCANS[name], arr, n)
    assert_same_bits(one, many)
    assert placement == Shard(0)
    _sends_only(calls, 2, n - 1, per=24 if name == "chain" else 8)


@pytest.mark.own_mesh
@pytest.mark.parametrize("dtype", ["float32", "int64", "int32", "bool"])
@pytest.mark.parametrize("name", ["cumsum", "cumprod", "cummax", "cummin"])
def test_scans_on_integers_float32_and_empty_blocks(name, dtype):
    arr = _data(6, (11, 3), "ties", dtype)
    arr = _no_zero(arr, name) if dtype == "float32" else arr
    one, _, _ = _run(SCANS[name], arr, 1)
    for sizes in ([0, 5, 0, 6], [11, 0, 0, 0], [2, 3, 0, 6]):
        many, calls, _ = _run(SCANS[name], arr, 4, sizes=sizes)
        assert_same_bits(one, many)
        _sends_only(calls, 3, sum(1 for s in sizes if s) - 1)


@pytest.mark.own_mesh
@pytest.mark.parametrize("name", ["cumsum", "cumprod", "cummax", "cummin"])
def test_scans_with_fewer_rows_than_devices_and_a_sharded_inner_axis(name):
    arr = _data(7, (3, 2), "ties")
    assert_same_bits(_run(SCANS[name], arr, 1)[0], _run(SCANS[name], arr, 4)[0])
    arr = _data(8, (17, 2)).T * 0.9
    fn = {"cumsum": lambda x: x.cumsum(1), "cumprod": lambda x: x.cumprod(-1),
          "cummax": lambda x: x.cummax(1), "cummin": lambda x: x.cummin(1)}[name]
    many, calls, _ = _run(fn, arr.T.copy().T, 3, axis=1)
    assert_same_bits(_run(fn, arr, 1)[0], many)
    assert {name for name, _ in calls} <= {"send"}


@pytest.mark.own_mesh
def test_float32_running_sum_keeps_one_devices_float64_accumulator():
    """float32 sums accumulate in float64 on one device (torch's CPU kernel): a carry rounded to
    float32 and added afterwards would differ; these values make it differ in most places."""
    arr = (np.random.default_rng(9).standard_normal((400, 1)) * np.logspace(-4, 4, 400)[:, None]).astype(np.float32)
    one, _, _ = _run(SCANS["cumsum"], arr, 1)
    many, calls, _ = _run(SCANS["cumsum"], arr, 4)
    assert_same_bits(one, many)
    assert calls == [("send", 1)] * 6      # three carries forward, three back
    with use_mesh(4):
        x = gt.tensor(arr).shard(0)
        blocks = [np.asarray(gt.tensor(s).numpy()) for s in x._placed.shards]
    added = np.concatenate([np.cumsum(b, 0, dtype=np.float64).astype(np.float32) for b in blocks])
    added[100:] += one[0][99]      # the naive way: the previous block's float32 total added after
    assert not np.array_equal(added, one[0])


@pytest.mark.own_mesh
def test_cumprod_with_a_zero_and_a_gradient_gathers():
    arr = _data(10, (12, 2), "zeros")
    one, _, _ = _run(SCANS["cumprod"], arr, 1)
    many, calls, _ = _run(SCANS["cumprod"], arr, 4)
    assert_same_bits(one, many)
    assert ("all_gather", arr.size) in calls
    with use_mesh(4), collective_moves() as calls:       # without a gradient the zero is no matter
        got = gt.tensor(arr).shard(0).cumprod(0)
    np.testing.assert_array_equal(got.numpy(), one[0])
    assert {name for name, _ in calls} == {"send"}


@pytest.mark.own_mesh
def test_cummax_gradient_of_a_target_held_across_blocks():
    """The first element stays the running max over every block: its gradient sums the upstream
    gradient of every position, in one device's order, across the devices."""
    arr = np.concatenate([[[5.0]], -np.abs(_data(11, (20, 1)))]).astype(np.float32)
    one, _, _ = _run(SCANS["cummax"], arr, 1)
    many, calls, _ = _run(SCANS["cummax"], arr, 4)
    assert_same_bits(one, many)
    assert (many[1] == 0).all() and many[2][0, 0] != 0 and (many[2][1:] == 0).all()
    _sends_only(calls, 1, 3)


@pytest.mark.own_mesh
def test_cumsum_cumprod_and_logcumsumexp_second_derivatives():
    arr = _data(12, (9, 2)) + 2
    results = []
    for n in (1, 3):
        with use_mesh(n):
            x = gt.tensor(arr)
            x = (x.shard(0) if n > 1 else x).requires_grad_(True)
            with collective_moves() as calls:
                scans = x.cumprod(0), x.cumsum(0), x.logcumsumexp(0)
            assert n == 1 or {name for name, _ in calls} == {"send"}     # the second backward gathers
            y = (scans[0] * scans[1]).sum() + (scans[2] * x).sum()
            (g,) = gt.autograd.grad(y, x, create_graph=True)
            (g * g).sum().backward()
            results.append((g.numpy(), x.grad.numpy()))
    np.testing.assert_allclose(results[1][0], results[0][0], rtol=1e-12)
    np.testing.assert_allclose(results[1][1], results[0][1], rtol=1e-12)


@pytest.mark.own_mesh
def test_topk_and_sort_second_derivatives():
    arr = _data(18, (40, 2))
    results = []
    for n in (1, 3):
        with use_mesh(n):
            x = gt.tensor(arr)
            x = (x.shard(0) if n > 1 else x).requires_grad_(True)
            with collective_moves() as calls:
                picks = x.topk(3, 0).values, x.sort(0).values
            assert n == 1 or calls == [("all_gather", 18), ("all_gather", 18), ("all_gather", 80)]
            y = (picks[0] ** 3).sum() + (picks[1] ** 2 * gt.tensor(np.arange(80.0).reshape(40, 2))).sum()
            (g,) = gt.autograd.grad(y, x, create_graph=True)
            (g * g).sum().backward()
            results.append([g.numpy(), x.grad.numpy()])
    assert_same_bits(results[0], results[1])


@pytest.mark.own_mesh
def test_cumprod_refuses_an_input_changed_in_place_before_backward():
    with use_mesh(3):
        x = gt.tensor(_data(13, (7, 2)) + 3).requires_grad_(True)
        s = x.shard(0) * 1
        y = s.cumprod(0)
        s.mul_(2)
        with pytest.raises(RuntimeError):
            y.sum().backward()


@pytest.mark.own_mesh
@pytest.mark.parametrize("n", MESHES)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("scale", [1.0, 30.0])
def test_logcumsumexp_along_sharded_axis_is_within_rounding(scale, dtype, n):
    """Not one device's bits: its doubling steps pair elements counted from the start of the
    whole axis. Values within a few ulps; gradients (torch's formula, in float64) within what one
    device's float32 gradient itself is of the exact one (about 1e-5)."""
    arr = (_data(16, (41, 3)) * scale).astype(dtype)
    arr[3, 0] = -np.inf
    one, _, _ = _run(lambda x: x.logcumsumexp(0), arr, 1)
    many, calls, placement = _run(lambda x: x.logcumsumexp(0), arr, n)
    assert placement == Shard(0) and many[0].dtype == one[0].dtype
    tight = dtype == "float64"
    np.testing.assert_allclose(many[0], one[0], rtol=1e-14 if tight else 1e-6, atol=0)
    np.testing.assert_allclose(many[1], one[1], rtol=1e-12 if tight else 3e-5, atol=1e-12 if tight else 1e-7)
    _sends_only(calls, 3, n - 1)


# ---- on the process's own mesh (GT_DEVICES=4 in the sharded passes), beside torch ----------------
PICKS = {
    "topk": lambda t, T: t.topk(3, 0).values * (t.topk(3, 0).indices + 1),
    "topk_smallest": lambda t, T: t.topk(2, 0, largest=False).values,
    "cumsum": lambda t, T: t.cumsum(0),
    "cumprod": lambda t, T: (t / 2).cumprod(0),
    "cummax": lambda t, T: t.cummax(0).values * (t.cummax(0).indices + 1),
    "cummin": lambda t, T: t.cummin(0).values * (t.cummin(0).indices + 1),
    "logcumsumexp": lambda t, T: t.logcumsumexp(0),
}
TOPK_K = {"topk": 3, "topk_smallest": 2}


@pytest.mark.parametrize("name", sorted(PICKS))
def test_axis_scans_match_torch_on_this_mesh(name):
    torch = pytest.importorskip("torch")
    arr = np.random.default_rng(14).standard_normal((37, 4)).astype(np.float32)
    tx = torch.tensor(arr, requires_grad=True)
    x = gt.tensor(arr)
    x = (x.shard(0) if get_mesh().size > 1 else x).requires_grad_(True)
    want = PICKS[name](tx, torch)
    with collective_moves() as calls:
        got = PICKS[name](x, gt)
        up = np.random.default_rng(15).standard_normal(tuple(want.shape)).astype(np.float32)
        (got * gt.tensor(up)).sum().backward()
    (want * torch.tensor(up)).sum().backward()
    np.testing.assert_allclose(got.numpy(), want.detach().numpy(), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-5, atol=1e-6)
    # topk gathers the input where the devices' k candidates and their positions would move more
    # (37 rows over 8 devices: 23 candidates, twice; gt/tensor/axis_scans.py)
    k = TOPK_K.get(name)
    gathers = k is not None and x._placed is not None and 2 * sum(min(k, s) for s in x._placed.sizes) >= len(arr)
    assert all(m < arr.size + gathers for _, m in calls), calls
