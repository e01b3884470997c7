"""torch's tensor methods about storage and type: ``element_size()``, ``nbytes``, ``itemsize``,
``is_contiguous()``, ``stride()``, ``cpu()``, ``type()``/``type(dtype)``, ``byte()``/``char()``/``short()`` and
``is_inference()``.

Where gt differs from torch: ``type()`` names gt's types (``'gt.FloatTensor'``, not
``'torch.FloatTensor'``; ``type(...)`` takes either spelling, or a dtype); ``stride()`` reads the
engine array's strides, so a view that numpy keeps with a negative step (``flip``) shows a
negative stride, where torch copies; ``cpu()`` is the tensor itself on a CPU engine and a copy on
the CPU from a GPU.

Mixed into ``gt.Tensor``; ``Tensor`` below is bound by gt/tensor/core.py once the class exists.
"""

from gt import dtypes
from gt.backend import B
from gt.ops._shapes import is_row_major, normalize_axis, row_major_strides
from gt.sharding.layout import logical_strides

Tensor = None  # gt.Tensor, bound by gt/tensor/core.py

_TYPE_NAMES = {"float32": "FloatTensor", "float64": "DoubleTensor", "float16": "HalfTensor",
               "bfloat16": "BFloat16Tensor", "int64": "LongTensor", "int32": "IntTensor", "int16": "ShortTensor",
               "int8": "CharTensor", "uint8": "ByteTensor", "bool": "BoolTensor"}
_BY_TYPE_NAME = {name: dtype for dtype, name in _TYPE_NAMES.items()}


def type_dtype(dtype):
    """A gt dtype from a dtype or a type name (``'gt.DoubleTensor'``, ``'torch.LongTensor'``)."""
    if isinstance(dtype, str):
        short = dtype.split(".")[-1]
        if dtype.startswith(("gt.", "torch.")) and short in _BY_TYPE_NAME:
            return dtypes.to_dtype(_BY_TYPE_NAME[short])
        raise ValueError(f"type: invalid type {dtype!r}: expected a dtype or one of "
                         f"{sorted('gt.' + n for n in _BY_TYPE_NAME)}")
    if isinstance(dtype, type) and isinstance(getattr(dtype, "dtype", None), dtypes.DType):
        return dtype.dtype          # a legacy type (``x.type(gt.ByteTensor)``)
    return dtypes.to_dtype(dtype)


class InfoMethods:
    __slots__ = ()
    _is_sparse_layout = False    # any sparse layout (COO, CSR, CSC, BSR, BSC; True on SparseTensor): matmul's one test

    def element_size(self):
        """Bytes per element (4 for float32)."""
        return self.dtype.itemsize

    @property
    def itemsize(self):
        """Bytes per element, as ``element_size()``."""
        return self.dtype.itemsize

    @property
    def nbytes(self):
        """Bytes of all the elements: ``numel() * element_size()``."""
        return self.numel() * self.dtype.itemsize

    def is_contiguous(self):
        """Whether the elements lie in row-major order without gaps: for a sharded tensor, the whole
        where its blocks lie in one buffer (``from_numpy`` data and its views: ``h.t()`` is not,
        though each of its blocks of one row is), else each block."""
        p = self._placed
        if p is None:
            return B.is_contiguous(self._array)
        strides = logical_strides(p)
        if strides is not None:
            return is_row_major(self.shape, strides)
        return all(B.is_contiguous(a) for a in p.shards)

    def stride(self, dim=None):
        """The step, in elements, from one index to the next along each dim (a tuple), or along
        ``dim``. A sharded tensor gives the strides of its shape laid out row-major, and so does a tensor
        of no elements on the numpy engine (numpy keeps no steps for it; torch keeps a permuted view's)."""
        strides = B.element_strides(self._array) if self._placed is None else None  # the array's own
        # numpy makes an array of no elements with no steps at all; torch's are row-major, as a sharded tensor's
        if strides is None or (not any(strides) and 0 in self.shape and not B.keeps_empty_strides):
            strides = row_major_strides(self.shape)
        if dim is None:
            return strides
        return strides[normalize_axis(dim, self.ndim, "stride")]

    def type(self, dtype=None):
        """The type name (``'gt.FloatTensor'``) without an argument; with a dtype or a type name
        (``'gt.DoubleTensor'``; torch's ``'torch.DoubleTensor'`` too), this tensor cast to it."""
        if dtype is None:
            return "gt." + _TYPE_NAMES[self.dtype.name]
        return self.to(type_dtype(dtype))

    def byte(self, memory_format=None):
        """This tensor as uint8 (``self.to(gt.uint8)``): floats truncate toward zero, and
        what uint8 cannot hold wraps as torch's CPU cast does."""
        return self.to(dtypes.uint8)

    def char(self, memory_format=None):
        """This tensor as int8 (``self.to(gt.int8)``), wrapping as ``byte()``."""
        return self.to(dtypes.int8)

    def short(self, memory_format=None):
        """This tensor as int16 (``self.to(gt.int16)``), wrapping as ``byte()``."""
        return self.to(dtypes.int16)

    def is_inference(self):
        """Whether this tensor was made inside ``gt.inference_mode()``."""
        try:
            return self._inference
        except AttributeError:      # made outside inference mode: the slot was never set
            return False

