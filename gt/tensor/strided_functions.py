"""torch's top-level strided functions: ``as_strided``, ``as_strided_copy``, ``as_strided_scatter``
and ``empty_strided`` (the storage rules are strided_methods.py's)."""

from gt.tensor.core import Tensor
from gt.tensor.creation import empty
from gt.tensor.device_methods import accepts_device
from gt.tensor.shape import _named
from gt.tensor.strided_methods import geometry, tracked

__all__ = ["as_strided", "as_strided_copy", "as_strided_scatter", "empty_strided"]


def _input(x, fn):
    if not isinstance(x, Tensor):
        raise TypeError(f"{fn}(): argument 'input' (position 1) must be Tensor, not {type(x).__name__}")
    return x


def as_strided(input, size, stride, storage_offset=None):
    """``input.as_strided(size, stride, storage_offset)``."""
    return _input(input, "as_strided").as_strided(size, stride, storage_offset)


def as_strided_copy(input, size, stride, storage_offset=None):
    """``input.as_strided(...).clone()``: a new tensor, laid out row-major."""
    out = _input(input, "as_strided_copy").as_strided(size, stride, storage_offset)
    out = out.clone() if tracked(input) else out      # untracked storage: already a copy
    return _named(out, input, "AsStridedBackward0_copy")


def as_strided_scatter(input, src, size, stride, storage_offset=None):
    """``input.as_strided_scatter(src, size, stride, storage_offset)``."""
    return _input(input, "as_strided_scatter").as_strided_scatter(src, size, stride, storage_offset)


@accepts_device
def empty_strided(size, stride, *, dtype=None, requires_grad=False):
    """A new tensor of ``size`` with unspecified values (float32 unless ``dtype`` says otherwise).
    gt lays new tensors out row-major: ``stride`` is checked, and ``stride()`` of the result is
    the row-major one (as ``new_empty_strided``)."""
    size, _ = geometry(tuple(size), tuple(stride), None, "empty_strided")
    return empty(size, dtype=dtype, requires_grad=requires_grad)
