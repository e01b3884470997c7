"""Self-attention with its q, k and v projection, one op: ``x @ [Wq; Wk; Wv]^T + [bq; bk; bv]``,
one product (B, L, 3D) whose thirds are the queries, keys and values, then ``Attention``'s
packed path (gt/ops/attention.py) on it. What ``MultiHeadAttention`` runs for self-attention over
enough rows, outside autocast.

The backward has the three head gradients before anything packs them: where the engine hands
them back apart (``attention_fused_backward(..., split_ok=True)``: torch on the CPU, whose flash
kernel writes them in three arrays), the weights' and the input's gradients are three products
each (dW_q = g_q^T x, ..., dx = g_q Wq + g_k Wk + g_v Wv by ``addmm_``) instead of a copy of the
three into one (B, L, 3D) gradient and one product as wide. A layer of the benchmarks' small
decoder (3136 rows of D 128, a shared 2-core Intel Xeon), measured alone: 2.4 ms against 2.7 (two threads),
4.4 against 4.6 (one); its whole training step took 2-3% less CPU time on one thread. Elsewhere
(the numpy engine writes the packed gradient in place; the composed path under a mask) the
gradient is packed and the products are ``Linear``'s, call for call: the same bits as the
``Linear`` then ``Attention(packed=True)`` this op stands for.
"""

import math

from gt.autograd import Function
from gt.backend import B
from gt.ops._graph import partials
from gt.ops.attention import Attention, attention_backward, attention_graph_forward
from gt.ops.linalg import Linear, _mm, _swap
from gt.ops.shape import Cat


class PackedSelfAttention(Function):
    """x (B, L, D), the q, k and v projections' weights (D, D) each and biases (D,) each (all
    three or None), an optional mask broadcasting to (B, num_heads, L, L) -> the attention's
    output (B, L, D) before the output projection. ``num_heads``, ``scale`` and ``causal`` as in
    ``Attention`` (keyword arguments)."""

    def forward(self, x, wq, wk, wv, bq=None, bk=None, bv=None, mask=None, num_heads=1, scale=1.0, causal=None):
        weight = B.concatenate((wq, wk, wv), 0)                     # (3D, D): one product for the three
        bias = None if bq is None else B.concatenate((bq, bk, bv), 0)
        qkv = B.linear(x, weight, bias)
        # Attention's packed forward on this op's node: it sets what the backward and
        # attention_backward read (shape, kernel, scale, causal; the heads saved first)
        out = Attention.forward(self, qkv, None, None, mask, num_heads=num_heads, scale=scale, causal=causal,
                                packed=True)
        # x only for the weights' gradients and the weight only for x's, as Linear
        needs = tuple(self.needs_input_grad) + (False,) * 8
        self.save(*self.saved, x if any(needs[1:4]) else None, weight if needs[0] else None)
        return out

    def backward(self, g):
        b, n_q, d = self.shape
        h = self.saved[0].shape[1]
        gh = B.transpose(B.reshape(g, (b, n_q, h, d // h)), (0, 2, 1, 3))   # (B, H, L, hd)
        needs = tuple(self.needs_input_grad) + (False,) * 8
        gm = None
        if not any(needs[:7]):
            grads = None
        elif self.kernel is not None:   # no mask here: the engine's gradient, packed or in three
            grads = B.attention_fused_backward(gh, *self.saved[:3], self.kernel, self.scale, self.causal,
                                               packed=True, split_ok=True)
        else:
            gq, gk, gv, gm = attention_backward(self, gh, (True, True, True, needs[7]))
            heads = [B.transpose(a, (0, 2, 1, 3)) for a in (gq, gk, gv)]
            grads = B.reshape(B.stack(heads, 2), (b, n_q, 3 * d))
        if grads is None:
            return (None,) * 7 + (gm,)
        products = self._split_products if type(grads) is tuple else self._packed_products
        return products(grads, needs) + (gm,)

    def _packed_products(self, g, needs):
        """``Linear``'s backward on the packed gradient (B, L, 3D), its weight's and bias's cut in thirds."""
        x, weight = self.saved[-2:]
        rows = math.prod(g.shape[:-1])
        g2 = B.reshape(g, (rows, g.shape[-1]))
        d = g.shape[-1] // 3
        gb = B.split(B.sum(g2, axis=0), [d, 2 * d], 0) if any(needs[4:7]) else (None,) * 3
        gw = (None,) * 3
        if any(needs[1:4]):
            gw = B.split(_mm(_swap(g2), B.reshape(x, (rows, x.shape[-1])), None, reuse=True), [d, 2 * d], 0)
        gx = Linear._input_grad(g2, weight, g.shape) if needs[0] else None
        return (gx,) + _wanted(gw, needs[1:4]) + _wanted(gb, needs[4:7])

    def _split_products(self, grads, needs):
        """The same gradients from the three head gradients (B, H, L, hd) apart: three products each."""
        x, weight = self.saved[-2:]
        b, n_q, d = self.shape
        rows = b * n_q
        # (B, H, L, hd) over (B, L, H, hd) memory (the flash kernel's layout): (rows, D) is a view
        g2 = [B.reshape(B.transpose(a, (0, 2, 1, 3)), (rows, d)) for a in grads]
        gb = tuple(B.sum(a, axis=0) if n else None for a, n in zip(g2, needs[4:7]))
        gw = (None,) * 3
        if any(needs[1:4]):
            x2 = B.reshape(x, (rows, d))
            gw = tuple(_mm(_swap(a), x2, None) if n else None for a, n in zip(g2, needs[1:4]))
        gx = None
        if needs[0]:
            gx = Linear._input_grad(g2[0], weight[:d], (b, n_q, d))
            gx2 = B.reshape(gx, (rows, d))
            B.addmm_(gx2, g2[1], weight[d:2 * d], 1.0)
            B.addmm_(gx2, g2[2], weight[2 * d:], 1.0)
        return (gx,) + gw + gb

    def backward_graph(self, g):
        x, wq, wk, wv, bq, bk, bv = (tuple(self.inputs) + (None,) * 8)[:7]
        mask = self.inputs[7] if len(self.inputs) > 7 else None
        b, n_q, d = self.shape
        h = self.saved[0].shape[1]

        def forward(x, wq, wk, wv, bq, bk, bv, mask):
            qkv = Linear.apply(x, Cat.apply(wq, wk, wv), None if bq is None else Cat.apply(bq, bk, bv))
            parts = qkv.reshape((b, n_q, 3, h, d // h))
            qh, kh, vh = (parts[:, :, i].permute(0, 2, 1, 3) for i in range(3))
            return attention_graph_forward(self, qh, kh, vh, mask).permute(0, 2, 1, 3).reshape((b, n_q, d))
        return partials(forward, (x, wq, wk, wv, bq, bk, bv, mask), g)


def _wanted(parts, needs):
    return tuple(p if n else None for p, n in zip(parts, needs))
