"""torch's forward-mode AD API (``torch.autograd.forward_ad``): ``dual_level``, ``enter_dual_level``,
``exit_dual_level``, ``make_dual``, ``unpack_dual``, ``UnpackedDualTensor``.

    >>> with gt.autograd.forward_ad.dual_level():
    ...     y, jvp = fwAD.unpack_dual(f(fwAD.make_dual(primal, tangent)))   # jvp = J_f(primal) @ tangent

How tangents are computed (gt's choice; torch has a forward formula per op): eagerly, per op.
While a level is entered, ``Function.apply`` hands each op that reads a dual tensor to ``_dual_op``
(otherwise it pays one global read). The op runs once, on stand-ins (new leaves sharing the inputs'
memory), and its output's tangent comes from the double-vjp trick on that op alone: the op's
recorded gradient ``g_i(u) = J_i^T u`` (its ``backward_graph``, which ``create_graph=True`` uses)
is linear in a free cotangent ``u``, so ``d/du sum_i <g_i(u), t_i> = sum_i J_i t_i``. An op with
a closed form (its ``tangent``: mul, matmul, conv, conv_transpose, eigh, svd, qr, lu, lu_solve;
pinv: torch's formula) gives it, unless tangents are recorded for reverse mode; one whose
gradient's gradient gt does not record gives its tangent one output element at a time
(gt/autograd/forward_rows.py: most complex ops). Cost per op with a dual input: its
forward once, plus one recorded backward of the op and one backward of that (a few times the op
alone); the graph walked is the op's own, so it does not grow with the program;
``unpack_dual`` is O(1) and nothing is recomputed or cached beyond the tangents. A lazy
alternative (one double-vjp over the program at ``unpack_dual``) would need the program recorded
also under ``no_grad`` and for inputs that require no grad, which gt's tape does not do. View ops
are linear: a view's tangent is the same view of its base's, so an in-place change through a view
changes the base's tangent, as torch's.

As torch's: an op's primal result is what it would be without forward AD (a tangent gives no
``requires_grad``); tangents flow under ``no_grad``; integer and bool results have none; tangents
are forgotten when the level exits; one level at a time; a torch-style custom ``Function`` needs a
``jvp`` (``ctx.save_for_forward``). With reverse mode: results stay connected to their primals'
graphs, and in grad mode tangents are recorded as functions of primals and tangents that require
grad (gradients of jvps); gradients of dual tensors carry tangents (H v), also without ``create_graph``.
In-place changes in grad mode update the tangents of the tensor, of what it views and of its
views. Differences: in-place changes under ``no_grad`` change values only; with tangents recorded
for reverse mode, an in-place change of a tensor that is no view gives it a new tangent object;
a tangent requires grad only where it depends on a tensor that does (torch's sometimes does with
zero gradients); ops on tensors sharded over the mesh run gathered on the home device (by a
recorded gather where they require grad in grad mode), but ``make_dual``/``unpack_dual`` of a sharded
tensor and indexing/reshape/permute/expand of one dual give views there (gt/autograd/forward_mesh.py,
gt/tensor/mesh_alias_write.py; ``as_strided``/``unfold`` are copies, and a change of the memory they were
copied from is refused while they live: gt/autograd/forward_copies.py); complex
tangents (torch's convention) come from the closed forms or one output element at a time, and are
refused where recorded for reverse mode (gt records no complex gradient of a gradient).
"""

import weakref
from typing import NamedTuple, Optional

from gt.autograd import function
from gt.autograd import gradients as _gradients
from gt.autograd import forward_copies, forward_mesh
from gt.autograd.forward_rows import by_rows as _by_rows
from gt.autograd.gradients import grad as _grad
from gt.autograd.grad_mode import enable_grad, is_grad_enabled, mode, no_grad
from gt.backend import B

__all__ = ["UnpackedDualTensor", "enter_dual_level", "exit_dual_level", "make_dual", "unpack_dual", "dual_level"]

_current_level = -1
# id(tensor) -> (weak reference to it, its tangent at the current level or _NONE: none, on purpose;
# derived: a view's tangent taken from its base's, a cache)
_tangents = {}
_NONE = object()


class UnpackedDualTensor(NamedTuple):
    """What ``unpack_dual`` returns: the primal and the tangent (None when the tensor has none)."""
    primal: object
    tangent: Optional[object]


def enter_dual_level():
    """Enter a new forward grad level (only one at a time, as torch's); returns its number."""
    global _current_level
    if _current_level >= 0:
        raise RuntimeError("Nested forward mode AD is not supported at the moment")
    _current_level = 0
    function.dual_hook, _gradients.dual_detach = _on_op, detached
    return _current_level


def exit_dual_level(*, level=None):
    """Exit the forward grad level: every tangent of that level is forgotten."""
    global _current_level
    if level is None:
        level = _current_level
    if level < 0:
        raise RuntimeError("Dual level must be a positive number.")
    if level != _current_level:
        raise RuntimeError("Trying to exit a forward AD level that was not the last one that was created. This is "
                           "not supported.")
    _tangents.clear()
    forward_copies.kept.clear()
    function.dual_hook = _gradients.dual_detach = None
    _current_level = level - 1


class dual_level:
    """Context manager (and decorator) for forward AD: ``with dual_level(): ...`` enters a level and
    exits it (forgetting its tangents) on the way out. Returns the level's number."""

    def __enter__(self):
        return enter_dual_level()

    def __exit__(self, exc_type, exc_value, traceback):
        exit_dual_level()

    def __call__(self, fn):
        def wrapper(*args, **kwargs):
            with dual_level():
                return fn(*args, **kwargs)
        wrapper.__wrapped__, wrapper.__name__, wrapper.__doc__ = fn, getattr(fn, "__name__", "fn"), fn.__doc__
        return wrapper


def _check_level(level):
    level = _current_level if level is None else level
    if level < 0:
        raise RuntimeError("Trying to create a dual Tensor for forward AD but no level exists, make sure to "
                           "enter_dual_level() first.")
    if level != _current_level:
        raise RuntimeError(f"Invalid level {level}: the only forward AD level entered is {_current_level}.")


def make_dual(tensor, tangent, *, level=None):
    """A new tensor with ``tensor``'s values (sharing its memory, connected to its graph when it
    requires grad) carrying ``tangent`` (kept as it is) as its forward gradient."""
    _check_level(level)
    for what, t in (("primal", tensor), ("tangent", tangent)):
        if not isinstance(t, function.Tensor):
            raise TypeError(f"make_dual(): expected the {what} to be a Tensor, got {type(t).__name__}")
        if not (t.dtype.is_floating_point or t.dtype.is_complex):
            raise ValueError(f"Expected {what} to be floating point or complex, but got: {t.dtype}")
    if tuple(tangent.shape) != tuple(tensor.shape):
        raise RuntimeError(f"Trying to set a forward gradient that has a different size than that of the original "
                           f"Tensor, this is not supported. Tensor is of size {list(tensor.shape)} while the given "
                           f"forward gradient is of size {list(tangent.shape)}.")
    if tangent_of(tensor) is not None:
        raise RuntimeError(f"Making a dual Tensor based on a Tensor that already has a forward gradient at the same "
                           f"level {_current_level} is not supported.")
    dual = _alias(tensor)
    _set(dual, tangent)
    return dual


def unpack_dual(tensor, *, level=None):
    """``(primal, tangent)``: ``tensor``'s values without a tangent (sharing its memory, connected to
    its graph) and its tangent at ``level`` as it is (None where it has none, or outside a level)."""
    level = _current_level if level is None else level
    if level < 0 or level != _current_level:
        return UnpackedDualTensor(tensor, None)
    tangent = tangent_of(tensor)
    if tangent is None:
        return UnpackedDualTensor(tensor, None)
    primal = _alias(tensor)
    _set(primal, _NONE)         # a view of a dual tensor, yet no dual tensor itself
    return UnpackedDualTensor(primal, tangent)


def _alias(t):
    """``t``'s values (the same memory) as a new tensor, with no tangent: a view of ``t``, as torch's,
    recorded where ``t``'s graph is, and otherwise kept as an unrecorded view is (a value that requires
    grad written into it later gives ``t`` the change as its history); over the mesh an alias over the
    mesh (a gathered copy would not pass an in-place change on to ``t``)."""
    with hidden():
        return t.view(t.shape)


# ---- the tangents of the current level ------------------------------------------------------
def _set(t, tangent, derived=False):
    key = id(t)

    def forget(_, key=key):
        entry = _tangents.get(key)
        if entry is not None and entry[0]() is None:
            del _tangents[key]
    _tangents[key] = (weakref.ref(t, forget), tangent, derived)


def set_tangent(t, tangent):
    """Give ``t`` its tangent at the current level (a custom Function's ``jvp`` result)."""
    _set(t, tangent)


def detached(t):
    """``t``'s values cut from the graph, keeping its tangent (cut too): gt/autograd/gradients.py."""
    out, tangent = t.detach(), tangent_of(t)
    if tangent is not None:
        _set(out, tangent.detach() if tangent._requires_grad else tangent)
    return out


def entered():
    """Whether a forward AD level is entered."""
    return _current_level >= 0


def tangent_of(t):
    """``t``'s tangent at the current level, or None. A view of a dual tensor taken before that
    tensor got its tangent (``v = b[:2]; b.copy_(dual)``) gets the same view of the base's."""
    entry = _tangents.get(id(t))
    if entry is not None and entry[0]() is t:
        tangent = entry[1]
        return None if tangent is _NONE else tangent
    link = _view_link(t)
    if link is None:
        return None
    base_tangent = tangent_of(link[0])
    if base_tangent is None:
        return None
    with hidden(), _mode_for(base_tangent):
        tangent = link[1].apply(base_tangent, *link[2])
    _set(t, tangent, derived=True)
    return tangent


def _mode_for(tangent):
    """The grad mode to take a view of ``tangent`` in: grad mode unless the caller's no_grad would record
    nothing of a tangent that requires grad (a view taken under no_grad may not be written with a value
    that requires grad later, gt/autograd/views.py)."""
    return no_grad() if tangent._requires_grad and not is_grad_enabled() else enable_grad()


def _view_link(t):
    """``(base, view op class, its other arguments)`` where ``t`` is a view of ``base``, else None."""
    kept = getattr(t, "_view", None)     # an unrecorded view (gt/autograd/views.py)
    if kept is not None:
        return kept[0], type(kept[1]), tuple(kept[2][1:])
    ctx = t._ctx
    # a sharded op's node (dispatch.ShardedNode) and a layout change (Redistribute): no Function, no view
    if ctx is None or not getattr(type(ctx), "makes_view", False) or ctx.released or not ctx.inputs:
        return None
    base = ctx.inputs[0]
    if not isinstance(base, function.Tensor) or base._placed is not None or t._placed is not None or \
            t._array is not base._array and not B.is_view_of(t._array, base._array):   # (same shape: the array)
        return None
    return base, type(ctx), tuple(ctx.inputs[1:])


def dual_values(t, values):
    """Whether a level is entered, outside inference mode, and ``t`` or one of ``values`` has a
    tangent (an in-place change of ``t`` then updates its tangent: gt/tensor/inplace_grad.py)."""
    if _current_level < 0 or mode.inference:    # (torch's inference_mode leaves the tangent as it was)
        return False
    return any(isinstance(v, function.Tensor) and tangent_of(v) is not None for v in (t, *values))


def dual_write(t, values):
    """``dual_values`` asked before an in-place change of ``t`` by ``values`` (gt/tensor/inplace_grad.py),
    which is first refused where it would leave a copy standing for a view of ``t``'s memory as it was
    (gt/autograd/forward_copies.py)."""
    if _current_level < 0:        # (one test outside a level, as dual_values: an optimizer's step asks)
        return False
    if forward_copies.kept and t._placed is not None:
        forward_copies.refuse_write(t)
    if mode.inference:
        return False
    return any(isinstance(v, function.Tensor) and tangent_of(v) is not None for v in (t, *values))


def carry(old, t):
    """``old``, standing for ``t``'s values before an in-place change, has ``t``'s tangent too."""
    tangent = tangent_of(t)
    if tangent is not None:
        _set(old, tangent)


def _ensure(t):
    """Give ``t`` (and the tensor it is a view of, first) a zero tangent where it has none."""
    if tangent_of(t) is not None:
        return
    link = _view_link(t)
    if link is not None:
        _ensure(link[0])
        if tangent_of(t) is not None:
            return
    _set(t, function.Tensor._wrap(B.zeros(t.shape, t.dtype)))


def written(t, new):
    """After an in-place change wrote ``new``'s values into ``t``: ``t``'s tangent becomes ``new``'s
    (zeros where ``new`` has none). Written into ``t``'s tangent in place (so the tensor it views,
    its views and whoever holds that tangent see it, as torch's), except where the tangents are
    recorded for reverse mode on a tensor that is no view: then ``t`` gets ``new``'s tangent, and
    views of ``t`` take theirs from it again (an in-place write would change values that the
    recorded tangents read)."""
    if not t.dtype.is_floating_point and not t.dtype.is_complex:
        return
    nt = tangent_of(new) if new is not t else None
    if nt is None:
        if tangent_of(t) is None:
            return
        nt = function.Tensor._wrap(B.zeros(t.shape, t.dtype))
    nt = nt.to(t.dtype) if nt.dtype != t.dtype else nt
    tt = tangent_of(t)
    recorded = is_grad_enabled() and (nt._requires_grad or tt is not None and tt._requires_grad)
    if recorded and _view_link(t) is None:
        _replace(t, nt)
        return
    _ensure(t)
    tt = tangent_of(t)
    hook, function.dual_hook = function.dual_hook, None
    try:
        with enable_grad() if recorded else no_grad():
            tt.copy_(nt)
    except (RuntimeError, ValueError):        # a read-only (broadcast) tangent, or a leaf that requires grad
        _replace(t, nt)
    finally:
        function.dual_hook = hook


def _replace(t, tangent):
    """``t``'s tangent is now ``tangent``; the tangents of views, taken from their bases', are
    taken again when next read."""
    for key in [k for k, (_, _, derived) in _tangents.items() if derived]:
        del _tangents[key]
    _set(t, tangent)


class hidden:
    """Ops run inside see no tangent (a custom Function's forward: its ``jvp`` gives them)."""

    def __enter__(self):
        self.hook, function.dual_hook = function.dual_hook, None

    def __exit__(self, *exc):
        function.dual_hook = self.hook


# ---- one op with dual inputs ------------------------------------------------------------------
def _on_op(cls, args, kwargs):
    """``Function.apply``'s hook while a level is entered: None when no input is dual (the op runs
    as usual), else the op's result, carrying its tangent."""
    tangents = [tangent_of(a) if isinstance(a, function.Tensor) else None for a in args]
    if all(t is None for t in tangents):
        return None
    function.dual_hook = None
    try:
        if forward_mesh.gathers(cls, args, tangents):      # computed on the home device
            tangents = forward_mesh.gathered(tangents, None, _set)
            local = forward_mesh.gathered(args, tangents, _set)
            return forward_mesh.watched(_dual_op(cls, local, kwargs, tangents), local, args)
        return _dual_op(cls, args, kwargs, tangents)
    finally:
        function.dual_hook = _on_op


def _dual_op(cls, args, kwargs, tangents):
    record = is_grad_enabled()
    needs = tuple(isinstance(a, function.Tensor) and a._requires_grad for a in args)
    keep = record and (True in needs or any(t is not None and t._requires_grad for t in tangents))
    if cls.makes_view and tangents[0] is not None and all(t is None for t in tangents[1:]):
        out = cls.apply(*args, **kwargs)          # linear in its input: the same view of the tangent
        with _mode_for(tangents[0]):
            _set(out, cls.apply(tangents[0], *args[1:], **kwargs))
        return out
    real, stand = [], []
    for a, t in zip(args, tangents):
        if not isinstance(a, function.Tensor):
            stand.append(a)
        elif t is not None or keep and a._requires_grad:
            stand.append(_leaf(a, real))
        else:
            stand.append(a.detach() if a._requires_grad else a)
    with enable_grad():
        out = cls.apply(*stand, **kwargs)
        tangent = _tangent(out, stand, tangents, keep, real)
    ctx = out._ctx
    if ctx is not None:
        ctx.inputs, ctx.needs_input_grad = tuple(args), needs
    if record and True in needs and ctx is not None:
        result = out
    else:
        result = function.Tensor._wrap(out._array)
        kept = getattr(out, "_view", None)
        if cls.makes_view and (ctx is not None or kept is not None):
            function.note_view(ctx if ctx is not None else kept[1], result, args, not record)
    if tangent is not None:
        _set(result, tangent)
    return result


def _leaf(a, real):
    """A new leaf that requires grad, sharing ``a``'s memory, standing for ``a`` (kept in ``real``)."""
    s = function.Tensor._wrap(a._array, requires_grad=True)
    real.append((s, a))
    return s


def _tangent(out, stand, tangents, keep, real):
    """The tangent of ``out`` (the op run on ``stand``): the double-vjp trick on this op alone;
    recorded on the real inputs and tangents where ``keep``."""
    if not out._requires_grad or not (out.dtype.is_floating_point or out.dtype.is_complex):
        return None      # an integer or bool result: no tangent, as torch's
    if type(out._ctx).backward is function.Function.backward:    # an op of no gradient (slogdet's sign)
        return function.Tensor._wrap(B.zeros(out.shape, out.dtype))
    rule = getattr(type(out._ctx), "tangent", None)    # the op's closed form (module docstring); it gets
    value = None if rule is None or keep else rule(out._ctx, *[       # None for an input of no tangent
        None if t is None else B.astype(t._array, out.dtype) for t in tangents])
    if value is not None:
        return function.Tensor._wrap(value if B.dtype_of(value) == out.dtype else B.astype(value, out.dtype))
    at = [i for i, t in enumerate(tangents) if t is not None]
    u = function.Tensor._wrap(B.zeros(out.shape, out.dtype), requires_grad=True)
    try:
        gs = _grad([out], [stand[i] for i in at], [u], retain_graph=True, create_graph=True, allow_unused=True,
                   materialize_grads=True)
    except NotImplementedError as exc:      # an op whose gradient gt cannot record (complex ones...)
        if keep:
            raise NotImplementedError(f"forward AD (tangents recorded for reverse mode): {exc}") from None
        return _by_rows(out, [stand[i] for i in at], [tangents[i] for i in at])
    pairs = []
    for g, i in zip(gs, at):
        if g._requires_grad:
            t = tangents[i]
            t = _leaf(t, real) if keep and t._requires_grad else t.detach() if t._requires_grad else t
            pairs.append((g, t if t.dtype == g.dtype else t.to(g.dtype)))
    if not pairs:
        return function.Tensor._wrap(B.zeros(out.shape, out.dtype))
    jv, = _grad([g for g, _ in pairs], [u], [t for _, t in pairs], retain_graph=keep, create_graph=keep,
                allow_unused=True, materialize_grads=True)
    if any(jv._array is t._array or B.is_view_of(jv._array, t._array) for _, t in pairs):
        jv = jv.clone() if keep else function.Tensor._wrap(B.copy(jv._array))   # an input's tangent itself
    if not keep:
        return jv.detach()
    for s, a in real:       # the stand-ins become aliases of the real tensors: the graph reaches them
        if a._requires_grad:
            connect(s, a)
    return jv


def connect(s, a):
    """Make the leaf ``s`` (sharing ``a``'s memory) a recorded alias of ``a``, numbered just after
    ``a``'s op, so a walk by number runs it after every op that read ``s`` and before ``a``'s."""
    with enable_grad():
        ctx = forward_mesh.alias(a)._ctx
    ctx.seq = a._ctx.seq + 0.5 if a._ctx is not None else -1
    s._ctx = ctx
