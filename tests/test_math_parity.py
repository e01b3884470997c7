"""Elementwise math, type promotion and reductions beside torch: 0-d tensors in promotion (they
do not widen tensors with dims), ``//=``/``%=``/``**=`` in place, half cumsum/cumprod accumulating
in float32, ``dtype=int32`` reductions, ``dim=()`` as every dim, torch's zero gradients of std and
p-norms where the composed ops give NaN, logsumexp over nothing, rounding half types to decimals,
``nan_to_num(nan=-inf)``, ``mode`` with NaN, ``std(unbiased)`` and ``norm('nuc')``."""

import math

import numpy as np
import pytest

import gt

torch = pytest.importorskip("torch")

from helpers import assert_same_as_torch, beside_torch  # noqa: E402

NAN = float("nan")


_both, _same = beside_torch, assert_same_as_torch


def _make(m, kind):
    dt = {"f16": m.float16, "f32": m.float32, "f64": m.float64, "i32": m.int32, "i64": m.int64, "b": m.bool}
    dtype = dt[kind.split("_")[0]]
    if kind.endswith("0d"):
        return m.tensor(1.7 if dtype.is_floating_point else 3, dtype=dtype)
    if dtype.is_floating_point:
        return m.tensor([1.3, 2.7, -1.2], dtype=dtype)
    return m.tensor([1, 4, -2], dtype=dtype) if dtype != m.bool else m.tensor([True, False, True])


PAIRS = [("f32", "f64_0d"), ("f16", "f32_0d"), ("i32", "i64_0d"), ("i32", "f64_0d"), ("f64_0d", "f32"),
         ("i64_0d", "i32"), ("f32_0d", "f64_0d"), ("i32", "f16")]
OPS = ["__add__", "__sub__", "__mul__", "__truediv__", "__floordiv__", "__mod__", "__pow__", "maximum",
       "minimum", "eq", "lt", "ge", "remainder"]


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("pair", PAIRS, ids="-".join)
def test_a_0d_tensor_promotes_as_torch(op, pair):
    got, want = _both(lambda m: getattr(_make(m, pair[0]), op)(_make(m, pair[1])))
    assert str(got.dtype).split(".")[-1] == str(want.dtype).split(".")[-1]
    np.testing.assert_allclose(np.asarray(got.tolist(), dtype=float), np.asarray(want.tolist(), dtype=float),
                               rtol=2e-3)


def test_0d_promotion_values_and_the_other_ops():
    # compared in float32, as torch: 0.1 (float32) == 0.1 (float64 0-d)
    assert (gt.tensor([0.1, 0.2]) == gt.tensor(0.1, dtype=gt.float64)).tolist() == [True, False]
    assert (gt.ones(2, 3) + gt.tensor(2.0, dtype=gt.float64)).dtype == gt.float32
    assert (gt.tensor([1, 2], dtype=gt.int32) + gt.tensor(1)).dtype == gt.int32
    assert (gt.tensor([16777217]) == 16777216.0).tolist() == [True]      # ints beside a float: float32
    cases = [
        lambda m: m.clamp(m.tensor([-5, 0, 9]), m.tensor([0.0, 0.0, 0.0]), m.tensor([3.0, 3.0, 3.0])),
        lambda m: m.clamp(m.tensor([-5.0, 0.5, 9.0]), m.tensor(0.0, dtype=m.float64)),
        lambda m: m.where(m.tensor([True, False]), m.tensor([1.0, 2.0]), m.tensor(3.0, dtype=m.float64)),
        lambda m: m.addcmul(m.ones(2, dtype=m.float16), m.tensor(2.0, dtype=m.float64), m.tensor(3.0, dtype=m.float64)),
        lambda m: m.addcdiv(m.ones(2), m.tensor(2.0, dtype=m.float64), m.tensor(3.0, dtype=m.float64)),
        lambda m: m.tensor([7, -5], dtype=m.int32) % m.tensor(3),
    ]
    for fn in cases:
        _same(*_both(fn))


def test_in_place_ops_compute_at_torchs_precision_with_a_0d_value():
    # 1 + (2^-11 + 1e-7) is 1 + 2^-10 rounded once from float64, but 1 in float16 (torch's): the
    # value rounds to 2^-11 first, and 1 + 2^-11 is a tie that rounds to even
    tiny = 0.00048828125 + 1e-7
    for update in (lambda a, m: a.__iadd__(m.tensor(tiny, dtype=m.float64)),
                   lambda a, m: a.add_(m.tensor(tiny, dtype=m.float64)),
                   lambda a, m: a.addcmul_(m.tensor(tiny, dtype=m.float64), m.tensor(1.0, dtype=m.float64))):
        got, want = _both(lambda m: update(m.tensor([1.0, 1000.5], dtype=m.float16), m))
        _same(got, want)
        assert got.tolist() == [1.0, 1000.5]
    with pytest.raises(RuntimeError, match="can't be cast to the desired output type"):
        x = gt.tensor([1, 2], dtype=gt.int32)
        x += gt.tensor(0.3, dtype=gt.float64)


def test_gradients_flow_back_to_a_0d_operand_in_its_own_dtype():
    def run(m):
        x = m.tensor([1.0, 2.0], requires_grad=True)
        t = m.tensor(2.0, dtype=m.float64, requires_grad=True)
        y = (x * t).sum()
        y.backward()
        return y, x.grad, t.grad
    for a, b in zip(*_both(run)):
        _same(a, b)


@pytest.mark.parametrize("op", ["//=", "%=", "**="])
def test_augmented_floor_divide_remainder_and_power_are_in_place(op):
    def run(m):
        a = m.tensor([5.0, -7.0, 3.0])
        view, alias = a[:2], a
        exec(f"alias {op} 2")
        assert alias is a
        return view
    _same(*_both(run))

    def ints(m):
        a = m.tensor([5, -7, 3], dtype=m.int32)
        exec(f"a {op} 2")
        return a
    _same(*_both(ints))
    for m in (gt, torch):
        with pytest.raises(RuntimeError, match="result type Float can't be cast to the desired output type Long"):
            exec(f"a = m.tensor([5, -7, 3]); a {op} 2.5")


def test_augmented_power_records_as_torch():
    def run(m):
        x = m.tensor([1.0, 2.0, 3.0], requires_grad=True)
        y = x * 1
        y **= 2
        y %= 5
        y.sum().backward()
        return x.grad
    _same(*_both(run))
    x = gt.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
        x **= 2


def test_half_cumsum_and_cumprod_accumulate_in_float32():
    _same(*_both(lambda m: m.ones(4000, dtype=m.float16).cumsum(0)))
    assert gt.ones(4000, dtype=gt.float16).cumsum(0)[-1].item() == 4000
    _same(*_both(lambda m: m.full((40,), 1.07, dtype=m.float16).cumprod(0)))


@pytest.mark.parametrize("fn", ["sum", "prod", "cumsum", "cumprod"])
@pytest.mark.parametrize("src", ["f32", "i64", "b"])
def test_reductions_keep_a_dtype_int32_argument(fn, src):
    def run(m):
        x = {"f32": m.tensor([1.5, 2.0, 3.0]), "i64": m.tensor([1, 2, 3]), "b": m.tensor([True, False, True])}[src]
        kw = {"dim": 0} if fn.startswith("cum") else {}
        return getattr(x, fn)(dtype=m.int32, **kw), getattr(m, fn)(x, dtype=m.int32, **kw)
    for a, b in zip(*_both(run)):
        _same(a, b)
    _same(*_both(lambda m: m.tensor(3).sum(dtype=m.int32)))


@pytest.mark.parametrize("keepdim", [False, True])
@pytest.mark.parametrize("name", ["sum", "mean", "nansum", "nanmean", "std", "var", "norm", "norm_p1", "vector_norm",
                                  "count_nonzero", "amax", "all", "any", "std_mean", "logsumexp_keep"])
def test_an_empty_tuple_of_dims_is_every_dim_as_torch(name, keepdim):
    calls = {
        "norm_p1": lambda m, x: x.norm(p=1, dim=(), keepdim=keepdim),
        "vector_norm": lambda m, x: m.linalg.vector_norm(x, dim=(), keepdim=keepdim),
        "count_nonzero": lambda m, x: m.count_nonzero(x, dim=()),
        "std": lambda m, x: x.std(dim=(), keepdim=keepdim, correction=1),
        "var": lambda m, x: x.var(dim=(), keepdim=keepdim, correction=1),
        "std_mean": lambda m, x: m.std_mean(x, dim=(), keepdim=keepdim)[0],
        "logsumexp_keep": lambda m, x: x.logsumexp(dim=(), keepdim=True),
    }
    call = calls.get(name, lambda m, x: getattr(x, name)(dim=(), keepdim=keepdim))
    got, want = _both(lambda m: call(m, m.arange(6.0).reshape(2, 3)))
    assert tuple(got.shape) == tuple(want.shape)
    np.testing.assert_allclose(np.asarray(got.tolist(), dtype=float), np.asarray(want.tolist(), dtype=float),
                               rtol=1e-6)


def test_std_gradient_is_zero_over_a_constant_slice():
    def run(m):
        x = m.tensor([[1.0, 1.0, 1.0], [1.0, 2.0, 3.0]], requires_grad=True)
        y = m.tensor([[2.0, 2.0], [0.0, 1.0]], requires_grad=True)
        x.std(dim=1, correction=1).sum().backward()
        s, mean = m.std_mean(y, dim=1)
        (s + mean).sum().backward()
        return x.grad, y.grad
    for a, b in zip(*_both(run)):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-6)


@pytest.mark.parametrize("p", [3, 0.5, 1.5, -1, 4])
@pytest.mark.parametrize("values", [[0.0, 0.0, 0.0], [0.0, 1.0, 4.0], [1.0, -2.0, 3.0]], ids=["zeros", "a_zero", "none"])
def test_p_norm_gradients_are_torchs_at_zeros(p, values):
    def run(m, norm):
        x = m.tensor(values, requires_grad=True)
        out = norm(m, x)
        out.backward()
        return out, x.grad
    for norm in (lambda m, x: m.norm(x, p=p), lambda m, x: m.linalg.vector_norm(x, ord=p)):
        got, want = run(gt, norm), run(torch, norm)
        for a, b in zip(got, want):
            np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=1e-5, atol=1e-7)


def test_logsumexp_over_no_element_is_minus_inf():
    for dim, keepdim in [(0, False), (0, True), (1, False), ((0, 1), False)]:
        _same(*_both(lambda m: m.logsumexp(m.zeros(0, 3), dim=dim, keepdim=keepdim)))
    x = gt.zeros(0, 3, requires_grad=True)
    gt.logsumexp(x, dim=0).sum().backward()
    assert x.grad.shape == (0, 3)


@pytest.mark.parametrize("decimals", [3, 2, 1, -1, -2])
@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
def test_round_to_decimals_as_torch(decimals, dtype):
    values = list(np.random.default_rng(0).uniform(-2000, 2000, 500)) + [123.456, 0.1234, 65000.0, 1.5e-4, 35.0, 45.0]
    _same(*_both(lambda m: m.round(m.tensor(values, dtype=getattr(m, dtype)), decimals=decimals)))
    assert gt.round(gt.tensor([123.456], dtype=gt.float16), decimals=3).tolist() == [123.4375]


def test_nan_to_num_keeps_an_infinite_replacement():
    x = [NAN, 1.0, math.inf, -math.inf]
    _same(*_both(lambda m: m.nan_to_num(m.tensor(x), nan=-math.inf)))
    _same(*_both(lambda m: m.nan_to_num(m.tensor(x), nan=math.inf, posinf=NAN)))
    _same(*_both(lambda m: m.nan_to_num(m.tensor(x, dtype=m.float16))))


def test_mode_counts_each_nan_once_and_takes_empty_rows():
    for rows in ([[3.0, NAN, NAN, 5.0]], [[NAN, NAN, 1.0, 1.0]], [[5.0, 5.0, NAN, 1.0]], [[2, 2, 1, 3]]):
        got, want = _both(lambda m: m.tensor(rows).mode(dim=1))
        _same(got.values, want.values)
        _same(got.indices, want.indices)
    for keepdim in (False, True):
        got, want = _both(lambda m: m.zeros(0, 3).mode(-1, keepdim=keepdim))
        _same(got.values, want.values)
        _same(got.indices, want.indices)


def test_std_and_var_take_unbiased_positionally_and_norm_takes_nuc():
    for fn in (lambda m: m.tensor([1.0, 2.0, 4.0]).std(False), lambda m: m.tensor([1.0, 2.0, 4.0]).var(True)):
        got, want = _both(fn)
        assert got.shape == () and abs(got.item() - want.item()) < 1e-6
    for fn in (lambda m: m.tensor([[1.0, 2.0], [3.0, 4.0]]).norm("nuc"),
               lambda m: m.arange(24.0).reshape(2, 3, 4).norm("nuc", dim=(1, 2)),
               lambda m: m.arange(24.0).reshape(2, 3, 4).norm("nuc", dim=(0, 2), keepdim=True)):
        got, want = _both(fn)
        assert tuple(got.shape) == tuple(want.shape)
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-5)
    with pytest.raises(RuntimeError):
        gt.tensor([1.0, 2.0]).norm("nuc")


@pytest.mark.parametrize("call", [lambda m: m.ones(2).clamp(), lambda m: m.clamp(m.ones(2), None, None),
                                  lambda m: m.ones(2).clamp_()], ids=["clamp()", "clamp(x, None, None)", "clamp_()"])
def test_clamp_without_bounds_raises_torchs_class(call):
    """torch's RuntimeError (gt's ValueError alone before; found by tests/test_fuzz_torch_parity.py)."""
    with pytest.raises(RuntimeError, match="At least one of 'min' or 'max'"):
        call(torch)
    with pytest.raises(RuntimeError, match="At least one of 'min' or 'max'"):
        call(gt)
