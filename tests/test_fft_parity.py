"""``gt.fft`` beside ``torch.fft``: values, dtypes, shapes and gradients of every transform for
``n``/``s``, ``dim`` and ``norm``, real and complex inputs in both precisions; the shifts and the
sample frequencies; torch's errors; gradients against finite differences (``rfft``/``irfft``'s
Hermitian doubling included)."""

import numpy as np
import pytest

import gt

torch = pytest.importorskip("torch")

ONE_D = ["fft", "ifft", "rfft", "irfft", "hfft", "ihfft"]
N_D = ["fft2", "ifft2", "rfft2", "irfft2", "fftn", "ifftn", "rfftn", "irfftn"]
REAL_ONLY = {"rfft", "ihfft", "rfft2", "rfftn"}


def _input(shape, dtype, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape)
    if dtype.startswith("complex"):
        x = x + 1j * rng.standard_normal(shape)
    return x.astype(dtype)


def _run(m, name, x, kwargs):
    t = m.tensor(x, requires_grad=True)
    y = getattr(m.fft, name)(t, **kwargs)
    rng = np.random.default_rng(7)
    w = rng.standard_normal(tuple(y.shape))
    if y.is_complex():
        w = (w + 1j * rng.standard_normal(tuple(y.shape))).astype(np.complex64 if y.dtype == m.complex64 else
                                                                   np.complex128)
        loss = (y * m.tensor(w)).real.sum()
    else:
        loss = (y * m.tensor(w.astype(np.float32 if y.dtype == m.float32 else np.float64))).sum()
    loss.backward()
    return y, t.grad


def _check(name, x, kwargs):
    y, g = _run(gt, name, x, kwargs)
    ty, tg = _run(torch, name, x, kwargs)
    ty, tg = ty.detach().resolve_conj(), tg.resolve_conj()
    assert str(y.dtype).split(".")[-1] == str(ty.dtype).split(".")[-1]
    assert tuple(y.shape) == tuple(ty.shape) and tuple(g.shape) == tuple(tg.shape)
    assert str(g.dtype).split(".")[-1] == str(tg.dtype).split(".")[-1]
    single = ty.dtype in (torch.float32, torch.complex64)
    tol = 2e-5 if single else 1e-10
    scale = max(1.0, float(ty.abs().max()))
    np.testing.assert_allclose(y.detach().numpy(), ty.numpy(), rtol=0, atol=tol * scale)
    np.testing.assert_allclose(g.numpy(), tg.numpy(), rtol=0, atol=tol * max(1.0, float(tg.abs().max())))


def _dtypes(name, choices):
    """The input dtypes of a transform: real ones only for the real-input transforms."""
    return [(name, d) for d in choices if not (name in REAL_ONLY and d.startswith("complex"))]


@pytest.mark.parametrize("norm", [None, "ortho", "forward"])
@pytest.mark.parametrize("n", [None, 3, 8, 11])
@pytest.mark.parametrize("name, dtype", [c for name in ONE_D for c in _dtypes(
    name, ["float32", "float64", "complex64", "complex128"])])
def test_one_dimensional_as_torch(name, n, norm, dtype):
    for dim in (-1, 0):
        _check(name, _input((6, 5), dtype), dict(n=n, dim=dim, norm=norm))


@pytest.mark.parametrize("kwargs", [{}, {"s": (4, 6)}, {"s": (7, 3), "norm": "ortho"}, {"norm": "forward"},
                                    {"dim": (0, 2)}, {"s": (4, 6), "dim": (2, 0)}])
@pytest.mark.parametrize("name, dtype", [c for name in N_D for c in _dtypes(name, ["float32", "complex128"])])
def test_n_dimensional_as_torch(name, kwargs, dtype):
    _check(name, _input((3, 6, 5), dtype), kwargs)


def test_fftn_of_every_dim_one_dim_and_integer_input():
    _check("fftn", _input((2, 3, 4), "complex64"), {})
    for name in ("fftn", "ifftn", "rfftn", "irfftn"):
        _check(name, _input((3, 6, 5), "float64"), {"dim": (1,)})
    for name in ("fft", "rfft", "fftn"):
        ours = getattr(gt.fft, name)(gt.tensor([[1, 2, 3], [4, 5, 6]]))
        theirs = getattr(torch.fft, name)(torch.tensor([[1, 2, 3], [4, 5, 6]]))
        assert ours.dtype == gt.complex64 and theirs.dtype == torch.complex64
        np.testing.assert_allclose(ours.numpy(), theirs.numpy(), atol=1e-5)


def test_float32_stays_single_precision():
    x = gt.randn(16)
    assert gt.fft.fft(x).dtype == gt.complex64
    assert gt.fft.rfft(x).dtype == gt.complex64
    assert gt.fft.irfft(gt.fft.rfft(x)).dtype == gt.float32
    assert gt.fft.hfft(gt.fft.rfft(x)).dtype == gt.float32
    assert gt.fft.fft(x.double()).dtype == gt.complex128
    np.testing.assert_allclose(gt.fft.irfft(gt.fft.rfft(x), n=16).numpy(), x.numpy(), atol=1e-5)


@pytest.mark.parametrize("dim", [None, 0, (0, 1), -1])
def test_shifts_as_torch(dim):
    x = np.arange(30.0).reshape(5, 6)
    for fn in ("fftshift", "ifftshift"):
        ours = getattr(gt.fft, fn)(gt.tensor(x), dim=dim)
        theirs = getattr(torch.fft, fn)(torch.tensor(x), dim=dim)
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())


@pytest.mark.parametrize("n", [1, 4, 5, 10])
@pytest.mark.parametrize("d", [1.0, 0.1])
def test_frequencies_as_torch(n, d):
    for fn in ("fftfreq", "rfftfreq"):
        ours, theirs = getattr(gt.fft, fn)(n, d), getattr(torch.fft, fn)(n, d)
        assert ours.dtype == gt.float32
        np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-6)
        assert getattr(gt.fft, fn)(n, d, dtype=gt.float64).dtype == gt.float64


def test_errors_as_torch():
    x = gt.randn(8)
    with pytest.raises(ValueError, match="Invalid normalization mode"):
        gt.fft.fft(x, norm="bogus")
    with pytest.raises(RuntimeError, match="Invalid number of data points"):
        gt.fft.fft(x, n=0)
    with pytest.raises(RuntimeError, match="real input"):
        gt.fft.rfft(x.cfloat())
    with pytest.raises(RuntimeError, match="Invalid number of data points"):
        gt.fft.irfft(gt.tensor([1 + 0j]))
    with pytest.raises(IndexError):
        gt.fft.fft(x, dim=1)
    with pytest.raises(RuntimeError, match="same length"):
        gt.fft.fftn(gt.randn(2, 3), s=(2,), dim=(0, 1))
    with pytest.raises(RuntimeError, match="real scalar outputs"):
        gt.fft.fft(gt.randn(4, requires_grad=True)).sum().backward()


def _finite_difference(loss, x0, eps=1e-6):
    grad = np.zeros(x0.shape, x0.dtype)
    units = (1, 1j) if np.iscomplexobj(x0) else (1,)
    for i in np.ndindex(x0.shape):
        for unit in units:
            up, down = x0.copy(), x0.copy()
            up[i] += eps * unit
            down[i] -= eps * unit
            grad[i] += unit * (loss(up) - loss(down)) / (2 * eps)     # torch's: dL/dx + i dL/dy
    return grad


@pytest.mark.parametrize("name, n, dtype", [("rfft", None, "float64"), ("rfft", 6, "float64"),
                                             ("irfft", None, "complex128"), ("irfft", 7, "complex128"),
                                             ("irfft", 3, "complex128"), ("hfft", None, "complex128"),
                                             ("ihfft", 5, "float64"), ("fft", 4, "complex128")])
def test_gradients_against_finite_differences(name, n, dtype):
    x0 = _input((5,), dtype, 3)
    fn = getattr(gt.fft, name)

    def loss(values):
        y = fn(gt.tensor(values), n=n, norm="ortho")
        return float((y.abs() ** 2 * gt.arange(1, y.shape[0] + 1)).sum().item())

    x = gt.tensor(x0, requires_grad=True)
    y = fn(x, n=n, norm="ortho")
    (y.abs() ** 2 * gt.arange(1, y.shape[0] + 1)).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), _finite_difference(loss, x0), rtol=1e-5, atol=1e-7)


# ---- stft / istft ------------------------------------------------------------------------------------------
def _stft_round_trip(m, x, n_fft, hop, win, center, mode, normalized, window, complex_in):
    t = m.tensor(x, requires_grad=True)
    w = None if window is None else m.hann_window(win or n_fft, dtype=m.float64 if x.dtype == np.float64 else
                                                   m.float32)
    s = m.stft(t, n_fft, hop, win, w, center, mode, normalized, return_complex=True)
    y = m.istft(s, n_fft, hop, win, w, center, normalized, length=x.shape[-1], return_complex=complex_in)
    weights = np.random.default_rng(1).standard_normal(tuple(s.shape)) + 1j
    loss = (s * m.tensor(weights.astype(np.complex128 if x.dtype == np.float64 else np.complex64))).real.sum()
    loss = loss + ((y * y).real.sum() if complex_in else (y * y).sum())
    loss.backward()
    return s, y, t.grad


@pytest.mark.filterwarnings("ignore:A window was not provided")
@pytest.mark.filterwarnings("ignore:The length of signal is shorter")
@pytest.mark.parametrize("dtype", ["float32", "float64", "complex64"])
@pytest.mark.parametrize("n_fft, hop, win", [(16, None, None), (16, 4, 12), (15, 5, None)])
@pytest.mark.parametrize("center, mode", [(True, "reflect"), (True, "constant"), (True, "replicate"),
                                          (True, "circular"), (False, "reflect")])
@pytest.mark.parametrize("normalized, window", [(False, None), (True, "hann")])
def test_stft_and_istft_as_torch(dtype, n_fft, hop, win, center, mode, normalized, window):
    x = _input((2, 50), dtype, 5)
    args = (n_fft, hop, win, center, mode, normalized, window, dtype.startswith("complex"))
    try:
        theirs = _stft_round_trip(torch, x, *args)
    except RuntimeError:        # a window whose overlap-add is 0 somewhere (hann, center=False): NOLA
        with pytest.raises(RuntimeError, match="NOLA"):
            _stft_round_trip(gt, x, *args)
        return
    ours = _stft_round_trip(gt, x, *args)
    tol = 1e-9 if dtype == "float64" else 1e-4
    for a, b in zip(ours, theirs):
        assert tuple(a.shape) == tuple(b.shape)
        assert str(a.dtype).split(".")[-1] == str(b.dtype).split(".")[-1]
        np.testing.assert_allclose(a.detach().numpy(), b.detach().resolve_conj().numpy(), rtol=tol, atol=tol)
    if window is None and center:       # the round trip (a window's zeros at the ends leave the last samples 0)
        np.testing.assert_allclose(ours[1].detach().numpy(), x, rtol=tol, atol=tol)


def test_stft_errors_as_torch():
    x = gt.randn(40)
    with pytest.raises(RuntimeError, match="return_complex"):
        gt.stft(x, 8)
    with pytest.raises(RuntimeError, match="return_complex=False"):
        gt.stft(x, 8, return_complex=False)
    with pytest.raises(RuntimeError, match="window"):
        gt.stft(x, 8, window=gt.ones(5), return_complex=True)
    with pytest.raises(RuntimeError, match="complex"):
        gt.istft(x, 8)
    spec = x.stft(8, window=gt.hann_window(8), return_complex=True)
    assert tuple(spec.shape) == (5, 21) and spec.dtype == gt.complex64
    with pytest.raises(RuntimeError, match="NOLA"):
        gt.istft(spec, 8, window=gt.zeros(8))


@pytest.mark.parametrize("kwargs", [{}, {"s": (4, 6)}, {"s": (7, 3), "norm": "ortho"}, {"norm": "forward"},
                                    {"dim": (0, 2)}, {"s": (4, 6), "dim": (2, 0)}, {"s": (5,), "norm": "backward"}])
@pytest.mark.parametrize("name, dtype", [("hfft2", "complex64"), ("hfft2", "complex128"), ("hfftn", "complex128"),
                                         ("hfftn", "float64"), ("ihfft2", "float32"), ("ihfftn", "float64")])
def test_hermitian_n_dimensional_as_torch(name, kwargs, dtype):
    if name.endswith("2") and "dim" not in kwargs and len(kwargs.get("s", (0, 0))) != 2:
        kwargs = dict(kwargs, dim=(-1,))
    _check(name, _input((3, 6, 5), dtype), kwargs)
    if name.startswith("ihfft"):
        for m in (gt, torch):
            with pytest.raises(RuntimeError, match="Only supports floating-point dtypes"):
                getattr(m.fft, name)(m.ones(2, 2, dtype=m.complex64))
