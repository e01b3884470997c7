"""torch.ao.nn.quantized.dynamic: ``Linear``, the dynamically quantized linear layer that
``gt.ao.quantization.quantize_dynamic`` puts in place of ``nn.Linear``.

Its weight is held as a qint8 quantized tensor (one byte an element: a quarter of float32's
memory), quantized once as torch's default weight observer does (symmetric, per tensor, scale
``max|w| / 127.5``, zero point 0). Each call quantizes its input to quint8 with scale and zero
point chosen from the input's min and max (torch's ``ChooseQuantizationParams`` with
``reduce_range=True``: 7 bits, as fbgemm's x86 kernels), multiplies the integers exactly and
rescales: ``float(acc * (x_scale * w_scale) + bias)``, where fbgemm accumulates in int32 and
adds in float64 before rounding. The outputs equal torch's bit for bit.
"""

from gt import autograd, dtypes
from gt.dtypes import round_float32
from gt.nn.module import Module
from gt.tensor import creation, quantize_math
from gt.tensor.quantize_math import choose_qparams
from gt.tensor.quantize_functions import quantize_per_tensor

def quantize_weight(weight):
    """``weight`` (float) as torch's default dynamic weight observer quantizes it: qint8 per
    tensor, symmetric (``MinMaxObserver(qscheme=per_tensor_symmetric)``)."""
    with autograd.no_grad():
        w = weight.detach().float()
        top = max(-min(float(w.min()), 0.0), max(float(w.max()), 0.0)) if w.numel() else 0.0
    scale = max(round_float32(round_float32(top) / 127.5), 2.0 ** -23)    # float32 eps floor, torch's
    return quantize_per_tensor(w, scale, 0, dtypes.qint8)


class Linear(Module):
    """``y = dequantize(quantize(x) @ qweight.T) + bias`` (torch's dynamically quantized Linear):
    (..., in_features) float32 -> (..., out_features) float32. ``weight()`` is the qint8 weight,
    ``bias()`` the float bias. The output carries no gradient (torch has no backward here)."""

    def __init__(self, in_features, out_features, bias_=True, dtype=dtypes.qint8):
        super().__init__()
        if dtypes.to_dtype(dtype) != dtypes.qint8:
            raise NotImplementedError(f"dynamic quantized Linear: gt supports dtype gt.qint8, got {dtype!r} (torch's "
                                      "float16 form is not implemented)")
        self.in_features, self.out_features = in_features, out_features
        self._qweight = quantize_weight(_zeros(out_features, in_features))
        self._bias = _zeros(out_features) if bias_ else None

    @classmethod
    def from_float(cls, mod):
        """The dynamically quantized form of the float ``nn.Linear`` ``mod`` (its weight quantized now)."""
        new = cls(mod.in_features, mod.out_features, mod.bias is not None)
        new._qweight = quantize_weight(mod.weight)
        if mod.bias is not None:
            new._bias = mod.bias.detach().float().clone()
        return new

    def weight(self):
        return self._qweight

    def bias(self):
        return self._bias

    def forward(self, x):
        if x.dtype != dtypes.float32:
            raise RuntimeError(f"expected scalar type Float but found {dtypes.torch_type_name(x.dtype.name)}")
        with autograd.no_grad():
            x = x.detach()
            low, high = (float(x.min()), float(x.max())) if x.numel() else (0.0, 0.0)
            scale, zero_point = choose_qparams(low, high)
            xq = quantize_math.quantize_tensor(x, scale, zero_point, dtypes.quint8)
            w = self._qweight
            # every product and partial sum is an integer below 2**53: float64 holds them exactly
            acc = (xq.double() - zero_point) @ w.int_repr().double().T
            out = acc * round_float32(round_float32(scale) * w.q_scale())     # fbgemm's float scales
            if self._bias is not None:
                out = out + self._bias.double()
            return out.float()

    def extra_repr(self):
        return (f"in_features={self.in_features}, out_features={self.out_features}, dtype={self._qweight.dtype!r}, "
                f"qscheme={self._qweight.qscheme()!r}")

    def __repr__(self):
        return f"DynamicQuantizedLinear({self.extra_repr()})"


def _zeros(*shape):
    return creation.zeros(shape, dtype=dtypes.float32)
