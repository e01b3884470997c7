"""``Placed``: a value spread over the mesh (per-device arrays, a placement, the global shape),
and the moves between layouts. A plain engine array stands for a replicated value: on a
shared-memory mesh every device reads the same buffer.

Tensors hold a ``Placed`` when they are sharded or partial; gradients flowing through a
sharded graph are ``Placed`` or plain arrays, and ``add`` sums any two of them.
"""

from gt.backend import B
from gt.sharding import collectives as C
from gt.sharding.mesh import get_mesh
from gt.sharding.placement import Partial, Replicate, Shard, even_sizes


class Placed:
    __slots__ = ("shards", "placement", "shape", "owned", "memory", "whole")

    def __init__(self, shards, placement, shape, owned=False, memory=False):
        self.shards = list(shards)
        self.placement = placement
        self.shape = tuple(shape)
        self.owned = owned  # the first shard is a fresh buffer nobody else holds (reductions may reuse it)
        self.memory = memory    # the shards are a tensor's memory: an op's results per device, or views of them
        self.whole = False  # a partial whose first shard holds the sum, the others zeros (whole_in_place)

    @property
    def sizes(self):
        """Block sizes along the shard axis (None unless sharded)."""
        if not isinstance(self.placement, Shard):
            return None
        a = self.placement.axis
        return [s.shape[a] for s in self.shards]

    @property
    def dtype(self):
        return B.dtype_of(self.shards[0])

    def __repr__(self):
        return f"Placed({self.placement}, shape={self.shape}, sizes={self.sizes})"


def logical_strides(placed):
    """The strides the whole of ``placed`` has on one device (torch's ``stride()`` of the same
    program), or None where they are not known. Replicated and partial tensors: the full copy's.
    Sharded blocks that lie next to each other in one buffer (data from ``from_numpy`` and its
    views) are the whole tensor's memory: their strides are exact, blocks of one element along the
    sharded axis too (the step between two blocks is that axis' stride: ``h.t()`` of such data is
    no row-major tensor, though each block of it is). Blocks of their own (the results of ops,
    redistributed blocks) only suggest one device's layout: None, so their views (copies) are let
    through where torch's might be refused (a false refusal would break a program torch runs)."""
    if not isinstance(placed.placement, Shard):
        return B.element_strides(placed.shards[0])     # every device holds the whole shape
    whole = B.join_views(placed.shards, placed.placement.axis)
    return None if whole is None else B.element_strides(whole)


def placement_of(value):
    return value.placement if isinstance(value, Placed) else Replicate()


def shape_of(value):
    return value.shape if isinstance(value, Placed) else tuple(value.shape)


def sizes_of(value):
    return value.sizes if isinstance(value, Placed) else None


def shard(arr, axis, sizes=None):
    """A plain array cut into blocks along ``axis`` (views, no copy): ``Placed`` with ``Shard(axis)``."""
    n = get_mesh().size
    sizes = even_sizes(arr.shape[axis], n) if sizes is None else sizes
    return Placed(C.split(arr, axis, sizes), Shard(axis), tuple(arr.shape))


def materialize(value, view_ok=False):
    """The whole value as one plain array (all-gather a shard, all-reduce a partial). With
    ``view_ok``, shards that are adjacent blocks of one host array (data from ``from_numpy``,
    and views of it) are joined without a copy, so the result shares their memory."""
    if not isinstance(value, Placed):
        return value
    p = value.placement
    if isinstance(p, Shard):
        if view_ok and get_mesh().shared_memory:
            whole = B.join_views(value.shards, p.axis)
            if whole is not None:
                C._count("all_gather", value.shards)
                return whole
        return C.all_gather(value.shards, p.axis)
    if isinstance(p, Partial):
        return C.all_reduce(value.shards, owned=value.owned)
    return value.shards[0]


def whole_in_place(placed):
    """The whole value of a partial ``placed`` whose shards are tensors' memory (an op's results
    per device, or views of them) as one array that ``placed`` itself holds: the sum written into
    the first device's block and zeros into the others, in place (the value does not change, nor
    does its version count). An in-place change of that array then reaches every tensor sharing the
    blocks (``detach()``, ``.data``, views taken per device), and an op that saved them counts it,
    as on one device, where making the changed tensor alone hold the sum parted it from them.
    None where the shards may be other values' too (a gradient's shares handed to a hook, a
    ``redistribute``), share memory among themselves or cannot be written (an expanded view's):
    the caller makes one array of its own, as before."""
    first = placed.shards[0]
    if placed.whole:
        return first
    if not placed.memory or len({id(B.memory_owner(s)) for s in placed.shards}) < len(placed.shards) or \
            any(B.write_refusal(s) for s in placed.shards):     # (an expanded view's blocks)
        return None
    whole = materialize(placed)
    states = [(s, B.version_state(s)) for s in placed.shards]
    B.setitem(first, Ellipsis, whole)
    for s in placed.shards[1:]:
        B.setitem(s, Ellipsis, 0)
    for s, state in states:     # (the torch engine counted those writes)
        B.set_version_state(s, state)
    placed.whole = True
    return first


def to_locals(value, target, sizes=None):
    """Per-device arrays holding ``value`` in the ``target`` placement (``sizes``: the blocks of a
    ``Shard`` target; default even). Moves only what it must: slicing a replicated value is free."""
    n = get_mesh().size
    shape = shape_of(value)
    if isinstance(value, Placed) and value.whole and not isinstance(target, Partial):
        value = value.shards[0]     # its sum lies on the first device: read in place, as a replicated value
    if isinstance(target, Shard) and sizes is None:
        sizes = even_sizes(shape[target.axis], n)
    src = placement_of(value)
    if isinstance(value, Placed):
        if src == target and (sizes is None or value.sizes == list(sizes)):
            return value.shards
        if isinstance(src, Partial) and isinstance(target, Shard):
            return C.reduce_scatter(value.shards, target.axis, sizes, owned=value.owned)
        if src == target:    # the same axis cut at other places: only the overlaps that change device move
            return C.resplit(value.shards, target.axis, sizes)
        value = materialize(value)
    # value is plain (replicated) from here
    if isinstance(target, Replicate):
        return C.replicas(value, n)
    if isinstance(target, Shard):
        return C.split(value, target.axis, sizes)
    # Partial: the value on one device, zeros elsewhere
    mesh = get_mesh()
    if mesh.shared_memory:
        return [value] + [B.zeros(tuple(value.shape), B.dtype_of(value))] * (n - 1)
    zeros = []
    for dev in mesh.devices[1:n]:
        with B.on_device(dev):
            zeros.append(B.zeros(tuple(value.shape), B.dtype_of(value)))
    return [C.home([value])[0]] + zeros


def convert(value, target, sizes=None):
    """``value`` in the ``target`` placement: a plain array for Replicate, else a ``Placed``."""
    if isinstance(target, Replicate):
        return materialize(value)
    same = isinstance(value, Placed) and value.placement == target and (sizes is None or value.sizes == list(sizes))
    shards = value.shards if same else to_locals(value, target, sizes)
    # numpy gives scalars, not 0-d arrays, for arithmetic on 0-d operands; a scalar shard cannot
    # be updated in place, so a 0-d Partial leaf's .grad would lose every later backward's contribution
    if same and all(B.is_array(s) for s in shards):
        return value
    return Placed([s if B.is_array(s) else B.asarray(s) for s in shards], target, shape_of(value), owned=False)


def add(a, b):
    """The sum of two values of one shape in any placements (gradient accumulation)."""
    if not isinstance(a, Placed) and not isinstance(b, Placed):
        return a + b
    if not isinstance(a, Placed):
        a, b = b, a
    pa, pb = a.placement, placement_of(b)
    if isinstance(b, Placed) and pa == pb and a.sizes == b.sizes:
        return Placed([x + y for x, y in zip(a.shards, b.shards)], pa, a.shape, owned=True)
    if not isinstance(b, Placed) and isinstance(pa, Partial):
        return Placed([a.shards[0] + b] + a.shards[1:], pa, a.shape, owned=True)
    if not isinstance(b, Placed) and isinstance(pa, Shard):
        return Placed([x + y for x, y in zip(a.shards, C.split(b, pa.axis, a.sizes))], pa, a.shape, owned=True)
    if isinstance(pa, Shard):  # keep the shard layout when the other side can be moved into it
        return Placed([x + y for x, y in zip(a.shards, to_locals(b, pa, a.sizes))], pa, a.shape, owned=True)
    return materialize(a) + materialize(b)


def cut_like(value, placed):
    """Per-device pieces of ``value`` (a number, a plain array or a ``Placed``) that line up with
    the shards of ``placed`` under broadcasting: cut along the shard axis where ``value`` spans
    it, whole where it broadcasts along it."""
    n = len(placed.shards)
    if not (B.is_array(value) or isinstance(value, Placed)):
        return [value] * n
    axis, nd = placed.placement.axis, len(placed.shape)
    vshape = shape_of(value)
    j = axis - (nd - len(vshape))
    if j < 0 or (vshape[j] == 1 and placed.shape[axis] != 1):
        return to_locals(value, Replicate())
    return to_locals(value, Shard(j), placed.sizes)
