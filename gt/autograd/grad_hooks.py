"""torch's tensor hooks: ``t.register_hook(hook)`` runs ``hook(grad)`` when a backward has the
gradient with respect to ``t``, and a tensor it returns takes the gradient's place.

When they run (gt/autograd/backward.py, as torch): on a computed tensor, once every use of it has
sent its part of the gradient (the walk visits a tensor after all the ops that read it) and before
that gradient flows into the op that made the tensor; what ``retain_grad()`` keeps is the gradient
after the hooks, whatever the order they were registered in. On a leaf, before the gradient is
added to ``.grad`` (the hooks' result is what is added), and so before the leaf's
post-accumulate-grad hooks (gt/autograd/hooks.py). Several hooks run in the order they were
registered, each on the result of the one before. A hook runs with recording off (as torch's
backward without ``create_graph``) and sees a gt tensor of the tensor's shape: on a mesh, its
gradient as it lies there (sharded, or partial: summed when read).

Registered hooks are kept by ``id(tensor)`` (a tensor's ``==`` is elementwise, so it cannot key a
``WeakKeyDictionary``), with a weak reference that drops them with the tensor. A backward with no
hooks anywhere pays one test per tensor it visits: is the (empty) table empty.
"""

import weakref

from gt.autograd import function
from gt.autograd.deferred import materialized
from gt.autograd.sparse_grad import SparseGrad
from gt.sharding.layout import Placed

# id(tensor) -> its _Entry
_hooks = {}


class _Entry:
    """One tensor's hooks, in registration order, and the key they are kept under."""

    __slots__ = ("key", "ref", "hooks")

    def __init__(self, tensor, hooks):
        self.hooks = hooks
        self.attach(tensor)

    def attach(self, tensor):
        self.key = key = id(tensor)
        # the table and function bound now: at interpreter exit a module's globals may be gone
        # before the last tensors (a callback reading them printed "Exception ignored")
        self.ref = weakref.ref(tensor, lambda ref, key=key, drop=_drop: drop(key, ref))
        _hooks[key] = self


def _drop(key, ref, table=_hooks):
    entry = table.get(key)
    if entry is not None and entry.ref is ref:
        del table[key]


class RemovableHandle:
    """What ``Tensor.register_hook`` returns: ``handle.remove()`` unregisters the hook (also on
    leaving ``with handle:``); removing twice does nothing."""

    def __init__(self, entry, hook):
        self._entry, self._hook = entry, hook

    def remove(self):
        entry = self._entry
        for i, h in enumerate(entry.hooks):
            if h is self._hook:   # `is`: the same callable registered twice is two registrations
                del entry.hooks[i]
                break
        if not entry.hooks:
            _drop(entry.key, entry.ref)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()
        return False


def register_hook(tensor, hook):
    """Run ``hook(grad)`` whenever a backward computes the gradient with respect to ``tensor``
    (see the module docstring); returns a ``RemovableHandle``."""
    if not callable(hook):
        raise TypeError(f"register_hook expects a callable, got {hook!r}")
    if not tensor.requires_grad:
        raise RuntimeError("cannot register a hook on a tensor that doesn't require gradient")
    entry = _hooks.get(id(tensor))
    if entry is None or entry.ref() is not tensor:
        entry = _Entry(tensor, [])
    entry.hooks.append(hook)
    return RemovableHandle(entry, hook)


def hooks_of(tensor):
    """The hooks registered on ``tensor``, in the order they run (empty if none)."""
    entry = _hooks.get(id(tensor))
    return list(entry.hooks) if entry is not None and entry.ref() is tensor else []


def table():
    """The registry the walk consults (``id(tensor) in table()``); empty when no hook exists."""
    return _hooks


def move(tensor, to):
    """Hand ``tensor``'s hooks to ``to``: an in-place change makes ``to`` stand for the values the
    hooks were registered on (gt/autograd/rebind.py), and torch's hooks stay with those."""
    entry = _hooks.get(id(tensor))
    if entry is not None and entry.ref() is tensor:
        del _hooks[entry.key]
        entry.attach(to)


def run(tensor, grad):
    """``grad`` (an engine array, a ``Placed``, a gradient kept as factors or a ``SparseGrad``)
    after ``tensor``'s hooks, which see a gt tensor (``applied``)."""
    hooks = list(_hooks[id(tensor)].hooks)
    if type(grad) is SparseGrad:
        with function.no_grad():
            value = applied(hooks, grad.tensor)
        return grad if value is grad.tensor else SparseGrad(value, grad.seq)
    value = materialized(grad)
    if isinstance(value, Placed) and value.owned:
        # reading a partial value may sum into its first share when that is a buffer nobody else
        # holds; the hooks see it (and may keep it), so from here on it is shared
        value = Placed(value.shards, value.placement, value.shape, owned=False)
    g = function.Tensor._from_value(value)
    with function.no_grad():
        out = applied(hooks, g)
    if out is not g:
        value = out._value
        if isinstance(value, Placed) and value.owned:   # the hook's result, which it may keep as well
            value = Placed(value.shards, value.placement, value.shape, owned=False)
    return value


def applied(hooks, g):
    """``g`` (a gt tensor: dense or sparse) after the tensor ``hooks``, in order, each seeing the
    result of the one before and returning None or a replacement, checked as torch checks one
    (its layout and dtype, then its shape). Every walk and the folds of sparse tensors'
    gradients run hooks through here; the caller chooses whether they are recorded."""
    for hook in hooks:
        out = hook(g)
        if out is None:
            continue
        if not isinstance(out, function.Tensor):
            raise TypeError(f"expected a tensor or None, but hook {_name(hook)} returned {type(out).__name__!r}")
        if out.dtype != g.dtype or out.layout != g.layout:
            raise RuntimeError(f"hook {_name(hook)} has changed the type of value (was {_kind(g)} got {_kind(out)})")
        if out.shape != g.shape:
            raise RuntimeError(f"hook {_name(hook)} has changed the size of value (was {g.shape}, got {out.shape})")
        g = out
    return g


def _kind(t):
    layout = t.layout.name
    return repr(t.dtype) if layout == "strided" else f"{t.dtype!r} ({layout})"


def _name(hook):
    return repr(getattr(hook, "__name__", type(hook).__name__))
