"""Numerical differences from torch 2.13 mended, each beside torch: float32 var/std at overflowing
and underflowing deviations, the sign of zero through relu/clamp and the activations built on them,
det's second derivative at singular matrices, and the uint16/32/64 refusals of ops taking ``dtype=``."""

import numpy as np
import pytest

import gt
from gt.sharding import use_mesh

torch = pytest.importorskip("torch")

BIG, SUB = 3e38, 1e-39
ROWS = np.array([[1, -2, 3, 0.5, -0.0, 2], [BIG, BIG, -1, 1, 2, 3], [BIG, -BIG, BIG, -BIG, 0, 0],
                 [SUB, -SUB, 1e-38, 2 * SUB, 0, 1e-38], [1e-30, 2e-30, 0, 0, 0, 0], [5] * 6, [0.1] * 6,
                 [1e20, -1e20, 3, 4, 5, 6], [np.nan, 1, 2, 3, 4, 5], [np.inf, 1, 2, 3, 4, 5]], np.float32)


def _close(got, want, rtol=1e-6):
    a, b = want.detach().numpy(), got.detach().numpy()
    assert a.dtype == b.dtype and a.shape == b.shape
    np.testing.assert_array_equal(np.isnan(a), np.isnan(b))
    np.testing.assert_allclose(b, a, rtol=rtol, atol=0)


@pytest.mark.parametrize("name", ["var", "std"])
@pytest.mark.parametrize("dim", [1, 0, None, (0, 1)])
@pytest.mark.parametrize("correction", [0, 1])
def test_float32_var_std_do_not_overflow_or_underflow(name, dim, correction):
    """torch's CPU kernel accumulates float32 in float64: std of values near 3e38 is finite (gt's
    squares gave inf), of subnormal ones not 0. One result over everything takes torch's float32 mean
    (inf where the float32 sum overflows, as there)."""
    for rows in (ROWS, ROWS[:8], ROWS[1:2], ROWS[3:5]):
        for keepdim in (False, True):
            want = getattr(torch.tensor(rows), name)(dim=dim, correction=correction, keepdim=keepdim)
            got = getattr(gt.tensor(rows), name)(dim=dim, correction=correction, keepdim=keepdim)
            _close(got, want)


def test_float32_std_of_subnormal_variance_beside_a_constant_slice():
    """A slice of subnormal variance next to a constant one (variance 0) takes the float64 rerun
    too: the zero did not hide the subnormal (std 7.5e-23 where torch's is 7.07e-23)."""
    rows = np.array([[1, 1, 1], [1e-22, 2e-22, 3e-22], [1, 2, 3]], np.float32)
    for name in ("var", "std"):
        for dim in (1, 0):
            _close(getattr(gt.tensor(rows), name)(dim=dim, correction=1), getattr(torch.tensor(rows), name)(dim=dim))
    for g, w in zip(gt.std_mean(gt.tensor(rows), dim=1), torch.std_mean(torch.tensor(rows), dim=1)):
        _close(g, w)


@pytest.mark.parametrize("name", ["var_mean", "std_mean"])
@pytest.mark.parametrize("dim", [1, None])
def test_float32_var_mean_std_mean_accumulate_in_float64(name, dim):
    """torch.var_mean/std_mean's float32 kernel is Welford's in float64 for both results: a finite
    mean of values near 3e38 (gt's float32 mean overflowed), std 1.5e38 also over everything. Not
    compared: a mean whose float32 sum cancels (1e20 - 1e20 + 18: torch 3, gt's float32 mean is
    gt's ``mean``'s; MISSING.md)."""
    for rows in (ROWS[:7], ROWS[1:2]):
        want = getattr(torch, name)(torch.tensor(rows), dim=dim)
        got = getattr(gt, name)(gt.tensor(rows), dim=dim)
        for g, w in zip(got, want):
            _close(g, w)


def test_float32_var_std_precision_and_gradients():
    """Ordinary float32 data keeps gt's float32 pass (torch's float64 accumulation within float32
    rounding, an offset of 1e3 included); at 3e38 the float64 rerun's gradient is torch's."""
    rng = np.random.default_rng(0)
    a = (rng.standard_normal((64, 300)) + 1e3).astype(np.float32)
    for dim in (0, 1, None):
        _close(gt.tensor(a).var(dim=dim, correction=1), torch.tensor(a).var(dim=dim), rtol=2e-5)
        _close(gt.tensor(a).std(dim=dim, correction=0), torch.tensor(a).std(dim=dim, correction=0), rtol=2e-5)
    for rows, exact in ((a[:4, :6] - np.float32(1e3), False), (ROWS[:3], True)):
        # at 3e38 torch's float32 backward overflows (-inf, or 0 for the third row): its float64
        # gradient rounded to float32 is the one compared there
        t = torch.tensor(rows, dtype=torch.float64 if exact else torch.float32, requires_grad=True)
        x = gt.tensor(rows, requires_grad=True)
        t.std(dim=1).backward(torch.arange(1.0, len(rows) + 1, dtype=t.dtype))
        x.std(dim=1, correction=1).backward(gt.arange(1.0, len(rows) + 1))
        _close(x.grad, t.grad.float(), rtol=1e-5)


@pytest.mark.own_mesh
def test_norm_layers_keep_float32_statistics():
    """torch's batch, group and layer norm kernels accumulate float32 in float32: their statistics
    of values near 1e19 overflow (running_var inf, outputs 0) where var's do not; gt's norms keep
    the float32 pass, as torch (and pay nothing for var's check). On one device: over a mesh that
    splits the batch the statistics are summed from each device's, which may not overflow (MISSING.md)."""
    a = np.array([[1.5e19, 1.0], [-1.5e19, 2.0], [0.5e19, 3.0]], np.float32)
    with use_mesh(1):
        _norms_beside_torch(a)


def _norms_beside_torch(a):
    for m, mod in ((torch, torch), (gt, gt)):
        rm, rv = mod.zeros(2), mod.ones(2)
        out = mod.nn.functional.batch_norm(mod.tensor(a), rm, rv, training=True)
        grouped = mod.nn.functional.group_norm(mod.tensor(a.T[None].copy()), 1)
        rstd = mod.native_layer_norm(mod.tensor(a.T.copy()), (3,), None, None, 1e-5)[2]
        if m is torch:
            want = (out, rm, rv, grouped, rstd)
    for g, w in zip((out, rm, rv, grouped, rstd), want):
        _close(g, w)
    assert bool(gt.tensor(a).var(0, correction=0).isfinite().all())


_SPECIAL = [-0.0, 0.0, float("nan"), -1.0, 1.0, 7.0, -0.5]
_SIGNED = {
    "relu": lambda m, t: m.relu(t),
    "F.relu": lambda m, t: m.nn.functional.relu(t),
    "relu_": lambda m, t: t.clone().relu_(),
    "nn.ReLU": lambda m, t: m.nn.ReLU()(t),
    "clamp(min=0)": lambda m, t: t.clamp(min=0),
    "clamp(max=0)": lambda m, t: t.clamp(max=0),
    "clamp(0, 0)": lambda m, t: t.clamp(0, 0),
    "clamp(-1, 0)": lambda m, t: t.clamp(-1, 0),
    "clamp_min(0)": lambda m, t: t.clamp_min(0),
    "clamp_min(-0.0)": lambda m, t: t.clamp_min(-0.0),
    "clamp_max(0)": lambda m, t: t.clamp_max(0),
    "clamp_(min=0)": lambda m, t: t.clone().clamp_(min=0),
    "clip(0)": lambda m, t: t.clip(0),
    "relu6": lambda m, t: m.nn.functional.relu6(t),
    "hardtanh(0, 1)": lambda m, t: m.nn.functional.hardtanh(t, 0.0, 1.0),
    "hardtanh(-1, 0)": lambda m, t: m.nn.functional.hardtanh(t, -1.0, 0.0),
    "hardtanh_": lambda m, t: m.nn.functional.hardtanh_(t.clone(), 0.0, 1.0),
    "elu": lambda m, t: m.nn.functional.elu(t),
    "celu": lambda m, t: m.nn.functional.celu(t),
    "selu": lambda m, t: m.nn.functional.selu(t),
    "threshold": lambda m, t: m.nn.functional.threshold(t, 0.0, 0.0),
    "leaky_relu": lambda m, t: m.nn.functional.leaky_relu(t),
}


@pytest.mark.parametrize("dtype", ["float32", "float64", "float16"])
def test_zero_signs_of_relu_and_clamp(dtype):
    """torch keeps x unless it is strictly beyond the bound: relu(-0.0) and clamp(-0.0, min=0) are
    -0.0, clamp(0.0, min=-0.0) is 0.0 (numpy's maximum gave the bound); short and long tensors
    (torch's scalar and vectorised loops agree here), the gradients too."""
    for n in (7, 70, 20000):
        a = np.resize(np.array(_SPECIAL, dtype), n)
        for name, fn in _SIGNED.items():
            if dtype == "float16" and name in ("selu", "celu", "elu"):
                continue
            want = fn(torch, torch.tensor(a)).numpy()
            got = fn(gt, gt.tensor(a)).numpy()
            assert got.dtype == want.dtype, name
            np.testing.assert_array_equal(np.signbit(got), np.signbit(want), err_msg=f"{name} n={n}")
            np.testing.assert_allclose(got, want, rtol=1e-6, err_msg=name)
    a = np.array(_SPECIAL, np.float64)
    for name in ("relu", "relu6", "hardtanh(0, 1)", "clamp(min=0)", "elu"):
        t = torch.tensor(a, requires_grad=True)
        x = gt.tensor(a, requires_grad=True)
        _SIGNED[name](torch, t).backward(torch.arange(1.0, 8.0, dtype=torch.float64))
        _SIGNED[name](gt, x).backward(gt.arange(1.0, 8.0, dtype=gt.float64))
        np.testing.assert_array_equal(x.grad.numpy(), t.grad.numpy(), err_msg=name)


def _laplace_det(m):
    """det by cofactor expansion: plain arithmetic, so torch's autograd gives its exact derivatives."""
    if m.shape[-1] == 1:
        return m[..., 0, 0]
    return sum((-1) ** j * m[..., 0, j] * _laplace_det(torch.cat([m[..., 1:, :j], m[..., 1:, j + 1:]], -1))
               for j in range(m.shape[-1]))


def _det_hvp(lib, a, v, det):
    with lib.enable_grad():
        x = lib.tensor(a, requires_grad=True)
        (g,) = lib.autograd.grad(det(x).sum(), x, create_graph=True)
        (h,) = lib.autograd.grad((g * lib.tensor(v)).sum(), x)
    return g.detach().numpy(), h.numpy()


def _singular_matrices():
    """Integer matrices whose last rows are integer combinations of the first: exactly singular, of
    rank n-1 down to 0; and [[1, 2, 3], [2, 4, 6], [1, 0, 1]], whose LU meets an exact zero pivot
    while det rounds to -6.7e-16."""
    rng = np.random.default_rng(3)
    out = [np.array([[1.0, 2, 3], [2, 4, 6], [1, 0, 1]])]
    for n in (2, 3, 4, 5):
        for rank in range(n - 1, -1, -1):
            m = rng.integers(-3, 4, (n, n)).astype(np.float64)
            for r in range(rank, n):
                m[r] = rng.integers(-2, 3, rank) @ m[:rank] if rank else 0
            out.append(m[rng.permutation(n)])
    return out


def test_det_second_derivative_at_singular_matrices():
    """det's gradient recorded for ``create_graph`` went through inv, which refuses an exactly
    singular A (LinAlgError); now the cofactors' own derivative (through the SVD, no division): the
    exact Hessian-vector product at rank n-1 and below, as torch's where its SVD route is finite
    (at the zero matrix torch's is NaN), in float64; a batch mixing singular and invertible too."""
    rng = np.random.default_rng(4)
    for a in _singular_matrices():
        v = rng.standard_normal(a.shape)
        g, h = _det_hvp(gt, a, v, gt.linalg.det)
        g_ref, h_ref = _det_hvp(torch, a, v, _laplace_det)
        np.testing.assert_allclose(g, g_ref, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(h, h_ref, rtol=1e-10, atol=1e-12)
        g_t, h_t = _det_hvp(torch, a, v, torch.linalg.det)
        if np.isfinite(h_t).all():
            np.testing.assert_allclose(h, h_t, rtol=1e-10, atol=1e-12)
    batch = np.stack([_singular_matrices()[3], rng.standard_normal((3, 3)), np.zeros((3, 3))])
    v = rng.standard_normal(batch.shape)
    g, h = _det_hvp(gt, batch, v, gt.linalg.det)
    g_ref, h_ref = _det_hvp(torch, batch, v, _laplace_det)
    np.testing.assert_allclose(h, h_ref, rtol=1e-10, atol=1e-12)
    with pytest.raises(NotImplementedError, match="Cofactors"):     # a third derivative: not yet
        x = gt.tensor(batch, requires_grad=True)
        (g,) = gt.autograd.grad(gt.linalg.det(x).sum(), x, create_graph=True)
        (h,) = gt.autograd.grad((g * gt.tensor(v)).sum(), x, create_graph=True)
        gt.autograd.grad(h.sum(), x)


def test_det_second_derivative_near_singular_matrices():
    """Near a singular matrix (det 1e-15, not 0) the two terms of the derivative of det(A) inv(A)^T
    cancel to noise (60 off); the cofactors' route is taken there too. torch's own is 400 off at
    some 5 x 5 matrices of rank 4 rounded off singular: compared with the exact values only."""
    rng = np.random.default_rng(0)
    a = np.array([[1.0, 2, 3], [2, 4, 6], [1, 0, 1]]) + 1e-15 * np.eye(3)
    for m in (a, rng.standard_normal((4, 3)) @ rng.standard_normal((3, 4))):
        v = rng.standard_normal(m.shape)
        _, h = _det_hvp(gt, m, v, gt.linalg.det)
        _, h_ref = _det_hvp(torch, m, v, _laplace_det)
        np.testing.assert_allclose(h, h_ref, rtol=1e-9, atol=1e-10)


def test_det_gradient_near_singular_matrices():
    """det's gradient det(A) inv(A)^T from two separate LUs (the torch engine's det and inv) had few
    right digits near a singular A: 0.0058 for a cofactor of 0.166 at det 9e-21. Near singular (and
    at singular A) it is now the cofactors through the SVD, exact as torch's own backward."""
    rng = np.random.default_rng(1)
    dets = []
    for n in (2, 3, 4, 5):
        for _ in range(3):
            a = rng.standard_normal((n, n - 1)) @ rng.standard_normal((n - 1, n))
            x = gt.tensor(a, requires_grad=True)
            d = gt.linalg.det(x)
            d.backward()
            dets.append(abs(d.item()))
            t = torch.tensor(a, requires_grad=True)
            with torch.enable_grad():
                _laplace_det(t).backward()
            np.testing.assert_allclose(x.grad.numpy(), t.grad.numpy(), rtol=1e-9, atol=1e-12)
    assert max(dets) > 0      # rounded off zero: the branch through inv was taken before
