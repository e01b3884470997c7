"""torch's top-level forms of the remaining tensor methods (gt/tensor/remaining_methods.py):
``gt.nansum``, ``gt.nanmean``, ``gt.unflatten``, ``gt.index_put``, the ``*_scatter`` functions,
``gt.cross``, ``gt.vdot``, ... with torch's argument names and defaults. Each is the method of the
same name, so values, dtypes, gradients and sharding are the method's.
"""

from gt.tensor.core import Tensor
from gt.tensor.number_first import tensors_only

__all__ = ["positive", "ravel", "unflatten", "swapdims", "hsplit", "vsplit", "dsplit", "split_with_sizes",
           "unsafe_chunk", "unsafe_split", "unsafe_split_with_sizes", "narrow_copy", "nansum", "nanmean", "cross",
           "vdot", "ger", "index_put", "index_put_", "index_reduce", "diagonal_scatter", "select_scatter",
           "slice_scatter", "nonzero_static", "adjoint", "resize_as_", "put"]


def _input(x, fn, name="input"):
    if not isinstance(x, Tensor):
        raise TypeError(f"{fn}(): argument '{name}' (position 1) must be Tensor, not {type(x).__name__}")
    return x


def positive(input):
    """``input`` itself (``+input``); bool tensors are refused."""
    return _input(input, "positive").positive()


def ravel(input):
    """The elements of ``input`` as a 1-D tensor."""
    return _input(input, "ravel").ravel()


def unflatten(input, dim, sizes):
    """Dim ``dim`` of ``input`` split into the dims ``sizes`` (one may be -1)."""
    return _input(input, "unflatten").unflatten(dim, sizes)


def swapdims(input, dim0, dim1):
    """``input.transpose(dim0, dim1)``."""
    return _input(input, "swapdims").transpose(dim0, dim1)


def hsplit(input, indices_or_sections):
    """``input.hsplit(indices_or_sections)``: pieces along dim 1 (dim 0 of a 1-D tensor)."""
    return _input(input, "hsplit").hsplit(indices_or_sections)


def vsplit(input, indices_or_sections):
    """``input.vsplit(indices_or_sections)``: pieces along dim 0 of a tensor of at least 2 dims."""
    return _input(input, "vsplit").vsplit(indices_or_sections)


def dsplit(input, indices_or_sections):
    """``input.dsplit(indices_or_sections)``: pieces along dim 2 of a tensor of at least 3 dims."""
    return _input(input, "dsplit").dsplit(indices_or_sections)


def split_with_sizes(input, split_sizes, dim=0):
    """Pieces of ``input`` of the sizes ``split_sizes`` along ``dim``."""
    return _input(input, "split_with_sizes").split_with_sizes(split_sizes, dim)


def unsafe_split_with_sizes(input, split_sizes, dim=0):
    """``split_with_sizes``."""
    return _input(input, "unsafe_split_with_sizes").split_with_sizes(split_sizes, dim)


def unsafe_split(input, split_size, dim=0):
    """``input.split(split_size, dim)``."""
    return _input(input, "unsafe_split").split(split_size, dim)


def unsafe_chunk(input, chunks, dim=0):
    """``input.chunk(chunks, dim)``."""
    return _input(input, "unsafe_chunk").chunk(chunks, dim)


def narrow_copy(input, dim, start, length):
    """``input.narrow(dim, start, length)`` as a new tensor."""
    return _input(input, "narrow_copy").narrow_copy(dim, start, length)


def nansum(input, dim=None, keepdim=False, *, dtype=None):
    """The sum over ``dim`` with NaN counted as zero (gradient 0 at NaN positions)."""
    return _input(input, "nansum").nansum(dim, keepdim, dtype=dtype)


def nanmean(input, dim=None, keepdim=False, *, dtype=None):
    """The mean over ``dim`` of the values that are not NaN (floating point ``input`` only)."""
    return _input(input, "nanmean").nanmean(dim, keepdim, dtype=dtype)


def cross(input, other, dim=None):
    """Cross products of the 3-vectors along ``dim``; ``dim=None``: torch's deprecated rule (the
    first dim of size 3, with its warning)."""
    return _input(input, "cross").cross(other, dim)


def vdot(input, other):
    """The dot product of two 1-D tensors of one length and dtype."""
    tensors_only("vdot", ("input", input), ("other", other))
    return _input(input, "vdot").vdot(other)


def ger(input, vec2):
    """``outer(input, vec2)``."""
    tensors_only("ger", ("input", input), ("vec2", vec2))
    return _input(input, "ger").outer(vec2)


def index_put(input, indices, values, accumulate=False):
    """A copy of ``input`` with ``values`` written (or, ``accumulate=True``, added) at ``input[indices]``."""
    return _input(input, "index_put").index_put(indices, values, accumulate)


def index_put_(input, indices, values, accumulate=False):
    """``index_put`` in place."""
    return _input(input, "index_put_").index_put_(indices, values, accumulate)


def index_reduce(input, dim, index, source, reduce, *, include_self=True):
    """A copy of ``input`` with the slices of ``source`` reduced into the slices ``index`` along ``dim``."""
    return _input(input, "index_reduce").index_reduce(dim, index, source, reduce, include_self=include_self)


def diagonal_scatter(input, src, offset=0, dim1=0, dim2=1):
    """A copy of ``input`` with ``src`` written on its diagonal ``(offset, dim1, dim2)``."""
    return _input(input, "diagonal_scatter").diagonal_scatter(src, offset, dim1, dim2)


def select_scatter(input, src, dim, index):
    """A copy of ``input`` with ``src`` written at ``input.select(dim, index)``."""
    return _input(input, "select_scatter").select_scatter(src, dim, index)


def slice_scatter(input, src, dim=0, start=None, end=None, step=1):
    """A copy of ``input`` with ``src`` written at ``input[start:end:step]`` along ``dim``."""
    return _input(input, "slice_scatter").slice_scatter(src, dim, start, end, step)


def nonzero_static(input, *, size, fill_value=-1):
    """``input.nonzero()`` cut or padded (with ``fill_value``) to ``size`` rows."""
    return _input(input, "nonzero_static").nonzero_static(size=size, fill_value=fill_value)


def adjoint(input):
    """The (conjugate) transpose of the last two dims of ``input``."""
    return _input(input, "adjoint").adjoint()


def resize_as_(input, the_template, memory_format=None):
    """``input.resize_as_(the_template)``."""
    return _input(input, "resize_as_").resize_as_(the_template)


def put(input, index, source, accumulate=False):
    """A copy of ``input`` with ``source`` written at the flat (row-major) positions ``index``
    (added there with ``accumulate=True``): ``input.put(index, source, accumulate)``."""
    return _input(input, "put").put(index, source, accumulate)
