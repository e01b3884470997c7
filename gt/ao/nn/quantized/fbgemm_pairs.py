"""fbgemm's int16 saturation of pairs of uint8 x int8 products, on CPUs without AVX-512 VNNI.

fbgemm's uint8 x int8 -> int32 kernels (``GenerateKernelU8S8S32ACC32``) multiply with ``vpmaddubsw``
on AVX2 and on AVX-512 without VNNI: it adds the products of two neighbouring K elements (the
packed B matrix interleaves K by 4, K padded with zeros) into an int16, saturating at -32768 and
32767, before ``vpmaddwd`` widens the pairs to int32; with AVX-512 VNNI (``vpdpbusd``) the sums are
exact. fbgemm picks the kernel by ``fbgemmHasAvx512VnniSupport()`` (cpuinfo's CPU flags), so gt
reads the same flag. The raw integers saturate, before the zero points' row and column offsets
are taken off: 7-bit inputs (``reduce_range``, the fbgemm and x86 qconfigs' activations) never
reach it; 8-bit ones against large weights do (seen on an AMD EPYC with AVX2: a Linear after a
Sigmoid's fixed 0..255 output gave torch's values tens of quanta off the exact sums)."""

import itertools
import platform

from gt import dtypes
from gt.nn import functional as F
from gt.tensor import creation, functions

_I16 = 32767
_CHUNK = 1 << 22        # pair products held at once


def _has_avx512_vnni():
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("flags"):
                    return "avx512_vnni" in line.split()
    except OSError:
        pass
    return True        # unknown: the exact sums, as before


SATURATES = platform.machine().lower() in ("x86_64", "amd64") and not _has_avx512_vnni()


def saturation(xq, wq):
    """What fbgemm's saturated sums differ from the exact ones by, for raw integers ``xq`` (..., K)
    (uint8 values) and ``wq`` (out, K) (int8 values), both float: float64 (..., out), or None where
    this CPU's kernel is exact or no pair can reach int16's bounds."""
    if not SATURATES or xq.numel() == 0 or wq.numel() == 0:
        return None
    if 2 * float(xq.abs().max()) * float(wq.abs().max()) <= _I16:
        return None
    k = xq.shape[-1]
    lead = tuple(xq.shape[:-1])
    x, w = xq.double().reshape(-1, k), wq.double()
    if k % 2:
        x = functions.cat([x, x[:, :1] * 0], 1)
        w = functions.cat([w, w[:, :1] * 0], 1)
    half, out = (k + 1) // 2, w.shape[0]
    x, w = x.reshape(-1, 1, half, 2), w.reshape(1, out, half, 2)
    step = max(1, _CHUNK // max(1, out * half))
    parts = []
    for i in range(0, x.shape[0], step):
        pairs = (x[i:i + step] * w).sum(-1)
        parts.append((pairs.clamp(-_I16 - 1, _I16) - pairs).sum(-1))
    return functions.cat(parts, 0).reshape(lead + (out,))


def conv_saturation(xq, wq, stride, padding, dilation, groups, zero_point):
    """``saturation`` for fbgemm's im2col convolution: ``xq`` (N, C, *spatial) raw uint8 values as
    float, ``wq`` (O, C/groups, *kernel) raw int8 values; the im2col rows' K runs over the kernel's
    taps, the channels of a group innermost (torch packs the weight channels-last), and a padded
    position holds the input's zero point -> float64 (N, O, *spatial') or None."""
    if not SATURATES or 2 * 255.0 * float(wq.abs().max() if wq.numel() else 0) <= _I16:
        return None
    if 2 * float(xq.abs().max() if xq.numel() else 0) * float(wq.abs().max()) <= _I16:
        return None
    dims = wq.ndim - 2
    pads = []
    for p in reversed(padding):
        pads += [p, p]
    x = F.pad(xq.double(), pads, value=float(zero_point)) if any(padding) else xq.double()
    kernel = tuple(wq.shape[2:])
    out = tuple((x.shape[2 + d] - dilation[d] * (kernel[d] - 1) - 1) // stride[d] + 1 for d in range(dims))
    taps = []
    for tap in itertools.product(*(range(k) for k in kernel)):
        starts = [t * dilation[d] for d, t in enumerate(tap)]
        index = (slice(None), slice(None)) + tuple(
            slice(starts[d], starts[d] + stride[d] * (out[d] - 1) + 1, stride[d]) for d in range(dims))
        taps.append(x[index])
    cols = functions.stack(taps, 2)                       # (N, C, taps, *out)
    n, c, ocg = x.shape[0], x.shape[1], wq.shape[0] // groups
    cg = c // groups
    parts = []
    for g in range(groups):
        rows = cols[:, g * cg:(g + 1) * cg].permute(0, *range(3, 3 + dims), 2, 1).reshape(-1, len(taps) * cg)
        w = wq[g * ocg:(g + 1) * ocg].double().reshape(ocg, cg, len(taps)).permute(0, 2, 1).reshape(ocg, -1)
        off = saturation(rows, w)
        off = rows[:, :1].reshape((n,) + out + (1,)) * 0 if off is None else off.reshape((n,) + out + (ocg,))
        parts.append(off.expand((n,) + out + (ocg,)))
    return functions.cat(parts, -1).permute(0, dims + 1, *range(1, dims + 1))


def conv_transpose_saturation(xq, wq, stride, padding, output_padding, dilation, groups, zero_point):
    """``conv_saturation`` for fbgemm's transposed convolution, as the convolution over the input
    spread by ``stride`` (the gaps and the borders holding its zero point, as fbgemm's transposed
    im2col fills them) of the flipped weight ``wq`` (C, O/groups, *kernel) -> (N, O, *spatial') or None."""
    if not SATURATES or 2 * 255.0 * float(wq.abs().max() if wq.numel() else 0) <= _I16:
        return None
    dims = wq.ndim - 2
    kernel = tuple(wq.shape[2:])
    spread = tuple((xq.shape[2 + d] - 1) * stride[d] + 1 for d in range(dims))
    x = creation.full(tuple(xq.shape[:2]) + spread, float(zero_point), dtype=dtypes.float64)
    x[(slice(None), slice(None)) + tuple(slice(None, None, s) for s in stride)] = xq.double()
    pads = []
    for d in reversed(range(dims)):
        edge = dilation[d] * (kernel[d] - 1) - padding[d]
        pads += [edge, edge + output_padding[d]]
    x = F.pad(x, pads, value=float(zero_point))
    c, ocg = wq.shape[0], wq.shape[1]
    w = wq.reshape((groups, c // groups, ocg) + kernel).transpose(1, 2).reshape((groups * ocg, c // groups) + kernel)
    w = functions.flip(w, list(range(2, 2 + dims)))
    return conv_saturation(x, w, (1,) * dims, (0,) * dims, dilation, groups, zero_point)
