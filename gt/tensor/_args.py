"""Argument helpers shared by the Tensor modules: axis names, other names of an argument and
Python scalars."""

import numbers

from gt import dtypes


def _pick(axis, dim, name="axis", default=None):
    """The axis from ``axis`` (numpy's name) or ``dim`` (torch's); ``default`` when neither is given.

    Functions whose axis has a default must declare ``axis=None`` and pass the default here, so
    that ``x.softmax(dim=0)`` is not mistaken for passing both."""
    if dim is None:
        return default if axis is None else axis
    if axis is None or axis == dim or axis == default:
        return dim
    raise TypeError(f"pass {name} or dim, not both (got {name}={axis!r}, dim={dim!r})")


def _alias(value, alias, fn, name, alias_name, required=False):
    """``value``, or ``alias`` where it was not given: one argument under two names (torch's and
    the public gt's). Both given is a TypeError; neither, too, when ``required``."""
    if value is not None and alias is not None:
        raise TypeError(f"{fn}() got both {name}= and {alias_name}= (the same argument): pass one")
    value = alias if value is None else value
    if required and value is None:
        raise TypeError(f"{fn}() missing required argument {name!r}")
    return value


def _scalar(value):
    """Plain Python numbers stay Python numbers so they never widen a float32 tensor; numpy
    scalars (``np.float64(0.5)``, a subclass of float) become Python numbers too."""
    if isinstance(value, bool):
        return value
    if isinstance(value, numbers.Number) and type(value) not in (int, float, complex):
        return value.item() if hasattr(value, "item") else float(value)
    return value


def _varargs(args, name, what="dims"):
    """torch's ``f(0, 1)`` beside ``f((0, 1))`` and ``f(0)``: None for no argument, the one
    argument as given, or several as a tuple."""
    if not args:
        return None
    if len(args) == 1:
        return args[0]
    if not all(hasattr(a, "__index__") and not isinstance(a, bool) for a in args):
        raise TypeError(f"{name}(): {what} must be ints, given one by one or as a tuple, got {args!r}")
    return tuple(args)


def _fill(value):
    """torch's fill value for ``full``/``full_like``/``new_full``/``fill_``: a number, a numpy
    scalar or a 0-d tensor, read as its number (``full((2,), tensor(3))`` is int64 as torch's;
    numpy ints count as ints, numpy bools as floats, as torch reads them). The callers then pass
    it through torch's checked conversion into the result's dtype (gt/tensor/int_scalars.py's
    ``checked_scalar``; numpy would wrap it silently: NaN into int64 gave its smallest value)."""
    if hasattr(value, "item") and getattr(value, "ndim", None) == 0:
        value = float(value) if type(value).__name__ in ("bool", "bool_") else value.item()
    return value


_FLOAT_WIDTH = {"float16": 1, "bfloat16": 1, "float32": 2, "float64": 3}
_COMPLEX_WIDTH = {"complex64": 2, "complex128": 3}


def norm_input(x, dtype):
    """``x`` cast to a norm's ``dtype=``: torch refuses a cast that narrows a float (float64 to
    float32, float32 to a half, one half to the other) or a complex (complex128 to complex64), and
    a real ``dtype`` for a complex ``x``."""
    if dtype is None:
        return x
    dtype = dtypes.to_dtype(dtype)
    if x.dtype.is_complex and not dtype.is_complex:     # the cast would drop the imaginary parts
        raise RuntimeError(f"linalg.vector_norm: dtype should be complex for complex inputs, but got "
                           f"{dtypes.torch_type_name(dtype.name)}")
    widths = _COMPLEX_WIDTH if x.dtype.is_complex else _FLOAT_WIDTH
    have, want = widths.get(x.dtype.name), widths.get(dtype.name)
    if have is not None and (want is None or want < have or (want == have and dtype != x.dtype)):
        raise RuntimeError(f"linalg.vector_norm: the dtype of the input ({dtypes.torch_type_name(x.dtype.name)}) "
                           "should be convertible without narrowing to the specified dtype "
                           f"({dtypes.torch_type_name(dtype.name)})")
    return x.to(dtype)


def narrow_bounds(start, length):
    """``narrow``'s start and length as ints: torch takes ints, or a 0-d integer tensor as start,
    and refuses bools (its signature has no bool) and other tensors."""
    if isinstance(start, bool) or isinstance(length, bool):
        raise TypeError(f"narrow(): start and length must be ints, not bool (got start={start!r}, length={length!r})")
    if hasattr(start, "ndim"):             # a tensor (or array) as start
        if start.ndim != 0 or "int" not in str(start.dtype):
            raise RuntimeError(f"narrow(): start must be an 0-dim integral Tensor, got {start!r}")
        start = int(start.item())
    return start, length


def narrow_check(start, length, n):
    """``start`` in [0, n] (a negative one counted from the end) where ``length`` elements from it fit
    in ``n``; torch's errors (IndexError for ``start``, RuntimeError for the rest) otherwise."""
    if not -n <= start <= n:
        raise IndexError(f"start out of range (expected to be in range of [{-n}, {n}], but got {start})")
    if length < 0:
        raise RuntimeError("narrow(): length must be non-negative.")
    start = start + n if start < 0 else start
    if start + length > n:
        raise RuntimeError(f"start ({start}) + length ({length}) exceeds dimension size ({n}).")
    return start
