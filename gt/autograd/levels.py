"""The levels of ``gt.func``'s derivative transforms, as torch's functorch counts them: each call of
``grad``, ``vjp``, ``jvp``, ``jacrev``... runs its function at a new level. Inside it, a tensor may
be changed in place where the function received it (an argument, or a view of one) or made it (at
this level or a deeper one); any other tensor was captured from outside (a closure, a global, a
module's buffer, an outer transform's tensor), and torch refuses to change it: its wrapper of a
captured tensor is immutable, so the change could not carry the transform's derivatives. gt runs
the function eagerly on its tape, where such a change would go through unchecked, so it keeps
torch's rule: ``mode.level`` is the innermost level's serial (0 outside every transform), tensors
made while it is set are stamped with it (gt/tensor/core.py, through ``mode.tags``), and the
in-place paths ask ``gt.tensor.inplace_grad.refuse_captured``.
"""

import itertools

from gt.autograd.grad_mode import mode
from gt.backend import B

_serials = itertools.count(1)     # a later level has a larger serial: made-before is stamped-lower


class transform_level:
    """Context manager: the function of one transform call runs inside it, at a new level whose
    inputs are ``inputs`` (the tensors the function is called with). ``refusal``: the error's
    text for a captured tensor changed there (None: torch's, of the derivative transforms)."""

    def __init__(self, inputs, refusal=None):
        self.inputs = list(inputs)     # held, so that their ids stay theirs while the level lasts
        self.refusal = refusal

    def __enter__(self):
        m = mode
        self.saved = (m.level, m.level_inputs, m.level_refusal)
        m.level, m.level_inputs, m.level_refusal = next(_serials), {id(t) for t in self.inputs}, self.refusal
        m.tags = True
        return self

    def __exit__(self, *exc):
        m = mode
        m.level, m.level_inputs, m.level_refusal = self.saved
        m.tags = m.inference or bool(m.level)
        return False


def tag(t):
    """Stamp a tensor made while ``mode.tags`` is set: inside ``inference_mode`` (``is_inference()``)
    and at a transform's level (``t._level``: the serial it was made at)."""
    m = mode
    if m.inference:
        t._inference = True
    if m.level:
        t._level = m.level


def inherit(view, base, alias=False):
    """A view made at a level of a tensor captured there is captured too (torch's wrapper of it is
    immutable as its base's): ``view`` takes ``base``'s stamp where the two share memory. Asked
    while ``mode.level`` is set, by the unrecorded view ops (gt/autograd/function.py), ``detach``
    and ``.data`` (``alias``: memory shared by definition, where an engine's ``.data`` alias does
    not show it); returns ``view``."""
    m = mode
    stamp = getattr(base, "_level", 0)
    if stamp < m.level and id(base) not in m.level_inputs and (alias or any(
            a is b or B.is_view_of(a, b) for a in _arrays(view) for b in _arrays(base))):
        view._level = stamp
    return view


def _arrays(t):
    p = t._placed
    return (t._array,) if p is None else p.shards


def alias(view, base):
    """``view`` (``detach``'s, ``.data``'s alias of ``base``), ``inherit``ed inside a transform."""
    return inherit(view, base, True) if mode.level else view
