"""Torch's memory layout of the numpy engine's results. numpy lays a result out in its input's
order of axes (order="K"); torch's reductions, scans, ``cat``/``stack`` and ``index_select``
allocate theirs row-major whatever the input's layout. gt's ``view`` follows torch's strides
(gt/ops/_shapes.py ``view_strides``), so a result in numpy's layout would refuse a view torch allows."""

import numpy as np

from gt.backend.dim_order import innermost_first, is_dense


def row_major(a):
    """``a`` (an array or a numpy scalar) itself where it is row-major, else a row-major copy; a 0-d
    array stays 0-d (``np.ascontiguousarray`` would make it 1-d: it is row-major, so never copied)."""
    return a if a.flags.c_contiguous else np.ascontiguousarray(a)


def torch_layout(out, *operands):
    """``out``, the result of an elementwise op of ``operands`` (arrays or numbers), in the layout
    torch's TensorIterator gives it: the operands' own strides where they all share them and are
    dense, else dense in the order of dims their strides give (the first operand that orders two
    dims decides; broadcast dims decide nothing). numpy agrees for one operand but makes a
    row-major result where operands' layouts differ (``x.t() + x.t().contiguous()``: torch's is
    transposed). ``out`` itself where it has that layout, else a copy."""
    for a in operands:
        if type(a) is np.ndarray and not a.flags.c_contiguous:
            break
    else:       # all row-major (the training's arrays): so is numpy's result, and torch's
        return out
    if type(out) is not np.ndarray or out.ndim < 2 or out.size < 2:
        return out
    arrays = [a for a in operands if type(a) is np.ndarray and a.ndim]
    if arrays[0].shape == out.shape and arrays[0].strides == out.strides:
        return out      # the first operand, of the result's shape, decides every order of dims: its layout
    want = iterator_strides(out.shape, arrays)
    have = tuple(s // out.itemsize for s in out.strides)
    if all(n == 1 or h == w for n, h, w in zip(out.shape, have, want)):
        return out
    return copy_strided(out, want)


def iterator_strides(shape, arrays):
    """The element strides of TensorIterator's result of ``shape`` over ``arrays`` (numpy's
    arrays, broadcast to ``shape``), as aten's ``compute_fast_setup_type`` and ``reorder_dimensions``."""
    ndim = len(shape)
    strides = []
    for a in arrays:
        pad = ndim - a.ndim
        strides.append((0,) * pad + tuple(0 if n == 1 and shape[pad + i] != 1 else s // a.itemsize
                                          for i, (n, s) in enumerate(zip(a.shape, a.strides))))
    first = strides[0] if strides else None
    if first is not None and all(a.shape == tuple(shape) for a in arrays) and all(s == first for s in strides) \
            and is_dense(shape, first):
        return first

    perm = innermost_first(shape, strides)
    out, step = [0] * ndim, 1
    for d in perm:
        out[d] = step
        step *= shape[d]
    return tuple(out)


def copy_strided(a, strides):
    """A copy of ``a`` in memory laid out with the dense element ``strides``."""
    order = sorted(range(a.ndim), key=lambda d: -strides[d])
    out = np.empty([a.shape[d] for d in order], a.dtype).transpose(np.argsort(order))
    np.copyto(out, a)
    return out
