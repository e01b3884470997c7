"""Max pooling that also says where each maximum came from (``return_indices=True``, the
adaptive max pools): the positions from gt/ops/pool_indices.py, the values read back there with
``gather``, so that the gradient follows the indices (torch's routing, ties included)."""

import math

from gt.ops import pool_indices as pool_ops


def max_with_indices(x, nd, windows):
    """``(values, indices)``, both (..., *out), of the windows that ``windows`` describes (see
    ``WindowArgmax``) over the last ``nd`` axes of x (..., *size); indices int64 flat positions
    within each (*size) plane."""
    indices = pool_ops.WindowArgmax.apply(x, windows=windows)
    lead = x.shape[:x.ndim - nd]
    plane = x.reshape(*lead, math.prod(x.shape[x.ndim - nd:]))                   # (..., prod(size))
    flat = indices.reshape(*lead, math.prod(indices.shape[x.ndim - nd:]))       # (..., prod(out))
    return plane.gather(-1, flat).reshape(*indices.shape), indices
