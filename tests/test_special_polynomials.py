"""torch.special's orthogonal polynomials (gt/ops/special_polynomials.py, exported by gt/special.py)
and ``igamma``/``igammac`` (gt/tensor/special_methods.py), beside torch on the same inputs.

Precision beside torch (measured on the grid of ``test_values_beside_torch``, n up to 600):
float32 agrees within one unit in the last place (gt reproduces torch's fused multiply-add in
the recurrences and its correctly rounded acosf/cosf/sinf); float64 within 1e-12 relative where
the recurrence is ill-conditioned (x = 1.0001, n = 600: torch's FMA cannot be reproduced in
float64), and 1e-14 absolute where a value is near 0. NaN and inf land where torch's do.
torch's U and W (and shifted U and W) of a NaN x with n >= 2 read an uninitialized variable
(they return whatever the previous element gave); gt gives NaN there: left out of the comparison.
"""

import math

import numpy as np
import pytest

import gt
from gt.sharding.mesh import use_mesh
from gt.sharding.placement import Shard
from helpers import compare_with_torch, torch_or_skip

NAN, INF = math.nan, math.inf
NAMES = ["chebyshev_polynomial_t", "chebyshev_polynomial_u", "chebyshev_polynomial_v", "chebyshev_polynomial_w",
         "shifted_chebyshev_polynomial_t", "shifted_chebyshev_polynomial_u", "shifted_chebyshev_polynomial_v",
         "shifted_chebyshev_polynomial_w", "hermite_polynomial_h", "hermite_polynomial_he", "laguerre_polynomial_l",
         "legendre_polynomial_p"]
# the special points of every family (+-1, 0, 1), inside and outside [-1, 1], near 1
X = np.array([0.5, 2.0, 1.0, -1.0, 1.0001, 0.3, 0.0, -0.7, -3.0, 0.999, 0.9, -0.25, 1.7, -1.3])
# negative, small (below every trigonometric threshold), past them, Hermite's limits, past int64,
# NaN, infinities, fractions (truncated toward zero)
N = [-1, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 12, 40, 127, 128, 129, 512, 513, 600, 1e30, NAN, INF, -INF, 2.9, -0.5]


def _both(name, x, n, dtype):
    torch = torch_or_skip()
    ours = getattr(gt.special, name)(gt.tensor(x.astype(dtype)), gt.tensor(n.astype(dtype))).numpy()
    theirs = getattr(torch.special, name)(torch.from_numpy(x.astype(dtype)), torch.from_numpy(n.astype(dtype)))
    return ours, theirs.numpy()


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_values_beside_torch(name, dtype):
    x = np.repeat(X, len(N))
    n = np.tile(np.array(N, dtype=np.float64), len(X))
    ours, theirs = _both(name, x, n, dtype)
    assert ours.dtype == theirs.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(theirs))
    finite = np.isfinite(theirs)
    np.testing.assert_array_equal(ours[~finite], theirs[~finite])
    if dtype == "float32":
        np.testing.assert_allclose(ours[finite], theirs[finite], rtol=2.5e-7, atol=1e-30)
    else:
        np.testing.assert_allclose(ours[finite], theirs[finite], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", NAMES)
def test_nan_x(name):
    """NaN in, NaN out for n >= 1; 1 at n = 0 and 0 for negative n (torch's rules come first)."""
    n = np.array([-2.0, 0.0, 1.0, 2.0, 5.0, 40.0])
    out = getattr(gt.special, name)(gt.tensor(np.full(6, NAN)), gt.tensor(n)).numpy()
    np.testing.assert_array_equal(out[:2], [0.0, 1.0])
    assert np.isnan(out[2:]).all(), out
    torch = torch_or_skip()
    if name[-1] not in "uw" or "polynomial" not in name:
        ref = getattr(torch.special, name)(torch.full((6,), NAN, dtype=torch.float64), torch.from_numpy(n)).numpy()
        np.testing.assert_array_equal(out, ref)


def test_known_values():
    """Closed forms: T_3 = 4x^3 - 3x, H_3 = 8x^3 - 12x, He_3 = x^3 - 3x, L_2 = (x^2 - 4x + 2) / 2,
    P_2 = (3x^2 - 1) / 2, and T_n(cos t) = cos(n t) on the trigonometric branch."""
    x = np.array([-0.8, 0.1, 0.45, 1.5], dtype=np.float64)
    t = gt.tensor(x)
    s = gt.special
    np.testing.assert_allclose(s.chebyshev_polynomial_t(t, 3).numpy(), 4 * x ** 3 - 3 * x, rtol=1e-13)
    np.testing.assert_allclose(s.hermite_polynomial_h(t, 3).numpy(), 8 * x ** 3 - 12 * x, rtol=1e-13)
    np.testing.assert_allclose(s.hermite_polynomial_he(t, 3).numpy(), x ** 3 - 3 * x, rtol=1e-13)
    np.testing.assert_allclose(s.laguerre_polynomial_l(t, 2).numpy(), (x * x - 4 * x + 2) / 2, rtol=1e-13)
    np.testing.assert_allclose(s.legendre_polynomial_p(t, 2).numpy(), (3 * x * x - 1) / 2, rtol=1e-13)
    np.testing.assert_allclose(s.shifted_chebyshev_polynomial_t(t, 3).numpy(),
                               s.chebyshev_polynomial_t(2 * t - 1, 3).numpy(), rtol=1e-12)
    theta = np.array([0.3, 1.0, 2.5])
    np.testing.assert_allclose(s.chebyshev_polynomial_t(gt.tensor(np.cos(theta)), 25).numpy(), np.cos(25 * theta),
                               atol=1e-12)


@pytest.mark.parametrize("name", NAMES)
def test_numbers_ints_and_broadcasting(name):
    torch = torch_or_skip()
    f, g = getattr(gt.special, name), getattr(torch.special, name)
    xs = np.array([[0.25], [-0.5], [1.5]])                      # (3, 1) against n (4,)
    ns = np.array([0, 1, 3, 9])
    out = f(gt.tensor(xs, dtype=gt.float32), gt.tensor(ns))
    ref = g(torch.tensor(xs, dtype=torch.float32), torch.tensor(ns))
    assert out.shape == tuple(ref.shape) == (3, 4) and out.dtype == gt.float32
    np.testing.assert_allclose(out.numpy(), ref.numpy(), rtol=3e-7)
    # a number on either side takes the tensor's dtype; integer tensors give float32
    for a, b in [(0.75, ns), (xs, 5), (xs, 4.9), (np.array([2, 3]), np.array([3, 2]))]:
        ga = a if np.isscalar(a) else gt.tensor(a)
        gb = b if np.isscalar(b) else gt.tensor(b)
        ta = a if np.isscalar(a) else torch.tensor(a)
        tb = b if np.isscalar(b) else torch.tensor(b)
        o, r = f(ga, gb), g(ta, tb)
        assert str(o.dtype).split(".")[-1] == str(r.dtype).split(".")[-1], (a, b, o.dtype, r.dtype)
        np.testing.assert_allclose(o.numpy(), r.numpy(), rtol=1e-12 if r.dtype == torch.float64 else 3e-7)
    # torch's keyword names
    np.testing.assert_allclose(f(x=gt.tensor([0.3]), n=4).numpy(), g(x=torch.tensor([0.3]), n=4).numpy(), rtol=3e-7)
    # 0-d and empty
    assert f(gt.tensor(0.5), gt.tensor(3.0)).shape == ()
    np.testing.assert_allclose(f(gt.tensor(0.5), gt.tensor(3.0)).item(), g(torch.tensor(0.5), torch.tensor(3.0)).item(),
                               rtol=1e-6)
    assert f(gt.zeros(0, 2), gt.ones(2)).shape == (0, 2)


@pytest.mark.first_pass
def test_errors():
    with pytest.raises(TypeError, match="at least one tensor"):
        gt.special.chebyshev_polynomial_t(0.5, 3)
    with pytest.raises(ValueError, match="cannot be broadcast"):
        gt.special.legendre_polynomial_p(gt.ones(2), gt.ones(3))


def test_no_gradient_as_torch():
    """torch marks these non-differentiable: the output does not require grad, backward raises."""
    torch = torch_or_skip()
    t = torch.tensor([0.5], requires_grad=True)
    assert not torch.special.chebyshev_polynomial_t(t, 3).requires_grad
    x = gt.tensor([0.5, 0.2], requires_grad=True)
    for name in NAMES:
        y = getattr(gt.special, name)(x, 3)
        assert not y.requires_grad and y.grad_fn is None
    with pytest.raises(RuntimeError, match="does not require grad"):
        gt.special.hermite_polynomial_h(x, 2).sum().backward()


def test_non_contiguous_input():
    torch = torch_or_skip()
    base = np.linspace(-1.5, 1.5, 12).reshape(3, 4)
    ours = gt.special.legendre_polynomial_p(gt.tensor(base).t(), gt.tensor([2.0, 5.0, 11.0]))
    ref = torch.special.legendre_polynomial_p(torch.tensor(base).t(), torch.tensor([2.0, 5.0, 11.0]))
    np.testing.assert_allclose(ours.numpy(), ref.numpy(), rtol=1e-13)


@pytest.mark.parametrize("devices", [2, 4])
def test_sharded_input_gives_the_unsharded_answer(devices):
    x = np.linspace(-1.2, 1.2, 24).reshape(8, 3)
    n = np.array([2.0, 7.0, 30.0])
    with use_mesh(1):           # the virtual devices are CPU ones, also where gt would compute on a GPU
        want = gt.special.chebyshev_polynomial_u(gt.tensor(x), gt.tensor(n)).numpy()
    with use_mesh(devices):
        out = gt.special.chebyshev_polynomial_u(gt.tensor(x).shard(0), gt.tensor(n))
        assert out.placement == Shard(0)
        np.testing.assert_array_equal(out.numpy(), want)


# ---- igamma / igammac ----------------------------------------------------------------------
A = np.array([0.5, 1.0, 2.5, 4.0, 7.0])
Z = np.array([0.1, 0.9, 2.0, 3.5, 9.0])


@pytest.mark.parametrize("name", ["igamma", "igammac"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_igamma_beside_torch(name, dtype):
    torch = torch_or_skip()
    rtol = 2e-6 if dtype == "float32" else 1e-12
    compare_with_torch(lambda a, z: getattr(gt, name)(a, z), lambda a, z: getattr(torch, name)(a, z), A, Z,
                       dtype=dtype, rtol=rtol, atol=1e-7 if dtype == "float32" else 1e-14, grad=False)
    # the gradient in the second argument (torch's formula), the first detached
    a_t = torch.tensor(A, dtype=torch.float64)
    z_t = torch.tensor(Z, dtype=torch.float64, requires_grad=True)
    getattr(torch, name)(a_t, z_t).sum().backward()
    z = gt.tensor(Z, requires_grad=True)
    getattr(gt, name)(gt.tensor(A), z).sum().backward()
    np.testing.assert_allclose(z.grad.numpy(), z_t.grad.numpy(), rtol=1e-12)
    # methods, in-place forms and the special aliases agree
    method = getattr(gt.tensor(A), name)(gt.tensor(Z)).numpy()
    inplace = gt.tensor(A)
    assert getattr(inplace, name + "_")(gt.tensor(Z)) is inplace
    alias = (gt.special.gammainc if name == "igamma" else gt.special.gammaincc)(gt.tensor(A), gt.tensor(Z)).numpy()
    ref = getattr(torch.Tensor, name)(torch.tensor(A), torch.tensor(Z)).numpy()
    for got in (method, inplace.numpy(), alias):
        np.testing.assert_allclose(got, ref, rtol=1e-12)


def test_igamma_first_argument_has_no_gradient_as_torch():
    torch = torch_or_skip()
    with pytest.raises(NotImplementedError):
        torch.igamma(torch.tensor([1.0], requires_grad=True), torch.tensor([2.0])).sum().backward()
    a = gt.tensor([1.0], requires_grad=True)
    with pytest.raises(NotImplementedError, match="igamma: input"):
        gt.igamma(a, gt.tensor([2.0])).sum().backward()
    with pytest.raises(NotImplementedError, match="igammac: input"):
        gt.tensor([1.0], requires_grad=True).igammac(gt.tensor([2.0])).sum().backward()


def test_igamma_broadcast_and_edges():
    torch = torch_or_skip()
    a = np.array([[0.5], [2.0]])
    z = np.array([0.0, 1.0, INF])
    for name in ("igamma", "igammac"):
        ours = getattr(gt, name)(gt.tensor(a), gt.tensor(z)).numpy()
        ref = getattr(torch, name)(torch.tensor(a), torch.tensor(z)).numpy()
        assert ours.shape == ref.shape == (2, 3)
        np.testing.assert_allclose(ours, ref, rtol=1e-12)
