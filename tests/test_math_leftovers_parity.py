"""Elementwise math at its edges beside torch: ``abs``'s gradient at NaN, ``angle`` at +-inf and
its zero gradient, the rounding ops and ``abs``/``neg``/``frac`` that torch refuses for bool or
integer tensors, fills that a float16 or int32 tensor cannot hold, ints beyond int64 (or beyond
an integer dtype asked for) in ``gt.tensor``, and ``airy_ai`` far from 0."""

import numpy as np
import pytest

import gt

# edge values: the numpy engine shows numpy's warnings for x / 0, inf - inf and casts that overflow,
# where torch is silent (MISSING.md, "NaN and inf from arithmetic without numpy's warnings")
pytestmark = pytest.mark.filterwarnings("ignore:.*encountered in:RuntimeWarning")

torch = pytest.importorskip("torch")

from helpers import assert_same_as_torch, beside_torch  # noqa: E402

INF, NAN = float("inf"), float("nan")
EDGES = [NAN, 0.0, -0.0, INF, -INF, 2.0, -3.0, 1e-45]


_both, _same = beside_torch, assert_same_as_torch


def _raises_as_torch(fn, error):
    """``fn`` raises ``error`` in torch and in gt."""
    with pytest.raises(error):
        fn(torch)
    with pytest.raises(error):
        fn(gt)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_abs_gradient_is_zero_at_nan_first_and_second_order(dtype):
    def grads(m):
        x = m.tensor(EDGES, dtype=getattr(m, dtype), requires_grad=True)
        g, = m.autograd.grad(x.abs().sum(), x, create_graph=True)
        g2, = m.autograd.grad(g.sum(), x, allow_unused=True)
        # torch's second gradient is a ZeroTensor (no storage): read through its values
        return g.detach(), (g2.numpy(force=True) if m is torch else g2.numpy()).tolist()
    (g, g2), (tg, tg2) = _both(grads)
    _same(g, tg)
    assert g2 == tg2


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
def test_angle_at_infinities_with_zero_gradient(dtype):
    for how in ("method", "function"):
        def run(m):
            x = m.tensor(EDGES, dtype=getattr(m, dtype), requires_grad=True)
            y = x.angle() if how == "method" else m.angle(x)
            g, = m.autograd.grad(y.sum(), x)
            return y.detach(), g
        (y, g), (ty, tg) = _both(run)
        _same(y, ty)
        _same(g, tg)


@pytest.mark.parametrize("op", ["floor", "ceil", "trunc", "round", "fix", "frac", "abs",
                                "floor_", "ceil_", "trunc_", "round_", "fix_", "frac_", "abs_"])
def test_rounding_and_abs_of_bool_raise_as_torch(op):
    _raises_as_torch(lambda m: getattr(m.tensor([True, False]), op)(), NotImplementedError)


def test_neg_of_bool_raises_runtime_error_as_torch():
    _raises_as_torch(lambda m: -m.tensor([True, False]), RuntimeError)
    _raises_as_torch(lambda m: m.tensor([True]).neg(), RuntimeError)
    _raises_as_torch(lambda m: m.neg(m.tensor([True])), RuntimeError)
    _raises_as_torch(lambda m: abs(m.tensor([True])), NotImplementedError)


@pytest.mark.parametrize("dtype", ["int32", "int64"])
def test_integer_rounding_as_torch(dtype):
    for op in ("floor", "ceil", "trunc", "round", "fix", "sign", "abs"):
        _same(*_both(lambda m: getattr(m.tensor([-3, 0, 5], dtype=getattr(m, dtype)), op)()))
    for call in (lambda x: x.frac(), lambda x: x.round(decimals=1), lambda x: x.round(decimals=0)):
        _raises_as_torch(lambda m: call(m.tensor([-3, 0, 5], dtype=getattr(m, dtype))), NotImplementedError)


@pytest.mark.parametrize("value", [1e10, -1e10, 65520.0])
def test_float16_fill_that_overflows_raises_as_torch(value):
    def calls(m):
        t = m.zeros(2, dtype=m.float16)
        return [lambda: t.fill_(value), lambda: t.masked_fill(m.tensor([True, False]), value),
                lambda: t.masked_fill_(m.tensor([True, False]), value), lambda: t.index_fill(0, m.tensor([0]), value),
                lambda: t.index_fill_(0, m.tensor([0]), value), lambda: m.full((2,), value, dtype=m.float16),
                lambda: t.new_full((2,), value), lambda: m.full_like(t, value)]
    for i in range(8):
        _raises_as_torch(lambda m: calls(m)[i](), RuntimeError)


def test_fills_that_fit_or_are_infinite_still_work():
    for value in (65504.0, INF, -INF, NAN, 1e-10):
        _same(*_both(lambda m: m.zeros(2, dtype=m.float16).fill_(value)))
        _same(*_both(lambda m: m.zeros(2, dtype=m.float16).masked_fill(m.tensor([True, False]), value)))
    _raises_as_torch(lambda m: m.zeros(2, dtype=m.int32).fill_(10 ** 10), RuntimeError)
    _raises_as_torch(lambda m: m.zeros(2, dtype=m.int32).masked_fill(m.tensor([True, False]), 10 ** 10), RuntimeError)


def test_tensor_of_ints_beyond_int64_raises_as_torch():
    for data in ([1, 2 ** 63], [2 ** 63], [-2 ** 63 - 1], [2 ** 64], [[1], [2 ** 63]], [2 ** 70, 1]):
        _raises_as_torch(lambda m: m.tensor(data), ValueError)


def test_tensor_of_big_ints_beside_floats_or_into_floats_as_torch():
    _same(*_both(lambda m: m.tensor([1.0, 2 ** 63])))
    _same(*_both(lambda m: m.tensor([2 ** 70, 1.0])))
    _same(*_both(lambda m: m.tensor([2 ** 63], dtype=m.float32)))
    _same(*_both(lambda m: m.tensor([2 ** 70], dtype=m.float64)))
    _same(*_both(lambda m: m.tensor([-2 ** 31, 2 ** 31 - 1, 1.5, -0.5], dtype=m.int32)))
    _same(*_both(lambda m: m.tensor([1e10], dtype=m.float16)))


@pytest.mark.parametrize("data", [[10 ** 10], [2 ** 31], [1e10], [NAN], [INF]])
def test_tensor_values_an_int32_cannot_hold_raise_as_torch(data):
    _raises_as_torch(lambda m: m.tensor(data, dtype=m.int32), RuntimeError)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_airy_ai_far_from_zero_as_torch(dtype):
    x = [1e6, 2e6, 1e10, 1e30, -1e6, -1e7, -1e10, -1e20, INF, -INF, NAN]
    if dtype == "float32":          # torch's float32 phase far below 0 is rounded away: compare x >= 0
        x = [v for v in x if not v < -1e5]
    y, ty = _both(lambda m: m.special.airy_ai(m.tensor(x, dtype=getattr(m, dtype))))
    np.testing.assert_allclose(np.asarray(y.tolist()), np.asarray(ty.tolist()), rtol=1e-5, atol=0)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_div_gradient_of_the_divisor_in_torchs_order(dtype):
    # -g * ((a / b) / b): b * b underflowing to 0 gave NaN (0 / 0) or inf where torch's is finite
    def run(m):
        a = m.tensor([0.0, 1e-30, 0.0, 3.0, 2.0], dtype=getattr(m, dtype), requires_grad=True)
        b = m.tensor([1e-45 if dtype == "float32" else 5e-324, 1e-30, 0.0, 0.0, 3.0], dtype=getattr(m, dtype),
                     requires_grad=True)
        return [g.detach() for g in m.autograd.grad((a / b).sum(), [a, b])] + \
            [g.detach() for g in m.autograd.grad((a / b).sum(), [a, b], create_graph=True)]
    for g, tg in zip(*_both(run)):
        _same(g, tg)


def test_pow_exponent_gradient_at_zero_base_as_torch():
    def run(m):
        a = m.tensor([0.0, 0.0, 0.0, 0.0, -2.0, -2.0, 3.0, 0.0], dtype=m.float64, requires_grad=True)
        b = m.tensor([-1.5, -2.0, 0.0, 2.0, 2.0, 1.5, 2.0, -INF], dtype=m.float64, requires_grad=True)
        return [g.detach() for g in m.autograd.grad((a ** b).sum(), [a, b])] + \
            [g.detach() for g in m.autograd.grad((a ** b).sum(), [a, b], create_graph=True)]
    for g, tg in zip(*_both(run)):
        _same(g, tg)


@pytest.mark.parametrize("op", ["maximum", "minimum"])
def test_maximum_minimum_gradient_goes_to_both_at_nan(op):
    def run(m):
        a = m.tensor([0.0, NAN, 1.0, 2.0, NAN], dtype=m.float64, requires_grad=True)
        b = m.tensor([NAN, 0.0, 1.0, 1.0, NAN], dtype=m.float64, requires_grad=True)
        y = getattr(m, op)(a, b).sum()
        return [g.detach() for g in m.autograd.grad(y, [a, b])] + \
            [g.detach() for g in m.autograd.grad(getattr(m, op)(a, b).sum(), [a, b], create_graph=True)]
    for g, tg in zip(*_both(run)):
        _same(g, tg)


def test_lgamma_of_subnormals_as_torch():
    x = [5e-324, -5e-324, 1e-310, -1e-310, 1e-300, 0.0, -0.0, -INF, INF, 3.0]
    y, ty = _both(lambda m: m.tensor(x, dtype=m.float64).lgamma())
    np.testing.assert_allclose(np.asarray(y.tolist()), np.asarray(ty.tolist()), rtol=1e-12)


def test_relu_of_bool_raises_as_torch():
    _raises_as_torch(lambda m: m.tensor([True, False]).relu(), RuntimeError)
    _raises_as_torch(lambda m: m.relu(m.tensor([True, False])), RuntimeError)


def test_nextafter_gradient_is_zero_where_the_inputs_are_equal():
    def run(m):
        x = m.tensor([0.0, 1.0, 2.0, NAN, 1.0], dtype=m.float64, requires_grad=True)
        o = m.tensor([0.0, 1.0, 3.0, 1.0, NAN], dtype=m.float64, requires_grad=True)
        return [g.detach() for g in m.autograd.grad(m.nextafter(x, o).sum(), [x, o])]
    for g, tg in zip(*_both(run)):
        _same(g, tg)


@pytest.mark.parametrize("scalar", [0.1, 3.3, -1e-3, 1e10, 1e-8])
def test_float16_times_a_python_float_rounds_once_as_torch(scalar):
    # torch multiplies in float32 by the number as a float32 and rounds once (numpy rounded the
    # number to float16 first); its sum and difference do round the number first
    v = np.concatenate([np.linspace(-10, 10, 2001), [0.0, -0.0, 6e-8, 65504.0, INF, -INF, NAN]]).astype(np.float32)
    for call in (lambda x: x * scalar, lambda x: scalar * x, lambda x: x.mul(scalar), lambda x: x + scalar,
                 lambda x: x - scalar):
        _same(*_both(lambda m: call(m.tensor(v).half())))


# ---- a finite number beyond float32 (or complex64) written by item assignment, fill_ and full ---------
def _writes(m, dtype, value):
    """The ways a number is written into a tensor: item assignment by an int, a slice, a list, a
    mask and ``...``, into a tensor in the graph too; ``fill_``; ``full`` and ``new_full``."""
    def assign(index, grad=False):
        def run():
            t = m.zeros(3, dtype=dtype, requires_grad=grad)
            (t.clone() if grad else t)[index] = value
        return run
    return [assign(0), assign(slice(None)), assign([0, 2]), assign(m.tensor([True, False, True])),
            assign(Ellipsis), assign(1, grad=dtype is not m.complex64),
            lambda: m.zeros(3, dtype=dtype).fill_(value), lambda: m.full((2,), value, dtype=dtype),
            lambda: m.zeros(2, dtype=dtype).new_full((2,), value)]


@pytest.mark.parametrize("value", [1e39, -1e39, 3.4028235e38, 1e300])
@pytest.mark.parametrize("dtype", ["float32", "complex64"])
def test_a_number_beyond_float32_written_into_float32_raises_as_torch(dtype, value):
    # gt's item assignment wrote inf (fill_ and full raised); torch refuses each way
    for i in range(9):
        _raises_as_torch(lambda m: _writes(m, getattr(m, dtype), value)[i](), RuntimeError)
    if dtype == "complex64":
        _raises_as_torch(lambda m: _writes(m, m.complex64, complex(0.0, value))[0](), RuntimeError)
        _raises_as_torch(lambda m: m.zeros(2, dtype=m.complex64).fill_(complex(INF, value)), RuntimeError)


def test_numpy_numbers_written_by_item_assignment_are_checked_as_torch():
    # numpy's numbers skipped the check: np.float64(1e39) gave inf, np.int64(300) into uint8 an
    # OverflowError of numpy's; torch reads them as numbers
    for dtype, value in (("float32", np.float64(1e39)), ("uint8", np.int64(300)), ("uint8", np.float64(INF)),
                         ("int32", np.int64(2 ** 40))):
        def run(m, dtype=dtype, value=value):
            m.zeros(2, dtype=getattr(m, dtype))[0] = value
        _raises_as_torch(run, RuntimeError)
    for dtype, value in (("uint8", np.int8(-1)), ("uint8", np.float64(2.5)), ("float32", np.float64(INF))):
        t, g = torch.zeros(2, dtype=getattr(torch, dtype)), gt.zeros(2, dtype=getattr(gt, dtype))
        t[0], g[0] = value, value
        assert g.tolist() == t.tolist()


def test_numbers_that_float32_holds_are_still_written_as_torch():
    top = float(np.finfo(np.float32).max)
    for value in (top, -top, INF, -INF, NAN, 1e-50, 2 ** 60):
        def run(m):
            t = m.zeros(4)
            t[0] = value
            t[1:3] = value
            return m.cat([t, m.zeros(2).fill_(value), m.full((1,), value)])
        _same(*_both(run))
    y, ty = _both(lambda m: (lambda t: (t.__setitem__(0, complex(INF, 1.0)), t)[1])(m.zeros(2, dtype=m.complex64)))
    assert y.tolist() == ty.tolist() == [complex(INF, 1.0), 0j]


def test_float16_item_assignment_beyond_its_range_gives_inf_as_torch():
    # torch checks float16's fill_ and full (test_float16_fill_that_overflows_raises_as_torch), not
    # its item assignment, which rounds to inf
    def run(m):
        t = m.zeros(4, dtype=m.float16)
        t[0] = 1e5
        t[1:3] = -1e39
        return t
    _same(*_both(run))


def test_bfloat16_fill_beyond_its_range_raises_as_torch():
    if gt.backend.B.name == "numpy":
        pytest.skip("the numpy engine has no bfloat16")
    _raises_as_torch(lambda m: m.zeros(3, dtype=m.bfloat16).fill_(3.4e38), RuntimeError)
    _same(*_both(lambda m: m.zeros(3, dtype=m.bfloat16).fill_(3.3895313892515355e38)))


@pytest.mark.parametrize("dtype", ["int32", "int64"])
def test_a_float_an_integer_tensor_cannot_hold_in_item_assignment_raises_as_torch(dtype):
    for value in (1e30, INF, NAN) + ((2 ** 40,) if dtype == "int32" else ()):
        _raises_as_torch(lambda m: m.zeros(2, dtype=getattr(m, dtype)).__setitem__(0, value), RuntimeError)


@pytest.mark.parametrize("dtype", ["int64", "int32", "uint8"])
def test_an_int_beyond_int64_in_item_assignment_raises_as_torch(dtype):
    # torch reads it as an int64; the torch engine wrote 2**63 into int64 as -2**63 (int32: 0)
    for value in (2 ** 63, -2 ** 63 - 1, 2 ** 64):
        _raises_as_torch(lambda m: m.zeros(2, dtype=getattr(m, dtype)).__setitem__(0, value), ValueError)
