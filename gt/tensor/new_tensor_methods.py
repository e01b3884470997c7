"""torch's ``new_*`` methods: new tensors in this tensor's dtype (``new_zeros``, ``new_ones``,
``new_empty``, ``new_full``, ``new_tensor``), leaves off the tape, on the device torch's
``device=`` names.

Mixed into ``gt.Tensor``; ``Tensor`` below is bound by gt/tensor/core.py once the class exists.
"""

from gt import dtypes
from gt.backend import B
from gt.tensor._args import _fill
from gt.tensor.device_methods import accepts_device
from gt.tensor.extra_methods import _sizes
from gt.tensor.int_scalars import checked_scalar

Tensor = None  # gt.Tensor, bound by gt/tensor/core.py


class NewTensorMethods:
    __slots__ = ()

    @accepts_device
    def new_zeros(self, *sizes, size=None, dtype=None, requires_grad=False):
        sizes = _sizes(sizes if size is None else (size,), "new_zeros")
        return Tensor._wrap(B.zeros(sizes, dtype or self.dtype))._set_requires_grad(requires_grad)

    @accepts_device
    def new_ones(self, *sizes, size=None, dtype=None, requires_grad=False):
        sizes = _sizes(sizes if size is None else (size,), "new_ones")
        return Tensor._wrap(B.ones(sizes, dtype or self.dtype))._set_requires_grad(requires_grad)

    @accepts_device
    def new_empty(self, *sizes, size=None, dtype=None, requires_grad=False):
        sizes = _sizes(sizes if size is None else (size,), "new_empty")
        return Tensor._wrap(B.empty(sizes, dtype or self.dtype))._set_requires_grad(requires_grad)

    @accepts_device
    def new_full(self, size, fill_value, dtype=None, requires_grad=False):
        dtype = dtypes.to_dtype(dtype or self.dtype)
        value = checked_scalar(_fill(fill_value), dtype, "the fill value")
        return Tensor._wrap(B.full(_sizes((size,), "new_full"), value, dtype))._set_requires_grad(requires_grad)

    @accepts_device
    def new_tensor(self, data, dtype=None, requires_grad=False):
        data = data._data if isinstance(data, Tensor) else data       # a copy, off the tape, as torch's
        return Tensor._wrap(B.asarray(data, dtype=dtype or self.dtype, copy=True))._set_requires_grad(requires_grad)
