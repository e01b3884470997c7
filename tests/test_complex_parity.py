"""Complex tensors beside torch: dtypes and promotion, creation, views (``real``, ``imag``,
``view_as_real``, ``view_as_complex``), printing, elementwise math, reductions, products,
comparisons, ``item``/``numpy``, serialization, and gradients with torch's convention for
complex numbers (``z.grad = dL/dx + i dL/dy``), against torch's autograd and finite differences."""

import io
import itertools
import re

import numpy as np
import pytest

import gt

torch = pytest.importorskip("torch")

DTYPES = ["bool", "int32", "int64", "float32", "float64", "complex64", "complex128"]


def _data(shape, dtype, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(dtype)


def _close(ours, theirs, tol=None):
    theirs = theirs.detach().resolve_conj()
    assert str(ours.dtype).split(".")[-1] == str(theirs.dtype).split(".")[-1], (ours.dtype, theirs.dtype)
    assert tuple(ours.shape) == tuple(theirs.shape)
    tol = tol or (1e-5 if theirs.dtype in (torch.complex64, torch.float32) else 1e-12)
    np.testing.assert_allclose(ours.detach().numpy(), theirs.numpy(), rtol=tol, atol=tol)


# ---- dtypes ----------------------------------------------------------------------------------------------
def test_dtype_names_aliases_and_questions():
    assert gt.cfloat is gt.complex64 and gt.cdouble is gt.complex128
    z = gt.zeros(2, dtype=gt.complex64)
    assert z.is_complex() and gt.is_complex(z) and not z.is_floating_point()
    assert not gt.zeros(2).is_complex()
    assert gt.complex64 == torch.complex64 and gt.complex128 == "complex128"
    with pytest.raises(TypeError, match="complex32"):
        gt.zeros(2, dtype="complex32")


@pytest.mark.parametrize("a, b", list(itertools.product(DTYPES, DTYPES)))
def test_promote_types_as_torch(a, b):
    ours = gt.promote_types(getattr(gt, a), getattr(gt, b))
    theirs = torch.promote_types(getattr(torch, a), getattr(torch, b))
    assert ours.name == str(theirs).replace("torch.", "")


@pytest.mark.parametrize("dtype", ["int64", "float32", "float64", "complex64", "complex128"])
@pytest.mark.parametrize("other", [1j, 2.5, 3, gt.complex128, gt.complex64])
def test_result_type_with_numbers_and_0d_as_torch(dtype, other):
    def build(m, o):
        return m.zeros((), dtype=getattr(m, str(o).split(".")[-1])) if not isinstance(o, (int, float, complex)) else o
    ours = gt.result_type(gt.zeros(3, dtype=getattr(gt, dtype)), build(gt, other))
    theirs = torch.result_type(torch.zeros(3, dtype=getattr(torch, dtype)), build(torch, other))
    assert ours.name == str(theirs).replace("torch.", "")


def test_real_tensor_times_1j_is_default_complex():
    assert (gt.ones(2) * 1j).dtype == gt.complex64
    assert (gt.ones(2, dtype=gt.float64) * 1j).dtype == gt.complex128
    assert (gt.arange(3) * 1j).dtype == gt.complex64
    _close(gt.ones(2) * (2 + 1j) + 1, torch.ones(2) * (2 + 1j) + 1)
    assert gt.can_cast(gt.float32, gt.complex64) and not gt.can_cast(gt.complex64, gt.float64)


# ---- creation --------------------------------------------------------------------------------------------
def test_creation_from_python_numpy_and_casts():
    _close(gt.tensor([1 + 2j, 3]), torch.tensor([1 + 2j, 3]))
    _close(gt.tensor(2 - 1j), torch.tensor(2 - 1j))
    a = _data((2, 3), np.complex128)
    _close(gt.from_numpy(a), torch.from_numpy(a))
    _close(gt.tensor(a.astype(np.complex64)), torch.tensor(a.astype(np.complex64)))
    _close(gt.ones(2, 2, dtype=gt.cdouble), torch.ones(2, 2, dtype=torch.cdouble))
    _close(gt.zeros(3, dtype=gt.complex64), torch.zeros(3, dtype=torch.complex64))
    _close(gt.tensor([1.0, 2.0]).cfloat(), torch.tensor([1.0, 2.0]).cfloat())
    _close(gt.tensor([1.0, 2.0]).cdouble(), torch.tensor([1.0, 2.0]).cdouble())
    _close(gt.tensor([1, 2]).to(gt.complex64), torch.tensor([1, 2]).to(torch.complex64))
    z = gt.tensor([1 + 2j])
    assert z.item() == 1 + 2j and isinstance(z.item(), complex)
    assert z.numpy().dtype == np.complex64
    assert gt.tensor([1 + 2j]).tolist() == [(1 + 2j)]


def test_randn_complex_has_torch_variance():
    gt.manual_seed(0)
    z = gt.randn(200_000, dtype=gt.cfloat)
    assert z.dtype == gt.complex64
    re, im = z.real.numpy(), z.imag.numpy()
    # torch's convention: each part N(0, 1/2), so E|z|^2 = 1
    assert abs(re.var() - 0.5) < 0.01 and abs(im.var() - 0.5) < 0.01
    assert abs(float((z.abs() ** 2).mean().item()) - 1.0) < 0.01
    assert gt.rand(3, dtype=gt.cdouble).dtype == gt.complex128


def test_complex_and_polar():
    re, im = np.array([1.0, -2.0], np.float32), np.array([0.5, 3.0], np.float32)
    _close(gt.complex(gt.tensor(re), gt.tensor(im)), torch.complex(torch.tensor(re), torch.tensor(im)))
    _close(gt.polar(gt.tensor(re).abs(), gt.tensor(im)), torch.polar(torch.tensor(re).abs(), torch.tensor(im)))
    with pytest.raises(RuntimeError, match="Float or Double"):
        gt.complex(gt.tensor([1, 2]), gt.tensor([1, 2]))


# ---- views -----------------------------------------------------------------------------------------------
def test_real_imag_are_writable_views():
    for m in (gt, torch):
        z = m.tensor([1 + 2j, 3 - 4j])
        z.real.mul_(10)
        z.imag[0] = 7.0
        assert z.tolist() == [(10 + 7j), (30 - 4j)]
    z = gt.tensor([1 + 2j])
    assert z.real.dtype == gt.float32 and z.imag.dtype == gt.float32
    x = gt.tensor([1.0, 2.0])
    assert x.real is x and gt.real(x) is x
    with pytest.raises(RuntimeError, match="imag is not implemented"):
        x.imag


def test_view_as_real_and_view_as_complex_share_memory():
    a = _data((2, 3), np.complex64)
    z, tz = gt.tensor(a), torch.tensor(a)
    r, tr = gt.view_as_real(z), torch.view_as_real(tz)
    _close(r, tr)
    r[0, 0, 1] = 9.0
    assert z[0, 0].item().imag == 9.0
    x = gt.tensor(np.arange(8, dtype=np.float64).reshape(4, 2))
    c = gt.view_as_complex(x)
    _close(c, torch.view_as_complex(torch.arange(8, dtype=torch.float64).reshape(4, 2)))
    c.mul_(2)
    assert x[3, 1].item() == 14.0
    with pytest.raises(RuntimeError):
        gt.view_as_complex(gt.zeros(4, 3))
    with pytest.raises(RuntimeError):
        gt.view_as_real(gt.zeros(2))


def test_conj_is_eager_and_angle_abs_are_real():
    a = _data((3,), np.complex64)
    z, tz = gt.tensor(a), torch.tensor(a)
    _close(z.conj(), tz.conj())
    _close(gt.conj_physical(z), torch.conj_physical(tz))
    assert not z.conj().is_conj()      # gt's conj() is a copy (torch's is a lazy view)
    _close(z.abs(), tz.abs())
    _close(z.angle(), tz.angle())
    _close(gt.angle(z), torch.angle(tz))


def _repr(t):
    """gt's repr without the placement a mesh adds (GT_DEVICES=4)."""
    return re.sub(r",\s*placement=\w+\(\d*\)\)$", ")", repr(t))


def test_printing_as_torch():
    for values in ([1 + 2j, 3], [1.5 + 2j, -3.25 - 1e-3j], [[1j, -2j], [0.5, 2]], 2 + 3j, [1e-6 + 1j, 1e5]):
        assert _repr(gt.tensor(values)) == repr(torch.tensor(values))
    assert _repr(gt.zeros(2, dtype=gt.cdouble)) == repr(torch.zeros(2, dtype=torch.cdouble)).replace("torch.", "gt.")
    assert _repr(gt.tensor([1 + 1j] * 30)) == repr(torch.tensor([1 + 1j] * 30))


# ---- math ------------------------------------------------------------------------------------------------
UNARY = {
    "exp": lambda m, z: z.exp(), "log": lambda m, z: z.log(), "sqrt": lambda m, z: z.sqrt(),
    "sin": lambda m, z: z.sin(), "cos": lambda m, z: z.cos(), "tanh": lambda m, z: z.tanh(),
    "sigmoid": lambda m, z: z.sigmoid(), "reciprocal": lambda m, z: z.reciprocal(), "neg": lambda m, z: -z,
    "pow2": lambda m, z: z ** 2, "pow_complex": lambda m, z: z ** (1.5 + 0.5j), "rpow": lambda m, z: 2 ** z,
    "sinh": lambda m, z: z.sinh(), "asin": lambda m, z: z.asin(), "abs": lambda m, z: z.abs(),
    "angle": lambda m, z: z.angle(), "real": lambda m, z: z.real * 2, "imag": lambda m, z: z.imag * 2,
    "conj": lambda m, z: z.conj() * z, "sum": lambda m, z: z.sum(0), "mean": lambda m, z: z.mean(),
    "prod": lambda m, z: z.prod(1), "view_as_real": lambda m, z: m.view_as_real(z) * 3,
    "view_as_complex": lambda m, z: m.view_as_complex(m.view_as_real(z) * 2),
    "log10": lambda m, z: z.log10(), "rsqrt": lambda m, z: z.rsqrt(),
}
BINARY = {
    "add": lambda m, a, b: a + b, "sub": lambda m, a, b: a - 2 * b, "mul": lambda m, a, b: a * b,
    "div": lambda m, a, b: a / b, "rdiv": lambda m, a, b: (1 + 1j) / a + 2.5 / b, "pow": lambda m, a, b: a ** b,
    "matmul": lambda m, a, b: a @ b.T, "mv": lambda m, a, b: a @ b[0], "complex": lambda m, a, b: m.complex(
        a.real, b.imag), "polar": lambda m, a, b: m.polar(a.abs(), b.angle()),
    "real_times_complex": lambda m, a, b: a.real * b, "real_over_complex": lambda m, a, b: a.imag / b,
}


def _run(m, fn, arrays):
    leaves = [m.tensor(a, requires_grad=True) for a in arrays]
    y = fn(m, *leaves)
    w = _data(tuple(y.shape), np.complex128, seed=7)
    w = m.tensor(w.astype(np.complex64 if y.dtype in (m.complex64, m.float32) else np.complex128))
    if not y.is_complex():
        w = w.real.clone()
    loss = (y * w).real.sum() if y.is_complex() else (y * w).sum()
    loss.backward()
    return y, [t.grad for t in leaves]


def _compare(fn, arrays):
    y, grads = _run(gt, fn, arrays)
    ty, tgrads = _run(torch, fn, arrays)
    _close(y, ty, 1e-4 if y.dtype == gt.complex64 or y.dtype == gt.float32 else None)
    for g, tg in zip(grads, tgrads):
        _close(g, tg, 1e-4 if g.dtype == gt.complex64 else None)


@pytest.mark.parametrize("dtype", ["complex64", "complex128"])
@pytest.mark.parametrize("name", sorted(UNARY))
def test_unary_values_and_gradients_as_torch(name, dtype):
    _compare(UNARY[name], [_data((3, 4), dtype)])


@pytest.mark.parametrize("dtype", ["complex64", "complex128"])
@pytest.mark.parametrize("name", sorted(BINARY))
def test_binary_values_and_gradients_as_torch(name, dtype):
    _compare(BINARY[name], [_data((3, 4), dtype, 1), _data((3, 4), dtype, 2)])


def test_real_input_of_complex_result_gets_real_gradient():
    x = gt.tensor([0.5, -1.0], dtype=gt.float64, requires_grad=True)
    tx = torch.tensor([0.5, -1.0], dtype=torch.float64, requires_grad=True)
    for m, t in ((gt, x), (torch, tx)):
        ((t * (1 + 2j)).exp() * (0.3 - 1j)).real.sum().backward()
    assert x.grad.dtype == gt.float64
    _close(x.grad, tx.grad)


def test_gradient_against_finite_differences():
    z0 = _data((3,), np.complex128, 3)

    def loss(z):
        return ((z * z.conj().exp()).sin() / (z + 2)).abs().sum()

    z = gt.tensor(z0, requires_grad=True)
    loss(z).backward()
    eps, numeric = 1e-6, np.zeros(3, np.complex128)
    for i in range(3):
        for step, unit in ((eps, 1), (eps * 1j, 1j)):
            up, down = z0.copy(), z0.copy()
            up[i] += step
            down[i] -= step
            slope = (loss(gt.tensor(up)).item() - loss(gt.tensor(down)).item()) / (2 * eps)
            numeric[i] += unit * slope          # torch's z.grad = dL/dx + i dL/dy
    np.testing.assert_allclose(z.grad.numpy(), numeric, rtol=1e-6, atol=1e-8)


def test_backward_of_complex_output_needs_a_gradient():
    z = gt.tensor([1 + 2j], requires_grad=True)
    with pytest.raises(RuntimeError, match="real scalar outputs"):
        (z * 2).sum().backward()
    with pytest.raises(RuntimeError, match="real scalar outputs"):
        gt.autograd.grad((z * 2).sum(), z)
    out = z * (2 - 1j)
    out.backward(gt.tensor([1 + 0j]))
    tz = torch.tensor([1 + 2j], requires_grad=True)
    (tz * (2 - 1j)).backward(torch.tensor([1 + 0j]))
    _close(z.grad, tz.grad)


def test_comparisons():
    a, b = _data((4,), np.complex64, 1), _data((4,), np.complex64, 2)
    b[0] = a[0]
    za, zb = gt.tensor(a), gt.tensor(b)
    assert (za == zb).tolist() == (torch.tensor(a) == torch.tensor(b)).tolist()
    assert (za != zb).tolist() == (torch.tensor(a) != torch.tensor(b)).tolist()
    for op in ("__lt__", "__le__", "__gt__", "__ge__"):
        with pytest.raises(NotImplementedError):
            getattr(za, op)(zb)
        with pytest.raises(NotImplementedError):
            getattr(torch.tensor(a), op)(torch.tensor(b))
    with pytest.raises(NotImplementedError):
        za.max()
    with pytest.raises(NotImplementedError):
        za.relu()


def test_eig_and_eigvals_complex_results():
    a = np.random.default_rng(4).standard_normal((2, 4, 4)).astype(np.float32)
    w, v = gt.linalg.eig(gt.tensor(a))
    tw, tv = torch.linalg.eig(torch.tensor(a))
    assert w.dtype == gt.complex64 and v.dtype == gt.complex64
    # the same eigenvalues (LAPACK's order), eigenvectors up to a phase: compare A v = w v
    _close(gt.linalg.eigvals(gt.tensor(a)), tw, 1e-4)
    np.testing.assert_allclose((gt.tensor(a).cfloat() @ v).numpy(), (v * w.unsqueeze(-2)).numpy(), atol=1e-4)
    with pytest.raises(NotImplementedError, match="gradient"):
        gt.linalg.eig(gt.tensor(a, requires_grad=True))


def test_save_load_and_state_dict_hold_complex():
    z = gt.tensor(_data((2, 3), np.complex128))
    buf = io.BytesIO()
    gt.save({"z": z, "w": z.cfloat()}, buf)
    buf.seek(0)
    back = gt.load(buf)
    assert back["z"].dtype == gt.complex128 and back["w"].dtype == gt.complex64
    np.testing.assert_array_equal(back["z"].numpy(), z.numpy())
    buf.seek(0)
    theirs = torch.load(buf)        # gt writes torch's format
    assert theirs["z"].dtype == torch.complex128
    np.testing.assert_array_equal(theirs["z"].numpy(), z.numpy())
    model = gt.nn.Module()
    model.p = gt.nn.Parameter(gt.randn(3, dtype=gt.cfloat))
    other = gt.nn.Module()
    other.p = gt.nn.Parameter(gt.zeros(3, dtype=gt.cfloat))
    other.load_state_dict(model.state_dict())
    np.testing.assert_array_equal(other.p.detach().numpy(), model.p.detach().numpy())


def test_conjugate_transposes_and_vdot_conjugate():
    a = _data((3, 4), np.complex64, 6)
    for fn in (lambda m, x: x.mH, lambda m, x: x.H, lambda m, x: x.adjoint(), lambda m, x: m.adjoint(x),
               lambda m, x: x[0].vdot(x[1]), lambda m, x: m.vdot(x[0], x[1])):
        _close(fn(gt, gt.tensor(a)), fn(torch, torch.tensor(a)))
    x = gt.randn(2, 3)
    assert x.mH.tolist() == x.transpose(-2, -1).tolist()


def test_conj_physical_in_place():
    z, tz = gt.tensor([1 + 2j, 3 - 1j]), torch.tensor([1 + 2j, 3 - 1j])
    assert z.conj_physical_() is z
    tz.conj_physical_()
    assert z.tolist() == tz.tolist()
    x = gt.tensor([1.0, -2.0])
    assert x.conj_physical_().tolist() == [1.0, -2.0]


def test_conj_physical_of_a_real_tensor_is_the_tensor_as_torch():
    # torch returns the real tensor itself (a write into the result changes it); gt gave a copy
    for L in (gt, torch):
        x = L.tensor([1.0, -2.0], requires_grad=True)
        assert x.conj_physical() is x and L.conj_physical(x) is x


def test_create_graph_through_a_complex_product_gives_torchs_derivatives():
    # refused before 2026-12-06 night (the recorded gradients were real-only); the first order as the plain walk's
    grads = []
    for lib in (gt, torch):
        z = lib.tensor([1 + 2j, -0.5 + 1j], requires_grad=True)
        (g,) = lib.autograd.grad((z * z).abs().sum(), z, create_graph=True)
        (h,) = lib.autograd.grad((g * g.conj()).real.sum(), z)
        grads.append((g, h))
    _close(grads[0][0], grads[1][0].detach())
    _close(grads[0][1], grads[1][1])


@pytest.mark.parametrize("write", ["masked_fill", "masked_fill_tensor", "fill_", "setitem", "full", "full_int"])
def test_a_complex_value_into_a_real_tensor_is_refused_unless_its_imaginary_part_is_zero(write):
    """torch's checked conversion: 1j into a float or int tensor raises, 2+0j is written as 2 (the
    real part was dropped silently, or the write failed with a TypeError)."""
    def run(lib, value):
        x = lib.zeros(2, 2)
        mask = lib.tensor([[True, False], [False, True]])
        if write == "masked_fill":
            return x.masked_fill(mask, value)
        if write == "masked_fill_tensor":
            return x.masked_fill(mask, lib.tensor(value))
        if write == "fill_":
            return x.fill_(value)
        if write == "setitem":
            x[0] = value
            return x
        return lib.full((2,), value, dtype=lib.int64 if write == "full_int" else lib.float32)

    with pytest.raises(RuntimeError, match="without overflow"):
        run(torch, 1j)
    with pytest.raises(RuntimeError, match="without overflow"):
        run(gt, 1j)
    np.testing.assert_array_equal(run(gt, 2 + 0j).numpy(), run(torch, 2 + 0j).numpy())


def test_full_of_a_complex_number_is_the_default_floats_complex_kind():
    for dtype in (None, gt.complex128):
        ours = gt.full((2,), 1j) if dtype is None else gt.full((2,), 1j, dtype=dtype)
        theirs = torch.full((2,), 1j) if dtype is None else torch.full((2,), 1j, dtype=torch.complex128)
        assert str(ours.dtype).split(".")[-1] == str(theirs.dtype).split(".")[-1]
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())


# ---- reductions and predicates that read both parts (review) ----------------------------------------------
@pytest.mark.parametrize("dtype", ["complex64", "complex128"])
def test_var_std_of_complex_are_real_mean_squared_moduli(dtype):
    data = _data((3, 4), dtype)
    x, t = gt.tensor(data, requires_grad=True), torch.tensor(data, requires_grad=True)
    for ours, theirs in [(x.var(unbiased=True), t.var()), (x.std(dim=1, unbiased=False), t.std(dim=1, correction=0)),
                         (gt.var_mean(x, 0, correction=1)[0], torch.var_mean(t, 0)[0])]:
        _close(ours, theirs)
    x.std(dim=0, unbiased=True).sum().backward()
    t.std(dim=0).sum().backward()
    _close(x.grad, t.grad)


def test_isreal_isclose_cov_corrcoef_read_the_imaginary_part():
    data = _data((3, 4), "complex64")
    data[0, 0] = 2.0
    x, t = gt.tensor(data), torch.tensor(data)
    assert x.isreal().tolist() == t.isreal().tolist()
    assert gt.isclose(x, x.conj()).tolist() == torch.isclose(t, t.conj()).tolist()
    assert gt.isclose(x, x + 1e-3j).tolist() == torch.isclose(t, t + 1e-3j).tolist()
    _close(gt.cov(x), torch.cov(t))
    _close(gt.corrcoef(x), torch.corrcoef(t))


@pytest.mark.parametrize("op", ["cumprod", "einsum", "linear"])
def test_gradients_of_cumprod_einsum_linear_conjugate_complex_operands(op):
    fns = {"cumprod": lambda m, x, y: (x * y).cumprod(1),
           "einsum": lambda m, x, y: m.einsum("ij,kj->ik", x, y),
           "linear": lambda m, x, y: (m.nn.functional.linear(x, y, y[0, :3]))}
    xs, ys = _data((3, 4), "complex64", 1), _data((3, 4), "complex64", 2)
    grads = []
    for m in (gt, torch):
        x, y = m.tensor(xs, requires_grad=True), m.tensor(ys, requires_grad=True)
        out = fns[op](m, x, y)
        (out.abs() ** 2).sum().backward()
        grads.append((out, x.grad, y.grad))
    for ours, theirs in zip(*grads):
        _close(ours, theirs, 1e-4)


def test_sgn_of_complex_and_rounding_refused_as_torch():
    data = np.array([1 + 1j, 2 - 1j, 0j], dtype="complex64")
    w = np.array([1 + 2j, 3, 1], dtype="complex64")
    res = []
    for m in (gt, torch):
        z = m.tensor(data, requires_grad=True)
        out = z.sgn()
        (out * m.tensor(w)).real.sum().backward()
        res.append((out, z.grad))
    for ours, theirs in zip(*res):
        _close(ours, theirs)
    z = gt.tensor(data)
    for name in ("sign", "floor", "ceil", "trunc", "round"):
        with pytest.raises(NotImplementedError):
            getattr(z, name)()


@pytest.mark.own_mesh
@pytest.mark.parametrize("devices", [3, 4])
def test_sort_refuses_complex_over_a_mesh(devices):
    # sharded along the sorted dim (3 devices, one element each) gt sorted complex numbers in order of
    # their real parts, where torch refuses
    from gt.sharding import use_mesh

    with use_mesh(devices):
        z = gt.tensor(_data((devices, 2), "complex64"))
        for dim in (0, 1):
            with pytest.raises(RuntimeError, match="sort does not support complex dtypes"):
                z.sort(dim)


@pytest.mark.parametrize("call", ["argmax", "argmin", "sort", "argsort", "topk", "maximum", "minimum", "clamp"])
def test_ordering_ops_refuse_complex_as_torch(call):
    for m in (torch, gt):
        z = m.tensor(_data((3,), "complex64"))
        fn = {"topk": lambda z: z.topk(1), "maximum": lambda z: m.maximum(z, z), "minimum": lambda z: m.minimum(z, z),
              "clamp": lambda z: z.clamp(0, 1)}.get(call, lambda z: getattr(z, call)())
        with pytest.raises((RuntimeError, NotImplementedError)):
            fn(z)
