"""Fused scaled dot-product attention: ``softmax(q @ k^T * scale + mask) @ v`` as one op.

``Attention`` works on projected inputs with the heads still merged, (B, L, D) queries and
(B, S, D) keys and values (what ``nn.MultiHeadAttention`` has); ``ScaledDotProductAttention``
on inputs already split into heads, (..., L, E), (..., S, E), (..., S, Ev) (what
``F.scaled_dot_product_attention`` gets). Both share one forward and one backward, so the
query length L and the key length S may differ (cross-attention, decoding with a cache).

Without a mask, with no causal offset other than 0 and outside autocast, the engine's kernel
runs it (``B.attention_fused``: torch's flash attention on the CPU and its
``scaled_dot_product_attention`` on CUDA, or the numpy engine's gt/backend/numpy_kernels.py),
with the values of the composed arithmetic to float rounding.
Otherwise the arithmetic is that of the composed ops it replaces (``(q @ k^T) * scale``, the
mask, a stable softmax, ``@ v``), forward and backward, call for call, so outputs and gradients
are the same to the bit. Either way one tape entry instead of a dozen (the layout steps are
views here, not recorded ops). Under ``gt.autocast`` the products run in bfloat16, as in linalg.py.

The optional ``mask`` input broadcasts to the scores (..., L, S): a bool mask is True where a
query may NOT attend (a score of -inf, as ``masked_fill``), a float mask is added to the scores
(and gets a gradient). ``causal=n`` (an int) blocks key j for query i when j > i + n: 0 is
torch's ``is_causal`` (``tril`` of the (L, S) matrix), S - L aligns the last query with the last
key (decoding with a cache). A query whose keys are all blocked gets zero weights (torch's
``scaled_dot_product_attention`` does the same) instead of 0/0.
"""

from gt import amp
from gt.autograd import Function, unbroadcast
from gt.backend import B
from gt.ops._graph import const, partials
from gt.ops.activations import Softmax
from gt.ops.elementwise import Where
from gt.ops.linalg import _mm, _swap


def _causal_blocked(n_q, n_k, offset):
    """(L, S) bool, True where key j comes after query i's position ``offset + i``; None if none does."""
    if offset >= n_k - 1:   # even the first query sees every key
        return None
    i = B.arange(offset, offset + n_q, 1, "int64")
    j = B.arange(0, n_k, 1, "int64")
    return i[:, None] < j[None, :]


def attention_forward(ctx, qh, kh, vh, mask, scale, causal):
    """Attention weights and output on split heads (..., L, E); saves what ``attention_backward`` needs."""
    ctx.low = low = amp.matmul_dtype(qh, kh, vh)
    ctx.kernel = None
    if mask is None and causal in (None, 0) and low is None:
        fused = B.attention_fused(qh, kh, vh, scale, causal == 0)   # one kernel where the engine has it
        if fused is not None:
            out, ctx.kernel = fused
            ctx.scale, ctx.causal = scale, causal == 0      # all attention_backward reads on this path
            ctx.save(qh, kh, vh, None)
            return out
    ctx.result = result = B.dtype_of(qh)
    if low is not None:     # autocast: q, k and v rounded once, for the forward's and the backward's products
        qh, kh, vh = B.astype(qh, low), B.astype(kh, low), B.astype(vh, low)
    # In-place steps below work on arrays this function made (never an input): the same values
    # as the composed ops, fewer temporaries as large as the scores.
    scores = _mm(qh, _swap(kh), low, result=result)                # (..., L, S)
    scores *= scale
    blocked = None if causal is None else _causal_blocked(qh.shape[-2], kh.shape[-2], causal)
    has_bias = mask is not None and not B.is_bool(mask)
    if has_bias:
        scores = scores + mask
    elif mask is not None:
        blocked = mask if blocked is None else (blocked | mask)
    if blocked is not None:
        scores = B.masked_fill_(scores, blocked, float("-inf"))   # scores is ours (made above)
    top = B.max(scores, axis=-1, keepdims=True)
    guard = mask is not None     # only a mask can leave a query without keys (causal never does)
    if guard:
        top = B.where(B.isfinite(top), top, 0.0)                   # an all -inf row: exp gives 0, not nan
    scores -= top
    e = B.exp_(scores)
    total = B.sum(e, axis=-1, keepdims=True)
    if guard:
        total = B.where(total == 0, 1.0, total)
    e /= total
    w = e                                                          # the softmax, as act.Softmax
    ctx.blocked, ctx.scale = blocked, scale
    ctx.mask_shape = tuple(mask.shape) if has_bias else None
    ctx.save(qh, kh, vh, w)
    return _mm(w, vh, low, result=result)


def attention_backward(ctx, gh, needs):
    """Gradients of q, k, v (split heads) and of a float mask, for the output's gradient ``gh``."""
    qh, kh, vh, w = ctx.saved[:4]      # an op may save more after these (self_attention.py)
    nq, nk, nv, nm = needs
    if ctx.kernel is not None:
        gq, gk, gv = B.attention_fused_backward(gh, qh, kh, vh, ctx.kernel, ctx.scale, ctx.causal)
        return (gq if nq else None), (gk if nk else None), (gv if nv else None), None
    low, result = ctx.low, ctx.result
    if low is not None:
        gh = B.astype(gh, low)                                     # rounded once for both products
    gw = _mm(gh, _swap(vh), low, result=result)                    # d/d(weights), a fresh array
    gv = _mm(_swap(w), gh, low, result=result) if nv else None
    gw -= B.sum(gw * w, axis=-1, keepdims=True)                    # through the softmax:
    gw *= w                                                        # w * (gw - sum(gw * w)), in place
    gs = gw
    if ctx.blocked is not None:
        gs = B.masked_fill_(gs, ctx.blocked, 0.0)                  # gw, made above
    gm = unbroadcast(gs, ctx.mask_shape) if nm and ctx.mask_shape is not None else None
    if gm is gs:
        gs = gs * ctx.scale
    else:
        gs *= ctx.scale
    if low is not None:
        gs = B.astype(gs, low)
    gq = _mm(gs, kh, low, result=result) if nq else None
    gk = _swap(_mm(_swap(qh), gs, low, result=result)) if nk else None   # as Matmul's backward, then the transpose's
    return gq, gk, gv, gm


def attention_graph_forward(ctx, qh, kh, vh, mask):
    """The forward again with recorded ops on the split heads (tensors), as ``attention_forward`` computed
    it, for ``backward_graph``: the blocked scores and any query left without keys are constants."""
    scores = (qh @ kh.mT) * ctx.scale
    if ctx.kernel is not None:
        blocked = _causal_blocked(qh.shape[-2], kh.shape[-2], 0) if ctx.causal else None
    else:
        blocked = ctx.blocked
    if mask is not None and mask.dtype.is_floating_point:
        scores = scores + mask
    dead = None
    if blocked is not None:
        if mask is not None:      # a query whose keys are all blocked: zero weights, as the forward
            dead = B.sum(B.broadcast_to(blocked, tuple(scores.shape)), axis=-1, keepdims=True) == scores.shape[-1]
            blocked = blocked & B.logical_not(dead)
        scores = scores.masked_fill(const(blocked), float("-inf"))
    w = Softmax.apply(scores, -1)
    if dead is not None:
        w = Where.apply(const(dead), 0.0, w)
    return w @ vh


def _needs(ctx):
    needs = tuple(ctx.needs_input_grad) + (False,) * 4
    return needs[:4]


class Attention(Function):
    """Multi-head attention on projected inputs: q (B, L, D), k and v (B, S, D) -> (B, L, D),
    with ``num_heads`` heads of D // num_heads. ``mask`` (optional) broadcasts to
    (B, num_heads, L, S); ``num_heads``, ``scale`` and ``causal`` (None, or the offset described
    in the module docstring) are keyword arguments. ``packed=True``: self-attention whose q, k
    and v are one (B, L, 3D) input, side by side along the last axis (``k`` and ``v`` None);
    its gradient comes back as one (B, L, 3D) array."""

    def forward(self, q, k, v, mask=None, num_heads=1, scale=1.0, causal=None, packed=False):
        self.packed = packed
        if packed:
            # Self-attention whose queries, keys and values come from one product (B, L, 3D),
            # side by side; k and v are None. The heads are views of it.
            b, n_q, d = q.shape[0], q.shape[1], q.shape[2] // 3
            parts = B.reshape(q, (b, n_q, 3, num_heads, d // num_heads))
            qh, kh, vh = (B.transpose(parts[:, :, i], (0, 2, 1, 3)) for i in range(3))
            self.shape, self.k_len = (b, n_q, d), n_q
        else:
            b, n_q, d = q.shape
            hd = d // num_heads

            def heads(a):   # (B, T, D) -> (B, H, T, hd), a view
                return B.transpose(B.reshape(a, (b, a.shape[1], num_heads, hd)), (0, 2, 1, 3))

            qh, kh, vh = heads(q), heads(k), heads(v)
            self.shape, self.k_len = (b, n_q, d), k.shape[1]
        out = attention_forward(self, qh, kh, vh, mask, scale, causal)
        return B.reshape(B.transpose(out, (0, 2, 1, 3)), (b, n_q, d))

    def backward(self, g):
        b, n_q, d = self.shape
        h = self.saved[0].shape[1]
        gh = B.transpose(B.reshape(g, (b, n_q, h, d // h)), (0, 2, 1, 3))   # (B, H, L, hd)
        needs = _needs(self)
        if self.packed:
            needs = (needs[0],) * 3 + needs[3:]
            if self.kernel is not None:   # the engine writes the packed gradient itself (no mask here)
                packed = B.attention_fused_backward(gh, *self.saved[:3], self.kernel, self.scale, self.causal,
                                                    packed=True) if needs[0] else None
                return packed, None, None, None
        gq, gk, gv, gm = attention_backward(self, gh, needs)
        if self.packed:
            if not needs[0]:
                return None, None, None, gm
            # the three gradients side by side: the packed product's gradient (B, L, 3D)
            heads = [B.transpose(x, (0, 2, 1, 3)) for x in (gq, gk, gv)]
            return B.reshape(B.stack(heads, 2), (b, n_q, 3 * d)), None, None, gm

        def back(x, t):
            return None if x is None else B.reshape(B.transpose(x, (0, 2, 1, 3)), (b, t, d))

        return back(gq, n_q), back(gk, self.k_len), back(gv, self.k_len), gm

    def backward_graph(self, g):
        q, k, v = self.inputs[:3]
        mask = self.inputs[3] if len(self.inputs) > 3 else None
        b, n_q, d = self.shape
        h = self.saved[0].shape[1]

        def forward(q, k, v, mask):
            if self.packed:
                parts = q.reshape((b, n_q, 3, h, d // h))
                qh, kh, vh = (parts[:, :, i].permute(0, 2, 1, 3) for i in range(3))
            else:
                qh, kh, vh = (a.reshape((b, a.shape[1], h, d // h)).permute(0, 2, 1, 3) for a in (q, k, v))
            return attention_graph_forward(self, qh, kh, vh, mask).permute(0, 2, 1, 3).reshape((b, n_q, d))
        return partials(forward, (q, k, v, mask), g)


class ScaledDotProductAttention(Function):
    """``softmax(q @ k^T * scale + mask) @ v`` on q (..., L, E), k (..., S, E), v (..., S, Ev)
    -> (..., L, Ev); leading axes broadcast as in matmul. ``scale`` and ``causal`` are keyword
    arguments (see the module docstring)."""

    def forward(self, q, k, v, mask=None, scale=1.0, causal=None):
        self.shapes = (tuple(q.shape), tuple(k.shape), tuple(v.shape))
        return attention_forward(self, q, k, v, mask, scale, causal)

    def backward(self, g):
        gq, gk, gv, gm = attention_backward(self, g, _needs(self))
        sq, sk, sv = self.shapes
        return (None if gq is None else unbroadcast(gq, sq), None if gk is None else unbroadcast(gk, sk),
                None if gv is None else unbroadcast(gv, sv), gm)

    def backward_graph(self, g):
        q, k, v = self.inputs[:3]
        mask = self.inputs[3] if len(self.inputs) > 3 else None
        return partials(lambda q, k, v, mask: attention_graph_forward(self, q, k, v, mask), (q, k, v, mask), g)
