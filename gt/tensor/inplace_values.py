"""The new values of an in-place change recorded on the tape, and the values it read, as every
writer computes them: gt/tensor/inplace_grad.py (one device) and, over the mesh,
mesh_alias_write.py and mesh_view_write.py."""

from gt.autograd import rebind


def new_values(t, old, compute, values, reads_self):
    """``compute(old, *values)``, ``t``'s values after the change, in ``t``'s dtype (an in-place change
    keeps the tensor's dtype, as torch). ``old`` stands for ``t`` before it (``t`` itself among
    ``values`` reads it too); a copy where ``compute``'s backward reads it (``reads_self``) or ``t`` is
    one of the values."""
    src = old.clone() if reads_self or any(v is t for v in values) else old
    new = compute(src, *[src if v is t else v for v in values])
    return new if new.dtype == t.dtype else new.to(t.dtype)


def read_before(values, tensor):
    """Each value of the change that has a history (``y[i] = y[j]``: read from ``t``) reads its version
    of before: said now, so that ``t``'s op -> value -> ``t`` is no cycle. ``tensor``: the Tensor class."""
    for v in values:
        if isinstance(v, tensor) and v._ctx is not None and not v._ctx.released:
            rebind.resolve(v._ctx)
