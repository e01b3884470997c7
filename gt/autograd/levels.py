"""The levels of ``gt.func``'s derivative transforms, as torch's functorch counts them: each call of
``grad``, ``vjp``, ``jvp``, ``jacrev``... runs its function at a new level. Inside it, a tensor may
be changed in place where the function received it (an argument, or a view of one) or made it (at
this level or a deeper one); any other tensor was captured from outside (a closure, a global, a
module's buffer, an outer transform's tensor), and torch refuses to change it: its wrapper of a
captured tensor is immutable, so the change could not carry the transform's derivatives. gt runs
the function eagerly on its tape, where such a change would go through unchecked, so it keeps
torch's rule: ``mode.level`` is the innermost level's serial (0 outside every transform), tensors
made while it is set are stamped with it (gt/tensor/core.py, through ``mode.tags``), and the
in-place paths ask ``gt.tensor.inplace_grad.refuse_captured``. As torch's, ``Tensor.requires_grad_()``
is refused inside a transform's function (``refuse_requires_grad``).
"""

import itertools
import sys

from gt.autograd.grad_mode import mode, no_grad
from gt.backend import B

_serials = itertools.count(1)     # a later level has a larger serial: made-before is stamped-lower


class transform_level:
    """Context manager: the function of one transform call runs inside it, at a new level whose
    inputs are ``inputs`` (the tensors the function is called with). ``refusal``: the error's
    text for a captured tensor changed there (None: torch's, of the derivative transforms).
    ``layer``: whether torch runs the function in a functorch layer (every transform but
    ``linearize``, which traces it under forward AD), where ``requires_grad_()`` is refused."""

    def __init__(self, inputs, refusal=None, layer=True):
        self.inputs = list(inputs)     # held, so that their ids stay theirs while the level lasts
        self.refusal = refusal
        self.layer = layer

    def __enter__(self):
        m = mode
        self.saved = (m.level, m.level_inputs, m.level_refusal, m.layers)
        m.level, m.level_inputs, m.level_refusal = next(_serials), {id(t) for t in self.inputs}, self.refusal
        m.layers += self.layer
        m.tags = True
        return self

    def __exit__(self, *exc):
        m = mode
        m.level, m.level_inputs, m.level_refusal, m.layers = self.saved
        m.tags = m.inference or bool(m.level)
        return False


REQUIRES_GRAD_REFUSAL = (
    "You are attempting to call Tensor.requires_grad_() (or perhaps using torch.autograd.functional.* APIs) inside "
    "of a function being transformed by a functorch transform. This is unsupported, please attempt to use the "
    "functorch transforms (e.g. grad, vjp, jacrev, jacfwd, hessian) or call requires_grad_() outside of a function "
    "being transformed instead.")

# gt's modules whose calls of requires_grad_() are those of torch's Python code, refused in a transform as a user's
_AS_USER = frozenset(("gt.tensor.autograd_functional", "gt.nn.module", "gt.distributions.exp_family"))


def refuse_requires_grad():
    """torch's RuntimeError for ``Tensor.requires_grad_()`` called inside the function of a transform
    (``mode.layers`` set; asked by the method). gt's own code calls the method where torch's C++
    sets the flag without it (factories' ``requires_grad=``, ``Parameter``, the ``requires_grad``
    setter, the transforms' own leaves): a call from gt passes, but from the modules of
    ``_AS_USER`` (``autograd.functional``, ``Module.requires_grad_``), as torch's."""
    module = sys._getframe(2).f_globals.get("__name__", "")
    if module in _AS_USER or not (module == "gt" or module.startswith("gt.")):
        raise RuntimeError(REQUIRES_GRAD_REFUSAL)


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


# the captured tensors changed by the function of each ``vmap`` call running (gt/func/vmap.py), innermost
# last: (a serial taken as the call starts: tensors stamped lower are captured for it, {id: (tensor, its
# values before the call's first change)})
vmap_changes = []


def watch_changes():
    """Open ``vmap_changes``'s entry of a ``vmap`` call about to run its function (closed by the
    caller's ``vmap_changes.pop()``)."""
    vmap_changes.append((next(_serials), {}))


def made_once(t, values):
    """Whether ``vmap``, which runs its function once per batch element, can change the captured
    tensor ``t`` by ``values`` (not made inside the function) once, as torch's does: ``t``'s values
    are kept at the first change in each ``vmap`` call it is captured for (nested ones too) and put
    back before each later element's run (``undo_changes``), so each element reads and changes the
    same values. Not where the change goes on the tape (``t`` or ``values`` require grad): each
    element's would add to the gradient."""
    if not vmap_changes or t._requires_grad or any(getattr(v, "_requires_grad", False) for v in values):
        return False
    stamp, before = getattr(t, "_level", 0), None
    for start, changes in vmap_changes:
        if stamp < start and id(t) not in changes:
            before = t.detach().clone() if before is None else before
            changes[id(t)] = (t, before)
    return True


def undo_changes(changes):
    """The captured tensors ``made_once`` kept, back to their values before the first change (a
    put-back of the transform's own, not a change of its function's: no level checks it)."""
    m = mode
    level, m.level = m.level, 0
    try:
        with no_grad():
            for t, before in changes.values():
                t.copy_(before)
    finally:
        m.level = level
