"""The open signal scopes of this thread, and the placement hint they give new data tensors.

``gt.signal`` (gt/signal.py, the public API) opens and closes the scopes; tensor creation asks
``placement_hint()`` where a new data tensor goes. A scope is any object with a ``hint``
attribute (a ``ShardConfig``, or None when its name has no layout hint).
"""

import threading

_local = threading.local()


def scopes():
    """The open scopes of this thread, innermost last (the list itself: open and close by
    appending and popping)."""
    stack = getattr(_local, "stack", None)
    if stack is None:
        stack = _local.stack = []
    return stack


def placement_hint():
    """The ``ShardConfig`` of the innermost open scope that has one, or None (the usual case)."""
    stack = getattr(_local, "stack", None)
    if stack:
        for scope in reversed(stack):
            if scope.hint is not None:
                return scope.hint
    return None
