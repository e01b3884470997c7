"""Argument checks of torch's top-level functions (toplevel_functions.py and its neighbours):
torch's error types, with messages that name the value."""

import builtins

from gt import dtypes
from gt.tensor.core import Tensor


def _tensor_arg(x, fn, name="input"):
    """``x`` itself when it is a tensor; torch's TypeError otherwise (numbers are not tensors)."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{fn}(): argument '{name}' must be a Tensor, not {type(x).__name__} ({x!r}); "
                        f"use gt.tensor(...) first")
    return x


def _no_out(out, fn):
    if out is not None:
        raise TypeError(f"gt.{fn}(): out= is not supported (gt tensors are not written in place by functions); "
                        f"use the returned tensor")


def _check_no_bool(a, b):
    """torch refuses subtraction with a bool operand (a bool tensor or True/False)."""
    bools = [isinstance(x, bool) or isinstance(x, Tensor) and x.dtype == dtypes.bool_ for x in (a, b)]
    if builtins.all(bools):
        raise RuntimeError("Subtraction, the `-` operator, with two bool tensors is not supported. Use the `^` or "
                           "`logical_xor()` operator instead.")
    if builtins.any(bools):
        raise RuntimeError("Subtraction, the `-` operator, with a bool tensor is not supported. If you are trying to "
                           "invert a mask, use the `~` or `logical_not()` operator instead.")
