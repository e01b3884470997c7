"""Mended from the comparison with torch's OpInfo table in complex64/complex128 and uint8/int8/int16
(tests/test_opinfo_dtypes_parity.py), each beside torch: the cases that failed before, without the
table's machinery. Complex gradients are those of a real loss ``Re(sum(y * c))``, torch's
conjugate convention."""

import warnings

import numpy as np
import pytest

import gt
import gt.nn.functional

torch = pytest.importorskip("torch")


def _c(rng, *shape):
    return rng.standard_normal(shape) + 1j * rng.standard_normal(shape)


def _both(fn, *arrays, dtype="complex128"):
    """``fn(F, *tensors)`` in gt and torch, tensors that require grad made from ``arrays``: per
    framework, the output and the gradients of ``Re(sum(out * c))`` (c fixed, complex for complex outputs)."""
    answers = []
    for F in (gt, torch):
        ts = [F.tensor(a, dtype=getattr(F, dtype) if np.iscomplexobj(a) else F.float64, requires_grad=True)
              for a in arrays]
        out = fn(F, *ts)
        c = np.random.default_rng(1).standard_normal(tuple(out.shape)) * (1 + 0.5j if out.dtype.is_complex else 1)
        loss = (out * F.tensor(c, dtype=out.dtype)).sum()
        grads = F.autograd.grad(loss.real if out.dtype.is_complex else loss, ts, allow_unused=True)
        answers.append((out, grads))
    (g_out, g_grads), (t_out, t_grads) = answers
    assert str(g_out.dtype).split(".")[-1] == str(t_out.dtype).split(".")[-1]
    np.testing.assert_allclose(g_out.detach().numpy(), t_out.detach().resolve_conj().numpy(), rtol=1e-9, atol=1e-9)
    for g, t in zip(g_grads, t_grads):
        t = np.zeros(1) if t is None else t.numpy()
        np.testing.assert_allclose(np.zeros(1) if g is None else g.numpy(), t, rtol=1e-9, atol=1e-9)


_CONVS = [("conv1d", (1, 2, 5), (3, 2, 3), {}),
          ("conv2d", (2, 4, 5, 5), (4, 2, 3, 3), dict(groups=2, padding=1)),
          ("conv3d", (1, 2, 3, 3, 3), (2, 2, 2, 2, 2), dict(stride=2)),
          ("conv1d", (1, 2, 7), (3, 2, 3), dict(padding="same", dilation=2)),
          ("conv_transpose1d", (1, 2, 5), (2, 3, 3), dict(stride=2)),
          ("conv_transpose2d", (1, 2, 4, 4), (2, 3, 3, 3), dict(stride=2, padding=1, output_padding=1)),
          ("conv_transpose3d", (1, 2, 2, 3, 2), (2, 2, 2, 2, 2), {})]


@pytest.mark.parametrize("name, x_shape, w_shape, kwargs", _CONVS, ids=[c[0] + str(i) for i, c in enumerate(_CONVS)])
def test_complex_convolution_gradients_conjugate(name, x_shape, w_shape, kwargs):
    # gt's input and weight gradients were those of the unconjugated products: wrong in every element
    rng = np.random.default_rng(0)
    bias = _c(rng, w_shape[1] if "transpose" in name else w_shape[0])
    _both(lambda F, x, w, b: getattr(F.nn.functional, name)(x, w, b, **kwargs), _c(rng, *x_shape), _c(rng, *w_shape),
          bias)


@pytest.mark.parametrize("dtype", ["complex64", "complex128"])
@pytest.mark.parametrize("call", [
    lambda F, dt: F.linspace(-2.0, -3, 50, dtype=dt),          # was -2 everywhere but the end (truncated as ints)
    lambda F, dt: F.linspace(1 + 1j, 2 + 3j, 5, dtype=dt),
    lambda F, dt: F.linspace(F.tensor(1 + 1j), F.tensor(2.5), 4, dtype=dt),
    lambda F, dt: F.logspace(0, -3, 2, dtype=dt),               # was [1, 0]
    lambda F, dt: F.logspace(1, 2, 3, base=2, dtype=dt),
    lambda F, dt: F.logspace(1 + 1j, 2, 3, dtype=dt),
], ids=["linspace-real-ends", "linspace-complex-ends", "linspace-tensor-ends", "logspace-down", "logspace-base",
        "logspace-complex-ends"])
def test_complex_linspace_logspace(call, dtype):
    got, want = call(gt, getattr(gt, dtype)), call(torch, getattr(torch, dtype))
    assert got.dtype == getattr(gt, dtype)
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=2e-6 if dtype == "complex64" else 1e-12)


def test_linspace_infers_complex_from_complex_ends_and_refuses_real_dtype():
    got, want = gt.linspace(1 + 1j, 2 + 3j, 5), torch.linspace(1 + 1j, 2 + 3j, 5)
    assert got.dtype == gt.complex64
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-6)
    assert gt.logspace(1j, 2, 3).dtype == gt.complex64
    with pytest.raises(RuntimeError, match="inferred dtype c10::complex"):
        torch.linspace(1 + 1j, 2, 3, dtype=torch.float32)
    with pytest.raises(RuntimeError, match="inferred dtype complex"):
        gt.linspace(1 + 1j, 2, 3, dtype=gt.float32)
    assert complex(gt.tensor(1 - 2j)) == complex(torch.tensor(1 - 2j)) == 1 - 2j
    assert complex(gt.tensor([3.0])) == 3 + 0j


@pytest.mark.parametrize("case", [
    # gt dropped the imaginary part (a float32 result); torch's gradient is 0 for negative int exponents
    lambda F, x, e: F.ldexp(x, F.tensor([2, 0, 3])),
    lambda F, x, e: F.ldexp(x, F.tensor([0.5, -1.5, 2.0], dtype=F.float64)),
    lambda F, x, e: F.float_power(x, e),                        # gt gave float64, the imaginary parts dropped
    lambda F, x, e: F.float_power(x, 2.5),
    lambda F, x, e: F.float_power(x.real, 1j),
    lambda F, x, e: F.float_power(x.real, e),
], ids=["ldexp-int", "ldexp-float", "float_power", "float_power-number", "float_power-complex-number",
        "float_power-real-base"])
def test_ldexp_and_float_power_keep_complex(case):
    rng = np.random.default_rng(0)
    _both(case, _c(rng, 3) + 2, _c(rng, 3))


def test_istft_real_signal_reads_the_first_half_of_a_two_sided_input():
    # torch's real istft of a two-sided spectrum inverts its first n_fft // 2 + 1 frequencies (irfft);
    # gt took the real part of the full inverse transform
    rng = np.random.default_rng(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")     # torch's warning about the rectangular window
        _both(lambda F, x: F.istft(x, n_fft=10), _c(rng, 10, 2))
        _both(lambda F, x: F.istft(x, n_fft=10, hop_length=4, onesided=False, normalized=True), _c(rng, 2, 10, 3))


@pytest.mark.parametrize("fn", ["svd_lowrank", "pca_lowrank"])
def test_lowrank_keeps_a_complex_matrix(fn):
    # the complex input was cast to float32 (its imaginary part dropped): a real, wrong factorization
    a = _c(np.random.default_rng(0), 5, 4)
    kwargs = {"q": 4} if fn == "svd_lowrank" else {"q": 4, "center": False}
    u, s, v = getattr(gt, fn)(gt.tensor(a), **kwargs)
    tu, ts, tv = getattr(torch, fn)(torch.tensor(a), **kwargs)
    assert (u.dtype, s.dtype, v.dtype) == (gt.complex128, gt.float64, gt.complex128)
    np.testing.assert_allclose(s.numpy(), ts.numpy(), rtol=1e-10)
    np.testing.assert_allclose((u.numpy() * s.numpy()) @ v.numpy().conj().T, a, atol=1e-10)


def test_complex_cov_with_float_aweights():
    # raised TypeError (a complex normalizer read by float())
    rng = np.random.default_rng(0)
    x, w = _c(rng, 2, 3), np.array([0.5, 2.0, 1.5])

    def cov(F, x, w):
        return F.cov(x, correction=1, aweights=w, fweights=F.tensor([1, 2, 1]))
    _both(cov, x, w)


@pytest.mark.parametrize("dtype", ["uint8", "int8", "int16"])
@pytest.mark.parametrize("equation, shapes", [("i->", [(3,)]), ("ij->i", [(2, 3)]), ("ii->", [(3, 3)]),
                                              ("i,i->", [(3,), (3,)]), ("ij,j->i", [(2, 3), (3,)]),
                                              ("...ik,...j->ij", [(1, 2, 3), (3,)])])
def test_small_int_einsum_widens_where_torch_sums(dtype, equation, shapes):
    # a subscript summed within one operand: torch's sum widens to int64 (gt kept uint8 and wrapped)
    arrays = [np.full(s, 100) for s in shapes]
    got = gt.einsum(equation, *[gt.tensor(a, dtype=getattr(gt, dtype)) for a in arrays])
    want = torch.einsum(equation, *[torch.tensor(a, dtype=getattr(torch, dtype)) for a in arrays])
    assert str(got.dtype).split(".")[-1] == str(want.dtype).split(".")[-1]
    np.testing.assert_array_equal(got.numpy(), want.numpy())


@pytest.mark.parametrize("dtype", ["uint8", "int8", "int16", "int32"])
def test_integer_bilinear_keeps_its_dtype(dtype):
    # gt's sum gave int64
    args = [np.full((2, 3), 50), np.full((2, 4), 50), np.full((5, 3, 4), 3), np.ones(5, dtype=np.int64)]
    got = gt.nn.functional.bilinear(*[gt.tensor(a, dtype=getattr(gt, dtype)) for a in args])
    want = torch.nn.functional.bilinear(*[torch.tensor(a, dtype=getattr(torch, dtype)) for a in args])
    assert got.dtype == getattr(gt, dtype)
    np.testing.assert_array_equal(got.numpy(), want.numpy())


@pytest.mark.parametrize("dtype", ["uint8", "int8", "int16"])
@pytest.mark.parametrize("nd, kwargs", [
    (2, dict(kernel_size=3, stride=None, ceil_mode=True, padding=1, dilation=(1, 2))),
    (2, dict(kernel_size=3, stride=2, ceil_mode=True)),
    (3, dict(kernel_size=3, stride=2, ceil_mode=True, padding=1)),
    (1, dict(kernel_size=2, padding=1))])
def test_small_int_max_pool_with_indices_reads_only_its_window(dtype, nd, kwargs):
    # padding read as -2**31, which wraps to 0 in a small int: a padding position could win (numpy
    # engine), or the fill overflowed (torch engine's error)
    # op_db's sample: the bottom-left window of a dilated, padded pool holds -1 and -4 only
    x = np.array([[-8, 6, 9, 0, 0, 5], [5, 7, 6, 5, 1, -5], [2, -1, 8, -4, 0, -6]]) + (10 if dtype == "uint8" else 0)
    x = np.stack([x, x[::-1]])[None]                                                  # (1, 2, 3, 6)
    x = x[..., 0] if nd == 1 else x[..., None].repeat(3, -1) if nd == 3 else x
    name = f"max_pool{nd}d"
    got = getattr(gt.nn.functional, name)(gt.tensor(x, dtype=getattr(gt, dtype)), **kwargs, return_indices=True)
    want = getattr(torch.nn.functional, name)(torch.tensor(x, dtype=getattr(torch, dtype)), **kwargs,
                                              return_indices=True)
    for g, t in zip(got, want):
        np.testing.assert_array_equal(g.numpy(), t.numpy())


def test_rsub_and_subtract_take_a_float_alpha_for_complex():
    # refused as if the complex operands were integers
    a, b = [1 + 1j, 2], [3 - 1j, 1j]
    for fn, args in (("rsub", (a, b)), ("subtract", (a, b))):
        got = getattr(gt, fn)(*[gt.tensor(v) for v in args], alpha=-3.125)
        want = getattr(torch, fn)(*[torch.tensor(v) for v in args], alpha=-3.125)
        np.testing.assert_allclose(got.numpy(), want.numpy())
    with pytest.raises(RuntimeError, match="alpha"):
        gt.rsub(gt.tensor([1, 2]), 2, alpha=0.5)


@pytest.mark.parametrize("fn", ["randn_like", "rand_like"])
def test_empty_complex_random_like(fn):
    # an empty complex draw raised TypeError
    got = getattr(gt, fn)(gt.zeros(0, 5, 0, dtype=gt.complex64))
    want = getattr(torch, fn)(torch.zeros(0, 5, 0, dtype=torch.complex64))
    assert got.shape == tuple(want.shape) and got.dtype == gt.complex64


_WRITES = {
    "zero_": lambda F, y, v, r: y.zero_(),
    "setitem": lambda F, y, v, r: y.__setitem__(1, v),
    "setitem-real": lambda F, y, v, r: y.__setitem__(0, r),
    "fill_": lambda F, y, v, r: y.fill_(v[0]),
    "copy_": lambda F, y, v, r: y[:, 1].copy_(v[:3]),
    "copy_-real": lambda F, y, v, r: y[1].copy_(r),
    "masked_fill_": lambda F, y, v, r: y.masked_fill_(F.tensor(np.eye(3, 4, dtype=bool)), v[1]),
    "index_put_": lambda F, y, v, r: y.index_put_((F.tensor([0, 2]),), v),
    "put_": lambda F, y, v, r: y.put_(F.tensor([1, 5]), v[:2]),
    "index_copy_": lambda F, y, v, r: y.index_copy_(0, F.tensor([1]), v[None]),
}


@pytest.mark.parametrize("write", list(_WRITES), ids=list(_WRITES))
def test_writes_into_a_complex_tensor_that_requires_grad(write):
    # refused: "only floating point tensors carry gradients"
    rng = np.random.default_rng(0)

    def program(F, x, v, r):
        y = x * 2
        _WRITES[write](F, y, v, r)
        return y
    _both(program, _c(rng, 3, 4), _c(rng, 4), rng.standard_normal(4))


@pytest.mark.parametrize("dtype", ["complex64", "complex128"])
def test_complex_sinc(dtype):
    # refused with NotImplementedError; its gradient is 0 at 0, as torch's
    x = np.array([0, 1 + 1j, -0.5 + 2j, 3, 0.5 - 0.25j])
    tol = 1e-5 if dtype == "complex64" else 1e-12
    answers = []
    for F in (gt, torch):
        t = F.tensor(x, dtype=getattr(F, dtype), requires_grad=True)
        y = F.sinc(t)
        grad, = F.autograd.grad((y * F.tensor(np.arange(5) + 1j, dtype=y.dtype)).sum().real, [t])
        answers.append((y.detach().numpy(), grad.numpy(), t.sinc().detach().numpy()))
    for g, t in zip(*answers):
        np.testing.assert_allclose(g, t, rtol=tol, atol=tol)


@pytest.mark.parametrize("weight", [None, "complex", "real"])
def test_complex_rms_norm(weight):
    # refused ("expected a floating point input"); torch's formula: x * rsqrt(mean(x * x) + eps)
    rng = np.random.default_rng(0)
    w = {None: None, "complex": _c(rng, 3, 4), "real": rng.standard_normal((3, 4))}[weight]

    def rms(F, x, *w):
        return F.nn.functional.rms_norm(x, (3, 4), *w, eps=None if not w else 1e-3)
    _both(rms, _c(rng, 2, 3, 4), *([] if w is None else [w]))


@pytest.mark.parametrize("kwargs", [{}, dict(swap=True, p=1, reduction="sum"), dict(margin=3.0, reduction="none")])
def test_complex_triplet_margin_loss(kwargs):
    # refused ("anchor must be real"); torch's distances of complex differences are real
    rng = np.random.default_rng(0)
    _both(lambda F, a, p, n: F.nn.functional.triplet_margin_loss(a, p, n, **kwargs),
          _c(rng, 5, 4), _c(rng, 5, 4), _c(rng, 5, 4))


@pytest.mark.parametrize("include_self", [True, False])
def test_complex_scatter_reduce_prod_gradient_conjugates(include_self):
    # the gradient of the product was that of unconjugated factors; torch refuses to differentiate a
    # complex scatter_reduce, so gt's is checked by finite differences of the forward
    xs, ss = np.array([1 + 1j, 2, 3j, 0]), np.array([1j, 2 + 1j, 4.0, 0.5 - 1j])
    index, c = gt.tensor([0, 1, 0, 3]), gt.tensor([1 + 2j, 3, 1j, 2 - 1j])

    def loss(x, s):
        return (gt.tensor(x).scatter_reduce(0, index, gt.tensor(s), "prod", include_self=include_self) * c).sum().real
    x, s = gt.tensor(xs, requires_grad=True), gt.tensor(ss, requires_grad=True)
    grads = gt.autograd.grad((x.scatter_reduce(0, index, s, "prod", include_self=include_self) * c).sum().real, [x, s])
    for k, (grad, at) in enumerate(zip(grads, (xs, ss))):
        want = []
        for i in range(4):
            d = np.zeros(4)
            d[i] = 1e-6
            moved = [lambda step: (at + step, ss), lambda step: (xs, at + step)][k]
            want.append(((loss(*moved(d)) - loss(*moved(-d))).item()
                         + 1j * (loss(*moved(1j * d)) - loss(*moved(-1j * d))).item()) / 2e-6)
        np.testing.assert_allclose(grad.numpy(), want, atol=1e-6)


def test_complex_scatter_reduce_mean():
    # raised TypeError (an integer floor division of complex sums)
    for include_self in (True, False):
        got = gt.tensor([1 + 1j, 2, 3j]).scatter_reduce(0, gt.tensor([0, 1, 0]), gt.tensor([1j, 2 + 1j, 4.0]), "mean",
                                                        include_self=include_self)
        want = torch.tensor([1 + 1j, 2, 3j]).scatter_reduce(0, torch.tensor([0, 1, 0]), torch.tensor([1j, 2 + 1j, 4.0]),
                                                            "mean", include_self=include_self)
        np.testing.assert_allclose(got.numpy(), want.numpy())


@pytest.mark.parametrize("call", [
    lambda F: F.nn.functional.max_pool1d(F.zeros(1, 1, 4, dtype=F.complex64), 2),
    lambda F: F.nn.MaxPool2d(2)(F.zeros(1, 1, 4, 4, dtype=F.complex64)),
    lambda F: F.nn.functional.max_pool3d(F.zeros(1, 1, 4, 4, 4, dtype=F.complex128), 2, return_indices=True),
    lambda F: F.zeros(3, dtype=F.complex64).index_reduce(0, F.tensor([0, 1, 0]), F.ones(3, dtype=F.complex64), "mean"),
    lambda F: F.index_reduce(F.zeros(3, dtype=F.complex64), 0, F.tensor([0]), F.ones(1, dtype=F.complex64), "amax"),
    lambda F: F.zeros(3, dtype=F.complex64).scatter_reduce(0, F.tensor([0, 1]), F.ones(2, dtype=F.complex64), "amin"),
    lambda F: F.isposinf(F.zeros(2, dtype=F.complex64)),
    lambda F: F.zeros(2, dtype=F.complex128).isneginf(),
], ids=["max_pool1d", "MaxPool2d", "max_pool3d-indices", "index_reduce", "index_reduce-function", "scatter_reduce-amin",
        "isposinf", "isneginf"])
@pytest.mark.filterwarnings("ignore:index_reduce")     # torch's: the op is in beta
def test_refused_for_complex_as_torch(call):
    # gt computed these (an order of complex numbers, or kernels torch does not have)
    with pytest.raises((RuntimeError, NotImplementedError)):
        call(torch)
    with pytest.raises((RuntimeError, NotImplementedError, TypeError)):
        call(gt)
