"""Cross-entropy of linearly projected inputs, a chunk of rows at a time (torch 2.13's chunked
``linear_cross_entropy``): the (N, C) logits are never held whole, only (chunk, C) of them.

For the scalar reductions the forward also computes the three gradients, chunk by chunk, and
the backward scales them by the upstream gradient (torch precomputes them the same way); for
``reduction='none'`` the backward computes them again from the saved inputs, each row scaled by
its own upstream gradient. The gradients are kept, not consumed, so ``retain_graph=True`` works
either way.

Under ``create_graph=True`` the gradients are written again with recorded ops on the whole (N, C)
logits (a second derivative reads them all), so they differentiate again as those of
``cross_entropy(linear(x, weight, bias), target)``. torch 2.13's chunked path records nothing
there: its gradients come out without a graph (so a second derivative through it is 0, or
raises where nothing else requires grad); its reference path (``options=None``) gives what gt does.
"""

from gt.autograd.function import Function, is_grad_enabled
from gt.backend import B
from gt.ops._graph import const


class ChunkedLinearCrossEntropy(Function):
    """``cross_entropy(x @ weight.T + bias, target)`` for x (N, in), weight (C, in), bias (C,)
    or None, int64 target (N,) and class weights (C,) or None; ``reduction`` 'mean', 'sum' or
    'none'; rows whose target is ``ignore_index`` give 0 and no gradient; ``chunk`` rows at a
    time. The mean is over the class weights of the kept rows (NaN, zero gradient, when they
    sum to 0), as torch's."""

    def forward(self, x, weight, bias, target, class_weight, reduction="mean", ignore_index=-100, chunk=None):
        self.reduction, self.ignore_index = reduction, ignore_index
        self.chunk = max(1, min(chunk or x.shape[0], x.shape[0]))
        nx, nw, nb = (need and is_grad_enabled() for need in self.needs_input_grad[:3])   # none under no_grad
        if reduction == "none":
            self.save(x, weight, bias, target, class_weight)
            return self._sweep(x, weight, bias, target, class_weight, None)[0]
        losses, grads = self._sweep(x, weight, bias, target, class_weight, (nx, nw, nb and bias is not None))
        total = B.sum(losses)
        if reduction == "sum":
            self.grads = grads
            return total
        count = B.sum(self.kept_weight)
        some = count != 0
        scale = B.where(some, 1.0 / B.where(some, count, 1.0), 0.0)        # d(mean) / d(a row's loss)
        self.grads = tuple(None if gr is None else B.multiply(gr, scale) for gr in grads)
        return B.where(some, total * scale, float("nan"))

    def backward(self, g):
        if self.reduction == "none":
            x, weight, bias, target, class_weight = self.saved
            nx, nw, nb = self.needs_input_grad[:3]
            grads = self._sweep(x, weight, bias, target, class_weight, (nx, nw, nb and bias is not None), g)[1]
        else:
            s = B.reshape(g, ())
            grads = tuple(None if gr is None else B.multiply(gr, s) for gr in self.grads)
        return grads + (None, None)

    def backward_graph(self, g):
        x, weight, bias = self.inputs[:3]
        nx, nw, nb = self.needs_input_grad[:3]
        kept = self.kept_weight
        if self.reduction == "mean":
            count = B.sum(kept)
            some = count != 0
            kept = kept * B.where(some, 1.0 / B.where(some, count, 1.0), 0.0)
        rows = (const(kept) * g).reshape((-1, 1))            # each row's weight: (N, 1)
        logits = x.matmul(weight.t())
        if bias is not None:
            logits = logits + bias
        n, c = logits.shape
        onehot = B.zeros((n, c), x.dtype)
        B.setitem(onehot, (B.arange(0, n, 1, "int64"), self.safe), 1.0)
        e = (logits.softmax(-1) - const(onehot)) * rows      # d loss / d logits
        return ((e.matmul(weight) if nx else None), (e.t().matmul(x) if nw else None),
                (e.sum(0) if nb and bias is not None else None), None, None)

    def _sweep(self, x, weight, bias, target, class_weight, needs, g_rows=None):
        """Per-row losses (N,) and, where ``needs`` (x, weight, bias) asks, the gradients of
        their sum (each row scaled by ``g_rows`` when given), one chunk of rows at a time."""
        n, c = x.shape[0], weight.shape[0]
        dtype = B.dtype_of(x)
        keep = target != self.ignore_index
        safe = B.clip(B.where(keep, target, 0), 0, max(c - 1, 0))
        kept = B.astype(keep, dtype)
        if class_weight is not None:
            kept = kept * B.getitem(class_weight, safe)
        self.kept_weight, self.safe = kept, safe
        losses = B.empty((n,), dtype)
        gx = B.empty(tuple(x.shape), dtype) if needs and needs[0] else None
        gw = B.zeros(tuple(weight.shape), dtype) if needs and needs[1] else None
        gb = B.zeros((c,), dtype) if needs and needs[2] else None
        wt = B.transpose(weight, (1, 0))
        for start in range(0, n, self.chunk):
            part = slice(start, min(start + self.chunk, n))
            xc, tc, kc = B.getitem(x, part), B.getitem(safe, part), B.getitem(kept, part)
            logits = B.matmul(xc, wt)
            if bias is not None:
                logits += bias
            rows = B.arange(0, logits.shape[0], 1, "int64")
            logits -= B.max(logits, axis=-1, keepdims=True)
            picked = B.getitem(logits, (rows, tc))
            e = B.exp_(logits)                                           # the logits' memory, reused
            total = B.sum(e, axis=-1, keepdims=True)
            B.setitem(losses, part, (B.reshape(B.log(total), (-1,)) - picked) * kc)
            if needs is None or not any(needs):
                continue
            scale = kc if g_rows is None else kc * B.getitem(B.reshape(g_rows, (-1,)), part)
            e /= total                                                   # the softmax
            e *= B.reshape(scale, (-1, 1))
            B.setitem(e, (rows, tc), B.getitem(e, (rows, tc)) - scale)    # minus onehot(t), scaled
            if gx is not None:
                B.setitem(gx, part, B.matmul(e, weight))
            if gw is not None:                                           # gw += e.T @ xc, in one gemm
                B.addmm_(gw, B.transpose(e, (1, 0)), xc, 1.0)
            if gb is not None:
                gb += B.sum(e, axis=0)
        return losses, (gx, gw, gb)
