"""torch's checks of Python numbers made into a tensor (``gt.tensor([...])``), which numpy does not
make: an int beyond int64 is torch's ValueError (numpy widens ``[1, 2**63]`` to float64 and
holds larger ints as objects), and a value that the requested integer dtype cannot hold is
torch's RuntimeError (numpy's cast wraps it, ``10**10`` into int32, or NaN into the smallest int), and
a complex number for a real dtype torch's TypeError."""

import numpy as np

from gt import dtypes

_INT64_END = 2.0 ** 63


def checked(data, arr, dtype):
    """``arr`` (numpy's reading of the Python ``data``) checked as torch checks it, or read again
    as float64 where torch reads ints too large for int64 as floats (a float beside them, or a
    float ``dtype``)."""
    target = None if dtype is None else dtypes.to_dtype(dtype)
    if target is not None and arr.dtype.kind == "c" and not target.is_complex:
        # torch's: a Python complex number is not read into a real dtype (numpy drops its imaginary part)
        raise TypeError(f"must be real number, not complex: Python complex numbers given for dtype {target.name}")
    to_float = target is not None and target.differentiable
    if target is dtypes.uint64 and (arr.dtype.kind in "iuO" or (arr.dtype.kind == "f" and _huge(arr))) \
            and not _scan(data)[1]:
        return _uint64(data)
    if arr.dtype == object or arr.dtype == np.uint64 or (arr.dtype == np.float64 and _huge(arr)):
        big, floats = _scan(data)
        if big and not (floats or to_float):
            text = repr(data)
            raise ValueError(f"Overflow when unpacking long long: {type(data).__name__} "
                             f"{text[:60]}{'...' if len(text) > 60 else ''} holds an int beyond int64's range")
        if arr.dtype == object and big:
            try:
                arr = np.array(data, dtype=np.float64)
            except (TypeError, ValueError):
                pass                      # ragged as well: the caller's error names it
    if target is not None and not to_float and target != dtypes.bool_ and arr.dtype.kind in "iuf" and arr.size:
        _check_range(arr, target)
    return arr


def _uint64(data):
    """Python ints read into uint64 as torch reads them: 0 .. 2**64 - 1, and OverflowError for a
    negative one (no wrapping, unlike the narrower unsigned dtypes) or one from 2**64."""
    try:
        return np.array(data, dtype=np.uint64)
    except OverflowError:
        negative = bool(np.any(np.array(data, dtype=object) < 0))
        raise OverflowError("can't convert negative int to unsigned" if negative else "int too big to convert: "
                            "uint64 holds 0 .. 2**64 - 1") from None


def _huge(arr):
    """Whether a float64 array from Python holds a magnitude of 2**63 or more (ints that numpy
    widened to floats, or floats that large: told apart by a scan only then)."""
    return arr.size > 0 and bool(np.abs(arr).max() >= _INT64_END)


def _scan(data):
    """(an int beyond int64 in ``data``, a float in it), walking nested lists and tuples."""
    big = floats = False
    stack = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, (list, tuple)):
            stack.extend(item)
        elif isinstance(item, float):
            floats = True
        elif isinstance(item, int) and not isinstance(item, bool) and not -2 ** 63 <= item < 2 ** 63:
            big = True
    return big, floats


def _check_range(arr, target):
    native = np.dtype(target.name)
    if arr.dtype == native:
        return
    info = np.iinfo(native)
    if arr.dtype.kind == "f":
        # torch's check compares with the largest int itself (uint8 refuses 255.5); int64's, rounded to
        # 2**63 in float64, is kept off by the second bound
        ok = bool(np.all((arr >= float(info.min)) & (arr <= float(info.max)) & (arr < float(info.max) + 1.0)))
    else:
        low, high = dtypes.written_int_range(target.name)      # uint8 takes -1..-255, wrapped
        ok = int(arr.min()) >= low and int(arr.max()) <= high
    if not ok:
        raise RuntimeError(f"value cannot be converted to type {target.name} without overflow")


def default_of(arr):
    """The dtype Python floats (complex numbers) become: the default float (its complex kind)."""
    default = dtypes.default_float
    return dtypes.COMPLEX_OF[default.name] if arr.dtype.kind == "c" else default


def cast(arr, native):
    """``arr`` as ``native``: a float too large for it becomes inf silently, as torch's (numpy warns)."""
    with np.errstate(over="ignore"):
        return arr.astype(native)


def half_with_float(ufunc, a, b):
    """``ufunc(a, b)`` of a float16 array and a Python float as torch's CPU product (and quotient)
    computes it: the number as a float32, the arithmetic in float32, rounded once to float16
    (numpy rounds the number to float16 first: ``x * 0.1`` then differs in a third of the
    values). torch's sum and difference do round the number to float16 first, as numpy."""
    with np.errstate(over="ignore"):
        if type(b) is float:
            return ufunc(a.astype(np.float32), np.float32(b)).astype(np.float16)
        return ufunc(np.float32(a), b.astype(np.float32)).astype(np.float16)
