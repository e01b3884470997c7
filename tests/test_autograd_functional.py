"""``gt.autograd.functional`` (vjp, jvp, jacobian, hessian, vhp, hvp) beside
``torch.autograd.functional`` on the same functions and inputs: values, the nesting of tuples,
``create_graph`` (the result differentiated again), ``strict`` and the errors."""

import numpy as np
import pytest

import gt
from helpers import randn

torch = pytest.importorskip("torch")


def _f_one(m, x):
    return (x.sin() * x.sum()).exp()


def _f_two(m, x, y):
    return x @ y.T, (x * x).sum(0) * y[0]


def _scalar(m, x, y=None):
    out = (x.tanh() ** 3).sum() * x[0, 0]
    return out if y is None else out + (x @ y.T).pow(2).sum()


def _inputs(m, n):
    arrays = [randn(2, 3), randn(4, 3, seed=1)][:n]
    return tuple(m.tensor(a, dtype=m.float64) for a in arrays)


def _np(value):
    if isinstance(value, tuple):
        return tuple(_np(v) for v in value)
    return value.detach().numpy()


def _assert_same(a, b):
    if isinstance(b, tuple):
        assert isinstance(a, tuple) and len(a) == len(b)
        for x, y in zip(a, b):
            _assert_same(x, y)
    else:
        assert a.shape == b.shape
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


def _run(name, m, tupled):
    A = m.autograd.functional
    xs = _inputs(m, 2 if tupled else 1)
    arg = xs if tupled else xs[0]
    if name == "jacobian":
        f = (lambda x, y: _f_two(m, x, y)) if tupled else (lambda x: _f_one(m, x))
        return A.jacobian(f, arg)
    if name == "hessian":
        return A.hessian(lambda *a: _scalar(m, *a), arg)
    if name == "vjp":
        f = (lambda x, y: _f_two(m, x, y)) if tupled else (lambda x: _f_one(m, x))
        out = f(*xs)
        v = tuple(m.tensor(randn(*o.shape, seed=5 + i), dtype=m.float64) for i, o in enumerate(out)) if tupled \
            else m.tensor(randn(*out.shape, seed=5), dtype=m.float64)
        return A.vjp(f, arg, v)
    v = tuple(m.tensor(randn(*x.shape, seed=7 + i), dtype=m.float64) for i, x in enumerate(xs))
    v = v if tupled else v[0]
    if name == "jvp":
        f = (lambda x, y: _f_two(m, x, y)) if tupled else (lambda x: _f_one(m, x))
        return A.jvp(f, arg, v)
    return getattr(A, name)(lambda *a: _scalar(m, *a), arg, v)


@pytest.mark.parametrize("tupled", [False, True])
@pytest.mark.parametrize("name", ["vjp", "jvp", "jacobian", "hessian", "vhp", "hvp"])
def test_results_and_their_nesting_are_torchs(name, tupled):
    _assert_same(_np(_run(name, gt, tupled)), _np(_run(name, torch, tupled)))


@pytest.mark.parametrize("name", ["vjp", "jvp", "jacobian", "hessian", "vhp", "hvp"])
def test_create_graph_gives_results_that_differentiate_again_as_torchs(name):
    got = []
    for m in (gt, torch):
        A = m.autograd.functional
        x = m.tensor(randn(2, 3), dtype=m.float64, requires_grad=True)
        v = m.tensor(randn(2, 3, seed=3), dtype=m.float64)
        f = lambda a: _scalar(m, a)                          # noqa: E731
        res = {"vjp": lambda: A.vjp(f, x, create_graph=True)[1],
               "jvp": lambda: A.jvp(lambda a: a.exp() * a.sum(), x, v, create_graph=True)[1],
               "jacobian": lambda: A.jacobian(lambda a: a.exp() * a.sum(), x, create_graph=True),
               "hessian": lambda: A.hessian(f, x, create_graph=True),
               "vhp": lambda: A.vhp(f, x, v, create_graph=True)[1],
               "hvp": lambda: A.hvp(f, x, v, create_graph=True)[1]}[name]()
        assert res.requires_grad
        (res * res).sum().backward()
        got.append((res.detach().numpy(), x.grad.numpy()))
    for a, b in zip(*got):
        np.testing.assert_allclose(a, b, rtol=1e-10)


def test_without_create_graph_results_carry_no_graph_and_inputs_keep_no_grad():
    x = gt.tensor(randn(2, 3), requires_grad=True)
    out, v = gt.autograd.functional.vjp(lambda a: (a * a).sum(), x)
    assert not out.requires_grad and not v.requires_grad and x.grad is None
    np.testing.assert_allclose(v.numpy(), 2 * x.detach().numpy(), rtol=1e-6)


def test_an_output_independent_of_an_input_gives_zeros_or_the_strict_error():
    for m in (gt, torch):
        A = m.autograd.functional
        x, y = _inputs(m, 2)
        jac = A.jacobian(lambda a, b: a * 2, (x, y))
        assert float(jac[1].abs().sum()) == 0 and jac[1].shape == (2, 3, 4, 3)
        with pytest.raises(RuntimeError, match="Output 0 of the user-provided function is independent of input 1. "
                                               "This is not allowed in strict mode."):
            A.jacobian(lambda a, b: a * 2, (x, y), strict=True)
        with pytest.raises(RuntimeError, match="Output 0 of the user-provided function does not require gradients"):
            A.vjp(lambda a: m.ones(2), x, m.ones(2), strict=True)


def test_a_function_that_captures_its_input_sees_a_constant_as_in_torch():
    got = []
    for m in (gt, torch):
        x = m.tensor([1.0, 2.0], dtype=m.float64)
        got.append(m.autograd.functional.jacobian(lambda a: a * x, x).numpy())   # x captured: a constant
    np.testing.assert_array_equal(*got)
    np.testing.assert_array_equal(got[0], np.diag([1.0, 2.0]))


@pytest.mark.parametrize("call, message", [
    (lambda A, x: A.vjp(lambda a: a * 2, x), "The vector v can only be None if the user-provided function returns "
                                             "a single Tensor with a single element"),
    (lambda A, x: A.jvp(lambda a: a * 2, x, x[:1]), r"v has invalid size: should be \(?.*2, 3.*\)? but got"),
    (lambda A, x: A.hvp(lambda a: a * 2, x, x), "should contain a single element"),
    (lambda A, x: A.hessian(lambda a: (a.sum(), a.sum()), x), "should return a single Tensor"),
    (lambda A, x: A.jacobian(lambda a: a, [x]), "must be either a Tensor or a tuple of Tensors"),
    (lambda A, x: A.vjp(lambda a, b: (a, b), (x, x), (x,)), r"v is a tuple of invalid length: should be 2 but got 1"),
])
def test_bad_arguments_are_refused_as_torch(call, message):
    for m in (gt, torch):
        x = m.tensor(randn(2, 3), dtype=m.float64)
        with pytest.raises((RuntimeError, TypeError), match=message):
            call(m.autograd.functional, x)


def test_vectorize_gives_the_same_jacobian_and_forward_mode_too():
    x = gt.tensor(randn(2, 3), dtype=gt.float64)
    a = gt.autograd.functional.jacobian(lambda t: t.exp(), x)
    b = gt.autograd.functional.jacobian(lambda t: t.exp(), x, vectorize=True)
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    c = gt.autograd.functional.jacobian(lambda t: t.exp(), x, vectorize=True, strategy="forward-mode")
    np.testing.assert_array_equal(a.numpy(), c.numpy())
    import gt.autograd.functional as F
    from gt.autograd.functional import hessian
    assert F.hessian is hessian is gt.autograd.functional.hessian
