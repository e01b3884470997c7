"""Second (and third) derivatives through complex tensors beside torch 2.13, in complex128: products,
``abs`` and the elementwise functions, the products of matrices, convolutions, and gt.linalg's
factorizations with complex inputs (gauge-invariant losses only, as torch's own tests; torch's
error for a loss of the phases); ``gt.autograd.gradcheck``/``gradgradcheck`` with complex inputs
and outputs, torch's verdicts on right and wrong custom Functions.

Each case is torch's gradgradcheck quantities (the helpers of tests/test_gradgrad_linear_ops_parity.py):
y = f(inputs), g = grad(y, inputs, v, create_graph=True) for a random v (complex where y is), then
the gradient of Re(sum(g * conj(w))) w.r.t. the inputs and v; the conjugate Wirtinger convention
throughout (a tensor's gradient is dL/dx + i dL/dy).
"""

import numpy as np
import pytest

import gt
from test_gradgrad_linear_ops_parity import _check, _complex, _real, torch

RTOL = 1e-9
F = {"gt": gt.nn.functional, "torch": torch.nn.functional}


def _f(lib):
    return F[lib.__name__]


def _herm(z):
    return z + z.mH


# ---- products, abs and the elementwise functions -------------------------------------------------
ELEMENTWISE = {
    "mul": (lambda L, a, b: a * b * a, [_complex((3, 4)), _complex((3, 4), 1)]),
    "div": (lambda L, a, b: a / (b + 3), [_complex((3, 4)), _complex((3, 4), 1)]),
    "abs": (lambda L, z: z.abs() ** 3, [_complex((3, 4))]),
    "abs_of_product": (lambda L, a, b: (a * b).abs(), [_complex((5,)), _complex((5,), 1)]),
    "sgn": (lambda L, z: z.sgn() * z.conj(), [_complex((4,))]),
    "exp_log_sqrt": (lambda L, z: z.exp() + (z + 3).log() + z.sqrt() + z.rsqrt(), [_complex((3, 4))]),
    "pow_tensors": (lambda L, a, b: (a + 2) ** b, [_complex((4,)), _complex((4,), 1)]),
    "pow_numbers": (lambda L, z: z ** (0.5 + 1j) + (1.5 + 0.5j) ** z + z ** 3, [_complex((4,))]),
    "trig": (lambda L, z: z.sin() * z.tanh() + z.atan() + z.cosh() + z.sigmoid(), [_complex((3, 3))]),
    "real_times_complex": (lambda L, x, z: (x * z).exp() * x, [_real((3, 4)), _complex((3, 4))]),
    "cumprod_prod": (lambda L, z: z.cumprod(1) + z.prod(1, keepdim=True), [_complex((3, 4))]),
    "norms": (lambda L, z: L.stack([L.linalg.vector_norm(z), L.linalg.vector_norm(z, 3),
                                    L.linalg.matrix_norm(z.reshape(3, 4))]), [_complex((12,))]),
    "where_getitem_cat": (lambda L, z: L.cat([L.where(z.real > 0, z * z, z), z[[0, 2, 0]] ** 2]),
                          [_complex((3, 4))]),
    "lerp": (lambda L, a, b: L.lerp(a, b, a * 0.5) * b, [_complex((3, 4)), _complex((3, 4), 1)]),
    "linear_maps": (lambda L, z: L.cat([z.take_along_dim(L.tensor([[1, 0, 2, 1]]), 0).reshape(-1),
                                        L.diag_embed(z).reshape(-1), _f(L).pad(z, (1, 2)).reshape(-1),
                                        _f(L).fold(z.reshape(1, 4, 3), (2, 4), (2, 2)).reshape(-1)]) ** 2,
                    [_complex((3, 4))]),
}


@pytest.mark.parametrize("name", list(ELEMENTWISE))
def test_elementwise_second_derivatives_match_torch(name):
    fn, arrays = ELEMENTWISE[name]
    _check(fn, *arrays, rtol=RTOL)


# ---- products of matrices and convolutions -------------------------------------------------------
PRODUCTS = {
    "matmul": (lambda L, a, b: a @ b @ a, [_complex((3, 3)), _complex((3, 3), 1)]),
    "matmul_vector": (lambda L, a, b: (a @ b) * b, [_complex((2, 3, 3)), _complex((3,), 1)]),
    "einsum": (lambda L, a, b: L.einsum("ij,jk,ki->i", a, b, a), [_complex((3, 3)), _complex((3, 3), 1)]),
    "linear": (lambda L, x, w, b: _f(L).linear(x, w, b), [_complex((4, 3)), _complex((2, 3), 1), _complex((2,), 2)]),
    "conv1d": (lambda L, x, w: _f(L).conv1d(x, w, padding=1), [_complex((2, 3, 5)), _complex((2, 3, 3), 1)]),
    "conv_transpose1d": (lambda L, x, w: _f(L).conv_transpose1d(x, w, stride=2),
                         [_complex((2, 3, 4)), _complex((3, 2, 3), 1)]),
}


@pytest.mark.parametrize("name", list(PRODUCTS))
def test_product_second_derivatives_match_torch(name):
    fn, arrays = PRODUCTS[name]
    _check(fn, *arrays, rtol=RTOL)


# ---- gt.linalg with complex inputs (losses free of the vectors' phases) --------------------------
def _eigh_loss(L, z):
    w, v = L.linalg.eigh(_herm(z))
    return (v * w.exp().unsqueeze(-2)) @ v.mH + (v.abs() ** 2)


def _svd_loss(L, z):
    u, s, vh = L.linalg.svd(z, full_matrices=False)
    return L.cat([((u * (s * s).unsqueeze(-2)) @ u.mH).reshape(-1), (vh.abs() ** 4).reshape(-1), s.to(z.dtype)])


LINALG = {
    "eigh": (_eigh_loss, [_complex((3, 3))]),
    "eigvalsh": (lambda L, z: L.linalg.eigvalsh(_herm(z)), [_complex((2, 3, 3))]),
    "svd_tall": (_svd_loss, [_complex((4, 3))]),
    "svd_wide": (_svd_loss, [_complex((3, 5))]),
    "svdvals": (lambda L, z: L.linalg.svdvals(z), [_complex((2, 4, 3))]),
    "pinv": (lambda L, z: L.linalg.pinv(z), [_complex((4, 3))]),
    "qr_tall": (lambda L, z: L.cat([t.reshape(-1) for t in L.linalg.qr(z)]), [_complex((4, 3))]),
    "qr_wide": (lambda L, z: L.cat([t.reshape(-1) for t in L.linalg.qr(z)]), [_complex((3, 4))]),
    "lu_factor": (lambda L, z: L.linalg.lu_factor(z).LU, [_complex((3, 3))]),
    "lu": (lambda L, z: L.cat([t.reshape(-1) for t in L.linalg.lu(z)[1:]]), [_complex((3, 4))]),
    "lu_solve": (lambda L, a, b: L.linalg.lu_solve(*L.linalg.lu_factor(a), b, adjoint=True),
                 [_complex((3, 3)), _complex((3, 2), 1)]),
    "cholesky": (lambda L, z: L.linalg.cholesky(z @ z.mH + L.eye(3), upper=True), [_complex((3, 3))]),
    "cholesky_solve": (lambda L, b, z: L.cholesky_solve(b, L.linalg.cholesky(z @ z.mH + L.eye(3))),
                       [_complex((3, 2), 1), _complex((3, 3))]),
    "slogdet": (lambda L, z: L.stack(list(L.linalg.slogdet(z))), [_complex((3, 3))]),
    "det_inv_solve": (lambda L, a, b: L.linalg.det(a) * L.linalg.inv(a) + L.linalg.solve(a, b),
                      [_complex((3, 3)), _complex((3, 3), 1)]),
    "solve_triangular_matrix_exp": (lambda L, a, b: L.linalg.solve_triangular(a.triu() + 3 * L.eye(3), b, upper=True)
                                    + L.linalg.matrix_exp(0.3 * a), [_complex((3, 3)), _complex((3, 3), 1)]),
}


@pytest.mark.parametrize("name", list(LINALG))
def test_linalg_second_derivatives_match_torch(name):
    fn, arrays = LINALG[name]
    _check(fn, *arrays, rtol=RTOL)


@pytest.mark.parametrize("loss", ["svd_u", "eigh_v"])
def test_a_loss_of_the_phases_raises_torchs_error_under_create_graph(loss):
    a = _complex((3, 3))
    for lib in (torch, gt):
        z = lib.tensor(a, requires_grad=True)
        y = lib.linalg.svd(z).U if loss == "svd_u" else lib.linalg.eigh(_herm(z)).eigenvectors
        with pytest.raises(RuntimeError, match="specified up to multiplication by e\\^{i phi}"):
            lib.autograd.grad(y.real.sum(), z, create_graph=True)


# ---- gradients of gradients, hvp ------------------------------------------------------------------
THIRD = {
    "abs_of_product": lambda L, z: (z * z * z).abs().sum(),
    "matmul": lambda L, z: ((z @ z @ z).abs() ** 2).sum(),
    "pow_div": lambda L, z: (z ** (0.5 + 1j)).real.sum() + (1 / (z + 3)).imag.sum(),
    "eigh_svd": lambda L, z: (L.linalg.eigvalsh(_herm(z)) ** 3).sum() + (L.linalg.svd(z)[0].abs() ** 4).sum(),
    "pad_take_along_lerp": lambda L, z: ((_f(L).pad(z, (1, 1)) ** 3).abs().sum()
                                         + (z.take_along_dim(L.tensor([[2, 0, 1]]), 0).lerp(z, z) ** 3).real.sum()),
    "cholesky_slogdet": lambda L, z: (L.linalg.cholesky(z @ z.mH + L.eye(3)) ** 2).real.sum()
    + L.linalg.slogdet(z).logabsdet,
}


@pytest.mark.parametrize("name", list(THIRD))
def test_third_derivatives_match_torch(name):
    """gt.autograd.grad of a gradient of a gradient: each step's conjugate convention composes."""
    rng = np.random.default_rng(3)
    a, w1, w2 = (rng.standard_normal((3, 3)) + 1j * rng.standard_normal((3, 3)) for _ in range(3))
    got = []
    for lib in (torch, gt):
        z = lib.tensor(a, requires_grad=True)
        (g1,) = lib.autograd.grad(THIRD[name](lib, z), z, create_graph=True)
        (g2,) = lib.autograd.grad((g1 * lib.tensor(w1).conj()).real.sum(), z, create_graph=True)
        (g3,) = lib.autograd.grad((g2 * lib.tensor(w2).conj()).real.sum(), z)
        got.append([t.detach().resolve_conj().numpy() for t in (g1, g2, g3)])
    for want, have in zip(*got):
        np.testing.assert_allclose(have, want, rtol=RTOL, atol=RTOL * max(1.0, np.abs(want).max()))


def test_hvp_and_vhp_of_a_real_loss_of_complex_inputs_match_torch():
    a, v = _complex((3, 3)), _complex((3, 3), 1)

    def loss(L):
        return lambda z: (L.linalg.svdvals(z @ z) ** 2).sum() + (z * z.exp()).abs().sum()

    got = []
    for lib in (torch, gt):
        z, dv = lib.tensor(a), lib.tensor(v)
        got.append([t.detach().resolve_conj().numpy() for t in (*lib.autograd.functional.hvp(loss(lib), z, dv),
                                                                   *lib.autograd.functional.vhp(loss(lib), z, dv))])
    for want, have in zip(*got):
        np.testing.assert_allclose(have, want, rtol=RTOL, atol=RTOL * max(1.0, np.abs(want).max()))


# ---- gradcheck and gradgradcheck with complex numbers ----------------------------------------------
def _functions(m):
    class Square(m.autograd.Function):          # right: torch's convention conjugates the slope
        @staticmethod
        def forward(ctx, z):
            ctx.save_for_backward(z)
            return z * z

        @staticmethod
        def backward(ctx, g):
            (z,) = ctx.saved_tensors
            return 2 * z.conj() * g

    class Holomorphic(Square):                  # wrong: the slope without its conjugate
        @staticmethod
        def backward(ctx, g):
            (z,) = ctx.saved_tensors
            return 2 * z * g

    class Detached(Square):                     # right once, its gradient cut from the graph
        @staticmethod
        def backward(ctx, g):
            (z,) = ctx.saved_tensors
            return 2 * z.detach().conj() * g

    class Modulus(m.autograd.Function):         # real output; wrong: i z / |z| for z / |z|
        @staticmethod
        def forward(ctx, z):
            ctx.save_for_backward(z)
            return z.abs()

        @staticmethod
        def backward(ctx, g):
            (z,) = ctx.saved_tensors
            return g * z / z.abs() * 1j

    return {"square": Square.apply, "holomorphic": Holomorphic.apply, "detached": Detached.apply,
            "modulus": Modulus.apply, "composed": lambda z: (z @ z.mH).exp() * z.abs(),
            "to_real": lambda z: m.view_as_real(z * z) ** 2}


def _verdict(m, check, name, **kwargs):
    z = m.tensor(_complex((2, 2)), requires_grad=True)
    try:
        return getattr(m.autograd, check)(_functions(m)[name], (z,), **kwargs)
    except RuntimeError as error:      # GradcheckError, in both
        return str(error).split("\n")[0]


@pytest.mark.parametrize("name", ["square", "holomorphic", "detached", "modulus", "composed", "to_real"])
@pytest.mark.parametrize("check", ["gradcheck", "gradgradcheck"])
def test_gradcheck_of_complex_functions_gives_torchs_verdict(check, name):
    want, got = _verdict(torch, check, name), _verdict(gt, check, name)
    assert got == want
    if got is not True:     # without raising: False, as torch's
        assert _verdict(gt, check, name, raise_exception=False) is False


def test_complex_outputs_of_a_custom_function_are_differentiable_as_torchs():
    # they were left without a gradient (requires_grad False) before
    z = gt.tensor(_complex((3,)), requires_grad=True)
    out = _functions(gt)["square"](z)
    assert out.requires_grad
    (g,) = gt.autograd.grad(out.imag.sum(), z)
    tz = torch.tensor(_complex((3,)), requires_grad=True)
    (want,) = torch.autograd.grad(_functions(torch)["square"](tz).imag.sum(), tz)
    np.testing.assert_allclose(g.numpy(), want.numpy(), rtol=1e-12)


def test_the_gradient_through_a_0d_view_as_complex_keeps_its_imaginary_part():
    # the numpy engine viewed a numpy scalar's memory as (re, im) and read 0 for im: v.grad was
    # (0.5, 0) for torch's (0.5, -0.25), in plain backwards too
    got = []
    for lib in (torch, gt):
        v = lib.tensor([0.3, 0.7], dtype=lib.float64, requires_grad=True)
        w = lib.tensor(0.5 - 0.25j, dtype=lib.complex128)
        (lib.view_as_complex(v) * w.conj()).real.backward()
        z = lib.tensor(1 + 2j, dtype=lib.complex128, requires_grad=True)
        u = lib.tensor([0.3, 0.7], dtype=lib.float64, requires_grad=True)
        (g,) = lib.autograd.grad(lib.view_as_real(z), z, u, create_graph=True)
        got.append([v.grad.numpy(), lib.autograd.grad((g * w.conj()).real, u)[0].numpy()])
    for want, have in zip(*got):
        np.testing.assert_allclose(have, want, rtol=1e-15)


# ---- pinv's gradient: torch's formula (gt/ops/linalg_pinv.py), no SVD in it ----------------------
def _nearly_equal_singular_values(dtype):
    rng = np.random.default_rng(7)
    u, _ = np.linalg.qr(rng.standard_normal((5, 2)))
    v, _ = np.linalg.qr(rng.standard_normal((2, 2)))
    return ((u * [1.0, 0.9987]) @ v.T).astype(dtype)


@pytest.mark.parametrize("case", ["lstsq_float32", "pinv_rank_deficient", "pinv_complex_rank_deficient"])
def test_pinv_and_lstsq_second_derivatives_match_torch(case):
    """lstsq's float32 second derivative went through the SVD's 1 / (S_j^2 - S_i^2) (8e-3 off at singular
    values 1.0 and 0.9987, torch's 4e-7); a rank-deficient A's pinv gradient was not torch's."""
    if case == "lstsq_float32":
        arrays, rtol = [_nearly_equal_singular_values(np.float32), _real((5, 3), 1).astype(np.float32)], 1e-5
        fn = lambda L, a, b: L.linalg.lstsq(a, b).solution      # noqa: E731
    else:
        a = np.outer([1.0, 2.0, 3.0], [1.0, -1.0, 0.5])
        arrays, rtol = [a * (1 + 1j) if case == "pinv_complex_rank_deficient" else a], RTOL
        fn = lambda L, a: L.linalg.pinv(a)                      # noqa: E731
    _check(fn, *arrays, rtol=rtol)
