"""``gt.fft``: torch.fft's discrete Fourier transforms, with its names, arguments and results.

    >>> import gt
    >>> gt.fft.fft(gt.tensor([1.0, 0.0, 0.0, 0.0]))
    tensor([1.+0.j, 1.+0.j, 1.+0.j, 1.+0.j])

Every transform takes ``n`` (``s`` for the n-dimensional ones: the signal length along each axis,
cut or zero-padded first), ``dim`` and ``norm`` (``"backward"``: no scaling forward and ``1/n``
inverse, the default; ``"ortho"``: ``1/sqrt(n)`` both ways; ``"forward"``: ``1/n`` forward).
float32 (and integer) inputs give complex64, float64 complex128 (the real outputs of ``irfft``
and ``hfft``: float32, float64). All are differentiable, with torch's gradients (gt/ops/fft_ops.py).
The numpy engine computes with scipy.fft where installed (float32 natively), else numpy.fft.

Where gt differs from torch: no ``out=``; float16 inputs are computed in float32 (torch's CPU
refuses them).
"""

from gt import dtypes
from gt.ops import complex_ops as cx
from gt.ops import fft_ops
from gt.ops._shapes import normalize_axis
from gt.tensor.core import Tensor
from gt.tensor.creation import arange
from gt.tensor.functions import cat

__all__ = ["fft", "ifft", "rfft", "irfft", "hfft", "ihfft", "fft2", "ifft2", "rfft2", "irfft2", "fftn", "ifftn",
           "rfftn", "irfftn", "hfft2", "ihfft2", "hfftn", "ihfftn", "fftshift", "ifftshift", "fftfreq", "rfftfreq"]

_NORMS = ("backward", "ortho", "forward")


def _input(x, fn, to_complex):
    """``x`` checked, in the floating (``to_complex``: complex) dtype the transform reads."""
    if not isinstance(x, Tensor):
        raise TypeError(f"fft.{fn}(): argument 'input' must be a Tensor, not {type(x).__name__}")
    dt = x.dtype
    if not dt.differentiable:
        x = x.to(dtypes.default_float)
    elif dt.name in ("float16", "bfloat16"):
        x = x.to(dtypes.float32)
    if to_complex and not x.dtype.is_complex:
        x = x.to(dtypes.COMPLEX_OF[x.dtype.name])
    return x


def _norm(norm, fn):
    if norm is None:
        return "backward"
    if norm not in _NORMS:
        raise ValueError(f'fft.{fn}(): Invalid normalization mode: "{norm}" (expected one of {_NORMS} or None)')
    return norm


def _length(n, fn, name="n"):
    if n is not None and (not isinstance(n, int) or n < 1):
        raise RuntimeError(f"fft.{fn}(): Invalid number of data points ({n}) specified in {name}")
    return n


def _axes(x, s, dim, fn):
    """torch's ``(s, dim)`` of the n-dimensional transforms as ``(sizes, axes)``."""
    if dim is None:
        dims = tuple(range(x.ndim)) if s is None else tuple(range(x.ndim - len(s), x.ndim))
    else:
        dims = (dim,) if isinstance(dim, int) else tuple(dim)
    axes = tuple(normalize_axis(d, x.ndim, f"fft.{fn}") for d in dims)
    if len(set(axes)) != len(axes):
        raise RuntimeError(f"fft.{fn}(): dims must be unique, got {dim}")
    if s is None:
        return (None,) * len(axes), axes
    s = tuple(s)
    if len(s) != len(axes):
        raise RuntimeError(f"fft.{fn}(): When given, dim and shape arguments must have the same length (s={s}, "
                           f"dim={dim})")
    return tuple(None if n == -1 else _length(n, fn, "s") for n in s), axes


def fft(input, n=None, dim=-1, norm=None):
    """The one-dimensional discrete Fourier transform along ``dim``."""
    x = _input(input, "fft", True)
    axis = normalize_axis(dim, x.ndim, "fft.fft")
    return fft_ops.FFT.apply(x, (_length(n, "fft"),), (axis,), _norm(norm, "fft"))


def ifft(input, n=None, dim=-1, norm=None):
    """The one-dimensional inverse discrete Fourier transform along ``dim``."""
    x = _input(input, "ifft", True)
    axis = normalize_axis(dim, x.ndim, "fft.ifft")
    return fft_ops.FFT.apply(x, (_length(n, "ifft"),), (axis,), _norm(norm, "ifft"), True)


def rfft(input, n=None, dim=-1, norm=None):
    """The transform of a real signal: its ``n // 2 + 1`` non-negative frequencies."""
    if isinstance(input, Tensor) and input.dtype.is_complex:
        raise RuntimeError(f"fft.rfft(): rfft expects a real input tensor, but got {input.dtype!r}")
    x = _input(input, "rfft", False)
    axis = normalize_axis(dim, x.ndim, "fft.rfft")
    return fft_ops.RFFT.apply(x, _length(n, "rfft"), axis, _norm(norm, "rfft"))


def irfft(input, n=None, dim=-1, norm=None):
    """The inverse of ``rfft``: ``n`` real values (default ``2 * (m - 1)`` for ``m`` frequencies)."""
    x = _input(input, "irfft", True)
    axis = normalize_axis(dim, x.ndim, "fft.irfft")
    n = _length(n, "irfft")
    if n is None and 2 * (x.shape[axis] - 1) < 1:
        raise RuntimeError(f"fft.irfft(): Invalid number of data points ({2 * (x.shape[axis] - 1)}) specified")
    return fft_ops.IRFFT.apply(x, n, axis, _norm(norm, "irfft"))


def hfft(input, n=None, dim=-1, norm=None):
    """The transform of a Hermitian-symmetric signal given by its first half: real, ``n`` values
    (default ``2 * (m - 1)``); ``irfft`` of the conjugate with the dual normalisation."""
    x = _input(input, "hfft", True)
    dual = fft_ops._DUAL[_norm(norm, "hfft")]
    return irfft(cx.Conj.apply(x), n, dim, dual)


def ihfft(input, n=None, dim=-1, norm=None):
    """The inverse of ``hfft``: the conjugate of ``rfft`` with the dual normalisation."""
    if isinstance(input, Tensor) and input.dtype.is_complex:
        raise RuntimeError(f"fft.ihfft(): ihfft expects a real input tensor, but got {input.dtype!r}")
    dual = fft_ops._DUAL[_norm(norm, "ihfft")]
    return cx.Conj.apply(rfft(input, n, dim, dual))


def fftn(input, s=None, dim=None, norm=None):
    """The n-dimensional transform over ``dim`` (all dims by default; the last ``len(s)`` with ``s``)."""
    x = _input(input, "fftn", True)
    sizes, axes = _axes(x, s, dim, "fftn")
    return fft_ops.FFT.apply(x, sizes, axes, _norm(norm, "fftn")) if axes else x.clone()


def ifftn(input, s=None, dim=None, norm=None):
    """The n-dimensional inverse transform over ``dim``."""
    x = _input(input, "ifftn", True)
    sizes, axes = _axes(x, s, dim, "ifftn")
    return fft_ops.FFT.apply(x, sizes, axes, _norm(norm, "ifftn"), True) if axes else x.clone()


def rfftn(input, s=None, dim=None, norm=None):
    """``rfft`` over the last of ``dim``, then ``fft`` over the others."""
    if isinstance(input, Tensor) and input.dtype.is_complex:
        raise RuntimeError(f"fft.rfftn(): rfftn expects a real-valued input tensor, but got {input.dtype!r}")
    x = _input(input, "rfftn", False)
    sizes, axes = _axes(x, s, dim, "rfftn")
    if not axes:
        raise RuntimeError("fft.rfftn(): rfftn must transform at least one axis")
    norm = _norm(norm, "rfftn")
    out = fft_ops.RFFT.apply(x, sizes[-1], axes[-1], norm)
    return fft_ops.FFT.apply(out, sizes[:-1], axes[:-1], norm) if len(axes) > 1 else out


def irfftn(input, s=None, dim=None, norm=None):
    """The inverse of ``rfftn``: ``ifft`` over all but the last of ``dim``, then ``irfft``."""
    x = _input(input, "irfftn", True)
    sizes, axes = _axes(x, s, dim, "irfftn")
    if not axes:
        raise RuntimeError("fft.irfftn(): irfftn must transform at least one axis")
    norm = _norm(norm, "irfftn")
    if len(axes) > 1:
        x = fft_ops.FFT.apply(x, sizes[:-1], axes[:-1], norm, True)
    last = sizes[-1]
    if last is None and 2 * (x.shape[axes[-1]] - 1) < 1:
        raise RuntimeError(f"fft.irfftn(): Invalid number of data points ({2 * (x.shape[axes[-1]] - 1)}) specified")
    return fft_ops.IRFFT.apply(x, last, axes[-1], norm)


def fft2(input, s=None, dim=(-2, -1), norm=None):
    """``fftn`` over the last two dims."""
    return fftn(input, s, dim, norm)


def ifft2(input, s=None, dim=(-2, -1), norm=None):
    """``ifftn`` over the last two dims."""
    return ifftn(input, s, dim, norm)


def rfft2(input, s=None, dim=(-2, -1), norm=None):
    """``rfftn`` over the last two dims."""
    return rfftn(input, s, dim, norm)


def irfft2(input, s=None, dim=(-2, -1), norm=None):
    """``irfftn`` over the last two dims."""
    return irfftn(input, s, dim, norm)


def hfftn(input, s=None, dim=None, norm=None):
    """The n-dimensional transform of a Hermitian-symmetric signal given by its half along the last
    of ``dim``: real; ``irfftn`` of the conjugate with the dual normalisation (as ``hfft``)."""
    x = _input(input, "hfftn", True)
    return irfftn(cx.Conj.apply(x), s, dim, fft_ops._DUAL[_norm(norm, "hfftn")])


def ihfftn(input, s=None, dim=None, norm=None):
    """The inverse of ``hfftn``: the conjugate of ``rfftn`` of the real ``input`` with the dual
    normalisation."""
    if isinstance(input, Tensor) and input.dtype.is_complex:
        raise RuntimeError(f"fft.ihfftn(): Only supports floating-point dtypes, but found: {input.dtype!r}")
    return cx.Conj.apply(rfftn(input, s, dim, fft_ops._DUAL[_norm(norm, "ihfftn")]))


def hfft2(input, s=None, dim=(-2, -1), norm=None):
    """``hfftn`` over the last two dims."""
    return hfftn(input, s, dim, norm)


def ihfft2(input, s=None, dim=(-2, -1), norm=None):
    """``ihfftn`` over the last two dims."""
    return ihfftn(input, s, dim, norm)


def _shift(input, dim, sign, fn):
    if not isinstance(input, Tensor):
        raise TypeError(f"fft.{fn}(): argument 'input' must be a Tensor, not {type(input).__name__}")
    dims = tuple(range(input.ndim)) if dim is None else (dim,) if isinstance(dim, int) else tuple(dim)
    if not dims:
        return input.clone()
    return input.roll(tuple(sign * (input.shape[d] // 2) for d in dims), dims)


def fftshift(input, dim=None):
    """The zero frequency moved to the middle of ``dim`` (all dims by default)."""
    return _shift(input, dim, 1, "fftshift")


def ifftshift(input, dim=None):
    """The inverse of ``fftshift``."""
    return _shift(input, dim, -1, "ifftshift")


def _freq_dtype(dtype, fn):
    dt = dtypes.default_float if dtype is None else dtypes.to_dtype(dtype)
    if not dt.is_floating_point:
        raise RuntimeError(f"fft.{fn}(): expected a floating dtype, got {dt!r}")
    return dt


def fftfreq(n, d=1.0, *, dtype=None, device=None, requires_grad=False):
    """The sample frequencies of an ``n``-point transform with sample spacing ``d``:
    ``[0, 1, ..., (n - 1) // 2, -(n // 2), ..., -1] / (d * n)``."""
    dt = _freq_dtype(dtype, "fftfreq")
    ticks = cat([arange((n + 1) // 2, dtype=dt), arange(-(n // 2), 0, dtype=dt)])
    out = ticks * (1.0 / (n * d))
    out = out if device is None else out.to(device)
    return out._set_requires_grad(requires_grad) if requires_grad else out


def rfftfreq(n, d=1.0, *, dtype=None, device=None, requires_grad=False):
    """The sample frequencies of ``rfft`` of ``n`` points: ``[0, 1, ..., n // 2] / (d * n)``."""
    dt = _freq_dtype(dtype, "rfftfreq")
    out = arange(n // 2 + 1, dtype=dt) * (1.0 / (n * d))
    out = out if device is None else out.to(device)
    return out._set_requires_grad(requires_grad) if requires_grad else out
