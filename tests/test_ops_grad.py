"""Every differentiable op: gt's gradient against central finite differences in float64.

The cases (shapes with broadcasting, negative axes, axis=None/int/tuple, keepdims,
every indexing form) live in op_cases.py and are shared with test_ops_torch.py.
"""

import inspect

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.extra import numpy as hnp

import gt
from gt.autograd import Function
from gt.ops import activations, attention, elementwise, linalg, math_functions, reductions, shape, sorting
from helpers import check_grad, distinct, randn
from op_cases import CASES, OPS_COVERED


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_gradient_matches_finite_differences(case):
    check_grad(case.gt_fn, *case.inputs, **case.grad_kw)


def _op_classes():
    for module in (elementwise, activations, reductions, shape, linalg, sorting, attention, math_functions):
        for name, obj in vars(module).items():
            if inspect.isclass(obj) and issubclass(obj, Function) and obj is not Function \
                    and obj.__module__ == module.__name__ and not name.startswith("_"):
                yield name


def test_every_op_has_cases():
    missing = sorted(set(_op_classes()) - set(OPS_COVERED))
    assert not missing, f"differentiable ops without gradient cases: {missing}"


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_backward_keeps_float32(case):
    """Each op's own backward returns float32 gradients for float32 inputs: no float64
    temporaries that the engine would have to cast back."""
    inputs = [gt.tensor(a, dtype=gt.float32, requires_grad=True) if a.dtype.kind == "f" else gt.tensor(a)
              for a in map(np.asarray, case.inputs)]
    outputs = case.gt_fn(*inputs)
    for out in (outputs if isinstance(outputs, tuple) else (outputs,)):
        if out.grad_fn is None or out.dtype != gt.float32:
            continue
        grads = out.grad_fn.backward(gt.ones(*out.shape)._data)
        for g in (grads if isinstance(grads, tuple) else (grads,)):
            if g is not None:
                assert gt.Tensor._from_value(g).dtype == gt.float32, f"{out.grad_fn.name} backward gave {g.dtype}"


# ---- kinks and special points: the gradient chosen there, checked by value ------------------
def _grad(fn, *values):
    xs = [gt.tensor(v, dtype=gt.float64, requires_grad=True) for v in values]
    fn(*xs).sum().backward()
    return [x.grad.numpy() for x in xs]


def test_pow_gradient_at_zero():
    (g,) = _grad(lambda x: x ** 2, [0.0, 1.0])
    np.testing.assert_array_equal(g, [0.0, 2.0])
    (g,) = _grad(lambda x: x ** 0, [0.0, 3.0])  # d(x**0)/dx is 0 everywhere, also at 0
    np.testing.assert_array_equal(g, [0.0, 0.0])
    (g,) = _grad(lambda x: x ** 1, [0.0, 3.0])
    np.testing.assert_array_equal(g, [1.0, 1.0])
    ga, gb = _grad(lambda a, b: a ** b, [0.0, 0.0, 2.0], [2.0, 0.0, 3.0])  # exponent grad at base 0 is 0
    np.testing.assert_allclose(ga, [0.0, 0.0, 12.0])
    np.testing.assert_allclose(gb, [0.0, 0.0, 8.0 * np.log(2.0)])


def test_kinks_relu_abs_clip():
    (g,) = _grad(lambda x: x.relu(), [-1.0, 0.0, 2.0])
    np.testing.assert_array_equal(g, [0.0, 0.0, 1.0])
    (g,) = _grad(lambda x: x.abs(), [-1.0, 0.0, 2.0])
    np.testing.assert_array_equal(g, [-1.0, 0.0, 1.0])
    (g,) = _grad(lambda x: x.clip(-1.0, 1.0), [-2.0, -1.0, 0.0, 1.0, 2.0])  # bounds are inclusive
    np.testing.assert_array_equal(g, [0.0, 1.0, 1.0, 1.0, 0.0])


def test_maximum_minimum_ties_split_evenly():
    ga, gb = _grad(lambda a, b: gt.maximum(a, b), [1.0, 2.0, 3.0], [1.0, 5.0, 0.0])
    np.testing.assert_array_equal(ga, [0.5, 0.0, 1.0])
    np.testing.assert_array_equal(gb, [0.5, 1.0, 0.0])
    ga, gb = _grad(lambda a, b: gt.minimum(a, b), [1.0, 2.0, 3.0], [1.0, 5.0, 0.0])
    np.testing.assert_array_equal(ga, [0.5, 1.0, 0.0])
    np.testing.assert_array_equal(gb, [0.5, 0.0, 1.0])


def test_max_min_ties_share_the_gradient():
    (g,) = _grad(lambda x: x.max(), [[1.0, 3.0], [3.0, 0.0]])
    np.testing.assert_array_equal(g, [[0.0, 0.5], [0.5, 0.0]])
    (g,) = _grad(lambda x: x.max(axis=1), [[1.0, 3.0, 3.0], [2.0, 0.0, 1.0]])
    np.testing.assert_array_equal(g, [[0.0, 0.5, 0.5], [1.0, 0.0, 0.0]])
    (g,) = _grad(lambda x: x.min(axis=0, keepdims=True), [[1.0, 3.0], [1.0, 0.0], [1.0, 4.0]])
    np.testing.assert_allclose(g, [[1 / 3, 0.0], [1 / 3, 1.0], [1 / 3, 0.0]])


def test_repeated_indices_add_up():
    (g,) = _grad(lambda x: x[[0, 2, 0, 0]], [1.0, 2.0, 3.0])
    np.testing.assert_array_equal(g, [3.0, 0.0, 1.0])
    (g,) = _grad(lambda x: x[:, [1, 1]] * 2.0, [[1.0, 2.0], [3.0, 4.0]])
    np.testing.assert_array_equal(g, [[0.0, 4.0], [0.0, 4.0]])


def test_log_softmax_stable_on_huge_inputs():
    x = gt.tensor([[1000.0, 1001.0, 999.0], [-1000.0, 0.0, 1000.0]], dtype=gt.float32, requires_grad=True)
    y = x.log_softmax(-1)
    assert np.all(np.isfinite(y.numpy()))
    y.sum().backward()
    assert np.all(np.isfinite(x.grad.numpy()))
    ref = np.array([1000.0, 1001.0, 999.0]) - 1001.0
    ref = ref - np.log(np.exp(ref).sum())
    np.testing.assert_allclose(y.numpy()[0], ref, rtol=1e-6)
    s = x.softmax(-1).numpy()
    assert np.all(np.isfinite(s)) and np.allclose(s.sum(-1), 1.0)
    check_grad(lambda a: a.log_softmax(0), np.array([1000.0, 1002.0, 998.0]))
    check_grad(lambda a: a.softmax(-1), np.array([[1000.0, 1000.5, 999.0]]))


def test_sigmoid_gelu_extreme_values_are_finite():
    x = gt.tensor([-1000.0, -50.0, 0.0, 50.0, 1000.0], requires_grad=True)
    y = x.sigmoid() + x.gelu() + x.gelu(approximate="tanh") + x.tanh()
    y.sum().backward()
    assert np.all(np.isfinite(y.numpy())) and np.all(np.isfinite(x.grad.numpy()))


def test_var_tuple_axis_values():
    a = randn(2, 3, 4, seed=1)
    t = gt.tensor(a)
    np.testing.assert_allclose(t.var(axis=(0, 2)).numpy(), a.var(axis=(0, 2)))
    np.testing.assert_allclose(t.var(axis=(-1, 0), ddof=1, keepdims=True).numpy(),
                               a.var(axis=(0, 2), ddof=1, keepdims=True))
    np.testing.assert_allclose(t.std(axis=1).numpy(), a.std(axis=1))


# ---- property-based: random broadcast shapes and random reductions -----------------------
@settings(max_examples=25, deadline=None)
@given(shapes=hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, max_side=3),
       seed=st.integers(0, 2 ** 16))
def test_broadcasting_arithmetic_property(shapes, seed):
    sa, sb = shapes.input_shapes
    a = randn(*sa, seed=seed)
    b = np.random.default_rng(seed + 1).uniform(0.5, 1.5, sb)
    check_grad(lambda x, y: (x * y - y) / y + x ** 2 * y, a, b, seed=seed)


@settings(max_examples=25, deadline=None)
@given(shape=hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4), data=st.data())
def test_reductions_property(shape, data):
    ndim = len(shape)
    axes = data.draw(st.none() | st.integers(-ndim, ndim - 1)
                     | st.lists(st.integers(0, ndim - 1), min_size=1, max_size=ndim, unique=True).map(tuple),
                     label="axis")
    keep = data.draw(st.booleans(), label="keepdims")
    x = distinct(*shape, seed=len(shape))
    check_grad(lambda t: t.sum(axis=axes, keepdims=keep) + t.max(axis=axes, keepdims=keep) * 2.0
               - t.mean(axis=axes, keepdims=keep) * t.min(axis=axes, keepdims=keep), x)
    out = gt.tensor(x).var(axis=axes, keepdims=keep)
    np.testing.assert_allclose(out.numpy(), np.var(x, axis=axes, keepdims=keep), rtol=1e-6, atol=1e-12)
