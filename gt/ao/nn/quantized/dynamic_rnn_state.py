"""What torch's dynamically quantized recurrent layers keep in their state dicts, as gt holds it.

torch keeps TorchScript objects there: a cell's ``_packed_weight_ih``/``_packed_weight_hh`` are
``LinearPackedParamsBase`` (the pair (weight, bias)), a layer's ``_all_weight_values.{k}.param`` a
``CellParamsBase`` holding both of one layer's direction. gt's stand-ins (``LinearPackedParams``,
``CellParams``) answer ``__getstate__()`` with the same structure as torch's objects do, and gt reads
either kind through it, so a torch state dict passed in memory loads into gt's layers and gt's
entries rebuild torch's objects (``torch.ops.quantized.linear_prepack`` of the pair); in checkpoint
files, gt.save writes them as torch's objects and gt.load(weights_only=False) reads torch's
(gt/serialization/script_objects.py). Weights are
gt's qint8 quantized tensors, or, for ``dtype=float16``, float32 arrays holding float16 values
(torch's ``linear_prepack_fp16`` unpacks them so); biases float32 arrays.
"""

import numpy as np

from gt import dtypes
from gt.ao.nn.quantized.dynamic_products import packed_qint8
from gt.tensor import Tensor, creation
from gt.tensor.quantized import as_quantized

LINEAR_TYPE = "__torch__.torch.classes.quantized.LinearPackedParamsBase"
CELL_TYPE = "__torch__.torch.classes.rnn.CellParamsBase"


class LinearPackedParams:
    """One product's (weight, bias), as torch's ``LinearPackedParamsBase`` pickles it."""

    torch_script_class = LINEAR_TYPE          # gt.save writes it as torch's object (gt/serialization/script_objects.py)

    def __init__(self, weight, bias):
        self.weight, self.bias = weight, bias

    def __getstate__(self):
        return (self.weight, self.bias), LINEAR_TYPE

    def __setstate__(self, state):
        (self.weight, self.bias), _ = state

    def unpack(self):
        return self.weight, self.bias


class CellParams:
    """One direction of one layer: ``kind`` ``"quantized_dynamic"`` (qint8) or ``"quantized_fp16"``,
    and its two ``LinearPackedParams``, as torch's ``CellParamsBase``. ``reduce_range``: whether the
    qint8 products quantize their inputs to 7 bits (fbgemm's, torch's layers since their version 2)
    or to 8 (the cells of torch's version-1 layers, which torch still loads and runs so)."""

    torch_script_class = CELL_TYPE

    def __init__(self, kind, packed_ih, packed_hh, reduce_range=True):
        self.kind, self.packed_ih, self.packed_hh, self.reduce_range = kind, packed_ih, packed_hh, reduce_range

    def __getstate__(self):
        if self.kind == "quantized_fp16":
            return (self.kind, [], [], [], [self.packed_ih, self.packed_hh]), CELL_TYPE
        biases = [self.packed_ih.bias, self.packed_hh.bias]
        return (self.kind, biases, [], [int(self.reduce_range)], [self.packed_ih, self.packed_hh]), CELL_TYPE

    def __setstate__(self, state):
        (self.kind, _, _, longs, (self.packed_ih, self.packed_hh)), _ = state
        self.reduce_range = bool(longs[0]) if longs else True


def saved_pair(weight, bias, keep_vars):
    """gt's held (weight, bias) as a state dict keeps it: copies, unless ``keep_vars``."""
    if keep_vars:
        return LinearPackedParams(weight, bias)
    weight = weight.clone() if weight.dtype == dtypes.qint8 else weight.numpy().copy()
    return LinearPackedParams(weight, None if bias is None else bias.numpy().copy())


def read_pair(packed, dtype, shape):
    """``(weight, bias)`` as gt tensors from a state dict's packed pair (gt's or torch's), checked
    against ``dtype`` (gt.qint8 or gt.float16) and the weight's ``shape``; raises ValueError saying
    what does not fit."""
    try:
        (weight, bias), _ = packed.__getstate__()
    except (AttributeError, TypeError, ValueError):
        raise ValueError(f"expected torch's LinearPackedParamsBase or gt's LinearPackedParams, got "
                         f"{type(packed).__name__}") from None
    weight = as_quantized(weight)
    quantized = getattr(weight, "is_quantized", False)
    if dtype == dtypes.qint8:
        if not (quantized and weight.dtype == dtypes.qint8):
            raise ValueError(f"expected a qint8 quantized weight, got {getattr(weight, 'dtype', weight)!r}")
        try:
            weight = packed_qint8(weight)
        except NotImplementedError as e:
            raise ValueError(str(e)) from None
    if dtype != dtypes.qint8:
        if quantized:
            raise ValueError(f"expected the float weight of a float16 layer, got {weight.dtype!r}")
        weight = _float(weight)
    if tuple(weight.shape) != tuple(shape):
        raise ValueError(f"expected a weight of shape {tuple(shape)}, got shape {tuple(weight.shape)}")
    # torch's load keeps the state dict's bias tensor, and its flag (gt's own state dicts hold arrays)
    bias = None if bias is None else _float(bias)._set_requires_grad(bool(getattr(bias, "requires_grad", False)))
    if bias is not None and tuple(bias.shape) != (shape[0],):
        raise ValueError(f"expected a bias of shape {(shape[0],)}, got shape {tuple(bias.shape)}")
    return (weight.clone() if quantized else weight), bias


def read_cell(cell, dtype, shapes):
    """(the two pairs of a layer's direction, reduce_range) from ``cell`` (gt's ``CellParams`` or
    torch's ``CellParamsBase``); ``shapes``: its weights' (ih, hh). Raises ValueError as ``read_pair``."""
    try:
        (kind, _, _, longs, packed), _ = cell.__getstate__()
    except (AttributeError, TypeError, ValueError):
        raise ValueError(f"expected torch's CellParamsBase or gt's CellParams, got {type(cell).__name__}") from None
    want = "quantized_dynamic" if dtype == dtypes.qint8 else "quantized_fp16"
    if kind != want:
        raise ValueError(f"expected {want!r} cell parameters for a {dtype!r} layer, got {kind!r}")
    if kind == "quantized_dynamic" and list(longs) not in ([0], [1]):
        raise ValueError(f"expected the reduce_range flag [0] or [1] of a 'quantized_dynamic' cell, got "
                         f"{list(longs)!r}")
    return [read_pair(p, dtype, shape) for p, shape in zip(packed, shapes)], kind != "quantized_dynamic" or \
        bool(longs[0])


def _float(value):
    if isinstance(value, Tensor):
        return value.detach().float().clone()
    if hasattr(value, "detach"):          # torch's tensor (a Parameter too)
        value = value.detach().cpu().numpy()
    return creation.tensor(np.asarray(value), dtype=dtypes.float32)
