"""torch's CPU range kernels (``arange``, ``linspace``, ``logspace``) in numpy, to the bit.

Why: numpy's ``linspace`` and ``arange``, and values computed in float64 and cast, differ from
torch's in the last bit for many lengths and steps, and such a bit decides which cell a point on
a cell boundary falls into (an identity ``affine_grid`` puts every sampling point on a pixel
centre: ``grid_sample``'s gradient there followed torch's only with its coordinates to the bit).
torch's kernels (aten/src/ATen/native/cpu/RangeFactoriesKernel.cpp) are compiled with fused
multiply-adds; ``linspace`` runs one scalar loop, ``arange`` runs 32-byte vectors of
``base + j * step`` from a base rounded to the dtype, two vectors at a time, then a scalar tail;
``logspace`` (RangeFactories.cpp) has no fused operations and calls the C library's ``pow``.
Each was matched against torch 2.13 on thousands of ranges (tests/test_construct_functions.py).
"""

import math

import numpy as np


def linspace(start, stop, steps, name):
    """torch's CPU ``linspace`` kernel in numpy, for the dtype ``name`` (bfloat16 values come as
    float32): ``step = (stop - start) / (steps - 1)`` in the dtype, then ``start + step * i`` for
    the first ``steps // 2`` values and ``stop - step * (steps - 1 - i)`` for the rest, so both
    ends are exact. torch's kernel is compiled with fused multiply-adds, so a float32 or float64
    value is rounded once: float32 ones from their exact float64 product (``sum_to_float32``),
    float64 ones by ``fused_multiply_add``. float16 and bfloat16 round after
    each operation, as torch's 16-bit arithmetic does. Integer dtypes compute in float64 from the
    truncated ends and truncate. One value is ``start`` itself, whatever ``stop`` is (torch's)."""
    if steps == 1:
        return linspace(start, start, 2, name)[:1]
    if name.startswith("complex"):      # each part on its own line (a real index: no cross terms)
        return _complex_parts(linspace, complex(start), complex(stop), steps, name)
    index = np.arange(steps, dtype=np.float64)
    half = steps // 2
    with np.errstate(invalid="ignore", over="ignore"):
        if name in ("float16", "bfloat16"):
            return _line_16(start, stop, steps, half, index, _round_16(name))
        integer = name not in ("float32", "float64")
        work = np.dtype(np.float64 if integer else name)
        if integer:
            start, stop = int(start), int(stop)
        s, e = work.type(start), work.type(stop)
        step = (e - s) / work.type(max(steps - 1, 1))
        index[half:] -= steps - 1                       # -(steps - 1 - i): the values from the end
        ends = np.full(steps, float(e))
        ends[:half] = float(s)
        if work.itemsize < 8:                           # the product is exact in float64
            return sum_to_float32(float(step) * index, ends)
        values = fused_multiply_add(np.full(steps, float(step)), index, ends)
    return np.trunc(values).astype(name) if integer else values.astype(name)


def _complex_parts(kernel, start, stop, steps, name):
    """``kernel``'s values for a complex dtype ``name``: its real parts' line and its imaginary parts'."""
    part = "float32" if name == "complex64" else "float64"
    out = np.empty(steps, dtype=name)
    out.real, out.imag = kernel(start.real, stop.real, steps, part), kernel(start.imag, stop.imag, steps, part)
    return out


def _line_16(start, stop, steps, half, index, r):
    """``linspace`` for a 16-bit float whose rounding (of float32 values) is ``r``: torch
    rounds the step, each integer factor, each product and each sum."""
    s, e = r(np.float32(start)), r(np.float32(stop))
    step = r(r(e - s) / r(np.float32(max(steps - 1, 1))))
    counts = np.where(index < half, index, steps - 1 - index).astype(np.float32)
    products = r(step * r(counts))
    return np.where(index < half, r(s + products), r(e - products)).astype(np.float32)


def _round_16(name):
    """float32 values rounded to float16 or to bfloat16 (ties to even; kept as float32)."""
    if name == "float16":
        return lambda x: np.asarray(x, np.float32).astype(np.float16).astype(np.float32)

    def bfloat16(x):
        x = np.asarray(x, np.float32)
        bits = x.view(np.uint32).astype(np.uint64)
        rounded = ((bits + 0x7FFF + ((bits >> 16) & 1)) & 0xFFFF0000).astype(np.uint32).view(np.float32)
        return np.where(np.isnan(x), x, rounded)
    return bfloat16


def sum_to_float32(p, c):
    """``p + c`` (float64 arrays) rounded once to float32: the float64 sum, except where it lies
    exactly half-way between two float32 values and the float64 rounding dropped the part that
    decides which (the sum's rounding error), as happens with a tiny ``c``."""
    total = p + c
    back = total - p
    low = (p - (total - back)) + (c - back)            # the error of the float64 sum (exact)
    nearest = total.astype(np.float32)                  # ties to even
    wide = nearest.astype(np.float64)
    other = np.nextafter(nearest, np.where(total > wide, np.float32(np.inf), np.float32(-np.inf)))
    halfway = (wide + other.astype(np.float64)) / 2 == total
    above, below = np.maximum(nearest, other), np.minimum(nearest, other)
    return np.where(halfway & (low > 0), above, np.where(halfway & (low < 0), below, nearest))


def fused_multiply_add(a, b, c):
    """``a * b + c`` rounded once (float64 arrays), as a fused multiply-add: Dekker's exact
    product, an exact sum, and Boldo and Melquiond's last step (the small parts added with
    rounding to odd, then the whole rounded to nearest: correctly rounded). Non-finite operands
    give the plain result."""
    p = a * b
    split = 134217729.0                                 # 2**27 + 1
    ta, tb = split * a, split * b
    ah = ta - (ta - a)
    bh = tb - (tb - b)
    err = ((ah * bh - p) + ah * (b - bh) + (a - ah) * bh) + (a - ah) * (b - bh)    # a * b = p + err
    total, low = _two_sum(c, p)                         # c + p = total + low
    fused = total + _sum_to_odd(low, err)
    plain = p + c
    return np.where(np.isfinite(fused), fused, plain)


def _two_sum(x, y):
    """``(s, e)``: ``s = x + y`` rounded and ``e`` its error (``x + y = s + e`` exactly)."""
    s = x + y
    back = s - x
    return s, (x - (s - back)) + (y - back)


def _sum_to_odd(x, y):
    """``x + y`` rounded to odd: the nearest value where it is exact, else the neighbour of the
    exact sum whose last bit is 1."""
    s, e = _two_sum(x, y)
    even = (s.view(np.int64) & 1) == 0
    toward = np.where(e > 0, np.inf, -np.inf)
    return np.where((e != 0) & even & np.isfinite(s), np.nextafter(s, toward), s)



def arange(start, stop, step, dtype, threads=1):
    """torch's CPU ``arange(start, stop, step)`` as a numpy array of ``dtype`` (numpy's own for
    integer dtypes, where both are exact): ``start + step * i`` computed in float64 (torch's
    accumulate type; float32 for 16-bit floats), in 32-byte vectors: in each part of torch's
    ``parallel_for`` (one below 32,768 values, else one per thread), pairs of vectors whose lanes
    are ``base + j * step`` from ``base`` (the first lane's value) rounded to the dtype, then the
    remaining values one by one."""
    dtype = np.dtype(dtype)
    if dtype.kind in "iu":
        return _integer_arange(start, stop, step, dtype)
    if dtype.kind == "b":       # torch's CPU kernel has no bool version (numpy's allows two values)
        raise NotImplementedError('"arange_cpu" not implemented for \'Bool\'')
    if dtype.kind != "f":
        return np.arange(start, stop, step, dtype=dtype)
    count = max(int(np.ceil((float(stop) - float(start)) / float(step))), 0)
    name = dtype.name
    width = 32 // dtype.itemsize
    index = np.arange(count, dtype=np.float64)
    lane = np.zeros(count)
    parts = 1 if count <= 32768 else min(max(threads, 1), -(-count // 32768))
    size = -(-count // parts) if count else 1
    for begin in range(0, count, size):
        vectorised = min(size, count - begin) // (2 * width) * 2 * width
        lane[begin:begin + vectorised] = np.arange(vectorised) % width
    with np.errstate(invalid="ignore", over="ignore"):
        if dtype.itemsize == 2:      # float32 arithmetic: exact in float64, then rounded once
            r = _round_16(name)
            start, step = float(np.float32(start)), float(np.float32(step))
            base = r((step * (index - lane) + start).astype(np.float32)).astype(np.float64)
            return r((step * lane + base).astype(np.float32)).astype(name)
        steps = np.full(count, float(step))
        base = fused_multiply_add(steps, index - lane, np.full(count, float(start))).astype(name)
        return fused_multiply_add(steps, lane, base.astype(np.float64)).astype(name)


def _integer_arange(start, stop, step, dtype):
    """torch's integer ``arange``: the ends and the step truncated to int64 first (so
    ``arange(0, 5, 1.5, dtype=int64)`` steps by 1, and a step below 1 is a zero step); int64's
    length from the truncated values, the other widths' from the given ones (torch's two formulas)."""
    first, last, stride = int(start), int(stop), int(step)
    if dtype != np.int64:          # torch checks only the given step here: a truncated 0 repeats start
        count = max(math.ceil((float(stop) - float(start)) / float(step)), 0)
        return (first + stride * np.arange(count, dtype=np.int64)).astype(dtype)
    if stride == 0:
        raise ValueError("step must be nonzero")
    sign = 1 if stride > 0 else -1
    count = max((last - first + stride - sign) // stride, 0)
    return np.arange(first, first + count * stride, stride, dtype=np.int64)[:count]


def logspace(start, end, steps, base, name):
    """torch's CPU ``logspace`` values for the dtype ``name`` (bfloat16 values come as float32):
    ``base ** t`` with the exponents ``t`` of its kernel, not compiled with fused multiply-adds:
    ``step = (end - start) / (steps - 1)`` with the ends in the dtype and the step in float64,
    ``start + step * i`` for the first half and ``end - step * (steps - 1 - i)`` for the rest, the
    power by the C library's ``pow`` in float64 (numpy's vectorised ``power`` differs from it in
    the last bit), then rounded to the dtype. Integer dtypes: truncated ends, a float32 base."""
    if name.startswith("complex"):
        if complex(start).imag == 0 and complex(end).imag == 0:     # real exponents: real powers
            part = "float32" if name == "complex64" else "float64"
            return logspace(complex(start).real, complex(end).real, steps, base, part).astype(name)
        exponents = linspace(start, end, steps, "complex128")
        with np.errstate(over="ignore", invalid="ignore"):
            return np.power(complex(base), exponents).astype(name)
    sixteen = name in ("float16", "bfloat16")
    integer = not sixteen and np.dtype(name).kind != "f"
    if integer:
        base = float(np.float32(base))
    if steps == 1:
        exponents = [float(start)]
    else:
        if integer:
            s, e = float(int(start)), float(int(end))
        elif sixteen:
            s, e = (float(_round_16(name)(np.float32(v))) for v in (start, end))
        else:
            s, e = (float(np.dtype(name).type(v)) for v in (start, end))
        diff = e - s                                    # in the dtype, as torch subtracts the ends
        if sixteen:
            diff = float(_round_16(name)(np.float32(diff)))
        elif name == "float32":
            diff = float(np.float32(diff))
        step = diff / (steps - 1)
        half = steps // 2
        exponents = [s + step * i if i < half else e - step * (steps - 1 - i) for i in range(steps)]
    with np.errstate(over="ignore", invalid="ignore"):
        values = np.array([_pow(float(base), t) for t in exponents], dtype=np.float64)
        if sixteen:
            return _round_16(name)(values.astype(np.float32))
        return np.trunc(values).astype(name) if integer else values.astype(name)


def _pow(base, exponent):
    """The C library's ``pow`` (Python's ``math.pow``), with inf and NaN instead of its errors."""
    try:
        return math.pow(base, exponent)
    except OverflowError:
        return math.inf
    except ValueError:
        return math.nan
