"""matmul (numpy semantics, batched) and the fused ``linear`` / ``layer_norm`` ops (attention: attention.py).
Backwards are BLAS calls on transposed views; no input copies. Under ``gt.autocast`` the
products (forward and backward) run in bfloat16; each op records that choice in its forward."""

import math

from gt import amp
from gt.autograd import Function, deferred, unbroadcast
from gt.autograd.graph_walk import fit
from gt.backend import B
from gt.ops._graph import mask_like


def _mm(a, b, low, reuse=False, result=None):
    """``a @ b``, in the autocast dtype ``low`` when it is set (the result in ``result``, by default
    the inputs' float32; inputs already rounded to ``low`` are used as they are).
    ``reuse``: a weight gradient, written into a recycled buffer (see NumpyEngine.recycle)."""
    if low is not None:
        return B.matmul_lowp(a, b, low, result)
    return B.matmul_reused(a, b) if reuse else B.matmul(a, b)


def _iadd(out, value):
    out += value
    return out


def _swap(x):
    return B.swap_last(x)


def _matmul_node_name(nd):
    """torch's node for a product of operands of ``nd`` dims (mm, mv, dot; batched: a view)."""
    if nd is None:
        return None
    named = {(2, 2): "MmBackward0", (2, 1): "MvBackward0", (1, 1): "DotBackward0", (1, 2): "SqueezeBackward4"}
    return named.get(nd, "UnsafeViewBackward0" if nd[0] != 2 else "CloneBackward0")


class Matmul(Function):
    complex_graph = "holomorphic"
    _torch_name = property(lambda self: _matmul_node_name(getattr(self, "nd", None)))

    def forward(self, a, b):
        # each operand is read only for the other's gradient, so only that is kept (as torch's mm):
        # ``data @ h`` then ``h.t_()`` or ``h.mul_(2)`` before the backward is no error
        na, nb = getattr(self, "needs_input_grad", (True, True))     # tangent's bare Matmul() has none
        self.save(a if nb else None, b if na else None)
        self.nd = (a.ndim, b.ndim)
        self.shapes = (tuple(a.shape), tuple(b.shape))
        self.low = amp.matmul_dtype(a, b)
        return _mm(a, b, self.low)

    def tangent(self, ta, tb):
        """Forward AD (gt/autograd/forward_ad.py): ``a' @ b + a @ b'`` (a tangent None: none)."""
        a, b = self.saved
        if ta is None or tb is None:
            return Matmul().forward(ta, b) if tb is None else Matmul().forward(a, tb)
        return Matmul().forward(ta, b) + Matmul().forward(a, tb)

    def backward(self, g):
        a, b = self.saved
        a = None if a is None else B.conj(a)     # torch's convention for complex operands (gt/ops/complex_ops.py)
        b = None if b is None else B.conj(b)
        na, nb = self.needs_input_grad
        (nda, ndb), (sa, sb) = self.nd, self.shapes
        if nda == 1 and ndb == 1:
            return (g * b if na else None), (g * a if nb else None)
        # Treat vectors as matrices so one rule covers every case, then undo it.
        a2 = B.reshape(a, (1, sa[0])) if nda == 1 and a is not None else a
        b2 = B.reshape(b, (sb[0], 1)) if ndb == 1 and b is not None else b
        sa2 = (1,) + sa if nda == 1 else sa
        sb2 = sb + (1,) if ndb == 1 else sb
        g2 = g
        if nda == 1:
            g2 = B.reshape(g2, tuple(g2.shape[:-1]) + (1, g2.shape[-1]))
        if ndb == 1:
            g2 = B.reshape(g2, tuple(g2.shape) + (1,))
        ga = gb = None
        if na:
            ga = B.reshape(unbroadcast(_mm(g2, _swap(b2), self.low), sa2), sa)
        if nb:
            if len(sb2) == 2 and len(sa2) > 2:
                # x @ W with a batched x: one gemm over the flattened rows instead of a batch of them
                k, n = sb2
                rows = math.prod(sa2[:-1])        # not -1: an empty axis has no -1
                a_rows, g_rows = _swap(B.reshape(a2, (rows, k))), B.reshape(g2, (rows, n))
                gb = _mm(a_rows, g_rows, self.low, reuse=True)
            else:
                gb = unbroadcast(_mm(_swap(a2), g2, self.low), sb2)
            gb = B.reshape(gb, sb)
        return ga, gb

    def backward_graph(self, g):
        a, b = self.inputs
        na, nb = self.needs_input_grad
        if a.ndim == 1 and b.ndim == 1:
            return (g * b if na else None), (g * a if nb else None)
        a2 = a.unsqueeze(0) if a.ndim == 1 else a
        b2 = b.unsqueeze(-1) if b.ndim == 1 else b
        g2 = g.unsqueeze(-2) if a.ndim == 1 else g
        g2 = g2.unsqueeze(-1) if b.ndim == 1 else g2
        ga = fit(g2 @ b2.mT, a2.shape, a.dtype).reshape(a.shape) if na else None
        gb = fit(a2.mT @ g2, b2.shape, b.dtype).reshape(b.shape) if nb else None
        return ga, gb


def _linear_node_name(inputs):
    """torch's node for ``F.linear``: addmm (or mm) on 2-D input, a view of it on others."""
    if not inputs:
        return None
    nd, bias = inputs[0].ndim, len(inputs) > 2 and inputs[2] is not None
    if nd == 2:
        return "AddmmBackward0" if bias else "MmBackward0"
    return "ViewBackward0" if bias else "SqueezeBackward4" if nd == 1 else "UnsafeViewBackward0"


class Linear(Function):
    """``y = x @ weight.T + bias`` for x of shape (..., in), weight (out, in), bias (out,).
    Leading axes are flattened so each direction is a single gemm. The weight's gradient may be
    fused with plain gradient descent (``weight -= lr * dY^T X`` in one gemm; see
    gt/autograd/hooks.py), after the input's gradient has read the old weight."""
    complex_graph = "holomorphic"

    fusable = (1,)
    # torch's linear saves weight.t(), a tensor of its own: ``weight.data = ...`` after the forward
    # leaves this backward on the old values (gt/autograd/release.py)
    saved_follow_data = False
    _torch_name = property(lambda self: _linear_node_name(getattr(self, "inputs", None)))

    def forward(self, x, weight, bias=None):
        self.low = low = amp.matmul_dtype(x, weight)
        if low is None:
            # x only for the weight's gradient and the weight only for x's, as torch: either may
            # change in place after the forward where the other needs no gradient (a frozen layer; an
            # optimizer's step between the forward and the backward of a first layer)
            nx, nw = self.needs_input_grad[:2]
            self.save(x if nw else None, weight if nx else None, bias is not None)
            return B.linear(x, weight, bias)
        # autocast: every product of this op (the forward and both gradients) reads x and the
        # weight rounded to `low`, so they are rounded once and those copies are kept for the
        # backward instead of the inputs (as torch.autocast keeps its casts): two casts fewer,
        # the same bits; the copies (half the inputs' bytes) live until the backward
        xl, wl = B.astype(B.reshape(x, (-1, x.shape[-1])), low), B.astype(weight, low)
        self.save(xl, wl, bias is not None, tuple(x.shape))
        out = B.matmul_lowp(xl, _swap(wl), low, B.dtype_of(x))
        if bias is not None:
            out += bias
        return B.reshape(out, tuple(x.shape[:-1]) + (weight.shape[0],))

    def backward(self, g):
        if self.low is not None:
            return self._backward_low(g)
        x, weight, has_bias = self.saved[:3]
        if B.dtype_of(g).is_complex:     # torch's convention for complex operands (gt/ops/complex_ops.py)
            x, weight = B.conj(x), B.conj(weight)
        nx, nw = self.needs_input_grad[:2]
        nb = has_bias and self.needs_input_grad[2]
        rows = math.prod(g.shape[:-1])           # not -1: an empty last axis has no -1
        g2 = B.reshape(g, (rows, g.shape[-1]))
        # The bias's sum first and the input's gradient last, each while what it reads is still in
        # the cache: g was just written by the op after this one, and the input's gradient is read
        # next, by the op before it (the weight's product reads the saved x, which pushes both
        # out). The three are independent: the same bits in any order.
        gb = B.sum(g2, axis=0) if nb else None
        x2 = B.reshape(x, (rows, x.shape[-1])) if nw else None   # a copy where x is strided
        plan = self.__dict__.pop("fused", None)
        step = plan.get(1) if plan and nw else None
        gx = None
        if step is not None and weight is None and step[1] is self.inputs[1]._array:
            weight = step[1]        # not saved (x needs no gradient): the update goes into the leaf as it is now
        if step is not None and step[1] is weight:
            gx = self._input_grad(g2, weight, g.shape) if nx else None   # from the weight before its update
            B.addmm_(weight, _swap(g2), x2, step[0])   # the update itself: no gradient buffer
            nw = nx = False
        if nw and deferred.plain and self._defers(g2, x2, weight):
            gw = deferred.LowRank(g2, x2)              # made only if read (gt/autograd/deferred.py)
        else:
            # a big weight's gradient goes into a recycled buffer (see NumpyEngine.recycle): no page faults
            gw = _mm(_swap(g2), x2, None, reuse=True) if nw else None
        if nx:
            gx = self._input_grad(g2, weight, g.shape)
        return gx, gw, gb

    @staticmethod
    def _input_grad(g2, weight, shape):
        return B.matmul_shaped(g2, weight, tuple(shape[:-1]) + (weight.shape[-1],))

    def _backward_low(self, g):
        """The backward under autocast, from the rounded copies the forward kept; the upstream
        gradient is rounded once for both products. A fused update is declined here (the weight's
        gradient is made and the optimizer applies it as usual)."""
        xl, wl, has_bias, shape = self.saved[:4]
        nx, nw = self.needs_input_grad[:2]
        nb = has_bias and self.needs_input_grad[2]
        self.__dict__.pop("fused", None)
        g2 = B.reshape(g, (xl.shape[0], g.shape[-1]))
        result = B.dtype_of(g2)
        gl = B.astype(g2, self.low) if nx or nw else None
        gx = B.reshape(B.matmul_lowp(gl, wl, self.low, result), shape) if nx else None
        gw = B.matmul_lowp(_swap(gl), xl, self.low, result) if nw else None
        return gx, gw, (B.sum(g2, axis=0) if nb else None)

    def backward_graph(self, g):
        x, weight = self.inputs[:2]
        nx, nw = self.needs_input_grad[:2]
        nb = self.saved[2] and self.needs_input_grad[2]
        g2 = g.reshape((-1, g.shape[-1]))
        gx = (g2 @ weight).reshape(x.shape) if nx else None
        gw = g2.mT @ x.reshape((-1, x.shape[-1])) if nw else None
        return gx, gw, (g2.sum(dim=0) if nb else None)

    def _defers(self, g2, x2, weight):
        """Whether the weight's gradient is left as its factors: a whole leaf, one dtype, few rows
        for a big weight (``deferred.worth``), on the CPU (see gt/autograd/deferred.py)."""
        leaf = self.inputs[1]
        if leaf._ctx is not None or leaf._placed is not None:
            return False
        weight = leaf._array if weight is None else weight      # not saved where x needs no gradient
        # ``worth`` (integer arithmetic) first: it declines every weight of a small model
        return (weight.ndim == 2
                and deferred.worth(x2.shape[0], weight.shape[0], weight.shape[1], leaf)
                and B.dtype_of(g2) == B.dtype_of(x2) == B.dtype_of(weight)
                and B.device_of(x2) == "cpu")


class LayerNorm(Function):
    """Normalise over the last ``n`` axes: ``(x - mean) / sqrt(var + eps) * weight + bias``
    (biased variance, as torch). One engine kernel where the engine has one for the dtype
    (``B.layer_norm_fused``: torch's ``native_layer_norm``, the numpy engine's in
    gt/backend/numpy_kernels.py), else composed here; the same values to float rounding."""

    _torch_name = "NativeLayerNormBackward0"
    torch_saves = (0, 1, 2)     # torch's native_layer_norm keeps its input, weight and bias (gt: derived values)

    def forward(self, x, weight, bias, n_axes=1, eps=1e-5):
        axes = tuple(range(x.ndim - n_axes, x.ndim))
        self.axes, self.eps = axes, eps
        fused = B.layer_norm_fused(x, weight, bias, n_axes, eps)   # one kernel where the engine has it
        if fused is not None:
            out, state = fused
            self.kernel = True
            # the engine's state (x itself where its backward reads it: torch's) is saved too, so
            # an in-place change of x before the backward raises as in torch
            self.save(weight, bias, *state)
            return out
        self.kernel = None
        mean = B.mean(x, axis=axes, keepdims=True)
        xc = x - mean
        xc -= B.mean(xc, axis=axes, keepdims=True)     # the corrected two-pass mean (numpy_kernels.py)
        var = B.mean(xc * xc, axis=axes, keepdims=True)
        rstd = 1.0 / B.sqrt(var + eps)
        xc *= rstd                 # in place on arrays made here: the values of xc * rstd, one
        xhat = xc                  # temporary as large as x fewer
        self.save(xhat, rstd, weight)
        out = xhat
        if weight is not None:
            out = out * weight
        if bias is not None:
            out = out + bias if out is xhat or B.dtype_of(bias) != B.dtype_of(out) else _iadd(out, bias)
        return out

    def backward(self, g):
        nx, nw, nb = self.needs_input_grad[:3]  # n_axes and eps may come positionally
        if self.kernel is not None:
            weight, bias, *state = self.saved
            return B.layer_norm_fused_backward(g, weight, bias, tuple(state), len(self.axes),
                                               (nx, nw and weight is not None, nb and bias is not None))
        xhat, rstd, weight = self.saved
        lead = tuple(range(g.ndim - len(self.axes)))
        gw = B.sum(g * xhat, axis=lead) if nw else None
        gb = B.sum(g, axis=lead) if nb else None
        gx = None
        if nx:
            gxhat = g * weight if weight is not None else g
            m1 = B.mean(gxhat, axis=self.axes, keepdims=True)
            m2 = B.mean(gxhat * xhat, axis=self.axes, keepdims=True)
            if weight is None:
                gx = rstd * (gxhat - m1 - xhat * m2)
            else:                  # gxhat is ours: the same arithmetic in place
                gxhat -= m1
                gxhat -= xhat * m2
                gxhat *= rstd
                gx = gxhat
        return gx, gw, gb

    def backward_graph(self, g):
        x, weight = self.inputs[:2]
        nx, nw, nb = self.needs_input_grad[:3]
        axes = self.axes
        xc = x - x.mean(dim=axes, keepdim=True)
        xc = xc - xc.mean(dim=axes, keepdim=True)      # as the forward's
        rstd = 1.0 / ((xc * xc).mean(dim=axes, keepdim=True) + self.eps).sqrt()
        xhat = xc * rstd
        lead = tuple(range(g.ndim - len(axes)))
        over_lead = (lambda t: t.sum(dim=lead)) if lead else (lambda t: t)
        gw = over_lead(g * xhat) if nw and weight is not None else None
        gb = over_lead(g) if nb and self.inputs[2] is not None else None
        gx = None
        if nx:
            gxhat = g * weight if weight is not None else g
            gx = rstd * (gxhat - gxhat.mean(dim=axes, keepdim=True)
                         - xhat * (gxhat * xhat).mean(dim=axes, keepdim=True))
        return gx, gw, gb


class LinearRelu(Linear):
    """``relu(x @ weight.T + bias)`` as one op (torch's ``_addmm_activation``): the ReLU is
    applied in place to the product the op just made, and the backward reads it as the ReLU's
    output. The values of ``Linear`` then ``Relu``; one (..., out) array and one pass fewer."""

    def forward(self, x, weight, bias=None):
        out = B.relu_(super().forward(x, weight, bias))
        self.save(*self.saved, out)
        return out

    def backward(self, g):
        g = B.relu_backward(g, self.saved[-1])
        grads = super().backward(g)
        B.recycle(g)   # read by the products above and held by nobody now: the next layer's buffer
        return grads

    def backward_graph(self, g):
        return super().backward_graph(g * mask_like(g, ~(self.saved[-1] <= 0)))
