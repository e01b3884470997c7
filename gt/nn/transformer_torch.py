"""torch's ``nn.Transformer`` family: ``TransformerEncoderLayer``, ``TransformerDecoderLayer``,
``TransformerEncoder``, ``TransformerDecoder`` and ``Transformer``, with torch's constructor
arguments, submodule and parameter names, masks and layouts, so that a torch state dict loads
unchanged and gives torch's outputs. (gt's own pre-norm ``TransformerBlock``, batch first, is
another module: gt/nn/transformer.py.)

Where gt differs from torch, for all five: there is no ``device`` argument's effect (it is
accepted for torch's signature; parameters live where gt puts them); torch's "fast path" (fused
kernels and nested tensors, taken in eval mode without autograd) is not there: gt always runs the
plain path, which gives the same values except at padded positions of an encoder given a
``src_key_padding_mask``, where torch's nested-tensor path outputs zeros (then the final norm of
zeros) and the plain path, gt's and torch's in training mode, outputs the attention over the
unpadded keys as usual. Shape and dtype errors of the attention are ``MultiheadAttention``'s
(ValueError/TypeError where torch raises AssertionError)."""

import copy

from gt import dtypes
from gt.nn import functional as F
from gt.nn import init
from gt.nn.activation import GELU, ReLU
from gt.nn.activation_functions import relu
from gt.nn.containers import ModuleList
from gt.nn.dropout import Dropout
from gt.nn.inputs import as_tensor
from gt.nn.linear import Linear
from gt.nn.module import Module
from gt.nn.multihead_attention import MultiheadAttention
from gt.nn.nested_attention import is_nested, per_sequence, refuse_module
from gt.nn.normalization import LayerNorm
from gt.tensor import full


def _activation(activation, where):
    """torch's legacy strings ("relu", "gelu") as the functions; a callable as given."""
    if isinstance(activation, str):
        if activation == "relu":
            return relu
        if activation == "gelu":
            return F.gelu
        raise RuntimeError(f"{where}: activation should be relu/gelu, not {activation!r}")
    if not callable(activation):
        raise TypeError(f"{where}: activation must be 'relu', 'gelu' or a callable, got "
                        f"{type(activation).__name__}: {activation!r}")
    return activation


def _generate_square_subsequent_mask(sz, dtype=None):
    """(sz, sz) float mask: 0 on and below the diagonal, -inf above (a query may not see later keys)."""
    n = dtypes.as_index(sz)     # any integer as torch takes it: numpy's, a 0-d integer tensor
    if n is None:
        raise TypeError(f"generate_square_subsequent_mask: sz must be an int, got {type(sz).__name__}: {sz!r}")
    sz = n
    if sz < 0:
        raise ValueError(f"generate_square_subsequent_mask: sz must be a non-negative int, got {sz!r}")
    return full((sz, sz), float("-inf"), dtype=dtypes.default_float if dtype is None else dtype).triu(1)


def _seq_len(x, batch_first):
    """The sequence length of a (S, E), (S, N, E) or, batch first, (N, S, E) input (None: nested)."""
    if is_nested(x):
        return None
    return x.shape[0] if x.ndim == 2 or not batch_first else x.shape[1]


def _detect_is_causal_mask(mask, is_causal, size):
    """torch's rule: an explicit ``is_causal`` is returned as is; with None, a ``mask`` equal to the
    (size, size) causal mask (float 0/-inf, or bool True above the diagonal) counts as causal."""
    if is_causal is not None or mask is None:
        return is_causal is True
    mask = as_tensor(mask, "Transformer", "mask")
    if mask.shape != (size, size):
        return False
    causal = _generate_square_subsequent_mask(size)
    if mask.dtype == dtypes.bool_:
        return bool((mask == causal.isinf()).all())
    return bool((mask == causal.to(mask.dtype)).all())


def _clones(module, n, where):
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValueError(f"{where}: num_layers must be a non-negative int, got {n!r}")
    return ModuleList([copy.deepcopy(module) for _ in range(n)])


class _FeedForwardLayer(Module):
    """What the encoder and decoder layers share: the feed-forward block and the checks, under
    torch's names (``linear1``, ``dropout``, ``linear2``, ``activation``)."""

    def _feed_forward_init(self, d_model, dim_feedforward, dropout, bias, dtype):
        # registration order is torch's (after the attention), so state_dict() keys come in torch's order
        self.linear1 = Linear(d_model, dim_feedforward, bias=bias, dtype=dtype)
        self.dropout = Dropout(dropout)
        self.linear2 = Linear(dim_feedforward, d_model, bias=bias, dtype=dtype)

    def _ff(self, x, last_dropout):
        return last_dropout(self.linear2(self.dropout(self.activation(self.linear1(x)))))

    def _input(self, x, name):
        x = as_tensor(x, type(self).__name__, name)
        if x.ndim not in (2, 3) or x.shape[-1] != self.linear1.in_features:
            raise ValueError(f"{type(self).__name__}: {name} must be (S, E), (S, N, E) or (N, S, E) with E = "
                             f"d_model = {self.linear1.in_features}, got shape {x.shape}")
        return x


class TransformerEncoderLayer(_FeedForwardLayer):
    """Self-attention then a feed-forward network, each with a residual connection and a
    ``LayerNorm``, as ``torch.nn.TransformerEncoderLayer``: post-norm
    (``x = norm1(x + sa(x)); x = norm2(x + ff(x))``) by default, pre-norm with ``norm_first=True``
    (``x = x + sa(norm1(x)); x = x + ff(norm2(x))``); ``ff(x) = linear2(dropout(activation(linear1(x))))``.

    Shapes (E = ``d_model``): src (S, N, E), (N, S, E) with ``batch_first=True``, or unbatched
    (S, E) -> the same shape. ``src_mask`` (S, S) or (N * nhead, S, S) and ``src_key_padding_mask``
    (N, S) are ``MultiheadAttention``'s masks (bool: True where a query may NOT attend; float:
    added to the scores). ``is_causal=True`` is torch's hint that ``src_mask`` is the causal mask.
    ``device`` is accepted and not used; no fused inference path (see this module's notes).

        >>> layer = nn.TransformerEncoderLayer(d_model=16, nhead=4, dim_feedforward=32, batch_first=True)
        >>> layer(gt.randn(2, 5, 16)).shape
        (2, 5, 16)
    """

    def __init__(self, d_model, nhead, dim_feedforward=2048, dropout=0.1, activation=relu, layer_norm_eps=1e-5,
                 batch_first=False, norm_first=False, bias=True, device=None, dtype=None):
        super().__init__()
        activation = _activation(activation, type(self).__name__)
        self.self_attn = MultiheadAttention(d_model, nhead, dropout=dropout, bias=bias, batch_first=batch_first,
                                            dtype=dtype)
        self._feed_forward_init(d_model, dim_feedforward, dropout, bias, dtype)
        self.norm_first = bool(norm_first)
        self.norm1 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, dtype=dtype)
        self.norm2 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, dtype=dtype)
        self.dropout1, self.dropout2 = Dropout(dropout), Dropout(dropout)
        # torch's flag for its fused kernel (1 relu, 2 gelu, 0 another): kept for code that reads it
        self.activation_relu_or_gelu = 1 if activation is relu or isinstance(activation, ReLU) else \
            2 if activation is F.gelu or isinstance(activation, GELU) else 0
        self.activation = activation

    def forward(self, src, src_mask=None, src_key_padding_mask=None, is_causal=False):
        if is_nested(src):      # torch's fast path (each sequence on its own), else its attention's error
            refuse_module(self.self_attn, src, src, src, src_key_padding_mask, src_mask)
            return per_sequence(src, lambda x: self(x, is_causal=is_causal))
        x = self._input(src, "src")
        if self.norm_first:
            x = x + self._sa_block(self.norm1(x), src_mask, src_key_padding_mask, is_causal)
            return x + self._ff(self.norm2(x), self.dropout2)
        x = self.norm1(x + self._sa_block(x, src_mask, src_key_padding_mask, is_causal))
        return self.norm2(x + self._ff(x, self.dropout2))

    def _sa_block(self, x, attn_mask, key_padding_mask, is_causal):
        x = self.self_attn(x, x, x, attn_mask=attn_mask, key_padding_mask=key_padding_mask, need_weights=False,
                           is_causal=is_causal)[0]
        return self.dropout1(x)


class TransformerDecoderLayer(_FeedForwardLayer):
    """Self-attention, attention over the encoder's output (``memory``), then a feed-forward
    network, each with a residual connection and a ``LayerNorm`` (``norm1``, ``norm2``, ``norm3``),
    as ``torch.nn.TransformerDecoderLayer``: post-norm by default, pre-norm with ``norm_first=True``.

    Shapes (E = ``d_model``): tgt (T, N, E) and memory (S, N, E), batch first (N, T, E) and
    (N, S, E) with ``batch_first=True``, or unbatched (T, E) and (S, E) -> tgt's shape.
    ``tgt_mask`` (T, T), ``memory_mask`` (T, S), ``tgt_key_padding_mask`` (N, T) and
    ``memory_key_padding_mask`` (N, S) as in ``MultiheadAttention``; ``tgt_is_causal`` and
    ``memory_is_causal`` are torch's hints that ``tgt_mask`` / ``memory_mask`` are causal.
    ``device`` is accepted and not used (see this module's notes).

        >>> layer = nn.TransformerDecoderLayer(d_model=16, nhead=4, dim_feedforward=32)
        >>> layer(gt.randn(3, 2, 16), gt.randn(5, 2, 16)).shape      # (T, N, E), (S, N, E)
        (3, 2, 16)
    """

    def __init__(self, d_model, nhead, dim_feedforward=2048, dropout=0.1, activation=relu, layer_norm_eps=1e-5,
                 batch_first=False, norm_first=False, bias=True, device=None, dtype=None):
        super().__init__()
        activation = _activation(activation, type(self).__name__)
        self.self_attn = MultiheadAttention(d_model, nhead, dropout=dropout, bias=bias, batch_first=batch_first,
                                            dtype=dtype)
        self.multihead_attn = MultiheadAttention(d_model, nhead, dropout=dropout, bias=bias,
                                                 batch_first=batch_first, dtype=dtype)
        self._feed_forward_init(d_model, dim_feedforward, dropout, bias, dtype)
        self.norm_first = bool(norm_first)
        self.norm1 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, dtype=dtype)
        self.norm2 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, dtype=dtype)
        self.norm3 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, dtype=dtype)
        self.dropout1, self.dropout2, self.dropout3 = Dropout(dropout), Dropout(dropout), Dropout(dropout)
        self.activation = activation

    def forward(self, tgt, memory, tgt_mask=None, memory_mask=None, tgt_key_padding_mask=None,
                memory_key_padding_mask=None, tgt_is_causal=False, memory_is_causal=False):
        if is_nested(tgt):      # torch's errors: its attention takes a nested tensor on its fast path only
            refuse_module(self.self_attn, tgt, tgt, tgt, tgt_key_padding_mask, tgt_mask)
        if is_nested(tgt) or is_nested(memory):     # the cross-attention's query is the block's: never self
            refuse_module(self.multihead_attn, tgt, memory, memory, memory_key_padding_mask, memory_mask, False)
        x, memory = self._input(tgt, "tgt"), self._input(memory, "memory")
        if self.norm_first:
            x = x + self._sa_block(self.norm1(x), tgt_mask, tgt_key_padding_mask, tgt_is_causal)
            x = x + self._mha_block(self.norm2(x), memory, memory_mask, memory_key_padding_mask, memory_is_causal)
            return x + self._ff(self.norm3(x), self.dropout3)
        x = self.norm1(x + self._sa_block(x, tgt_mask, tgt_key_padding_mask, tgt_is_causal))
        x = self.norm2(x + self._mha_block(x, memory, memory_mask, memory_key_padding_mask, memory_is_causal))
        return self.norm3(x + self._ff(x, self.dropout3))

    def _sa_block(self, x, attn_mask, key_padding_mask, is_causal):
        x = self.self_attn(x, x, x, attn_mask=attn_mask, key_padding_mask=key_padding_mask, is_causal=is_causal,
                           need_weights=False)[0]
        return self.dropout1(x)

    def _mha_block(self, x, mem, attn_mask, key_padding_mask, is_causal):
        x = self.multihead_attn(x, mem, mem, attn_mask=attn_mask, key_padding_mask=key_padding_mask,
                                is_causal=is_causal, need_weights=False)[0]
        return self.dropout2(x)


class TransformerEncoder(Module):
    """``num_layers`` copies of ``encoder_layer`` (``layers.0``, ``layers.1``, ...; each a deep copy,
    so they start equal and train apart) and an optional final ``norm``, as
    ``torch.nn.TransformerEncoder``. ``forward(src, mask, src_key_padding_mask, is_causal)``: shapes
    as ``TransformerEncoderLayer``'s. With ``is_causal=None`` a ``mask`` equal to the causal mask is
    detected, as in torch. ``enable_nested_tensor`` and ``mask_check`` are accepted and stored: gt
    has no nested-tensor path (see the module's notes), so ``use_nested_tensor`` is always False.

        >>> layer = nn.TransformerEncoderLayer(16, 4, dim_feedforward=32)
        >>> encoder = nn.TransformerEncoder(layer, num_layers=2, norm=nn.LayerNorm(16))
        >>> encoder(gt.randn(5, 2, 16)).shape
        (5, 2, 16)
    """

    def __init__(self, encoder_layer, num_layers, norm=None, enable_nested_tensor=True, mask_check=True):
        super().__init__()
        self.layers = _clones(encoder_layer, num_layers, "TransformerEncoder")
        self.num_layers = num_layers
        self.norm = norm
        self.enable_nested_tensor, self.mask_check = enable_nested_tensor, mask_check
        self.use_nested_tensor = False      # torch's flag for its nested-tensor path, which gt does not have

    def forward(self, src, mask=None, src_key_padding_mask=None, is_causal=None):
        output = src if is_nested(src) else as_tensor(src, "TransformerEncoder", "src")     # nested: the layer's error
        if len(self.layers):
            batch_first = self.layers[0].self_attn.batch_first
            is_causal = _detect_is_causal_mask(mask, is_causal, _seq_len(output, batch_first))
        for mod in self.layers:
            output = mod(output, src_mask=mask, is_causal=is_causal, src_key_padding_mask=src_key_padding_mask)
        return output if self.norm is None else self.norm(output)


class TransformerDecoder(Module):
    """``num_layers`` copies of ``decoder_layer`` (``layers.N``) and an optional final ``norm``, as
    ``torch.nn.TransformerDecoder``. ``forward(tgt, memory, tgt_mask, memory_mask,
    tgt_key_padding_mask, memory_key_padding_mask, tgt_is_causal, memory_is_causal)``: shapes as
    ``TransformerDecoderLayer``'s; with ``tgt_is_causal=None`` a causal ``tgt_mask`` is detected.

        >>> layer = nn.TransformerDecoderLayer(16, 4, dim_feedforward=32, batch_first=True)
        >>> decoder = nn.TransformerDecoder(layer, num_layers=2)
        >>> decoder(gt.randn(2, 3, 16), gt.randn(2, 5, 16)).shape
        (2, 3, 16)
    """

    def __init__(self, decoder_layer, num_layers, norm=None):
        super().__init__()
        self.layers = _clones(decoder_layer, num_layers, "TransformerDecoder")
        self.num_layers = num_layers
        self.norm = norm

    def forward(self, tgt, memory, tgt_mask=None, memory_mask=None, tgt_key_padding_mask=None,
                memory_key_padding_mask=None, tgt_is_causal=None, memory_is_causal=False):
        output = tgt if is_nested(tgt) else as_tensor(tgt, "TransformerDecoder", "tgt")     # nested: the layer's error
        if len(self.layers):
            batch_first = self.layers[0].self_attn.batch_first
            tgt_is_causal = _detect_is_causal_mask(tgt_mask, tgt_is_causal, _seq_len(output, batch_first))
        for mod in self.layers:
            output = mod(output, memory, tgt_mask=tgt_mask, memory_mask=memory_mask,
                         tgt_key_padding_mask=tgt_key_padding_mask, memory_key_padding_mask=memory_key_padding_mask,
                         tgt_is_causal=tgt_is_causal, memory_is_causal=memory_is_causal)
        return output if self.norm is None else self.norm(output)


class Transformer(Module):
    """The encoder-decoder transformer of "Attention Is All You Need", as ``torch.nn.Transformer``:
    ``encoder`` (a ``TransformerEncoder`` of ``num_encoder_layers`` layers and a final
    ``LayerNorm``) and ``decoder`` (likewise), or ``custom_encoder`` / ``custom_decoder``. As torch,
    every parameter with more than one dim is re-initialised ``xavier_uniform_``. ``device`` is
    accepted and not used (see this module's notes).

    ``forward(src, tgt, ...)``: src (S, N, E), tgt (T, N, E) (batch first (N, S, E), (N, T, E);
    unbatched (S, E), (T, E)) -> (T, N, E), tgt's shape; masks as the encoder's and decoder's, under
    torch's names (``src_mask``, ``tgt_mask``, ``memory_mask``, ``*_key_padding_mask``,
    ``src_is_causal``, ``tgt_is_causal``, ``memory_is_causal``).

        >>> model = nn.Transformer(d_model=16, nhead=4, num_encoder_layers=1, num_decoder_layers=1,
        ...                        dim_feedforward=32, batch_first=True)
        >>> tgt_mask = nn.Transformer.generate_square_subsequent_mask(3)
        >>> model(gt.randn(2, 5, 16), gt.randn(2, 3, 16), tgt_mask=tgt_mask).shape
        (2, 3, 16)
    """

    def __init__(self, d_model=512, nhead=8, num_encoder_layers=6, num_decoder_layers=6, dim_feedforward=2048,
                 dropout=0.1, activation=relu, custom_encoder=None, custom_decoder=None, layer_norm_eps=1e-5,
                 batch_first=False, norm_first=False, bias=True, device=None, dtype=None):
        super().__init__()
        layer_args = (d_model, nhead, dim_feedforward, dropout, activation, layer_norm_eps, batch_first, norm_first,
                      bias)
        if custom_encoder is not None:
            self.encoder = custom_encoder
        else:
            self.encoder = TransformerEncoder(TransformerEncoderLayer(*layer_args, dtype=dtype), num_encoder_layers,
                                              LayerNorm(d_model, eps=layer_norm_eps, bias=bias, dtype=dtype))
        if custom_decoder is not None:
            self.decoder = custom_decoder
        else:
            self.decoder = TransformerDecoder(TransformerDecoderLayer(*layer_args, dtype=dtype), num_decoder_layers,
                                              LayerNorm(d_model, eps=layer_norm_eps, bias=bias, dtype=dtype))
        self._reset_parameters()
        self.d_model, self.nhead, self.batch_first = d_model, nhead, batch_first

    def forward(self, src, tgt, src_mask=None, tgt_mask=None, memory_mask=None, src_key_padding_mask=None,
                tgt_key_padding_mask=None, memory_key_padding_mask=None, src_is_causal=None, tgt_is_causal=None,
                memory_is_causal=False):
        # a nested one: the encoder's or decoder's error (torch's)
        src, tgt = (t if is_nested(t) else as_tensor(t, "Transformer", n) for t, n in ((src, "src"), (tgt, "tgt")))
        if src.ndim == 3:
            axis = 0 if self.batch_first else 1
            if tgt.ndim != 3 or src.size(axis) != tgt.size(axis):
                raise RuntimeError(f"Transformer: the batch number of src and tgt must be equal, got src of shape "
                                   f"{src.shape} and tgt of shape {tgt.shape} (batch_first={self.batch_first})")
        if src.size(-1) != self.d_model or tgt.size(-1) != self.d_model:
            raise RuntimeError(f"Transformer: the feature number of src and tgt must be equal to d_model = "
                               f"{self.d_model}, got src of shape {src.shape} and tgt of shape {tgt.shape}")
        memory = self.encoder(src, mask=src_mask, src_key_padding_mask=src_key_padding_mask, is_causal=src_is_causal)
        return self.decoder(tgt, memory, tgt_mask=tgt_mask, memory_mask=memory_mask,
                            tgt_key_padding_mask=tgt_key_padding_mask, memory_key_padding_mask=memory_key_padding_mask,
                            tgt_is_causal=tgt_is_causal, memory_is_causal=memory_is_causal)

    @staticmethod
    def generate_square_subsequent_mask(sz, device=None, dtype=None):
        """(sz, sz) causal mask, float (the default float dtype unless ``dtype``): 0.0 on and below
        the diagonal, -inf above. ``device`` is accepted for torch's signature and not used.

            >>> nn.Transformer.generate_square_subsequent_mask(3).tolist()
            [[0.0, -inf, -inf], [0.0, 0.0, -inf], [0.0, 0.0, 0.0]]
        """
        return _generate_square_subsequent_mask(sz, dtype=dtype)

    def _reset_parameters(self):
        """torch's initialisation (the name is torch's too): xavier_uniform_ on every matrix."""
        for p in self.parameters():
            if p.ndim > 1:
                init.xavier_uniform_(p)
