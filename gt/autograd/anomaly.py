"""torch's anomaly detection: ``gt.autograd.detect_anomaly`` and ``set_detect_anomaly``.

While it is on, every op recorded on the tape keeps the traceback of the forward call that made
it (``record``, from ``put_on_tape``), and the walks run each op's backward through
``checked``:

- when an op's backward raises, a warning gives that op's name and its forward traceback (the
  line of the user's model that made the failing op), then the error goes on as it was;
- with ``check_nan`` (the default), a backward that returns a gradient holding NaN stops the walk
  with torch's error, ``Function 'MulBackward' returned nan values in its 0th output.``, the
  index being the input's position among the op's inputs.

Both cost time (a traceback per op, a NaN test per gradient), as in torch: a debugging mode. Off,
the recording path pays one test of a module global per op.
"""

import traceback
import warnings
import weakref

from gt.backend import B
from gt.sharding import layout
from gt.sharding.layout import Placed

enabled = False
check_nan = True
# op -> the traceback of its forward call (a side table: some tape nodes have fixed slots)
_traces = weakref.WeakKeyDictionary()


def _check(mode, nan):
    if not isinstance(mode, bool):
        raise TypeError(f"anomaly mode: expected True or False, got {mode!r}")
    if not isinstance(nan, bool):
        raise TypeError(f"check_nan: expected True or False, got {nan!r}")


def _set(mode, nan):
    global enabled, check_nan
    _check(mode, nan)
    enabled, check_nan = mode, nan


def is_anomaly_enabled():
    """Whether anomaly detection is on (``torch.is_anomaly_enabled``)."""
    return enabled


def is_anomaly_check_nan_enabled():
    """Whether anomaly detection also checks the gradients for NaN (``torch.is_anomaly_check_nan_enabled``)."""
    return check_nan


def set_anomaly_enabled(mode, check_nan=True):
    """Turn anomaly detection on or off at once (``torch.set_anomaly_enabled``)."""
    _set(mode, check_nan)


class _Mode:
    """A context manager that sets the mode on entry and restores it on exit."""

    def __init__(self, mode, nan):
        _check(mode, nan)
        self._mode, self._nan = mode, nan
        self._before = []

    def __enter__(self):
        self._before.append((enabled, check_nan))
        _set(self._mode, self._nan)
        return self

    def __exit__(self, *exc):
        _set(*self._before.pop())
        return False


class detect_anomaly(_Mode):
    """Anomaly detection inside a ``with`` block (torch's
    ``torch.autograd.detect_anomaly(check_nan=True)``): a failing backward names the forward
    call that made the op, and a NaN gradient raises. See the module docstring.

        >>> with gt.autograd.detect_anomaly():
        ...     loss = model(x).sum()
        ...     loss.backward()
    """

    def __init__(self, check_nan=True):
        super().__init__(True, check_nan)
        warnings.warn("Anomaly Detection has been enabled. This mode will increase the runtime and should only be "
                      "enabled for debugging.", stacklevel=2)


class set_detect_anomaly(_Mode):
    """Turn anomaly detection on or off (torch's ``torch.autograd.set_detect_anomaly(mode,
    check_nan=True)``): at once when called, and back to what it was at the end of a ``with`` block."""

    def __init__(self, mode, check_nan=True):
        super().__init__(mode, check_nan)
        self._outer = (enabled, globals()["check_nan"])
        _set(mode, check_nan)

    def __enter__(self):
        self._before.append(self._outer)   # already in effect since the call
        return self


def record(ctx):
    """Keep the traceback of the forward call that is recording ``ctx`` (called while on)."""
    _traces[ctx] = "".join(traceback.format_stack()[:-3])


def _name(ctx):
    name = getattr(ctx, "name", None) or type(ctx).__name__
    return name if name.endswith("Backward") else name + "Backward"


def checked(ctx, run, *args):
    """``run(*args)`` (one op's backward) with the checks of the mode: torch's error when a
    gradient it returns holds NaN, and, when it raises (that error or its own), a warning with the
    op's forward traceback first. ``run`` returns ``[(input, gradient), ...]`` (the plain walk) or
    a tuple of gradients in the order of the op's inputs (the recording walk)."""
    try:
        out = run(*args)
        if check_nan:
            _refuse_nan(ctx, out)
    except Exception:
        trace = _traces.get(ctx)
        where = (f"Traceback of forward call that caused the error:\n{trace}" if trace else
                 "No forward pass information available. Enable detect anomaly during forward pass for more "
                 "information.")
        warnings.warn(f"Error detected in {_name(ctx)}. {where}", stacklevel=2)
        raise
    return out


def _refuse_nan(ctx, out):
    inputs = list(getattr(ctx, "inputs", ()) or ())
    pairs = out if isinstance(out, list) else list(zip(inputs, out if isinstance(out, tuple) else (out,)))
    for parent, grad in pairs:
        if grad is not None and _has_nan(grad):
            index = next((i for i, a in enumerate(inputs) if a is parent), 0)
            raise RuntimeError(f"Function '{_name(ctx)}' returned nan values in its {index}th output.")


def _has_nan(grad):
    if hasattr(grad, "_placed"):                  # a recorded gradient is a tensor
        value = grad._placed if grad._placed is not None else grad._array
    else:
        value = grad
    if isinstance(value, Placed):
        value = layout.materialize(value)
    if not B.is_array(value):
        return False
    # NaN is the one value unequal to itself (the same test on both engines' arrays)
    return B.dtype_of(value).is_floating_point and bool(B.any(value != value))
