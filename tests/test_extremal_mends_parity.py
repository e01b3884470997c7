"""Mended from the comparison with torch at extremal values (tests/test_extremal_opinfo_parity.py:
inf, NaN, -0.0, huge and tiny magnitudes), each beside torch: the cases that failed before, kept
here without the table's machinery."""

import numpy as np
import pytest

import gt

torch = pytest.importorskip("torch")
SPECIAL = [-0.0, 0.0, 1.0, -2.5, float("inf"), float("-inf"), float("nan"), 5e-324, -1.7976931348623157e308]


def _same_bits(got, want):
    """gt's tensor ``got`` is torch's ``want`` element for element: NaN where it is NaN, each zero's sign."""
    a, b = want.detach().numpy(), got.detach().numpy()
    np.testing.assert_array_equal(np.isnan(a), np.isnan(b))
    np.testing.assert_array_equal(np.signbit(a) & ~np.isnan(a), np.signbit(b) & ~np.isnan(b))
    np.testing.assert_allclose(b, a, rtol=1e-12, atol=0)


def test_recorded_clone_keeps_negative_zero():
    """clone of a tensor that requires grad was ``x + 0``: -0.0 came back as 0.0 (conj_physical too)."""
    t = torch.tensor(SPECIAL, dtype=torch.float64, requires_grad=True)
    x = gt.tensor(SPECIAL, dtype=gt.float64, requires_grad=True)
    for fn in (lambda v: v.clone(), lambda v: v.conj_physical()):
        got, want = fn(x), fn(t)
        _same_bits(got, want)
        got.backward(gt.arange(9.0, dtype=gt.float64))
        want.backward(torch.arange(9.0, dtype=torch.float64))
        _same_bits(x.grad, t.grad)
    assert x.clone().grad_fn.name() == "CloneBackward0"
    zc = [complex(1.0, -0.0), complex(-0.0, float("inf"))]
    got = gt.tensor(zc, dtype=gt.complex128, requires_grad=True).clone().detach().numpy()
    want = torch.tensor(zc, dtype=torch.complex128).clone().numpy()
    np.testing.assert_array_equal(np.signbit(got.imag), np.signbit(want.imag))
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("name", ["i1", "i1e"])
def test_i1_gradient_at_tiny_inputs(name):
    """i1' and i1e' were i0 - i1 / x at subnormal x too (gt: 0 and -inf where torch's, and the
    limit, are 1/2): torch's limit 1/2 holds where |x| <= eps, and create_graph=True's too."""
    values = [5e-324, -5e-324, 1e-300, 1e-17, -1e-17, 0.0, float("nan"), 1e-3, 2.0, -3.0]
    t = torch.tensor(values, dtype=torch.float64, requires_grad=True)
    want, = torch.autograd.grad(getattr(torch.special, name)(t).sum(), t)
    for create_graph in (False, True):
        x = gt.tensor(values, dtype=gt.float64, requires_grad=True)
        got, = gt.autograd.grad(getattr(gt.special, name)(x).sum(), x, create_graph=create_graph)
        np.testing.assert_allclose(got.detach().numpy(), want.numpy(), rtol=1e-12, atol=0)


def test_softplus_of_huge_inputs_is_the_input():
    """softplus with beta != 1 returned (beta * x) / beta above the threshold: inf where beta * x
    overflows (x = 3e38 in float32), where torch gives x."""
    for dtype, big in ((torch.float32, 3.4028234e38), (torch.float64, 1.7976931348623157e308)):
        values = [big, -big, 1e20, 30.0, -0.0, float("inf"), float("-inf"), float("nan")]
        t = torch.tensor(values, dtype=dtype, requires_grad=True)
        x = gt.tensor(values, dtype=gt.float64 if dtype == torch.float64 else gt.float32, requires_grad=True)
        want = torch.nn.functional.softplus(t, beta=2.0, threshold=15.0)
        got = gt.nn.functional.softplus(x, beta=2.0, threshold=15.0)
        _same_bits(got, want)
        want.backward(torch.ones_like(t))
        got.backward(gt.ones_like(x))
        _same_bits(x.grad, t.grad)


def test_trunc_division_gradients_are_zero_at_extremal_values():
    """div(rounding_mode="trunc") of floats differentiated through a / b: its zero gradients were
    0 / b and 0 * a / b**2, NaN where b is 0 or inf or either is NaN; torch's are zeros."""
    pairs = [(1.0, 0.0), (float("inf"), 2.0), (3.0, float("inf")), (float("nan"), 1.0), (-7.0, 2.0), (5.0, -0.0)]
    t = [torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in zip(*pairs)]
    x = [gt.tensor(v, dtype=gt.float64, requires_grad=True) for v in zip(*pairs)]
    want = torch.div(*t, rounding_mode="trunc")
    got = gt.div(*x, rounding_mode="trunc")
    _same_bits(got, want)
    assert got.grad_fn.name() == want.grad_fn.name()
    for g, w in zip(gt.autograd.grad(got, x, gt.ones_like(got)), torch.autograd.grad(want, t, torch.ones_like(want))):
        _same_bits(g, w)


@pytest.mark.parametrize("p", [1, 3])
def test_mvlgamma_computes_below_its_domain(p):
    """gt refused elements at or below (p - 1) / 2 and NaN (torch's old check); torch 2.13 computes
    the formula there: lgamma's values, inf at its poles (its gradient at -0.0 is digamma's at +0.0,
    -inf: gt's offset -0.5 * 0 was -0.0, which kept the sign and gave +inf)."""
    values = [-1.5, 0.3, 0.5, 0.7, 1.2, float("-inf"), float("nan"), float("inf"), 4.0, -0.0, 0.0]
    t = torch.tensor(values, dtype=torch.float64, requires_grad=True)
    x = gt.tensor(values, dtype=gt.float64, requires_grad=True)
    want, got = torch.mvlgamma(t, p=p), gt.mvlgamma(x, p=p)
    _same_bits(got, want)
    g, w = gt.autograd.grad(got.sum(), x)[0].numpy(), torch.autograd.grad(want.sum(), t)[0].numpy()
    np.testing.assert_allclose(g, w, rtol=1e-12)


@pytest.mark.parametrize("name, kwargs", [("elu", {}), ("elu", {"alpha": 0.8}), ("celu", {"alpha": -1.5}),
                                          ("selu", {})])
def test_exponential_activations_are_exact_near_zero(name, kwargs):
    """elu, celu and selu computed exp(x) - 1: in float32, 1e-5 off at x = -0.001 and 0 for
    x = -1e-38 (torch: expm1, -9.4e-39)."""
    values = [-0.001, -1.1754943508222875e-38, -1e-8, -1e-30, -5.0, 3.0, float("-inf"), -1e20]
    for tdt, gdt in ((torch.float32, gt.float32), (torch.float64, gt.float64)):
        t = torch.tensor(values, dtype=tdt, requires_grad=True)
        x = gt.tensor(values, dtype=gdt, requires_grad=True)
        want = getattr(torch.nn.functional, name)(t, **kwargs)
        got = getattr(gt.nn.functional, name)(x, **kwargs)
        np.testing.assert_allclose(got.detach().numpy(), want.detach().numpy(), rtol=4e-7 if tdt == torch.float32
                                   else 1e-14, atol=0)
        g, w = gt.autograd.grad(got.sum(), x)[0].numpy(), torch.autograd.grad(want.sum(), t)[0].numpy()
        np.testing.assert_allclose(g, w, rtol=4e-7 if tdt == torch.float32 else 1e-14)


def test_exponential_activations_gradient_far_left():
    """expm1's own gradient, y + 1, rounds to 0 far left of 0: elu's, celu's and selu's are exp's,
    as torch's backward (1e-218 at x = -501), also differentiated twice."""
    values = [-501.0, -60.0, -0.001, 0.0, 2.0]
    for name, kwargs in (("elu", {}), ("celu", {"alpha": 2.0}), ("selu", {})):
        t = torch.tensor(values, dtype=torch.float64, requires_grad=True)
        x = gt.tensor(values, dtype=gt.float64, requires_grad=True)
        w, = torch.autograd.grad(getattr(torch.nn.functional, name)(t, **kwargs).sum(), t, create_graph=True)
        g, = gt.autograd.grad(getattr(gt.nn.functional, name)(x, **kwargs).sum(), x, create_graph=True)
        np.testing.assert_allclose(g.detach().numpy(), w.detach().numpy(), rtol=1e-14, atol=0)
        np.testing.assert_allclose(gt.autograd.grad(g.sum(), x)[0].numpy(),
                                   torch.autograd.grad(w.sum(), t)[0].numpy(), rtol=1e-14, atol=0)
