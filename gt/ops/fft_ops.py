"""The discrete Fourier transforms as differentiable ops (``gt.fft``: gt/fft.py).

Three ops cover torch.fft: ``FFT`` (complex to complex over one or more axes, forward or
inverse), ``RFFT`` (real to the non-negative frequencies, one axis) and ``IRFFT`` (its inverse,
to a real signal); the others are composed of these and ``conj`` in gt/fft.py.

Gradients are torch's (the conjugate convention, gt/ops/complex_ops.py): a complex-linear map's
gradient is its adjoint applied to ``g``. The adjoint of a transform with norm ``X`` is the
opposite transform with the dual norm (``backward`` <-> ``forward``, ``ortho`` itself), then each
axis cut or zero-padded back to the input's length. ``irfft``'s is torch's: ``rfft`` of ``g``
with the frequencies that stand for two (their conjugates) doubled.

The recorded gradients (``backward_graph``, ``create_graph=True``) are these maps written with the
ops here (``FitLength`` and ``Doubled`` for the cut and the doubling): a linear map's gradient is
linear in ``g`` alone, so its second derivative is the forward map again, and every op on the way
is ``complex_graph`` (gt/autograd/graph_walk.py).
"""

from gt.autograd import Function
from gt.backend import B
from gt.ops.complex_ops import Real

_DUAL = {"backward": "forward", "forward": "backward", "ortho": "ortho"}


def fit_length(x, axis, n):
    """``x`` cut to ``n`` along ``axis``, or zero-padded to it at the end."""
    have = x.shape[axis]
    if have == n:
        return x
    index = (slice(None),) * (axis % x.ndim)
    if have > n:
        return B.ascontiguous(B.getitem(x, index + (slice(0, n),)))
    pad_shape = tuple(x.shape[:axis % x.ndim]) + (n - have,) + tuple(x.shape[axis % x.ndim + 1:])
    return B.concatenate([x, B.zeros(pad_shape, B.dtype_of(x))], axis % x.ndim)


def _fit(x, axis, n):
    """The tensor ``x`` cut or zero-padded to ``n`` along ``axis``, recorded."""
    return x if x.shape[axis] == n else FitLength.apply(x, axis, n)


class FitLength(Function):
    """``x`` cut or zero-padded to ``n`` along ``axis`` (``fit_length``); its gradient is the
    gradient cut or padded back, the same op."""

    complex_graph = True

    def forward(self, x, axis, n):
        self.axis, self.in_len = axis, x.shape[axis]
        return fit_length(x, axis, n)

    def backward(self, g):
        return (fit_length(g, self.axis, self.in_len),)

    def backward_graph(self, g):
        return (FitLength.apply(g, self.axis, self.in_len),)


class Doubled(Function):
    """``x`` with ``count`` entries from index 1 along ``axis`` doubled (``irfft``'s gradient:
    the frequencies whose conjugates it also reads); self-adjoint."""

    complex_graph = True

    def forward(self, x, axis, count):
        self.axis, self.count = axis, count
        scale = B.ones((x.shape[axis],), B.dtype_of(x))
        scale[1:1 + count] = 2
        shape = [1] * x.ndim
        shape[axis] = x.shape[axis]
        self.scale = B.reshape(scale, tuple(shape))
        return x * self.scale

    def backward(self, g):
        return (g * self.scale,)

    def backward_graph(self, g):
        return (Doubled.apply(g, self.axis, self.count),)


class FFT(Function):
    """``fftn`` (``inverse``: ``ifftn``) of ``x`` over ``axes`` with output lengths ``sizes``."""

    complex_graph = True

    def forward(self, x, sizes, axes, norm, inverse=False):
        self.in_sizes = tuple(x.shape[a] for a in axes)
        self.axes, self.norm, self.inverse = axes, norm, inverse
        kind = "ifftn" if inverse else "fftn"
        return B.fft(kind, x, sizes, axes, norm)

    def backward(self, g):
        kind = "fftn" if self.inverse else "ifftn"
        grad = B.fft(kind, g, (None,) * len(self.axes), self.axes, _DUAL[self.norm])
        for axis, n in zip(self.axes, self.in_sizes):
            grad = fit_length(grad, axis, n)
        return (grad,)

    def backward_graph(self, g):
        grad = FFT.apply(g, (None,) * len(self.axes), self.axes, _DUAL[self.norm], not self.inverse)
        for axis, n in zip(self.axes, self.in_sizes):
            grad = _fit(grad, axis, n)
        return (grad,)


class RFFT(Function):
    """``rfft`` of the real ``x`` along ``axis`` with signal length ``n`` (None: ``x``'s)."""

    complex_graph = True

    def forward(self, x, n, axis, norm):
        self.in_len, self.axis, self.norm = x.shape[axis], axis, norm
        self.n = self.in_len if n is None else n
        return B.fft("rfft", x, (n,), (axis,), norm)

    def backward(self, g):
        # the adjoint of "the first n // 2 + 1 frequencies of the full transform"
        full = fit_length(g, self.axis, self.n)
        grad = B.real(B.fft("ifft", full, (None,), (self.axis,), _DUAL[self.norm]))
        return (fit_length(B.ascontiguous(grad), self.axis, self.in_len),)

    def backward_graph(self, g):
        full = _fit(g, self.axis, self.n)
        grad = Real.apply(FFT.apply(full, (None,), (self.axis,), _DUAL[self.norm], True))
        return (_fit(grad.contiguous(), self.axis, self.in_len),)


class IRFFT(Function):
    """``irfft`` of the complex ``x`` along ``axis``, ``n`` real values out (None:
    ``2 * (m - 1)`` for ``m`` inputs)."""

    complex_graph = True

    def forward(self, x, n, axis, norm):
        self.in_len, self.axis, self.norm = x.shape[axis], axis, norm
        out = B.fft("irfft", x, (n,), (axis,), norm)
        self.n = out.shape[axis]
        return out

    def backward(self, g):
        grad = B.fft("rfft", g, (None,), (self.axis,), _DUAL[self.norm])
        half = grad.shape[self.axis]
        double = self.n - half          # the frequencies whose conjugates irfft also read
        if double > 0:
            scale = B.ones((half,), B.dtype_of(g))
            scale[1:1 + double] = 2
            shape = [1] * grad.ndim
            shape[self.axis] = half
            grad = grad * B.reshape(scale, tuple(shape))
        return (fit_length(grad, self.axis, self.in_len),)

    def backward_graph(self, g):
        grad = RFFT.apply(g, None, self.axis, _DUAL[self.norm])
        double = self.n - grad.shape[self.axis]
        if double > 0:
            grad = Doubled.apply(grad, self.axis, double)
        return (_fit(grad, self.axis, self.in_len),)
