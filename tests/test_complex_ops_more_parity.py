"""Complex tensors beside torch, continued (tests/test_complex_parity.py holds the basics): the ops
torch computes on complex input (norms, ``logsumexp``, ``exp2``, ``dist``, ``renorm``, ``normalize``,
``logcumsumexp``, ``logaddexp``, ``det``/``inv``/``solve``/``qr``/``svd``/``pinv``/``matrix_exp``,
``vecdot``, ``trapezoid``, ``randn_like``) with their values and gradients (torch's convention,
``z.grad = dL/dx + i dL/dy``), the ops torch refuses on complex input, the real x complex products
torch refuses, and complex numbers written into real tensors."""

import warnings

import numpy as np
import pytest

import gt

torch = pytest.importorskip("torch")


def _data(shape, dtype, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(dtype)


def _close(ours, theirs, tol):
    theirs = theirs.detach().resolve_conj()
    assert str(ours.dtype).split(".")[-1] == str(theirs.dtype).split(".")[-1], (ours.dtype, theirs.dtype)
    assert tuple(ours.shape) == tuple(theirs.shape)
    np.testing.assert_allclose(ours.detach().numpy(), theirs.numpy(), rtol=tol, atol=tol)


def _run(m, fn, arrays):
    """``fn``'s value, and the gradients of ``real(sum(y * w))`` (a fixed complex ``w``) at its inputs."""
    leaves = [m.tensor(a, requires_grad=True) for a in arrays]
    y = fn(m, *leaves)
    w = _data(tuple(y.shape), np.complex128, seed=7)
    w = m.tensor(w.astype(np.complex64 if y.dtype in (m.complex64, m.float32) else np.complex128))
    loss = (y * w).real.sum() if y.is_complex() else (y * w.real).sum()
    loss.backward()
    return y, [t.grad for t in leaves]


def _svd_product(m, z):
    u, s, vh = m.linalg.svd(z, full_matrices=False)     # a loss that does not depend on the vectors' phases
    return (u * s.unsqueeze(-2)) @ vh + u.abs().sum() + vh.abs().sum()


COMPUTED = {
    "norm": (lambda m, z: z.norm(), [(3, 4)]),
    "norm_p3_dim": (lambda m, z: z.norm(p=3, dim=1, keepdim=True), [(3, 4)]),
    "norm_inf": (lambda m, z: m.norm(z, p=float("inf"), dim=0), [(3, 4)]),
    "linalg_norm": (lambda m, z: m.linalg.norm(z), [(3, 4)]),
    "linalg_norm_nuc": (lambda m, z: m.linalg.norm(z, ord="nuc"), [(3, 4)]),
    "vector_norm": (lambda m, z: m.linalg.vector_norm(z, ord=0.5, dim=1), [(3, 4)]),
    "matrix_norm_2": (lambda m, z: m.linalg.matrix_norm(z, ord=2), [(2, 3, 4)]),
    "matrix_norm_1": (lambda m, z: m.linalg.matrix_norm(z, ord=1), [(2, 3, 4)]),
    "logsumexp": (lambda m, z: m.logsumexp(z, 1), [(3, 4)]),
    "exp2": (lambda m, z: z.exp2(), [(3, 4)]),
    "dist": (lambda m, a, b: m.dist(a, b, p=3), [(3, 4), (4,)]),
    "renorm": (lambda m, z: z.renorm(2, 0, 1.0), [(3, 4)]),
    "normalize": (lambda m, z: m.nn.functional.normalize(z, dim=1), [(3, 4)]),
    "logcumsumexp": (lambda m, z: z.logcumsumexp(1), [(3, 4)]),
    "logaddexp": (lambda m, a, b: m.logaddexp(a, b), [(3, 4), (4,)]),
    "det": (lambda m, z: m.linalg.det(z), [(2, 3, 3)]),
    "det_method": (lambda m, z: z.det(), [(3, 3)]),
    "inv": (lambda m, z: m.linalg.inv(z), [(2, 3, 3)]),
    "inverse_method": (lambda m, z: z.inverse(), [(3, 3)]),
    "solve": (lambda m, a, b: m.linalg.solve(a, b), [(2, 3, 3), (2, 3, 2)]),
    "qr_tall": (lambda m, z: (lambda q, r: q * 2 + r.sum())(*m.linalg.qr(z)), [(4, 3)]),
    "qr_wide": (lambda m, z: (lambda q, r: q @ r)(*m.linalg.qr(z)), [(3, 4)]),
    "svdvals": (lambda m, z: m.linalg.svdvals(z), [(2, 4, 3)]),
    "svd": (_svd_product, [(3, 5)]),
    "pinv": (lambda m, z: m.linalg.pinv(z), [(4, 3)]),
    "pinverse_method": (lambda m, z: z.pinverse(), [(3, 4)]),
    "matrix_exp": (lambda m, z: m.linalg.matrix_exp(z), [(2, 3, 3)]),
    "vecdot": (lambda m, a, b: m.linalg.vecdot(a, b), [(3, 4), (3, 4)]),
    "trapezoid": (lambda m, z: m.trapezoid(z), [(3, 4)]),
}


@pytest.mark.parametrize("dtype", ["complex64", "complex128"])
@pytest.mark.parametrize("name", sorted(COMPUTED))
def test_computed_on_complex_input_values_and_gradients_as_torch(name, dtype):
    fn, shapes = COMPUTED[name]
    _values_and_gradients_as_torch(fn, [_data(s, dtype, seed) for seed, s in enumerate(shapes, 1)], dtype)


def _values_and_gradients_as_torch(fn, arrays, dtype, tol64=2e-4):
    y, grads = _run(gt, fn, arrays)
    ty, tgrads = _run(torch, fn, arrays)
    tol = tol64 if dtype == "complex64" else 1e-9
    _close(y, ty, tol)
    for g, tg in zip(grads, tgrads):
        _close(g, tg, tol)


def _against_finite_differences(loss, z0):
    """``loss``'s gradient at the complex array ``z0`` against central differences along each real
    and imaginary part (torch's convention: ``z.grad = dL/dx + i dL/dy``)."""
    z = gt.tensor(z0, requires_grad=True)
    loss(z).backward()
    eps, numeric = 1e-6, np.zeros(z0.shape, np.complex128)
    for i in np.ndindex(z0.shape):
        for step, unit in ((eps, 1), (eps * 1j, 1j)):
            up, down = z0.copy(), z0.copy()
            up[i] += step
            down[i] -= step
            numeric[i] += unit * (loss(gt.tensor(up)).item() - loss(gt.tensor(down)).item()) / (2 * eps)
    np.testing.assert_allclose(z.grad.numpy(), numeric, rtol=1e-6, atol=1e-7)


def test_linalg_gradients_against_finite_differences():
    """torch's convention checked without torch: ``z.grad = dL/dx + i dL/dy``."""
    z0 = _data((3, 3), np.complex128, 5)

    def loss(z):
        return (gt.linalg.det(z) * (0.3 - 1j)).real + gt.linalg.inv(z).abs().sum() + gt.linalg.svdvals(z).sum()

    _against_finite_differences(loss, z0)


def test_complex_norms_and_singular_values_are_real():
    z = gt.tensor(_data((3, 4), np.complex64))
    assert z.norm().dtype == gt.float32 and gt.linalg.svdvals(z).dtype == gt.float32
    assert gt.linalg.svd(z.cdouble()).S.dtype == gt.float64
    assert gt.linalg.matrix_norm(z, "nuc").dtype == gt.float32 and gt.dist(z, z).item() == 0.0


def test_randn_like_and_rand_like_of_complex():
    gt.manual_seed(0)
    z = gt.randn_like(gt.zeros(100_000, dtype=gt.complex64))
    assert z.dtype == gt.complex64 and gt.randn_like(z, dtype=gt.complex128).dtype == gt.complex128
    assert abs(z.real.numpy().var() - 0.5) < 0.02 and abs(z.imag.numpy().var() - 0.5) < 0.02   # torch's: 1/2 each
    u = gt.rand_like(z)
    assert u.dtype == gt.complex64 and 0 <= u.real.numpy().min() and u.imag.numpy().max() < 1


REFUSED = {
    "unique": lambda m, z: m.unique(z), "unique_consecutive": lambda m, z: z.unique_consecutive(),
    "cummax": lambda m, z: z.cummax(0), "cummin": lambda m, z: m.cummin(z, 0), "nansum": lambda m, z: z.nansum(),
    "mse_loss": lambda m, z: m.nn.functional.mse_loss(z, z * 2),
    "mse_loss_real_target": lambda m, z: m.nn.functional.mse_loss(z, z.real),
    "smooth_l1_loss": lambda m, z: m.nn.functional.smooth_l1_loss(z, z),
    "huber_loss": lambda m, z: m.nn.functional.huber_loss(z, z), "searchsorted": lambda m, z: m.searchsorted(z, z),
    "signbit": lambda m, z: m.signbit(z), "copysign": lambda m, z: m.copysign(z, z),
    "cosine_similarity": lambda m, z: m.nn.functional.cosine_similarity(z[None], z[None]),
    "prelu": lambda m, z: m.nn.functional.prelu(z, z[:1]),
}


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_refused_on_complex_input_as_torch(name):
    data = _data((3,), np.complex64)
    with pytest.raises((RuntimeError, NotImplementedError)) as theirs:
        REFUSED[name](torch, torch.tensor(data))
    with pytest.raises(theirs.type):
        REFUSED[name](gt, gt.tensor(data))


MIXED = {
    "matmul": lambda m, r, c: r @ c, "matmul_complex_first": lambda m, r, c: c @ r,
    "mm": lambda m, r, c: m.mm(r, c), "mv": lambda m, r, c: m.mv(r, c[0]), "bmm": lambda m, r, c: m.bmm(r[None], c[None]),
    "dot": lambda m, r, c: m.dot(r[0], c[0]), "inner": lambda m, r, c: m.inner(r, c),
    "linear": lambda m, r, c: m.nn.functional.linear(r, c), "linear_real_weight": lambda m, r, c: m.nn.functional.linear(
        c, r), "linear_bias": lambda m, r, c: m.nn.functional.linear(r, r, c[0]),
    "addmm": lambda m, r, c: m.addmm(c, r, r), "lerp": lambda m, r, c: m.lerp(r, c, 0.5),
    "lerp_inplace": lambda m, r, c: r.lerp_(c, 0.5), "lerp_weight": lambda m, r, c: m.lerp(c, c, r),
    "lerp_complex_number_weight": lambda m, r, c: m.lerp(r, r, 0.5j), "allclose": lambda m, r, c: m.allclose(r, c),
    "nn_linear_complex_input": lambda m, r, c: m.nn.Linear(3, 2)(c),
    "nn_linear_complex_layer": lambda m, r, c: m.nn.Linear(3, 2, dtype=m.complex64)(r),
    "nn_linear_complex_weight": lambda m, r, c: _with(m.nn.Linear(3, 3), weight=c)(r),
    "nn_linear_complex_bias": lambda m, r, c: _with(m.nn.Linear(3, 3), bias=c[0])(r),
    "layer_norm_complex_weight": lambda m, r, c: m.nn.functional.layer_norm(r, (3,), c[0]),
    "layer_norm_complex_bias": lambda m, r, c: m.nn.functional.layer_norm(r, (3,), None, c[0]),
    "LayerNorm_complex_weight": lambda m, r, c: _with(m.nn.LayerNorm(3), weight=c[0])(r),
    "group_norm_complex_weight": lambda m, r, c: m.nn.functional.group_norm(r[None], 1, c[0]),
    "batch_norm_complex_bias": lambda m, r, c: m.nn.functional.batch_norm(r, r[0], r[1].abs(), None, c[0]),
    "instance_norm_complex_weight": lambda m, r, c: m.nn.functional.instance_norm(r[None], weight=c[0]),
    "prelu_complex_weight": lambda m, r, c: m.nn.functional.prelu(r, c[0, :1]),
    "prelu_complex_input": lambda m, r, c: m.nn.functional.prelu(c, r[0, :1]),
}


def _with(layer, **parameters):
    for name, value in parameters.items():
        setattr(layer, name, type(layer.weight)(value))
    return layer


@pytest.mark.parametrize("name", sorted(MIXED))
def test_real_and_complex_products_refused_as_torch(name):
    real, cplx = np.ones((3, 3), np.float32), _data((3, 3), np.complex64)
    with pytest.raises(RuntimeError):
        MIXED[name](torch, torch.tensor(real), torch.tensor(cplx))
    with pytest.raises(RuntimeError, match="dtype|converted|scalar type"):
        MIXED[name](gt, gt.tensor(real), gt.tensor(cplx))


def test_products_that_torch_promotes_still_promote():
    real, cplx = np.ones((3, 3), np.float32), _data((3, 3), np.complex64)
    for fn in (lambda m, r, c: r * c, lambda m, r, c: m.outer(r[0], c[0]), lambda m, r, c: m.kron(r, c),
               lambda m, r, c: m.lerp(r, r, 0.5 + 0j), lambda m, r, c: m.addcmul(r, r, c),
               lambda m, r, c: m.addr(r, c[0], c[1]), lambda m, r, c: m.addr(c, r[0], r[1]),
               lambda m, r, c: r.addr(r[0], c[1], beta=0.5, alpha=2)):
        _close(fn(gt, gt.tensor(real), gt.tensor(cplx)), fn(torch, torch.tensor(real), torch.tensor(cplx)), 1e-6)


@pytest.mark.parametrize("name", ["addmm", "addmv", "addr", "baddbmm", "addbmm", "addcmul", "addcdiv"])
def test_complex_fused_products_take_float_and_complex_coefficients_as_torch(name):
    """torch's rule refuses a float beta/alpha/value for integer tensors only: complex ones take
    floats and complex numbers."""
    z = _data((3, 3), np.complex64, 3)
    fns = {"addmm": lambda m, c: m.addmm(c, c, c, beta=0.5, alpha=2 - 1j),
           "addmv": lambda m, c: m.addmv(c[0], c, c[1], beta=1j, alpha=0.25),
           "addr": lambda m, c: m.addr(c, c[0], c[1], beta=0.5j, alpha=1.5),
           "baddbmm": lambda m, c: m.baddbmm(c[None], c[None], c[None], beta=0.5, alpha=-1.5),
           "addbmm": lambda m, c: m.addbmm(c, c[None], c[None], beta=2.5, alpha=0.5),
           "addcmul": lambda m, c: m.addcmul(c, c, c, value=0.5 + 1j),
           "addcdiv": lambda m, c: m.addcdiv(c, c, c + 3, value=-0.75)}
    _close(fns[name](gt, gt.tensor(z)), fns[name](torch, torch.tensor(z)), 1e-5)


@pytest.mark.parametrize("write", ["scatter_", "scatter", "index_fill", "index_fill_"])
def test_complex_numbers_into_real_tensors_as_torch(write):
    """torch's checked conversion of a complex number: ``scatter`` takes one with a zero imaginary part
    only, ``index_fill`` none at all (a complex tensor copied in drops its imaginary part, as torch's)."""
    def run(m, value):
        x, i = m.zeros(3), m.tensor([0, 2])
        return {"scatter_": lambda: x.scatter_(0, i, value), "scatter": lambda: x.scatter(0, i, value=value),
                "index_fill": lambda: x.index_fill(0, i, value), "index_fill_": lambda: x.index_fill_(0, i, value)}[write]()

    for value in (1j, 2 + 0j):
        try:
            expected = run(torch, value)
        except RuntimeError as exc:
            with pytest.raises(RuntimeError, match="complex|overflow"):
                run(gt, value)
            assert "overflow" in str(exc) or "complex" in str(exc)
        else:
            np.testing.assert_array_equal(run(gt, value).numpy(), expected.numpy())
    z = np.array([1 + 2j, 3 - 1j], np.complex64)
    with warnings.catch_warnings():         # both warn that the imaginary parts are dropped
        warnings.simplefilter("ignore")
        ours, theirs = gt.zeros(2).copy_(gt.tensor(z)), torch.zeros(2).copy_(torch.tensor(z))
    assert ours.tolist() == theirs.tolist() == [1.0, 3.0]
    c = gt.zeros(3, dtype=gt.complex64).scatter_(0, gt.tensor([1]), 1 + 2j)
    assert c.tolist() == torch.zeros(3, dtype=torch.complex64).scatter_(0, torch.tensor([1]), 1 + 2j).tolist()


@pytest.mark.parametrize("make", ["tensor", "as_tensor", "tensor_int"])
def test_python_complex_numbers_for_a_real_dtype_refused_as_torch(make):
    """torch's TypeError even for a zero imaginary part (numpy would drop the imaginary parts)."""
    for value in ([1j, 2.0], [2 + 0j]):
        for m in (torch, gt):
            fn = {"tensor": lambda: m.tensor(value, dtype=m.float32), "as_tensor": lambda: m.as_tensor(
                value, dtype=m.float64), "tensor_int": lambda: m.tensor(value, dtype=m.int64)}[make]
            with pytest.raises(TypeError, match="complex"):
                fn()
    assert gt.tensor([1j, 2], dtype=gt.complex64).tolist() == [1j, 2 + 0j]


@pytest.mark.parametrize("dtype", ["complex64", "complex128"])
def test_logaddexp_and_logcumsumexp_keep_torchs_imaginary_part(dtype):
    """torch's ``log1p(exp(lo - hi)) + hi``: the imaginary part follows the input with the larger
    real part, not the principal log's (-pi, pi] (they differ by 2 pi k past pi)."""
    a, b = _data((3, 5), dtype, 1) * 6, _data((5,), dtype, 2) * 6
    _values_and_gradients_as_torch(lambda m, x, y: m.logaddexp(x, y), (a, b), dtype)
    _values_and_gradients_as_torch(lambda m, x: x.logcumsumexp(1), (a,), dtype)


NORMS = {"norm": lambda m, z, d: z.norm(dtype=d), "vector_norm": lambda m, z, d: m.linalg.vector_norm(z, dtype=d),
         "linalg_norm": lambda m, z, d: m.linalg.norm(z, dtype=d),
         "matrix_norm": lambda m, z, d: m.linalg.matrix_norm(z, dtype=d)}


@pytest.mark.parametrize("name", sorted(NORMS))
def test_norm_dtype_of_complex_input_as_torch(name):
    """A real ``dtype`` would drop the imaginary parts (torch refuses it), and complex128 is not
    narrowed to complex64; complex64 widened to complex128 gives torch's real float64 norm."""
    fn, data = NORMS[name], _data((3, 4), np.complex128)
    for have, want in (("complex64", "float64"), ("complex128", "float32"), ("complex128", "complex64")):
        with pytest.raises(RuntimeError):
            fn(torch, torch.tensor(data.astype(have)), getattr(torch, want))
        with pytest.raises(RuntimeError, match="complex|narrowing"):
            fn(gt, gt.tensor(data.astype(have)), getattr(gt, want))
    _close(fn(gt, gt.tensor(data.astype(np.complex64)), gt.complex128),
           fn(torch, torch.tensor(data.astype(np.complex64)), torch.complex128), 1e-6)


def test_complex_linear_layer_as_torch():
    """``nn.Linear(..., dtype=complex64)`` is made (its init draws both parts, as torch's) and computes
    torch's values and gradients from torch's parameters."""
    gt.manual_seed(0)
    lin = gt.nn.Linear(4, 3, dtype=gt.complex64)
    bound = 0.5         # kaiming_uniform_(a=sqrt(5)) and the bias: U(-1/sqrt(4), 1/sqrt(4)) per part
    for p in (lin.weight, lin.bias):
        assert p.dtype == gt.complex64 and p.imag.abs().max().item() > 0
        assert max(p.real.abs().max().item(), p.imag.abs().max().item()) <= bound
    theirs = torch.nn.Linear(4, 3, dtype=torch.complex64)
    lin.load_state_dict({k: gt.tensor(v.detach().numpy()) for k, v in theirs.state_dict().items()})
    x = _data((5, 4), np.complex64, 4)
    outs = []
    for m, layer in ((gt, lin), (torch, theirs)):
        y = layer(m.tensor(x))
        (y * m.tensor(_data((5, 3), np.complex64, 5))).real.sum().backward()
        outs.append((y, layer.weight.grad, layer.bias.grad))
    for ours, want in zip(*outs):
        _close(ours, want, 1e-5)
    n = gt.nn.init.normal_(gt.zeros(50_000, dtype=gt.complex128), 1.0, 2.0)
    for part in (n.real.numpy(), n.imag.numpy()):      # torch's: each part N(mean, std^2 / 2)
        assert abs(part.mean() - 1) < 0.03 and abs(part.var() - 2) < 0.06
