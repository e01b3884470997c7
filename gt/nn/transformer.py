"""The position-wise ``FeedForward`` network and the pre-norm ``TransformerBlock``."""

from gt import amp, autograd
from gt.backend import B
from gt.nn.activation import GELU, ReLU
from gt.nn.attention import MultiHeadAttention
from gt.nn.dropout import Dropout
from gt.nn.hooks import has_hooks
from gt.nn.linear import Linear
from gt.nn.module import Module
from gt.nn.normalization import LayerNorm
from gt.ops import linalg
from gt.tensor import Tensor

_ACTIVATIONS = {"relu": ReLU, "gelu": GELU}


class FeedForward(Module):
    """``fc2(dropout(activation(fc1(x))))``: (..., D) -> (..., F) -> (..., D).

        >>> ff = nn.FeedForward(64, 256, activation="gelu")
        >>> ff(gt.randn(2, 10, 64)).shape
        (2, 10, 64)
    """

    def __init__(self, embed_dim, ff_dim, dropout=0.0, activation="relu", dtype=None):
        super().__init__()
        if activation not in _ACTIVATIONS:
            raise ValueError(f"FeedForward: activation must be one of {sorted(_ACTIVATIONS)}, got {activation!r}")
        self.fc1 = Linear(embed_dim, ff_dim, dtype=dtype)
        self.act = _ACTIVATIONS[activation]()
        self.dropout = Dropout(dropout)
        self.fc2 = Linear(ff_dim, embed_dim, dtype=dtype)

    def forward(self, x):
        if type(self.act) is ReLU and type(self.fc1) is Linear and not has_hooks(self.fc1, self.act):
            # one op: the ReLU overwrites fc1's fresh output (one (..., F) array less per step)
            h = linalg.LinearRelu.apply(self.fc1._checked(x), self.fc1.weight, self.fc1.bias)
        else:
            h = self.act(self.fc1(x))
        return self.fc2(self.dropout(h))


class TransformerBlock(Module):
    """Pre-norm transformer block: x (B, T, D) -> (B, T, D).

        x = x + dropout(attn(ln1(x)))                      # self-attention, causal if asked
        x = x + dropout(cross_attn(ln_cross(x), context))  # only with cross_attention=True
        x = x + dropout(ff(ln2(x)))

    ``attn`` is a ``MultiHeadAttention(D, num_heads, dropout, causal=causal)`` and ``ff`` a
    ``FeedForward(D, ff_dim, dropout, activation)``; the state-dict keys are ``ln1.*``,
    ``attn.{q,k,v,out}_proj.*``, ``ln2.*`` and ``ff.fc1.*``/``ff.fc2.*``, plus
    ``ln_cross.*`` and ``cross_attn.*`` with ``cross_attention=True`` (a decoder block over
    the output of an encoder, ``context`` (B, S, D), which ``forward`` then requires).

        >>> block = nn.TransformerBlock(64, num_heads=4, ff_dim=256, causal=True)
        >>> block(gt.randn(2, 10, 64)).shape
        (2, 10, 64)
        >>> dec = nn.TransformerBlock(64, 4, 256, causal=True, cross_attention=True)
        >>> dec(gt.randn(2, 10, 64), context=gt.randn(2, 49, 64)).shape
        (2, 10, 64)
    """

    def __init__(self, embed_dim, num_heads, ff_dim, dropout=0.0, causal=False, activation="relu", dtype=None,
                 cross_attention=False):
        super().__init__()
        self.ln1 = LayerNorm(embed_dim, dtype=dtype)
        self.attn = MultiHeadAttention(embed_dim, num_heads, dropout=dropout, causal=causal, dtype=dtype)
        self.cross_attention = bool(cross_attention)
        if self.cross_attention:
            self.ln_cross = LayerNorm(embed_dim, dtype=dtype)
            self.cross_attn = MultiHeadAttention(embed_dim, num_heads, dropout=dropout, dtype=dtype)
        self.ln2 = LayerNorm(embed_dim, dtype=dtype)
        self.ff = FeedForward(embed_dim, ff_dim, dropout=dropout, activation=activation, dtype=dtype)
        self.dropout = Dropout(dropout)

    def forward(self, x, attn_mask=None, context=None, key_padding_mask=None, context_key_padding_mask=None,
                cache=None):
        """``attn_mask`` and ``key_padding_mask`` (True = may not attend / padding, as in
        ``torch.nn.MultiheadAttention``) go to the self-attention, ``context_key_padding_mask``
        (B, S) to the cross-attention; ``cache`` (a ``KVCache``) is passed to both attentions
        (see ``KVCache``: x then holds only the new positions)."""
        if context is not None and not self.cross_attention:
            raise ValueError("TransformerBlock: context was given but the block has no cross-attention "
                             "(create it with cross_attention=True)")
        if context is None and self.cross_attention:
            raise ValueError("TransformerBlock(cross_attention=True): forward needs context (batch, S, embed_dim)")
        if attn_mask is None and key_padding_mask is None and cache is None and not self.cross_attention:
            out = self._inference_layer(x)
            if out is not None:
                return out
        extra = {k: v for k, v in (("key_padding_mask", key_padding_mask), ("cache", cache)) if v is not None}
        x = x + self.dropout(self.attn(self.ln1(x), attn_mask=attn_mask, **extra))
        if self.cross_attention:
            h = self.cross_attn(self.ln_cross(x), context=context, key_padding_mask=context_key_padding_mask,
                                cache=cache)
            x = x + self.dropout(h)
        x = x + self.dropout(self.ff(self.ln2(x)))
        return x

    def _inference_layer(self, x):
        """The whole block as one engine kernel (``B.encoder_layer_fused``: torch's native encoder
        layer on the torch engine, what ``torch.nn.TransformerEncoderLayer`` runs in eval mode),
        or None to run it op by op. Only where nothing is recorded (no gradient wanted of x or of
        any parameter), no dropout is active, the attention is neither causal nor masked, and the
        block is made of gt's own layers with every bias and norm weight (a subclass, a swapped
        layer or a forward replaced on an instance may compute something else), whole arrays (not
        sharded) outside autocast. The values are those of the ops to float rounding (another
        summation order: 1.6e-7 relative in float32, 3e-16 in float64). On a 2-core EPYC a block of the default PixelTransformer
        (16 x 8 tokens, D 256) took 1.70-2.46 ms this way against 1.86-2.99 ms through its ops
        (9 alternating runs), and the model's forward went from 0.97x to 1.00-1.05x PyTorch's."""
        recording = autograd.is_grad_enabled()
        if not isinstance(x, Tensor) or (recording and x.requires_grad) or x._placed is not None or x.ndim != 3:
            return None   # (training, the usual case, leaves at the first test)
        attn, ff, ln1, ln2 = self.attn, self.ff, self.ln1, self.ln2
        if (type(attn) is not MultiHeadAttention or type(ff) is not FeedForward or type(ln1) is not LayerNorm
                or type(ln2) is not LayerNorm or type(self.dropout) is not Dropout or attn.causal
                or type(ff.fc1) is not Linear or type(ff.fc2) is not Linear or type(ff.dropout) is not Dropout
                or type(attn.out_proj) is not Linear or ln1.eps != ln2.eps or x.shape[-1] != attn.embed_dim):
            return None
        act = ff.act
        if type(act) is GELU:
            if act.approximate != "none":
                return None
        elif type(act) is not ReLU:
            return None
        if self.training and (self.dropout.p or attn.dropout or ff.dropout.p):
            return None
        projs = attn._plain_projections()
        if projs is None or projs[0].bias is None or amp.is_autocast_enabled():
            return None
        for m in (attn, ff, ln1, ln2, act, ff.fc1, ff.fc2, attn.out_proj, ff.dropout, self.dropout) + projs:
            if "forward" in m.__dict__ or has_hooks(m):   # replaced or hooked (to look inside, as lpm.plots does)
                return None
        params = (attn.out_proj.weight, attn.out_proj.bias, ln1.weight, ln1.bias, ln2.weight, ln2.bias,
                  ff.fc1.weight, ff.fc1.bias, ff.fc2.weight, ff.fc2.bias)
        every = params + tuple(t for p in projs for t in (p.weight, p.bias))
        for p in every:
            if p is None or p._placed is not None:
                return None
        if recording and any(p.requires_grad for p in every) or autograd.forward_ad.dual_values(x, every):
            return None     # (a tangent flows only through the ops: gt/autograd/forward_ad.py)
        arrays = [x._array] + [t._array for p in projs for t in (p.weight, p.bias)] + [p._array for p in params]
        out = B.encoder_layer_fused(arrays[0], attn.num_heads, arrays[1:7:2], arrays[2:7:2], *arrays[7:], ln1.eps,
                                    type(act) is GELU)
        return None if out is None else Tensor._wrap(out)
