"""torch's bitwise and integer/float-bit methods (`bitwise_and`, `gcd`, `fmod`, `copysign`, `ldexp`...).

The bitwise ops (``&``, ``|``, ``^``, ``~``, ``<<``, ``>>``, ``bitwise_*``), ``gcd``, ``lcm``
and integer ``fmod`` take integer and bool tensors (floats: torch's NotImplementedError), with
torch's promotion (an int32 tensor meeting a Python int stays int32 and wraps; bool meeting int
gives int64) and shifts (a count outside ``[0, bits)`` gives 0 for ``<<``, the sign for the
arithmetic ``>>``); none has a gradient. The float functions (``fmod``, ``copysign``, ``ldexp``,
``frexp``, ``nextafter``, ``signbit``) are computed from the floats' bits, exactly, with torch's
gradients; ``fmax``/``fmin`` ignore NaN (a tie's gradient goes to ``input``); ``float_power``
computes in float64. Integer widths: uint8, int8, int16, int32, int64. Kernels: gt/ops/bitwise_kernels.py.

Mixed into ``gt.Tensor``; ``Tensor`` below is bound by gt/tensor/core.py once the class exists.
"""

import collections
import functools
import math

from gt import autograd, dtypes
from gt.autograd.sparse_grad import mark
from gt.backend import B
from gt.ops import bitwise_kernels as bk
from gt.ops._shapes import broadcast_shape
from gt.ops.exact_value import ExactValue
from gt.tensor.arithmetic import _operand, where
from gt.tensor.complex_checks import refuse_complex, refuse_complex_pair
from gt.tensor.dispatch import map_local
from gt.tensor.exact_values import local as _local, needs_grad as _needs_grad, with_grad as _with_grad
from gt.tensor.extra_methods import _refuse_integer_zero
from gt.tensor.inplace_math import _inplace_method
from gt.tensor.wide_uints import refuse_dtype
from gt.tensor.int_scalars import refuse_uint64_promotion, wrapped_int
from gt.tensor.nested_operands import nested_pair
from gt.tensor.promotion import result_dtype
from gt.tensor.rules import RULES, elementwise

Tensor = None  # gt.Tensor, bound by gt/tensor/core.py

# torch.return_types.frexp: a tuple that unpacks as (mantissa, exponent) and names both
FrexpResult = collections.namedtuple("frexp", ["mantissa", "exponent"])

# the exact value keeps each element's place: sharded inputs stay sharded (gt/tensor/rules.py)
RULES[ExactValue] = elementwise


def _cast(x, dtype):
    if isinstance(x, Tensor):
        return x if x.dtype == dtype else x.to(dtype)
    if dtype.is_complex:
        return complex(x)
    return float(x) if dtype.is_floating_point else wrapped_int(int(x), dtype)


def _operands(name, a, b, tensors_only=()):
    """``a`` and ``b`` as tensors or Python numbers, at least one a tensor; those named in
    ``tensors_only`` (0: input, 1: other) must be tensors, as torch's signatures ask."""
    a, b = _operand(a, name), _operand(b, name)
    for i, (x, what) in enumerate(((a, "input"), (b, "other"))):
        if i in tensors_only and not isinstance(x, Tensor):
            raise TypeError(f"{name}(): argument '{what}' (position {i + 1}) must be Tensor, not "
                            f"{type(x).__name__} ({x!r}); use gt.tensor({x!r})")
    if not isinstance(a, Tensor) and not isinstance(b, Tensor):
        raise TypeError(f"{name}(): expected at least one tensor, got {type(a).__name__} and {type(b).__name__}")
    if isinstance(a, Tensor) and isinstance(b, Tensor):
        broadcast_shape(name, a.shape, b.shape)
    for x in (a, b):
        if isinstance(x, int) and not isinstance(x, bool):
            wrapped_int(x, dtypes.int64)      # torch takes no Python int beyond [-2**63, 2**64)
    return a, b


def _refuse_dtype(kernel, dtype, kinds=("int", "bool")):
    """torch's error where a kernel has no implementation for ``dtype`` (``kinds``: what it takes)."""
    if dtype in dtypes.WIDE_UINTS and kernel not in ("bitwise_and", "bitwise_or", "bitwise_xor"):
        refuse_dtype(f"{kernel}_cpu", dtype)
    kind = "float" if dtype.is_floating_point else "bool" if dtype == dtypes.bool_ else \
        "complex" if dtype.is_complex else "int"
    if kind not in kinds:
        names = {"int": "integer", "bool": "bool", "float": "floating point"}
        raise NotImplementedError(f'"{kernel}_cpu" not implemented for \'{dtypes.torch_type_name(dtype.name)}\': '
                                  f"{kernel} takes {' or '.join(names[k] for k in kinds)} tensors")


def _tensor_only(name, x):
    if not isinstance(x, Tensor):
        raise TypeError(f"{name}(): argument 'input' must be Tensor, not {type(x).__name__}")


def _floating_result(a, b):
    dt = result_dtype(a, b)
    return dt if dt.is_floating_point or dt.is_complex else dtypes.default_float


def _is_complex(x):
    return x.dtype.is_complex if isinstance(x, Tensor) else isinstance(x, complex)


# ---- tensors -------------------------------------------------------------------------------------
def _bitwise(name, kernel, fn, a, b, bools=True, tensors_only=()):
    if _same_kind(a, b, bools):      # the common case, two masks of one device (x & y): nothing to promote
        return Tensor._wrap(B.iterator_layout(fn(a._array, b._array), a._array, b._array))
    a, b = _operands(name, a, b, tensors_only)
    dt = result_dtype(a, b)
    _refuse_dtype(kernel, dt, ("int", "bool") if bools else ("int",))
    if dt is dtypes.int64:
        refuse_uint64_promotion(a, b)
    return _local(fn, (_cast(a, dt), _cast(b, dt)))


def _same_kind(a, b, bools):
    return (type(a) is Tensor and type(b) is Tensor and a._placed is None and b._placed is None and a.dtype == b.dtype
            and a.shape == b.shape and a.dtype in ((dtypes.bool_,) * bools + (dtypes.int64, dtypes.int32)))


def _shift(name, kernel, left, a, b):
    a, b = _operands(name, a, b)
    dt = result_dtype(a, b)
    _refuse_dtype(kernel, dt, ("int",))
    fn = functools.partial(bk.shift_arrays, left=left, width=8 * dt.itemsize, signed=dt.is_signed)
    return _local(fn, (_cast(a, dt), _cast(b, dt)))


@nested_pair
def bitwise_and(input, other):
    """``input & other`` bit by bit (logical for bools; ``torch.bitwise_and``); either may be a
    Python int or bool. Shapes broadcast; integer and bool tensors only.

        >>> gt.bitwise_and(gt.tensor([12, -1]), 10).tolist()
        [8, 10]
    """
    return _bitwise("bitwise_and", "bitwise_and", bk.bit_and, input, other)


@nested_pair
def bitwise_or(input, other):
    """``input | other`` bit by bit (``torch.bitwise_or``); see ``bitwise_and``."""
    return _bitwise("bitwise_or", "bitwise_or", bk.bit_or, input, other)


@nested_pair
def bitwise_xor(input, other):
    """``input ^ other`` bit by bit (``torch.bitwise_xor``); see ``bitwise_and``."""
    return _bitwise("bitwise_xor", "bitwise_xor", bk.bit_xor, input, other)


def bitwise_not(input):
    """``~input``: every bit flipped (``-x - 1``), logical not for bools (``torch.bitwise_not``)."""
    _tensor_only("bitwise_not", input)
    _refuse_dtype("bitwise_not", input.dtype)
    return _local(B.logical_not if input.dtype == dtypes.bool_ else bk.bit_not, (input,))


@nested_pair
def bitwise_left_shift(input, other):
    """``input << other`` (``torch.bitwise_left_shift``): bits shifted out are lost (int32 wraps);
    a count below 0 or of the dtype's width or more gives 0. Integer tensors; either side may be
    a Python int.

        >>> gt.bitwise_left_shift(gt.tensor([1, 3]), gt.tensor([4, 70])).tolist()
        [16, 0]
    """
    return _shift("bitwise_left_shift", "lshift", True, input, other)


@nested_pair
def bitwise_right_shift(input, other):
    """``input >> other``, arithmetic (``torch.bitwise_right_shift``: ``-5 >> 1`` is -3); a count
    below 0 or of the dtype's width or more gives 0, or -1 for negative ``input``."""
    return _shift("bitwise_right_shift", "rshift", False, input, other)


@nested_pair
def gcd(input, other):
    """The greatest common divisor of each pair (``torch.gcd``), never negative except
    ``gcd(INT_MIN, 0)`` (torch's too); ``gcd(0, 0)`` is 0. Two integer tensors (broadcast)."""
    return _bitwise("gcd", "gcd", bk.gcd_arrays, input, other, bools=False, tensors_only=(0, 1))


@nested_pair
def lcm(input, other):
    """The least common multiple of each pair (``torch.lcm``), 0 where either is 0, never
    negative unless it wraps. Two integer tensors (broadcast)."""
    return _bitwise("lcm", "lcm", bk.lcm_arrays, input, other, bools=False, tensors_only=(0, 1))


@nested_pair
def fmod(input, other):
    """The remainder of ``input / other`` with the sign of ``input`` (C's ``fmod``;
    ``torch.fmod``), exact; ``other`` may be a number. Integers: an error for a zero divisor, as
    torch's. Gradients 1 and ``-trunc(input / other)``, as torch's.

        >>> gt.fmod(gt.tensor([-5.0, 5.0]), 3).tolist()
        [-2.0, 2.0]
    """
    a, b = _operands("fmod", input, other, tensors_only=(0,))
    dt = result_dtype(a, b)
    _refuse_dtype("fmod", dt, ("int", "float"))
    a, b = _cast(a, dt), _cast(b, dt)
    if not dt.is_floating_point:
        _refuse_integer_zero(a, b, "fmod")
        return _local(bk.trunc_rem, (a, b))
    value = _local(bk.fmod_float_arrays, (a, b))
    expr = None
    if _needs_grad(a, b):
        with autograd.no_grad():
            q = (a / b).trunc()
        expr = a - b * q
    return _with_grad(value, expr)


def _nan_ignoring(name, input, other, keep_input):
    a, b = _operands(name, input, other, tensors_only=(0, 1))
    dt = result_dtype(a, b)
    if dt.is_complex:       # torch's: complex numbers have no order
        raise RuntimeError(f"{name} not implemented for complex tensors.")
    a, b = _cast(a, dt), _cast(b, dt)
    with autograd.no_grad():
        cond = keep_input(a, b)
        if dt.is_floating_point:
            cond = cond | b.isnan()     # a NaN other gives input (NaN only where both are)
    return mark(where(cond, a, b), ("refuse", "fmax"))     # torch's fmax/fmin backward on a sparse gradient


@nested_pair
def fmax(input, other):
    """The larger of each pair, ignoring NaN (NaN only where both are; ``torch.fmax``). A tie
    sends the gradient to ``input``, as torch's. Two tensors (broadcast), any dtype."""
    return _nan_ignoring("fmax", input, other, lambda a, b: a >= b)


@nested_pair
def fmin(input, other):
    """The smaller of each pair, ignoring NaN (``torch.fmin``); see ``fmax``."""
    return _nan_ignoring("fmin", input, other, lambda a, b: a <= b)


@nested_pair
def float_power(input, exponent):
    """``input ** exponent`` in float64 whatever the dtypes (``torch.float_power``); either may be
    a number. Gradients those of ``pow``, in float64."""
    a, b = _operands("float_power", input, exponent)
    dt = dtypes.complex128 if any(_is_complex(x) for x in (a, b)) else dtypes.float64
    a, b = _cast(a, dt), _cast(b, dt)
    return a ** b


@nested_pair
def copysign(input, other):
    """``|input|`` with the sign of ``other`` (``torch.copysign``; -0.0 and -NaN count as
    negative), in a float dtype (integers: the default float); ``other`` may be a number. The
    gradient is ``copysign(1, input) * copysign(1, other)``, 0 where ``input`` is 0, and zeros for
    ``other``, as torch's."""
    a, b = _operands("copysign", input, other, tensors_only=(0,))
    refuse_complex_pair(a, b, "copysign_cpu")
    dt = _floating_result(a, b)
    a, b = _cast(a, dt), _cast(b, dt)
    value = _local(bk.copysign_arrays, (a, b))
    expr = None
    if _needs_grad(a, b):
        with autograd.no_grad(), B.quiet_float_errors():     # 0 / 0 and NaN / NaN, masked or torch's
            ratio = (value / a.detach()).masked_fill(a == 0, 0.0)   # a constant, for forward AD too
        expr = a * ratio
    return _with_grad(value, expr, *([b] if isinstance(b, Tensor) else []))


def signbit(input):
    """True where the sign bit is set (``torch.signbit``): negatives, -0.0 and -NaN."""
    if type(input) is not Tensor and getattr(input, "is_nested", False):
        return input.signbit()      # gt.nested's: of its values
    _tensor_only("signbit", input)
    refuse_complex(input, "signbit", "signbit is not implemented for complex tensors.")
    return _local(bk.signbit_arrays, (input,))


@nested_pair
def ldexp(input, other):
    """``input * 2**other`` (``torch.ldexp``), exact for integer ``other`` (no ``2**other`` that
    overflows on the way: ``ldexp(1e-45, 200)`` is 2**51); a float dtype (integers: the default
    float). Gradients ``2**other`` and, for float ``other``, ``log(2) * result``."""
    a, b = _operands("ldexp", input, other, tensors_only=(0, 1))
    if b.dtype == dtypes.bool_ and a.dtype.is_floating_point:     # (an integer input's bool exponent computes)
        raise NotImplementedError("\"ldexp_cpu_exp\" not implemented for 'Bool' (cast the exponent with .long())")
    dt = _floating_result(a, b)
    a = _cast(a, dt)
    if b.dtype.is_complex:
        return a * (2.0 ** _cast(b, dt))
    if dt.is_complex:           # 2**other exact in the real dtype, as torch's pow(2, other) before its mul
        if b.dtype == dtypes.float16 and b.ndim:       # torch's pow there is complex32's
            raise NotImplementedError("\"pow\" not implemented for 'ComplexHalf' (cast the exponent to float32)")
        one = Tensor._wrap(B.ones((), dtypes.float64 if dt == dtypes.complex128 else dtypes.float32))
        return a * ldexp(one, b.to(dtypes.int64) if b.dtype == dtypes.bool_ else b)
    if b.dtype.is_floating_point:
        with B.quiet_float_errors():
            return a * (2.0 ** _cast(b, dt))
    limit = 3 * bk.FORMAT[dt][3]      # beyond it every nonzero result is 0 or inf already
    e = b.to(dtypes.int64).clamp(-limit, limit)
    # three factors 2**e_i, each within the dtype's range: every product but the last is exact
    e1 = e // 3
    e2 = (e - e1) // 2
    e3 = e - e1 - e2
    with B.quiet_float_errors():        # beyond the dtype's range: inf, as torch's
        return a * _pow2(e1, dt) * _pow2(e2, dt) * _pow2(e3, dt)


def _pow2(k, dtype):
    return _local(functools.partial(bk.pow2_arrays, dtype=dtype), (k,))


def frexp(input):
    """``(mantissa, exponent)`` with ``input = mantissa * 2**exponent``, ``|mantissa|`` in
    [0.5, 1) and ``exponent`` int32 (``torch.frexp``; 0, inf and NaN: themselves and 0).
    Floating tensors only; the mantissa's gradient is ``grad / 2**exponent``, as torch's."""
    _tensor_only("frexp", input)
    if not input.dtype.is_floating_point:
        raise RuntimeError(f"torch.frexp() only supports floating-point dtypes, got {input.dtype!r}")
    if input._placed is None:
        mantissa, exponent = (Tensor._wrap(v) for v in bk.frexp_arrays(input._array))
    else:
        mantissa = map_local(lambda x: bk.frexp_arrays(x)[0], (input,))
        exponent = map_local(lambda x: bk.frexp_arrays(x)[1], (input,))
    expr = None
    if _needs_grad(input):
        expr = input / _pow2(exponent, input.dtype)
    return FrexpResult(_with_grad(mantissa, expr), exponent)


@nested_pair
def nextafter(input, other):
    """The next float after ``input`` towards ``other`` (``torch.nextafter``; ``other`` itself
    where they are equal). Two floating tensors (broadcast). Gradients 1 (0 where they are equal)
    and 0, as torch's."""
    a, b = _operands("nextafter", input, other, tensors_only=(0, 1))
    dt = result_dtype(a, b)
    _refuse_dtype("nextafter", dt, ("float",))
    a, b = _cast(a, dt), _cast(b, dt)
    value = _local(bk.nextafter_arrays, (a, b))
    return _with_grad(value, a.masked_fill(a == b, 0.0) if _needs_grad(a, b) else None, b)


def isposinf(input):
    """True where ``input`` is +inf (``torch.isposinf``); all False for integer and bool tensors."""
    _tensor_only("isposinf", input)
    if input.dtype.is_complex:
        raise RuntimeError("isposinf does not support complex inputs.")
    return input == math.inf if input.dtype.is_floating_point else input != input


def isneginf(input):
    """True where ``input`` is -inf (``torch.isneginf``); all False for integer and bool tensors."""
    _tensor_only("isneginf", input)
    if input.dtype.is_complex:
        raise RuntimeError("isneginf does not support complex inputs.")
    return input == -math.inf if input.dtype.is_floating_point else input != input


def isreal(input):
    """True where the imaginary part is 0 (``torch.isreal``): everywhere for a real dtype (NaN
    included, as torch's)."""
    _tensor_only("isreal", input)
    if input.dtype.is_complex:
        return input.imag == 0
    return _local(lambda x: B.ones(tuple(x.shape), dtypes.bool_), (input,))


def _float_power_(self, exponent):
    """``float_power`` written into this tensor, which must be float64 (torch's rule)."""
    if self.dtype != dtypes.float64:
        raise RuntimeError(f"the base given to float_power_ has dtype {dtypes.torch_type_name(self.dtype.name)} "
                           "but the operation's result requires dtype Double")
    return _inplace_method("float_power", False)(self, exponent)


def view_as_dtype(x, dtype):
    """``x.view(dtype)``: its memory read as ``dtype`` (see ``ShapeMethods.view``), with torch's checks."""
    if dtype == x.dtype:
        return x.detach().reshape(x.shape)
    old, new = x.element_size(), dtype.itemsize
    if old != new:
        name = f"view {dtypes.torch_type_name(x.dtype.name)} as {dtypes.torch_type_name(dtype.name)}"
        if x.ndim == 0:
            raise RuntimeError(f"self.dim() cannot be 0 to {name} (different element sizes)")
        if x.stride(-1) != 1:
            raise RuntimeError(f"self.stride(-1) must be 1 to {name} (different element sizes), "
                               f"but got {x.stride(-1)}")
        if (x.shape[-1] * old) % new:
            raise RuntimeError(f"self.size(-1) must be divisible by {new // old if new > old else 1} to {name} "
                               f"(different element sizes), but got {x.shape[-1]}")
    native = B.native_dtype(dtype)
    if old == new:    # element for element: shards stay where they are
        return map_local(lambda a: a.view(native), [x.detach()])
    return Tensor._wrap(x.detach()._data.view(native))


class BitwiseMethods:
    __slots__ = ()

    _view_as_dtype = view_as_dtype
    bitwise_and, bitwise_or, bitwise_xor, bitwise_not = bitwise_and, bitwise_or, bitwise_xor, bitwise_not
    bitwise_left_shift, bitwise_right_shift = bitwise_left_shift, bitwise_right_shift
    gcd, lcm, fmod, fmax, fmin, float_power, copysign = gcd, lcm, fmod, fmax, fmin, float_power, copysign
    signbit, ldexp, frexp, nextafter, isposinf, isneginf, isreal = (signbit, ldexp, frexp, nextafter, isposinf,
                                                                    isneginf, isreal)

    def __rand__(self, other):
        return bitwise_and(other, self)

    def __ror__(self, other):
        return bitwise_or(other, self)

    def __xor__(self, other):
        return bitwise_xor(self, other)

    def __rxor__(self, other):
        return bitwise_xor(other, self)

    def __lshift__(self, other):
        return bitwise_left_shift(self, other)

    def __rlshift__(self, other):
        return bitwise_left_shift(other, self)

    def __rshift__(self, other):
        return bitwise_right_shift(self, other)

    def __rrshift__(self, other):
        return bitwise_right_shift(other, self)

    float_power_ = _float_power_

    def __iand__(self, other):
        return self.bitwise_and_(other)

    def __ior__(self, other):
        return self.bitwise_or_(other)

    def __ixor__(self, other):
        return self.bitwise_xor_(other)

    def __ilshift__(self, other):
        return self.bitwise_left_shift_(other)

    def __irshift__(self, other):
        return self.bitwise_right_shift_(other)


# torch's in-place forms: the result written back into the tensor (a result it cannot hold, a
# float into an int tensor, an int into a bool one, is refused with torch's message)
for _name in ("bitwise_and", "bitwise_or", "bitwise_xor", "bitwise_not", "bitwise_left_shift", "bitwise_right_shift",
              "gcd", "lcm", "fmod", "copysign", "ldexp", "nextafter", "heaviside"):
    setattr(BitwiseMethods, f"{_name}_", _inplace_method(_name, False))
