"""Quantized tensors in torch's checkpoint format: ``torch._utils._rebuild_qtensor(storage, offset,
size, stride, quantizer_params, requires_grad, backward_hooks)`` on a ``QUInt8Storage``,
``QInt8Storage``, ``QInt32Storage`` or ``QUInt4x2Storage`` of the integers (``int_repr``; quint4x2's
packed two a byte, the size and strides still the values'), with ``quantizer_params``
``(torch.per_tensor_affine, scale, zero_point)`` or ``(torch.per_channel_affine, scales,
zero_points, axis)``, the scales and zero points as tensors. gt/serialization/torch_format.py
calls these both ways.
"""

import collections
import pickle

import numpy as np

from gt import dtypes
from gt.tensor import quantize_math
from gt.tensor.quantized import QSCHEMES, QuantizedTensor, per_tensor_affine

# torch's storage class of each quantized dtype, and numpy's dtype of its bytes
STORAGES = {"quint8": "QUInt8Storage", "qint8": "QInt8Storage", "qint32": "QInt32Storage",
            "quint4x2": "QUInt4x2Storage"}
BYTES = {"quint8": "u1", "qint8": "i1", "qint32": "<i4", "quint4x2": "u1"}


def reduce(q, name, storage):
    """The (callable, args) pickle writes for quantized tensor ``q``: ``name(module, attr)`` is the
    pickler's global of that name, ``storage(array, class_name)`` a storage it writes (its own: the
    integers are a copy)."""
    array, size = np.ascontiguousarray(q.int_repr().numpy()), tuple(q.shape)
    if q.dtype == dtypes.quint4x2:      # its storage: the packed bytes; size and strides: the values'
        stride = tuple(int(np.prod(size[i + 1:])) for i in range(len(size)))
    else:
        array = array.reshape(size).astype(np.dtype(BYTES[q.dtype.name]), copy=False)
        stride = tuple(s // array.itemsize for s in array.strides) if array.size else (1,) * array.ndim
    scheme = name("torch", q.qscheme().name if q.qscheme() == per_tensor_affine else "per_channel_affine")
    params = (scheme, q.q_scale(), q.q_zero_point()) if q.qscheme() == per_tensor_affine else \
        (scheme, q.q_per_channel_scales(), q.q_per_channel_zero_points(), q.q_per_channel_axis())
    return name("torch._utils", "_rebuild_qtensor"), \
        (storage(array, STORAGES[q.dtype.name]), 0, size, stride, params, False,
         collections.OrderedDict())


def find(module, name):
    """What torch's global ``module.name`` is when reading a quantized tensor (None: not one of them)."""
    if (module, name) == ("torch._utils", "_rebuild_qtensor"):
        return rebuild_qtensor
    if module == "torch" and name in QSCHEMES:
        return QSCHEMES[name]
    if module == "torch" and name in STORAGES:      # the dtype (a dynamic quantized Linear's state dict names it)
        return dtypes.to_dtype(name)
    return None


def rebuild_qtensor(storage, offset, size, stride, params, requires_grad=False, backward_hooks=None):
    """The gt quantized tensor of torch's ``_rebuild_qtensor`` call; ``storage`` is the archive's
    storage of its integers (gt/serialization/storages.py's ``Loaded``)."""
    kind, scheme = storage.dtype, params[0]
    if kind not in STORAGES or scheme.name not in ("per_tensor_affine", "per_channel_affine",
                                                              "per_channel_affine_float_qparams"):
        raise pickle.UnpicklingError(f"gt.load: a quantized tensor of {kind} storage and scheme {scheme!r}, which gt "
                                     "does not read (it reads quint8/qint8/qint32/quint4x2 ones, per tensor or per "
                                     "channel)")
    dtype = dtypes.to_dtype(kind)
    if dtype == dtypes.quint4x2:
        ints = _nibbles(storage, offset, size, stride)
    else:
        ints = storage.retyped(dtypes.QUANTIZED_INT[dtype].name, np.dtype(BYTES[kind])).tensor(offset, size, stride,
                                                                                               False)
    if scheme.name == "per_tensor_affine":
        return QuantizedTensor._make(ints, dtype, QSCHEMES[scheme.name], float(params[1]), int(params[2]))
    # torch writes float zero points under per_channel_affine: their dtype makes the float qparams scheme
    if scheme.name == "per_channel_affine_float_qparams" or params[2].dtype.is_floating_point:
        return QuantizedTensor._make(ints, dtype, QSCHEMES["per_channel_affine_float_qparams"], params[1].float(),
                                     params[2].float(), int(params[3]))
    return QuantizedTensor._make(ints, dtype, QSCHEMES[scheme.name], params[1].double(), params[2].long(),
                                 int(params[3]))


def _nibbles(storage, offset, size, stride):
    """The 4-bit integers of a quint4x2 tensor from its storage's packed bytes (contiguous, from the start)."""
    size = tuple(int(n) for n in size)
    contiguous = tuple(int(np.prod(size[i + 1:])) for i in range(len(size)))
    if offset or any(n > 1 and int(s) != c for n, s, c in zip(size, stride, contiguous)):
        raise pickle.UnpicklingError(f"gt.load: a quint4x2 tensor at offset {offset} with stride {tuple(stride)}, "
                                     "which gt does not read (it reads contiguous ones from their storage's start)")
    packed = storage.retyped("uint8", np.dtype("u1")).tensor(0, ((int(np.prod(size)) + 1) // 2,), (1,), False)
    return quantize_math.unpack_nibbles(packed, size)
