"""torch's tensor methods that gt composes from its own ops (gt/tensor/extra_methods.py), each
run beside torch: values, dtypes, shapes and, where torch has them, gradients."""

import math

import numpy as np
import pytest

import gt
from helpers import compare_with_torch, run_beside_torch, torch_or_skip

RNG = np.random.default_rng(0)
X = RNG.standard_normal((3, 4)) * 3
Y = RNG.uniform(0.5, 2.0, (3, 4)) * np.sign(RNG.standard_normal((3, 4)))
V = RNG.standard_normal(4)
W = RNG.standard_normal(5)
M = RNG.standard_normal((2, 3, 4))
N = RNG.standard_normal((2, 4, 5))

# name -> (function of gt or torch tensors, inputs); the same code runs on both
DIFFERENTIABLE = {
    "remainder by a tensor": (lambda a, b: a % b, (X, Y)),
    "remainder by a number": (lambda a: a % 1.5, (X,)),
    "remainder method": (lambda a, b: a.remainder(b), (X, Y)),
    "floor": (lambda a: a.floor() * a, (X,)),
    "ceil": (lambda a: a.ceil() + a, (X,)),
    "trunc": (lambda a: a.trunc() * 2, (X,)),
    "round": (lambda a: a.round() - a, (X,)),
    "round to 2 decimals": (lambda a: a.round(decimals=2), (X,)),
    "sign": (lambda a: a.sign() * a, (X,)),
    "amax over a dim": (lambda a: a.amax(1), (X,)),
    "amax over two dims, kept": (lambda a: a.amax((0, 2), keepdim=True), (M,)),
    "amin of all": (lambda a: a.amin(), (X,)),
    "amax with ties splits the gradient": (lambda a: a.amax(1), (np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]]),)),
    "logsumexp": (lambda a: a.logsumexp(1), (X,)),
    "logsumexp over two dims, kept": (lambda a: a.logsumexp((1, 2), keepdim=True), (M * 30,)),
    "norm": (lambda a: a.norm(), (X,)),
    "norm over a dim": (lambda a: a.norm(dim=1), (X,)),
    "norm 1": (lambda a: a.norm(p=1, dim=0), (X,)),
    "norm inf": (lambda a: a.norm(p=math.inf, dim=1), (X,)),
    "norm 3": (lambda a: a.norm(p=3, dim=1, keepdim=True), (X,)),
    "norm of a zero row": (lambda a: a.norm(dim=1), (np.array([[0.0, 0.0], [3.0, 4.0]]),)),
    "repeat": (lambda a: a.repeat(2, 3), (X,)),
    "repeat with a new axis": (lambda a: a.repeat(2, 1, 2), (V,)),
    "tril": (lambda a: a.tril(), (X,)),
    "tril above the diagonal": (lambda a: a.tril(1), (M,)),
    "triu below the diagonal": (lambda a: a.triu(-1), (X,)),
    "flip": (lambda a: a.flip(1), (M,)),
    "flip two dims": (lambda a: a.flip((0, 2)), (M,)),
    "outer": (lambda a, b: a.outer(b), (V, W)),
    "bmm": (lambda a, b: a.bmm(b), (M, N)),
    "square": (lambda a: a.square(), (X,)),
    "reciprocal": (lambda a: a.reciprocal(), (Y,)),
    "rsqrt": (lambda a: a.abs().rsqrt(), (Y,)),
    "clamp_min": (lambda a: a.clamp_min(0.5), (X,)),
    "clamp_max": (lambda a: a.clamp_max(0.5), (X,)),
    "lerp": (lambda a, b: a.lerp(b, 0.25), (X, Y)),
    "add with alpha": (lambda a, b: a.add(b, alpha=2.5), (X, Y)),
    "sub with alpha": (lambda a, b: a.sub(b, alpha=0.5), (X, Y)),
    "mul, div": (lambda a, b: a.mul(b).div(b.abs() + 1), (X, Y)),
    "neg": (lambda a: a.neg() * a, (X,)),
    "mm": (lambda a, b: a.mm(b.T), (X, Y)),
    "mv": (lambda a, v: a.mv(v), (X, V)),
    "dot": (lambda v, w: v.dot(w), (V, V * 2)),
    "t": (lambda a: a.t() * 2, (X,)),
    "view_as": (lambda a, b: a.view_as(b) * b, (X, Y.reshape(2, 6))),
    "expand_as": (lambda v, a: v.expand_as(a) * a, (V, X)),
    "broadcast_to": (lambda v: v.broadcast_to((3, 4)) * 2, (V,)),
    "movedim": (lambda a: a.movedim(0, 2), (M,)),
    "movedim of two": (lambda a: a.movedim((0, 1), (2, 0)), (M,)),
    "swapaxes": (lambda a: a.swapaxes(0, 2), (M,)),
    "tile": (lambda a: a.tile((2, 1, 2)), (X,)),
    "narrow": (lambda a: a.narrow(1, 1, 2), (M,)),
    "narrow from the end": (lambda a: a.narrow(-1, -3, 2), (M,)),
    "unbind": (lambda a: a.unbind(1), (M,)),
    "roll": (lambda a: a.roll(1, 1), (M,)),
    "roll two dims": (lambda a: a.roll((-1, 2), (0, 2)), (M,)),
    "roll flattened": (lambda a: a.roll(5), (X,)),
    "index_select with repeats": (lambda a, i: a.index_select(1, i), (X, np.array([3, 0, 3]))),
    "gather with repeats": (lambda a, i: a.gather(1, i), (X, np.array([[0, 0, 3], [1, 2, 2], [3, 3, 3]]))),
    "gather along dim 0, a smaller index": (lambda a, i: a.gather(0, i), (X, np.array([[2, 0], [2, 1]]))),
    "frac": (lambda a: a.frac(), (X,)),
    "log2": (lambda a: a.abs().log2(), (Y,)),
    "log10": (lambda a: a.abs().log10(), (Y,)),
    "nan_to_num": (lambda a: (a.log()).nan_to_num(nan=-1.0), (X,)),
}


@pytest.mark.parametrize("name", list(DIFFERENTIABLE))
def test_values_and_gradients_are_torchs(name):
    fn, arrays = DIFFERENTIABLE[name]
    compare_with_torch(fn, None, *arrays)


def test_a_number_divided_by_a_tensor():
    """``5.0 % t``, ``7.0 // t``: torch has no gradient for the divisor there (its backward
    raises, and so does gt's)."""
    compare_with_torch(lambda b: 5.0 % b, None, Y, grad=False)
    compare_with_torch(lambda b: 7.0 // b, None, Y, grad=False)
    b = gt.tensor(Y, requires_grad=True)
    for out, aten in ((5.0 % b, "remainder"), (7.0 // b, "floor_divide")):
        with pytest.raises(RuntimeError, match=f"derivative for aten::{aten} is not implemented"):
            out.sum().backward()


@pytest.mark.parametrize("name", ["floor", "logsumexp", "norm", "tril", "flip", "outer", "bmm", "lerp",
                                  "remainder", "square", "amax"])
def test_the_function_forms_are_the_methods(name):
    torch = torch_or_skip()
    args = {"floor": (X,), "logsumexp": (X, 1), "norm": (X,), "tril": (X,), "flip": (X, (0,)), "outer": (V, W),
            "bmm": (M, N), "lerp": (X, Y, 0.5), "remainder": (X, Y), "square": (X,), "amax": (X, 1)}[name]
    ours = getattr(gt, name)(*[gt.tensor(a) if isinstance(a, np.ndarray) else a for a in args])
    theirs = getattr(torch, name)(*[torch.tensor(a) if isinstance(a, np.ndarray) else a for a in args])
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-12)


INTS = np.array([-7, -3, 0, 2, 7])
INT_PROGRAMS = {
    "int // int": lambda L, a: a // 2,
    "int // negative int": lambda L, a: a // -3,
    "int // float": lambda L, a: a // 2.5,
    "float // int tensor": lambda L, a: 7.5 // (a.abs() + 1),
    "int // int tensor": lambda L, a: 7 // (a.abs() + 1),
    "floor_divide": lambda L, a: a.floor_divide(3),
    "int % int": lambda L, a: a % 3,
    "int % negative int": lambda L, a: a % -3,
    "int % float": lambda L, a: a % 2.5,
    "int % int tensor": lambda L, a: 17 % (a.abs() + 1),
    "floor of ints": lambda L, a: a.floor(),
    "sign of ints": lambda L, a: a.sign(),
    "isnan of ints": lambda L, a: a.isnan(),
    "logical_not": lambda L, a: a.logical_not(),
    "logical_and": lambda L, a: a.logical_and(a > 0),
    "logical_or": lambda L, a: a.logical_or(a > 2),
    "tril of ints": lambda L, a: a.reshape(1, 5).repeat(3, 1).tril(),
    "type_as": lambda L, a: a.type_as(L.zeros(1)),
    "new_zeros": lambda L, a: a.new_zeros(2, 3),
    "new_ones from a tuple": lambda L, a: a.new_ones((2,)),
    "new_full": lambda L, a: a.new_full((2, 2), 7),
    "new_tensor": lambda L, a: a.new_tensor([1, 2]),
    "new_empty shape and dtype": lambda L, a: a.new_empty(3, 2).shape[0] + a.new_zeros(0),
    "amax of ints": lambda L, a: a.amax(),
    "count_nonzero": lambda L, a: a.count_nonzero(),
    "count_nonzero over a dim": lambda L, a: a.reshape(1, 5).count_nonzero(1),
    "int, bool, half": lambda L, a: a.bool().int() + a.half().int(),
    "nan_to_num of floats": lambda L, a: L.tensor([math.nan, math.inf, -math.inf, 1.0]).nan_to_num(),
    "nan_to_num with values": lambda L, a: L.tensor([math.nan, math.inf, -math.inf]).nan_to_num(1.0, 2.0, -3.0),
    "gt.add of ints": lambda L, a: L.add(a, a, alpha=3),
}


@pytest.mark.parametrize("name", list(INT_PROGRAMS))
def test_integer_tensors_as_in_torch(name):
    run_beside_torch(INT_PROGRAMS[name], INTS, exact=False)


SPECIAL = np.array([0.5, 1.5, 2.5, -0.5, -1.5, math.inf, -math.inf, math.nan, -0.0, 3.7, -3.7])


@pytest.mark.parametrize("name", ["floor", "ceil", "trunc", "round", "sign", "isnan", "isinf", "isfinite"])
def test_rounding_and_tests_of_special_values(name):
    """Halves round to even, infinities and NaN pass through the rounding, as in torch."""
    torch = torch_or_skip()
    ours = getattr(gt.tensor(SPECIAL.astype(np.float32)), name)()
    theirs = getattr(torch.tensor(SPECIAL.astype(np.float32)), name)()
    assert str(ours.dtype).split(".")[-1] == str(theirs.dtype).split(".")[-1]
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())


def test_floor_division_has_a_zero_gradient():
    x = gt.randn(3, requires_grad=True)
    y = x.div(0.5, rounding_mode="floor")
    assert y.requires_grad                # as torch's (// has no derivative: its backward raises)
    z = (y + x).sum()                     # the quotient's gradient is zero, not absent
    z.backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.ones(3, np.float32))


def test_logsumexp_of_infinities_is_torchs():
    torch = torch_or_skip()
    rows = np.array([[-math.inf, -math.inf], [math.inf, 1.0], [-math.inf, 0.0]], np.float32)
    np.testing.assert_array_equal(gt.tensor(rows).logsumexp(1).numpy(), torch.tensor(rows).logsumexp(1).numpy())


@pytest.mark.parametrize("call, message", [
    (lambda x: x.repeat(2), "at least one count per dim"),
    (lambda x: x.repeat(2, -1), "non-negative ints"),
    (lambda x: x.norm(p=float("nan")), "p must be"),
    (lambda x: x.reshape(-1).tril(), "at least 2 dims"),
    (lambda x: x.outer(x), r"outer: Expected 1-D argument self, got shapes \(3, 4\) and \(3, 4\)"),
    (lambda x: x.bmm(x), "two 3-D tensors"),
])
def test_bad_arguments_are_named(call, message):
    with pytest.raises(ValueError, match=message):
        call(gt.randn(3, 4))


def test_comparisons_of_whole_tensors_are_torchs():
    torch = torch_or_skip()
    pairs = [([1.0, math.inf], [1.0000001, math.inf]), ([1.0, math.nan], [1.0, math.nan]), ([1.0, 2.0], [1.0, 2.1]),
             ([0.0, -math.inf], [1e-9, -math.inf]), ([1.0, math.inf], [1.0, -math.inf])]
    for a, b in pairs:
        for kw in ({}, {"equal_nan": True}, {"rtol": 0.1}):
            assert gt.allclose(gt.tensor(a), gt.tensor(b), **kw) == torch.allclose(torch.tensor(a), torch.tensor(b), **kw)
        assert gt.equal(gt.tensor(a), gt.tensor(b)) == torch.equal(torch.tensor(a), torch.tensor(b))
    assert not gt.equal(gt.ones(2), gt.ones(3))


@pytest.mark.parametrize("call, message", [
    (lambda x: x.mm(x.reshape(-1)), r"mm: self and mat2 must be matrices, got shapes \(3, 4\) and \(12,\)"),
    (lambda x: x.dot(x), r"dot: 1D tensors of one length expected: \(3, 4\), \(3, 4\)"),
    (lambda x: x.reshape(2, 2, 3).t(), "at most 2 dims"),
    (lambda x: x.gather(1, gt.tensor([0, 1])), "integer tensor of 2 dims"),
    (lambda x: x.gather(1, gt.zeros(4, 1, dtype=gt.int64)), "larger than the input"),
    (lambda x: x.index_select(0, gt.tensor([[0]])), "1-D integer tensor"),
    (lambda x: x.movedim((0, 0), (1, 0)), "distinct axes"),
    (lambda x: x.roll((1, 2), 0), "2 shifts for 1 dims"),
])
def test_bad_arguments_of_the_spellings_are_named(call, message):
    with pytest.raises((ValueError, IndexError), match=message):
        call(gt.randn(3, 4))


def test_whole_tensor_functions_are_torchs():
    torch = torch_or_skip()
    x, t = gt.tensor(X), torch.tensor(X)
    for dim in (None, 0, 1):
        for fn in ("var_mean", "std_mean"):
            ours, theirs = getattr(gt, fn)(x, dim), getattr(torch, fn)(t, dim)
            for a, b in zip(ours, theirs):
                np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-12)
    ours, theirs = gt.var_mean(x, 1, keepdim=True, correction=0), torch.var_mean(t, 1, keepdim=True, correction=0)
    np.testing.assert_allclose(ours[0].numpy(), theirs[0].numpy(), rtol=1e-12)
    # torch's older spellings: (x, unbiased), (x, dim, unbiased[, keepdim]), unbiased= as a keyword
    for args, kw in [((False,), {}), ((1, False), {}), ((0, True, True), {}), ((1,), {"unbiased": False})]:
        for fn in ("var_mean", "std_mean"):
            ours, theirs = getattr(gt, fn)(x, *args, **kw), getattr(torch, fn)(t, *args, **kw)
            for a, b in zip(ours, theirs):
                assert a.shape == tuple(b.shape), (fn, args, kw)
                np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-12, err_msg=f"{fn}{args}{kw}")
    with pytest.raises(TypeError, match="unbiased or correction, not both"):
        gt.var_mean(x, 1, unbiased=False, correction=0)
    assert gt.is_tensor(x) and not gt.is_tensor(X) and gt.numel(x) == torch.numel(t) == 12
    assert gt.is_floating_point(x) and not gt.is_floating_point(gt.arange(3))


@pytest.mark.parametrize("fn", ["randn_like", "rand_like", "empty_like"])
def test_like_creation_keeps_shape_and_dtype(fn):
    for x in (gt.zeros(2, 3), gt.zeros(4, dtype=gt.float64)):
        out = getattr(gt, fn)(x)
        assert out.shape == x.shape and out.dtype == x.dtype and not out.requires_grad
    assert getattr(gt, fn)(gt.zeros(2), requires_grad=True).requires_grad
    if fn != "empty_like":
        with pytest.raises(NotImplementedError, match="not implemented for 'Long'"):     # torch's
            getattr(gt, fn)(gt.arange(3))
        gt.manual_seed(0)
        a = getattr(gt, fn)(gt.zeros(1000))
        assert (0.8 < a.std().item() < 1.2) if fn == "randn_like" else (0 <= a.min().item() and a.max().item() < 1)


@pytest.mark.parametrize("name", ["sum", "mean", "amax", "amin", "logsumexp", "softmax", "log_softmax", "argmax",
                                  "argmin", "prod", "cumsum"])
def test_a_0d_tensor_reduces_over_dim_0_or_minus_1_as_in_torch(name):
    """torch takes dim 0 or -1 of a 0-d tensor as its one element; numpy has no such axis."""
    torch = torch_or_skip()
    for dim in (0, -1):
        ours, theirs = getattr(gt.tensor(2.5), name)(dim), getattr(torch.tensor(2.5), name)(dim)
        assert ours.shape == tuple(theirs.shape) == ()
        np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-6)
    assert gt.tensor(2.5).sum(0, keepdim=True).shape == torch.tensor(2.5).sum(0, keepdim=True).shape
    assert float(gt.tensor(2.5).var(0)) == 0.0       # gt's var defaults to ddof=0 (numpy's); torch's gives NaN
    with pytest.raises(IndexError, match="out of range"):
        getattr(gt.tensor(2.5), name)(1)


# ---- max/min in torch's spellings: (values, indices), elementwise with a tensor ----------------------
EXTREMA = {
    "dim": lambda m, x: x.max(dim=1), "dim keepdim": lambda m, x: x.min(1, keepdim=True),
    "negative dim": lambda m, x: x.max(dim=-2), "function dim": lambda m, x: m.min(x, dim=0),
    "function keepdim": lambda m, x: m.max(x, 1, keepdim=True),
}


@pytest.mark.parametrize("form", sorted(EXTREMA))
@pytest.mark.parametrize("dtype", ["float64", "int64"])
def test_max_min_with_torch_s_keywords_give_torch_s_values_indices_and_gradients(form, dtype):
    torch = torch_or_skip()
    data = np.array([[1.0, 3.0, 3.0, -2.0], [np.nan, 0.0, 5.0, 5.0], [2.0, 2.0, 2.0, 2.0]])
    if dtype == "int64":
        data = np.nan_to_num(data, nan=7.0)
    got = {}
    for m in (torch, gt):
        x = m.tensor(data, dtype=getattr(m, dtype), requires_grad=dtype == "float64")
        out = EXTREMA[form](m, x)
        values, indices = out                       # unpacks as torch's return type
        assert type(out).__name__ in ("max", "min") and out.values is values and out.indices is indices
        grad = None
        if dtype == "float64":
            (values.nan_to_num(0.0) * m.arange(1, values.numel() + 1, dtype=m.float64).reshape(values.shape)).sum().backward()
            grad = x.grad.tolist()
        got[m.__name__] = (values.tolist(), indices.tolist(), str(values.dtype).split(".")[-1], str(indices.dtype).split(".")[-1], grad)
    np.testing.assert_equal(got["gt"], got["torch"])


def test_max_min_keep_gt_s_numpy_forms_and_take_torch_s_other_forms():
    torch = torch_or_skip()
    x = gt.tensor([[1.0, 4.0], [3.0, 2.0]])
    assert x.max(1).tolist() == [4.0, 3.0] and gt.max(x, 1).tolist() == [4.0, 3.0]       # values only, as numpy
    assert x.min(-1, keepdims=True).tolist() == [[1.0], [2.0]] and x.max(axis=0).tolist() == [3.0, 4.0]
    other = torch.tensor([[2.0, 2.0], [2.0, 5.0]])
    assert x.max(gt.tensor(other.numpy())).tolist() == torch.tensor(x.numpy()).max(other).tolist()
    assert gt.min(x, gt.tensor(2.0)).tolist() == torch.min(torch.tensor(x.numpy()), torch.tensor(2.0)).tolist()
    v, i = gt.tensor(4.0).max(dim=0)
    assert (v.item(), i.item()) == tuple(t.item() for t in torch.tensor(4.0).max(dim=0))
    with pytest.raises(ValueError, match="over no element"):
        gt.zeros(2, 0).max(dim=1)
    with pytest.raises(TypeError, match="keepdim= needs a dim"):
        x.max(keepdim=True)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_remainder_is_torch_s_to_the_bit(dtype):
    """torch's kernel: C's exact ``fmod``, plus the divisor where the signs differ (a zero keeps the
    dividend's sign); ``a - b * floor(a / b)`` was off in the last bits for most values. The
    gradients are torch's: 1 and ``-(a // b)``."""
    torch = torch_or_skip()
    rng = np.random.default_rng(5)
    x = np.concatenate([rng.normal(0, 100, 500), [0.0, -0.0, 3.0, -3.0, 5.0, 1e30, -1e-30, 1.0]]).astype(dtype)
    y = np.concatenate([rng.normal(0, 3, 500), [1.0, -1.0, -3.0, 3.0, np.inf, 0.3, 7.0, 0.1]]).astype(dtype)
    gx, gy = gt.tensor(x, requires_grad=True), gt.tensor(y, requires_grad=True)
    tx, ty = torch.tensor(x, requires_grad=True), torch.tensor(y, requires_grad=True)
    ours, theirs = gx % gy, tx % ty
    np.testing.assert_array_equal(ours.detach().numpy(), theirs.detach().numpy())
    np.testing.assert_array_equal(np.signbit(ours.detach().numpy()), np.signbit(theirs.detach().numpy()))
    ours.sum().backward()
    theirs.sum().backward()
    np.testing.assert_array_equal(gx.grad.numpy(), tx.grad.numpy())
    np.testing.assert_array_equal(gy.grad.numpy(), ty.grad.numpy())
    assert (gt.tensor([7.5], dtype=getattr(gt, dtype)) % 2).tolist() == [1.5] and (7.5 % gt.tensor([2.0])).tolist() == [1.5]


def test_rsqrt_is_torch_s_own_op():
    """One node, torch's ``RsqrtBackward0``, its gradient ``-0.5 * grad * result ** 3``; on the torch
    engine torch's kernel to the bit (its AVX2 path, e.g. on an AMD EPYC, is an ulp off ``1 / sqrt(x)``
    for about a quarter of float32 values; its AVX-512 path agrees), on numpy's to an ulp."""
    torch = torch_or_skip()
    from gt.backend import B
    x = np.random.default_rng(11).uniform(0.01, 50, 1000).astype(np.float32)
    gx, tx = gt.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    ours, theirs = gx.rsqrt(), tx.rsqrt()
    assert type(theirs.grad_fn).__name__.startswith(ours.grad_fn.name())
    ours.sum().backward()
    theirs.sum().backward()
    if B.name == "torch":
        np.testing.assert_array_equal(ours.detach().numpy(), theirs.detach().numpy())
        np.testing.assert_array_equal(gx.grad.numpy(), tx.grad.numpy())
    else:
        np.testing.assert_array_max_ulp(ours.detach().numpy(), theirs.detach().numpy(), maxulp=1)
        np.testing.assert_allclose(gx.grad.numpy(), tx.grad.numpy(), rtol=1e-6)
