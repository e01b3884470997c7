"""torch's rule for a Python number in a top-level function's tensor argument (``gt.add(2, x)``,
``gt.atan2(2, x)``).

torch's argument parser takes a number where a tensor is expected only for the functions of
``NUMBER_FIRST`` (its "wrapped numbers"): the number becomes a 0-d tensor that promotes as a
scalar does (``gt.add(2, int_tensor)`` is int64, ``gt.add(2.5, int_tensor)`` float32), also
when both operands are numbers (``gt.add(2, 3)`` is ``tensor(5)``). Every other function refuses
it with a TypeError naming the argument, as torch's does (``gt.exp(2)``, ``gt.atan2(2, x)``).
Arrays are still taken as tensors (gt's convenience). The tensor methods whose second argument
torch takes only as a tensor (``TENSOR_ARGUMENT``: ``x.maximum(2)``, ``x.logical_and(True)``,
``x.hypot_(2.0)``) refuse a number there too.
"""

import functools

from gt import dtypes
from gt.autograd import function
from gt.backend import B
from gt.ops.exact_value import NoDerivative
from gt.tensor.arithmetic import _number_beside
from gt.tensor.bool_int_refusals import refuse_bool_subtraction

NUMBERS = (bool, int, float, complex)

# torch 2.13's functions (and their in-place forms) whose first tensor argument takes a number
NUMBER_FIRST = frozenset(("add", "sub", "subtract", "mul", "multiply", "div", "divide", "true_divide", "floor_divide",
                          "remainder", "pow", "float_power", "xlogy", "bitwise_and", "bitwise_or", "bitwise_xor",
                          "bitwise_left_shift", "bitwise_right_shift"))
# ... those of them that take no out= with a number first (torch's Scalar-first overloads have none)
NO_OUT_NUMBER_FIRST = frozenset(("remainder", "bitwise_and", "bitwise_or", "bitwise_xor", "bitwise_left_shift",
                                 "bitwise_right_shift"))
# ... those of them whose number-first overload has no derivative in torch
NO_DERIVATIVE = frozenset(("remainder",))     # (``floor_divide`` has none with a tensor first either)
# ... and those of them that take two numbers (``gt.add(2, 3)``; torch refuses ``pow(2, 3)``)
TWO_NUMBERS = frozenset(("add", "sub", "subtract", "mul", "multiply", "div", "divide", "true_divide", "floor_divide"))
# torch 2.13's Tensor methods (and their in-place forms) whose second argument is a tensor only, with its name in
# torch's TypeError: gt.Tensor's refuse a Python number there too (guard_tensor_arguments)
TENSOR_ARGUMENT = {
    **dict.fromkeys(("maximum", "minimum", "fmax", "fmin", "atan2", "arctan2", "hypot", "logaddexp", "logaddexp2",
                     "igamma", "igammac", "ldexp", "nextafter", "gcd", "lcm", "logical_and", "logical_or",
                     "logical_xor", "dist", "allclose", "isclose", "equal", "inner", "vdot", "kron", "matmul",
                     "expand_as", "type_as", "view_as", "reshape_as", "is_same_size"), "other"),
    "heaviside": "values", "dot": "tensor", "outer": "vec2", "ger": "vec2", "mm": "mat2", "bmm": "mat2", "mv": "vec"}


def wrapped_number(number, other):
    """``number`` as the 0-d tensor torch's wrapped number is: beside the tensor ``other``, of the
    dtype torch's promotion gives the pair (``other``'s own unless the number's kind is above it);
    beside a number or nothing, of the number's own default dtype (int64, float32, bool,
    complex64)."""
    tensor = function.Tensor        # bound once gt.Tensor exists (this module is imported by its mixins)
    if not isinstance(other, tensor):
        return tensor._wrap(B.asarray(number, dtype=dtypes.to_dtype(type(number))))
    if not isinstance(number, complex):
        return _number_beside(number, other)
    # beside a real tensor: the complex dtype of the tensor's float width (ints: the default)
    dtype = other.dtype if other.dtype.is_complex else dtypes.COMPLEX_OF.get(other.dtype.name) or \
        dtypes.to_dtype(complex)
    return tensor._wrap(B.asarray(number, dtype=dtype))


def call_number_first(name, number, args, kwargs):
    """``gt.<name>(number, *args, **kwargs)`` for a Python ``number``: the tensor method ``name`` of
    ``number`` made a tensor (``number_input``). torch's overloads with a number first that have no
    derivative (``remainder``, ``floor_divide``) give a result whose backward raises, as torch's."""
    other = args[0] if args else None
    out = getattr(number_input(name, number, other), name)(*args, **kwargs)
    base = name.rstrip("_")
    if base in NO_DERIVATIVE and out.requires_grad:
        out = NoDerivative.apply(out, f"aten::{base}")
    return out


def number_input(name, number, other):
    """The first argument ``number`` (a Python number) of ``gt.<name>(number, other, ...)`` as a
    tensor where torch takes it (``NUMBER_FIRST``); torch's TypeError otherwise."""
    base = name.rstrip("_")
    if base not in NUMBER_FIRST:
        refuse_number(name, "input", 1, number)
    if not isinstance(other, function.Tensor) and base not in TWO_NUMBERS:
        raise TypeError(f"{name}() received an invalid combination of arguments - got ({type(number).__name__}, "
                        f"{type(other).__name__}): torch's {name} takes two numbers only as tensors; use "
                        f"gt.tensor({number!r})")
    if base in ("sub", "subtract") and isinstance(number, bool):
        refuse_bool_subtraction(number, other)      # the bool would be lost in the tensor's dtype
    return wrapped_number(number, other)


def refuse_number(name, argument, position, value):
    """torch's TypeError for a Python number where ``name`` takes only a tensor."""
    raise TypeError(f"{name}(): argument '{argument}' (position {position}) must be Tensor, not "
                    f"{type(value).__name__} ({value!r}); use gt.tensor({value!r})")


def tensors_only(name, *arguments):
    """torch's TypeError when one of ``arguments`` (``(argument name, value)`` pairs, in order)
    is a Python number; numpy arrays and tensors pass."""
    for position, (argument, value) in enumerate(arguments, 1):
        if isinstance(value, NUMBERS):
            refuse_number(name, argument, position, value)


def guard_tensor_arguments(cls):
    """Make the methods of ``cls`` (``gt.Tensor``) named in ``TENSOR_ARGUMENT``, and their in-place
    forms, raise torch's TypeError for a Python number as their second argument (``x.maximum(2)``;
    ``gt.maximum(x, 2)`` refuses it as torch's does)."""
    for name, argument in TENSOR_ARGUMENT.items():
        for form in (name, name + "_"):
            method = getattr(cls, form, None)
            if method is not None:
                setattr(cls, form, _tensor_argument(method, form, argument))


def _tensor_argument(method, name, argument):
    @functools.wraps(method)
    def checked(self, *args, **kwargs):
        other = args[0] if args else kwargs.get(argument)
        if type(other) in _NUMBER_TYPES:
            refuse_number(name, argument, 1, other)
        return method(self, *args, **kwargs)
    return checked


_NUMBER_TYPES = frozenset(NUMBERS)
