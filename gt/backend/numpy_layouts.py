"""Torch's memory layout of the numpy engine's results. numpy lays a result out in its input's
order of axes (order="K"); torch's reductions, scans, ``cat``/``stack`` and ``index_select``
allocate theirs row-major whatever the input's layout. gt's ``view`` follows torch's strides
(gt/ops/_shapes.py ``view_strides``), so a result in numpy's layout would refuse a view torch allows."""

import numpy as np

from gt.backend.dim_order import iterator_strides


def row_major(a):
    """``a`` (an array or a numpy scalar) itself where it is row-major, else a row-major copy; a 0-d
    array stays 0-d (``np.ascontiguousarray`` would make it 1-d: it is row-major, so never copied)."""
    return a if a.flags.c_contiguous else np.ascontiguousarray(a)


def torch_layout(out, a, b=None, *more):
    """``out``, the result of an elementwise op of the operands ``a``, ``b``, ``more`` (arrays or
    numbers), in the layout torch's TensorIterator gives it: the operands' own strides where they
    all share them and are dense, else dense in the order of dims their strides give (the first
    operand that orders two dims decides; broadcast dims decide nothing). numpy agrees for one
    operand but makes a row-major result where operands' layouts differ (``x.t() - x.t().contiguous()``:
    torch's is transposed). ``out`` itself where it has that layout, else a copy."""
    # positional operands and one flag read each: it runs after every elementwise op of the training
    if type(a) is np.ndarray:
        if not a.flags.c_contiguous:
            return _laid_out(out, (a, b) + more)
        if a.shape == out.shape:
            return out      # a row-major first operand of the result's shape orders every dim: so does numpy
    if type(b) is np.ndarray and not b.flags.c_contiguous:
        return _laid_out(out, (a, b) + more)
    for m in more:
        if type(m) is np.ndarray and not m.flags.c_contiguous:
            return _laid_out(out, (a, b) + more)
    return out      # all row-major: so is numpy's result, and torch's


def _laid_out(out, operands):
    if type(out) is not np.ndarray or out.ndim < 2 or out.size < 2:
        return out
    arrays = [a for a in operands if type(a) is np.ndarray and a.ndim]
    if arrays[0].shape == out.shape and arrays[0].strides == out.strides:
        return out      # the first operand, of the result's shape, decides every order of dims: its layout
    want = iterator_strides(out.shape, [(a.shape, tuple(s // a.itemsize for s in a.strides)) for a in arrays])
    have = tuple(s // out.itemsize for s in out.strides)
    if all(n == 1 or h == w for n, h, w in zip(out.shape, have, want)):
        return out
    return copy_strided(out, want)


def copy_strided(a, strides):
    """A copy of ``a`` in memory laid out with the dense element ``strides``."""
    order = sorted(range(a.ndim), key=lambda d: -strides[d])
    out = np.empty([a.shape[d] for d in order], a.dtype).transpose(np.argsort(order))
    np.copyto(out, a)
    return out
