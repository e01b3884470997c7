"""Activations and the numerically stable softmax family."""

import math

from gt.autograd import Function
from gt import dtypes
from gt.backend import B
from gt.ops._graph import const, mask_like, result
from gt.ops.elementwise import Clip, Maximum, Where


class Relu(Function):
    grad_reads_input = "again"  # its recorded gradients require grad at every order, as torch's (graph_walk.py)

    def forward(self, x):
        out = B.relu(x)
        self.save(out)
        return out

    def backward(self, g):
        return (B.relu_backward(g, self.saved[0]),)

    def backward_graph(self, g):
        return (g * mask_like(g, ~(self.saved[0] <= 0)),)   # a NaN output passes, as in backward


_HALF = (dtypes.float16, dtypes.bfloat16)


def _opmath(g, out, fn):
    """``fn(g, out)``, in float32 and rounded once for float16/bfloat16 ``out``, as torch's CPU kernels
    (in float16, ``1 - out * out`` near 1 cancels: tanh's gradient was off by up to 10%)."""
    dt = B.dtype_of(out)
    if dt not in _HALF:
        return fn(g, out)
    return B.astype(fn(B.astype(g, dtypes.float32), B.astype(out, dtypes.float32)), dt)


class Sigmoid(Function):
    complex_graph = "holomorphic"

    def forward(self, x):
        out = B.sigmoid(x)
        self.save(out)
        return out

    def backward(self, g):
        return (_opmath(g, self.saved[0], lambda g, out: g * B.conj(out * (1 - out))),)

    def backward_graph(self, g):
        s = result(self, self.saved[0])     # torch's: the result, so ``x`` may change after
        return (g * (s * (1 - s)),)


class Tanh(Function):
    complex_graph = "holomorphic"

    def forward(self, x):
        out = B.tanh(x)
        self.save(out)
        return out

    def backward(self, g):
        return (_opmath(g, self.saved[0], lambda g, out: g * B.conj(1 - out * out)),)

    def backward_graph(self, g):
        t = result(self, self.saved[0])
        return (g * (1 - t ** 2),)      # t read once: one gradient into the result, as torch's tanh_backward


_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)


class Gelu(Function):
    """``x * Phi(x)`` with the exact normal CDF (torch's default), or its tanh approximation.

    The exact form keeps only its derivative for the backward pass, computed with the values by
    the engine (``B.gelu_with_grad``), which shares the normal density between the two."""

    def forward(self, x, approximate="none"):
        self.approximate = approximate
        if approximate == "tanh":
            dt = B.dtype_of(x)
            # float16/bfloat16 in float32, as torch's CPU kernels: x ** 3 and x * x overflow float16
            # from about 40 and 256 on, which made the gradient 0 * inf = NaN there
            half = dt in _HALF
            x = B.astype(x, dtypes.float32) if half else x
            inner = _SQRT_2_OVER_PI * (x + 0.044715 * x * x * x)
            t = B.tanh(inner)
            self.save(x, t)
            self.half = dt if half else None
            out = 0.5 * x * (1 + t)
            return B.astype(out, dt) if half else out
        out, grad = B.gelu_with_grad(x)
        self.save(grad)
        return out

    def backward(self, g):
        if self.approximate == "tanh":
            x, t = self.saved
            dinner = _SQRT_2_OVER_PI * (1 + 3 * 0.044715 * x * x)
            d = 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * dinner
            return (B.astype(B.astype(g, dtypes.float32) * d, self.half) if self.half else g * d,)
        return (g * self.saved[0],)

    def backward_graph(self, g):
        x = self.inputs[0]
        if self.approximate == "tanh":
            t = (_SQRT_2_OVER_PI * (x + 0.044715 * x * x * x)).tanh()
            dinner = _SQRT_2_OVER_PI * (1 + 3 * 0.044715 * x * x)
            return (g * (0.5 * (1 + t) + 0.5 * x * (1 - t * t) * dinner),)
        cdf = 0.5 * (1 + (x * _SQRT_HALF).erf())
        return (g * (cdf + x * (x * x * -0.5).exp() * _INV_SQRT_2PI),)


_SQRT_HALF = math.sqrt(0.5)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


class Softmax(Function):
    def forward(self, x, axis):
        self.axis = axis
        if 0 in x.shape:            # nothing to normalise (torch's answer: the empty tensor)
            out = B.copy(x)
            self.save(out)          # the result, as torch's (the input may change in place after the forward)
            return out
        with B.quiet_float_errors():   # a row of -inf (every key masked) is NaN, silently as torch's
            e = B.exp(x - B.max(x, axis=axis, keepdims=True))
            out = e / B.sum(e, axis=axis, keepdims=True)
        self.save(out)
        return out

    def backward(self, g):
        out = self.saved[0]
        return (out * (g - B.sum(g * out, axis=self.axis, keepdims=True)),)

    def backward_graph(self, g):
        out = result(self, self.saved[0])       # torch's: the result, not the input (it may change after)
        return (out * (g - (g * out).sum(dim=self.axis, keepdim=True)),)


class LogSoftmax(Function):
    def forward(self, x, axis):
        self.axis = axis
        if 0 in x.shape:
            out = B.copy(x)
            self.save(out)
            return out
        with B.quiet_float_errors():
            shifted = x - B.max(x, axis=axis, keepdims=True)
            out = shifted - B.log(B.sum(B.exp(shifted), axis=axis, keepdims=True))
        self.save(out)
        return out

    def backward(self, g):
        out = self.saved[0]
        return (g - B.exp(out) * B.sum(g, axis=self.axis, keepdims=True),)

    def backward_graph(self, g):
        out = result(self, self.saved[0])
        return (g - out.exp() * g.sum(dim=self.axis, keepdim=True),)


def _clamped_log(x):
    """max(log(x), -100) without ever taking log(0) (torch's clamp of BCE's logs)."""
    pos = x > 0
    return B.where(pos, B.maximum(B.log(B.where(pos, x, 1)), -100), -100)


class BinaryCrossEntropy(Function):
    """Elementwise ``-[y * log(x) + (1 - y) * log(1 - x)]`` of probabilities ``x`` and targets
    ``y``, each log clamped at -100 as in torch (x = 0 or 1 gives a finite loss). The gradient in
    x is torch's ``(x - y) / max(x (1 - x), 1e-12)``, finite at 0 and 1 too."""

    def forward(self, x, y):
        lx, l1x = _clamped_log(x), _clamped_log(1 - x)
        self.save(x, y, lx, l1x)
        return B.iterator_layout(-(y * lx + (1 - y) * l1x), x, y)     # (y first: torch's is x's layout)

    def backward(self, g):
        x, y, lx, l1x = self.saved
        nx, ny = self.needs_input_grad
        gx = g * (x - y) / B.maximum(x * (1 - x), 1e-12) if nx else None
        gy = g * (l1x - lx) if ny else None
        return gx, gy

    def backward_graph(self, g):
        x, y = self.inputs
        nx, ny = self.needs_input_grad
        gx = g * (x - y) / (x * (1 - x)).clamp(min=1e-12) if nx else None
        return gx, (g * (_clamped_log_graph(1 - x) - _clamped_log_graph(x)) if ny else None)


def _clamped_log_graph(x):
    """``_clamped_log`` recorded: the mask of positive values is a constant."""
    pos = const(B.asarray(x._array > 0)) if x._array is not None else (x > 0)
    return Where.apply(pos, Maximum.apply(Where.apply(pos, x, 1.0).log(), -100.0), -100.0)


class BinaryCrossEntropyWithLogits(Function):
    """Elementwise ``-[pw * y * log(sigmoid(x)) + (1 - y) * log(1 - sigmoid(x))]`` of logits ``x``
    and targets ``y``, with torch's ``pos_weight`` ``pw`` (None: 1). Written as
    ``(1 - y) * x + (1 + (pw - 1) * y) * softplus(-x)``, where ``softplus(-x)`` is
    ``log(1 + exp(-|x|)) + max(-x, 0)``: no exp of a positive number, so large logits never
    overflow, and the gradient in x is ``(1 + (pw - 1) * y) * sigmoid(x) - pw * y`` everywhere
    (a composition of abs and max would get it wrong at x == 0)."""

    def forward(self, x, y, pos_weight=None):
        sp = B.log(1 + B.exp(-B.abs(x))) + B.maximum(-x, 0)
        self.save(x, y, pos_weight, sp)
        if pos_weight is None:
            return (1 - y) * x + sp
        return (1 - y) * x + (1 + (pos_weight - 1) * y) * sp

    def backward(self, g):
        x, y, pw, sp = self.saved
        nx, ny = self.needs_input_grad[:2]
        gx = gy = None
        if nx:
            s = B.sigmoid(x)
            gx = g * (s - y) if pw is None else g * ((1 + (pw - 1) * y) * s - pw * y)
        if ny:
            gy = g * -x if pw is None else g * ((pw - 1) * sp - x)
        return gx, gy, None   # pos_weight is a constant, as in torch

    def backward_graph(self, g):
        x, y = self.inputs[:2]
        pw = self.saved[2]
        nx, ny = self.needs_input_grad[:2]
        gx = gy = None
        if nx:
            s = x.sigmoid()
            gx = g * (s - y) if pw is None else g * ((1 + (const(pw) - 1) * y) * s - const(pw) * y)
        if ny:
            if pw is None:
                gy = g * -x
            else:
                sp = (1 + (-x.abs()).exp()).log() + Maximum.apply(-x, 0.0)
                gy = g * ((const(pw) - 1) * sp - x)
        return gx, gy, None


class SoftmaxCrossEntropy(Function):
    """Per-row cross-entropy of logits (N, C) and integer targets (N,) in [0, C): ``logsumexp(x_i)
    - x_i[t_i]`` -> (N,), one op instead of log_softmax, a class mask and a row sum. The forward
    keeps the softmax it computes on the way (one array as large as the logits, written in
    place), so the backward is ``(softmax - onehot(t)) * g``: two passes, no temporary.

    ``ignore_index`` (an int, keyword): targets equal to it give a loss of 0 and no gradient,
    for where nobody knows whether some target is ignored without reading them back (a GPU). Each
    target is then also clamped into [0, C) for the indexing: one out of range is reported by
    the value check queued beside it (gt.checks), never by a CUDA kernel. With it, ``mean=True``
    gives the mean over the kept rows (a 0-d result; NaN with a zero gradient when none is kept,
    as torch's 0 / 0), computed on the device in this one op instead of half a dozen."""

    def forward(self, x, target, ignore_index=None, mean=False):
        n = x.shape[0]
        self.keep = self.per_row = None
        if ignore_index is not None:
            self.keep = target != ignore_index                           # (N,) bool
            target = B.clip(B.where(self.keep, target, 0), 0, max(x.shape[1] - 1, 0))
        rows = B.arange(0, n, 1, "int64")
        top = B.max(x, axis=-1, keepdims=True)
        shifted = B.subtract(x, top)
        picked = B.getitem(shifted, (rows, target))                      # (N,)
        e = B.exp_(shifted)
        total = B.sum(e, axis=-1, keepdims=True)
        e /= total                                                       # the softmax, in place
        self.save(e, rows, target)
        loss = B.reshape(B.log(total), (n,)) - picked
        if self.keep is None:
            return loss
        loss = B.where(self.keep, loss, 0.0)
        if not mean:
            return loss
        count = B.astype(B.sum(self.keep), B.dtype_of(loss))
        some = count != 0
        count = B.where(some, count, 1.0)
        self.per_row = B.where(some, 1.0 / count, 0.0)                  # d(mean) / d(a kept row's loss)
        return B.where(some, B.sum(loss) / count, float("nan"))

    def backward(self, g):
        probs, rows, target = self.saved
        if self.keep is not None:
            if self.per_row is not None:
                g = B.multiply(B.reshape(g, ()), self.per_row)           # the mean's: one value for every row
            g = B.where(self.keep, g, 0.0)                               # an ignored row: no gradient
        gx = B.multiply(probs, B.reshape(g, (-1, 1)))
        B.setitem(gx, (rows, target), B.getitem(gx, (rows, target)) - g)  # minus onehot(t) * g
        return gx, None

    def backward_graph(self, g):
        probs, rows, target = self.saved
        onehot = B.zeros(tuple(probs.shape), B.dtype_of(probs))
        B.setitem(onehot, (rows, target), 1)
        if self.keep is not None:
            if self.per_row is not None:
                g = g.reshape(()) * const(self.per_row)
            g = Where.apply(const(self.keep), g, 0.0)
        return (Softmax.apply(self.inputs[0], -1) - mask_like(g, onehot)) * g.reshape((-1, 1)), None


class ExpBranchClip(Clip):
    """``x.clamp(max=0)`` inside the exponential branch ``alpha * (exp(x / k) - 1)`` of ELU, CELU and
    SELU: ``Clip``'s values and gradient (1 at x == 0, torch's first derivative there takes that
    branch), but the gradient it records for ``create_graph`` is ``g`` times a mask whose own
    derivative is ``-1 / k`` at x == 0, which cancels the branch's second derivative there: torch's
    second derivative of these activations is 0 at x == 0 (its elu_double_backward masks x < 0)."""

    _torch_name = "ClampBackward1"

    def forward(self, x, k):
        self.k = k
        return super().forward(x, None, 0.0)

    def backward_graph(self, g):
        inside = B.asarray(self._masks()[0])
        # selected, not multiplied: the exponential of a NaN input gives g NaN there, where torch's is 0
        return Where.apply(const(inside), g * _BranchMask.apply(self.inputs[0], B.astype(inside, g.dtype), self.k),
                           0.0), None


class _BranchMask(Function):
    """``mask`` (the branch's own, a constant), with the derivative in ``x`` that ``ExpBranchClip``
    needs: ``-1 / k`` at x == 0, 0 elsewhere (and NaN)."""

    def forward(self, x, mask, k):
        self.at_zero, self.k = x == 0, k
        return mask

    def backward(self, g):
        return (B.where(self.at_zero, g * (-1.0 / self.k), 0), None, None)

    def backward_graph(self, g):
        return (Where.apply(const(self.at_zero), g * (-1.0 / self.k), 0.0), None, None)
