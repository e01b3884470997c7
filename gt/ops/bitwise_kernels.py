"""The engine-array kernels of torch's bitwise and integer/float-bit functions
(gt/tensor/bitwise_methods.py has the functions on tensors, their dtypes, errors and gradients).

They run on either engine with the array operators both have (``&``, ``|``, ``^``, ``~``, ``<<``,
``>>``, ``%``, ``//``) and ``B``'s primitives; the float functions read a float's bits through a
same-width integer view of its array (float16 and bfloat16 through float32, which holds their
values exactly), so ``frexp``, ``signbit``, ``nextafter`` and ``fmod`` are exact, never a rounding
formula. Each takes arrays (or a Python number where noted) and returns an array.
"""

import math

from gt import dtypes
from gt.backend import B

# (dtype the bits are read in, its int of the same width, mantissa bits, exponent mask, bias);
# float16 and bfloat16 are read as float32, which holds each of their values exactly
LAYOUT32 = (dtypes.float32, dtypes.int32, 23, 0xFF, 127)
LAYOUT64 = (dtypes.float64, dtypes.int64, 52, 0x7FF, 1023)
# (mantissa bits, smallest normal exponent, largest finite value, largest exponent) of each float
FORMAT = {dtypes.float16: (10, -14, 65504.0, 15), dtypes.bfloat16: (7, -126, 3.3895313892515355e38, 127),
          dtypes.float32: (23, -126, 3.4028234663852886e38, 127),
          dtypes.float64: (52, -1022, 1.7976931348623157e308, 1023)}


def arr(value):
    """numpy's ops on 0-d arrays give numpy scalars: make an array again."""
    return value if B.is_array(value) else B.asarray(value)


def float_layout(dtype):
    return LAYOUT64 if dtype == dtypes.float64 else LAYOUT32


def float_bits(x, layout):
    """The bits of the float array ``x`` (read in ``layout``'s float) as signed integers."""
    return arr(B.astype(arr(x), layout[0])).view(B.native_dtype(layout[1]))


def signbit_arrays(x):
    dt = B.dtype_of(x)
    if not dt.is_floating_point:
        return arr(x < 0)
    return arr(float_bits(x, float_layout(dt)) < 0)


def frexp_arrays(x):
    """(mantissa in [0.5, 1) with x's sign, exponent int32) with x = mantissa * 2**exponent;
    0, inf and NaN give themselves and exponent 0, as torch's."""
    dt = B.dtype_of(x)
    layout = float_layout(dt)
    work, _, p, emask, bias = layout
    xw = arr(B.astype(x, work))
    sub = ((float_bits(xw, layout) >> p) & emask) == 0
    with B.quiet_float_errors():
        xs = B.where(sub, xw * float(2 ** 64), xw)     # subnormals: scaled by 2**64, exactly, to be normal
    bits = float_bits(xs, layout)
    e = (bits >> p) & emask
    special = (e == emask) | (xs == 0)
    mantissa = arr((bits & ~(emask << p)) | ((bias - 1) << p)).view(B.native_dtype(work))
    mantissa = B.where(special, xw, mantissa)
    exponent = B.where(special, e ^ e, B.where(sub, e - (bias - 1 + 64), e - (bias - 1)))
    return arr(B.astype(mantissa, dt)), arr(B.astype(exponent, dtypes.int32))


def trunc_rem(x, y):
    """C's ``x % y`` (the remainder has x's sign) of integers, y nonzero: the engines' ``%`` is
    Python's (the divisor's sign). A divisor -1 gives 0 (as 1 does), never the INT_MIN trap."""
    if B.is_array(y):
        if B.dtype_of(y).is_signed:     # (torch's uint8 == -1 reads -1 as 255)
            y = B.where(y == -1, 1, y)
    elif y == -1:
        y = 1
    r = x % y
    wrong = (r != 0) & ((x < 0) != (y < 0))
    return arr(B.where(wrong, r - y, r))


def gcd_arrays(a, b):
    a, b = B.abs(a + (b ^ b)), B.abs(b + (a ^ a))       # broadcast to one shape
    # torch's Euclid, all elements at once: (a, b) <- (b % a, a) until a is 0
    while B.any(a != 0):
        nz = a != 0
        rem = trunc_rem(b, B.where(nz, a, 1))
        a, b = B.where(nz, rem, 0), B.where(nz, a, b)
    return arr(b)


def lcm_arrays(a, b):
    dt = B.dtype_of(a)
    if dt in dtypes.SMALL_INTS:     # C++ promotes them to int for a / g * b and its abs, narrowing once
        return arr(B.astype(lcm_arrays(B.astype(a, dtypes.int64), B.astype(b, dtypes.int64)), dt))
    g = gcd_arrays(a, b)
    zero = g == 0
    out = B.abs((a // B.where(zero, 1, g)) * b)           # g divides a: exact, as torch's a / g * b
    return arr(B.where(zero, 0, out))


def shift_arrays(x, s, left, width, signed=True):
    # a count outside [0, width): 0 for << and for uint8's >>, the sign (0 or -1) for a signed >>, as torch
    zero = left or not signed
    if not B.is_array(s):
        if 0 <= s < width:
            return arr(x << s if left else x >> s)
        return arr((x ^ x) if zero else (x >> (width - 1)))
    valid = (s >= 0) & (s < width)
    sc = B.where(valid, s, 0)
    shifted = (x << sc) if left else (x >> sc)
    return arr(B.where(valid, shifted, 0 if zero else (x >> (width - 1))))


def fmod_float_arrays(x, y):
    # |x| mod |y| has nothing to round (both signs agree); the result takes x's sign, -0.0 included
    with B.quiet_float_errors():
        r = B.abs(x) % (B.abs(y) if B.is_array(y) else abs(y))
        return arr(B.where(signbit_arrays(x), -r, r))


def copysign_arrays(x, y):
    ax = B.abs(x)
    neg = signbit_arrays(y) if B.is_array(y) else math.copysign(1.0, y) < 0
    if not B.is_array(neg):
        return arr(-ax if neg else ax)
    return arr(B.where(neg, -ax, ax))


def pow2_arrays(k, dtype):
    """2**k for the int array k, exactly, in ``dtype``."""
    with B.quiet_float_errors():
        return arr(2.0 ** arr(B.astype(k, dtype)))


def nextafter_arrays(x, y):
    dt = B.dtype_of(x)
    p, emin, largest, _ = FORMAT[dt]
    work = dtypes.float64 if dt == dtypes.float64 else dtypes.float32
    xw, yw = arr(B.astype(x, work)), arr(B.astype(y, work))
    mantissa, e = frexp_arrays(xw)
    k = e - 1                                           # floor(log2 |x|)
    kk = B.where(k > emin, k, emin)
    ulp = pow2_arrays(kk - p, work)                     # the spacing of x's binade
    up = yw > xw
    away = up == (xw > 0)
    # towards zero from a power of two the spacing halves (not below the subnormals')
    halve = (~away) & (B.abs(mantissa) == 0.5) & (k > emin)
    step = B.where(halve, ulp * 0.5, ulp)
    with B.quiet_float_errors():
        out = B.where(up, xw + step, xw - step)
        out = B.where(out == 0, xw * 0.0, out)          # from the smallest subnormal to the zero of x's sign
        zero = ulp * 0.0                                # arrays of the work dtype: float64's 2**-1074 stays
        tiny = 2.0 ** (emin - p)                        # the smallest subnormal
        out = B.where(xw == 0, B.where(up, zero + tiny, zero - tiny), out)
        out = B.where(B.abs(xw) == math.inf, B.where(xw > 0, zero + largest, zero - largest), out)
        out = B.where(xw == yw, yw, out)
        out = B.where((xw != xw) | (yw != yw), xw + yw, out)     # NaN
        return arr(B.astype(out, dt))               # float16's largest + its spacing: inf, silently


def bit_and(x, y):
    return x & y


def bit_or(x, y):
    return x | y


def bit_xor(x, y):
    return x ^ y


def bit_not(x):
    return ~x
