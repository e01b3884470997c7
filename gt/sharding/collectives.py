"""Collectives between the devices of the mesh, each one counted.

On virtual CPU devices a "transfer" is a copy in host memory, or nothing at all where every
device reads the same buffer. On GPUs (the torch engine) the blocks are copied between devices
with ``non_blocking`` copies, which the engine queues on the GPUs' streams without waiting for
the host; results of gathers and reductions land on the mesh's home device (device 0). Every
call adds to ``counts`` (by name) so tests can assert how many collectives a training step
performs.
"""

import collections
import contextlib

from gt import dtypes
from gt.backend import B
from gt.backend.dim_order import innermost_first
from gt.sharding.mesh import get_mesh

counts = collections.Counter()
# Elements moved, by collective: lets tests tell a gather of a few numbers from one of activations.
volume = collections.Counter()


class Tally(collections.Counter):
    """Collectives counted by name (``c["all_reduce"]``); ``c.elements_moved[name]`` is how many
    array elements they carried in total."""

    def __init__(self):
        super().__init__()
        self.elements_moved = collections.Counter()


@contextlib.contextmanager
def count_collectives():
    """``with count_collectives() as c: ...``: ``c`` is a Counter of the collectives run inside,
    e.g. ``{"all_reduce": 13, "all_gather": 1}``; ``c.elements_moved`` their sizes."""
    before, moved = counts.copy(), volume.copy()
    seen = Tally()
    try:
        yield seen
    finally:
        seen.update(counts - before)
        seen.elements_moved.update(volume - moved)


def _count(name, arrays):
    counts[name] += 1
    volume[name] += sum(int(B.numel(a)) for a in arrays)


def split(arr, axis, sizes):
    """``arr``'s consecutive blocks of ``sizes`` along ``axis``, block i on device i: views on a
    shared-memory mesh (no copy, no collective), else each block copied to its device."""
    out, start = [], 0
    lead = (slice(None),) * axis
    for s in sizes:
        out.append(arr[lead + (slice(start, start + s),)])
        start += s
    mesh = get_mesh()
    if not mesh.shared_memory:
        out = [B.to_device(block, dev) for block, dev in zip(out, mesh.devices)]
    return out


def home(arrays):
    """The arrays on the mesh's home device (they are already there on a shared-memory mesh)."""
    mesh = get_mesh()
    if mesh.shared_memory:
        return list(arrays)
    return [B.to_device(a, mesh.home) if B.is_array(a) else a for a in arrays]


def replicas(arr, n):
    """``arr`` on each of the ``n`` devices: the same buffer on a shared-memory mesh (not a
    collective), a counted broadcast of copies on GPUs."""
    mesh = get_mesh()
    if mesh.shared_memory or not B.is_array(arr):
        return [arr] * n
    return broadcast(arr, n)


def all_gather(shards, axis):
    """Concatenate per-device blocks along ``axis`` into the whole array (one copy), in the blocks'
    order of dims in memory: one device's tensor of a permuted or transposed input is laid out so,
    and the ops run on the gathered copy (a sort, a flip along the sharded axis) keep its layout as
    torch's do. Row-major blocks (the usual ones) are joined as they are."""
    _count("all_gather", shards)
    shards = home(shards)
    # a block one long along the axis (or empty) tells nothing of where the axis lies
    block = next((s for s in shards if s.shape[axis] > 1 and B.numel(s)), None)
    if block is None and not all(B.is_contiguous(s) for s in shards):
        whole = B.join_views(shards, axis)      # blocks of one buffer: its layout, copied as a clone keeps it
        return B.concatenate(shards, axis) if whole is None else B.clone(whole)
    if block is None or B.is_contiguous(block):
        return B.concatenate(shards, axis)
    order = innermost_first(tuple(block.shape), [B.element_strides(block)])[::-1]     # outermost first
    if order == sorted(order):
        return B.concatenate(shards, axis)
    whole = B.concatenate([B.transpose(s, order) for s in shards], order.index(axis))
    return B.transpose(whole, [order.index(d) for d in range(len(order))])


# Blocks of this many elements are summed across devices while they sit in cache, so a
# reduction of n arrays reads each once and writes the result once.
_CHUNK = 1 << 16
_SIGNED = {"uint16": "int16", "uint32": "int32", "uint64": "int64"}


def all_reduce(shards, owned=False):
    """Sum of per-device arrays of one shape. With ``owned`` the first array is overwritten with
    the sum (no new buffer); otherwise the result is a fresh array."""
    _count("all_reduce", shards)
    return sum_arrays(shards, owned)


def sum_arrays(shards, owned=False):
    shards = home(shards)
    first = shards[0]
    if B.name == "torch" and B.is_array(first) and B.dtype_of(first) in dtypes.WIDE_UINTS:
        # torch adds no uint16/32/64: their bits summed as the signed dtype of their width wrap alike
        signed = B.native_dtype(_SIGNED[B.dtype_of(first).name])
        return sum_arrays([s.view(signed) for s in shards], owned).view(first.dtype)
    if len(shards) == 1:
        return first if owned else B.copy(first)
    out = first if owned and B.is_array(first) and not B.is_view(first) else None
    if out is None:
        out = shards[0] + shards[1]
        if not B.is_array(out):  # numpy gives a scalar for 0-d operands
            out = B.asarray(out)
        rest = shards[2:]
    else:
        rest = shards[1:]
    if not rest:
        return out
    flat_out = B.reshape(out, (-1,))
    flats = [B.reshape(s, (-1,)) if B.is_array(s) and B.is_contiguous(s) else None for s in rest]
    # (on GPUs a whole-array add per device: blocks would only multiply kernel launches)
    if any(f is None for f in flats) or flat_out.shape[0] <= _CHUNK or not get_mesh().shared_memory:
        for s in rest:
            out += s
        return out
    n = flat_out.shape[0]
    for start in range(0, n, _CHUNK):
        block = flat_out[start:start + _CHUNK]
        for f in flats:
            block += f[start:start + _CHUNK]
    return out


def resplit(shards, axis, sizes):
    """Blocks along ``axis`` re-cut to ``sizes``: device e keeps the parts of its own block that
    fall in its new range (views, nothing moved) and receives only the other overlaps, joined
    in order. Counted as ``all_to_all``, ``elements_moved`` being the parts that change device."""
    old = [0]
    for s in shards:
        old.append(old[-1] + s.shape[axis])
    lead = (slice(None),) * axis
    mesh, out, moved, start = get_mesh(), [], [], 0
    for e, size in enumerate(sizes):
        parts = [] if size else [shards[e][lead + (slice(0, 0),)]]
        for d, block in enumerate(shards):
            lo, hi = max(start, old[d]), min(start + size, old[d + 1])
            if lo < hi:
                piece = block[lead + (slice(lo - old[d], hi - old[d]),)]
                if d != e:
                    moved.append(piece)
                    if not mesh.shared_memory:
                        piece = B.to_device(piece, mesh.devices[e])
                parts.append(piece)
        out.append(parts[0] if len(parts) == 1 else B.concatenate(parts, axis))
        start += size
    if moved:
        _count("all_to_all", moved)
    return out


def reduce_scatter(shards, axis, sizes, owned=False):
    """Sum of per-device arrays, then each device keeps its block along ``axis``."""
    _count("reduce_scatter", shards)
    return split(sum_arrays(shards, owned), axis, sizes)


def send(arr, device):
    """A small array (a running scan's carry: one row per slice) to device ``device`` of the
    mesh, from the device before or after it; counted as ``send``."""
    _count("send", [arr])
    mesh = get_mesh()
    return arr if mesh.shared_memory else B.to_device(arr, mesh.devices[device])


def broadcast(arr, n):
    """One array to every device. On a shared-memory mesh the devices read the same buffer."""
    _count("broadcast", [arr])
    mesh = get_mesh()
    if mesh.shared_memory:
        return [arr] * n
    return [B.to_device(arr, dev) for dev in mesh.devices[:n]]
