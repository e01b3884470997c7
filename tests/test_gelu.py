"""The exact GELU against the erf-based formula in float64 (math.erfc): the numpy engine's float32
fast path to within a few units in the last place over the whole float32 range, float64 inputs
float64-exact, and gradients likewise."""

import math

import numpy as np
import pytest

import gt
from gt.backend import numpy_gelu

_ERFC = np.frompyfunc(math.erfc, 1, 1)
TINY = np.finfo(np.float32).tiny


def reference(x):
    """GELU and its derivative in float64 from math.erfc: Phi(x) = erfc(-x / sqrt 2) / 2 keeps its
    relative accuracy in the negative tail, where 1 + erf cancels."""
    xd = np.asarray(x, dtype=np.float64)
    cdf = 0.5 * np.asarray(_ERFC(-xd / math.sqrt(2)), dtype=np.float64)
    pdf = np.exp(-0.5 * xd * xd) / math.sqrt(2 * math.pi)
    return xd * cdf, cdf + xd * pdf, np.abs(cdf) + np.abs(xd * pdf)


def float32_inputs():
    rng = np.random.default_rng(0)
    tiny = np.float32(10.0) ** rng.uniform(-44, -1, 20000).astype(np.float32)
    large = np.float32(10.0) ** rng.uniform(1, 38, 2000).astype(np.float32)
    return np.concatenate([np.linspace(-16, 16, 160001, dtype=np.float32), tiny, -tiny, large, -large,
                           np.array([0.0, -0.0, 20.0, -20.0, 3.4e38, -3.4e38], np.float32)])


def ulps(got, exact):
    """|got - exact| in units of float32's last place at ``exact`` (subnormal spacing below tiny)."""
    unit = np.spacing(np.abs(exact).astype(np.float32)).astype(np.float64)
    return np.abs(got.astype(np.float64) - exact) / unit


@pytest.mark.first_pass          # calls the engine's function itself: no GT_* setting changes it
def test_float32_fast_path_is_within_a_few_units_in_the_last_place():
    x = float32_inputs()
    out, grad = numpy_gelu.gelu_with_grad(x)
    assert out.dtype == grad.dtype == np.float32 and out.shape == grad.shape == x.shape
    y, dy, scale = reference(x)
    err = ulps(out, y)
    normal = np.abs(y) >= TINY
    assert err[normal].max() <= 12 and err[normal & (np.abs(x) <= 5)].max() <= 8 and err.mean() <= 0.6
    assert np.abs(out - y)[~normal].max() <= 16 * np.finfo(np.float32).smallest_subnormal
    # the derivative crosses 0 near x = -0.75: its error counts in units of its two terms' size
    assert (np.abs(grad - dy) / np.spacing(scale.astype(np.float32))).max() <= 16
    assert (np.abs(grad - dy) / np.spacing(scale.astype(np.float32))).mean() <= 1


@pytest.mark.first_pass          # calls the engine's function itself: no GT_* setting changes it
def test_float32_fast_path_special_values():
    x = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1000.0, -1000.0], np.float32)
    with np.errstate(invalid="ignore"):
        out, grad = numpy_gelu.gelu_with_grad(x)
    np.testing.assert_array_equal(out, [np.nan, np.inf, np.nan, 0.0, 0.0, 1000.0, 0.0])
    np.testing.assert_array_equal(grad, [np.nan, np.nan, np.nan, 0.5, 0.5, 1.0, 0.0])
    assert np.signbit(out[4]) and np.signbit(out[6])          # -0.0, as x * Phi(x) is
    scalar, d = numpy_gelu.gelu_with_grad(np.float32(1.5))
    assert scalar.shape == () and abs(float(scalar) - reference(1.5)[0]) < 2e-7


@pytest.mark.first_pass          # calls the engine's function itself: no GT_* setting changes it
def test_float64_inputs_are_float64_exact():
    # float64 keeps the precise erf and 1 + erf (as before): exact to float64's absolute rounding,
    # and relatively wherever 1 + erf does not cancel
    x = np.concatenate([np.linspace(-30, 30, 6001), [1e-300, -1e-300, 1e-8, -1e-8, 0.0]])
    out, grad = numpy_gelu.gelu_with_grad(x)
    y, dy, scale = reference(x)
    assert out.dtype == grad.dtype == np.float64
    np.testing.assert_allclose(out, y, rtol=0, atol=1e-15 * 30)
    ok = np.abs(y) > 1e-300
    assert (np.abs(out - y)[ok & (x > -1)] / np.abs(y)[ok & (x > -1)]).max() < 1e-13
    assert (np.abs(grad - dy) / scale)[x > -1].max() < 1e-13 and np.abs(grad - dy).max() < 1e-15


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_gt_gelu_and_its_gradient_match_the_formula(dtype):
    x = np.linspace(-8, 8, 2001).astype(dtype)
    t = gt.tensor(x, requires_grad=True)
    out = t.gelu()
    out.sum().backward()
    y, dy, scale = reference(x)
    assert out.dtype == getattr(gt, dtype)
    # float64 to 1e-14 on both engines; float32 to its rounding (torch's own float32 kernel
    # computes 1 + erf, so its negative tail is good to float32's absolute rounding only)
    atol = 1e-14 if dtype == "float64" else 2e-6
    np.testing.assert_allclose(out.numpy(), y, rtol=0, atol=atol)
    np.testing.assert_allclose(t.grad.numpy(), dy, rtol=0, atol=atol * 2)


@pytest.mark.first_pass          # calls the engine's function itself: no GT_* setting changes it
def test_torch_engine_matches_torch_gelu_bit_for_bit():
    torch = pytest.importorskip("torch")
    from gt.backend.torch_engine import TorchEngine
    x = torch.linspace(-9, 9, 5001, dtype=torch.float32)
    out, grad = TorchEngine().gelu_with_grad(x)
    xr = x.clone().requires_grad_(True)
    ref = torch.nn.functional.gelu(xr)
    ref.sum().backward()
    assert torch.equal(out, ref.detach()) and torch.equal(grad, xr.grad)
