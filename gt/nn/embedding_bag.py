"""``EmbeddingBag`` and ``F.embedding_bag``: the sum, mean or max of the embeddings of each bag of
ids, without forming the per-id embeddings of the caller. Bags are padded to the longest one and
masked, so one gather and one reduction serve every bag (no Python loop over bags)."""

from gt import dtypes
from gt.nn import init
from gt.nn.embedding_options import renorm_
from gt.nn.inputs import as_tensor as _tensor
from gt.nn.inputs import check_range as _check_range
from gt.nn.inputs import class_indices as _class_indices
from gt.nn.module import Module
from gt.nn.parameter import Parameter
from gt.tensor import arange, cat, empty, tensor, where, zeros

_MODES = ("sum", "mean", "max")


def _padded_bags(fn, idx, offsets, include_last_offset):
    """1-D ``idx`` cut at ``offsets`` -> ((B, M) ids, (B, M) bool valid, (B, M) positions into idx)."""
    offsets = _class_indices(offsets, fn, "offsets")
    if offsets.ndim != 1:
        raise ValueError(f"{fn}: offsets has to be a 1D Tensor, got shape {offsets.shape}")
    n = idx.shape[0]
    if include_last_offset and offsets.shape[0] == 0:
        raise ValueError(f"{fn}: include_last_offset=True needs at least one offset (the end), got none")
    starts = offsets[:-1] if include_last_offset else offsets
    ends = offsets[1:] if include_last_offset else cat([offsets[1:], tensor([n], dtype=offsets.dtype)])
    if offsets.shape[0]:
        first, counts = int(offsets[0].item()), ends - starts
        if first != 0:
            raise ValueError(f"{fn}: offsets[0] has to be 0 (the first bag starts at position 0), got {first}")
        if bool((counts < 0).any()) or int(ends.max().item()) > n:
            raise ValueError(f"{fn}: offsets must be non-decreasing and at most the input length {n}, got "
                             f"{offsets.tolist()}")
        if include_last_offset and int(offsets[-1].item()) != n:
            # torch's CSR convention; torch's sum/mean kernels read to the end of input anyway, its max does not
            raise ValueError(f"{fn}: with include_last_offset=True the last offset must be the input length {n}, "
                             f"got {int(offsets[-1].item())}")
    else:
        counts = starts
    longest = max(int(counts.max().item()) if counts.numel() else 0, 1)   # >= 1 column: no empty gather
    steps = arange(longest)
    valid = steps.unsqueeze(0) < counts.unsqueeze(1)                        # (B, M)
    pos = (starts.unsqueeze(1) + steps).clamp(0, max(n - 1, 0))           # (B, M)
    ids = idx[pos] if n else zeros(*pos.shape, dtype=idx.dtype)
    return ids, valid, pos


def _sample_weights(fn, per_sample_weights, idx, weight, mode):
    """``per_sample_weights`` as a tensor, after torch's checks (shape, dtype, mode 'sum')."""
    psw = _tensor(per_sample_weights, fn, "per_sample_weights")
    if psw.shape != idx.shape:
        raise ValueError(f"{fn}: If per_sample_weights ({psw.shape}) is not None, then it must have the same "
                         f"shape as the input ({idx.shape})")
    if psw.dtype != weight.dtype:
        raise TypeError(f"{fn}: per_sample_weights must have the weight's dtype {weight.dtype!r}, got {psw.dtype!r}")
    if mode != "sum":
        raise NotImplementedError(f"{fn}: per_sample_weights was not None. per_sample_weights is only supported "
                                  f"for mode='sum' (got mode={mode!r})")
    return psw


def embedding_bag(input, weight, offsets=None, max_norm=None, norm_type=2, scale_grad_by_freq=False, mode="mean",
                  sparse=False, per_sample_weights=None, include_last_offset=False, padding_idx=None):
    """Reduce the rows of ``weight`` (num_embeddings, D) picked by each bag of ids -> (B, D).

    ``input`` is (B, N) (B bags of N ids; ``offsets`` must be None) or 1-D ids with 1-D ``offsets``
    giving where each bag starts (``include_last_offset=True``: the last offset is the end, so B =
    len(offsets) - 1). ``mode`` is 'sum', 'mean' or 'max'; an empty bag gives zeros.
    ``per_sample_weights`` (shaped like ``input``, mode 'sum' only) scales each row first. Ids equal
    to ``padding_idx`` are left out of their bag (and of the mean's count), as torch's. ``max_norm``:
    the rows of every id in ``input`` whose ``norm_type``-norm exceeds it are first scaled down to
    it in ``weight`` itself (in place, outside the graph), as ``F.embedding``'s.

    Where gt differs from torch: ``scale_grad_by_freq=True`` and ``sparse=True`` raise
    NotImplementedError (no sparse gradients; torch 2.13's CPU kernel divides by counts that are not
    each id's own: summed bags [1, 1, 2, 2, 2, 3] give row 2 a gradient of 1.5, not 1).
    With ``include_last_offset=True`` the last offset must be len(input) (torch's documented CSR
    convention; given less, torch's sum and mean kernels read to the end of the input anyway while
    its max stops there, so gt raises ValueError instead of picking one).

        >>> ids, offsets = gt.tensor([1, 2, 4, 5, 4, 3]), gt.tensor([0, 3])     # two bags of three ids
        >>> F.embedding_bag(ids, gt.randn(10, 3), offsets, mode="sum").shape
        (2, 3)
    """
    fn = "embedding_bag"
    if scale_grad_by_freq or sparse:
        raise NotImplementedError(f"{fn}: scale_grad_by_freq=True and sparse=True are not supported by gt "
                                  f"(got scale_grad_by_freq={scale_grad_by_freq!r}, sparse={sparse!r})")
    if mode not in _MODES:
        raise ValueError(f"{fn}: mode has to be one of sum, mean or max, got {mode!r}")
    idx, weight = _class_indices(input, fn, "input"), _tensor(weight, fn, "weight")
    if weight.ndim != 2:
        raise ValueError(f"{fn}: weight has to be a 2D Tensor, but got Tensor of dimension {weight.ndim}")
    num = weight.shape[0]
    psw = None if per_sample_weights is None else _sample_weights(fn, per_sample_weights, idx, weight, mode)
    if padding_idx is not None:
        if isinstance(padding_idx, bool) or not isinstance(padding_idx, int) or not -num <= padding_idx < num:
            raise ValueError(f"{fn}: padding_idx must be an int within num_embeddings={num}, got {padding_idx!r}")
        padding_idx %= num
    idx = _check_range(idx, num, fn, "index", f"an embedding table of {num} rows", IndexError)
    if max_norm is not None:         # every id of the input, padding ones too, as torch's
        renorm_(weight, idx, max_norm, norm_type)
    if idx.ndim == 2:
        if offsets is not None:
            raise ValueError(f"{fn}: if input is 2D, then offsets has to be None, as input is treated as a "
                             f"mini-batch of fixed length sequences")
        ids, valid = idx, None
    elif idx.ndim == 1:
        if offsets is None:
            raise ValueError(f"{fn}: offsets has to be a 1D Tensor but got None (1-D input needs offsets)")
        ids, valid, pos = _padded_bags(fn, idx, offsets, include_last_offset)
        # no ids: zeros still tied to per_sample_weights, whose gradient is then empty, not None (torch's)
        psw = None if psw is None else (psw[pos] if idx.shape[0] else zeros(*pos.shape, dtype=psw.dtype) + psw.sum())
    else:
        raise ValueError(f"{fn}: input has to be 1D or 2D Tensor, but got Tensor of dimension {idx.ndim}")
    if padding_idx is not None:
        valid = (ids != padding_idx) if valid is None else valid & (ids != padding_idx)
    return _reduce(weight[ids], valid, psw, mode)                          # rows: (B, M, D)


def _reduce(rows, valid, psw, mode):
    """Masked sum/mean/max over axis 1 of (B, M, D) ``rows``; ``valid`` (B, M) bool or None (all)."""
    if psw is not None:
        rows = rows * psw.unsqueeze(-1)
    if valid is None:
        return {"sum": lambda: rows.sum(1), "mean": lambda: rows.mean(1), "max": lambda: rows.amax(1)}[mode]()
    keep = valid.unsqueeze(-1)                                             # (B, M, 1)
    if mode == "max":
        best = where(keep, rows, float("-inf")).amax(1)
        return where(keep.any(1), best, 0.0)                               # an empty bag gives zeros
    total = where(keep, rows, 0.0).sum(1)
    return total if mode == "sum" else total / valid.sum(1, keepdim=True).clamp(min=1).to(rows.dtype)


class EmbeddingBag(Module):
    """Sums, means or maxima of bags of embeddings (see ``F.embedding_bag``): (B, N) ids, or 1-D ids
    and offsets -> (B, embedding_dim).

    ``weight`` (num_embeddings, embedding_dim) starts as N(0, 1) samples with the ``padding_idx`` row
    zeroed, as torch's. ``scale_grad_by_freq`` and ``sparse`` are refused (see ``F.embedding_bag``).

        >>> bag = nn.EmbeddingBag(10, 3, mode="sum")
        >>> bag(gt.tensor([1, 2, 4, 5, 4, 3, 2, 9]), gt.tensor([0, 4])).shape
        (2, 3)
    """

    def __init__(self, num_embeddings, embedding_dim, max_norm=None, norm_type=2.0, scale_grad_by_freq=False,
                 mode="mean", sparse=False, _weight=None, include_last_offset=False, padding_idx=None, dtype=None):
        super().__init__()
        for name, n in (("num_embeddings", num_embeddings), ("embedding_dim", embedding_dim)):
            if isinstance(n, bool) or not isinstance(n, int) or n < 0:
                raise ValueError(f"EmbeddingBag: {name} must be a non-negative int, got {n!r}")
        if scale_grad_by_freq or sparse:
            raise NotImplementedError("EmbeddingBag: scale_grad_by_freq=True and sparse=True are not supported by gt")
        if mode not in _MODES:
            raise ValueError(f"EmbeddingBag: mode has to be one of sum, mean or max, got {mode!r}")
        if padding_idx is not None:
            if not -num_embeddings <= padding_idx < num_embeddings:
                raise ValueError(f"EmbeddingBag: padding_idx must be within num_embeddings={num_embeddings}, "
                                 f"got {padding_idx}")
            padding_idx %= num_embeddings
        self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim
        self.max_norm, self.norm_type, self.scale_grad_by_freq = max_norm, norm_type, scale_grad_by_freq
        self.mode, self.sparse, self.include_last_offset = mode, sparse, include_last_offset
        self.padding_idx = padding_idx
        if _weight is None:
            dtype = dtypes.default_float if dtype is None else dtype
            self.weight = Parameter(empty(num_embeddings, embedding_dim, dtype=dtype))
            self.reset_parameters()
        else:
            if tuple(_weight.shape) != (num_embeddings, embedding_dim):
                raise ValueError(f"EmbeddingBag: _weight of shape {tuple(_weight.shape)} does not match "
                                 f"(num_embeddings, embedding_dim) = ({num_embeddings}, {embedding_dim})")
            self.weight = Parameter(_weight)

    def reset_parameters(self):
        init.normal_(self.weight)
        if self.padding_idx is not None:
            init.zeros_(self.weight[self.padding_idx])

    @classmethod
    def from_pretrained(cls, embeddings, freeze=True, max_norm=None, norm_type=2.0, scale_grad_by_freq=False,
                        mode="mean", sparse=False, include_last_offset=False, padding_idx=None):
        """An ``EmbeddingBag`` whose weight is ``embeddings`` (num_embeddings, embedding_dim); ``freeze``
        (default True) makes it a constant (``weight.requires_grad = False``), as torch's."""
        embeddings = _tensor(embeddings, "EmbeddingBag.from_pretrained", "embeddings")
        if embeddings.ndim != 2:
            raise ValueError(f"EmbeddingBag.from_pretrained: embeddings must be 2-D, got shape {embeddings.shape}")
        bag = cls(*embeddings.shape, max_norm=max_norm, norm_type=norm_type, scale_grad_by_freq=scale_grad_by_freq,
                  mode=mode, sparse=sparse, _weight=embeddings, include_last_offset=include_last_offset,
                  padding_idx=padding_idx)
        bag.weight.requires_grad = not freeze
        return bag

    def forward(self, input, offsets=None, per_sample_weights=None):
        return embedding_bag(input, self.weight, offsets, self.max_norm, self.norm_type, False, self.mode, False,
                             per_sample_weights, self.include_last_offset, self.padding_idx)

    def extra_repr(self):
        s = f"{self.num_embeddings}, {self.embedding_dim}"
        if self.norm_type != 2:
            s += f", norm_type={self.norm_type!r}"
        s += f", mode={self.mode!r}"
        return s + (f", padding_idx={self.padding_idx!r}" if self.padding_idx is not None else "")
