"""Propagation rules of the ops models are built from beyond rules.py's: the fused attention
ops (gt/ops/attention.py), the embedding lookup and ``F.pad``. This module adds them to rules.py's table
when it is imported (by dispatch.py).

Attention is independent per sequence and per head: a shard of a batch (or head) axis stays
local, the other inputs are cut the same way or used whole where they broadcast along it; a
shard of the sequence or feature axis is gathered (keys span the sequence). A lookup picks the
rows of its shard of the indices from the whole table on each device. Softmax cross-entropy is
independent per row. A pad keeps the shard of a dim it does not pad.
"""

from gt.ops import activations as act
from gt.ops import attention as attn
from gt.ops import quantized_linear
from gt.ops import padding
from gt.ops import self_attention as self_attn
from gt.ops import shape as sh
from gt.sharding.placement import Shard
from gt.tensor import rules
from gt.tensor.rules import REP, Plan, _is_tensor, _shard_axis, _sizes


def attention(cls, args, kwargs):
    """Fused attention on q, k, v (B, T, D) and a mask broadcasting to (B, H, L, S): independent
    per sequence, so a batch shard stays local (inputs without the batch axis, or with a size-1
    one, are used whole); a shard of the sequence or feature axis is gathered (keys span the
    sequence)."""
    qkv = [t for t in args[:3] if _is_tensor(t)]     # k and v are None when packed with q
    if any(t.placement.is_partial() for t in args if _is_tensor(t)):
        return None
    lead = next((t for t in qkv if isinstance(t.placement, Shard)), None)
    if lead is None or lead.placement.axis != 0 or any(t.shape[0] != lead.shape[0] for t in qkv):
        return None
    sizes = _sizes(lead)
    targets = [(Shard(0), sizes) if _is_tensor(t) else None for t in args[:3]]
    for m in args[3:]:
        full = _is_tensor(m) and m.ndim == 4 and m.shape[0] == lead.shape[0]
        targets.append((Shard(0), sizes) if full else REP if _is_tensor(m) else None)
    return Plan(targets, Shard(0))


def self_attention(cls, args, kwargs):
    """Self-attention with its q, k and v projection (x (B, L, D), six replicated weights and
    biases, a mask): a batch shard of x stays local, as ``attention``'s; the weights' gradients
    come out partial."""
    x, params, masks = args[0], args[1:7], args[7:]
    if _shard_axis(x) != 0 or x.placement.is_partial() or any(
            _is_tensor(t) and not t.placement.is_replicate() for t in params):
        return None
    if any(_is_tensor(m) and m.placement.is_partial() for m in masks):
        return None
    sizes = _sizes(x)
    targets = [(Shard(0), sizes)] + [REP if _is_tensor(t) else None for t in params]
    for m in masks:
        full = _is_tensor(m) and m.ndim == 4 and m.shape[0] == x.shape[0]
        targets.append((Shard(0), sizes) if full else REP if _is_tensor(m) else None)
    return Plan(targets, Shard(0))


def sdpa(cls, args, kwargs):
    """Attention on split heads (..., L, E): a shard of a leading (batch or head) axis stays
    local, the other inputs cut the same way or used whole where they broadcast along it."""
    if any(t.placement.is_partial() for t in args if _is_tensor(t)):
        return None
    return rules.broadcast_plan(args, core=2)


def embedding(cls, args, kwargs):
    """``weight[indices]`` with sharded indices and a replicated table: each device looks up its
    shard; the table's gradient comes out partial (summed once, at the leaf)."""
    weight, idx = args[0], args[1]
    a = _shard_axis(idx) if _is_tensor(idx) else None
    if a is None or not (_is_tensor(weight) and weight.placement.is_replicate()):
        return None
    return Plan([REP, (Shard(a), _sizes(idx))], Shard(a))


def rows(cls, args, kwargs):
    """An op independent per row of its inputs' first axis (softmax cross-entropy): logits and
    targets sharded along it stay local, and so does the per-row result."""
    lead = args[0]
    if kwargs.get("mean") or not all(_is_tensor(t) and _shard_axis(t) == 0 and t.shape[0] == lead.shape[0]
                                     for t in args[:2]):
        return None    # (a mean over the rows is not per row: run whole)
    sizes = _sizes(lead)
    return Plan([(Shard(0), sizes), (Shard(0), sizes)], Shard(0))


def pad(cls, args, kwargs):
    """``F.pad``: a shard of a dim that is not padded stays (each device pads its block); a padded
    dim's shard is gathered (its edges come from the neighbours' blocks)."""
    return rules.elementwise(cls, args, kwargs, skip=tuple(dim for dim, _, _ in kwargs["pads"]))


rules.RULES.update({attn.Attention: attention, self_attn.PackedSelfAttention: self_attention,
                    attn.ScaledDotProductAttention: sdpa, sh.Embedding: embedding,
                    act.SoftmaxCrossEntropy: rows, padding.Pad: pad,
                    quantized_linear.QuantizedLinear: rules.linear,
                    quantized_linear.QuantizedLinearUntracked: rules.linear,
                    quantized_linear.HalfLinearUntracked: rules.linear})
