"""torch's bitwise and integer/float-bit functions at the top level (``gt.bitwise_and``,
``gt.gcd``, ``gt.fmod``, ``gt.copysign``, ``gt.frexp``...): gt/tensor/bitwise_methods.py has
them, with their dtypes, errors and gradients."""

from gt.tensor.bitwise_methods import (FrexpResult, bitwise_and, bitwise_left_shift, bitwise_not, bitwise_or,
                                       bitwise_right_shift, bitwise_xor, copysign, float_power, fmax, fmin, fmod,
                                       frexp, gcd, isneginf, isposinf, isreal, lcm, ldexp, nextafter, signbit)

__all__ = ["FrexpResult", "bitwise_and", "bitwise_or", "bitwise_xor", "bitwise_not", "bitwise_left_shift",
           "bitwise_right_shift", "gcd", "lcm", "fmod", "fmax", "fmin", "float_power", "copysign", "signbit", "ldexp",
           "frexp", "nextafter", "isposinf", "isneginf", "isreal"]
