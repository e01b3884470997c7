"""Reductions over ``axis=None | int | tuple`` with ``keepdims``. ``axis`` arrives normalised
(None or a sorted tuple of non-negative axes; see gt.ops._shapes.normalize_axes)."""

from gt.autograd import Function
from gt.backend import B
from gt.ops._graph import expand_back, mask_like, result
from gt.ops._shapes import numel


def _keepdims_shape(shape, axis):
    if axis is None:
        return (1,) * len(shape)
    return tuple(1 if i in axis else n for i, n in enumerate(shape))


class Sum(Function):
    # torch's nodes: SumBackward0 sums everything, SumBackward1 over dims
    complex_graph = True
    _torch_name = property(lambda self: "SumBackward0" if self.axis is None else "SumBackward1")

    def forward(self, x, axis=None, keepdims=False):
        self.in_shape, self.axis, self.keepdims = tuple(x.shape), axis, keepdims
        return B.sum(x, axis=axis, keepdims=keepdims)

    def backward(self, g):
        if not self.keepdims:
            g = B.reshape(g, _keepdims_shape(self.in_shape, self.axis))
        return (B.broadcast_to(g, self.in_shape),)

    def backward_graph(self, g):
        return (expand_back(g, self.in_shape, self.axis, self.keepdims),)


class Mean(Function):
    complex_graph = True
    _torch_name = property(lambda self: "MeanBackward0" if self.axis is None else "MeanBackward1")

    def forward(self, x, axis=None, keepdims=False):
        self.in_shape, self.axis, self.keepdims = tuple(x.shape), axis, keepdims
        return B.mean(x, axis=axis, keepdims=keepdims)

    def backward(self, g):
        shape = _keepdims_shape(self.in_shape, self.axis)
        count = numel(self.in_shape) // max(numel(shape), 1) if numel(self.in_shape) else 1
        if not self.keepdims:
            g = B.reshape(g, shape)
        return (B.broadcast_to(g / count, self.in_shape),)

    def backward_graph(self, g):
        shape = _keepdims_shape(self.in_shape, self.axis)
        count = numel(self.in_shape) // max(numel(shape), 1) if numel(self.in_shape) else 1
        return (expand_back(g / count, self.in_shape, self.axis, self.keepdims),)


class _SavedReduction(Function):
    """A reduction whose backward reads its input and its output (kept with the reduced axes):
    subclasses give ``kept(x, axis)`` and ``grad(x, out, g)``, ``g`` shaped as ``out``."""

    def forward(self, x, axis=None, keepdims=False):
        out = self.kept(x, axis)
        self.axis, self.keepdims = axis, keepdims
        self.save(x, out)
        return out if keepdims else B.reshape(out, tuple(n for i, n in enumerate(x.shape)
                                                        if axis is not None and i not in axis))

    def backward(self, g):
        x, out = self.saved
        if not self.keepdims:
            g = B.reshape(g, tuple(out.shape))
        return (self.grad(x, out, g),)

    def backward_graph(self, g):
        x, out = self.saved
        return (self.grad_graph(x, out, expand_back(g, tuple(x.shape), self.axis, self.keepdims)),)


class _Extremum(_SavedReduction):
    """max/min: the gradient goes to the positions that hold the extremum, split evenly among ties."""

    reduce = None
    nan_grad = True     # NaN over a slice whose extremum is NaN (amax); False: 0 there (the inf-norms)

    def kept(self, x, axis):
        return getattr(B, self.reduce)(x, axis=axis, keepdims=True)

    def _hits(self, x, out):
        """The positions holding the extremum and their count per slice (in x's dtype, not int64).
        A NaN extremum: torch's max()/min() over every element send the gradient to the NaNs;
        amax/amin over dims compare with ``==``, find none, and give NaN (``0 * (g / 0)``) over
        that slice, as torch's."""
        hit = x == out
        if self.axis is None and self.nan_grad:
            hit = B.where(out != out, x != x, hit)
        return hit, B.astype(B.sum(hit, axis=self.axis, keepdims=True), B.dtype_of(x))

    def _times_mask(self):
        """torch's amax/amin over dims multiply the gradient by the mask (NaN where a slice's
        extremum is NaN, and 0 * inf is NaN); its max()/min() over every element and the inf-norms
        fill it (0 off the extremum, whatever the gradient)."""
        return self.nan_grad and self.axis is not None

    def grad(self, x, out, g):
        hit, count = self._hits(x, out)
        with B.quiet_float_errors():
            return hit * (g / count) if self._times_mask() else B.where(hit, g / count, 0)

    def grad_graph(self, x, out, g):
        hit, count = self._hits(x, out)
        with B.quiet_float_errors():
            weights = hit * (1 / count) if self._times_mask() else B.where(hit, 1 / count, 0)
        return g * mask_like(g, weights)


class Max(_Extremum):
    reduce = "max"
    _torch_name = property(lambda self: "MaxBackward1" if self.axis is None else "AmaxBackward0")


class Min(_Extremum):
    reduce = "min"
    _torch_name = property(lambda self: "MinBackward1" if self.axis is None else "AminBackward0")


class NormMax(Max):
    """The inf-norm's max of ``|x|``: torch's gradient over a NaN slice is 0 (``sgn(NaN)``)."""
    nan_grad = False
    _torch_name = "LinalgVectorNormBackward0"


class NormMin(Min):
    nan_grad = False
    _torch_name = "LinalgVectorNormBackward0"


class Norm2(_SavedReduction):
    """The 2-norm ``sqrt(sum(x * x))`` over ``axis`` (a tuple, or None: all). Its gradient is
    ``x / norm``, and 0 where the norm is 0 (torch's choice; the composed ops would give NaN)."""

    _torch_name = "LinalgVectorNormBackward0"

    def kept(self, x, axis):
        return B.norm2(x, axis)      # torch's kernel on the torch engine

    def grad(self, x, out, g):
        return B.where(out == 0, 0, x * (g / B.where(out == 0, 1, out)))

    def grad_graph(self, x, out, g):
        t = self.inputs[0]
        norm = Norm2.apply(t, self.axis, True)
        zero = out == 0
        return g * mask_like(g, ~zero) * t / (norm + mask_like(g, zero))


class NormP(_SavedReduction):
    """The ``p``-norm ``sum(|x| ** p) ** (1 / p)`` over ``axis`` for a number ``p`` other than 0,
    2 and +-inf, with torch's gradient ``sign(x) |x|^(p-1) g / norm^(p-1)``: 0 where the norm is 0
    and, for ``p < 1``, 0 at the zero entries, where the composed ops would give ``inf * 0`` (NaN)."""

    def forward(self, x, p, axis=None, keepdims=False):
        self.p = p
        with B.quiet_float_errors():
            return super().forward(x, axis, keepdims)

    def kept(self, x, axis):
        return B.sum(B.abs(x) ** self.p, axis=axis, keepdims=True) ** (1.0 / self.p)

    def grad(self, x, out, g):
        p = self.p
        with B.quiet_float_errors():
            if p < 1:
                scaled = B.sign(x) * B.where(x == 0, 0, B.abs(x) ** (p - 1))
                return scaled * (g * out ** (1 - p))
            return B.sign(x) * B.abs(x) ** (p - 1) * B.where(out == 0, 0, g / B.where(out == 0, 1, out) ** (p - 1))

    def grad_graph(self, x, out, g):
        t, p = self.inputs[0], self.p
        norm = NormP.apply(t, p, self.axis, True)
        with B.quiet_float_errors():
            if p < 1:
                zero_x = x == 0
                scaled = t.sign() * mask_like(g, ~zero_x) * (t.abs() + mask_like(g, zero_x)) ** (p - 1)
                return scaled * g * norm ** (1 - p)
            zero = out == 0
            return t.sign() * t.abs() ** (p - 1) * g * mask_like(g, ~zero) / (norm + mask_like(g, zero)) ** (p - 1)


class StdFromVar(Function):
    """``sqrt(var)``: torch's std, whose gradient is 0 where the std is 0 (a constant slice),
    where sqrt's ``g / (2 * 0)`` times the variance's zero gradient would be NaN."""

    _torch_name = "StdBackward0"

    def forward(self, var):
        with B.quiet_float_errors():
            out = B.sqrt(var)
        self.save(out)
        return out

    def backward(self, g):
        out = self.saved[0]
        with B.quiet_float_errors():
            return (B.where(out == 0, 0, g / (2 * B.where(out == 0, 1, out))),)

    def backward_graph(self, g):
        zero = self.saved[0] == 0
        std = StdFromVar.apply(self.inputs[0])
        return (g * mask_like(g, ~zero) / (2 * std + mask_like(g, zero)),)


class NormCount(Function):
    """The 0-"norm": how many elements over ``axis`` are not 0 (NaN counts), in ``x``'s dtype. On the
    tape, as torch's (it requires grad), with no gradient: torch's norm backward leaves p = 0 out,
    so ``.grad`` stays None and ``autograd.grad`` says the input was not used; a zero tangent."""

    complex_graph = True
    _torch_name = "LinalgVectorNormBackward0"

    def forward(self, x, axis=None, keepdims=False):
        out = B.sum(B.astype(x != 0, B.dtype_of(x)), axis=axis, keepdims=keepdims)
        self.count_shape = tuple(out.shape)
        return out

    def backward(self, g):
        return (None,)

    def backward_graph(self, g):
        return (None,)

    def tangent(self, tx, *_):
        return B.zeros(self.count_shape, B.dtype_of(tx))


class LogSumExp(_SavedReduction):
    """``log(sum(exp(x)))`` over ``axis``, shifted by the largest real part (0 where that is
    infinite, and over no element: -inf). torch's LogsumexpBackward0: ``g * conj(exp(x - out))``,
    reading the saved input and result, so that a backward after ``x.data = new`` (or
    ``x.data.copy_(new)``) reads the new input beside the result of then, as torch's."""

    complex_graph = "holomorphic"      # the recorded formula is written without conjugates
    _torch_name = "LogsumexpBackward0"

    def kept(self, x, axis):
        real = B.real(x) if B.dtype_of(x).is_complex else x
        if numel(x.shape) == 0:
            shift = B.sum(real, axis=axis, keepdims=True)
        else:
            shift = B.max(real, axis=axis, keepdims=True)
            shift = B.where(B.abs(shift) == float("inf"), 0, shift)
        with B.quiet_float_errors():
            return B.log(B.sum(B.exp(x - shift), axis=axis, keepdims=True)) + shift

    def grad(self, x, out, g):
        with B.quiet_float_errors():
            return g * B.conj(B.exp(x - out))

    def grad_graph(self, x, out, g):
        # the result as torch's formula reads it: the output node (kept dims), gradients meeting there
        with B.quiet_float_errors():       # inf - inf in a row of infinities: NaN, as torch's
            return g * (self.inputs[0] - result(self, out)).exp()

    def tangent(self, tx, *_):
        x, out = self.saved
        with B.quiet_float_errors():
            return B.sum(tx * B.exp(x - out), axis=self.axis, keepdims=self.keepdims)
