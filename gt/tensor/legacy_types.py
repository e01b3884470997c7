"""torch's legacy typed constructors: ``gt.FloatTensor``, ``gt.LongTensor``, ... (one per dtype
gt has). ``FloatTensor([1, 2])`` is a copy of the data in that dtype, ``FloatTensor(2, 3)`` an
uninitialised tensor of that shape (as ``gt.empty``), ``FloatTensor()`` an empty one; and
``isinstance(x, gt.FloatTensor)`` asks whether ``x`` is a float32 tensor, as torch's does."""

from gt import dtypes
from gt.tensor.core import Tensor
from gt.tensor.creation import empty, tensor
from gt.tensor.info_methods import _TYPE_NAMES


class _LegacyType(type):
    def __instancecheck__(cls, obj):
        return isinstance(obj, Tensor) and obj.dtype == cls.dtype

    def __call__(cls, *args, device=None):
        if device is not None and str(device) != "cpu":
            raise RuntimeError(f"gt.{cls.__name__}: legacy constructors make CPU tensors (torch's rule); "
                               f"use gt.tensor(data, dtype=..., device={str(device)!r})")
        if not args:
            return empty(0, dtype=cls.dtype)
        if all(isinstance(a, int) and not isinstance(a, bool) for a in args):
            return empty(*args, dtype=cls.dtype)
        if len(args) != 1:
            raise TypeError(f"gt.{cls.__name__}(): expected sizes (ints) or one sequence of data, got {args!r}")
        data = args[0]
        if isinstance(data, Tensor):        # torch's rule: the tensor itself, only of this dtype
            if data.dtype != cls.dtype:
                raise TypeError(f"gt.{cls.__name__}(tensor): expected a tensor of dtype {cls.dtype!r}, got "
                                f"{data.dtype!r}; convert it with .to({cls.dtype!r})")
            return data
        return tensor(data, dtype=cls.dtype)


def _make(dtype_name, type_name):
    return _LegacyType(type_name, (), {"dtype": dtypes.to_dtype(dtype_name), "__module__": "gt",
                                        "__doc__": f"torch's legacy ``{type_name}``: a {dtype_name} tensor "
                                                   "of data, or of a shape."})


LEGACY_TYPES = {name: _make(dtype, name) for dtype, name in _TYPE_NAMES.items()}


class _VariableType(type):
    def __instancecheck__(cls, obj):
        return isinstance(obj, Tensor)


class Variable(metaclass=_VariableType):
    """torch's ``autograd.Variable`` (a tensor since torch 0.4): ``Variable(t, requires_grad=True)``
    is a new leaf sharing ``t``'s memory (``t.detach()``), requiring grad when asked, as torch's;
    ``isinstance(x, Variable)`` holds for every tensor. ``volatile`` is accepted and ignored, as
    torch ignores it (with a warning)."""

    def __new__(cls, data, requires_grad=False, volatile=False):
        if not isinstance(data, Tensor):
            raise TypeError(f"Variable data has to be a tensor, but got {type(data).__name__}")
        if volatile:
            import warnings

            warnings.warn("volatile was removed and now has no effect. Use `with gt.no_grad():` instead.",
                          UserWarning, stacklevel=2)
        leaf = data.detach()
        return leaf._set_requires_grad(True) if requires_grad else leaf


def frombuffer(buffer, *, dtype, count=-1, offset=0, requires_grad=False):
    """A 1-D tensor over the bytes of ``buffer`` (an object with the buffer protocol), as
    torch's: ``count`` elements of ``dtype`` (-1: all) from byte ``offset``; the memory is shared
    on the numpy engine (a copy on the torch engine's devices)."""
    import numpy as np

    from gt.tensor.creation import from_numpy

    dt = dtypes.to_dtype(dtype)
    if dt.name == "bfloat16":
        raise TypeError("frombuffer: bfloat16 has no numpy dtype to read the buffer as")
    arr = np.frombuffer(buffer, dtype=np.dtype(dt.name), count=count, offset=offset)
    if not arr.flags.writeable:       # torch warns and shares read-only memory; gt copies it
        arr = arr.copy()
    return from_numpy(arr, requires_grad=requires_grad)
