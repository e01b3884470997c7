"""torch's construction and shape functions (gt/tensor/construct_functions.py, product_functions.py,
construct_methods.py), each run beside torch on the same inputs: values, dtypes, shapes and gradients."""

import functools
import math
import warnings

import numpy as np
import pytest

import gt
from helpers import check_grad, compare_with_torch, torch_or_skip

RNG = np.random.default_rng(0)
V = RNG.standard_normal(4)
W = RNG.standard_normal(3)
X = RNG.standard_normal((3, 4))
Y = RNG.standard_normal((2, 4))
M = RNG.standard_normal((2, 3, 4))
Q = RNG.standard_normal((3, 3))
S = np.array(1.5)
E = np.zeros((0, 3))

# name -> (program(L, *tensors) where L is gt or torch, inputs); the same code runs on both
PROGRAMS = {
    "hstack 1-D and 0-d": (lambda L, a, s: L.hstack([a, s, a]), (V, S)),
    "hstack 2-D": (lambda L, a, b: L.hstack((a, b.T)), (X, Y[:, :3])),
    "vstack": (lambda L, a, b: L.vstack([a, b]), (X, Y)),
    "vstack 1-D": (lambda L, a: L.vstack([a, a * 2]), (V,)),
    "row_stack": (lambda L, a, b: L.row_stack([a, b]), (X, Y)),
    "dstack": (lambda L, a, b: L.dstack([a, a * b[0, 0]]), (X, Y)),
    "dstack 1-D and 0-d": (lambda L, a, s: L.dstack([a, a + s]), (V, S)),
    "column_stack": (lambda L, a, b: L.column_stack([a, b.T, a]), (W, Y[:, :3])),
    "column_stack 0-d": (lambda L, s: L.column_stack([s, s * 2]), (S,)),
    "atleast_1d of 0-d": (lambda L, s: L.atleast_1d(s), (S,)),
    "atleast_2d of two": (lambda L, s, a: L.atleast_2d(s, a), (S, V)),
    "atleast_2d of a list": (lambda L, s, a, m: L.atleast_2d([s, a, m]), (S, V, M)),
    "atleast_3d": (lambda L, s, a, x, m: L.atleast_3d(s, a, x, m), (S, V, X, M)),
    "tensor_split in sections": (lambda L, m: L.tensor_split(m, 3, dim=2), (M,)),
    "tensor_split at indices": (lambda L, m: m.tensor_split([1, -1, 7], -1), (M,)),
    "tensor_split, more parts than elements": (lambda L, a: a.tensor_split(6), (V,)),
    "take": (lambda L, a, i: L.take(a, i), (X, np.array([[0, 11], [-1, 11]]))),
    "take_along_dim": (lambda L, a, i: L.take_along_dim(a, i, dim=1), (X, np.array([[0, 3], [2, 2], [1, 0]]))),
    "take_along_dim broadcast": (lambda L, a, i: L.take_along_dim(a, i, dim=-1), (M, np.array([[[3, 0]]]))),
    "take_along_dim flat": (lambda L, a, i: L.take_along_dim(a, i), (X, np.array([11, 0, 5]))),
    "take_along_dim of argsort": (lambda L, a: L.take_along_dim(a, a.argsort(1), 1), (X,)),
    "diag of a vector": (lambda L, a: L.diag(a), (V,)),
    "diag above": (lambda L, a: L.diag(a, 2), (V,)),
    "diag below": (lambda L, a: L.diag(a, diagonal=-1), (V,)),
    "diag of a matrix": (lambda L, a: L.diag(a), (X,)),
    "diag of a matrix, offset": (lambda L, a: L.diag(a, 1) * L.diag(a, -2).sum(), (X,)),
    "diag past the matrix": (lambda L, a: L.diag(a, 5), (X,)),
    "diagonal": (lambda L, m: m.diagonal(), (M,)),
    "diagonal dims": (lambda L, m: L.diagonal(m, 1, 0, 2), (M,)),
    "diagonal negative dims": (lambda L, m: m.diagonal(offset=-1, dim1=-1, dim2=-2), (M,)),
    "diagonal last two": (lambda L, m: m.diagonal(0, 1, 2), (M,)),
    "diag_embed": (lambda L, x: L.diag_embed(x), (X,)),
    "diag_embed offset and dims": (lambda L, x: L.diag_embed(x, 1, 0, 2), (X,)),
    "diag_embed below, dims swapped": (lambda L, x: L.diag_embed(x, -2, dim1=-1, dim2=0), (X,)),
    "diagflat": (lambda L, x: L.diagflat(x, -1), (Y,)),
    "trace": (lambda L, x: L.trace(x), (X,)),
    "fliplr": (lambda L, m: L.fliplr(m), (M,)),
    "flipud": (lambda L, a: L.flipud(a), (V,)),
    "rot90": (lambda L, x: L.rot90(x), (X,)),
    "rot90 twice": (lambda L, m: L.rot90(m, 2, [1, 2]), (M,)),
    "rot90 back": (lambda L, m: L.rot90(m, -1, (2, 0)), (M,)),
    "rot90 four times": (lambda L, x: L.rot90(x, 4) * 2, (X,)),
    "meshgrid ij": (lambda L, a, b: L.meshgrid(a, b, indexing="ij"), (V, W)),
    "meshgrid xy of three": (lambda L, a, b, s: L.meshgrid([a, b, s], indexing="xy"), (V, W, S)),
    "cartesian_prod": (lambda L, a, b: L.cartesian_prod(a, b), (V, W)),
    "cartesian_prod of one": (lambda L, a: L.cartesian_prod(a) * 2, (V,)),
    "combinations": (lambda L, a: L.combinations(a), (V,)),
    "combinations of 3 with replacement": (lambda L, a: L.combinations(a, 3, with_replacement=True), (W,)),
    "combinations of 1": (lambda L, a: L.combinations(a, r=1), (V,)),
    "combinations of more than there are": (lambda L, a: L.combinations(a, 4), (W,)),
    "block_diag": (lambda L, x, a, s: L.block_diag(x, a, s), (X, W, S)),
    "cdist": (lambda L, a, b: L.cdist(a, b), (X, Y)),
    "cdist batched, broadcast": (lambda L, m, b: L.cdist(m, b), (M, Y)),
    "cdist p=1": (lambda L, a, b: L.cdist(a, b, p=1), (X, Y)),
    "cdist p=3": (lambda L, a, b: L.cdist(a, b, 3.0), (X, Y)),
    "cdist p=0.5": (lambda L, a, b: L.cdist(a, b, 0.5), (X, Y)),
    "cdist p=inf": (lambda L, a, b: L.cdist(a, b, math.inf), (X, Y)),
    "cdist compute_mode mm": (lambda L, a, b: L.cdist(a, b, compute_mode="use_mm_for_euclid_dist"), (X, Y)),
    "cdist zero distance": (lambda L, a: L.cdist(a, a[:2]), (X,)),
    "kron": (lambda L, x, y: L.kron(x, y), (X, Y)),
    "kron of a vector and a cube": (lambda L, a, m: L.kron(a, m), (W, M)),
    "tensordot": (lambda L, m, x: L.tensordot(m, x), (M, X)),
    "tensordot int": (lambda L, m, x: L.tensordot(m, x.T, dims=1), (M, X)),
    "tensordot lists": (lambda L, m, x: L.tensordot(m, x, dims=([1, 2], [0, 1])), (M, X)),
    "tensordot 0": (lambda L, a, b: L.tensordot(a, b, 0), (V, W)),
    "inner": (lambda L, m, y: L.inner(m, y), (M, Y)),
    "inner of vectors": (lambda L, a: L.inner(a, a * 2), (V,)),
    "inner with a 0-d": (lambda L, s, x: L.inner(s, x), (S, X)),
    "broadcast_tensors": (lambda L, a, x, m: L.broadcast_tensors(a, x, m), (V, X, M)),
    "repeat_interleave int": (lambda L, x: x.repeat_interleave(2), (X,)),
    "repeat_interleave dim": (lambda L, x: L.repeat_interleave(x, 3, dim=1), (X,)),
    "repeat_interleave tensor": (lambda L, x, r: x.repeat_interleave(r, dim=0, output_size=5),
                                 (X, np.array([2, 0, 3]))),
    "repeat_interleave 1-element tensor": (lambda L, x, r: x.repeat_interleave(r, -1), (X, np.array([2]))),
    "select": (lambda L, m: m.select(1, -1), (M,)),
    "gt.select": (lambda L, m: L.select(m, -1, 2), (M,)),
    "unfold": (lambda L, a: a.unfold(0, 2, 1), (V,)),
    "unfold step": (lambda L, m: m.unfold(2, 2, 2), (M,)),
    "unfold middle, uneven": (lambda L, m: m.unfold(1, 2, 2), (M,)),
    "unfold whole": (lambda L, x: x.unfold(-1, 4, 3), (X,)),
    "unfold 0-d": (lambda L, s: s.unfold(0, 1, 1), (S,)),
    "diff": (lambda L, x: L.diff(x), (X,)),
    "diff n=2 dim 0": (lambda L, x: x.diff(2, 0), (X,)),
    "diff prepend append": (lambda L, x, p, a: L.diff(x, 1, -1, p, a), (X, X[:, :2], X[:, :1])),
    "diff beyond the length": (lambda L, a: a.diff(n=5), (V,)),
    "diff n=0": (lambda L, a: a.diff(n=0) * 2, (V,)),
    "sum_to_size": (lambda L, m: m.sum_to_size(3, 1), (M,)),
    "sum_to_size tuple": (lambda L, m: m.sum_to_size((1, 3, 4)), (M,)),
    "sum_to_size same": (lambda L, x: x.sum_to_size(3, 4), (X,)),
    "empty hstack": (lambda L, e: L.hstack([e, e]), (E,)),
    "empty diag_embed": (lambda L, e: L.diag_embed(e, 1), (E,)),
    "empty diagonal": (lambda L, e: e.diagonal(), (E,)),
    "empty cdist": (lambda L, e, x: L.cdist(e, x[:, :3]), (E, X)),
    "empty kron": (lambda L, e, x: L.kron(e, x), (E, X)),
    "empty tensor_split": (lambda L, e: e.tensor_split(2), (E,)),
    "empty repeat_interleave": (lambda L, e: e.repeat_interleave(2, 1), (E,)),
    "empty unfold": (lambda L, e: e.unfold(1, 2, 1), (E,)),
}


def _run(fn, lib):
    return functools.partial(fn, lib)


@pytest.mark.parametrize("name", list(PROGRAMS))
def test_values_dtypes_and_gradients_are_torchs(name):
    torch = torch_or_skip()
    fn, arrays = PROGRAMS[name]
    compare_with_torch(_run(fn, gt), _run(fn, torch), *arrays, dtype="float64")
    compare_with_torch(_run(fn, gt), _run(fn, torch), *arrays, dtype="float32", grad=False)   # values, dtypes


@pytest.mark.parametrize("name", ["diag_embed offset and dims", "cdist p=3", "kron", "tensordot lists",
                                  "unfold middle, uneven", "repeat_interleave tensor", "diff prepend append"])
def test_gradients_against_finite_differences(name):
    fn, arrays = PROGRAMS[name]
    check_grad(_run(fn, gt), *arrays)


INTS = np.arange(12).reshape(3, 4) - 5
INT_PROGRAMS = {
    "hstack": lambda L, a: L.hstack([a, a]),
    "vstack int32 and int64": lambda L, a: L.vstack([a.int(), a]),
    "dstack with floats": lambda L, a: L.dstack([a, a * 0.5]),
    "column_stack": lambda L, a: L.column_stack([a[0], a[1]]),
    "tensor_split by a tensor": lambda L, a: L.tensor_split(a, L.tensor([1, 3]), 1)[1],
    "tensor_split by a 0-d tensor": lambda L, a: L.tensor_split(a, L.tensor(2), 1)[0],
    "tensor_split by a numpy int": lambda L, a: L.tensor_split(a, np.int64(3), 1)[2],
    "take": lambda L, a: L.take(a, L.tensor([3, -2])),
    "diag": lambda L, a: L.diag(L.diag(a, 1)),
    "diag_embed": lambda L, a: L.diag_embed(a),
    "diag_embed of bools": lambda L, a: L.diag_embed(a > 0, -1),
    "diagflat": lambda L, a: L.diagflat(a[:2, :2]),
    "trace": lambda L, a: L.trace(a),
    "trace int32": lambda L, a: L.trace(a.int()),
    "rot90": lambda L, a: L.rot90(a, 3),
    "kron": lambda L, a: L.kron(a[:2, :2], a[:2]),
    "kron int and float": lambda L, a: L.kron(a[0], a[1] * 0.5),
    "tensordot": lambda L, a: L.tensordot(a, a.T, 1),
    "inner": lambda L, a: L.inner(a, a),
    "cartesian_prod": lambda L, a: L.cartesian_prod(a[0], a[1, :2], a[2, :3]),
    "combinations": lambda L, a: L.combinations(a[0], 3),
    "combinations of 0": lambda L, a: L.combinations(a[0], 0),
    "combinations of an empty": lambda L, a: L.combinations(a[0, :0], 2),
    "block_diag": lambda L, a: L.block_diag(a[:2], a[0], L.tensor(7)),
    "block_diag of ints and floats": lambda L, a: L.block_diag(a[:1], L.tensor([0.5])),
    "block_diag of nothing": lambda L, a: L.block_diag(),
    "repeat_interleave": lambda L, a: a.repeat_interleave(L.tensor([1, 0, 2]), dim=0),
    "repeat_interleave of repeats": lambda L, a: L.repeat_interleave(L.tensor([2, 0, 3])),
    "repeat_interleave of zero": lambda L, a: a.repeat_interleave(0, 1),
    "select": lambda L, a: a.select(0, 1),
    "unfold": lambda L, a: a.unfold(1, 3, 1),
    "diff": lambda L, a: L.diff(a, dim=0),
    "diff int32": lambda L, a: a.int().diff(),
    "diff of bools": lambda L, a: (a > 0).diff(),
    "sum_to_size": lambda L, a: a.sum_to_size(1, 4),
    "sum_to_size int32": lambda L, a: a.int().sum_to_size(3, 1),
    "diff of ints with a float prepend": lambda L, a: L.diff(a, prepend=L.tensor([[0.5]] * 3), append=a[:, :1]),
    "fliplr": lambda L, a: L.fliplr(a),
    "flipud": lambda L, a: L.flipud(a),
    "take_along_dim": lambda L, a: L.take_along_dim(a, a.argmax(1, keepdim=True), 1),
    "tril_indices": lambda L, a: L.tril_indices(3, 4),
    "tril_indices offset": lambda L, a: L.tril_indices(4, 3, -1),
    "triu_indices": lambda L, a: L.triu_indices(3, 5, 2),
    "triu_indices int32": lambda L, a: L.triu_indices(3, 3, -1, dtype=L.int32),
    "triu_indices of nothing": lambda L, a: L.triu_indices(0, 3),
    "logspace": lambda L, a: L.logspace(-2, 2, 7),
    "logspace base 2": lambda L, a: L.logspace(0, 3, 4, base=2),
    "logspace float64": lambda L, a: L.logspace(0, 1, 5, dtype=L.float64),
    "logspace int": lambda L, a: L.logspace(0, 1, 5, dtype=L.int64),
    "logspace empty": lambda L, a: L.logspace(0, 1, 0),
    "logspace one": lambda L, a: L.logspace(3, 1, 1),
    "isclose ints": lambda L, a: L.isclose(a, a + 1, atol=1),
    "isclose ints, rtol": lambda L, a: L.isclose(a, a + 1),
    "broadcast_tensors": lambda L, a: L.broadcast_tensors(a, a[0])[1],
    "methods diag, trace": lambda L, a: a.diag(1).diag() + a[:, :3].trace(),
    "methods diag_embed, diagflat": lambda L, a: a.diag_embed(-1)[0] + a[:1].diagflat(1),
    "methods take, take_along_dim": lambda L, a: a.take(L.tensor([1, 2]))
    + a.take_along_dim(L.tensor([[0], [1], [3]]), 1)[0],
    "methods fliplr, flipud, rot90": lambda L, a: a.fliplr().flipud().rot90(1, [1, 0]),
    "method isclose": lambda L, a: a.isclose(a + 1, 0.0, 1.0),
    "methods kron, inner": lambda L, a: a[:2, :2].kron(a[0, :2]).inner(a[:2]),
    "nelement": lambda L, a: L.tensor(a.nelement() + a[0].nelement()),
    "ndimension": lambda L, a: L.tensor([a.ndimension(), a[0, 0].ndimension()]),
}


@pytest.mark.parametrize("name", list(INT_PROGRAMS))
def test_integer_tensors_and_constructions_as_in_torch(name):
    torch = torch_or_skip()
    ours = INT_PROGRAMS[name](gt, gt.tensor(INTS))
    theirs = INT_PROGRAMS[name](torch, torch.tensor(INTS))
    assert ours.dtype.name == str(theirs.dtype).replace("torch.", "")
    assert ours.shape == tuple(theirs.shape)
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-6)


SPECIAL = [0.0, 1.0, math.inf, -math.inf, math.nan, 1e-9, 100.0, -0.0]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("kwargs", [{}, {"equal_nan": True}, {"rtol": 0.1, "atol": 0.5}, {"rtol": 0, "atol": 0}])
def test_isclose_of_special_values_is_torchs(dtype, kwargs):
    torch = torch_or_skip()
    a = np.repeat(SPECIAL, len(SPECIAL)).astype(dtype)
    b = np.tile(SPECIAL, len(SPECIAL)).astype(dtype) * 1.05
    ours = gt.isclose(gt.tensor(a), gt.tensor(b), **kwargs)
    theirs = torch.isclose(torch.tensor(a), torch.tensor(b), **kwargs)
    assert ours.dtype == gt.bool
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())


def test_diag_embed_keeps_zeros_off_the_diagonal_of_infinities():
    torch = torch_or_skip()
    v = np.array([math.inf, math.nan, 1.0])
    np.testing.assert_array_equal(gt.diag(gt.tensor(v), 1).numpy(), torch.diag(torch.tensor(v), 1).numpy())


def test_meshgrid_warns_as_torch_without_indexing():
    with pytest.warns(UserWarning, match="required to pass the indexing argument"):
        a, b = gt.meshgrid(gt.tensor([1, 2]), gt.tensor([3, 4, 5]))
    assert a.shape == b.shape == (2, 3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        gt.meshgrid(gt.tensor([1, 2]), indexing="xy")


def test_broadcast_shapes_and_the_function_forms():
    assert gt.broadcast_shapes((2, 1), (3,), 1) == (2, 3)
    assert gt.broadcast_shapes() == ()
    x = gt.tensor(M)
    assert [t.shape for t in gt.tensor_split(x, 2, 1)] == [(2, 2, 4), (2, 1, 4)]
    np.testing.assert_array_equal(gt.diagonal(x, 0, 1, 2).numpy(), x.diagonal(0, 1, 2).numpy())
    np.testing.assert_array_equal(gt.diff(x, dim=0).numpy(), (x[1:] - x[:1]).numpy())
    assert gt.atleast_1d(x) is x and isinstance(gt.atleast_3d([x]), tuple)


def test_diagonal_of_the_last_two_dims_select_and_tensor_split_are_views():
    x = gt.zeros(2, 3, 3)
    d = x.diagonal(0, -2, -1)
    d += 1
    np.testing.assert_array_equal(x.numpy(), np.broadcast_to(np.eye(3), (2, 3, 3)))
    y = gt.zeros(3, 4)
    column = y.select(1, 2)
    column += 1
    part = y.tensor_split(2, 1)[1]
    part += 5
    np.testing.assert_array_equal(y.numpy()[0], [0, 0, 6, 5])


def _t(*shape, dtype=None):
    return gt.zeros(*shape, dtype=dtype)


@pytest.mark.parametrize("call, error, message", [
    (lambda: gt.diag(_t(2, 2, 2)), RuntimeError, r"diag\(\): Supports 1D or 2D tensors. Got 3D"),
    (lambda: gt.diag(_t()), RuntimeError, "Got 0D"),
    (lambda: gt.trace(_t(2, 2, 2)), RuntimeError, "trace: expected a matrix, but got tensor with dim 3"),
    (lambda: gt.fliplr(_t(2)), RuntimeError, "Input must be >= 2-d"),
    (lambda: gt.flipud(_t()), RuntimeError, "Input must be >= 1-d"),
    (lambda: gt.rot90(_t(2, 2), 1, [0]), RuntimeError, "expected total rotation dims == 2, but got dims = 1"),
    (lambda: gt.rot90(_t(2), 1, [0, 1]), RuntimeError, "expected total dims >= 2, but got total dims = 1"),
    (lambda: gt.rot90(_t(2, 2), 1, [0, -2]), RuntimeError, "expected rotation dims to be different"),
    (lambda: _t(3).unfold(0, 5, 1), RuntimeError, "maximum size for tensor at dimension 0 is 3 but size is 5"),
    (lambda: _t(3).unfold(0, 2, 0), RuntimeError, "step is 0 but must be > 0"),
    (lambda: _t(3).select(0, 5), IndexError, r"select\(\): index 5 out of range for tensor of size \[3\] at dim"),
    (lambda: _t().select(0, 0), IndexError, "0-dim"),
    (lambda: _t(3).repeat_interleave(-1), RuntimeError, "Repeats must be non-negative"),
    (lambda: _t(3).repeat_interleave(gt.tensor([1, 2])), RuntimeError, "repeats must have the same size as input"),
    (lambda: _t(3).repeat_interleave(gt.tensor([1, -2, 1])), RuntimeError, "repeats can not be negative"),
    (lambda: _t(3).repeat_interleave(gt.tensor([1.0, 2.0, 1.0])), RuntimeError, "expected an integer tensor"),
    (lambda: _t(3).repeat_interleave(2, output_size=5), RuntimeError, "Invalid output_size, expected 6 but got 5"),
    (lambda: gt.repeat_interleave(_t(3)), RuntimeError, "repeats must be 0-dim or 1-dim integer tensor"),
    (lambda: _t(2, 3).sum_to_size(3, 3), RuntimeError, r"size \{\[3, 3\]\} is not expandable to size \{\[2, 3\]\}"),
    (lambda: _t(3).sum_to_size(1, 3), RuntimeError, "is not expandable"),
    (lambda: gt.tensor_split(_t(3), 0), RuntimeError, "number of sections must be larger than 0, got 0"),
    (lambda: gt.tensor_split(_t(), 1), RuntimeError, "at least a 1-dimensional tensor"),
    (lambda: gt.tensor_split(_t(3), gt.tensor([[1]])), RuntimeError, "zero-dimensional or one-dimensional"),
    (lambda: gt.take(_t(2, 3), gt.tensor([6])), IndexError, "tried to access index 6 on a tensor of 6 elements"),
    (lambda: gt.take(_t(2, 3), gt.tensor([1.0])), RuntimeError, "Expected a long tensor for index"),
    (lambda: gt.take_along_dim(_t(2, 3), gt.tensor([[[0]]]), 1), RuntimeError, "same number of dimensions"),
    (lambda: gt.cdist(_t(3), _t(2, 3)), RuntimeError, "cdist only supports at least 2D tensors, X1 got: 1D"),
    (lambda: gt.cdist(_t(2, 3), _t(2, 4)), RuntimeError, "same number of columns. X1: 3 X2: 4"),
    (lambda: gt.cdist(_t(2, 3), _t(2, 3), p=-1), RuntimeError, "only supports non-negative p values"),
    (lambda: gt.cdist(_t(2, 3, dtype=gt.int64), _t(2, 3)), RuntimeError, "only supports floating-point dtypes"),
    (lambda: gt.cdist(_t(2, 3), _t(2, 3), compute_mode="fast"), ValueError, "fast is not a valid value"),
    (lambda: gt.tensordot(_t(2, 3), _t(4, 2), dims=1), RuntimeError, "contracted dimensions need to match"),
    (lambda: gt.tensordot(_t(2, 3), _t(3, 2), dims=-1), RuntimeError, "tensordot expects dims >= 0"),
    (lambda: gt.tensordot(_t(2, 3), _t(3, 2), dims=([0], [0, 1])), RuntimeError, "same length"),
    (lambda: gt.inner(_t(2, 3), _t(4)), RuntimeError, r"last dimension must match .* \[2, 3\] and \[4\]"),
    (lambda: gt.broadcast_shapes((2, 3), (4,)), RuntimeError, "Shape mismatch: objects cannot be broadcast"),
    (lambda: gt.broadcast_tensors(_t(2, 3), _t(4)), RuntimeError, "cannot be broadcast"),
    (lambda: gt.meshgrid(_t(2, 2), indexing="ij"), RuntimeError, "Expected 0D or 1D tensor"),
    (lambda: gt.meshgrid(_t(2), indexing="yx"), RuntimeError, 'indexing must be one of "xy" or "ij"'),
    (lambda: gt.cartesian_prod(gt.tensor([1, 2]), _t(2)), RuntimeError, "expects all tensors to have the same dtype"),
    (lambda: gt.diff(_t(3), prepend=_t()), RuntimeError, "prepend or append to be the same dimension as input"),
    (lambda: gt.take_along_dim(_t(2, 3), gt.tensor([[0]]), dim=-3), IndexError, "out of range"),
    (lambda: gt.combinations(_t(2, 2)), RuntimeError, r"Expect a 1D vector, but got shape \[2, 2\]"),
    (lambda: gt.cartesian_prod(_t(2), _t()), RuntimeError, "Expect a 1D vector"),
    (lambda: gt.block_diag(_t(2, 2, 2)), RuntimeError, "Input 0 has 3 dimensions"),
    (lambda: gt.diff(_t(3), n=-1), RuntimeError, "order must be non-negative but got -1"),
    (lambda: gt.diff(_t()), RuntimeError, "diff expects input to be at least one-dimensional"),
    (lambda: gt.diagonal(_t(2, 2), 0, 0, -2), RuntimeError, "diagonal dimensions cannot be identical"),
    (lambda: gt.diag_embed(_t(2), 0, 0, 0), RuntimeError, "diagonal dimensions cannot be identical"),
    (lambda: _t(2, 2).diagonal(0, 0, 2), IndexError, "out of range"),
    (lambda: gt.tril_indices(-1, 2), RuntimeError, "row must be non-negative, got -1"),
    (lambda: gt.triu_indices(2, 2, dtype=gt.float32), RuntimeError, "expected an integer dtype"),
    (lambda: gt.isclose(_t(2), _t(2, dtype=gt.float64)), RuntimeError, "did not match"),
    (lambda: gt.isclose(_t(2), _t(2), rtol=-1), RuntimeError, "must be non-negative"),
    (lambda: gt.logspace(0, 1, -1), RuntimeError, "number of steps must be non-negative"),
    (lambda: gt.hstack([]), RuntimeError, "hstack expects a non-empty TensorList"),
    (lambda: gt.vstack(_t(2)), TypeError, "must be a tuple or list of tensors"),
    (lambda: gt.kron(_t(2), 3), TypeError, r"kron\(\): argument 'other' \(position 2\) must be Tensor"),  # torch's
    (lambda: _t(2).inner(None), TypeError, "inner: unsupported operand NoneType"),
])
def test_bad_arguments_are_named(call, error, message):
    with pytest.raises(error, match=message):
        call()


TALL = RNG.standard_normal((8, 4))   # axis 0 split over the devices under GT_DEVICES=N (Shard(0))
SHARDED = {
    "vstack": lambda L, t: L.vstack([t, t * 2]),
    "hstack": lambda L, t: L.hstack([t, t]),
    "tensor_split": lambda L, t: t.tensor_split([3, 5]),
    "diagonal": lambda L, t: t.diagonal(-1),
    "diag_embed": lambda L, t: L.diag_embed(t),
    "take": lambda L, t: L.take(t, L.tensor([0, 31, 9])),
    "rot90": lambda L, t: L.rot90(t),
    "cdist": lambda L, t: L.cdist(t, t[:3]),
    "kron": lambda L, t: L.kron(t[:2], t),
    "tensordot": lambda L, t: L.tensordot(t, t, ([0], [0])),
    "repeat_interleave": lambda L, t: t.repeat_interleave(L.tensor([1, 0, 2, 1, 1, 3, 0, 1]), dim=0),
    "unfold": lambda L, t: t.unfold(0, 3, 2),
    "diff": lambda L, t: t.diff(dim=0),
    "sum_to_size": lambda L, t: t.sum_to_size(1, 4),
    "select": lambda L, t: t.select(0, 5),
}


@pytest.mark.parametrize("name", list(SHARDED))
def test_sharded_inputs_give_torchs_results(name):
    torch = torch_or_skip()
    fn = SHARDED[name]
    compare_with_torch(_run(fn, gt), _run(fn, torch), TALL)


def test_cdist_p0_counts_the_differing_entries():
    torch = torch_or_skip()
    a, b = X.round(), np.concatenate([X[:1].round(), Y.round()])
    compare_with_torch(lambda x, y: gt.cdist(x, y, p=0), lambda x, y: torch.cdist(x, y, p=0), a, b, grad=False)


def test_an_empty_tensor_sharded_off_axis_0_reshapes_to_its_shape():
    """kron of an empty tensor reshapes an empty product split along axis 1 (GT_DEVICES=N)."""
    t = gt.zeros(0, 4, 3).shard(1)
    assert t.reshape(0, 12).shape == (0, 12)
    assert gt.kron(gt.zeros(0, 3), gt.zeros(4, 4)).shape == (0, 12)


LINSPACE_ENDS = [(-1, 1), (0, 1), (0.3, 7.7), (-5, 2.5), (1e-3, 1e3), (-3.7, 3.7), (5, -5), (2, 2), (-87.08, 60.55)]


@pytest.mark.parametrize("dtype", ["float32", "float64", "int64", "int32"])
def test_linspace_is_torch_s_to_the_bit(dtype):
    """torch's kernel: a step in the dtype, values from the start for the first half and from the
    end for the rest, each one fused multiply-add (rounded once). numpy's linspace, or the values
    computed in float64 and cast, differ in the last bit for some lengths (affine_grid's pixel
    centres then land in the neighbouring cell)."""
    torch = torch_or_skip()
    for steps in list(range(0, 70)) + [127, 1000, 4097]:
        for start, end in LINSPACE_ENDS:
            ours = gt.linspace(start, end, steps, dtype=getattr(gt, dtype))
            theirs = torch.linspace(start, end, steps, dtype=getattr(torch, dtype))
            assert ours.dtype.name == dtype and ours.shape == tuple(theirs.shape)
            np.testing.assert_array_equal(ours.numpy(), theirs.numpy(), err_msg=f"{steps} from {start} to {end}")
    assert gt.linspace(0, float("inf"), 1).tolist() == [0.0] and math.isnan(gt.linspace(0, float("inf"), 3)[1].item())
    with pytest.raises(ValueError, match="steps must be a non-negative int, got -1"):
        gt.linspace(0, 1, -1)


def test_linspace_16_bit_floats_are_torch_s():
    """float16 and bfloat16 round after each operation, as torch's 16-bit arithmetic does (the
    numpy engine has no bfloat16: checked through the values gt computes for it)."""
    torch = torch_or_skip()
    from gt.backend.torch_ranges import linspace as torch_line

    for name in ("float16", "bfloat16"):
        for steps in list(range(2, 40)) + [3000]:
            for start, end in LINSPACE_ENDS:
                theirs = torch.linspace(start, end, steps, dtype=getattr(torch, name)).float().numpy()
                np.testing.assert_array_equal(torch_line(start, end, steps, name), theirs)


@pytest.mark.parametrize("dtype", ["float32", "float64", "float16", "int64"])
def test_arange_is_torch_s_to_the_bit(dtype):
    """torch's kernel: values from a float64 accumulator in 32-byte vectors whose lanes count from
    a base rounded to the dtype; numpy's arange (first value plus i times a rounded delta) differs
    in the last bit for most float ranges (``arange(0, 1, 0.1)`` among them)."""
    torch = torch_or_skip()
    rng = np.random.default_rng(3)
    ranges = [(0, 1, 0.1), (0.63, 2.99, 0.1), (-6.3, -4.19, 0.018), (2.0, 401.6, 1.824), (5, -5, -0.7), (0, 0, 1)]
    for _ in range(150):
        start, step = round(float(rng.normal(0, 5)), 2), round(float(rng.uniform(0.01, 3)), 3) * (1 if rng.random() < 0.8 else -1)
        ranges.append((start, start + step * int(rng.integers(1, 300)) + float(rng.uniform(-0.9, 0.9)) * abs(step), step))
    ranges.append((0.0, 40000 * 0.1, 0.1))       # over torch's 32,768-value grain: one part per thread
    for start, end, step in ranges:
        if dtype == "int64":
            start, end, step = int(start), int(end), int(np.sign(step)) * max(1, abs(int(step)))
        if dtype == "float16" and max(abs(start), abs(end)) > 1000:
            continue
        theirs = torch.arange(start, end, step, dtype=getattr(torch, dtype))
        ours = gt.arange(start, end, step, dtype=getattr(gt, dtype))
        assert ours.dtype.name == dtype and ours.shape == tuple(theirs.shape), (start, end, step)
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy(), err_msg=f"arange({start}, {end}, {step})")


def test_arange_refuses_what_torch_refuses():
    torch = torch_or_skip()
    for args, match in [((5, -5, 1), "inconsistent with step sign"), ((0, float("inf"), 1), "unsupported range: 0 -> inf"),
                        ((0, float("nan"), 0.5), "unsupported range")]:
        for lib in (gt, torch):
            with pytest.raises(RuntimeError, match=match):
                lib.arange(*args)
    with pytest.raises(ValueError, match="step must be a finite number, got nan"):
        gt.arange(0, 5, float("nan"))
    assert gt.arange(3, 3, -1).shape == (0,) == tuple(torch.arange(3, 3, -1).shape)
    with pytest.raises(TypeError, match="expected numbers"):
        gt.arange("a")


def test_arange_takes_numpy_scalars_and_one_element_tensors_as_torch():
    torch = torch_or_skip()
    for program in (lambda m: m.arange(m.tensor(5)), lambda m: m.arange(np.int64(3)), lambda m: m.arange(m.tensor(0.5), 3),
                    lambda m: m.arange(0, 3, m.tensor(1)), lambda m: m.arange(np.float32(0.5), 2, 0.5)):
        ours, theirs = program(gt), program(torch)
        assert ours.dtype.name == str(theirs.dtype)[6:] and ours.tolist() == theirs.tolist()


@pytest.mark.parametrize("dtype", ["float32", "float64", "int64", "float16"])
def test_logspace_is_torch_s_to_the_bit(dtype):
    """torch's kernel: exponents from a float64 step (no fused multiply-add there), halves from each
    end, and the C library's pow (numpy's vectorised power differs from it in the last bit)."""
    torch = torch_or_skip()
    for steps in list(range(0, 40)) + [257]:
        for start, end, base in [(-2, 2, 10.0), (0, 3, 2.0), (-5, 5, 2.718281828), (1, -1, 3.0), (0.5, 7.3, 1.7)]:
            theirs = torch.logspace(start, end, steps, base=base, dtype=getattr(torch, dtype))
            ours = gt.logspace(start, end, steps, base=base, dtype=getattr(gt, dtype))
            assert ours.dtype.name == dtype and ours.shape == tuple(theirs.shape)
            np.testing.assert_array_equal(ours.numpy(), theirs.numpy(), err_msg=f"{steps}: {start}..{end}, base {base}")


@pytest.mark.skipif(gt.get_backend() != "torch", reason="bfloat16 tensors need the torch engine (GT_BACKEND=torch)")
def test_bfloat16_creation_is_torch_s():
    """``gt.tensor(..., dtype=gt.bfloat16)`` (it went through numpy, which has no bfloat16, and
    failed) and the ranges in bfloat16, to the bit."""
    torch = torch_or_skip()
    def same(ours, theirs):     # bfloat16 -> float32 is exact: equal floats are equal bfloat16 values
        assert ours.dtype == gt.bfloat16
        np.testing.assert_array_equal(ours.float().numpy(), theirs.float().numpy())

    for data in ([1.0, 2.3, -0.7], np.array([1.0, 2.3]), 3.3, [1, 2]):
        same(gt.tensor(data, dtype=gt.bfloat16), torch.tensor(data, dtype=torch.bfloat16))
    same(gt.linspace(-1, 1, 37, dtype=gt.bfloat16), torch.linspace(-1, 1, 37, dtype=torch.bfloat16))
    same(gt.arange(0, 5, 0.3, dtype=gt.bfloat16), torch.arange(0, 5, 0.3, dtype=torch.bfloat16))
    same(gt.logspace(0, 2, 9, dtype=gt.bfloat16), torch.logspace(0, 2, 9, dtype=torch.bfloat16))


@pytest.mark.filterwarnings("ignore:Converting a tensor with requires_grad=True to a scalar")   # torch's note
def test_tensor_of_a_list_of_tensors_reads_each_as_a_number_as_torch():
    """``gt.tensor([loss_a, loss_b])``: each one-element tensor is a number (shape (2,) whether the
    losses are 0-d or (1,); it was (2, 1)), the dtypes promote as torch's, and a tensor of several
    elements is torch's ValueError (gt stacked it)."""
    torch = torch_or_skip()
    programs = [lambda m: [1.0, m.tensor([2.0])], lambda m: [m.tensor([1.0]), m.tensor(2.0)],
                lambda m: [[m.tensor([1.0])], [m.tensor([2.0])]], lambda m: [m.tensor(1, dtype=m.int32), 2],
                lambda m: [m.tensor(1, dtype=m.int32), m.tensor(3, dtype=m.int32)],
                lambda m: [m.tensor(1.5, dtype=m.float64), 2.0], lambda m: [m.tensor(1, dtype=m.int32), 2.5],
                lambda m: [m.tensor(True), 1], lambda m: (m.tensor(True), m.tensor(False)),
                lambda m: [m.tensor(2.0, requires_grad=True) * 3]]
    for program in programs:
        ours, theirs = gt.tensor(program(gt)), torch.tensor(program(torch))
        assert ours.shape == tuple(theirs.shape) and ours.dtype.name == str(theirs.dtype)[6:], program(torch)
        assert ours.tolist() == theirs.tolist() and not ours.requires_grad
    assert gt.tensor([gt.tensor(1.5, dtype=gt.float64)], dtype=gt.float32).dtype == gt.float32
    for lib in (gt, torch):
        with pytest.raises(ValueError, match="only one element tensors can be converted to Python scalars"):
            lib.tensor((lib.tensor([1.0, 2.0]),))
