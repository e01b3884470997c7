"""What a backward without ``retain_graph`` frees of each op it walked, as torch: the values the op
saved for its gradient. An op that saved none (``expand``, ``sum``, ``reshape``, an addition) stays
walkable, so a second backward through it works and accumulates again, as in torch; an op whose
saved values were freed raises torch's error when a backward reaches it again.

A walkable freed op keeps its edges, not its inputs' values: each computed input is replaced by a
stand-in of its shape and dtype (a broadcast zero: no memory), with the input's history (``_ctx``),
so the graph before it stays reachable while the arrays of its tensors can be freed, as torch's
nodes keep their edges and not the tensors. A leaf is kept itself (torch's ``AccumulateGrad``
holds it). An op whose saved values were freed drops its inputs, as before (torch keeps its edges:
``next_functions`` is empty there).
"""

import functools
import weakref
from numbers import Number

from gt.autograd import function, saved_hooks
from gt.backend import B

_blanks = {}   # (shape, dtype, device) -> a broadcast zero: the array of every stand-in of that kind
made = {}     # id(tensor) -> (weak reference to it, its stand-in) in this walk: every op there shares it


def clears_stand_ins(walk):
    """``walk`` (a backward walk) with its stand-ins dropped however it ends: kept past a walk that
    raises, they would hold the graphs they point to."""
    @functools.wraps(walk)
    def walked(*args, **kwargs):
        try:
            return walk(*args, **kwargs)
        finally:
            made.clear()
    return walked


def free(ctx):
    """Free what ``ctx`` (an op just walked) saved; an op that saved nothing keeps stand-ins of its
    inputs and stays walkable (``released`` None: false, as an op not yet walked)."""
    if _holds_saved(ctx):
        ctx.saved, ctx.inputs, ctx.released = None, (), True
        kept = getattr(ctx, "__dict__", None)
        for name in [k for k, v in kept.items() if _has_array(v)] if kept else ():
            setattr(ctx, name, None)          # an index kept as an attribute goes with the saved values
        return
    if not isinstance(ctx, function.Function) and getattr(ctx, "ctxs", None) is None \
            and type(ctx).__name__ != "Redistribute":
        ctx.saved, ctx.inputs, ctx.released = None, (), True     # a node of another kind: as before
        return
    ctx.released = None
    if isinstance(ctx, function.Function) and getattr(ctx, "_saved", None) is None:
        ctx._saved = None                     # ``grad_fn.saved`` of an op that saved nothing: None, as freed
    Tensor = function.Tensor
    ctx.inputs = tuple([_stand_in(a) if isinstance(a, Tensor) and (a._ctx is not None or not a._requires_grad) else a
                        for a in ctx.inputs])


def resolve(ctx):
    """Before a walk through a freed op: each stand-in whose tensor is still alive, with the same
    history, is that tensor again, so that every use of it meets at one node of the walk (its
    hooks and ``retain_grad`` see the whole gradient)."""
    ctx.inputs = tuple(_real(a) if type(a) is _StandIn else a for a in ctx.inputs)


def _real(stand_in):
    """The tensor of ``stand_in`` if it is alive and still has that history, else ``stand_in``."""
    t = stand_in.of()
    return t if t is not None and t._ctx is stand_in._ctx and t._requires_grad == stand_in._requires_grad else stand_in


def _holds_saved(ctx):
    """Whether ``ctx`` keeps values for its gradient: an array it ``save``d, or a number (torch
    saves a scalar operand of ``mul``/``div`` as a tensor; a dtype or a shape is no tensor), an
    array it kept as an attribute (an index, ``save_for_graph``'s inputs), a torch-style
    Function's saved tensors, or, run over the mesh, any of its per-device contexts does."""
    saved = getattr(ctx, "_saved", None)
    if saved is not None:
        if type(saved) is saved_hooks.Packed:    # packed by saved-tensor hooks: (packed, value) entries
            if any(packed for packed, _ in saved.entries):
                return True
            saved = [v for _, v in saved.entries]
        numbers = not getattr(ctx, "keeps_scalar", False)    # a composite's factor is kept as torch's Scalar
        for v in saved:
            if v is not None and (B.is_array(v) or (numbers and isinstance(v, Number))):
                return True
    kept = getattr(ctx, "__dict__", None)
    if kept:
        if "graph_saved" in kept or kept.get("saved_objects"):
            return True
        for v in kept.values():
            if _has_array(v):
                return True
    shares = getattr(ctx, "ctxs", None)
    return shares is not None and any(_holds_saved(c) for c in shares)


def _has_array(value):
    if B.is_array(value):
        return True
    return type(value) in (tuple, list) and any(B.is_array(v) for v in value)


_StandIn = None


def _stand_in(t):
    """A tensor of ``t``'s shape and dtype holding no memory, with ``t``'s history; the same one
    for every op that reads ``t`` (the walk meets their gradients at it)."""
    global _StandIn
    if type(t) is _StandIn:
        return t
    known = made.get(id(t))
    if known is not None and known[0]() is t:
        return known[1]
    if _StandIn is None:
        _StandIn = type("StandIn", (function.Tensor,), {"__slots__": ("of",)})
    arr = t._array
    placed = t._placed
    if placed is not None:
        arr = placed.shards[0]
    shape = t.shape
    key = (shape, B.dtype_of(arr), B.device_of(arr))
    blank = _blanks.get(key)
    if blank is None:
        if len(_blanks) > 512:
            _blanks.clear()
        zero = B.zeros((), key[1])
        blank = _blanks[key] = B.broadcast_to(zero if B.device_of(zero) == key[2] else B.to_device(zero, key[2]), shape)
    out = object.__new__(_StandIn)
    out._array, out._placed, out._grad_value, out._grad_factors, out._retains_grad = blank, None, None, None, False
    out._ctx, out._requires_grad, out.of = t._ctx, t._requires_grad, weakref.ref(t)
    made[id(t)] = (out.of, out)
    return out


def data_replaced(t, old):
    """``t.data = new`` after ops read ``t`` (``old``: its array before): torch's saved inputs are
    the tensors themselves, so their backward reads the new values; here the recorded ops that
    read ``t`` and saved ``old`` save the new array instead. Outputs an op saved keep theirs, as
    torch's, and so does an op whose torch twin saves a tensor made of the input (``Linear``:
    ``weight.t()``), which says so with ``saved_follow_data = False``. Only ops still on the tape (recorded since the last backward) are seen."""
    new = t._array
    if not function.tape or old is None or new is None or old is new:
        return
    for ref, _ in function.tape:
        ctx = ref()
        saved = getattr(ctx, "_saved", None)
        if type(saved) is not tuple or not any(v is old for v in saved) or not getattr(ctx, "saved_follow_data", True):
            continue
        if any(a is t for a in ctx.inputs):
            ctx._saved = tuple(new if v is old else v for v in saved)
            ctx.saved_versions = B.versions_of(ctx._saved)
