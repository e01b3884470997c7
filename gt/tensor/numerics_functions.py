"""torch's window functions (``hann_window``, ``hamming_window``, ``blackman_window``,
``bartlett_window``, ``kaiser_window``) and numerical calculus on tensors (``trapezoid``,
``cumulative_trapezoid``, ``gradient``), with ``cov``, ``corrcoef`` and ``vander``: torch's values
and, where torch has them, gradients (composed of differentiable tensor ops).
"""

import math
import warnings

from gt import autograd, dtypes
from gt.backend import B
from gt.tensor.construct_methods import promoted
from gt.tensor.complex_functions import complex as gt_complex
from gt.tensor.core import Tensor
from gt.tensor.creation import _float, _new
from gt.tensor.functions import cat, stack
from gt.tensor.random_methods import _number
from gt.tensor.wide_uints import refuse

_F64 = dtypes.float64
_SMALL_MEAN = 10.0     # below this mean, inversion; from it on, transformed rejection


# ---- window functions ----------------------------------------------------------------------
def _window(name, window_length, periodic, dtype, requires_grad, values):
    """A window of ``window_length`` points, ``values(n, N)`` of the positions ``n`` (float64)
    over a length ``N`` (one more when ``periodic``, whose last point is dropped)."""
    if isinstance(window_length, bool) or not isinstance(window_length, int):
        raise TypeError(f"{name}(): window_length must be an int, got {type(window_length).__name__}")
    if window_length < 0:
        raise RuntimeError(f"{name} requires non-negative window_length, got window_length={window_length}")
    dt = _float(dtype)
    if not dt.is_floating_point:
        raise RuntimeError(f"{name} expects floating point dtypes, got: {dt!r}")
    if window_length <= 1:
        arr = B.ones((window_length,), dt)
    else:
        length = window_length + 1 if periodic else window_length
        n = Tensor._wrap(B.arange(0, window_length, 1, _F64))
        with autograd.no_grad():
            arr = B.astype(values(n, length)._data, dt)
    return _new(arr, requires_grad, data=False)


def _cosine_sum(coefficients):
    def values(n, length):
        out = None
        for j, c in enumerate(coefficients):
            term = (n * (2.0 * math.pi * j / (length - 1))).cos() * (c * (-1) ** j) if j else n * 0.0 + c
            out = term if out is None else out + term
        return out
    return values


def hann_window(window_length, periodic=True, *, dtype=None, layout=None, device=None, pin_memory=False,
                requires_grad=False):
    """The Hann window ``1/2 - 1/2 cos(2 pi n / (N - 1))``, shape ``(window_length,)``;
    ``periodic`` (the default) computes ``N = window_length + 1`` points and drops the last."""
    return _window("hann_window", window_length, periodic, dtype, requires_grad, _cosine_sum((0.5, 0.5)))


def hamming_window(window_length, periodic=True, alpha=0.54, beta=0.46, *, dtype=None, layout=None, device=None,
                   pin_memory=False, requires_grad=False):
    """The Hamming window ``alpha - beta cos(2 pi n / (N - 1))``, shape ``(window_length,)``."""
    return _window("hamming_window", window_length, periodic, dtype, requires_grad,
                   _cosine_sum((float(alpha), float(beta))))


def blackman_window(window_length, periodic=True, *, dtype=None, layout=None, device=None, pin_memory=False,
                    requires_grad=False):
    """The Blackman window ``0.42 - 0.5 cos(2 pi n / (N - 1)) + 0.08 cos(4 pi n / (N - 1))``."""
    return _window("blackman_window", window_length, periodic, dtype, requires_grad,
                   _cosine_sum((0.42, 0.5, 0.08)))


def bartlett_window(window_length, periodic=True, *, dtype=None, layout=None, device=None, pin_memory=False,
                    requires_grad=False):
    """The Bartlett (triangular) window ``1 - |2 n / (N - 1) - 1|``, shape ``(window_length,)``."""
    return _window("bartlett_window", window_length, periodic, dtype, requires_grad,
                   lambda n, length: 1.0 - (n * (2.0 / (length - 1)) - 1.0).abs())


def kaiser_window(window_length, periodic=True, beta=12.0, *, dtype=None, layout=None, device=None,
                  pin_memory=False, requires_grad=False):
    """The Kaiser window ``I0(beta sqrt(1 - ((n - a) / a)**2)) / I0(beta)``, ``a = (N - 1) / 2``."""
    beta = float(_number(beta, "kaiser_window", "beta"))

    def values(n, length):
        half = (length - 1) / 2.0
        r = (1.0 - ((n - half) / half) ** 2).clamp(min=0.0)
        return (r.sqrt() * beta).i0() / Tensor._wrap(B.full((), beta, _F64)).i0()

    return _window("kaiser_window", window_length, periodic, dtype, requires_grad, values)


# ---- numerics ------------------------------------------------------------------------------
def _as_float(t):
    """``t`` itself when float or complex, else float32 (torch's integer-input rule for these functions)."""
    return t if t.dtype.differentiable else t.to(dtypes.default_float)


def _dim(dim, ndim, what):
    if isinstance(dim, bool) or not isinstance(dim, int):
        raise TypeError(f"{what}(): dim must be an int, got {type(dim).__name__}")
    if ndim == 0 or not -ndim <= dim < ndim:
        raise IndexError(f"{what}(): Dimension out of range (expected to be in range of "
                         f"[{-max(ndim, 1)}, {max(ndim, 1) - 1}], but got {dim})")
    return dim % ndim


def _trapezoids(y, x, dx, dim, what):
    """The areas of the trapezoids along ``dim`` (size ``n - 1`` there) and ``dim`` made positive."""
    if not isinstance(y, Tensor):
        raise TypeError(f"{what}(): argument 'y' must be a Tensor, not {type(y).__name__}")
    if x is not None and not isinstance(x, Tensor):     # torch's argument parser: before the dtype checks
        raise TypeError(f"{what}(): argument 'x' must be a Tensor, not {type(x).__name__}")
    if x is not None and dx is not None:
        raise TypeError(f"{what}(): takes x or dx, not both")
    if y.dtype == dtypes.bool_ or (isinstance(x, Tensor) and x.dtype == dtypes.bool_):
        who = "`y`" if y.dtype == dtypes.bool_ else "`x` or `y`"
        raise RuntimeError(f"{what}: received a bool input for {who}, but bool is not supported")
    refuse("add_stub", y, x)      # uint16/32/64: torch's sums and differences have no kernel for them
    dim = _dim(dim, y.ndim, what)
    n = y.shape[dim]
    y = _as_float(y)
    if x is None:
        step = 1 if dx is None else _number(dx, what, "dx")
        if n == 0:
            return y.narrow(dim, 0, 0), dim
        return (y.narrow(dim, 1, n - 1) + y.narrow(dim, 0, n - 1)) * (0.5 * step), dim
    x = _as_float(x)
    if x.ndim == 1:
        if x.shape[0] != n:
            raise RuntimeError(f"{what}: There must be one `x` value for each sample point "
                               f"(x has {x.shape[0]}, y has {n} along dim {dim})")
        spacing = x.diff().reshape((-1,) + (1,) * (y.ndim - 1 - dim))
    else:
        if x.ndim > y.ndim:
            x_dim = dim + x.ndim - y.ndim
        else:
            x_dim = dim - (y.ndim - x.ndim)
        if x_dim < 0 or x.shape[x_dim] != n:
            raise RuntimeError(f"{what}: There must be one `x` value for each sample point "
                               f"(x has shape {x.shape}, y has {n} points along dim {dim})")
        spacing = x.diff(dim=x_dim)
    if n == 0:
        return (y.narrow(dim, 0, 0) * spacing), dim
    y, spacing = promoted([y, spacing])
    return (y.narrow(dim, 1, n - 1) + y.narrow(dim, 0, n - 1)) * spacing * 0.5, dim


def trapezoid(y, x=None, *, dx=None, dim=-1):
    """The integral of ``y`` along ``dim`` by the trapezoidal rule, at the points ``x`` (1-D of
    ``y.shape[dim]`` points, or a tensor that broadcasts with ``y``) or evenly ``dx`` apart
    (default 1). Shape: ``y``'s without ``dim``; float32 for integer ``y``."""
    parts, d = _trapezoids(y, x, dx, dim, "trapezoid")
    return parts.sum(d)


def trapz(y, x=None, *, dx=None, dim=-1):
    """``trapezoid`` (torch's older name)."""
    parts, d = _trapezoids(y, x, dx, dim, "trapz")
    return parts.sum(d)


def cumulative_trapezoid(y, x=None, *, dx=None, dim=-1):
    """The running trapezoidal integral of ``y`` along ``dim``: ``y.shape[dim] - 1`` values
    there (the integral up to each point after the first)."""
    parts, d = _trapezoids(y, x, dx, dim, "cumulative_trapezoid")
    return parts.cumsum(d)


def cov(input, *, correction=1, fweights=None, aweights=None):  # noqa: A002
    """The covariance matrix of the variables in the rows of ``input`` (``(V, N)``: V
    variables, N observations; 1-D: one variable), shape ``(V, V)`` (0-d for one variable).
    ``correction`` is subtracted from the number of observations (1: Bessel's); ``fweights``
    (integer) repeat observations, ``aweights`` (float) weigh them, as numpy's and torch's."""
    if not isinstance(input, Tensor):
        raise TypeError(f"cov(): argument 'input' must be a Tensor, not {type(input).__name__}")
    if input.ndim > 2:
        raise RuntimeError(f"cov(): expected input to have two or fewer dimensions but got an input with "
                           f"{input.ndim} dimensions")
    if input.dtype == dtypes.bool_:
        raise RuntimeError("cov(): bool dtype is not supported for input")
    if isinstance(correction, bool) or not isinstance(correction, int):
        raise TypeError(f"cov(): argument 'correction' must be int, not {type(correction).__name__}")
    x = input if input.dtype.is_complex else _as_float(input)
    x = x.reshape(1, -1) if x.ndim < 2 else x
    n = x.shape[1]
    w = None
    if fweights is not None:
        _weights(fweights, "fweights", n, integral=True)
        w = fweights
    if aweights is not None:
        _weights(aweights, "aweights", n, integral=False)
        w = aweights if w is None else w * aweights
    if w is None:
        w_sum = float(n)
        avg = x.mean(1) if n else x.sum(1) * math.nan
    else:
        x, w = promoted([x, w])
        w = w.real          # weights of a complex input stay real (torch's real normalizer)
        w_sum = w.sum()
        if not bool(w_sum != 0):
            raise RuntimeError("cov(): weights sum to zero, can't be normalized")
        avg = (x * w).sum(1) / w_sum
    if w is not None and aweights is not None and correction != 0:
        norm = w_sum - correction * (w * aweights.to(w.dtype)).sum() / w_sum
    else:
        norm = w_sum - correction
    if float(norm) <= 0:     # as torch: warn, then divide by 0 (inf or NaN)
        warnings.warn("cov(): degrees of freedom is <= 0. Correction should be strictly less than the number of "
                      "observations.", UserWarning, stacklevel=2)
        norm = norm - norm if isinstance(norm, Tensor) else 0.0     # +0: torch's inf keeps the sign of c
    xm = x - avg.unsqueeze(1)
    xw = (xm if w is None else xm * w).t()
    c = xm.mm(xw.conj() if xw.dtype.is_complex else xw)
    return (c / norm).squeeze()


def _weights(w, name, n, integral):
    if not isinstance(w, Tensor):
        raise TypeError(f"cov(): {name} must be a Tensor, not {type(w).__name__}")
    if w.ndim > 1:
        raise RuntimeError(f"cov(): expected {name} to have one or fewer dimensions but got {name} with "
                           f"{w.ndim} dimensions")
    if w.numel() != n:
        raise RuntimeError(f"cov(): expected {name} to have the same numel as there are observations in the "
                           f"input but got {w.numel()} != {n}")
    if integral and w.dtype.is_floating_point:
        raise RuntimeError(f"cov(): expected fweights to have integral dtype but got fweights with {w.dtype!r}")
    if not integral and not w.dtype.is_floating_point:
        raise RuntimeError(f"cov(): expected aweights to have floating point dtype but got aweights with "
                           f"{w.dtype!r}")
    if w.numel() and bool((w < 0).any()):
        raise RuntimeError(f"cov(): {name} cannot be negative")


def corrcoef(input):  # noqa: A002
    """Pearson's correlation coefficients of the variables in the rows of ``input`` (as
    ``cov``), shape ``(V, V)``, clipped into [-1, 1]; 0-d for one variable."""
    c = cov(input)
    if c.ndim == 0:
        return c / c
    if c.dtype.is_complex:        # torch's: the real diagonal's root, each part clipped into [-1, 1]
        std = c.diagonal().real.sqrt()
        c = c / std.unsqueeze(1) / std.unsqueeze(0)
        return gt_complex(c.real.clamp(-1.0, 1.0), c.imag.clamp(-1.0, 1.0))
    std = c.diagonal().sqrt()
    c = c / std.unsqueeze(1) / std.unsqueeze(0)
    return c.clamp(-1.0, 1.0)


def vander(x, N=None, increasing=False):
    """The Vandermonde matrix of the 1-D ``x``: ``N`` columns (default ``len(x)``) of the powers
    ``x**(N-1), ..., x, 1`` (``increasing``: ``1, x, ..., x**(N-1)``). Shape ``(len(x), N)``;
    integer and bool ``x`` give int64, as torch."""
    if not isinstance(x, Tensor):
        raise TypeError(f"vander(): argument 'x' must be a Tensor, not {type(x).__name__}")
    if x.ndim != 1:
        raise RuntimeError(f"x must be a one-dimensional tensor (got {x.ndim} dimensions)")
    n = x.shape[0] if N is None else N
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"vander(): N must be an int, got {type(n).__name__}")
    if n < 0:
        raise RuntimeError(f"N must be non-negative (got N={n})")
    if not x.dtype.is_floating_point:
        if x.dtype in dtypes.WIDE_UINTS:    # torch promotes x with its int64 powers: refused for these
            raise RuntimeError("Promotion for uint16, uint32, uint64 types is not supported, attempted to promote "
                               f"{dtypes.torch_type_name(x.dtype.name)} and Long")
        x = x.to(dtypes.int64)
    if n == 0:
        return (x.unsqueeze(1) * 0)[:, :0]
    cols = [x * 0 + 1]
    for _ in range(n - 1):       # one product per column: exact gradients at x = 0 too
        cols.append(cols[-1] * x)
    if not increasing:
        cols.reverse()
    return stack(cols, 1)


def gradient(input, *, spacing=1, dim=None, edge_order=1):  # noqa: A002
    """torch.gradient: the derivative of ``input`` along each of ``dim`` (default all dims) by
    central differences inside and one-sided ones of ``edge_order`` (1 or 2) at the ends, as a
    tuple of tensors shaped as ``input``. ``spacing``: a number (the step of every dim), a list
    of numbers (one per dim) or a list of 1-D coordinate tensors (one per dim, uneven steps)."""
    if not isinstance(input, Tensor):
        raise TypeError(f"gradient(): argument 'input' must be a Tensor, not {type(input).__name__}")
    if edge_order not in (1, 2) or isinstance(edge_order, bool):
        raise RuntimeError("torch.gradient only supports edge_order=1 and edge_order=2.")
    spacing = 1 if spacing is None else spacing       # torch's signature spells the default None
    if dim is None:
        dims = list(range(input.ndim))
    else:
        dims = [dim] if isinstance(dim, int) else list(dim)
        dims = [_dim(d, input.ndim, "gradient") for d in dims]
        if len(set(dims)) != len(dims):
            raise RuntimeError(f"gradient(): dim {dim} appears more than once")
    if isinstance(spacing, (list, tuple)):
        if len(spacing) != len(dims):
            if dim is None:
                raise RuntimeError(f"torch.gradient expected spacing to be unspecified, a scalar, or a list of "
                                   f"length equal to 'self.dim() = {input.ndim}', since dim argument was not "
                                   f"given, but got a list of length {len(spacing)}")
            raise RuntimeError(f"torch.gradient expected spacing to be unspecified, a scalar or it's spacing and "
                               f"dim arguments to have the same length, but got a spacing argument of length "
                               f"{len(spacing)} and a dim argument of length {len(dims)}.")
        steps = list(spacing)
    elif isinstance(spacing, Tensor):
        raise TypeError("gradient(): spacing must be a number or a list (of numbers or of 1-D coordinate "
                        "tensors), not a Tensor; pass (coordinates,)")
    else:
        steps = [_number(spacing, "gradient", "spacing")] * len(dims)
    for d in dims:
        if input.shape[d] < edge_order + 1:
            raise RuntimeError("torch.gradient expected each dimension size to be at least edge_order+1 "
                               f"(dim {d} has size {input.shape[d]}, edge_order={edge_order})")
    f = _as_float(input)
    out = []
    for d, h in zip(dims, steps):
        if isinstance(h, Tensor):
            if h.ndim != 1 or h.shape[0] != f.shape[d]:
                raise RuntimeError(f"gradient(): the coordinates of dim {d} must be 1-D with {f.shape[d]} "
                                   f"values, got shape {h.shape}")
            out.append(_gradient_coords(f, d, _as_float(h), edge_order))
        else:
            out.append(_gradient_even(f, d, float(_number(h, "gradient", "spacing")), edge_order))
    return tuple(out)


def _gradient_even(f, d, h, edge_order):
    n = f.shape[d]

    def s(start, length=1):
        return f.narrow(d, start % n, length)

    inner = (s(2, n - 2) - s(0, n - 2)) / (2 * h)
    if edge_order == 1:
        first = (s(1) - s(0)) / h
        last = (s(-1) - s(-2)) / h
    else:
        first = (s(0) * -1.5 + s(1) * 2.0 - s(2) * 0.5) / h
        last = (s(-3) * 0.5 - s(-2) * 2.0 + s(-1) * 1.5) / h
    return cat([first, inner, last], d)


def _gradient_coords(f, d, x, edge_order):
    """numpy's and torch's second-order-accurate differences on the uneven points ``x``."""
    n = f.shape[d]
    f, x = promoted([f, x])
    shape = [1] * f.ndim
    shape[d] = -1

    def s(start, length=1):
        return f.narrow(d, start % n, length)

    def view(t):
        return t.reshape(shape)

    h = x.diff()
    h1, h2 = view(h.narrow(0, 0, n - 2)), view(h.narrow(0, 1, n - 2))
    a = -h2 / (h1 * (h1 + h2))
    b = (h2 - h1) / (h1 * h2)
    c = h1 / (h2 * (h1 + h2))
    inner = a * s(0, n - 2) + b * s(1, n - 2) + c * s(2, n - 2)
    if edge_order == 1:
        first = (s(1) - s(0)) / view(h.narrow(0, 0, 1))
        last = (s(-1) - s(-2)) / view(h.narrow(0, n - 2, 1))
    else:
        g1, g2 = view(h.narrow(0, 0, 1)), view(h.narrow(0, 1, 1))
        first = (-(2 * g1 + g2) / (g1 * (g1 + g2))) * s(0) + ((g1 + g2) / (g1 * g2)) * s(1) \
            + (-g1 / (g2 * (g1 + g2))) * s(2)
        g1, g2 = view(h.narrow(0, n - 3, 1)), view(h.narrow(0, n - 2, 1))
        last = (g2 / (g1 * (g1 + g2))) * s(-3) + (-(g2 + g1) / (g1 * g2)) * s(-2) \
            + ((2 * g2 + g1) / (g2 * (g1 + g2))) * s(-1)
    return cat([first, inner, last], d)


# torch's Tensor.cov / Tensor.corrcoef: the functions above as methods (here, since this module
# imports the tensor class)
def _cov_method(self, *, correction=1, fweights=None, aweights=None):
    """``gt.cov(self, ...)``: the covariance of the rows (variables) over the columns."""
    return cov(self, correction=correction, fweights=fweights, aweights=aweights)


def _corrcoef_method(self):
    """``gt.corrcoef(self)``: the correlation coefficients of the rows."""
    return corrcoef(self)


Tensor.cov, Tensor.corrcoef = _cov_method, _corrcoef_method
