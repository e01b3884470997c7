"""The engine's fast paths of a dynamically quantized Linear (gt/ao, gt/ops/linalg.py
``QuantizedLinear``): the input's quantization and the exact integer product, written from the
required primitives (both engines run them; ``Engine`` inherits them through ``FastPaths``).

fbgemm multiplies uint8 by int8 and sums in int32; numpy and torch have no integer gemm on BLAS
(numpy's integer matmul is a plain loop, 7x slower than the float one here). Integer products
are exact in a float32 gemm while every partial sum stays below 2**24, so the product runs as
float32 gemms over blocks of the contracted axis, added in float64: exact, and as fast as the
float Linear within a few tens of percent.
"""

import math

from gt.dtypes import float32, float64

QUANTIZE_BLOCK = 1 << 16     # elements: a float64 block of 512 KiB stays in a core's L2 cache


class QuantizedPaths:
    def quantized_linear_packed(self, x, weight, weight_scale, bias):
        """A dynamically quantized Linear by the engine's own library kernel, with its own choice
        of the input's quantization parameters (so only for a whole input): ``x`` (..., in)
        float32, ``weight`` (out, in) int8 of scale ``weight_scale`` (zero point 0), ``bias``
        (out,) float32 or None -> float32 (..., out); None where there is none (the default)."""
        return None

    def quantize_centered(self, x, inverse, zero_point, qmax):
        """float32 ``x`` quantized and less its zero point, as float32 integers: ``clamp(rint(
        float32(x * inverse + zero_point)), 0, qmax) - zero_point`` (fbgemm's ``Quantize``: one
        rounding of the fma, which float64 replays; see gt/tensor/quantize_math.py). In blocks
        that stay in cache: the same passes over the whole input took 5x longer."""
        flat = self.reshape(x, (math.prod(x.shape),))
        out = self.empty(tuple(flat.shape), float32)
        for i in range(0, flat.shape[0], QUANTIZE_BLOCK):
            part = self.astype(flat[i:i + QUANTIZE_BLOCK], float64)
            part *= inverse
            part += zero_point
            part = self.clip(self.round(self.astype(part, float32)), 0, qmax)
            part -= zero_point
            out[i:i + QUANTIZE_BLOCK] = part
        return self.reshape(out, tuple(x.shape))

    def quantized_linear(self, xc, weight, scale, bias, x_bound):
        """A dynamically quantized Linear's product, exact: ``xc`` (..., in) float32 holding
        integers of magnitude at most ``x_bound`` (the quantized input less its zero point),
        ``weight`` (out, in) int8, ``bias`` (out,) float32 or None -> float32 (..., out), as fbgemm's
        ``ReQuantizeForFloat``: the exact integer sum ``xc @ weight.T`` rounded to float32 (its
        int32 -> float conversion, inexact past 2**24), then ``sum * scale + bias`` rounded once
        (an fma; float64 replays it). float32 gemms over blocks of ``in`` short enough that no
        partial sum passes 2**24 are exact; the blocks add in float64. The weight is converted one
        block at a time (a float copy of it all would cost the memory quantization saves)."""
        x2 = self.reshape(xc, (math.prod(xc.shape[:-1]), xc.shape[-1]))
        block = max(1, 2 ** 24 // max(1, int(x_bound) * 128))
        acc = None
        for k in range(0, max(x2.shape[1], 1), block):
            part = self.linear(x2[:, k:k + block], self.astype(weight[:, k:k + block], float32), None)
            acc = self.astype(part, float64) if acc is None else _iadd(acc, part)
        acc = self.astype(self.astype(acc, float32), float64)
        acc *= scale
        if bias is not None:
            acc += bias
        return self.reshape(self.astype(acc, float32), tuple(xc.shape[:-1]) + (weight.shape[0],))


def _iadd(target, value):
    target += value
    return target
