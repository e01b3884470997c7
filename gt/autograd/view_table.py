"""The weak tables of unrecorded views (views taken of a tensor that requires no grad, or under
``no_grad``) that a later recorded in-place change of their base gives its new history, as torch
rebases a view's ``grad_fn``: one table for views of a tensor on one device (gt/autograd/function.py,
``note_view``), one for views over the mesh (gt/autograd/mesh_views.py)."""

import weakref


def remember(table, no_grad_table, base, view, no_grad):
    """Keep a weak reference to ``view``, a view of ``base``: in ``no_grad_table`` (a list) where it
    was taken under ``no_grad`` (found later by memory), else in ``table`` (id(base) -> [weak
    reference to the base, weak references to its views...], the entry gone with the base)."""
    if no_grad:
        _add_ref(no_grad_table, view)
        return
    key = id(base)
    refs = table.get(key)
    if refs is None or refs[0]() is not base:
        refs = table[key] = [weakref.ref(base, lambda _, key=key, table=table: table.pop(key, None))]
    _add_ref(refs, view)


def _add_ref(refs, view):
    """Append a weak reference to ``view`` to ``refs``, first dropping those gone at each power of
    two (amortized O(1); a base's own reference, first, stays while it lives)."""
    n = len(refs)
    if n >= 16 and not n & (n - 1):
        refs[:] = [r for r in refs if r() is not None]
    refs.append(weakref.ref(view))
