"""torch's embedding options, shared by ``F.embedding`` and ``nn.Embedding``: ``padding_idx``
(its row gets no gradient), ``max_norm`` (picked rows scaled down in place before the lookup)
and ``scale_grad_by_freq`` (each row's gradient divided by its id's count in the batch)."""

from gt import autograd
from gt.tensor import Tensor, ones_like, where

_MAX_NORM_EPS = 1e-7    # torch's embedding_renorm_: scale = max_norm / (norm + 1e-7)


def padding_index(num_embeddings, padding_idx, fn):
    """``padding_idx`` as a row of a table of ``num_embeddings`` rows (negative counts from the
    end, as torch), or None; ValueError outside the table."""
    if padding_idx is None:
        return None
    if isinstance(padding_idx, bool) or not isinstance(padding_idx, int):
        raise TypeError(f"{fn}: padding_idx must be an int or None, got {padding_idx!r}")
    if not -num_embeddings <= padding_idx < num_embeddings:
        raise ValueError(f"{fn}: padding_idx must be within the {num_embeddings} rows of the table "
                         f"(-{num_embeddings}..{num_embeddings - 1}), got {padding_idx}")
    return padding_idx % num_embeddings


def lookup_options(num_embeddings, padding_idx, max_norm, norm_type, fn):
    """Check the options before any work; returns the padding row (or None)."""
    if max_norm is not None and (isinstance(max_norm, bool) or not isinstance(max_norm, (int, float)) or max_norm <= 0):
        raise ValueError(f"{fn}: max_norm must be a positive number or None, got {max_norm!r}")
    if isinstance(norm_type, bool) or not isinstance(norm_type, (int, float)):
        raise TypeError(f"{fn}: norm_type must be a number, got {norm_type!r}")
    return padding_index(num_embeddings, padding_idx, fn)


def renorm_(weight, idx, max_norm, norm_type):
    """Scale the rows of ``weight`` picked by ``idx`` whose norm exceeds ``max_norm`` down to it,
    in place and outside the graph (torch's ``embedding_renorm_``)."""
    with autograd.no_grad():
        rows = idx.flatten().unique()
        picked = weight[rows]
        # the vector norm of any order, as torch's at::norm (inf: the largest |value|, 0: a count)
        norms = picked.norm(p=norm_type, dim=-1) if norm_type != 2 else (picked * picked).sum(-1).sqrt()
        scale = where(norms > max_norm, max_norm / (norms + _MAX_NORM_EPS), ones_like(norms))
        weight[rows] = picked * scale.unsqueeze(-1)


def gradient_scale(idx, padding_idx, by_freq, dtype):
    """(*idx.shape, 1): what each looked-up row's gradient is multiplied by."""
    scale = ones_like(idx, dtype=dtype)
    if by_freq:
        flat = idx.flatten()
        counts = flat.bincount()                                  # each id's count in the batch
        scale = scale / counts[idx].to(dtype)
    if padding_idx is not None:
        scale = where(idx == padding_idx, 0.0, scale)
    return scale.unsqueeze(-1)


def init_padding_row_(weight, padding_idx):
    """Zero the padding row of a new table, as torch's ``reset_parameters``."""
    if padding_idx is not None:
        with autograd.no_grad():
            weight[padding_idx] = 0.0


def check_weight(weight, num_embeddings, embedding_dim, fn):
    """``_weight=`` of ``nn.Embedding``: a (num_embeddings, embedding_dim) float tensor."""
    if not isinstance(weight, Tensor) or not weight.dtype.is_floating_point:
        raise TypeError(f"{fn}: _weight must be a float tensor, got {type(weight).__name__}")
    if tuple(weight.shape) != (num_embeddings, embedding_dim):
        raise ValueError(f"{fn}: _weight must have shape ({num_embeddings}, {embedding_dim}) "
                         f"(num_embeddings, embedding_dim), got {tuple(weight.shape)}")
    return weight
