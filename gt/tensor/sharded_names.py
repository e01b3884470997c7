"""Names of the nodes of sharded ops' results that a sharding rule computed from other ops (a
``mean`` over the sharded dim as ``sum * (1 / count)``): named as the op's own node is on one
device, torch's (``grad_fn.name() == "MeanBackward1"``), not as the last op the rule ran."""

from types import SimpleNamespace

from gt.ops import reductions
from gt.tensor.shape import _named

# ops whose node's name reads only ``axis`` (None: over every element)
_BY_AXIS = (reductions.Sum, reductions.Mean, reductions.Max, reductions.Min)


def named_as_op(out, cls, args, kwargs):
    """``out`` (a rule's result for ``cls`` applied to ``args``) with its node named as ``cls``'s."""
    if getattr(out, "_ctx", None) is None or any(out is a for a in args):
        return out
    named = getattr(cls, "_torch_name", None)
    if isinstance(named, property):
        if not issubclass(cls, _BY_AXIS):   # the name reads what the op's forward keeps: left as it is
            return out
        named = named.fget(SimpleNamespace(axis=args[1] if len(args) > 1 else kwargs.get("axis")))
    return _named(out, None, named or cls.__name__ + "Backward0")
