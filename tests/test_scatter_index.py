"""torch's scatter and index family in gt (gt/tensor/scatter_methods.py, index_methods.py), each
run beside torch: values, dtypes, shapes and gradients; repeated positions summed where torch
sums them; out-of-range indices and other bad arguments refused with messages naming them."""

import math

import numpy as np
import pytest

import gt
from helpers import check_grad, compare_with_torch, run_beside_torch, torch_or_skip

RNG = np.random.default_rng(0)
X = RNG.standard_normal((3, 4))
S = RNG.standard_normal((4, 5))
PERM = np.array([[2, 0, 1, 1], [0, 2, 2, 0]])               # dim 0 of X: no repeats within a column
ROWS = np.array([[3, 0, 2], [1, 3, 0], [0, 1, 3]])          # dim 1 of X: no repeats within a row
DUPS = np.array([[0, 0, 2, 1, 0], [2, 2, 2, 0, 1]])          # dim 0 of X, with repeats
TIES = np.array([[1.0, 3.0, 3.0, 0.5], [2.0, 2.0, -1.0, 2.0], [0.0, 0.0, 0.0, 0.0]])

# name -> (function of gt or torch tensors, inputs); the same code runs on both
DIFFERENTIABLE = {
    "scatter along dim 0": (lambda x, i, s: x.scatter(0, i, s), (X, PERM, S[:2, :4])),
    "scatter along dim -1, index smaller than the tensor": (lambda x, i, s: x.scatter(-1, i, s), (X, ROWS[:2, :2],
                                                                                                 S[:2, :2])),
    "scatter a number": (lambda x, i: x.scatter(1, i, 2.5) * x, (X, ROWS)),
    "scatter value=": (lambda x, i: x.scatter(1, i, value=-1.0), (X, ROWS)),
    "scatter_add with repeats": (lambda x, i, s: x.scatter_add(0, i, s), (X, DUPS[:, :4], S[:2, :4])),
    "scatter_add along dim 1": (lambda x, i, s: x.scatter_add(1, i, s), (X, np.array([[0, 0, 3, 3, 1]] * 2),
                                                                          S[:2])),
    "index_add": (lambda x, i, s: x.index_add(1, i, s), (X, np.array([3, 0, 3]), S[:3, :3])),
    "index_add with alpha": (lambda x, i, s: x.index_add(0, i, s, alpha=-2.5), (X, np.array([2, 2]), S[:2, :4])),
    "index_copy": (lambda x, i, s: x.index_copy(1, i, s), (X, np.array([3, 1]), S[:3, :2])),
    "index_copy along dim 0": (lambda x, i, s: x.index_copy(0, i, s), (X, np.array([2, 0]), S[:2, :4])),
    "index_fill": (lambda x, i: x.index_fill(1, i, 0.5), (X, np.array([0, -1]))),
    "index_fill with a 0-d tensor": (lambda x, i, v: x.index_fill(0, i, v), (X, np.array([1]), np.array(3.0))),
    "masked_select": (lambda x, m: x.masked_select(m), (X, X > 0)),
    "masked_select broadcasting": (lambda x, m: x.masked_select(m), (X[0], X > 0)),
    "masked_scatter": (lambda x, m, s: x.masked_scatter(m, s), (X, X > 0, S[:3, :4])),
    "masked_scatter broadcasting": (lambda x, m, s: x.masked_scatter(m, s), (X[0], X > 0, S[:3, :4])),
}
for _reduce in ("sum", "mean", "amax", "amin"):
    for _self in (True, False):
        DIFFERENTIABLE[f"scatter_reduce {_reduce}, include_self={_self}"] = (
            lambda x, i, s, r=_reduce, k=_self: x.scatter_reduce(0, i, s, r, include_self=k), (X, DUPS[:, :4], S[:2, :4]))
        DIFFERENTIABLE[f"scatter_reduce {_reduce} with ties, include_self={_self}"] = (
            lambda x, i, s, r=_reduce, k=_self: x.scatter_reduce(1, i, s, r, include_self=k),
            (TIES[:2, :3], np.array([[0, 0, 0, 1], [1, 1, 1, 2]]), TIES[:2]))


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name", list(DIFFERENTIABLE))
def test_values_and_gradients_are_torchs(name, dtype):
    fn, arrays = DIFFERENTIABLE[name]
    compare_with_torch(fn, None, *arrays, dtype=dtype)


@pytest.mark.parametrize("name", ["scatter along dim 0", "scatter_add with repeats", "index_add with alpha",
                                  "masked_scatter broadcasting", "scatter_reduce mean, include_self=False",
                                  "scatter_reduce amax, include_self=True", "index_fill with a 0-d tensor"])
def test_gradients_against_finite_differences(name):
    fn, arrays = DIFFERENTIABLE[name]
    check_grad(fn, *arrays)


def test_nan_and_infinity_win_a_max_and_a_min_as_in_torch():
    x = np.array([[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]])
    src = np.array([[math.nan, 7.0, -math.inf], [math.inf, -1.0, 2.0]])
    for reduce in ("amax", "amin", "sum", "mean"):
        compare_with_torch(lambda a, i, s: a.scatter_reduce(1, i, s, reduce), None,
                           x, np.array([[0, 0, 2], [1, 2, 2]]), src, grad=False)


@pytest.mark.parametrize("op", ["scatter", "scatter_add", "scatter_reduce"])
def test_a_src_larger_than_the_index_gives_its_uncovered_part_a_zero_gradient(op):
    """torch reads only the part of ``src`` the index covers, but its backward then fails on the
    shape of src's gradient; gt's is zero where src was not read: values against torch, the
    gradient against finite differences."""
    args = {"scatter": (), "scatter_add": (), "scatter_reduce": ("mean",)}[op]
    fn = lambda x, i, s: getattr(x, op)(1, i, s, *args)          # noqa: E731
    compare_with_torch(fn, None, X[:2], ROWS[:2, :2], S[:2, :3], grad=False)
    check_grad(fn, X[:2], ROWS[:2, :2], S[:2, :3])


INTS = np.array([[5, -3, 0, 2], [7, 1, 1, -4]])
INT_PROGRAMS = {
    "scatter of ints": lambda L, a: a.scatter(1, L.tensor([[1, 0], [3, 2]]), L.tensor([[10, 20], [30, 40]])),
    "scatter a float into ints": lambda L, a: a.scatter(0, L.tensor([[1, 0, 1, 0]]), 7.9),
    "scatter into bools": lambda L, a: (a > 0).scatter(0, L.tensor([[1, 0, 1, 0]]), True),
    "scatter_add of ints": lambda L, a: a.scatter_add(0, L.tensor([[1, 1, 0, 0]]), a),
    "scatter_reduce mean of ints rounds down": lambda L, a: a.scatter_reduce(1, L.tensor([[0, 0, 0, 1]] * 2), a,
                                                                             "mean"),
    "mean of ints without self": lambda L, a: a.scatter_reduce(1, L.tensor([[0, 0, 0, 1]] * 2), a, "mean",
                                                               include_self=False),
    "scatter_reduce prod": lambda L, a: a.scatter_reduce(1, L.tensor([[0, 0, 3, 3]] * 2), a, "prod"),
    "prod without self": lambda L, a: a.scatter_reduce(1, L.tensor([[0, 0, 3, 3]] * 2), a, "prod", include_self=False),
    "amax of ints": lambda L, a: a.scatter_reduce(0, L.tensor([[1, 1, 1, 1]]), a[1:] * 2, "amax", include_self=False),
    "index_add of ints, alpha cut to an int": lambda L, a: a.index_add(1, L.tensor([0, 0]), a[:, :2], alpha=2.5),
    "an int32 index": lambda L, a: a.scatter_add(0, L.tensor([[1, 1, 0, 0]], dtype=L.int32), a[:1]) + a.index_add(
        1, L.tensor([3, 3], dtype=L.int32), a[:, :2]),
    "index_add along dim -1 with no index": lambda L, a: a.index_add(-1, L.tensor([], dtype=L.int64), a[:, :0]),
    "index_fill of ints with a float": lambda L, a: a.index_fill(1, L.tensor([2]), 3.7),
    "index_copy of ints": lambda L, a: a.index_copy(0, L.tensor([1]), a[:1] * 3),
    "index_fill of a 0-d tensor": lambda L, a: a[0, 0].index_fill(0, L.tensor([0]), -1),
    "index_copy of a 0-d tensor": lambda L, a: a[0, 0].index_copy(0, L.tensor([0]), L.tensor([9])),
    "scatter_add of a 0-d tensor": lambda L, a: a[0, 0].scatter_add(0, L.tensor(0), a[1, 1]),
    "scatter of a 0-d tensor": lambda L, a: a[0, 0].scatter(0, L.tensor(0), a[1, 1]),
    "scatter with an empty index": lambda L, a: a.scatter(0, L.zeros((0, 4), dtype=L.int64), a),
    "masked_select of ints": lambda L, a: a.masked_select(a > 0),
    "masked_select of a 0-d tensor": lambda L, a: a[0, 0].masked_select(L.tensor(True)),
    "masked_scatter of ints": lambda L, a: a.masked_scatter(a < 0, a * 10),
    "masked_scatter with no True": lambda L, a: a.masked_scatter(a > 100, a[:0]),
    "nonzero": lambda L, a: a.nonzero(),
    "nonzero of floats with NaN": lambda L, a: L.tensor([[0.0, math.nan], [-0.0, 2.0]]).nonzero(),
    "nonzero of a 0-d tensor": lambda L, a: a[0, 0].nonzero(),
    "nonzero of an empty tensor": lambda L, a: a[:0].nonzero(),
    "argwhere": lambda L, a: L.argwhere(a > 0),
    "bincount": lambda L, a: L.bincount(a.abs().reshape(-1)),
    "bincount with minlength": lambda L, a: a.abs().reshape(-1).bincount(minlength=12),
    "bincount with float weights": lambda L, a: a.abs().reshape(-1).bincount(L.arange(8) * 0.5),
    "bincount with int weights": lambda L, a: a.abs().reshape(-1).bincount(L.arange(8)),
    "bincount of nothing": lambda L, a: a.reshape(-1)[:0].bincount(),
    "bucketize": lambda L, a: L.bucketize(a, L.tensor([-3, 0, 1, 5])),
    "bucketize right, int32": lambda L, a: L.bucketize(a, L.tensor([-3, 0, 1, 5]), right=True, out_int32=True),
    "bucketize a number": lambda L, a: L.bucketize(1.5, L.tensor([-3.0, 0.0, 1.0, 5.0])),
}


@pytest.mark.parametrize("name", list(INT_PROGRAMS))
def test_integer_programs_as_in_torch(name):
    run_beside_torch(INT_PROGRAMS[name], INTS)


SORTED = np.array([-1.0, 0.0, 0.0, 2.5, 7.0])
SEARCHES = {
    "1-D": lambda L, v: L.searchsorted(L.tensor(SORTED), v),
    "right": lambda L, v: L.searchsorted(L.tensor(SORTED), v, right=True),
    "side right": lambda L, v: L.searchsorted(L.tensor(SORTED), v, side="right"),
    "side left, int32": lambda L, v: L.searchsorted(L.tensor(SORTED), v, side="left", out_int32=True),
    "N-D": lambda L, v: L.searchsorted(L.tensor(np.sort(np.stack([SORTED, -SORTED]), 1)), v),
    "a number": lambda L, v: L.searchsorted(L.tensor(SORTED), 0.0),
    "int sequence, float values": lambda L, v: L.searchsorted(L.tensor([-1, 0, 3]), v),
    "with a sorter": lambda L, v: L.searchsorted(L.tensor(SORTED[::-1].copy()), v, sorter=L.tensor([4, 3, 2, 1, 0])),
    "an empty sequence": lambda L, v: L.searchsorted(L.tensor(SORTED[:0]), v),
    "NaN values": lambda L, v: L.searchsorted(L.tensor(SORTED), L.tensor([math.nan, 1.0])),
}


@pytest.mark.parametrize("name", list(SEARCHES))
def test_searchsorted_as_in_torch(name):
    torch = torch_or_skip()
    values = np.array([[0.0, -5.0, 2.5], [9.0, 0.1, 7.0]])
    ours = SEARCHES[name](gt, gt.tensor(values))
    theirs = SEARCHES[name](torch, torch.tensor(values))
    assert str(ours.dtype).split(".")[-1] == str(theirs.dtype).split(".")[-1]
    assert ours.shape == tuple(theirs.shape)
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())


UNIQUE_INPUTS = {
    "floats with NaN": np.array([3.0, 1.0, math.nan, 1.0, math.nan, 2.0, 3.0]),
    "ints, 2-D": np.array([[3, 1, 1], [2, 3, 3]]),
    "bools": np.array([True, False, True]),
    "0-d": np.array(5),
    "empty": np.zeros(0, np.float32),
}


@pytest.mark.parametrize("which", ["unique", "unique_consecutive"])
@pytest.mark.parametrize("name", list(UNIQUE_INPUTS))
def test_unique_as_in_torch(name, which):
    torch = torch_or_skip()
    x = UNIQUE_INPUTS[name]
    for inverse, counts in [(False, False), (True, False), (False, True), (True, True)]:
        ours = getattr(gt, which)(gt.tensor(x), return_inverse=inverse, return_counts=counts)
        theirs = getattr(torch, which)(torch.tensor(x), return_inverse=inverse, return_counts=counts)
        ours, theirs = (ours, theirs) if isinstance(ours, tuple) else ((ours,), (theirs,))
        assert len(ours) == len(theirs)
        for a, b in zip(ours, theirs):
            assert a.dtype.name == str(b.dtype).split(".")[-1] and a.shape == tuple(b.shape), (inverse, counts)
            np.testing.assert_array_equal(a.numpy(), b.numpy())


SLICES = {
    "int rows": np.array([[1, 2, 1], [3, 4, 3], [1, 2, 1], [0, 0, 0], [3, 4, 3]]),
    "float 3-D": np.array([[[0.5, 1.0], [0.5, 1.0]], [[-2.0, 0.0], [0.5, 1.0]], [[0.5, 1.0], [0.5, 1.0]]]),
    "one row": np.array([[7, 7, 7]]),
    "bool": np.array([[True, False], [True, False], [False, False]]),
}


@pytest.mark.parametrize("which", ["unique", "unique_consecutive"])
@pytest.mark.parametrize("name", list(SLICES))
def test_unique_slices_along_a_dim_as_in_torch(name, which):
    torch = torch_or_skip()
    x = SLICES[name]
    for dim in range(-x.ndim, x.ndim):
        ours = getattr(gt.tensor(x), which)(dim=dim, return_inverse=True, return_counts=True)
        theirs = getattr(torch.tensor(x), which)(dim=dim, return_inverse=True, return_counts=True)
        for a, b in zip(ours, theirs):
            assert a.dtype.name == str(b.dtype).split(".")[-1] and a.shape == tuple(b.shape), dim
            np.testing.assert_array_equal(a.numpy(), b.numpy())
        plain = getattr(gt, which)(gt.tensor(x), dim=dim)
        np.testing.assert_array_equal(plain.numpy(), theirs[0].numpy())


def test_where_of_a_condition_alone_is_nonzero_as_tuple():
    torch = torch_or_skip()
    for x in (X > 0, np.array(2.0), np.array(0.0), np.zeros((0, 3))):
        ours, theirs = gt.where(gt.tensor(x)), torch.where(torch.tensor(x))
        assert len(ours) == len(theirs)
        for a, b in zip(ours, theirs):
            assert a.dtype == gt.int64 and a.shape == tuple(b.shape)
            np.testing.assert_array_equal(a.numpy(), b.numpy())
        for a, b in zip(gt.tensor(x).nonzero(as_tuple=True), theirs):
            np.testing.assert_array_equal(a.numpy(), b.numpy())
    with pytest.raises(TypeError, match="give both input and other, or neither"):
        gt.where(gt.tensor(X > 0), 1.0)


IN_PLACE = {
    "scatter_": lambda L, x: x.scatter_(1, L.tensor([[0, 3]] * 3), 1.5),
    "scatter_add_": lambda L, x: x.scatter_add_(0, L.tensor([[0, 0, 2, 2]]), x[:1] * 2),
    "scatter_reduce_": lambda L, x: x.scatter_reduce_(0, L.tensor([[0, 0, 2, 2]]), x[:1] * 2, "amin",
                                                      include_self=False),
    "index_add_": lambda L, x: x.index_add_(1, L.tensor([1, 1]), x[:, :2] * 2, alpha=3),
    "index_copy_": lambda L, x: x.index_copy_(0, L.tensor([2]), x[:1] + 1),
    "index_fill_": lambda L, x: x.index_fill_(1, L.tensor([-2]), -7.0),
    "masked_scatter_": lambda L, x: x.masked_scatter_(x > 0, -x),
}


@pytest.mark.parametrize("name", list(IN_PLACE))
def test_in_place_forms_change_the_tensor(name):
    torch = torch_or_skip()
    ours, theirs = gt.tensor(X), torch.tensor(X)
    assert IN_PLACE[name](gt, ours) is ours
    IN_PLACE[name](torch, theirs)
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-12)


# in-place forms on the tape: ``y = x * 1.5`` changed in place; ``w``, read before the change, keeps
# the old values, and the gradients reach x and the value through both (the same code runs on torch)
def _changed(x, write):
    y = x * 1.5
    w = y.exp()
    write(y)
    return w, y * 2


ON_TAPE = {
    "scatter_": lambda x, i, s: _changed(x, lambda y: y.scatter_(0, i, s[:2])),
    "scatter_ a number": lambda x, i, s: _changed(x, lambda y: y.scatter_(0, i, 2.5)),
    "scatter_add_": lambda x, i, s: _changed(x, lambda y: y.scatter_add_(0, i, s[:2])),
    "scatter_reduce_ mean": lambda x, i, s: _changed(x, lambda y: y.scatter_reduce_(0, i, s[:2], "mean")),
    "scatter_reduce_ amax, include_self=False": lambda x, i, s: _changed(
        x, lambda y: y.scatter_reduce_(0, i, s[:2], "amax", include_self=False)),
    "index_add_": lambda x, i, s: _changed(x, lambda y: y.index_add_(0, i[0, :2], s[:2], alpha=-2.0)),
    "index_copy_": lambda x, i, s: _changed(x, lambda y: y.index_copy_(0, i[0, 1:3], s[:2])),
    "index_fill_": lambda x, i, s: _changed(x, lambda y: y.index_fill_(1, i[0, :2], -7.0)),
    "index_fill_ with a 0-d tensor": lambda x, i, s: _changed(x, lambda y: y.index_fill_(1, i[0, :2], s[0, 0])),
    "masked_scatter_": lambda x, i, s: _changed(x, lambda y: y.masked_scatter_(x > 0, s)),
    "into a tensor that needs no gradient": lambda x, i, s: _changed(x.detach(), lambda y: y.index_add_(0, i[0, :2], s[:2])),
}


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name", list(ON_TAPE))
def test_in_place_forms_on_the_tape_are_torchs(name, dtype):
    compare_with_torch(ON_TAPE[name], None, X, DUPS[:, :4] if "add" in name or "reduce" in name else PERM, S[:3, :4],
                       dtype=dtype)


def test_in_place_forms_on_the_tape_against_finite_differences():
    check_grad(ON_TAPE["scatter_add_"], X, DUPS[:, :4], S[:3, :4])


def test_in_place_forms_refuse_a_leaf_that_requires_grad():
    x = gt.tensor(X, requires_grad=True)
    with pytest.raises(RuntimeError, match="a leaf Variable that requires grad is being used in an in-place operat"
                                           "ion.*scatter_"):
        x.scatter_(1, gt.tensor([[0]] * 3), 1.0)
    with pytest.raises(RuntimeError, match="leaf Variable.*index_add_"):
        x.index_add_(0, gt.tensor([0, 1, 2]), gt.tensor(X))
    with gt.no_grad():
        y = gt.zeros(3, 4, dtype=gt.float64).index_add_(0, gt.tensor([0, 1, 2]), x)
    np.testing.assert_array_equal(y.numpy(), X)
    assert not y.requires_grad


def test_in_place_forms_refuse_an_integer_tensor_on_the_tape():
    # torch refuses it for the dtypes (a float source into an integer tensor), as gt does without grad
    with pytest.raises(TypeError, match="index_add: source has dtype float32 but the tensor has int64"):
        gt.zeros(3, dtype=gt.int64).index_add_(0, gt.tensor([0]), gt.ones(1, requires_grad=True))


def test_function_forms_are_the_methods():
    x, i = gt.tensor(X), gt.tensor(ROWS)
    for name, args in {"scatter": (1, i, 0.0), "scatter_add": (1, i, x), "scatter_reduce": (1, i, x, "amax"),
                       "index_add": (0, gt.tensor([1]), x[:1]), "index_fill": (0, gt.tensor([1]), 2.0),
                       "index_copy": (0, gt.tensor([1]), x[:1]), "masked_select": (x > 0,),
                       "masked_scatter": (x > 0, x * 2), "unique": (), "unique_consecutive": ()}.items():
        np.testing.assert_array_equal(getattr(gt, name)(x, *args).numpy(), getattr(x, name)(*args).numpy())


@pytest.mark.parametrize("call, error, message", [
    (lambda x: x.scatter(1, gt.tensor([[4], [0], [0]]), 1.0), RuntimeError,  # torch's type
     "scatter: index 4 is out of bounds for dimension 1 with size 4"),
    (lambda x: x.scatter(0, gt.tensor([[-1, 0, 0, 0]]), 1.0), RuntimeError,  # torch's type
     "scatter: index -1 is out of bounds for dimension 0 with size 3"),
    (lambda x: x.scatter_add(0, gt.tensor([[3, 0, 0, 0]]), x), RuntimeError,  # torch's type
     "scatter_add: index 3 is out of bounds for dimension 0 with size 3"),
    (lambda x: x.scatter_reduce(0, gt.tensor([[9]]), x, "amax"), RuntimeError,  # torch's type
     "scatter_reduce: index 9 is out of bounds for dimension 0 with size 3"),
    (lambda x: x.index_add(1, gt.tensor([0, 4]), x[:, :2]), RuntimeError,  # torch's type
     "index_add: index 4 is out of bounds for dimension 1 with size 4"),
    (lambda x: x.index_copy(0, gt.tensor([-1]), x[:1]), IndexError,
     "index_copy: index -1 is out of bounds for dimension 0 with size 3"),
    (lambda x: x.index_fill(1, gt.tensor([-5]), 0.0), IndexError,
     "index_fill: index -5 is out of bounds for dimension 1 with size 4"),
    (lambda x: x.scatter(2, gt.tensor([[0]]), 1.0), IndexError, "scatter: axis 2 is out of range"),
    (lambda x: x.scatter(0, gt.tensor([[0.0]]), 1.0), TypeError, "scatter: index must be an int64 tensor, got a float32"),
    (lambda x: x.scatter(0, gt.tensor([0]), 1.0), ValueError, r"index must have the tensor's number of dims \(2\)"),
    (lambda x: x.scatter(0, gt.zeros(1, 5, dtype=gt.int64), 1.0), ValueError,
     r"index of shape \(1, 5\) must be no larger than src \(1, 5\) and, apart from dim 0, no larger than the tensor"),
    (lambda x: x.scatter(0, gt.zeros(2, 2, dtype=gt.int64), x[:1]), ValueError, "must be no larger than src"),
    (lambda x: x.scatter(0, gt.zeros(1, 1, dtype=gt.int64), x.double()), TypeError,
     "scatter: src has dtype float64 but the tensor has float32"),
    (lambda x: x.scatter(0, gt.zeros(1, 1, dtype=gt.int64)), TypeError, "give src .* or value"),
    (lambda x: x.scatter(0, gt.zeros(1, 1, dtype=gt.int64), x, reduce="sum"), RuntimeError,
     "reduce argument must be either add or multiply"),
    (lambda x: x.scatter_add(0, gt.zeros(1, 1, dtype=gt.int64), 1.0), TypeError, "scatter_add: src must be a tensor"),
    (lambda x: x.scatter_reduce(0, gt.zeros(1, 1, dtype=gt.int64), x, "max"), ValueError,
     "reduce must be one of 'sum', 'prod', 'mean', 'amax', 'amin', got 'max'"),
    (lambda x: x.scatter_reduce(0, gt.zeros(1, 1, dtype=gt.int64), x, "sum", include_self=1), TypeError,
     "include_self must be True or False"),
    (lambda x: (x > 0).scatter_reduce(0, gt.zeros(1, 1, dtype=gt.int64), x > 0, "mean"), TypeError,
     "reduce='mean' of bool tensors"),
    (lambda x: x.index_add(1, gt.tensor([[0]]), x[:, :1]), ValueError, r"index must be a 1-D tensor \(or 0-d\)"),
    (lambda x: x.index_add(1, gt.tensor([0, 1]), x[:, :3]), ValueError,
     r"source of shape \(3, 3\) must have the tensor's shape \(3, 4\) with dim 1 of size 2"),
    (lambda x: x.index_add(1, gt.tensor([0]), x[:, :1].long()), TypeError, "source has dtype int64"),
    (lambda x: x.index_copy(1, gt.tensor([0]), 1.0), TypeError, "index_copy: source must be a tensor"),
    (lambda x: x.index_fill(1, gt.tensor([0]), gt.ones(1)), ValueError, "value must be a number or a 0-d tensor"),
    (lambda x: x.masked_select(x), TypeError, "masked_select: mask must be a bool tensor, got a float32"),
    (lambda x: x.masked_select(gt.ones(2, dtype=gt.bool)), ValueError, "cannot be broadcast"),
    (lambda x: x.masked_scatter(x > -10, x[0]), ValueError,
     "masked_scatter: source has 4 elements, fewer than the 12 True values of the mask"),
    (lambda x: x.masked_scatter(x > 0, x.long()), TypeError, "masked_scatter: source has dtype int64"),
    (lambda x: x.unique(dim=2), IndexError, r"unique: dim must be an int in \[-2, 1\]"),
    (lambda x: x.unique_consecutive(dim=1.0), IndexError, "unique_consecutive: dim must be an int"),
    (lambda x: x.sum().unique(dim=0), IndexError, "a 0-d tensor has no dim 0"),
    (lambda x: x.unique(return_counts=1), TypeError, "return_counts must be True or False"),
    (lambda x: x.nonzero(as_tuple=None), TypeError, "as_tuple must be True or False"),
    (lambda x: x.bincount(), TypeError, r"bincount: expected a 1-D tensor of non-negative ints, got a float32 tensor"),
    (lambda x: gt.tensor([1, -2]).bincount(), ValueError, "bincount: expected non-negative ints, got -2"),
    (lambda x: gt.tensor([1, 2]).bincount(minlength=-1), ValueError, "minlength must be a non-negative int"),
    (lambda x: gt.tensor([1, 2]).bincount(gt.ones(3)), ValueError, "weights must be 1-D with one value per element"),
    (lambda x: gt.searchsorted(x[0], x, side="middle"), ValueError, "side must be 'left' or 'right', got 'middle'"),
    (lambda x: gt.searchsorted(x[0], x, side="left", right=True), ValueError, "contradict each other"),
    (lambda x: gt.searchsorted(x, x[:2]), ValueError, r"share all but the last dim with values, got shapes \(3, 4\)"),
    (lambda x: gt.searchsorted(x[0, 0], x), ValueError, "sorted_sequence must be a tensor of at least 1 dim"),
    (lambda x: gt.bucketize(x, x), ValueError, r"boundaries must be a 1-D tensor, got shape \(3, 4\)"),
])
def test_bad_arguments_are_named(call, error, message):
    with pytest.raises(error, match=message):
        call(gt.tensor(X, dtype=gt.float32))


def test_sharded_tensors_give_the_unsharded_answers():
    # on a mesh of several devices (GT_DEVICES=N) the tensors are split over it; on one, shard() is a no-op
    x = gt.tensor(np.tile(X, (2, 1)), requires_grad=True)                 # (6, 4)
    index = gt.tensor(np.tile(DUPS[:, :4], (3, 1)) * 2)                     # (6, 4), values < 6
    programs = [lambda t, i: t.scatter_add(0, i, t * 2), lambda t, i: t.scatter_reduce(0, i, t, "amax"),
                lambda t, i: t.index_add(0, i[:, 0], t), lambda t, i: t.index_fill(1, i[0, :2], -1.0),
                lambda t, i: t.masked_scatter(t > 0, t * 3)]
    for program in programs:
        want = program(x, index)
        got = program(x.shard(0), index.shard(0))
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-12)
        x.grad = None
        (want * want).sum().backward()
        gx, x.grad = x.grad.numpy(), None
        (got * got).sum().backward()
        np.testing.assert_allclose(x.grad.numpy(), gx, rtol=1e-12)
        x.grad = None
    s = x.detach().shard(0)
    assert gt.get_mesh().size == 1 or s.placement == gt.Shard(0)
    np.testing.assert_array_equal(s.masked_select(s > 0).numpy(), x.detach().masked_select(x.detach() > 0).numpy())
    np.testing.assert_array_equal(s.nonzero().numpy(), x.detach().nonzero().numpy())
    np.testing.assert_array_equal(index.shard(0).unique().numpy(), np.unique(index.numpy()))
    np.testing.assert_array_equal(index.shard(0).reshape(-1).bincount().numpy(), np.bincount(index.numpy().ravel()))


@pytest.mark.parametrize("case", ["rows", "dim 1 int alpha", "view of rows", "strided view"])
def test_index_add_in_place_without_gradients_is_torch_s(case):
    # an unrecorded index_add_ writes into the tensor's own array (it computed index_add and
    # copied it back): the same values, through views too, and the version moves on
    torch = torch_or_skip()
    out = {}
    for L in (gt, torch):
        base = L.tensor(np.arange(40.0).reshape(5, 8) / 3)
        if case == "dim 1 int alpha":
            base = base.to(L.int64)
        target = {"view of rows": base[1:4], "strided view": base[:, ::2]}.get(case, base)
        dim = 1 if case in ("dim 1 int alpha", "strided view") else 0
        index = L.tensor([2, 0, 2])
        shape = list(target.shape)
        shape[dim] = 3
        source = L.tensor(np.linspace(-1, 1, int(np.prod(shape))).reshape(shape)).to(target.dtype)
        alpha = 2 if case == "dim 1 int alpha" else 1
        before, want = target._version, target.index_add(dim, index, source, alpha=alpha).numpy()
        with L.no_grad():
            assert target.index_add_(dim, index, source, alpha=alpha) is target
        # one change (the torch engine counted it twice); a sharded tensor's shards count their own
        sharded = L is gt and target._placed is not None
        assert target._version == before + 1 or sharded and target._version > before
        np.testing.assert_array_equal(target.numpy(), want)      # the out-of-place op's bits
        out[L] = base.numpy()
    np.testing.assert_allclose(out[gt], out[torch], rtol=1e-15, atol=0)   # repeats summed in another order


_SCALAR_SOURCE = [((3,), 0, [0, 1]), ((3, 4), 0, [0, 1]), ((3, 4), 1, [0, 1]), ((3, 4), 0, [0]), ((3, 4), 1, [0]),
                  ((3,), 0, [0]), ((3,), 0, [])]


def _with_scalar_source(lib, op, shape, dim, idx):
    x = lib.zeros(*shape, dtype=lib.float64, requires_grad=True) * 1
    s = lib.tensor(2.0, dtype=lib.float64, requires_grad=True)
    try:
        y = getattr(x, op)(dim, lib.tensor(idx, dtype=lib.int64), s)
    except Exception as e:          # noqa: BLE001 - the class is what is compared
        return e
    y.sum().backward()
    return y.tolist(), s.grad.item()


@pytest.mark.parametrize("op", ["index_add", "index_add_", "index_copy", "index_copy_"])
@pytest.mark.parametrize("shape, dim, idx", _SCALAR_SOURCE)
def test_a_scalar_source_is_taken_or_refused_as_torchs(op, shape, dim, idx):
    # torch takes a 0-d source in index_copy at one index of a 1-d tensor (gt refused it) and raises
    # IndexError at other counts of indices in both ops (gt raised its shape error)
    torch = torch_or_skip()
    got, want = _with_scalar_source(gt, op, shape, dim, idx), _with_scalar_source(torch, op, shape, dim, idx)
    if isinstance(want, Exception):
        assert isinstance(got, type(want)), f"gt {got!r}, torch {want!r}"
    else:
        assert got == want


# index_put into a tensor whose trailing dims hold no element: (shape, indices as numpy, values' shape)
EMPTY_REST = {
    "mask_over_rows_of_nothing": ((3, 0), (np.array([True, False, True]),), (1, 0)),
    "positions_over_rows_of_nothing": ((3, 0, 2), (np.array([0, 2]),), (2, 0, 2)),
    "two_indices_then_nothing": ((2, 3, 0), (np.array([1, 0]), np.array([2, 2])), (0,)),
}


@pytest.mark.parametrize("accumulate", [False, True])
@pytest.mark.parametrize("case", sorted(EMPTY_REST))
def test_index_put_with_trailing_dims_of_no_element_is_torchs(case, accumulate):
    """The values were flattened with reshape(-1, *rest), ambiguous where rest holds a 0: a ShapeError
    from inside, where torch writes nothing and returns the tensor."""
    torch = torch_or_skip()
    shape, indices, values = EMPTY_REST[case]
    results = []
    for lib in (torch, gt):
        x, v = lib.zeros(*shape), lib.ones(*values)
        index = tuple(lib.tensor(i) for i in indices)
        out = x.index_put(index, v, accumulate=accumulate)
        x.index_put_(index, v, accumulate=accumulate)
        results.append((tuple(out.shape), tuple(x.shape)))
    assert results[1] == results[0] == (shape, shape)


# index_put with a mask that does not fit: (shape, index parts: a mask's shape or "positions")
MISFIT_MASKS = {
    "short_mask": ((3, 4), [(2,)]),
    "second_dim_of_a_2d_mask": ((3, 4), [(3, 3)]),
    "second_mask_on_dim_1": ((3, 4), [(3,), (3,)]),
    "mask_after_positions": ((2, 3, 4), ["positions", (4,)]),
    "2d_mask_after_a_mask": ((2, 3, 4), [(2,), (3, 5)]),
    "mask_of_nothing": ((3, 4), [(0,)]),
    "mask_beside_rows_of_nothing": ((3, 0), [(3, 1)]),
}


@pytest.mark.parametrize("inplace", [False, True])
@pytest.mark.parametrize("case", sorted(MISFIT_MASKS))
def test_index_put_mask_misfit_is_torchs_message(case, inplace):
    """index_put's own mask test named the mask's position among the indices and a slice of the
    shape, where torch names the dim of the mask and the whole shape with the dim it meets."""
    torch = torch_or_skip()
    shape, parts = MISFIT_MASKS[case]
    messages = []
    for lib in (torch, gt):
        x = lib.zeros(*shape)
        index = tuple(lib.tensor(np.array([0, 1]) if p == "positions" else np.ones(p, bool)) for p in parts)
        with pytest.raises(IndexError) as caught:
            x.index_put_(index, lib.tensor(1.0)) if inplace else x.index_put(index, lib.tensor(1.0))
        messages.append(str(caught.value))
    assert messages[1] == messages[0]


def test_index_put_mask_past_the_last_dim_names_the_dims():
    with pytest.raises(IndexError, match=r"too many indices for tensor of dimension 2 \(got 3\)"):
        gt.zeros(3, 4).index_put((gt.from_numpy(np.ones((3, 4, 2), bool)),), gt.tensor(1.0))
