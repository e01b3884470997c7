"""torch's refusal of inference tensors saved for backward: an op recorded outside inference mode
that keeps for its backward a tensor made inside ``inference_mode`` (or a view of one) raises
``RuntimeError(INFERENCE_SAVED)`` before it is recorded, as torch's SavedVariable does; an op that
saves nothing of it (an addition, a sum) or saves only the other operand computes.

gt's ops keep engine arrays (``Function.save``): an op refuses an inference argument whose array
it kept, or, where gt keeps derived values, one at a position torch's op saves (``torch_saves``:
layer norm, convolution, embedding); indexing, ``gather``, ``index_select`` and the losses whose
torch kernel saves its target (mse, smooth L1, Huber, NLL) ask ``refuse_operands``.

Cost: ``made[0]`` is false while no inference tensor is alive (none made yet, or all gone); every
recorded op reads it (one list item) and nothing more in ordinary training, and after an evaluation
whose results were dropped. While one is alive, a recorded op looks its arguments up in ``_live``
(the inference tensors alive, by id): a dict lookup each, where a test of the unset ``_inference``
slot of an ordinary tensor would raise and catch an AttributeError (about 0.7 us); each inference
tensor made pays its entry there (a weak reference).

Inside gt.func's transforms (gt/autograd/levels.py): torch's grad/vjp/jacrev level lifts a tensor
captured from outside into a wrapper it may save, so such a tensor is refused only where the op is
recorded for the caller's graph alone (no argument that requires grad was made in, or passed to,
a reverse transform's function); one made inside a reverse transform's function (a vmap or jvp
within it too) is refused. Inside a forward transform alone gt records the function's ops for their
tangents where torch's forward mode saves nothing: an inference tensor made there is not refused.
Differs: inside a jvp, an outer leaf times an inference tensor made there computes (torch refuses).
"""

import weakref

from gt.autograd.grad_mode import mode

made = [False]        # whether an inference tensor is alive (``mark``)
_live = {}            # id -> weak reference of each inference tensor alive (``mark``)
# the backward walks recording their gradients running now (gt/autograd/graph_walk.py): their ops read
# what the forward saved, which torch's check passed then (gt's double-vjp jvp walks a forward torch
# does not record)
graph_walks = [0]
_made_in_reverse = weakref.WeakValueDictionary()    # made in a reverse transform's function
reverse_levels = []   # (serial, ids of its inputs) of each reverse transform level running, outermost first
# detach()/.data aliases of inference tensors taken outside inference mode: torch lets them be changed in place
_aliases = weakref.WeakValueDictionary()
INPLACE = ("Inplace update to inference tensor outside InferenceMode is not allowed.You can make a clone to get a "
           "normal tensor before doing inplace update.See https://github.com/pytorch/rfcs/pull/17 for more details.")
INFERENCE_SAVED = ("Inference tensors cannot be saved for backward. Please do not use Tensors created in inference "
                   "mode in computation tracked by autograd. To work around this, you can make a clone to get a "
                   "normal tensor and use it in autograd, or use `torch.no_grad()` instead of "
                   "`torch.inference_mode()`.")


def mark(t):
    """``t`` is an inference tensor (``is_inference()``)."""
    t._inference = True
    key = id(t)
    _live[key] = weakref.ref(t, lambda _, key=key: _gone(key))
    made[0] = True


def _gone(key, live=_live, made=made):
    """An inference tensor died: the ops' check ends with the last one (bound: called at exit too)."""
    live.pop(key, None)
    if not live:
        made[0] = False


def is_inference(t):
    """Whether ``t`` (anything) is an inference tensor: one dict lookup."""
    ref = _live.get(id(t))
    return ref is not None and ref() is t


def note_made(t):
    """``t`` was made inside ``inference_mode`` (gt/autograd/levels.py ``tag``)."""
    mark(t)
    if reverse_levels:
        _made_in_reverse[id(t)] = t


def note_alias(view, base):
    """``view``, ``detach()``'s or ``.data``'s alias of the inference tensor ``base``: an inference
    tensor, which torch lets be changed in place where it was taken outside inference mode."""
    mark(view)
    if not mode.inference:
        _aliases[id(view)] = view


def refuse_inplace(t, alias=True):
    """torch's error for an in-place change of the inference tensor ``t`` outside inference mode
    (asked once an inference tensor was made; a ``detach()`` alias taken outside it excepted, where
    ``alias``)."""
    if is_inference(t) and not mode.inference and not (alias and _aliases.get(id(t)) is t):
        raise RuntimeError(INPLACE)


def refuse_requires_grad(t):
    """torch's error for ``requires_grad_()`` (the attribute, a ``Parameter`` of it) of the inference
    tensor ``t`` outside inference mode (asked once an inference tensor was made)."""
    if is_inference(t) and not mode.inference:
        raise RuntimeError("Setting requires_grad=True on inference tensor outside InferenceMode is not allowed.")


def set_flag(t, value):
    """``t.requires_grad = value``: torch refuses True on an inference tensor outside inference mode."""
    if value and made[0]:
        refuse_requires_grad(t)
    t._set_requires_grad(value)


def transforms_left():
    """Called as the outermost transform level ends: the tensors made inside are refused anywhere."""
    _made_in_reverse.clear()


def records(ctx, args, arrays):
    """Whether ``ctx``, an op about to be recorded on ``args`` (some requiring grad), is: not where
    those are all inference tensors, outside transforms (torch's have no autograd history). torch's
    error where it keeps for its backward (the values its ``save`` kept) the array (of ``arrays``,
    those its forward ran on) of an inference argument, or holds one at a position of
    ``ctx.torch_saves``."""
    for a in args:
        if id(a) in _live:      # (the common case, no inference argument: one lookup each)
            if not (mode.level or any(getattr(b, "_requires_grad", False) and not is_inference(b) for b in args)):
                return False    # (a transform's own leaves of an inference tensor are its wrappers, recorded)
            for i, a in enumerate(args):
                if is_inference(a) and _saves(ctx, i, arrays[i]) and refused(a, args):
                    raise RuntimeError(INFERENCE_SAVED)
            return True
    return True


def _saves(ctx, i, array):
    """Whether the op ``ctx`` keeps its argument ``i`` (``array``) for its backward."""
    positions = ctx.torch_saves
    if positions is not None:
        return i in positions
    saved = getattr(ctx, "_saved", None)       # (nothing saved; or packed by saved-tensor hooks: not checked)
    return type(saved) is tuple and any(s is array for s in saved)


def refuse_tensors(tensors, args):
    """torch's error where an op recorded on ``args`` saves an inference tensor of ``tensors`` (a
    custom ``Function``'s ``ctx.save_for_backward``)."""
    for t in tensors:
        if is_inference(t) and refused(t, args):
            raise RuntimeError(INFERENCE_SAVED)


def refuse_operands(*tensors):
    """torch's error where an op on ``tensors``, recorded now (one of them requires grad), is one
    whose torch kernel saves them all and one is an inference tensor (index tensors, loss targets)."""
    if mode.record and any(getattr(t, "_requires_grad", False) for t in tensors):
        refuse_tensors(tensors, tensors)


def refuse_index(x, index):
    """``refuse_operands`` for ``x[index]`` (``gather``, ``index_select``): torch saves the indices."""
    if x._requires_grad and mode.record:
        parts = index if isinstance(index, tuple) else (index,)
        refuse_tensors(parts, (x,))


def stand_for(copy, t):
    """``copy``, made of the inference tensor ``t`` for an op to read (gathered from the mesh), an
    inference tensor refused where ``t`` is."""
    mark(copy)
    if _made_in_reverse.get(id(t)) is t:
        _made_in_reverse[id(copy)] = copy
    copy._level = getattr(t, "_level", 0)


def refused(t, args):
    """Whether torch refuses to save the inference tensor ``t`` for an op recorded now on ``args``
    (see the module's docstring)."""
    if graph_walks[0]:
        return False
    if reverse_levels:
        if _made_in_reverse.get(id(t)) is t:
            return True
        serial, inputs = reverse_levels[0]     # lifted where the op is recorded for a reverse level
        return not any(getattr(b, "_requires_grad", False) and (getattr(b, "_level", 0) >= serial or id(b) in inputs)
                       for b in args)
    return not (mode.forwards and getattr(t, "_level", 0))
