"""Scaled dot-product attention of jagged sequences (gt.nested's (B, H, j, D) nested tensors) as
one op: each sequence's queries attend over its own keys, on slices of the values (H, total, E),
so padding costs nothing and the tape holds one entry for the whole batch, not one slice, one
attention and one concatenation per sequence (whose backward would write a full-size gradient
per slice). Each sequence runs ``gt.ops.attention``'s forward and backward (the engine's fused
kernel where it has one), so the values are those of ``F.scaled_dot_product_attention`` on it.
"""

from gt.autograd import Function
from gt.backend import B
from gt.ops._graph import partials
from gt.ops.attention import attention_backward, attention_forward, attention_graph_forward
from gt.ops.shape import Cat


class _Sequence:
    """What ``_forward`` keeps of one sequence for ``_backward`` (its arrays are views of the
    op's inputs, which the op itself saves, so their in-place changes are caught)."""

    def save(self, *values):
        self.saved = values


def _along(a, start, length):
    """The rows [start, start + length) of axis -2 (a view)."""
    return a[..., start:start + length, :]


class JaggedAttention(Function):
    """q (..., Tq, E), k (..., Tk, E), v (..., Tk, Ev) -> (..., Tq, Ev), the rows of axis -2 being
    sequences one after the other: ``q_lengths`` and ``k_lengths`` (Python ints, as many of each,
    summing to Tq and Tk) say how long; ``scale`` and ``causal`` as ``ScaledDotProductAttention``'s
    (``causal=0``: each query sees its own sequence's keys up to its position)."""

    def forward(self, q, k, v, q_lengths=(), k_lengths=(), scale=1.0, causal=None):
        self.lengths, self.parts = (q_lengths, k_lengths), []
        outs, qs, ks = [], 0, 0
        for nq, nk in zip(q_lengths, k_lengths):
            part = _Sequence()
            outs.append(attention_forward(part, _along(q, qs, nq), _along(k, ks, nk), _along(v, ks, nk), None, scale,
                                          causal))
            self.parts.append(part)
            qs, ks = qs + nq, ks + nk
        self.scale, self.causal = scale, causal
        self.save(q, k, v)
        return B.concatenate(outs, -2)

    def backward(self, g):
        needs = (tuple(self.needs_input_grad) + (True,) * 3)[:3] + (False,)
        grads, qs = ([], [], []), 0
        for part, nq in zip(self.parts, self.lengths[0]):
            for out, got in zip(grads, attention_backward(part, _along(g, qs, nq), needs)):
                out.append(got)
            qs += nq
        return tuple(None if not need or not got else B.concatenate(got, -2) for need, got in zip(needs, grads))

    def backward_graph(self, g):
        return partials(self._graph_forward, self.inputs[:3], g)

    def _graph_forward(self, q, k, v):
        outs, qs, ks = [], 0, 0
        for part, nq, nk in zip(self.parts, *self.lengths):
            outs.append(attention_graph_forward(part, q[..., qs:qs + nq, :], k[..., ks:ks + nk, :],
                                                v[..., ks:ks + nk, :], None))
            qs, ks = qs + nq, ks + nk
        return Cat.apply(*outs, axis=q.ndim - 2)
