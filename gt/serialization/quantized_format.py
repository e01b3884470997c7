"""Quantized tensors in torch's checkpoint format: ``torch._utils._rebuild_qtensor(storage, offset,
size, stride, quantizer_params, requires_grad, backward_hooks)`` on a ``QUInt8Storage``,
``QInt8Storage`` or ``QInt32Storage`` of the integers (``int_repr``), with ``quantizer_params``
``(torch.per_tensor_affine, scale, zero_point)`` or ``(torch.per_channel_affine, scales,
zero_points, axis)``, the scales and zero points as tensors. gt/serialization/torch_format.py
calls these both ways.
"""

import collections
import pickle

import numpy as np

from gt import dtypes
from gt.tensor.quantized import QSCHEMES, QuantizedTensor, per_tensor_affine

# torch's storage class of each quantized dtype, and numpy's dtype of its bytes
STORAGES = {"quint8": "QUInt8Storage", "qint8": "QInt8Storage", "qint32": "QInt32Storage"}
BYTES = {"quint8": "u1", "qint8": "i1", "qint32": "<i4"}


def reduce(q, name, storage):
    """The (callable, args) pickle writes for quantized tensor ``q``: ``name(module, attr)`` is the
    pickler's global of that name, ``storage(array, class_name)`` a storage it writes (its own: the
    integers are a copy)."""
    array = np.ascontiguousarray(q.int_repr().numpy()).reshape(q.shape)
    array = array.astype(np.dtype(BYTES[q.dtype.name]), copy=False)
    stride = tuple(s // array.itemsize for s in array.strides) if array.size else (1,) * array.ndim
    scheme = name("torch", q.qscheme().name if q.qscheme() == per_tensor_affine else "per_channel_affine")
    params = (scheme, q.q_scale(), q.q_zero_point()) if q.qscheme() == per_tensor_affine else \
        (scheme, q.q_per_channel_scales(), q.q_per_channel_zero_points(), q.q_per_channel_axis())
    return name("torch._utils", "_rebuild_qtensor"), \
        (storage(array, STORAGES[q.dtype.name]), 0, tuple(array.shape), stride, params, False,
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
                                     "does not read (it reads quint8/qint8/qint32 ones, per tensor or per channel)")
    dtype = dtypes.to_dtype(kind)
    ints = storage.retyped(dtypes.QUANTIZED_INT[dtype].name, np.dtype(BYTES[kind])).tensor(offset, size, stride, False)
    if scheme.name == "per_tensor_affine":
        return QuantizedTensor._make(ints, dtype, QSCHEMES[scheme.name], float(params[1]), int(params[2]))
    # torch writes float zero points under per_channel_affine: their dtype makes the float qparams scheme
    if scheme.name == "per_channel_affine_float_qparams" or params[2].dtype.is_floating_point:
        return QuantizedTensor._make(ints, dtype, QSCHEMES["per_channel_affine_float_qparams"], params[1].float(),
                                     params[2].float(), int(params[3]))
    return QuantizedTensor._make(ints, dtype, QSCHEMES[scheme.name], params[1].double(), params[2].long(),
                                 int(params[3]))
