"""torch.ao.quantization's dynamic quantization: ``quantize_dynamic``.

    >>> qmodel = gt.ao.quantization.quantize_dynamic(model, {gt.nn.Linear}, dtype=gt.qint8)

puts a ``gt.ao.nn.quantized.dynamic.Linear`` (qint8 weight, a quarter of the float32 memory;
outputs equal to torch's bit for bit) in place of every ``nn.Linear`` below ``model``.
"""

import copy

from gt import dtypes
from gt.ao.nn.quantized import dynamic
from gt.nn.linear import Linear as FloatLinear
from gt.nn.multihead_attention import MultiheadAttention


def quantize_dynamic(model, qconfig_spec=None, dtype=dtypes.qint8, mapping=None, inplace=False):
    """``model`` (a copy unless ``inplace``) with each submodule of a type in ``qconfig_spec`` (a set
    of module classes, or a dict whose keys are classes or submodule names; default: ``nn.Linear``)
    replaced by its dynamically quantized form. As torch's, ``model`` itself is never replaced,
    only modules below it. gt quantizes ``nn.Linear`` to qint8 only; ``mapping`` (torch's table
    of float to quantized classes) may only name that pair."""
    if dtypes.to_dtype(dtype) != dtypes.qint8:
        raise NotImplementedError(f"quantize_dynamic: gt supports dtype gt.qint8, got {dtype!r}")
    if mapping is not None and any(k is not FloatLinear or v is not dynamic.Linear for k, v in mapping.items()):
        raise NotImplementedError("quantize_dynamic: gt's mapping is {gt.nn.Linear: "
                                  "gt.ao.nn.quantized.dynamic.Linear} only")
    spec = {FloatLinear} if qconfig_spec is None else set(qconfig_spec)
    if not inplace:
        model = copy.deepcopy(model)
    _swap(model, spec, "")
    return model


def _swap(module, spec, prefix):
    for name, child in list(module.named_children()):
        path = f"{prefix}.{name}" if prefix else name
        # MultiheadAttention reads its out_proj's weight itself: torch makes it a Linear subclass that
        # quantize_dynamic leaves alone (NonDynamicallyQuantizableLinear)
        kept = isinstance(module, MultiheadAttention) and name == "out_proj"
        if type(child) is FloatLinear and not kept and (FloatLinear in spec or path in spec):
            setattr(module, name, dynamic.Linear.from_float(child))
        else:
            _swap(child, spec, path)
