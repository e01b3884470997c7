"""Views that record nothing (taken of a tensor that does not require grad, or under ``no_grad``),
followed as torch's views are when a value that requires grad is later written in place into the
tensor they view, or into them: torch rebases such a view's ``grad_fn`` on its base's new history.

``Function.apply`` keeps (``function.note_view``), on each such view, ``_view = (base, op, args,
under_no_grad)``: the tensor it views (held, as torch's ``view._base``) and the unrecorded op that
made it; and weak references to the views of each base (``function.views_of``; those taken under
``no_grad`` are found by memory, ``function.no_grad_views``). When a recorded in-place change
gives a tensor its new history (gt/tensor/inplace_grad.py calls ``wake``), each of its views taken
in grad mode becomes its op recorded on the changed tensor, stamped after the change (so it reads
the new values, gt/autograd/rebind.py), and the views of those follow in turn. A view taken under
``no_grad`` is refused, as torch refuses it: its in-place change in grad mode at once
(``refuse_write``), and after a recorded change of its memory where it is differentiated (torch:
where it is used). A write into such a view (``base[1:].copy_(w)``) first records the chain of
view ops up to the base (``attach``), so that it becomes a write through recorded views: the base
gets the change (torch's ``CopySlices``). Over the mesh such views are kept by
gt/autograd/mesh_views.py (the op's class and arguments: it ran per device) and woken the same way,
their op run again, recorded, on the changed tensor; a write into one first records its chain
(``mesh_views.attach``, asked by gt/tensor/mesh_alias_write.py). Nothing here runs while no such
view is written or woken.
"""

from gt.autograd import function, levels, mesh_views
from gt.backend import B

NO_GRAD_WRITE = (
    "A view was created in no_grad mode and is being modified inplace with grad mode enabled. Given that this use "
    "case is ambiguous and error-prone, it is forbidden. You can clarify your code by moving both the view and the "
    "inplace either both inside the no_grad block (if you don't want the inplace to be tracked) or both outside (if "
    "you want the inplace to be tracked).")
NO_GRAD_BASE = (
    "A view was created in no_grad mode and its base or another view of its base has been modified inplace with "
    "grad mode enabled. Given that this use case is ambiguous and error-prone, it is forbidden. You can clarify your "
    "code by moving both the view and the inplace either both inside the no_grad block (if you don't want the "
    "inplace to be tracked) or both outside (if you want the inplace to be tracked).")

# gt/tensor/mesh_row_follow.py's ``follow`` while a row copy over the mesh waits for its new history, else None
rows_follow = None


def _record(view, ctx, args):
    """``view``'s op recorded now, on ``args`` (its base first)."""
    ctx.inputs = args
    ctx.needs_input_grad = (True,) + (False,) * (len(args) - 1)
    ctx.released = False
    ctx.out_shape = view.shape
    view._ctx = ctx
    function.put_on_tape(ctx, view)


def wake(*changed):
    """Give the views of each tensor ``changed`` kept by ``note_view`` (over the mesh:
    ``mesh_views.note``) its new history, after a recorded in-place change of those tensors (a
    write through a chain of views changes each link; see the module docstring)."""
    if rows_follow is not None:
        rows_follow()
    for t in changed:
        _follow(t, False)
    if mesh_views.no_grad_views:
        _refuse_mesh(changed)
    if not function.no_grad_views:
        return
    # one scan of the views taken under no_grad for the whole chain (not one per link)
    owners = {id(o): o for o in (B.memory_owner(t._array) for t in changed if t._placed is None)}  # held: ids stay
    if not owners:
        return
    live = function.no_grad_views[:] = [ref for ref in function.no_grad_views if ref() is not None]
    for ref in live:
        v = ref()
        if v is None or v._ctx is not None:
            continue
        if id(B.memory_owner(v._array)) in owners and _root(v)._requires_grad:
            _refuse(v)


def _follow(t, refused):
    """``wake`` for the views taken of ``t`` in grad mode; ``refused``: ``t`` is a view taken under
    ``no_grad`` (so are its views, as torch's)."""
    if mesh_views.views_of:
        for v in mesh_views.taken_of(t):
            if refused:
                _refuse(v)
            elif _record_mesh(v):
                _follow(v, False)
    refs = function.views_of.pop(id(t), None)
    if refs is None or refs[0]() is not t:
        return
    for ref in refs[1:]:
        v = ref()
        if v is None or v._ctx is not None or v._view[0] is not t:
            continue
        if refused:
            _refuse(v)
        else:
            _, ctx, args, _ = v._view
            _record(v, ctx, args)
            v._requires_grad = True
            _follow(v, False)


def _record_mesh(v):
    """``v``, a view over the mesh kept by ``mesh_views.note``, becomes its view op recorded again on
    the changed tensor it views (the same blocks: the same view); whether it was recorded."""
    base, cls, rest, kwargs, _ = v._mesh_base
    hook, function.dual_hook = function.dual_hook, None     # the view of the values, not forward AD's
    try:
        ctx = cls.apply(base, *rest, **kwargs)._ctx
    finally:
        function.dual_hook = hook
    if ctx is None:
        return False
    v._ctx, v._requires_grad = ctx, True
    return True


def _refuse_mesh(changed):
    """``wake``'s refusal of the views over the mesh taken under ``no_grad`` (or views of those) whose
    memory a recorded in-place change wrote, found by memory as on one device."""
    owners = {id(o): o for o in (B.memory_owner(a) for t in changed for a in levels.arrays(t))}    # held: ids stay
    live = mesh_views.no_grad_views[:] = [ref for ref in mesh_views.no_grad_views if ref() is not None]
    for ref in live:
        v = ref()
        if v is None or v._ctx is not None:
            continue
        if any(id(B.memory_owner(a)) in owners for a in levels.arrays(v)) and _root(v)._requires_grad:
            _refuse(v)


def _refuse(v):
    """``v``, a view taken under ``no_grad`` (or a view of one), gets a history that refuses to be
    differentiated, as torch's."""
    _record(v, NoGradView(), ())
    v._requires_grad = True
    _follow(v, True)


def _root(t):
    """The tensor that ``t`` and the unrecorded views above it view."""
    while t._ctx is None and (up := _up(t)) is not None:
        t = up
    return t


def _up(t):
    """The tensor that ``t``, an unrecorded view (on one device or over the mesh), views; else None."""
    link = getattr(t, "_view", None)
    return link[0] if link is not None else mesh_views.link(t)


def attach(t):
    """Record the view ops from ``t`` (a view kept by ``note_view``, into which a value that requires
    grad is written) up to the tensor they view, which requires no grad yet: ``t`` is then a
    recorded view that the write goes through. Returns that tensor."""
    chain, q = [], t
    while q._ctx is None and (link := getattr(q, "_view", None)) is not None:
        chain.append((q, link))
        q = link[0]
    for view, (_, ctx, args, _) in reversed(chain):     # from the top down: each numbered after what it views
        _record(view, ctx, args)
    return q


def refuse_write(t, with_grad):
    """torch's error for an in-place change, in grad mode, of a view taken under ``no_grad`` (or of
    a view of one) where the change or the tensor viewed requires grad; ``with_grad``: a value
    written requires grad. (One already refused, a ``NoGradView``, is gt/tensor/inplace_grad.py's
    ``records``' to refuse.)"""
    q, taken_under_no_grad = t, False
    while q._ctx is None and (link := getattr(q, "_view", None)) is not None:
        taken_under_no_grad = taken_under_no_grad or link[3]
        q = link[0]
    if taken_under_no_grad and (with_grad or q._requires_grad):
        raise RuntimeError(NO_GRAD_WRITE)


class NoGradView(function.Function):
    """The history of a view taken under ``no_grad`` after its base was changed in place in grad
    mode: torch refuses to differentiate through it, and so does this node when walked."""

    def backward(self, g):
        raise RuntimeError(NO_GRAD_BASE)

    backward_graph = backward
