"""torch 2.13's ``quantized::softmax`` on x86, replayed with gt's dense ops: ``x`` dequantized, torch's
float32 CPU softmax kernel (aten/src/ATen/native/cpu/SoftMaxKernel.cpp) to its bits, quantized per tensor.
Found by testing against ``torch.ops.quantized.softmax`` and ``torch.softmax`` on float32.

- Along the last dim (``_vec_softmax_lastdim``): the row's max; ``exp(x - max)`` by SLEEF's vectorised
  ``expf`` (u10: its range reduction and polynomial with fmas, replayed in float64 and rounded as float32);
  the sum as ``vec::reduce_all`` makes it: 16 float32 lanes (AVX-512) each adding every 16th value in order,
  then folded by halves (lane i + lane i^8, then ^4, ^2, ^1); a row under 16 values adds in order; then
  ``e * (1 / sum)``.
- Along another dim (``_vec_softmax``): per position of the dims after it, the max, ``exp(x - max)``, the
  float32 sum in order along the dim and ``e / sum``; positions in whole steps of 16 (along the inner dims'
  flat order) take SLEEF's ``expf``, the rest glibc's scalar ``expf`` (its table of 2^(i/32) and cubic
  polynomial in double, replayed exactly).

A tensor that torch splits among threads has other steps (gt follows one thread, as for the elementwise
kernels); torch's AVX2 build has 8 lanes, so its last-dim sums may round otherwise in their last bit.
"""

import math

from gt import autograd, dtypes
from gt.dtypes import round_float32
from gt.ops._shapes import normalize_axis
from gt.tensor import creation, functions
from gt.tensor.quantize_functions import quantize_per_tensor
from gt.tensor.quantized import QuantizedTensor

LANES = 16      # float32 values in one AVX-512 vector: torch's softmax steps
_POW2_LOW, _POW2_HIGH = -160, 140
# SLEEF's xexpf constants (float32) and glibc's expf (e_expf.c, e_exp2f_data.c: N = 32)
_R_LN2 = round_float32(1.442695040888963407359924681001892137426645954152985934135449406931)
_L2U, _L2L = round_float32(0.693145751953125), round_float32(1.428606765330187045e-06)
_SLEEF_POLY = [round_float32(c) for c in (0.000198527617612853646278381, 0.00139304355252534151077271,
                                          0.00833336077630519866943359, 0.0416664853692054748535156,
                                          0.166666671633720397949219, 0.5)]
_N = 32
_GLIBC_UNDERFLOW = float.fromhex("-0x1.9fe368p6")     # log(2^-150): below it glibc's expf returns 0
_GLIBC_OVERFLOW = float.fromhex("0x1.62e42ep6")       # log(2^128): above it inf
_INV_LN2_N = float.fromhex("0x1.71547652b82fep+0") * _N
_GLIBC_POLY = (float.fromhex("0x1.c6af84b912394p-5") / _N ** 3, float.fromhex("0x1.ebfce50fac4f3p-3") / _N ** 2,
               float.fromhex("0x1.62e42ff0c52d6p-1") / _N)


def _pow2(n):
    """2.0 ** ``n`` (an int64 tensor in [-160, 140]) as exact float64, from a table (no pow rounding)."""
    table = creation.tensor([math.ldexp(1.0, k) for k in range(_POW2_LOW, _POW2_HIGH + 1)], dtype=dtypes.float64)
    return table[n - _POW2_LOW]


def _fma(a, b, c):
    """float32 ``fma(a, b, c)``: the product is exact in float64, the sum rounded there then to float32."""
    return (a.double() * b + c).float()


def sleef_expf(d):
    """SLEEF's vectorised ``expf`` (u10) of float32 ``d`` (torch's ``Vectorized<float>::exp``)."""
    q = (d * _R_LN2).round()
    s = _fma(q, -_L2U, d)
    s = _fma(q, -_L2L, s)
    u = creation.full(tuple(d.shape), _SLEEF_POLY[0], dtype=dtypes.float32)
    for c in _SLEEF_POLY[1:]:
        u = _fma(u, s, c)
    u = _fma(s * s, u, s) + 1.0
    out = (u.double() * _pow2(q.long().clamp(_POW2_LOW, _POW2_HIGH))).float()
    return out.where(d >= -104.0, 0.0).where(d <= 100.0, math.inf)


def glibc_expf(d):
    """glibc's scalar ``expf`` of float32 ``d``: ``2^(k/32) * p(r)`` in double, rounded once."""
    z = d.double() * _INV_LN2_N
    k = z.round()
    r = z - k
    k = k.long()
    table = creation.tensor([2.0 ** (i / _N) for i in range(_N)], dtype=dtypes.float64)
    s = table[k % _N] * _pow2((k // _N).clamp(_POW2_LOW, _POW2_HIGH))
    c0, c1, c2 = _GLIBC_POLY
    y = ((r * c0 + c1) * (r * r) + (r * c2 + 1.0)) * s
    return y.float().where(d >= _GLIBC_UNDERFLOW, 0.0).where(d <= _GLIBC_OVERFLOW, math.inf)


def _lane_sum(e):
    """``vec::reduce_all``'s float32 sum of each row of ``e`` (rows, n)."""
    n = e.shape[1]
    if n < LANES:
        acc = e[:, 0]
        for i in range(1, n):
            acc = acc + e[:, i]
        return acc
    pad = -n % LANES          # the last step's unloaded lanes keep their sums: adding 0 does the same
    if pad:
        e = functions.cat([e, creation.zeros((e.shape[0], pad), dtype=dtypes.float32)], 1)
    steps = e.reshape(e.shape[0], -1, LANES)
    acc = steps[:, 0]
    for i in range(1, steps.shape[1]):
        acc = acc + steps[:, i]
    for half in (8, 4, 2, 1):
        acc = acc + acc[:, creation.tensor([i ^ half for i in range(LANES)])]
    return acc[:, 0]


def softmax_lastdim(v):
    """torch's float32 softmax of ``v`` along its last dim (``_vec_softmax_lastdim``)."""
    rows = v.reshape(-1, v.shape[-1])
    e = sleef_expf(rows - rows.amax(1, keepdim=True))
    return (e * (1.0 / _lane_sum(e)).reshape(-1, 1)).reshape(tuple(v.shape))


def softmax_inner(v, dim):
    """torch's float32 softmax of ``v`` along ``dim``, not its last (``_vec_softmax``)."""
    shape = tuple(v.shape)
    inner = math.prod(shape[dim + 1:])
    x = v.reshape(-1, shape[dim], inner)
    d = x - x.amax(1, keepdim=True)
    head = inner // LANES * LANES
    e = functions.cat([sleef_expf(d[:, :, :head]), glibc_expf(d[:, :, head:])], 2)
    acc = e[:, 0]
    for i in range(1, shape[dim]):
        acc = acc + e[:, i]
    return (e / acc.reshape(-1, 1, inner)).reshape(shape)


def softmax(x, dim, scale, zero_point):
    """``quantized::softmax`` on x86: ``x`` (any shape, quantized) dequantized, torch's float32 softmax
    along ``dim``, quantized per tensor to ``scale``/``zero_point`` in ``x``'s dtype."""
    if not isinstance(x, QuantizedTensor):
        raise RuntimeError(f"quantized::softmax: expected a quantized input, got a float tensor of dtype {x.dtype!r}")
    dim = normalize_axis(dim, x.ndim, "quantized::softmax")
    with autograd.no_grad():
        v = x.dequantize()
        if v.numel() and v.ndim == 0:
            v = softmax_lastdim(v.reshape(1)).reshape(())
        elif v.numel():
            v = softmax_lastdim(v) if dim == v.ndim - 1 else softmax_inner(v, dim)
        return quantize_per_tensor(v, scale, zero_point, x.dtype)
