"""matmul (numpy semantics, batched) and the fused ``linear`` / ``layer_norm`` / ``attention`` ops.
Backwards are BLAS calls on transposed views; no input copies. Under ``gt.autocast`` the
products (forward and backward) run in bfloat16; each op records that choice in its forward."""

from gt import amp
from gt.autograd import Function, unbroadcast
from gt.backend import B


def _mm(a, b, low, reuse=False):
    """``a @ b``, in the autocast dtype ``low`` when it is set (the result back in float32).
    ``reuse``: a weight gradient, written into a recycled buffer (see NumpyEngine.recycle)."""
    if low is not None:
        return B.matmul_lowp(a, b, low)
    return B.matmul_reused(a, b) if reuse else B.matmul(a, b)


def _swap(x):
    axes = list(range(x.ndim))
    axes[-1], axes[-2] = axes[-2], axes[-1]
    return B.transpose(x, axes)


class Matmul(Function):
    def forward(self, a, b):
        self.save(a, b)
        self.low = amp.matmul_dtype(a, b)
        return _mm(a, b, self.low)

    def backward(self, g):
        a, b = self.saved
        na, nb = self.needs_input_grad
        if a.ndim == 1 and b.ndim == 1:
            return (g * b if na else None), (g * a if nb else None)
        # Treat vectors as matrices so one rule covers every case, then undo it.
        a2 = B.reshape(a, (1, a.shape[0])) if a.ndim == 1 else a
        b2 = B.reshape(b, (b.shape[0], 1)) if b.ndim == 1 else b
        g2 = g
        if a.ndim == 1:
            g2 = B.reshape(g2, tuple(g2.shape[:-1]) + (1, g2.shape[-1]))
        if b.ndim == 1:
            g2 = B.reshape(g2, tuple(g2.shape) + (1,))
        ga = gb = None
        if na:
            ga = B.reshape(unbroadcast(_mm(g2, _swap(b2), self.low), tuple(a2.shape)), tuple(a.shape))
        if nb:
            if b2.ndim == 2 and a2.ndim > 2:
                # x @ W with a batched x: one gemm over the flattened rows instead of a batch of them
                k, n = b2.shape
                a_rows, g_rows = _swap(B.reshape(a2, (-1, k))), B.reshape(g2, (-1, n))
                gb = _mm(a_rows, g_rows, self.low, reuse=True)
            else:
                gb = unbroadcast(_mm(_swap(a2), g2, self.low), tuple(b2.shape))
            gb = B.reshape(gb, tuple(b.shape))
        return ga, gb


class Linear(Function):
    """``y = x @ weight.T + bias`` for x of shape (..., in), weight (out, in), bias (out,).
    Leading axes are flattened so each direction is a single gemm."""

    def forward(self, x, weight, bias=None):
        self.in_shape = tuple(x.shape)
        x2 = B.reshape(x, (-1, x.shape[-1]))
        self.save(x2, weight, bias is not None)
        self.low = amp.matmul_dtype(x2, weight)
        out = _mm(x2, _swap(weight), self.low)
        if bias is not None:
            out += bias
        return B.reshape(out, self.in_shape[:-1] + (weight.shape[0],))

    def backward(self, g):
        x2, weight, has_bias = self.saved
        nx, nw = self.needs_input_grad[:2]
        nb = has_bias and self.needs_input_grad[2]
        g2 = B.reshape(g, (-1, g.shape[-1]))
        gx = B.reshape(_mm(g2, weight, self.low), self.in_shape) if nx else None
        # a big weight's gradient goes into a recycled buffer (see NumpyEngine.recycle): no page faults
        gw = _mm(_swap(g2), x2, self.low, reuse=True) if nw else None
        gb = B.sum(g2, axis=0) if nb else None
        return gx, gw, gb


class LayerNorm(Function):
    """Normalise over the last ``n`` axes: ``(x - mean) / sqrt(var + eps) * weight + bias``
    (biased variance, as torch)."""

    def forward(self, x, weight, bias, n_axes=1, eps=1e-5):
        axes = tuple(range(x.ndim - n_axes, x.ndim))
        mean = B.mean(x, axis=axes, keepdims=True)
        xc = x - mean
        var = B.mean(xc * xc, axis=axes, keepdims=True)
        rstd = 1.0 / B.sqrt(var + eps)
        xhat = xc * rstd
        self.axes = axes
        self.save(xhat, rstd, weight)
        out = xhat
        if weight is not None:
            out = out * weight
        if bias is not None:
            out = out + bias
        return out

    def backward(self, g):
        xhat, rstd, weight = self.saved
        nx, nw, nb = self.needs_input_grad[:3]  # n_axes and eps may come positionally
        lead = tuple(range(g.ndim - len(self.axes)))
        gw = B.sum(g * xhat, axis=lead) if nw else None
        gb = B.sum(g, axis=lead) if nb else None
        gx = None
        if nx:
            gxhat = g * weight if weight is not None else g
            m1 = B.mean(gxhat, axis=self.axes, keepdims=True)
            m2 = B.mean(gxhat * xhat, axis=self.axes, keepdims=True)
            gx = rstd * (gxhat - m1 - xhat * m2)
        return gx, gw, gb


class Attention(Function):
    """Multi-head scaled dot-product self-attention on projected inputs, fused into one op:
    q, k, v (B, T, D) -> (B, T, D), with ``num_heads`` heads of D // num_heads.

    The arithmetic is that of the composed ops it replaces (reshape and permute each input to
    (B, H, T, hd), ``softmax((q @ k^T) * scale)`` with ``scale = 1/sqrt(hd)``, ``@ v``, permute and
    reshape back), forward and backward, call for call, so each output and input gradient is the
    same to the bit; one tape entry instead of a dozen (the layout steps are views here, not
    recorded ops). ``causal=True`` blocks key j > query i (a score of -inf, as ``masked_fill``).
    ``num_heads``, ``scale`` and ``causal`` are keyword arguments."""

    def forward(self, q, k, v, num_heads, scale, causal=False):
        b, t, d = q.shape
        hd = d // num_heads
        qh, kh, vh = (B.transpose(B.reshape(a, (b, t, num_heads, hd)), (0, 2, 1, 3)) for a in (q, k, v))
        self.low = low = amp.matmul_dtype(q, k, v)
        scores = _mm(qh, _swap(kh), low) * scale                       # (B, H, T, T)
        if causal:
            blocked = B.arange(0, t, 1, "int64")
            blocked = blocked[:, None] < blocked[None, :]
            scores = B.where(blocked, float("-inf"), scores)
            self.blocked = blocked
        else:
            self.blocked = None
        e = B.exp(scores - B.max(scores, axis=-1, keepdims=True))
        w = e / B.sum(e, axis=-1, keepdims=True)                       # the softmax, as act.Softmax
        self.scale, self.shape = scale, (b, t, d)
        self.save(qh, kh, vh, w)
        return B.reshape(B.transpose(_mm(w, vh, low), (0, 2, 1, 3)), (b, t, d))

    def backward(self, g):
        qh, kh, vh, w = self.saved
        b, t, d = self.shape
        h = qh.shape[1]
        nq, nk, nv = self.needs_input_grad[:3]
        gh = B.transpose(B.reshape(g, (b, t, h, d // h)), (0, 2, 1, 3))   # (B, H, T, hd)
        low = self.low
        gw = _mm(gh, _swap(vh), low)                                   # d/d(weights)
        gv = _mm(_swap(w), gh, low) if nv else None
        gs = w * (gw - B.sum(gw * w, axis=-1, keepdims=True))          # through the softmax
        if self.blocked is not None:
            gs = B.where(self.blocked, 0, gs)
        gs = gs * self.scale
        gq = _mm(gs, kh, low) if nq else None
        gk = _swap(_mm(_swap(qh), gs, low)) if nk else None          # as Matmul's backward, then the transpose's

        def back(x):
            return None if x is None else B.reshape(B.transpose(x, (0, 2, 1, 3)), (b, t, d))

        return back(gq), back(gk), back(gv)
