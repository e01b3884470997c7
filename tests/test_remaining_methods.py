"""torch's remaining tensor methods (gt/tensor/remaining_methods.py) and their top-level forms,
beside torch 2.13 on the same inputs: values, dtypes, shapes, gradients, errors; sharded inputs
for the reductions and the scatters give the unsharded answers."""

import warnings

import numpy as np
import pytest

import gt
from gt.sharding.mesh import use_mesh
from helpers import check_grad, compare_with_torch, randn, torch_or_skip

torch = torch_or_skip()


def _same(ours, theirs, exact=False):
    assert ours.shape == tuple(theirs.shape), (ours.shape, tuple(theirs.shape))
    assert ours.dtype.name == str(theirs.dtype).replace("torch.", ""), (ours.dtype, theirs.dtype)
    if exact:
        np.testing.assert_array_equal(ours.numpy(), theirs.detach().numpy())
    else:
        np.testing.assert_allclose(ours.numpy(), theirs.detach().numpy(), rtol=1e-6, atol=1e-7)


def _both(arr):
    return gt.tensor(arr), torch.tensor(arr)


# ---- questions ----------------------------------------------------------------------------------------
@pytest.mark.first_pass
@pytest.mark.parametrize("arr", [np.float32(1.5), np.zeros(3, np.float64), np.arange(3), np.array([True]),
                                 np.array([0.0]), np.array([np.nan])])
def test_questions(arr):
    g, t = _both(arr)
    assert g.is_floating_point() == t.is_floating_point()
    assert g.is_complex() == t.is_complex() is False
    assert g.is_signed() == t.is_signed()
    assert g.is_same_size(g + 0) and not g.is_same_size(g.reshape(1, -1))
    if t.numel() == 1:
        assert g.is_nonzero() == t.is_nonzero()
    else:
        with pytest.raises(RuntimeError, match="more than one value"):
            g.is_nonzero()


@pytest.mark.first_pass
def test_is_nonzero_empty_and_storage_offset():
    with pytest.raises(RuntimeError, match="no values"):
        gt.zeros(0).is_nonzero()
    x = gt.arange(12.0)
    assert x.storage_offset() == 0
    assert x[3:].storage_offset() == torch.arange(12.0)[3:].storage_offset() == 3
    assert x.reshape(3, 4)[1, 2:].storage_offset() == 6


# ---- forms of existing ops ----------------------------------------------------------------------------
def test_where_method_positive_ravel():
    a, c = randn(2, 3, seed=1), np.array([True, False, True])
    compare_with_torch(lambda x, y, m: x.where(m, y), None, a, randn(3, seed=2), c)
    g, t = _both(np.arange(4))
    _same(g.where(g > 1, 0), t.where(t > 1, 0), exact=True)
    assert g.positive() is g and gt.positive(g) is g
    with pytest.raises(RuntimeError, match="bool"):
        gt.tensor([True]).positive()
    compare_with_torch(lambda x: x.transpose(0, 1).ravel(), None, a)
    compare_with_torch(lambda x: gt.ravel(x), lambda x: torch.ravel(x), randn(seed=3))


@pytest.mark.parametrize("shape,dim,sizes", [((2, 12), 1, (3, 4)), ((2, 12), -1, (-1, 2, 3)), ((6,), 0, (6, 1)),
                                             ((4, 0), 1, (2, 0))])
def test_unflatten(shape, dim, sizes):
    compare_with_torch(lambda x: x.unflatten(dim, sizes), None, randn(*shape, seed=4))
    compare_with_torch(lambda x: gt.unflatten(x, dim, sizes), lambda x: torch.unflatten(x, dim, sizes),
                       randn(*shape, seed=4))


@pytest.mark.first_pass
def test_unflatten_errors():
    x = gt.zeros(4, 6)
    with pytest.raises(RuntimeError, match="multiply up"):
        x.unflatten(1, (2, 4))
    with pytest.raises(RuntimeError, match="non-empty"):
        x.unflatten(1, ())
    with pytest.raises(RuntimeError, match="multiply up"):
        x.unflatten(1, (-1, 4))


@pytest.mark.parametrize("name,shape,arg", [("hsplit", (4,), 2), ("hsplit", (3, 6), [1, 4]), ("hsplit", (3, 6), 3),
                                            ("vsplit", (4, 3), 2), ("vsplit", (4, 3), [3]),
                                            ("dsplit", (2, 3, 4), 2), ("dsplit", (2, 3, 4), [1, 1, 5])])
def test_hvdsplit(name, shape, arg):
    a = randn(*shape, seed=5)
    compare_with_torch(lambda x: getattr(x, name)(arg), None, a)
    compare_with_torch(lambda x: getattr(gt, name)(x, arg), lambda x: getattr(torch, name)(x, arg), a)


@pytest.mark.first_pass
def test_hvdsplit_errors():
    with pytest.raises(RuntimeError, match="not divisible"):
        gt.zeros(4, 5).hsplit(2)
    with pytest.raises(RuntimeError, match="at least 2 dimensions"):
        gt.zeros(4).vsplit(2)
    with pytest.raises(RuntimeError, match="at least 3 dimensions"):
        gt.zeros(4, 4).dsplit(2)
    with pytest.raises(RuntimeError, match="at least 1 dimension"):
        gt.tensor(1.0).hsplit(1)


def test_splits_and_narrow_copy():
    a = randn(5, 4, seed=6)
    compare_with_torch(lambda x: x.split_with_sizes([2, 0, 3]), None, a)
    compare_with_torch(lambda x: x.split_with_sizes([1, 3], dim=-1), None, a)
    compare_with_torch(lambda x: gt.split_with_sizes(x, [4, 1]), lambda x: torch.split_with_sizes(x, [4, 1]), a)
    compare_with_torch(lambda x: x.unsafe_split(2, 1), None, a)
    compare_with_torch(lambda x: x.unsafe_split_with_sizes([3, 2]), None, a)
    compare_with_torch(lambda x: x.unsafe_chunk(3), None, a)
    compare_with_torch(lambda x: gt.unsafe_chunk(x, 2, 1), lambda x: torch.unsafe_chunk(x, 2, 1), a)
    compare_with_torch(lambda x: gt.unsafe_split(x, 3), lambda x: torch.unsafe_split(x, 3), a)
    compare_with_torch(lambda x: x.narrow_copy(1, -3, 2), None, a)
    compare_with_torch(lambda x: gt.narrow_copy(x, 0, 1, 3), lambda x: torch.narrow_copy(x, 0, 1, 3), a)
    x = gt.arange(6.0)
    y = x.narrow_copy(0, 1, 2)
    y[0] = 100.0
    assert x[1].item() == 1.0     # a copy, not a view
    with pytest.raises(RuntimeError, match="sum exactly to 5"):
        gt.zeros(5).split_with_sizes([1, 2])


def test_transposes_and_products():
    a = randn(2, 3, 4, seed=7)
    compare_with_torch(lambda x: x.mH, None, a)
    compare_with_torch(lambda x: x.adjoint(), None, a)
    compare_with_torch(lambda x: gt.adjoint(x), lambda x: torch.adjoint(x), a)
    compare_with_torch(lambda x: x.H, None, randn(3, 2, seed=8))
    compare_with_torch(lambda x: gt.swapdims(x, 0, -1), lambda x: torch.swapdims(x, 0, -1), a)
    with pytest.raises(RuntimeError, match="2-D tensors"):
        gt.zeros(2, 3, 4).H
    with pytest.raises(RuntimeError, match="matrices"):
        gt.zeros(3).mH
    with pytest.raises(RuntimeError, match="matrices"):
        gt.zeros(3).adjoint()
    with pytest.warns(UserWarning, match="deprecated on 0-D"):
        assert gt.tensor(2.0).H.item() == 2.0
    u, v = randn(3, seed=9), randn(4, seed=10)
    compare_with_torch(lambda x, y: x.ger(y), None, u, v)
    compare_with_torch(lambda x, y: gt.ger(x, y), lambda x, y: torch.ger(x, y), u, v)
    compare_with_torch(lambda x, y: x.vdot(y), None, u, randn(3, seed=11))
    compare_with_torch(lambda x, y: gt.vdot(x, y), lambda x, y: torch.vdot(x, y), u, randn(3, seed=11),
                       dtype="float32")
    g, t = _both(np.arange(3))
    _same(g.vdot(g), t.vdot(t), exact=True)


@pytest.mark.first_pass
def test_vdot_errors():
    with pytest.raises(RuntimeError, match="same dtype"):
        gt.zeros(3).vdot(gt.zeros(3, dtype=gt.float64))
    with pytest.raises(RuntimeError, match="1D tensors expected"):
        gt.zeros(3, 1).vdot(gt.zeros(3, 1))
    with pytest.raises(RuntimeError, match="same number of elements"):
        gt.zeros(3).vdot(gt.zeros(4))


@pytest.mark.parametrize("sa,sb,dim", [((4, 3), (4, 3), 1), ((3, 2), (3, 2), 0), ((1, 3), (5, 3), -1),
                                       ((3, 1), (3, 4), 0), ((2, 3, 3), (2, 3, 3), 2)])
def test_cross(sa, sb, dim):
    a, b = randn(*sa, seed=12), randn(*sb, seed=13)
    compare_with_torch(lambda x, y: x.cross(y, dim=dim), None, a, b)
    compare_with_torch(lambda x, y: gt.cross(x, y, dim), lambda x, y: torch.cross(x, y, dim), a, b)
    check_grad(lambda x, y: gt.cross(x, y, dim), a, b)


def test_cross_default_dim():
    """dim=None: the first dim of size 3 of the input, with torch's deprecation warning."""
    for sa, sb in [((3, 3), (3, 3)), ((2, 3), (2, 3)), ((3, 1), (3, 4))]:
        a, b = randn(*sa, seed=14), randn(*sb, seed=15)
        with pytest.warns(UserWarning, match="without specifying the dim arg is deprecated"):
            ours = gt.cross(gt.tensor(a), gt.tensor(b))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            theirs = torch.cross(torch.tensor(a), torch.tensor(b))
        _same(ours, theirs)
    g, t = _both(np.arange(6).reshape(2, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _same(g.cross(g.flip(1)), t.cross(t.flip(1)), exact=True)
        with pytest.raises(RuntimeError, match="no dimension of size 3"):
            gt.zeros(2, 4).cross(gt.zeros(2, 4))
    with pytest.raises(RuntimeError, match="expected scalar type Float but found Double"):   # torch's words
        gt.zeros(3).cross(gt.zeros(3, dtype=gt.float64), 0)


# ---- nansum / nanmean -----------------------------------------------------------------------------------
NAN = np.array([[1.0, np.nan, 2.0], [np.nan, np.nan, np.nan], [0.5, -1.0, 3.0], [4.0, np.nan, -2.0]])


@pytest.mark.parametrize("kwargs", [{}, {"dim": 1}, {"dim": 0, "keepdim": True}, {"dim": (0, 1)}, {"dim": -1},
                                    {"dim": 1, "dtype": gt.float64}])
@pytest.mark.parametrize("name", ["nansum", "nanmean"])
def test_nan_reductions(name, kwargs):
    tkw = {k: (torch.float64 if v is gt.float64 else v) for k, v in kwargs.items()}
    for dtype in ("float32", "float64"):
        compare_with_torch(lambda x: getattr(x, name)(**kwargs), lambda x: getattr(x, name)(**tkw), NAN,
                           dtype=dtype)
        compare_with_torch(lambda x: getattr(gt, name)(x, **kwargs), lambda x: getattr(torch, name)(x, **tkw),
                           NAN, dtype=dtype)


def test_nan_reductions_ints_and_edges():
    g, t = _both(np.arange(6).reshape(2, 3))
    _same(g.nansum(), t.nansum(), exact=True)
    _same(g.nansum(1, dtype=gt.float32), t.nansum(1, dtype=torch.float32))
    gb, tb = _both(np.array([True, False, True]))
    _same(gb.nansum(), tb.nansum(), exact=True)
    with pytest.raises(RuntimeError, match="floating point"):
        g.nanmean()
    for arr in (np.array([np.nan]), np.zeros((0,)), np.zeros((0, 3))):
        ge, te = _both(arr.astype(np.float32))
        _same(ge.nanmean(), te.nanmean())
        _same(ge.nansum(0), te.nansum(0))
    _same(gt.tensor(np.float32(np.nan)).nansum(), torch.tensor(np.float32(np.nan)).nansum())


def test_nan_reductions_sharded():
    x0 = np.concatenate([NAN, NAN[::-1] * 2.0])
    want = {}
    for name in ("nansum", "nanmean"):
        for dim in (0, 1, None):
            leaf = gt.tensor(x0, requires_grad=True)
            out = getattr(leaf, name)(dim)
            out.sum().backward()
            want[name, dim] = out.numpy(), leaf.grad.numpy()
    for n in (2, 4):
        with use_mesh(n):
            for (name, dim), (value, grad) in want.items():
                leaf = gt.tensor(x0, requires_grad=True)
                out = getattr(leaf.shard(0), name)(dim)
                out.sum().backward()
                np.testing.assert_allclose(out.numpy(), value, rtol=1e-6)
                np.testing.assert_allclose(leaf.grad.numpy(), grad, rtol=1e-6)


# ---- index_put / index_reduce ------------------------------------------------------------------------
@pytest.mark.parametrize("accumulate", [False, True])
@pytest.mark.parametrize("shape,indices,vshape", [
    ((5,), ([0, 3, -1],), (3,)),
    ((5,), ([1, 1, 2],), ()),
    ((4, 3), ([0, 2],), (2, 3)),
    ((4, 3), ([0, 2],), (3,)),
    ((4, 3), ([[0], [3]], [1, 2]), (2, 2)),
    ((3, 2, 2), ([2, 0], [1, 1]), (1, 2)),
    ((4, 3), (np.array([True, False, True, True]),), (3, 3)),
])
def test_index_put(shape, indices, vshape, accumulate):
    a, v = randn(*shape, seed=20), randn(*vshape, seed=21)
    def ours(x, y):
        return x.index_put(tuple(gt.tensor(i) for i in indices), y, accumulate=accumulate)

    def theirs(x, y):
        return x.index_put(tuple(torch.tensor(i) for i in indices), y, accumulate=accumulate)

    # repeated positions without accumulate: torch does not say which value stays (nor does gt);
    # a 0-d value is the same everywhere, so only its gradient could differ
    compare_with_torch(ours, theirs, a, v, grad=accumulate or vshape != ())
    out = gt.index_put(gt.tensor(a), tuple(gt.tensor(i) for i in indices), gt.tensor(v, dtype=gt.float64),
                       accumulate=accumulate)
    want = torch.index_put(torch.tensor(a), tuple(torch.tensor(i) for i in indices), torch.tensor(v), accumulate)
    _same(out, want)


def test_index_put_in_place_and_ints():
    g, t = _both(np.arange(6).reshape(2, 3))
    idx = (gt.tensor([1, 0]), gt.tensor([2, 2]))
    tidx = (torch.tensor([1, 0]), torch.tensor([2, 2]))
    assert g.index_put_(idx, gt.tensor([7, 8]), accumulate=True) is g
    t.index_put_(tidx, torch.tensor([7, 8]), accumulate=True)
    _same(g, t, exact=True)
    gt.index_put_(g, idx, gt.tensor(-1))
    torch.index_put_(t, tidx, torch.tensor(-1))
    _same(g, t, exact=True)
    # recorded on the tape: y = x * 2; y.index_put_(...) sends gradients to x and the values
    a, v = randn(4, 3, seed=22), randn(2, 3, seed=23)

    def fn(lib):
        def run(x, y):
            i = lib.tensor([3, 0])
            z = x * 2
            z.index_put_((i,), y, accumulate=True)
            return z * z
        return run
    compare_with_torch(fn(gt), fn(torch), a, v)
    with pytest.raises(RuntimeError, match="leaf Variable"):
        gt.zeros(3, requires_grad=True).index_put_((gt.tensor([0]),), gt.tensor([1.0]))


@pytest.mark.first_pass
def test_index_put_errors():
    x = gt.zeros(3)
    with pytest.raises(IndexError, match="out of bounds"):
        x.index_put((gt.tensor([0, 3]),), gt.tensor(1.0))
    with pytest.raises(RuntimeError, match="dtypes match"):
        x.index_put((gt.tensor([0]),), gt.tensor(1.0, dtype=gt.float64))
    with pytest.raises(IndexError, match="long, int, byte or bool"):
        x.index_put((gt.tensor([0.0]),), gt.tensor(1.0))
    with pytest.raises(TypeError, match="Tensor"):
        x.index_put((gt.tensor([0]),), 1.0)
    with pytest.raises(RuntimeError, match="shape mismatch: value tensor"):
        x.index_put((gt.tensor([0, 1]),), gt.tensor([1.0, 2.0, 3.0]))
    with pytest.raises(IndexError, match="shape of the mask"):
        x.index_put((gt.tensor([True, False]),), gt.tensor(1.0))
    with pytest.raises(IndexError, match="too many indices"):
        x.index_put((gt.tensor([0]), gt.tensor([0])), gt.tensor(1.0))
    with pytest.raises(TypeError, match="tuple of Tensors"):
        x.index_put(gt.tensor([0]), gt.tensor(1.0))
    with pytest.raises(IndexError, match="shape mismatch"):
        gt.zeros(3, 3).index_put((gt.tensor([0, 1]), gt.tensor([0, 1, 2])), gt.tensor(1.0))


@pytest.mark.parametrize("include_self", [True, False])
@pytest.mark.parametrize("reduce", ["mean", "amax", "amin", "prod"])
def test_index_reduce(reduce, include_self):
    a, s = randn(3, 4, seed=24), randn(3, 5, seed=25)
    index = np.array([1, 3, 1, 1, 0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # torch: index_reduce is in beta
        x, y, i = randn(3, 4, seed=24), randn(5, 4, seed=25), index
        compare_with_torch(lambda x, y, i: x.index_reduce(0, i, y, reduce, include_self=include_self), None,
                           np.concatenate([x, randn(1, 4, seed=26)]), y, i)
        compare_with_torch(lambda x, y, i: gt.index_reduce(x, -1, i, y, reduce, include_self=include_self),
                           lambda x, y, i: torch.index_reduce(x, -1, i, y, reduce, include_self=include_self),
                           a, s, i)
        g, t = _both(np.array([-3, 5, 2, 7]))
        src = np.array([1, 2, 4, -6, 9])
        _same(g.index_reduce(0, gt.tensor(index), gt.tensor(src), reduce, include_self=include_self),
              t.index_reduce(0, torch.tensor(index), torch.tensor(src), reduce, include_self=include_self),
              exact=True)
        with gt.no_grad():
            _same(gt.tensor(a).index_reduce_(1, gt.tensor(index), gt.tensor(s), reduce, include_self=include_self),
                  torch.tensor(a).index_reduce_(1, torch.tensor(index), torch.tensor(s), reduce,
                                                include_self=include_self))


@pytest.mark.first_pass
def test_index_reduce_errors():
    x = gt.zeros(3)
    with pytest.raises(RuntimeError, match="prod, mean, amax or amin"):
        x.index_reduce(0, gt.tensor([0]), gt.zeros(1), "sum")
    with pytest.raises(RuntimeError, match="same scalar type"):
        x.index_reduce(0, gt.tensor([0]), gt.zeros(1, dtype=gt.float64), "mean")
    with pytest.raises(IndexError, match="out of range"):
        x.index_reduce(0, gt.tensor([3]), gt.zeros(1), "amax")


def test_writes_sharded():
    a, s = randn(8, 3, seed=27), randn(5, 3, seed=28)
    want = {}
    ops = {"reduce": lambda x, y: x.index_reduce(0, gt.tensor([7, 0, 7, 2, 5]), y, "mean"),
           "prod": lambda x, y: x.index_reduce(0, gt.tensor([7, 0, 7, 2, 5]), y, "prod", include_self=False),
           "put": lambda x, y: x.index_put((gt.tensor([7, 0, 7, 2, 5]),), y, accumulate=True),
           "fill": lambda x, y: (x * 1).fill_diagonal_(0.5, wrap=True),
           "slice": lambda x, y: x.slice_scatter(y[:4], 0, 1, None, 2),
           "select": lambda x, y: x.select_scatter(y[1], 0, 6),
           "diag": lambda x, y: x.diagonal_scatter(y[:3, 0], -2)}
    for name, op in ops.items():
        x, y = gt.tensor(a, requires_grad=True), gt.tensor(s, requires_grad=True)
        out = op(x, y)
        (out * out).sum().backward()
        want[name] = out.numpy(), x.grad.numpy(), None if y.grad is None else y.grad.numpy()
    for n in (2, 4):
        with use_mesh(n):
            for name, op in ops.items():
                x, y = gt.tensor(a, requires_grad=True), gt.tensor(s, requires_grad=True)
                out = op(x.shard(0), y)
                (out * out).sum().backward()
                assert (y.grad is None) == (want[name][2] is None), name
                for got, expected in zip((out, x.grad, y.grad), want[name]):
                    if expected is not None:
                        np.testing.assert_allclose(got.numpy(), expected, rtol=1e-6, err_msg=name)


# ---- *_scatter -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("shape,sshape,args", [((3, 4), (4,), (0, 1)), ((3, 4), (3,), (1, -1)),
                                               ((2, 3, 4), (2, 4), (-2, 0)), ((5,), (), (0, 2))])
def test_select_scatter(shape, sshape, args):
    a, s = randn(*shape, seed=30), randn(*sshape, seed=31)
    compare_with_torch(lambda x, y: x.select_scatter(y, *args), None, a, s)
    compare_with_torch(lambda x, y: gt.select_scatter(x, y, *args), lambda x, y: torch.select_scatter(x, y, *args),
                       a, s)
    check_grad(lambda x, y: x.select_scatter(y, *args), a, s)


@pytest.mark.parametrize("shape,sshape,args", [((6, 3), (2, 3), (0, 1, None, 3)), ((6, 3), (6, 2), (1, None, 2)),
                                               ((6, 3), (3, 3), (0, -3, 10, 1)), ((4, 5), (4, 0), (1, 2, 2)),
                                               ((4, 5), (4, 5), (-1,))])
def test_slice_scatter(shape, sshape, args):
    a, s = randn(*shape, seed=32), randn(*sshape, seed=33)
    compare_with_torch(lambda x, y: x.slice_scatter(y, *args), None, a, s)
    compare_with_torch(lambda x, y: gt.slice_scatter(x, y, *args), lambda x, y: torch.slice_scatter(x, y, *args),
                       a, s)


@pytest.mark.parametrize("shape,sshape,args", [((3, 3), (3,), ()), ((3, 4), (3,), (1,)), ((4, 3), (2,), (-2,)),
                                               ((2, 3, 4), (3, 2), (0, 0, 2)), ((2, 3, 4), (2, 2), (1, -1, 1))])
def test_diagonal_scatter(shape, sshape, args):
    a, s = randn(*shape, seed=34), randn(*sshape, seed=35)
    compare_with_torch(lambda x, y: x.diagonal_scatter(y, *args), None, a, s)
    compare_with_torch(lambda x, y: gt.diagonal_scatter(x, y, *args),
                       lambda x, y: torch.diagonal_scatter(x, y, *args), a, s)
    check_grad(lambda x, y: x.diagonal_scatter(y, *args), a, s)


def test_scatters_dtypes_and_errors():
    g, t = _both(np.zeros((2, 3), np.float32))
    _same(g.select_scatter(gt.ones(3, dtype=gt.float64), 0, 0), t.select_scatter(torch.ones(3).double(), 0, 0))
    gi, ti = _both(np.arange(9).reshape(3, 3))
    _same(gi.diagonal_scatter(gt.tensor([7, 8, 9])), ti.diagonal_scatter(torch.tensor([7, 8, 9])), exact=True)
    with pytest.raises(RuntimeError, match="src size = \\[2\\], slice size = \\[3\\]"):
        g.select_scatter(gt.ones(2), 0, 0)
    with pytest.raises(IndexError):
        g.select_scatter(gt.ones(3), 0, 2)
    with pytest.raises(RuntimeError, match="slice size"):
        gt.zeros(4, 3).slice_scatter(gt.ones(3, 3), 0, 1, None, 2)
    with pytest.raises(RuntimeError, match="slice size"):
        gt.zeros(3, 3).diagonal_scatter(gt.ones(3), 1)


# ---- fill_diagonal_ / nonzero_static ------------------------------------------------------------------------
@pytest.mark.parametrize("shape,wrap", [((3, 3), False), ((5, 3), True), ((7, 3), True), ((7, 3), False),
                                        ((3, 5), True), ((2, 2, 2), False), ((3, 3, 3), True), ((0, 0), False)])
def test_fill_diagonal(shape, wrap):
    g, t = _both(randn(*shape, seed=36).astype(np.float32))
    assert g.fill_diagonal_(2.5, wrap=wrap) is g
    t.fill_diagonal_(2.5, wrap=wrap)
    _same(g, t, exact=True)
    gi, ti = _both(np.zeros(shape, np.int64))
    _same(gi.fill_diagonal_(1.7, wrap), ti.fill_diagonal_(1.7, wrap), exact=True)


def test_fill_diagonal_grad_and_errors():
    a = randn(3, 4, seed=37)

    def fn(x):
        y = x * 3
        y.fill_diagonal_(0.5)
        return y * x
    compare_with_torch(fn, None, a)
    with pytest.raises(RuntimeError, match="leaf Variable"):
        gt.zeros(2, 2, requires_grad=True).fill_diagonal_(1)
    with pytest.raises(RuntimeError, match="larger than 1"):
        gt.zeros(3).fill_diagonal_(1)
    with pytest.raises(RuntimeError, match="equal length"):
        gt.zeros(2, 3, 2).fill_diagonal_(1)


@pytest.mark.parametrize("arr", [np.array([1, 0, 2]), np.array([[0.0, 1.0], [2.0, 0.0], [np.nan, 0.0]]),
                                 np.array(3), np.zeros((2, 0))])
@pytest.mark.parametrize("size,fill", [(0, -1), (1, 7), (4, -1)])
def test_nonzero_static(arr, size, fill):
    g, t = _both(arr)
    _same(g.nonzero_static(size=size, fill_value=fill), t.nonzero_static(size=size, fill_value=fill), exact=True)
    _same(gt.nonzero_static(g, size=size), torch.nonzero_static(t, size=size), exact=True)


@pytest.mark.first_pass
def test_nonzero_static_errors():
    with pytest.raises(RuntimeError, match="non-negative"):
        gt.tensor([1, 0]).nonzero_static(size=-1)
    with pytest.raises(TypeError):
        gt.tensor([1, 0]).nonzero_static(2)


# ---- in-place shape changes ----------------------------------------------------------------------------------
INPLACE_SHAPE = {"squeeze_": ((), {}), "squeeze_1": ((1,), {}), "unsqueeze_": ((-1,), {}), "t_": ((), {}),
                 "transpose_": ((0, 2), {}), "swapaxes_": ((1, 0), {}), "swapdims_": ((-1, -3), {})}


@pytest.mark.parametrize("name", sorted(INPLACE_SHAPE))
def test_inplace_shape_changes(name):
    args, _ = INPLACE_SHAPE[name]
    method = name.rstrip("1")
    shape = (3, 1) if method == "t_" else (2, 1, 3)
    a = randn(*shape, seed=38)
    g, t = _both(a)
    assert getattr(g, method)(*args) is g
    getattr(t, method)(*args)
    _same(g, t, exact=True)

    def fn(x):
        y = x * 2
        before = y + 1            # recorded before the change: reads y's old shape
        assert getattr(y, method)(*args) is y
        return (y * y).sum() + (before * before).sum()
    compare_with_torch(fn, None, a)
    check_grad(fn, a)
    with pytest.raises(RuntimeError, match="leaf Variable"):
        getattr(gt.tensor(a, requires_grad=True), method)(*args)
    leaf, tleaf = gt.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    with gt.no_grad(), torch.no_grad():
        getattr(leaf, method)(*args)
        getattr(tleaf, method)(*args)
    assert leaf.shape == tuple(tleaf.shape) and leaf.is_leaf and leaf.requires_grad


def test_inplace_shape_changes_share_memory_and_errors():
    base = gt.zeros(2, 3)
    alias = base.detach()
    alias.t_()
    alias[0, 1] = 5.0          # the same memory, seen transposed
    assert base[1, 0].item() == 5.0 and alias.shape == (3, 2) and base.shape == (2, 3)
    with pytest.raises(IndexError, match="Dimension out of range"):
        gt.zeros(2, 3).unsqueeze_(5)
    with pytest.raises(RuntimeError, match="<= 2 dimensions"):
        gt.zeros(2, 3, 4).t_()
    with use_mesh(2):
        x = gt.tensor(randn(4, 1, 3, seed=39)).shard(0)
        want = x.numpy().squeeze(1).transpose(1, 0)
        x.squeeze_(1).transpose_(0, 1)
        np.testing.assert_array_equal(x.numpy(), want)


# ---- apply_ / map_ / new_empty_strided / resize_ / renorm_ ------------------------------------------------
def test_apply_and_map():
    g, t = _both(np.arange(6.0).reshape(2, 3))
    g = g.cpu()                 # CPU tensors only, as torch's (gt's own are on a GPU where it computes there)
    assert g.apply_(lambda v: v * v - 1) is g
    t.apply_(lambda v: v * v - 1)
    _same(g, t, exact=True)
    gi, ti = _both(np.arange(4))
    gi = gi.cpu()
    _same(gi.map_(gt.tensor([1, 2, 3, 4], device="cpu"), lambda a, b: a * b + 0.7),
          ti.map_(torch.tensor([1, 2, 3, 4]), lambda a, b: a * b + 0.7), exact=True)
    g2, t2 = _both(np.ones((2, 3)))
    g2 = g2.cpu()
    _same(g2.map_(gt.tensor([1.0, 2.0, 3.0], dtype=gt.float64, device="cpu"), lambda a, b: a - b),
          t2.map_(torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64), lambda a, b: a - b), exact=True)
    with pytest.raises(RuntimeError, match="requires grad"):
        gt.zeros(2, requires_grad=True).apply_(abs)
    with pytest.raises(RuntimeError, match="requires grad"):
        gt.zeros(2, requires_grad=True).map_(gt.zeros(2), max)


@pytest.mark.first_pass
def test_new_empty_strided():
    x = gt.zeros(2, dtype=gt.float64)
    y = x.new_empty_strided((2, 3), (3, 1))
    assert y.shape == (2, 3) and y.dtype == gt.float64
    z = x.new_empty_strided([4], [1], dtype=gt.int64, requires_grad=False)
    assert z.shape == (4,) and z.dtype == gt.int64
    with pytest.raises(RuntimeError, match="dimensionality of sizes"):
        x.new_empty_strided((2, 3), (3,))


def test_resize():
    for shape in [(2, 2), (2, 4), (6,), (0,), (3, 2)]:
        g, t = _both(np.arange(6.0))
        assert g.resize_(*shape) is g
        t.resize_(*shape)
        assert g.shape == tuple(t.shape)
        keep = min(6, int(np.prod(shape)))
        np.testing.assert_array_equal(g.numpy().reshape(-1)[:keep], t.numpy().reshape(-1)[:keep])
    g = gt.arange(6.0)
    assert g.resize_as_(gt.zeros(3, 2)).shape == (3, 2)
    assert gt.resize_as_(g, gt.zeros(1)).shape == (1,)
    with pytest.raises(RuntimeError, match="require grad"):
        gt.zeros(3, requires_grad=True).resize_(4)


def test_renorm_():
    a = randn(3, 4, seed=40) * 3
    g, t = _both(a)
    assert g.renorm_(2, 0, 1.5) is g
    t.renorm_(2, 0, 1.5)
    _same(g, t)

    def fn(x):
        y = x * 1.0
        y.renorm_(1, 1, 2.0)
        return y
    compare_with_torch(fn, None, a)


@pytest.mark.parametrize("change", ["squeeze", "unsqueeze", "unsqueeze_t"])
def test_inplace_shape_change_of_a_view(change):
    """A view changed in shape stays a view: a later write into it reaches its base, and ops
    recorded before the change read its values of before (gradients as torch's)."""
    a = randn(2, 3, seed=41)

    def fn(lib):
        def run(x):
            y = x * 2
            y.add_(1)
            z = y[0]
            before = z * 5
            if change == "squeeze":
                z.squeeze_()
            elif change == "unsqueeze":
                z.unsqueeze_(0)
            else:
                z.unsqueeze_(1).t_()
            w = z * 3
            z.add_(x[0] if change == "squeeze" else x[:1])
            return (w * w).sum() + (z * z).sum() + (y * y * y).sum() + (before * before).sum()
        return run
    compare_with_torch(fn(gt), fn(torch), a)


@pytest.mark.parametrize("include_self", [True, False])
def test_index_reduce_prod_gradient_with_zeros(include_self):
    """prod's gradient: the product of the other factors; one zero in a slot gets the product of the
    rest, two zeros give 0 everywhere in that slot (as torch)."""
    x = np.array([[0.0, 2.0, 1.5], [3.0, -1.0, 0.5], [0.0, 0.7, 1.2], [2.0, 0.0, 0.9]])
    src = np.array([[1.5, 0.0, 2.0], [0.0, 3.0, -0.5], [0.0, 0.0, 1.1], [0.8, 1.3, 0.0], [0.6, -2.0, 1.7]])
    i = np.array([0, 2, 0, 3, 2])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        compare_with_torch(lambda a, b, k: a.index_reduce(0, k, b, "prod", include_self=include_self), None, x, src, i)
    check_grad(lambda a, b: a.index_reduce(0, gt.tensor(i), b, "prod", include_self=include_self), x, src)


@pytest.mark.first_pass
def test_scatter_forms_edges():
    cases = ["select_scatter(SRC(4), 0, -1)", "select_scatter(SRC(3), 1, -4)", "slice_scatter(SRC(1, 4), 0, -1)",
             "slice_scatter(SRC(0, 4), 0, 5, 9)", "slice_scatter(SRC(3, 2), 1, None, None, 2)"]
    for case in cases:
        ours = eval("gt.zeros(3, 4)." + case, {"gt": gt, "SRC": lambda *s: gt.arange(1.0, 1.0 + np.prod(s)).reshape(s)})
        theirs = eval("torch.zeros(3, 4)." + case, {"torch": torch,
                                                    "SRC": lambda *s: torch.arange(1.0, 1.0 + np.prod(s)).reshape(s)})
        _same(ours, theirs, exact=True)
    with pytest.raises(IndexError, match="out of range"):
        gt.zeros(3, 4).select_scatter(gt.ones(4), -2, 3)
    with pytest.raises(RuntimeError, match="step must be positive"):
        gt.zeros(3, 4).slice_scatter(gt.ones(3, 4), 0, None, None, -1)
    x = gt.zeros(3, 4)
    out = x.slice_scatter(gt.ones(3, 4))
    out[0, 0] = 5.0
    assert x[0, 0].item() == 0.0   # a new tensor: the input is left as it was


def test_index_reduce_prod_refuses_a_second_derivative_by_name():
    """Its recorded gradient is right to first order only: create_graph=True is refused, not wrong."""
    x = gt.tensor([1.0, 2.0, 3.0, 4.0], requires_grad=True)
    s = gt.tensor([2.0, 0.0, 5.0], requires_grad=True)
    index = gt.tensor([0, 0, 2])
    gx, gs = gt.autograd.grad(x.index_reduce(0, index, s, "prod").sum(), (x, s))
    assert gx.tolist() == [0.0, 1.0, 5.0, 1.0] and gs.tolist() == [0.0, 2.0, 3.0]
    with pytest.raises(NotImplementedError, match=r'the backward of index_reduce\(\.\.\., "prod"\)'):
        gt.autograd.grad(x.index_reduce(0, index, s, "prod").sum(), (x, s), create_graph=True)
