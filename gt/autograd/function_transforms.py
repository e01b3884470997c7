"""What torch's functorch asks of a custom ``autograd.Function`` (torch's kind, gt/autograd/custom_function.py)
applied inside a ``gt.func`` transform's function. Its ``forward`` must not take ``ctx`` (it overrides
``setup_context``). Inside ``vmap``, and inside ``jacfwd`` and ``hessian``, which torch computes under a
vmap of its own, it needs a vmap rule: ``generate_vmap_rule = True`` (torch vmaps ``forward``; gt's vmap
runs every element's ``forward`` anyway) or a ``vmap`` staticmethod, which torch calls in place of
``forward`` with the batched inputs (``gt/func/function_vmap.py`` calls it). Asked by ``apply`` only
while a transform's layer is entered (``mode.layers``): ordinary training pays nothing."""

import contextlib

from gt.autograd import forward_ad, function
from gt.autograd.grad_mode import mode, no_grad

_LINK = "For more details, please see https://pytorch.org/docs/main/notes/extending.func.html"
NEEDS_SETUP_CONTEXT = ("In order to use an autograd.Function with functorch transforms (vmap, grad, jvp, jacrev, ...), "
                       "it must override the setup_context staticmethod. " + _LINK)

# the vmaps whose function is running (gt.func's vmap elements and jacfwd calls), innermost last: a
# ``VmapFrame``, or JACFWD (torch's vmap there maps the tangents alone, never a Function's inputs)
frames = []
JACFWD = "jacfwd"
# gt.func's caller of a vmap staticmethod: (cls, rule, frame, its index, args, kwargs) -> (outputs,) or None;
# installed by gt.func (set_rule_caller), which this layer cannot import
_rule_caller = None


def set_rule_caller(caller):
    """Install gt.func's caller of a custom Function's ``vmap`` staticmethod (gt/func/function_vmap.py)."""
    global _rule_caller
    _rule_caller = caller


class VmapFrame:
    """One ``vmap`` call's state for the Functions its function applies: ``randomness``, and (set as
    each element's run enters its level) that level's serial and the ids of the element's mapped slices."""

    __slots__ = ("randomness", "serial", "mapped")

    def __init__(self, randomness):
        self.randomness, self.serial, self.mapped = randomness, None, frozenset()


def layered(cls, setup, args, kwargs):
    """torch's refusals of ``cls`` applied at a functorch layer (``mode.layers``), and its ``vmap``
    staticmethod's outputs: ``(outputs, inner)`` where it ran, None where ``apply`` runs ``forward`` as
    usual. ``inner``: a derivative transform is entered inside that vmap's function, which records the
    call with ``cls.backward`` (torch's), the outputs standing for ``forward``'s; without one they are
    the call's (differentiated, by an outer transform, through the staticmethod's ops, as torch's)."""
    if setup is None:
        raise RuntimeError(NEEDS_SETUP_CONTEXT)
    if not frames:
        return None
    if any(isinstance(x, function.Tensor) for x in kwargs.values()):     # (torch's first check under vmap)
        raise NotImplementedError(f"Run vmap on autograd.Function with kwarg-only Tensor args. Please do not pass "
                                  f"kwarg-only Tensors to autograd.Function. Got: {kwargs}")
    generate, rule = getattr(cls, "generate_vmap_rule", False), getattr(cls, "vmap", None)
    if generate and rule is not None:
        raise RuntimeError(f"You tried to vmap over {cls.__name__}, but it has both generate_vmap_rule=True and an "
                           "overridden vmap staticmethod. Please set generate_vmap_rule=False or delete the overridden "
                           "vmap staticmethod to avoid ambiguity. " + _LINK)
    if rule is None and not generate:
        raise RuntimeError(f"You tried to vmap over {cls.__name__}, but it does not have vmap support. Please override "
                           "and implement the vmap staticmethod or set generate_vmap_rule=True. " + _LINK)
    if generate:
        return None
    for k in range(len(frames) - 1, -1, -1):     # innermost first; one mapping none of the inputs is skipped
        if frames[k] is not JACFWD:
            inner = mode.level != frames[k].serial
            with no_grad() if inner else contextlib.nullcontext(), forward_ad.hidden() if inner else \
                    contextlib.nullcontext():
                got = _rule_caller(cls, rule, frames[k], k, args, kwargs)
            if got is not None:
                return got[0], inner
    return None

