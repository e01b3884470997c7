"""Propagation rules of the fused attention ops (gt/ops/attention.py), kept beside rules.py's
table, which this module extends when it is imported (by dispatch.py).

Attention is independent per sequence and per head: a shard of a batch (or head) axis stays
local, the other inputs are cut the same way or used whole where they broadcast along it; a
shard of the sequence or feature axis is gathered (keys span the sequence).
"""

from gt.ops import attention as attn
from gt.sharding.placement import Shard
from gt.tensor import rules
from gt.tensor.rules import REP, Plan, _broadcast, _is_tensor, _shard_axis, _sizes


def attention(cls, args, kwargs):
    """Fused attention on q, k, v (B, T, D) and a mask broadcasting to (B, H, L, S): independent
    per sequence, so a batch shard stays local (inputs without the batch axis, or with a size-1
    one, are used whole); a shard of the sequence or feature axis is gathered (keys span the
    sequence)."""
    qkv = args[:3]
    if any(t.placement.is_partial() for t in args if _is_tensor(t)):
        return None
    lead = next((t for t in qkv if isinstance(t.placement, Shard)), None)
    if lead is None or lead.placement.axis != 0 or any(t.shape[0] != lead.shape[0] for t in qkv):
        return None
    sizes = _sizes(lead)
    targets = [(Shard(0), sizes)] * 3
    for m in args[3:]:
        full = _is_tensor(m) and m.ndim == 4 and m.shape[0] == lead.shape[0]
        targets.append((Shard(0), sizes) if full else REP if _is_tensor(m) else None)
    return Plan(targets, Shard(0))


def sdpa(cls, args, kwargs):
    """Attention on split heads (..., L, E): a shard of a leading (batch or head) axis stays
    local, the other inputs cut the same way or used whole where they broadcast along it."""
    tensors = [t for t in args if _is_tensor(t)]
    if any(t.placement.is_partial() for t in tensors):
        return None
    lead_shape = _broadcast([t.shape[:-2] for t in tensors])
    nd = len(lead_shape)
    axis = sizes = None
    for t in tensors:
        a = _shard_axis(t)
        k = None if a is None else a + nd - (t.ndim - 2)   # the output's axis
        if a is not None and a < t.ndim - 2 and t.shape[a] == lead_shape[k]:
            axis, sizes = k, _sizes(t)
            break
    if axis is None:
        return None
    targets = []
    for x in args:
        j = axis - (nd - x.ndim + 2) if _is_tensor(x) else None
        if j is None:
            targets.append(None)
        else:
            targets.append(REP if j < 0 or x.shape[j] == 1 else (Shard(j), sizes))
    return Plan(targets, Shard(axis))


rules.RULES.update({attn.Attention: attention, attn.ScaledDotProductAttention: sdpa})
