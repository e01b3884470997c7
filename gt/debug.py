"""Looking inside gt while debugging: the tape of recorded ops, and what each device ran.

The names follow the public gt (``gt.debug.get_tape()``, ``print_tape()``,
``get_worker_stats()``, ``print_worker_stats()``); its workers are the devices of the mesh here.
"""

import collections

from gt import autograd
from gt.backend import B
from gt.sharding import collectives
from gt.sharding.mesh import get_mesh
from gt.tensor import Tensor

_collectives_before = collections.Counter()   # the counts at the last reset_worker_stats()


def _recorded():
    """(op, output or None) of every recorded op whose graph is still alive, oldest first."""
    out = []
    for ctx_ref, out_ref in autograd.tape:
        ctx = ctx_ref()
        if ctx is not None and not ctx.released:
            out.append((ctx, out_ref()))
    return out


def get_tape():
    """The ops recorded since the last ``backward()``, oldest first, one dict each::

        {"op": "Mul", "output_id": 7, "output_shape": (10, 10), "input_ids": [3, 5],
         "requires_grad": True}

    Ids are ``Tensor.id`` (inputs that are tensors only); an output that no
    longer exists has ``output_id`` None. (``grad_fn`` holds the op's name too, as in the public gt.)
    """
    entries = []
    for ctx, result in _recorded():
        entries.append({
            "op": ctx.name,
            "grad_fn": f"{ctx.name}Backward",
            "output_id": None if result is None else result.id,
            "output_shape": ctx.out_shape,
            "input_ids": [t.id for t in ctx.inputs if isinstance(t, Tensor)],
            "requires_grad": True,
        })
    return entries


def print_tape(tensor=None, file=None):
    """Print the recorded ops: those ``tensor`` depends on (inputs first), or, with no argument,
    every op recorded since the last ``backward()``. Returns the number of ops printed."""
    if tensor is not None:
        nodes = [n for n in autograd.topological_order(tensor) if n._ctx is not None] if tensor.requires_grad else []
        ctxs = [n._ctx for n in nodes]
    else:
        ctxs = [ctx for ctx, _ in _recorded()]
    print(f"tape: {len(ctxs)} op(s)", file=file)
    for i, ctx in enumerate(ctxs):
        shapes = ", ".join(str(t.shape) if hasattr(t, "shape") and hasattr(t, "_data") else repr(t)
                           for t in ctx.inputs)
        print(f"  [{i}] {ctx.name}({shapes}) -> {ctx.out_shape}", file=file)
    return len(ctxs)


def get_worker_stats():
    """What each device of the mesh has done since the program started (or since
    ``reset_worker_stats()``): ``{"device 0": {"device": "cpu", "engine": "numpy",
    "operations": {"total": n}}, ..., "collectives": {"all_reduce": k, ...}}``.

    An op on unsharded tensors runs on device 0 (the home device); a sharded op counts once on
    every device that ran its share. The public gt reported torch.compile cache figures here;
    gt runs eagerly, so there are none.
    """
    mesh = get_mesh()
    stats = {}
    for d, device in enumerate(mesh.devices):
        stats[f"device {d}"] = {"device": device, "engine": B.name,
                                "operations": {"total": autograd.ops_run.get(d, 0)}}
    stats["collectives"] = dict(collectives.counts - _collectives_before)
    return stats


def reset_worker_stats():
    """Start the counts of ``get_worker_stats()`` again from zero."""
    autograd.ops_run.clear()
    _collectives_before.clear()
    _collectives_before.update(collectives.counts)


def print_worker_stats(file=None):
    """Print ``get_worker_stats()``: one block per device, then the collectives."""
    stats = get_worker_stats()
    collected = stats.pop("collectives")
    print(f"Worker statistics ({len(stats)} device(s), engine {B.name}):", file=file)
    for name, s in stats.items():
        print(f"  {name} ({s['device']}): {s['operations']['total']} op(s)", file=file)
    shown = ", ".join(f"{k} {v}" for k, v in sorted(collected.items())) or "none"
    print(f"  collectives: {shown}", file=file)
