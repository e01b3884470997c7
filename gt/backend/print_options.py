"""How ``repr(tensor)`` lays out values (``gt.set_printoptions`` changes these, as torch's does).

Both engines print through this module (the torch engine converts to numpy first), so this one
table decides the layout for both. The layout is torch 2.13's ``torch/_tensor_str.py``, character
for character: one width for every element, integer-valued floats as ``1.``, scientific notation
when the magnitudes span more than 1000x or leave [1e-4, 1e8), and lines of at most ``linewidth``.
"""

import math

import numpy as np

# torch's defaults ("default" profile): 4 digits, arrays of more than 1000 elements summarised to
# 3 items at each end of each dim, 80-character lines.
PRINT_OPTIONS = {"precision": 4, "threshold": 1000, "edgeitems": 3, "max_line_width": 80, "sci_mode": None}


def _summarized(arr, edge):
    """The elements a summarised repr shows: the first and last ``edge`` along each long dim
    (torch's ``get_summarized_data``), so the formatter sizes only what is printed."""
    for axis, n in enumerate(arr.shape):
        if n > 2 * edge:
            arr = np.take(arr, np.r_[0:edge, n - edge:n], axis=axis)
    return arr


class _Formatter:
    """torch's ``_Formatter``: picks int/fixed/scientific mode and one width from the values shown."""

    def __init__(self, values, is_float):
        opts = PRINT_OPTIONS
        self.precision, self.is_float = int(opts["precision"]), is_float
        self.int_mode, self.sci_mode, self.max_width = True, False, 1
        flat = values.reshape(-1)
        if not is_float:
            if flat.size:
                self.max_width = max(len(str(v)) for v in (flat.min().item(), flat.max().item()))
            return
        flat = flat.astype(np.float64)
        finite = flat[np.isfinite(flat) & (flat != 0)]
        if finite.size == 0:
            return
        absolute = np.abs(finite)
        low, high = absolute.min(), absolute.max()
        self.int_mode = bool(np.all(finite == np.ceil(finite)))
        auto = high / low > 1000.0 or high > 1.0e8 or low < 1.0e-4
        self.sci_mode = bool(auto if opts["sci_mode"] is None else opts["sci_mode"])
        # the widest text comes from the largest magnitude of each sign, or the smallest (the
        # exponent of 1e-100 is as wide as that of 1e100)
        extremes = [v for part in (finite[finite < 0], finite[finite > 0]) if part.size
                    for v in (part.min(), part.max())]
        if self.sci_mode:
            texts = [f"{v:.{self.precision}e}" for v in extremes]
        elif self.int_mode:
            texts = [f"{v:.0f}." for v in extremes]
        else:
            texts = [f"{v:.{self.precision}f}" for v in extremes]
        self.max_width = max(len(s) for s in texts)

    def format(self, value):
        if not self.is_float:
            text = str(value)
        elif self.sci_mode:
            text = f"{value:{self.max_width}.{self.precision}e}"
        elif self.int_mode:
            text = f"{value:.0f}" + ("" if math.isinf(value) or math.isnan(value) else ".")
        else:
            text = f"{value:.{self.precision}f}"
        return (self.max_width - len(text)) * " " + text


class _ComplexFormatter:
    """torch's pair of formatters for complex values: the real and imaginary parts each sized
    over their own values, printed as ``1.5000+2.0000j``."""

    def __init__(self, values):
        self.real, self.imag = _Formatter(values.real, True), _Formatter(values.imag, True)
        self.max_width = self.real.max_width + self.imag.max_width + 1

    def format(self, value):
        imag = (self.imag.format(value.imag) + "j").lstrip()
        return self.real.format(value.real) + (imag if imag[0] in "+-" else "+" + imag)


def _formatter(values):
    return _ComplexFormatter(values) if values.dtype.kind == "c" else _Formatter(values, values.dtype.kind == "f")


def _vector(row, indent, cut, formatter, edge):
    """One innermost row: ``row`` holds what is shown (both ends when ``cut``)."""
    data = [formatter.format(v) for v in row.tolist()]
    if cut:
        data = data[:edge] + [" ..."] + data[edge:]
    per_line = max(1, math.floor((PRINT_OPTIONS["max_line_width"] - indent) / (formatter.max_width + 2)))
    lines = [", ".join(data[i:i + per_line]) for i in range(0, len(data), per_line)]
    return "[" + (",\n" + " " * (indent + 1)).join(lines) + "]"


def _nested(arr, shape, indent, summarize, formatter, edge):
    """torch's ``_tensor_str_with_formatter`` over the shown elements ``arr`` of a tensor of ``shape``."""
    cut = summarize and shape[0] > 2 * edge
    if len(shape) == 1:
        return _vector(arr, indent, cut, formatter, edge)
    slices = [_nested(sub, shape[1:], indent + 1, summarize, formatter, edge) for sub in arr]
    if cut:
        slices = slices[:edge] + ["..."] + slices[edge:]
    return "[" + ("," + "\n" * (len(shape) - 1) + " " * (indent + 1)).join(slices) + "]"


def format_array(arr, prefix="tensor("):
    """``arr``'s values as text under PRINT_OPTIONS, laid out as torch's ``_tensor_str`` lays
    out a tensor printed after ``prefix``. Only the elements shown are formatted."""
    if arr.size == 0:
        return "[]"
    if arr.ndim == 0:
        return _formatter(arr).format(arr.item())
    threshold, edge = PRINT_OPTIONS["threshold"], int(PRINT_OPTIONS["edgeitems"])
    summarize = arr.size > threshold
    if summarize and not edge:
        return "[...]"
    shown = _summarized(arr, edge) if summarize else arr
    return _nested(shown, arr.shape, len(prefix), summarize, _formatter(shown), edge)
