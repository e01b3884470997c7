"""``KVCache``: the keys and values a decoder has already computed, reused step after step."""

from gt import dtypes
from gt.tensor import Tensor, cat, tensor


class KVCache:
    """Keys and values of earlier positions, for decoding one step at a time.

    Create one per generation and pass the same object to every call of the model (and, through
    it, of each ``TransformerBlock`` / ``MultiHeadAttention``): each attention layer keeps its
    own entry in it, keyed by the layer itself. A self-attention layer appends the keys and
    values of the new positions to those of the earlier calls, so each call after the first
    passes only the new tokens; a cross-attention layer projects its ``context`` (the encoder's
    output) on the first call and reuses the projection while the same context tensor comes
    back (a different tensor is projected anew). Causal masking lines the new positions up
    with the last keys. ``seq_len`` is the number of positions seen so far (the position of the
    next token, for positional encodings).

        >>> cache = nn.KVCache()
        >>> with gt.no_grad():
        ...     logits = model(prompt, context=enc, cache=cache)         # the whole prompt once
        ...     for _ in range(max_new_tokens):
        ...         nxt = logits[:, -1].argmax(-1).unsqueeze(1)           # (B, 1)
        ...         logits = model(nxt, context=enc, cache=cache)         # the new token only

    The logits are those of running the whole sequence each step (to float rounding). Cached
    tensors keep their sharding: a batch sharded over the mesh stays sharded. Decode under
    ``gt.no_grad()``: with recording on, the cache keeps every step's graph alive.
    """

    def __init__(self):
        self._self_entries = {}    # id(layer) -> [layer, keys (B, S, D), values (B, S, D)]
        self._cross_entries = {}   # id(layer) -> [layer, context, keys, values]
        self._reused = {}          # id(owner) -> [owner, source, value]: see reuse

    @property
    def seq_len(self):
        """How many positions the self-attention layers have cached (0 before the first call)."""
        return next((k.shape[1] for _, k, _ in self._self_entries.values()), 0)

    def __len__(self):
        return self.seq_len

    def reset(self):
        """Forget everything (start a new sequence with the same object)."""
        self._self_entries.clear()
        self._cross_entries.clear()
        self._reused.clear()

    def reorder(self, index):
        """Keep, for each row b of the batch, the cached keys and values of row ``index[b]``
        (beam search: each new beam continues the beam it was chosen from). ``index`` (B',) int
        ids of rows; B' may differ from B. The context-derived entries (cross-attention, ``reuse``)
        are kept as they are: the beams of one image share its context rows."""
        index = index if isinstance(index, Tensor) else tensor(index, dtype=dtypes.int64)
        if index.ndim != 1 or index.dtype not in (dtypes.int64, dtypes.int32):
            raise ValueError(f"KVCache.reorder: index must be 1-D int row ids, got {index.dtype!r} {index.shape}")
        rows = next((k.shape[0] for _, k, _ in self._self_entries.values()), None)
        if rows is not None and index.numel() and (int(index.min()) < 0 or int(index.max()) >= rows):
            raise ValueError(f"KVCache.reorder: index holds a row outside [0, {rows})")
        for entry in self._self_entries.values():
            entry[1], entry[2] = entry[1][index], entry[2][index]

    def reuse(self, owner, source, compute):
        """``compute(source)``, computed on the first call for ``owner`` and reused while the same
        ``source`` tensor comes back (e.g. a decoder's projection of the image features)."""
        entry = self._reused.get(id(owner))
        if entry is None or entry[1] is not source:
            entry = [owner, source, compute(source)]
            self._reused[id(owner)] = entry
        return entry[2]

    def _append(self, layer, k, v):
        """The layer's keys and values with the new ones (B, L, D) appended: (B, S + L, D)."""
        entry = self._self_entries.get(id(layer))
        if entry is not None:
            k, v = cat([entry[1], k], dim=1), cat([entry[2], v], dim=1)
        self._self_entries[id(layer)] = [layer, k, v]
        return k, v

    def _cross_kv(self, layer, context):
        """The layer's keys and values of ``context``, projected on the first call only."""
        entry = self._cross_entries.get(id(layer))
        if entry is None or entry[1] is not context:
            entry = [layer, context, layer.k_proj(context), layer.v_proj(context)]
            self._cross_entries[id(layer)] = entry
        return entry[2], entry[3]

    def __repr__(self):
        return (f"KVCache(seq_len={self.seq_len}, self_attention={len(self._self_entries)}, "
                f"cross_attention={len(self._cross_entries)})")
