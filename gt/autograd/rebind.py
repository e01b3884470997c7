"""In-place changes of tensors in the graph, as torch records them (a tensor's history "rebased").

``y.add_(1)`` or ``y[0] = z`` on a tensor that requires grad (or with a value that does) is
recorded by the tensor layer (gt/tensor/inplace_grad.py) as an op whose input is ``old``, a new
tensor standing for ``y``'s values before the change (it takes over ``y``'s ``grad_fn``); the
result is written into ``y``'s memory and its op becomes ``y``'s ``grad_fn``. ``y`` stays the
same object: later ops read the new values and send their gradients through the change.

Ops recorded before the change also name ``y`` as an input, but read the values of then: their
gradients belong to ``old``. Each op carries the epoch it was recorded in (``put_on_tape``); a
change starts a new epoch once it is written (``changed``), and before a backward walks an op,
``resolve`` gives it, for each input changed since it was recorded, the version of that input it
read.

Views: an op that read a view of ``y`` (``v = y[1]``) taken before the change, but ran after it,
read the new values through ``v``, as in torch. ``resolve`` then gives it a copy of the view's
ops applied to ``y``'s version of its time (torch regenerates the view's ``grad_fn`` the same
way). What is a view is the tensor layer's to say (``set_view_test``): a tensor sharing memory
with an input of the op that made it. An in-place change of a view itself is recorded there, as
a change of the tensor it is a view of.

Nothing here costs anything while no tensor of the graph was changed in place: the walk calls
``resolve`` only while ``active()``.
"""

import copy
import weakref

from gt.autograd import function

# id(changed tensor) -> [weak reference, [(epoch of the change, weak reference to old), ...] in the
# order of the changes]. Nothing here holds a tensor: an old lives as long as the op of the change
# that reads it (once a backward frees that op, the ops before it are freed too, and nothing can
# walk them again), and a global table that held it would keep whole graphs alive.
_changed = {}
# id(old) -> (weak reference to old, weak reference to the changed tensor, epoch of the change)
_olds = {}
# ``view_base(t)``: the input of t's op that t is a view of, or None (registered by gt/tensor)
_view_base = None


def set_view_test(view_base):
    """Register the tensor layer's ``view_base(tensor) -> tensor or None``."""
    global _view_base
    _view_base = view_base


def view_base(tensor):
    """The tensor that ``tensor`` is a view of in the graph, or None (the tensor layer's answer)."""
    return None if _view_base is None else _view_base(tensor)


def active():
    return bool(_changed)


def changed(tensor, old, epoch):
    """Record that ``tensor`` was changed in place at ``epoch`` (``new_epoch()``, taken once the new
    values are written): ops recorded before it, those that computed the change included, read
    ``old``; ops recorded from then on read the new values."""
    key = id(tensor)
    entry = _changed.get(key)
    if entry is None or entry[0]() is not tensor:
        entry = _changed[key] = [weakref.ref(tensor, lambda _, key=key, table=_changed: table.pop(key, None)), []]
    okey = id(old)
    old_ref = weakref.ref(old, lambda _, key=okey, table=_olds: table.pop(key, None))
    entry[1].append((epoch, old_ref))
    _olds[okey] = (old_ref, entry[0], epoch)


def current_epoch():
    """The epoch now: ops recorded from now on carry it (``version_at`` of it: the values now)."""
    return function._epoch


def version_at(tensor, epoch):
    """The tensor that stands for ``tensor``'s values as an op recorded at ``epoch`` read them."""
    entry = _changed.get(id(tensor))
    if entry is None or entry[0]() is not tensor:
        return tensor
    for when, old_ref in entry[1]:
        old = old_ref()
        if epoch < when and old is not None:
            return old
    return tensor


def resolve(ctx):
    """Give ``ctx`` (an op about to be walked) the versions of its inputs it read (see the module
    docstring), rewriting ``ctx.inputs`` once for all."""
    Tensor = function.Tensor
    epoch = getattr(ctx, "epoch", 0)
    inputs = ctx.inputs
    new = None
    for i, p in enumerate(inputs):
        if not isinstance(p, Tensor):
            continue
        if not p._requires_grad:    # (views of it taken before a change follow it: gt/autograd/views.py)
            continue
        q = version_at(p, epoch)
        if q._ctx is not None:
            q = _reviewed(q, epoch, getattr(ctx, "seq", 0))
        if q is not p:
            if new is None:
                new = list(inputs)
            new[i] = q
    if new is not None:
        ctx.inputs = tuple(new)


def _reviewed(p, epoch, seq):
    """``p``, or, where ``p`` is a view (of a view...) of a tensor taken before a change of that
    tensor that came before ``epoch``, the same view ops applied to that tensor's version at
    ``epoch`` (the change highest up the chain decides: a view of a view that was itself changed
    in place reads the changed one). ``seq``: the number of the op that reads it; the copies are
    numbered just before it, after what they read (the walk's order, gt/autograd/backward.py)."""
    chain, q, target = [], p, None
    while q._ctx is not None and not q._ctx.released:
        base = _view_base(q)
        if base is None:
            break
        chain.append((q, base))
        changed = _stale(base, getattr(q._ctx, "epoch", 0), epoch)
        if changed is not None:
            target, top = changed, len(chain)
        q = base
    if target is None:
        return p   # no change between the views and ``epoch``: their ops made the values read
    chain = chain[:top]
    root = version_at(target, epoch)
    for i, (view, base) in enumerate(reversed(chain)):
        ctx = copy.copy(view._ctx)
        ctx.inputs = tuple(root if x is base else x for x in view._ctx.inputs)
        ctx.epoch, ctx.seq = epoch, seq - 0.5 + 0.4 * i / len(chain)
        root = function.Tensor._from_value(view._value, requires_grad=True)
        root._ctx = ctx
    return root


def _stale(base, since, epoch):
    """The tensor changed in place after a view was taken of ``base`` at ``since`` and before
    ``epoch`` (``base`` itself, or the tensor ``base`` is a former version of), or None."""
    read = version_at(base, since)
    info = _olds.get(id(read))
    if info is None or info[0]() is not read or epoch < info[2]:
        return None
    target = info[1]()
    if target is None:
        raise RuntimeError("a view was taken of a tensor that was then changed in place, and read afterwards; the "
                           "changed tensor is gone, so that gradient has nowhere to go: keep the tensor, or take "
                           "the view after the change")
    return target
