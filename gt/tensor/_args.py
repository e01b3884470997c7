"""Argument helpers shared by the Tensor modules: axis names and Python scalars."""

import numbers


def _pick(axis, dim, name="axis", default=None):
    """The axis from ``axis`` (numpy's name) or ``dim`` (torch's); ``default`` when neither is given.

    Functions whose axis has a default must declare ``axis=None`` and pass the default here, so
    that ``x.softmax(dim=0)`` is not mistaken for passing both."""
    if dim is None:
        return default if axis is None else axis
    if axis is None or axis == dim or axis == default:
        return dim
    raise TypeError(f"pass {name} or dim, not both (got {name}={axis!r}, dim={dim!r})")


def _scalar(value):
    """Plain Python numbers stay Python numbers so they never widen a float32 tensor; numpy
    scalars (``np.float64(0.5)``, a subclass of float) become Python numbers too."""
    if isinstance(value, bool):
        return value
    if isinstance(value, numbers.Number) and type(value) not in (int, float):
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
