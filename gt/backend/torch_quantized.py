"""fbgemm's dynamically quantized Linear for the torch engine on the CPU: torch's own kernel
(``torch.ops.quantized.linear_dynamic``, what ``torch.ao.nn.quantized.dynamic.Linear`` calls),
so its outputs are torch's by construction. It multiplies uint8 by int8 in integer SIMD; the
layer's best-of-many times on a loaded 2-core CPU: 32 rows of 1,024 into 512 in 0.11 ms against
0.7 ms by gt's float32 block gemms (gt/backend/engine_quantized.py), 8 rows of 40,000 into 256
in 0.85 against about 14 ms, 128 rows in 7.5-17 against 36-56 ms (torch's own layer: 0.07, 0.7
and 6-11 ms).

It reads a packed copy of the weight (fbgemm's layout: 13.3 MB for a 40,000 x 256 weight, 1.3
bytes an element, measured as the process's resident memory), made once per weight and kept
while the weight lives: on this path a quantized Linear's weight takes about 2.3 bytes an
element, 58% of float32's, where gt's own path keeps one byte.
"""

import warnings
import weakref

import torch

# id of the int8 weight array -> (a weak reference to it, scale, bias array, packed); by id: a
# tensor's == is elementwise, so tensors cannot key a WeakKeyDictionary
_PACKED = {}


def linear_dynamic(x, weight, weight_scale, bias):
    """``x`` (..., in) float32 through fbgemm's dynamic quantized Linear with the int8 ``weight``
    (out, in), quantized per tensor with ``weight_scale`` and zero point 0, and the float32
    ``bias`` (out,) or None; None where the kernel cannot run here (not on the CPU, the
    quantized engine not fbgemm's, an empty weight)."""
    if (x.device.type != "cpu" or torch.backends.quantized.engine not in ("x86", "fbgemm")
            or 0 in weight.shape or x.dtype != torch.float32):
        return None
    kept = _PACKED.get(id(weight))
    if kept is None or kept[0]() is not weight or kept[1] != weight_scale or kept[2] is not bias:
        with warnings.catch_warnings():      # torch 2.13 deprecates its quantized tensors
            warnings.simplefilter("ignore")
            qweight = torch._make_per_tensor_quantized_tensor(weight, weight_scale, 0)
            packed = torch.ops.quantized.linear_prepack(qweight, bias)
        key = id(weight)
        kept = _PACKED[key] = (weakref.ref(weight, lambda _, key=key: _forget(key)), weight_scale, bias, packed)
    # the packed bias is the bias array itself (an in-place change reaches it); reduce_range as torch's Linear
    return torch.ops.quantized.linear_dynamic(x, kept[3], True)


def _forget(key):
    kept = _PACKED.get(key)
    if kept is not None and kept[0]() is None:
        del _PACKED[key]
