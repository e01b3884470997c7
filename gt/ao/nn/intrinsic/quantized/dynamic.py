"""torch.ao.nn.intrinsic.quantized.dynamic: ``LinearReLU``, the dynamically quantized Linear with its
ReLU (fbgemm's ``linear_relu_dynamic`` / ``linear_relu_dynamic_fp16``), what ``quantize_dynamic``
makes of a fused ``nn.intrinsic.LinearReLU`` that has a qconfig."""

from gt.ao.nn import intrinsic
from gt.ao.nn.quantized import dynamic


class LinearReLU(dynamic.Linear):
    """``relu(dynamic.Linear(x))``: (..., in_features) float32 -> (..., out_features) float32, qint8
    or float16 weights as ``dynamic.Linear``'s (fbgemm clamps the float result at 0)."""

    _versioned_range = False       # torch's always quantizes its input to 7 bits, whatever its version

    _FLOAT_MODULE = intrinsic.LinearReLU

    @classmethod
    def from_float(cls, mod, use_precomputed_fake_quant=False):
        """The dynamically quantized form of the fused ``mod``: its Linear's weight quantized by the
        Linear's qconfig (which it has from the fused module's, torch's)."""
        if type(mod) is not intrinsic.LinearReLU:
            raise AssertionError(f"nn.quantized.dynamic.Linear.from_float only works for one of['Linear', "
                                 f"'NonDynamicallyQuantizableLinear', 'LinearReLU'], got {type(mod)}")
        if not hasattr(mod, "qconfig"):
            raise AssertionError("Input float module must have qconfig defined")
        return super().from_float(mod[0])

    def forward(self, x):
        return super().forward(x).relu()

    def __repr__(self):
        return f"DynamicQuantizedLinearReLU({self.extra_repr()})"


__all__ = ["LinearReLU"]
