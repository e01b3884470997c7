"""torch's hooks on the recorded graph's nodes: ``grad_fn.register_prehook(hook)`` runs
``hook(grad_outputs)`` before the node's backward, ``grad_fn.register_hook(hook)`` runs
``hook(grad_inputs, grad_outputs)`` after it; either may return replacements (a tuple of the
same length, or None to keep what it got). ``grad_outputs`` is ``(gradient of the node's
output,)``; ``grad_inputs`` has one entry per tensor input (``next_functions``' order), None
where that input gets no gradient. Both walks run them: the plain one (gradients as engine
arrays, handed to hooks as tensors) and the recorded one (``create_graph=True``).
"""

import weakref


class Hooks:
    """A node's hooks, in the order they were registered."""

    __slots__ = ("pre", "post")

    def __init__(self):
        self.pre, self.post = [], []


class RemovableHandle:
    """What ``register_hook``/``register_prehook`` return: ``remove()`` unregisters (twice does
    nothing), also on leaving ``with handle:``."""

    def __init__(self, hooks, hook):
        self._hooks, self._hook = hooks, hook

    def remove(self):
        if self._hook in self._hooks:
            self._hooks.remove(self._hook)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()
        return False


# whether a node hook was ever registered: the walk then runs the nodes in torch's order
# (gt/autograd/backward.py's ``topological_order``)
registered = False
# id(node) -> a weak reference to it, for each node given a hook: the walk asks whether its graph
# holds one with a set operation (a getattr of an unset slot per node raises inside, ~0.2 us)
_nodes = {}


def register(node, hook, pre):
    global registered
    handle = add(node, "_node_hooks", hook, pre)
    registered = True
    key = id(node)
    _nodes[key] = weakref.ref(node, lambda ref, key=key, nodes=_nodes: nodes.get(key) is ref and nodes.pop(key))
    return handle


def table():
    """The nodes given a hook (``id(node) in table()``), while they live."""
    return _nodes


def add(node, attr, hook, pre):
    """``hook`` appended to the ``Hooks`` that ``node`` keeps at ``attr`` (made on first use), as
    a prehook where ``pre``; returns its ``RemovableHandle``."""
    if not callable(hook):
        raise TypeError(f"register_{'pre' if pre else ''}hook expects a callable, got {type(hook).__name__}")
    hooks = getattr(node, attr, None)
    if hooks is None:
        hooks = Hooks()
        setattr(node, attr, hooks)
    chosen = hooks.pre if pre else hooks.post
    chosen.append(hook)
    return RemovableHandle(chosen, hook)


def run_pre(hooks, g, wrap, unwrap):
    """The node's upstream gradient after its prehooks."""
    for hook in list(hooks.pre):
        got = hook((wrap(g),))
        if got is not None:
            g = unwrap(one_each(got, 1, "prehook")[0])
    return g


def run_post(hooks, inputs, pairs, g, wrap, unwrap, tensor_type):
    """``pairs`` (``(input, gradient)`` for the inputs that get one, in input order) after the
    node's hooks, which see one entry per tensor input."""
    if not hooks.post:
        return pairs
    tensors = [a for a in inputs if isinstance(a, tensor_type)]
    given, it = [], iter(pairs)
    pending = next(it, None)
    for a in tensors:
        if pending is not None and pending[0] is a:
            given.append(pending[1])
            pending = next(it, None)
        else:
            given.append(None)
    grad_inputs = tuple(None if x is None else wrap(x) for x in given)
    for hook in list(hooks.post):
        got = hook(grad_inputs, (wrap(g),))
        if got is not None:
            grad_inputs = one_each(got, len(tensors), "hook")
    return [(a, unwrap(x)) for a, x in zip(tensors, grad_inputs)
            if x is not None and getattr(a, "requires_grad", False)]


def one_each(got, n, kind):
    """A hook's replacement gradients as a tuple of ``n`` (torch's error for another count)."""
    got = tuple(got) if isinstance(got, (tuple, list)) else (got,)
    if len(got) != n:
        raise RuntimeError(f"a node's {kind} returned {len(got)} gradients where the node has {n}")
    return got
