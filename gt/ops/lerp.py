"""``lerp(start, end, weight)`` of real floating tensors as torch 2.13's CPU kernel computes it:
``fma(weight, end - start, start)`` where ``|weight| < 0.5``, else ``fma(weight - 1, end - start,
end)``, in float32 for float16/bfloat16/float32 and in float64 for float64, rounded once (a
composite ``start + weight * (end - start)`` rounds three times: it differed from torch's in about
a third of the elements, by an ulp); and torch's gradients: ``g * (1 - weight)`` (``1 - weight`` in
the weight's dtype), ``g * weight`` and ``g * (end - start)``. Without an fma in numpy the product
is made exact: float32 operands multiply exactly in float64, float64 ones through Dekker's split."""

from array import array

from gt import dtypes
from gt.autograd import Function
from gt.backend import B

_SPLIT = 134217729.0        # 2**27 + 1: Veltkamp's splitting constant for float64


def _fma64(a, b, c):
    """``a * b + c`` of float64 arrays (``b`` may be a number), rounded about once: the product's
    error from Dekker's two-product, the sum's from Knuth's two-sum. Where a step overflows, the
    plain ``a * b + c``."""
    p = a * b
    t = a * _SPLIT
    ah = t - (t - a)
    al = a - ah
    t = b * _SPLIT
    bh = t - (t - b)
    bl = b - bh
    err = ((ah * bh - p) + ah * bl + al * bh) + al * bl
    s = p + c
    v = s - p
    out = s + (((p - (s - v)) + (c - v)) + err)
    return B.where(B.isfinite(out), out, p + c)


def lerp_values(s, e, w):
    """torch's lerp kernel on engine arrays ``s``, ``e`` (one real floating dtype) and ``w`` (an
    array of it or a number)."""
    dt = B.dtype_of(s)
    number = not B.is_array(w)
    if dt is dtypes.float64:
        diff = e - s
        small = abs(w) < 0.5 if number else B.abs(w) < 0.5
        if number:
            return _fma64(diff, w, s) if small else _fma64(diff, w - 1.0, e)
        return _fma64(diff, B.where(small, w, w - 1.0), B.where(small, s, e))
    f32, wide = dtypes.float32, dtypes.float64
    # torch's end - start in float32; the float32 product is exact in float64, the sum rounded once
    acc = B.astype(e - s if dt is f32 else B.astype(e, f32) - B.astype(s, f32), wide)
    if number:
        w = array("f", (w,))[0]     # the weight as torch's float32 Scalar (array rounds it to float32)
        small = abs(w) < 0.5
        acc *= w if small else array("f", (w - 1.0,))[0]
        acc += s if small else e
    else:
        w = B.astype(w, wide)
        small = B.abs(w) < 0.5
        acc *= B.where(small, w, B.astype(B.astype(w - 1.0, f32), wide))
        acc += B.where(small, s, e)
    acc = B.astype(acc, f32)
    return acc if dt is f32 else B.astype(acc, dt)


class Lerp(Function):
    """``start + weight * (end - start)`` as torch's kernel (module docstring); ``weight`` a tensor
    broadcasting with the others, or a number."""
    complex_graph = "holomorphic"

    _torch_name = property(lambda self: "LerpBackward0" if self.number else "LerpBackward1")

    def forward(self, s, e, w):
        ns, ne, nw = (self.needs_input_grad + (False,) * 3)[:3]
        number = not B.is_array(w)
        self.save(s if nw else None, e if nw else None, w if (ns or ne) else None)
        self.number = self.keeps_scalar = number      # a number weight is torch's Scalar: no saved tensor
        with B.quiet_float_errors():     # (a composition: torch's layout where the operands' differ)
            return B.iterator_layout(lerp_values(s, e, w), s, e, w)

    def backward(self, g):
        s, e, w = self.saved
        ns, ne, nw = (self.needs_input_grad + (False,) * 3)[:3]
        with B.quiet_float_errors():
            if self.number:
                return (B.multiply(g, 1.0 - w) if ns else None), (B.multiply(g, w) if ne else None), None
            return (g * (1 - w) if ns else None), (g * w if ne else None), (g * (e - s) if nw else None)

    def backward_graph(self, g):
        s, e, w = self.inputs[:3]
        ns, ne, nw = (self.needs_input_grad + (False,) * 3)[:3]
        return (g * (1.0 - w) if ns else None), (g * w if ne else None), \
            (g * (e - s) if nw and not self.number else None)
