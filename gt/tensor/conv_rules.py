"""Propagation rules of the convolution and pooling ops (gt/ops/conv.py), added to rules.py's
table when this module is imported (by dispatch.py).

A convolution or a pooling is independent per sample: an input sharded along its batch axis
(axis 0, never one of the spatial axes the windows slide over) with replicated weights runs on
each device's shard, and the output keeps the shard; the weights' gradients come out partial
(summed once, at the leaf), as a Linear layer's. Any other layout is gathered. The other per-sample
ops (transposed convolution, fold/unfold, the gradient ops create_graph records, batch norm):
sample_rules.py.
"""

from gt.ops import conv
from gt.tensor import rules
from gt.tensor.rules import REP, Plan, _is_tensor, _shard_axis, _sizes


def per_sample(cls, args, kwargs):
    x = args[0]
    if x.placement.is_partial() or _shard_axis(x) != 0:
        return None
    if any(_is_tensor(t) and not t.placement.is_replicate() for t in args[1:]):
        return None
    return Plan([(x.placement, _sizes(x))] + [REP if _is_tensor(t) else None for t in args[1:]], x.placement)


rules.RULES.update({conv.Conv: per_sample, conv.MaxPool: per_sample, conv.AvgPool: per_sample})
