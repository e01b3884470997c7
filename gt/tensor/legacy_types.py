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
