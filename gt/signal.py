"""Named scopes that choose where tensors lie on the mesh: the public gt's signal API.

    gt.load_config("sharding.yaml")          # features: {shard: {axis: 1}}   (or GT_CONFIG=...)
    with gt.signal.context("features"):
        x = gt.randn(128, 64)                # made as Shard(1) over the mesh
    y = gt.signal.tensor(x, "features")      # an existing tensor laid out by the hint (differentiable)

What a hint does here: ``shard: {axis: k}`` makes the data tensors created in the scope
(``gt.randn``, ``gt.from_numpy``, ``gt.zeros``, ...) ``Shard(k)``; ``replicated: true`` makes them
whole on every device. Ops in the scope place their results by gt's propagation rules, as
everywhere. Tensors that require grad (parameters) stay replicated, and a tensor with no axis k
keeps its default placement. One process drives every device here, so the hints that steer the
public gt's worker processes (``workers``, ``backward``, ``compile``) have no effect;
``GT_VERBOSE=1`` says so, once. A name with no hint is a scope that changes nothing.

The stack of open scopes lives in the tensor layer (gt/tensor/hints.py), which creates tensors;
this module is the public face that opens and closes them.
"""

import contextlib
import sys

from gt import config
from gt.tensor import Tensor, hints
from gt.tensor.hints import placement_hint  # noqa: F401  (public: gt.signal.placement_hint)

_said_ignored = False


class SignalScope:
    """One active scope: its name and the name its backward pass would use (kept, no effect)."""

    __slots__ = ("name", "backward_name", "hint")

    def __init__(self, name, backward_name=None):
        self.name, self.backward_name = name, backward_name
        cfg = config.get_signal_config(name)
        self.hint = None if cfg is None else cfg.shard
        _note_ignored(name, ([] if cfg is None else cfg.ignored()) + (["backward"] if backward_name else []))

    def __repr__(self):
        extra = f", backward={self.backward_name!r}" if self.backward_name else ""
        return f"SignalScope({self.name!r}{extra})"


def _note_ignored(name, ignored):
    global _said_ignored
    if ignored and not _said_ignored and config.verbose():
        _said_ignored = True
        print(f"gt: signal {name!r}: hint(s) {', '.join(ignored)} have no effect here (one process drives every "
              "device of the mesh; hints choose only where tensors lie); said once", file=sys.stderr)


def _check_name(name, fn):
    if not isinstance(name, str) or not name:
        raise TypeError(f"gt.signal.{fn}: the signal name must be a non-empty str, got {name!r}")


def current_signal():
    """The name of the innermost active scope, or None."""
    stack = hints.scopes()
    return stack[-1].name if stack else None


def current_backward_signal():
    stack = hints.scopes()
    return stack[-1].backward_name if stack else None


@contextlib.contextmanager
def context(name, backward=None):
    """``with gt.signal.context(name):`` data tensors made inside lie as ``name``'s hint says."""
    enter(name, backward)
    try:
        yield
    finally:
        hints.scopes().pop()


signal = context   # the public gt's older name: gt.signal.signal(name)


def enter(name, backward=None):
    """Open the scope ``name`` without a ``with`` block; close it with ``exit(name)``."""
    _check_name(name, "enter")
    hints.scopes().append(SignalScope(name, backward))


def exit(name):  # noqa: A001  (the public gt's name)
    """Close the innermost scope, which must be ``name``."""
    stack = hints.scopes()
    if not stack:
        raise RuntimeError(f"gt.signal.exit({name!r}): no signal scope is open")
    if stack[-1].name != name:
        raise RuntimeError(f"gt.signal.exit({name!r}): the innermost open scope is {stack[-1].name!r}; "
                           "close scopes in the reverse order of opening them")
    stack.pop()


def tensor(t, name, backward_name=None):
    """``t`` laid out as the hint of ``name`` says (``t.shard(k)`` or ``t.replicate()``, both
    differentiable: gradients flow back to ``t``); ``t`` itself when no hint names a layout."""
    _check_name(name, "tensor")
    if not isinstance(t, Tensor):
        raise TypeError(f"gt.signal.tensor: expected a gt.Tensor, got {type(t).__name__}")
    cfg = config.get_signal_config(name)
    _note_ignored(name, ([] if cfg is None else cfg.ignored()) + (["backward"] if backward_name else []))
    if cfg is None or cfg.shard is None:
        return t
    return t.replicate() if cfg.shard.replicated else t.shard(cfg.shard.axis)
