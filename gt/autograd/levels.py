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
is refused inside a transform's function (``REQUIRES_GRAD_REFUSAL``, while ``mode.layers`` is set);
gt's own code sets the flag of the leaves it makes through ``Tensor._set_requires_grad``, as torch's
C++ does without the method (gt/tensor/grad_methods.py).
"""

import itertools

from gt.autograd import inference_saved, mesh_views
from gt.autograd.grad_mode import mode, no_grad
from gt.backend import B

_serials = itertools.count(1)     # a later level has a larger serial: made-before is stamped-lower
# whether a tensor was ever made under a no_grad inside a forward transform (``tag``): until then the
# reverse transforms' walks skip the search for such tensors (gt/func/constants.py)
_forward_only_made = [False]


class transform_level:
    """Context manager: the function of one transform call runs inside it, at a new level whose
    inputs are ``inputs`` (the tensors the function is called with). ``refusal``: the error's
    text for a captured tensor changed there (None: torch's, of the derivative transforms).
    ``layer``: whether torch runs the function in a functorch layer (every transform but
    ``linearize``, which traces it under forward AD), where ``requires_grad_()`` is refused.
    ``kind``: "forward" (``jvp``, ``jacfwd``: torch's inputs are dual views) or "linearize".
    ``callers``: {id of an input: the caller's tensor it stands for} (``linearize``: ``caller_of``)."""

    def __init__(self, inputs, refusal=None, layer=True, kind=None, callers=None):
        self.inputs = list(inputs)     # held, so that their ids stay theirs while the level lasts
        self.refusal = refusal
        self.layer = layer
        self.kind = kind
        self.callers = callers

    def __enter__(self):
        m = mode
        self.saved = (m.level, m.level_inputs, m.level_refusal, m.layers, m.derivative, m.level_kind, m.level_callers,
                      m.forwards)
        m.level, m.level_inputs, m.level_refusal = next(_serials), {id(t) for t in self.inputs}, self.refusal
        m.forwards += self.kind is not None
        m.level_kind, m.level_callers = self.kind, self.callers
        if self.refusal is None:     # (a tensor captured for it stays so inside a vmap: torch's check)
            m.derivative = m.level, m.level_inputs
        self.reverse = self.kind is None and self.refusal is None    # (grad, vjp, jacrev)
        if self.reverse:
            inference_saved.reverse_levels.append((m.level, m.level_inputs))
        m.layers += self.layer
        m.tags = True
        return self

    def __exit__(self, *exc):
        m = mode
        (m.level, m.level_inputs, m.level_refusal, m.layers, m.derivative, m.level_kind, m.level_callers,
         m.forwards) = self.saved
        m.tags = m.inference or bool(m.level)
        if self.reverse:
            inference_saved.reverse_levels.pop()
        if not m.level:
            inference_saved.transforms_left()
        return False


REQUIRES_GRAD_REFUSAL = (
    "You are attempting to call Tensor.requires_grad_() (or perhaps using torch.autograd.functional.* APIs) inside "
    "of a function being transformed by a functorch transform. This is unsupported, please attempt to use the "
    "functorch transforms (e.g. grad, vjp, jacrev, jacfwd, hessian) or call requires_grad_() outside of a function "
    "being transformed instead.")


def keeps_flag(t):
    """Whether ``t.requires_grad_(False)`` changes nothing (asked inside a transform's function):
    inside ``linearize``'s, on its input or a tensor made there. torch traces the function under
    forward AD, where those require no grad; gt differentiates them by reverse mode, and turning
    the flag off would cut the tangent (zeros)."""
    m = mode
    return m.level_kind == "linearize" and (id(t) in m.level_inputs or getattr(t, "_level", 0) >= m.level)


def caller_of(t):
    """The caller's tensor that ``t``, an input of ``linearize``'s function, stands for (asked inside
    a transform's function), or None: torch runs that function on the caller's tensors first, so
    ``requires_grad_()`` there sets the caller's flag (gt/tensor/grad_methods.py)."""
    callers = mode.level_callers
    return None if callers is None else callers.get(id(t))


DETACH_VIEW = ("Can't detach views in-place. Use detach() instead. If you are using DistributedDataParallel (DDP) for "
               "training, and gradient_as_bucket_view is set as True, gradients are views of DDP buckets, and hence "
               "detach_() cannot be called on these gradients. To fix this error, please refer to the "
               "Optimizer.zero_grad() function in torch/optim/optimizer.py as the solution.")


def refuse_detach_(t):
    """torch's error for ``detach_()`` of an input of ``jvp``/``jacfwd``/``linearize``'s function
    (asked inside a transform's function): torch's input there is a dual tensor, a view."""
    m = mode
    if m.level_kind is not None and id(t) in m.level_inputs:
        raise RuntimeError(DETACH_VIEW)


def tag(t):
    """Stamp a tensor made while ``mode.tags`` is set: inside ``inference_mode`` (``is_inference()``)
    and at a transform's level (``t._level``: the serial it was made at)."""
    m = mode
    if m.inference:
        inference_saved.note_made(t)
    if m.level:
        t._level = m.level
        if m.record and not m.grad:     # a no_grad inside a forward transform (grad_mode._set_grad)
            t._forward_only = True
            _forward_only_made[0] = True


def inherit(view, base, alias=False):
    """A view made at a level of a tensor captured there is captured too (torch's wrapper of it is
    immutable as its base's): ``view`` takes ``base``'s stamp where the two share memory. Asked
    while ``mode.level`` is set, by the unrecorded view ops (gt/autograd/function.py), ``detach``
    and ``.data`` (``alias``: memory shared by definition, where an engine's ``.data`` alias does
    not show it); returns ``view``."""
    m = mode
    stamp = getattr(base, "_level", 0)
    if stamp < m.level and id(base) not in m.level_inputs and (alias or any(
            a is b or B.is_view_of(a, b) for a in arrays(view) for b in arrays(base))):
        view._level = stamp
    return view


def placed_view(view, cls, args, kwargs):
    """``view``, made over the mesh by the view op ``cls`` of ``args`` (its base first): an inference
    tensor's is one, by the op (over the mesh a row is a copy: by memory it would not be; index
    arrays give copies, ordinary tensors), it is ``inherit``ed inside a transform, and, unrecorded
    where it lies in its base's memory, kept (gt/autograd/mesh_views.py) to follow a recorded
    in-place change of its base, as torch's."""
    base = args[0]
    if inference_saved.made[0] and inference_saved.is_inference(base) and not any(
            B.is_array(p) or isinstance(p, tuple) and any(map(B.is_array, p)) for p in args[1:]):
        inference_saved.mark(view)
    if view._ctx is None and hasattr(base, "_placed") and any(
            a is b or B.is_view_of(a, b) for a in arrays(view) for b in arrays(base)):   # (same shape: b itself)
        mesh_views.note(view, cls, args, kwargs, not mode.record)
    return inherit(view, base) if mode.level else view


def inference_view(view, base):
    """``view``, made by a view op of the inference tensor ``base``, is one where it lies in its
    memory, as torch's (an index array gives a copy: an ordinary tensor)."""
    if any(a is b or B.is_view_of(a, b) for a in arrays(view) for b in arrays(base)):
        inference_saved.mark(view)


def arrays(t):
    p = t._placed
    return (t._array,) if p is None else p.shards


def alias(view, base):
    """``view`` (``detach``'s, ``.data``'s alias of ``base``), ``inherit``ed inside a transform; an
    inference tensor's is one, as torch's."""
    if inference_saved.made[0] and inference_saved.is_inference(base):
        inference_saved.note_alias(view, base)
    return inherit(view, base, True) if mode.level else view


# the captured tensors changed by the function of each ``vmap`` call running (gt/func/vmap.py), innermost
# last: (a serial taken as the call starts: tensors stamped lower are captured for it, {id: _Kept})
vmap_changes = []


def watch_changes():
    """Open ``vmap_changes``'s entry of a ``vmap`` call about to run its function (closed by the
    caller's ``vmap_changes.pop()``)."""
    vmap_changes.append((next(_serials), {}))


class _Kept:
    """A captured tensor ``t`` as it was before a ``vmap`` call's first change of it: its values,
    its arrays (``layout``: an in-place change of shape gives it new ones, views of the same
    memory), their version counters, its ``grad_fn`` and flag; ``after``: the counters once the
    first element that changed it has run (``note_changed``); ``olds``: the tensors standing for
    its recorded versions put back (gt/func/vmap.py), which the ops recorded before read."""
    __slots__ = ("t", "values", "layout", "versions", "ctx", "requires_grad", "epoch", "after", "olds", "checked",
                 "result", "op")

    def __init__(self, t, values, epoch):
        self.t, self.values, self.layout = t, values, (t._array, t._placed)
        self.versions = [B.version_state(a) for a in arrays(t)]
        self.ctx, self.requires_grad, self.epoch, self.after, self.olds = t._ctx, t._requires_grad, epoch, None, []
        self.checked, self.result, self.op = False, None, None


def made_once(t, epoch, made_inside=False, op=None):
    """Let ``vmap``, which runs its function once per batch element, change the captured tensor
    ``t`` once, as torch's does: ``t`` is kept at the first change in each ``vmap`` call it is
    captured for (nested ones too) and put back before each later element's run
    (gt/func/vmap.py), so each element reads and changes the same values and shape, records the
    same change on the tape (a change of a tensor in the graph, or by values that require grad)
    and counts the same versions. ``epoch``: the tape's now (gt/autograd/rebind.py), before the change.
    ``made_inside``: the values were made inside func, batched or not (torch refuses batched ones):
    ``checked``, each element's result must be the first's; ``op``: torch's name of the change."""
    stamp, kept = getattr(t, "_level", 0), None
    for start, changes in vmap_changes:
        if stamp < start and id(t) not in changes:
            if kept is None:
                with no_grad():
                    kept = _Kept(t, t.detach().clone(), epoch)
            changes[id(t)] = kept
        if stamp < start and made_inside and not changes[id(t)].checked:
            changes[id(t)].checked, changes[id(t)].op = True, op


def note_changed(changes):
    """After an element's run: the version counters of the tensors it changed first (and the
    values of those ``checked``); whether every ``checked`` tensor holds the values it held after
    the first element's run."""
    same = True
    for kept in changes.values():
        if kept.after is None:
            kept.after = [B.version_state(a) for a in arrays(kept.t)]
        if kept.checked:
            t = kept.t
            if kept.result is None:
                with no_grad():
                    kept.result = t.detach().clone()
            else:
                same = same and t.shape == kept.result.shape and bool((t.detach() == kept.result).all())
    return same
