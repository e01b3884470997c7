"""Saved values changed in place before the backward reads them: an error, as in torch.

An op's backward reads the arrays its forward saved (``Function.save``). If one of them is
changed in place in between (``add_``, ``copy_``, item assignment, an optimizer's ``step()``,
on the tensor or on a view of it), that backward would compute a wrong gradient without a
word. So every array carries a version, the count of in-place changes of its memory, which
views of one array share, as torch's version counters do. The engine keeps it
(``B.bump_version``); ``save`` takes a token of the versions (``B.versions_of``) and the walk
asks, before it runs the backward, whether one moved since (``B.changed_since``), raising
torch's error if so.

What gt does not see is not counted: a write through a numpy array that shares the tensor's
memory (``gt.from_numpy``, ``tensor.numpy()``), as in torch; and the update that plain gradient
descent writes into a weight inside the backward (``in_backward=True``), which comes after
every use of the weight's saved value in that backward.
"""

from gt.backend import B


def saved_changed(exc):
    """Whether ``exc`` is the error below (a saved value changed in place): a RuntimeError as torch's,
    told apart by a mark (``gt.func``'s forward-mode transforms compute through it: gt/func/forward.py)."""
    return getattr(exc, "saved_changed", False)


def check_graph(ctx):
    """``check`` before a ``backward_graph``: also the inputs ``ctx`` kept with ``save_for_graph``."""
    check(ctx)
    kept = getattr(ctx, "graph_saved", None)
    if kept is not None:
        _raise_if_changed(ctx, kept[0], B.changed_since(kept[0], kept[1]), False)


def check(ctx, share=False):
    """Raise if an array ``ctx`` saved was changed in place since ``save``; None otherwise.
    ``share``: ``ctx`` is one device's share of an op run over the mesh (the message says so)."""
    written = getattr(ctx, "written", None)
    if written is not None:    # torch's backward reads the result of an in-place op from the tensor it wrote
        _raise_if_changed(ctx, written[0], B.changed_since(*written), share)
    if getattr(ctx, "saved_versions", ()) is None:    # packed by saved-tensor hooks: what they keep is theirs
        return
    saved = getattr(ctx, "saved", None)
    if not saved:
        return
    _raise_if_changed(ctx, saved, B.changed_since(saved, ctx.saved_versions), share)


def _raise_if_changed(ctx, saved, changed, share):
    if changed is None:
        return
    i, now, then = changed
    value = saved[i]
    whose = ", one device's share of it" if share else ""
    expected = f"; expected version {then} instead" if then is not None else ", changed after the forward saved it"
    exc = RuntimeError(
        f"one of the variables needed for gradient computation has been modified by an inplace operation: "
        f"[{B.dtype_of(value)} tensor of shape {tuple(value.shape)}{whose}], saved by {type(ctx).__name__}Backward, "
        f"is at version {now}{expected}. Hint: it (or a view of it) was changed in place (add_, copy_, item "
        "assignment, an optimizer's step()) after the forward that saved it and before this backward: run the "
        "forward again after the change, or change a copy (tensor.clone())")
    exc.saved_changed = True
    raise exc
