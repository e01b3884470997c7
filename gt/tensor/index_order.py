"""Where the axes of index arrays go when an index also holds integers: torch's rule.

numpy counts an integer among the index arrays, so an integer that stands apart from them sends
their axes to the front: ``x[0, :, [1, 2]]`` of a (3, 4, 5) array is (2, 4) in numpy. torch
applies the integers first (with the slices, ``None`` and ``...``) and then indexes what is left
with the arrays, so the same index gives (4, 2) there, and the values differ, not only the shape.
gt follows torch: ``torch_order`` splits such an index into those two steps, each of which
numpy's rule and torch's agree on. A 0-d integer tensor counts as an integer, as in torch.

A bool (Python's, or a 0-d bool tensor) is, in torch, a new axis of size 1 (True) or 0 (False)
indexed by a 1-D array, placed after the integers: ``x[0, :, True]`` of a (2, 3, 4) tensor is
(3, 1, 4) there and (1, 3, 4) in numpy, which counts the bool among the arrays with the integer.
An ``...`` that covers no axis does not part two arrays in torch, as it does in numpy.
"""

import numbers

from gt import dtypes
from gt.backend import B


def torch_index(index, shape):
    """The engine-level ``index`` of a tensor of ``shape`` without an ``...`` that covers no
    axis, where an index array is about: numpy would part the arrays on either side of it. Raises
    torch's IndexError for a boolean mask whose shape is not that of the axes it covers (numpy
    lets a mask axis of size 0 stand for any axis: ``x[mask]`` was empty where torch refuses)."""
    parts = index if isinstance(index, tuple) else (index,)
    if any(p.__class__ not in _PLAIN for p in parts):
        _check_masks(parts, shape)
    if not isinstance(index, tuple) or not any(p is Ellipsis for p in index) or not any(map(B.is_array, index)):
        return index
    return tuple(p for p in index if p is not Ellipsis) if _axes_taken(index) == len(shape) else index


def _axes_taken(parts):
    """How many of the tensor's axes the index parts take: a mask as many as it has, None, ``...``
    and a bool (a 0-d mask too) none, anything else one."""
    return sum(0 if p is None or p is Ellipsis or isinstance(p, bool) else
               len(p.shape) if B.is_array(p) and B.is_bool(p) else 1 for p in parts)


_PLAIN = frozenset({int, slice, type(None), type(Ellipsis), bool})


def _check_masks(parts, shape):
    """torch's test of each boolean mask's shape against the axes it covers, in the tensor the
    integers, slices, None and bools of the index make first (the one torch's message names)."""
    masks = [B.is_array(p) and B.is_bool(p) and len(p.shape) > 0 for p in parts]
    if not any(masks):
        return
    used = _axes_taken(parts)
    basic, where, dim = [], [], 0          # the first step's shape; each mask's place in it
    for p, mask in zip(parts, masks):
        if p is Ellipsis:
            covered = max(len(shape) - used, 0)
            basic += shape[dim:dim + covered]
            dim += covered
        elif p is None or _is_bool(p):
            basic.append(1)
        elif mask:
            where.append((p, len(basic)))
            basic += shape[dim:dim + len(p.shape)]
            dim += len(p.shape)
        elif isinstance(p, slice):
            basic.append(len(range(*p.indices(shape[dim]))) if dim < len(shape) else 0)
            dim += 1
        else:                               # an integer takes its axis away; an index array keeps it here
            if not _is_int(p):
                basic += shape[dim:dim + 1]
            elif dim < len(shape) and not -shape[dim] <= int(p) < shape[dim]:
                return                      # torch's first step refuses it: the index's own error, raised later
            dim += 1
    basic += shape[dim:]
    for p, at in where:
        for j, n in enumerate(p.shape):
            if at + j < len(basic) and n != basic[at + j]:
                raise mask_misfit(p.shape, j, basic, at + j)


def mask_misfit(mask_shape, j, shape, dim):
    """torch's IndexError for a mask whose dim ``j`` does not match dim ``dim`` of ``shape``."""
    return IndexError(f"The shape of the mask {list(mask_shape)} at index {j} does not match the shape of the "
                      f"indexed tensor {list(shape)} at index {dim}")


def _is_bool(p):
    return isinstance(p, bool) or (B.is_array(p) and B.is_bool(p) and not p.shape)


def torch_order(index):
    """``(first, then)`` where the engine-level ``index`` mixes integers with index arrays or
    bools: ``x[first][then]`` is torch's ``x[index]``. None where numpy's rule is torch's already
    (no integer, or neither an array nor a bool)."""
    if not isinstance(index, tuple):
        return None
    ints = arrays = False
    for p in index:
        if _is_int(p):
            ints = True
        elif B.is_array(p) or isinstance(p, bool):
            arrays = True
    if not (ints and arrays):
        return None
    first, then = [], []
    for p in index:
        if _is_int(p):
            first.append(p if isinstance(p, numbers.Integral) else int(B.item(p)))
        elif _is_bool(p):
            first.append(None)           # torch's new axis, indexed by [0] (True) or [] (False)
            then.append(B.zeros((1 if bool(p if isinstance(p, bool) else B.item(p)) else 0,), dtypes.int64))
        elif B.is_array(p):
            first.extend([slice(None)] * (len(p.shape) if B.is_bool(p) else 1))
            then.append(p)
        elif p is Ellipsis:
            first.append(p)
            then.append(p)               # the same axes, after the integers took theirs
        else:                            # a slice, or None (its new axis is kept whole)
            first.append(p)
            then.append(slice(None))
    return tuple(first), tuple(then)


def _is_int(p):
    if isinstance(p, numbers.Integral):
        return not isinstance(p, bool)
    if not B.is_array(p) or p.shape or B.is_bool(p):
        return False
    dtype = B.dtype_of(p)
    return not (dtype.is_floating_point or dtype.name.startswith("complex"))
