"""torch's functions over pairs and sets of tensors, composed from gt's differentiable ops:
``tensordot``, ``cdist``, ``block_diag``, ``cartesian_prod``, ``combinations``, and the function
forms of ``kron``, ``inner`` and ``repeat_interleave``. Values, dtypes and gradients are torch's
(tests/test_construct_functions.py runs each beside torch).
"""

import math

from gt import amp, dtypes
from gt.ops._shapes import numel
from gt.tensor.construct_functions import _input, _sequence, meshgrid
from gt.tensor.construct_methods import promoted
from gt.tensor.core import Tensor
from gt.tensor.creation import arange, zeros
from gt.tensor.arithmetic import where
from gt.tensor.functions import _method, cat, stack
from gt.tensor.shape import torch_node_name

# the function forms of two methods of construct_methods.py
kron, inner = _method("kron"), _method("inner")

_CDIST_MODES = ("use_mm_for_euclid_dist_if_necessary", "use_mm_for_euclid_dist", "donot_use_mm_for_euclid_dist")


def _dims_pair(dims, a, b):
    if isinstance(dims, Tensor):
        dims = dims.tolist()
    if isinstance(dims, int):
        if dims < 0:
            raise RuntimeError(f"tensordot expects dims >= 0, but got dims={dims}")
        if dims > min(a.ndim, b.ndim):
            raise RuntimeError(f"tensordot expects dims < ndim_a or ndim_b, but got dims={dims}")
        return list(range(a.ndim - dims, a.ndim)), list(range(dims))
    da, db = ([d] if isinstance(d, int) else list(d) for d in dims)
    if len(da) != len(db):
        raise RuntimeError(f"both dimension lists should have same length, got {len(da)} and {len(db)}")
    return da, db


def tensordot(a, b, dims=2):
    """The sum of products over the dims ``dims[0]`` of ``a`` and ``dims[1]`` of ``b`` (or the
    last ``dims`` of ``a`` with the first ``dims`` of ``b`` for an int): the result has ``a``'s free
    dims, then ``b``'s. One matmul of the two, each permuted and flattened to a matrix."""
    a, b = _input(a, "tensordot"), _input(b, "tensordot")
    if a.dtype != b.dtype:      # torch does not promote here
        raise RuntimeError(f"both inputs should have same dtype (tensordot of {a.dtype} and {b.dtype})")
    da, db = _dims_pair(dims, a, b)
    da, db = [d % max(a.ndim, 1) for d in da], [d % max(b.ndim, 1) for d in db]
    for x, y in zip(da, db):
        if b.shape[y] == 1 != a.shape[x]:       # a size-1 dim broadcasts: the other is summed out, as torch
            a = a.sum(x, keepdim=True, dtype=a.dtype)
        elif a.shape[x] == 1 != b.shape[y]:
            b = b.sum(y, keepdim=True, dtype=b.dtype)
        elif a.shape[x] != b.shape[y]:
            raise RuntimeError(f"contracted dimensions need to match, but first has size {a.shape[x]} in dim {x} "
                               f"and second has size {b.shape[y]} in dim {y}")
    free_a = [d for d in range(a.ndim) if d not in da]
    free_b = [d for d in range(b.ndim) if d not in db]
    k = numel([a.shape[d] for d in da])
    left = a.permute(*free_a, *da).reshape(numel([a.shape[d] for d in free_a]), k)
    right = b.permute(*db, *free_b).reshape(k, numel([b.shape[d] for d in free_b]))
    return (left @ right).reshape(*[a.shape[d] for d in free_a], *[b.shape[d] for d in free_b])


@torch_node_name("CdistBackward0")
@amp.runs_in_float32      # torch.autocast's fp32 list
def cdist(x1, x2, p=2.0, compute_mode="use_mm_for_euclid_dist_if_necessary"):
    """The p-norm distance between each row of ``x1`` ``(..., P, M)`` and each row of ``x2``
    ``(..., R, M)``: ``(..., P, R)``, the batch dims broadcast. ``p=0`` counts differing entries
    (a zero gradient), ``p=inf`` is the largest difference (torch's gradient: all of it to each
    tied coordinate). ``compute_mode`` is accepted for torch's sake; gt always takes the
    differences directly (torch's mm path for large inputs differs from it by rounding only), so
    a zero distance has a zero gradient, as torch's direct path."""
    x1, x2 = _input(x1, "cdist"), _input(x2, "cdist")
    for name, x in (("X1", x1), ("X2", x2)):
        if x.ndim < 2:
            raise RuntimeError(f"cdist only supports at least 2D tensors, {name} got: {x.ndim}D")
        if not x.dtype.is_floating_point:
            raise RuntimeError(f"cdist only supports floating-point dtypes, {name} got: "
                               f"{dtypes.torch_type_name(x.dtype.name)}")
    if x1.dtype is not x2.dtype:      # torch does not promote here
        raise RuntimeError(f"expected scalar type {dtypes.torch_type_name(x1.dtype.name)} but found "
                           f"{dtypes.torch_type_name(x2.dtype.name)}")
    if x1.shape[-1] != x2.shape[-1]:
        raise RuntimeError(f"X1 and X2 must have the same number of columns. X1: {x1.shape[-1]} X2: {x2.shape[-1]}")
    if not p >= 0:
        raise RuntimeError(f"cdist only supports non-negative p values, got {p}")
    if compute_mode not in _CDIST_MODES:
        raise ValueError(f"{compute_mode} is not a valid value for compute_mode")
    gap = x1.unsqueeze(-2) - x2.unsqueeze(-3)                           # ..., P, R, M
    if p == 0:
        counts = (gap != 0).sum(-1).to(gap.dtype)
        # torch's result is differentiable with a zero gradient; where() gives it without a NaN from inf
        return where(counts == counts, counts, gap.sum(-1)) if gap.requires_grad else counts
    if gap.shape[-1] == 0:
        return gap.sum(-1)
    if p == math.inf and gap.requires_grad:
        return _chebyshev(gap)
    return gap.norm(p=p, dim=-1)


def _chebyshev(gap):
    """max |gap| over the last dim with torch's cdist gradient: the whole upstream gradient times
    sign(gap) to every coordinate holding the maximum (a norm's amax splits it among ties)."""
    size = gap.abs()
    top = size.detach().amax(-1)
    picked = where(size.detach() == top.unsqueeze(-1), size, 0.0).sum(-1)
    picked = where(top.isfinite(), picked, 0.0)        # inf - inf below would be NaN
    return top + (picked - picked.detach())            # top's value, picked's gradient


def block_diag(*tensors):
    """The tensors as blocks on the diagonal of one matrix, zeros elsewhere (0-d count as
    ``(1, 1)``, 1-D as one row); the dtype is the widest of theirs."""
    tensors = promoted(_sequence(tensors, "block_diag")) if tensors else []
    for i, t in enumerate(tensors):
        if t.ndim > 2:
            raise RuntimeError(f"torch.block_diag: Input tensors must have 2 or fewer dimensions. Input {i} has "
                               f"{t.ndim} dimensions")
    blocks = [t.reshape(1, 1) if t.ndim == 0 else t.reshape(1, -1) if t.ndim == 1 else t for t in tensors]
    if not blocks:
        return zeros(1, 0)
    width, dtype = sum(b.shape[1] for b in blocks), blocks[0].dtype
    rows, left = [], 0
    for b in blocks:
        r, c = b.shape
        rows.append(cat([zeros(r, left, dtype=dtype), b, zeros(r, width - left - c, dtype=dtype)], dim=1))
        left += c
    return cat(rows, dim=0)


def cartesian_prod(*tensors):
    """Every tuple of one element from each 1-D tensor, in order: ``(N1 * N2 * ..., k)``; one tensor
    is returned as it is."""
    tensors = _sequence(tensors, "cartesian_prod")
    for t in tensors:
        if t.ndim != 1:
            raise RuntimeError(f"Expect a 1D vector, but got shape {list(t.shape)}")
    if len(tensors) == 1:
        return tensors[0]
    return stack([g.reshape(-1) for g in meshgrid(*tensors, indexing="ij")], dim=1)


def combinations(input, r=2, with_replacement=False):
    """Every length-``r`` combination of the elements of a 1-D tensor, in lexicographic order of
    positions, as rows ``(K, r)`` (``itertools.combinations``, or
    ``combinations_with_replacement``); ``r=0`` gives an empty 1-D tensor, as torch's."""
    input = _input(input, "combinations")
    if input.ndim != 1:
        raise RuntimeError(f"Expect a 1D vector, but got shape {list(input.shape)}")
    if r < 0:
        raise RuntimeError(f"Expect a non-negative number, but got {r}")
    if r == 0:
        return input.new_zeros(0)
    n = input.shape[0]
    # all n ** r position tuples, kept where the positions rise (or never fall)
    grid = stack([g.reshape(-1) for g in meshgrid(*[arange(n)] * r, indexing="ij")], dim=1)   # n ** r, r
    if r > 1:
        step = grid[:, 1:] - grid[:, :-1]
        keep = ((step >= 0) if with_replacement else (step > 0)).all(1)
        grid = grid[keep.nonzero().reshape(-1)]
    return input[grid]


def repeat_interleave(input, repeats=None, dim=None, *, output_size=None):
    """``input.repeat_interleave(repeats, dim)``; ``gt.repeat_interleave(repeats)`` alone (a 1-D
    integer tensor) repeats each position ``i`` ``repeats[i]`` times: ``[1, 2]`` -> ``[0, 1, 1]``."""
    input = _input(input, "repeat_interleave")
    if repeats is None:
        if input.ndim > 1 or input.dtype.is_floating_point or input.dtype == dtypes.bool_:
            raise RuntimeError(f"repeat_interleave: repeats must be 0-dim or 1-dim integer tensor, got shape "
                               f"{input.shape} and dtype {input.dtype!r}")
        repeats = input.reshape(-1)
        return arange(repeats.shape[0]).repeat_interleave(repeats, output_size=output_size)
    return input.repeat_interleave(repeats, dim, output_size=output_size)
