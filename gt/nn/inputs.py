"""A user's arguments to the ``gt.nn`` functions as tensors, with errors that name the function:
any tensor input (``as_tensor``), class indices (``class_indices``, ``check_range``)."""

from gt import dtypes
from gt.backend import B
from gt.tensor import Tensor, checks


def as_tensor(x, fn, what="input"):
    if isinstance(x, Tensor):
        return x
    try:
        return Tensor._wrap(B.asarray(x))
    except TypeError as exc:
        raise TypeError(f"{fn}: {what} must be a gt.Tensor or array-like, got {type(x).__name__}: {exc}") from None


def class_indices(indices, fn, what):
    idx = as_tensor(indices, fn, what)
    if idx.dtype.is_floating_point or idx.dtype == dtypes.bool_:
        raise TypeError(f"{fn}: {what} must be integer class indices (int64/int32), got {idx.dtype!r}"
                        + ("; class probabilities are F.cross_entropy's" if fn == "nll_loss" else ""))
    return idx


def check_range(idx, n, fn, what, limit, exc):
    """Raise ``exc`` naming the first of ``idx`` outside ``[0, n)`` (on a GPU at the next host
    read); returns the indices to compute with (``checks.within``)."""
    return checks.require_within(idx, 0, n - 1, exc,
                                 lambda bad: f"{fn}: {what} {bad} is out of range for {limit} (valid: 0..{n - 1})")
