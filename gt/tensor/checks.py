"""Checks of values (an index out of range, a non-finite pixel) that never stall a GPU.

Reading a verdict back to the host makes the host wait for the device, and a training step
on GPUs must not wait (every GPU would idle while Python catches up). So on a CPU mesh a
check runs at once, and on a GPU mesh it is computed on the device and queued: the host
raises it at the next point where it reads values anyway (``Tensor.item()``, ``.numpy()``,
``.tolist()``, ``bool()``), with the same message. This is CUDA's device-side assert, but with
gt's error type and message, and nothing is lost: the error still names the bad value.

    >>> checks.require(ok, IndexError, lambda: f"target {bad()} is out of range")
"""

from gt import dtypes
from gt.sharding.mesh import get_mesh

_pending = []


class IndexOutOfRangeError(IndexError, RuntimeError):
    """A position out of range where torch's CPU kernels raise IndexError for some shapes and
    dims and RuntimeError for others (``index_select``, ``index_add``): either ``except`` catches it."""


def deferred():
    """Whether checks are queued (a GPU mesh) rather than run at once (the CPU)."""
    return get_mesh().kind != "cpu"


def require(ok, error, message):
    """Raise ``error(message())`` unless ``ok`` (a one-element bool tensor) holds; at once on
    the CPU, at the next host read on a GPU. ``message`` is called only on failure."""
    if deferred():
        _pending.append((ok, error, message))
    elif not ok.item():
        raise error(message())


def require_within(index, low, high, error, describe):
    """The range check of integer indices: ``error(describe(bad))`` for the first of ``index``
    outside ``[low, high]`` (the lowest when one is below, else the highest), at once on the CPU
    and at the next host read on a GPU. Returns the indices to compute with (``within``)."""
    if index.numel() == 0:
        return index
    if index.dtype in dtypes.SMALL_INTS:
        index = index.long()     # a bound beside uint8/int8/int16 would be cast into it (torch's rule: 300 is 44)
    lo, hi = index.min(), index.max()

    def message():
        return describe(int(lo.item()) if lo.item() < low else int(hi.item()))

    require((lo >= low) & (hi <= high), error, message)
    return within(index, low, high)


def within(index, low, high):
    """``index`` (an integer tensor) to compute with after a range check on ``[low, high]``: itself
    where checks run at once, and on a GPU its values clamped into the range, so that a bad index
    never reaches a kernel (a CUDA device-side assert would lose the process's GPU for good) while
    its queued check waits for the next host read to raise."""
    return index.clamp(low, high) if deferred() and high >= low else index


def flush():
    """Raise the first failed queued check, if any (called by every host read)."""
    if not _pending:
        return
    queued = list(_pending)
    _pending.clear()            # before reading: the reads below flush nothing again
    if len(queued) > 1 and _together(ok for ok, _, _ in queued):
        # one read for every verdict (each read waits for the device); one by one only on a failure
        every = queued[0][0]
        for ok, _, _ in queued[1:]:
            every = every & ok
        if every.item():
            return
    for ok, error, message in queued:
        if not ok.item():
            raise error(message())


def _together(oks):
    """Whether the verdicts can be combined on one device: none spread over the mesh, all on
    the device of the first (else each is read where it is)."""
    where = None
    for ok in oks:
        if ok._placed is not None:
            return False
        device = str(ok.device)
        if where is None:
            where = device
        elif device != where:
            return False
    return True
