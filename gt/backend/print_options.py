"""How ``repr(tensor)`` lays out values (``gt.set_printoptions`` changes these, as torch's does).

Both engines print through numpy's ``array2string`` (the torch engine converts to numpy first),
so this one table decides the layout for both.
"""

import sys

import numpy as np

# gt's defaults: 4 digits, arrays of more than 200 elements summarised to 3 items at each end.
PRINT_OPTIONS = {"precision": 4, "threshold": 200, "edgeitems": 3, "max_line_width": 75, "sci_mode": None}


def format_array(arr, prefix="tensor("):
    """``arr``'s values as text under PRINT_OPTIONS (numpy's layout, ``, `` between items)."""
    opts = PRINT_OPTIONS
    threshold = opts["threshold"]
    threshold = sys.maxsize if threshold == float("inf") else int(threshold)
    precision, formatter, suppress = int(opts["precision"]), None, None
    if opts["sci_mode"] is True and arr.dtype.kind == "f":
        formatter = {"float_kind": lambda v: f"{v:.{precision}e}"}
    elif opts["sci_mode"] is False:
        suppress = True
        if arr.dtype.kind == "f":   # numpy still switches to e-notation for huge values; torch does not
            formatter = {"float_kind": lambda v: f"{v:.{precision}f}"}
    return np.array2string(arr, separator=", ", precision=precision, threshold=threshold,
                           edgeitems=int(opts["edgeitems"]), max_line_width=int(opts["max_line_width"]),
                           suppress_small=suppress, formatter=formatter, prefix=prefix)
