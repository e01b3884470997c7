"""Second derivatives (``create_graph=True``) through gt.linalg's factorizations beside torch 2.13's,
in float64: eigh/eigvalsh, svd (reduced and full)/svdvals, qr (reduced and complete), lu_factor/lu
(square, wide, tall), lu_solve (left, right, adjoint) and slogdet. For each: the recorded gradient g
of the output along a random v, then the gradient of sum(w * g) w.r.t. the inputs and v (torch's
gradgradcheck quantities), beside torch's and beside central differences of gt's own first
derivative. Losses of eigenvectors and singular vectors are free of their signs (|V|^2, V f(L) V^T),
which numpy's and torch's LAPACK may choose differently. Also torch's refusals, a third derivative,
slogdet's sign and a sharded batch (complex inputs: tests/test_complex_gradgrad_parity.py).
"""

import numpy as np
import pytest

import gt
from gt.sharding.mesh import use_mesh
from helpers import randn, torch_or_skip


def _joined(lib, batch, *parts):
    """The ``parts`` (each batch + its own axes) flattened and joined along one last axis."""
    return lib.cat([p.reshape(tuple(p.shape[:batch]) + (-1,)) for p in parts], -1)


def _eigh(lib, x, uplo="L"):
    w, v = lib.linalg.eigh(x + x.mT, UPLO=uplo)    # symmetric for every direction of x
    return _joined(lib, x.ndim - 2, w, v * v, v @ ((w / 4).exp().unsqueeze(-1) * v.mT))


def _svd(lib, x, full=False):
    u, s, vh = lib.linalg.svd(x, full_matrices=full)
    k = s.shape[-1]
    u, vh = u[..., :k], vh[..., :k, :]        # full matrices' extra columns are not unique (no gradient in torch)
    return _joined(lib, x.ndim - 2, s, u * u, vh * vh, (u * s.unsqueeze(-2).sqrt()) @ vh)


def _qr(lib, x, mode="reduced"):
    return _joined(lib, x.ndim - 2, *lib.linalg.qr(x, mode=mode))


def _lu(lib, x):
    p, low, up = lib.linalg.lu(x)
    return _joined(lib, x.ndim - 2, low, up)


def _slogdet(lib, x):
    sign, logabsdet = lib.linalg.slogdet(x)
    return sign * logabsdet + logabsdet ** 2


# name: (function of (lib, *inputs), input shapes)
CASES = {
    "eigh": (_eigh, [(2, 3, 3)]),
    "eigh_upper": (lambda lib, x: _eigh(lib, x, "U"), [(3, 3)]),
    "eigvalsh": (lambda lib, x: lib.linalg.eigvalsh(x + x.mT), [(2, 3, 3)]),
    "svd": (_svd, [(2, 3, 3)]),
    "svd_tall_full": (lambda lib, x: _svd(lib, x, True), [(2, 4, 3)]),
    "svd_wide": (_svd, [(3, 5)]),
    "svdvals": (lambda lib, x: lib.linalg.svdvals(x), [(2, 4, 3)]),
    "qr_tall": (_qr, [(2, 4, 3)]),
    "qr_square": (_qr, [(3, 3)]),
    "qr_wide": (_qr, [(2, 3, 5)]),
    "qr_complete_wide": (lambda lib, x: _qr(lib, x, "complete"), [(3, 4)]),
    "lu_factor": (lambda lib, x: lib.linalg.lu_factor(x).LU, [(2, 3, 3)]),
    "lu_wide": (_lu, [(2, 3, 5)]),
    "lu_tall": (_lu, [(5, 3)]),
    "lu_solve": (lambda lib, x, b: lib.linalg.lu_solve(*lib.linalg.lu_factor(x), b), [(2, 3, 3), (2, 3, 2)]),
    "lu_solve_adjoint": (lambda lib, x, b: lib.linalg.lu_solve(*lib.linalg.lu_factor(x), b, adjoint=True),
                         [(2, 3, 3), (3, 2)]),
    "lu_solve_right": (lambda lib, x, b: lib.linalg.lu_solve(*lib.linalg.lu_factor(x), b, left=False),
                       [(3, 3), (2, 3)]),
    "slogdet": (_slogdet, [(2, 3, 3)]),
}


def _inputs(name):
    return [randn(*shape, seed=10 + i) for i, shape in enumerate(CASES[name][1])]


def _twice(lib, name, arrays, create=True):
    """(g, sum(w * g), [its gradients w.r.t. the inputs, then v]) of case ``name`` at ``arrays``."""
    rng = np.random.default_rng(1)
    fn = CASES[name][0]
    xs = [lib.tensor(a, requires_grad=True) for a in arrays]
    y = fn(lib, *xs)
    v = lib.tensor(rng.standard_normal(tuple(y.shape)), requires_grad=True)
    g = lib.autograd.grad(y, xs, v, create_graph=create)
    inner = sum((gi * lib.tensor(rng.standard_normal(tuple(gi.shape)))).sum() for gi in g)
    if not create:
        return g, float(inner), None
    return g, inner, lib.autograd.grad(inner, xs + [v])


@pytest.mark.parametrize("name", list(CASES))
def test_second_derivatives_beside_torch_and_finite_differences(name):
    torch = torch_or_skip()
    arrays = _inputs(name)
    t_g, _, t_gg = _twice(torch, name, arrays)
    g_g, _, g_gg = _twice(gt, name, arrays)
    for want, got in zip(list(t_g) + list(t_gg), list(g_g) + list(g_gg)):
        want = want.detach().numpy()
        np.testing.assert_allclose(got.detach().numpy(), want, rtol=1e-9, atol=1e-11 * (1 + np.abs(want).max()))
    # gradgradcheck's question of gt alone: the directional derivative of its first derivative
    directions = [randn(*a.shape, seed=40 + i) for i, a in enumerate(arrays)]
    step = 1e-6
    ahead = _twice(gt, name, [a + step * d for a, d in zip(arrays, directions)], create=False)[1]
    behind = _twice(gt, name, [a - step * d for a, d in zip(arrays, directions)], create=False)[1]
    predicted = sum(float((gg.numpy() * d).sum()) for gg, d in zip(g_gg, directions))
    assert abs((ahead - behind) / (2 * step) - predicted) <= 1e-6 * (1 + abs(predicted))


@pytest.mark.parametrize("name", ["eigh", "svd", "qr_tall", "lu_wide", "lu_solve"])
def test_third_derivatives_beside_torch(name):
    torch = torch_or_skip()
    arrays = _inputs(name)

    def third(lib):
        xs = [lib.tensor(a, requires_grad=True) for a in arrays]
        y = CASES[name][0](lib, *xs)
        g = lib.autograd.grad((y * y).sum(), xs, create_graph=True)
        h = lib.autograd.grad(sum((gi * gi).sum() for gi in g), xs, create_graph=True)
        return [t.detach().numpy() for t in lib.autograd.grad(sum((hi * hi).sum() for hi in h), xs)]

    for want, got in zip(third(torch), third(gt)):
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-11 * (1 + np.abs(want).max()))


def _spectral_terms(lib, x):
    w, v = lib.linalg.eigh(x + x.mT)
    u, s, vh = lib.linalg.svd(x)
    q, r = lib.linalg.qr(x)
    return ((w ** 3).sum() + (v * v * w).sum() + (s ** 3).sum() + (u * u * s).sum() + (q * r).sum()
            + (lib.linalg.lu_factor(x).LU ** 3).sum() + lib.linalg.slogdet(x).logabsdet ** 2)


def test_hessian_vector_product_beside_torch():
    # hvp differentiates w.r.t. zero upstream gradients (the double-backward trick): a backward that
    # left out the terms of a zero part of its gradient gave H v 7.0 off here
    torch = torch_or_skip()
    a, v = randn(3, 3, seed=7), randn(3, 3, seed=8)
    want = torch.autograd.functional.hvp(lambda x: _spectral_terms(torch, x), torch.tensor(a), torch.tensor(v))
    got = gt.autograd.functional.hvp(lambda x: _spectral_terms(gt, x), gt.tensor(a), gt.tensor(v))
    for w, g in zip(want, got):
        np.testing.assert_allclose(g.numpy(), w.numpy(), rtol=1e-9, atol=1e-11)


def _exp_by_eigh(lib, x):
    w, v = lib.linalg.eigh(x)
    return (v * w.exp().unsqueeze(-2)) @ v.mT


TIES = {   # exactly repeated eigenvalues or singular values, or a zero one
    "eigvalsh": (np.diag([1.0, 1.0, 2.0]), lambda lib, x: (lib.linalg.eigvalsh(x) ** 2).sum()),
    "svdvals": (np.eye(4, 3), lambda lib, x: (lib.linalg.svdvals(x) ** 2).sum()),
    "svdvals_rank_1": (np.outer([1.0, 2.0, 3.0, 4.0], [1.0, 0.0, 1.0]),
                       lambda lib, x: (lib.linalg.svdvals(x) ** 2).sum()),
    "eigh_vectors": (np.diag([1.0, 1.0, 2.0]), lambda lib, x: _exp_by_eigh(lib, x).triu().sum()),
    "svd_vectors": (np.eye(4, 3), lambda lib, x: (lib.linalg.svd(x, full_matrices=False).U.triu() ** 2).sum()),
}


@pytest.mark.parametrize("name", list(TIES))
def test_repeated_values_give_torchs_finite_values_and_nans(name):
    # eigvalsh and svdvals: finite first derivatives (no 1 / (L_j - L_i) terms), as torch's; a loss of
    # the vectors: NaN, as torch's (gt's plain backward gave a finite gradient that missed the limit
    # of those terms, e.g. e (W_01 + W_10) / 2 for V diag(exp(L)) V^T at L = (1, 1, 2)); second
    # derivatives and H v: NaN, as torch's (gt's H v through eigvalsh was finite and wrong there)
    torch = torch_or_skip()
    a, fn = TIES[name]

    def run(lib):
        x = lib.tensor(a, requires_grad=True)
        (plain,) = lib.autograd.grad(fn(lib, x), x)
        (g,) = lib.autograd.grad(fn(lib, x), x, create_graph=True)
        (h,) = lib.autograd.grad((g * lib.tensor(randn(*a.shape, seed=9))).sum(), x)
        hv = lib.autograd.functional.hvp(lambda y: fn(lib, y), lib.tensor(a), lib.tensor(randn(*a.shape, seed=9)))[1]
        return [t.detach().numpy() for t in (plain, g, h, hv)]

    with np.errstate(divide="ignore", invalid="ignore"):
        got = run(gt)
    for w, g in zip(run(torch), got):
        np.testing.assert_allclose(g, w, rtol=1e-9, atol=1e-12, equal_nan=True)


def test_torch_refusals():
    torch = torch_or_skip()
    for lib in (torch, gt):       # torch's errors, raised by gt's recorded backward as by its plain one
        x = lib.tensor(randn(4, 3, seed=1), requires_grad=True)
        with pytest.raises(RuntimeError, match="not differentiable when mode='complete' and nrows > ncols"):
            lib.autograd.grad(lib.linalg.qr(x, mode="complete").R.sum(), x, create_graph=True)
        with pytest.raises(RuntimeError, match="mode='r'"):
            lib.autograd.grad(lib.linalg.qr(x, mode="r").R.sum(), x, create_graph=True)


def test_complex_svd_refuses_a_loss_of_the_phases_as_torch():
    torch = torch_or_skip()
    a = randn(3, 3, seed=4) + 1j * randn(3, 3, seed=5)
    for lib in (torch, gt):
        x = lib.tensor(a, requires_grad=True)
        with pytest.raises(RuntimeError, match="specified up to multiplication by e\\^{i phi}"):
            lib.linalg.svd(x).U.real.sum().backward()
    # the phases cancel in U diag(S) Vh and |U|^2: no error, torch's gradient
    grads = []
    for lib in (torch, gt):
        x = lib.tensor(a, requires_grad=True)
        u, s, vh = lib.linalg.svd(x)
        ((u * s.unsqueeze(-2)) @ vh).real.sum().add((u.abs() ** 2).sum()).backward()
        grads.append(x.grad.numpy())
    np.testing.assert_allclose(grads[1], grads[0], rtol=1e-10, atol=1e-12)


def test_slogdet_sign_requires_grad_and_has_no_gradient_as_torch():
    torch = torch_or_skip()
    a = randn(2, 3, 3, seed=6)
    for lib in (torch, gt):
        x = lib.tensor(a, requires_grad=True)
        sign, logabsdet = lib.linalg.slogdet(x)
        assert sign.requires_grad and logabsdet.requires_grad
        assert lib.autograd.grad(sign.sum(), x, allow_unused=True, create_graph=True) == (None,)
        with pytest.raises(RuntimeError, match="appears to not have been used"):
            lib.autograd.grad(sign.sum(), x, retain_graph=True)
        sign.sum().backward()
        assert x.grad is None


@pytest.mark.own_mesh
@pytest.mark.parametrize("name", ["eigh", "svd", "qr_tall", "lu_factor", "lu_solve"])
def test_a_sharded_batch_gives_the_unsharded_second_derivatives(name):
    arrays = [randn(4, *shape[-2:], seed=20 + i) for i, shape in enumerate(CASES[name][1])]

    def run(n):
        with use_mesh(n):
            xs = [gt.tensor(a, requires_grad=True) for a in arrays]
            y = CASES[name][0](gt, *[x.shard(0) if n > 1 else x for x in xs])
            g = gt.autograd.grad((y * y).sum(), xs, create_graph=True)
            return [t.numpy() for t in gt.autograd.grad(sum((gi * gi).sum() for gi in g), xs)]

    for want, got in zip(run(1), run(2)):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)
