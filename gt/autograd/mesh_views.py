"""Unrecorded views over the mesh: views of a sharded tensor taken while nothing is recorded (of a
tensor that requires no grad, or under ``no_grad``), kept as ``function.note_view`` keeps them on
one device, so that a later recorded in-place change of the tensor they view gives them its new
history, as torch rebases a view's ``grad_fn`` on its base's (gt/autograd/views.py, ``wake``).

On one device the op that made the view is kept unrecorded and recorded later on its inputs; over
the mesh the op ran per device (gt/tensor/dispatch.py), so what is kept is the op's class and
arguments, and following the change runs it again, recorded, on the changed tensor (its blocks
are the view's memory: the result is the same view). A value that requires grad written into
such a view first records its chain of view ops (``attach``), as on one device. Only views of
sharded tensors pay this (``levels.placed_view`` calls ``note``, about a microsecond a view); an
ordinary step on one device never comes here.
"""

from gt.autograd import view_table

# id(base) -> [weak reference to the base, weak references to the views taken of it in grad mode...]
views_of = {}
# weak references to the views over the mesh taken under no_grad (found by memory, as on one device)
no_grad_views = []


def note(view, cls, args, kwargs, no_grad):
    """Keep ``view``, made unrecorded over the mesh by the view op ``cls`` from ``args`` (its base
    first) and ``kwargs``, as a view of ``args[0]``; ``no_grad``: taken under ``no_grad``. The base
    is held (``view._mesh_base``), as torch's ``view._base``."""
    base = args[0]
    view._mesh_base = (base, cls, args[1:], kwargs, no_grad)     # (``apply``'s own tuple and dict)
    view_table.remember(views_of, no_grad_views, base, view, no_grad)


def taken_of(t):
    """The views kept by ``note`` of ``t`` in grad mode that are still unrecorded (forgotten here:
    each is followed once)."""
    refs = views_of.pop(id(t), None)
    if refs is None or refs[0]() is not t:
        return []
    return [v for v in (ref() for ref in refs[1:])
            if v is not None and v._ctx is None and v._mesh_base is not None and v._mesh_base[0] is t]


def link(t):
    """``t``'s base, where ``t`` is a view kept by ``note`` that is still unrecorded; else None."""
    kept = getattr(t, "_mesh_base", None) if t._ctx is None else None
    return None if kept is None else kept[0]


def taken_under_no_grad(t):
    """Whether ``t`` or an unrecorded view above it over the mesh was taken under ``no_grad``."""
    while t._ctx is None and (kept := getattr(t, "_mesh_base", None)) is not None:
        if kept[4]:
            return True
        t = kept[0]
    return False


def unrecorded_chain(t):
    """``[(view, the tensor it views, op class), ...]`` from ``t`` up through the unrecorded views over
    the mesh kept by ``note`` (empty where ``t`` is none)."""
    chain = []
    while t._ctx is None and (kept := getattr(t, "_mesh_base", None)) is not None:
        chain.append((t, kept[0], kept[1]))
        t = kept[0]
    return chain


def attach(chain):
    """Record the view ops of ``chain`` (``unrecorded_chain``'s, of a view into which a value that
    requires grad is written) from the top down on the tensors they view, as gt/autograd/views.py's
    ``attach`` does on one device: the write then goes through recorded views over the mesh
    (gt/tensor/mesh_view_write.py), which give the tensor at the top the change as its history and
    make each view its op again on the changed tensor. The nodes recorded here only say which op
    made each view (that write replaces them); a tensor viewed counts as requiring grad while its
    view's op runs, so that the op is recorded, the view itself not yet."""
    for view, base, cls in reversed(chain):
        _, _, rest, kwargs, _ = view._mesh_base
        flag = base._requires_grad
        base._requires_grad = True
        try:
            view._ctx = cls.apply(base, *rest, **kwargs)._ctx
        finally:
            base._requires_grad = flag
