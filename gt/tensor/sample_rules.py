"""Propagation rules of the per-sample ops beyond conv_rules.py's, added to rules.py's table when
this module is imported (by dispatch.py).

Each of these ops treats the samples of its first argument's axis 0 independently, and slides
its windows (if any) over trailing axes only: a batch-sharded input with replicated other
tensors runs on each device's block, and the output keeps the shard (replicated weights get
partial gradients, summed once at the leaf). Any other layout returns None: gathered.

- ``ConvTranspose``, ``Unfold``, ``Fold``: per sample (their inputs are always batched here:
  gt/nn adds the batch axis of an unbatched input before the op).
- ``WindowArgmax`` (x (..., *size)): per sample while axis 0 is not one of the window axes.
- ``ConvInputGrad`` (``create_graph`` of a convolution): per sample; each device is told its own
  batch size in the input shape it rebuilds. ``ConvWeightGrad`` sums over the batch: from x and g
  both cut along the batch, each device's share is ``Partial``, as a sum over a sharded axis.
- ``PadGrad``: as ``Pad`` (model_rules.py), per sample while axis 0 is not padded; each device's
  copy of the pad is told its own batch size.
- ``PoolRoute`` of an average pool: per sample (the pool keeps only its geometry and its divisor,
  which spans the output window grid, not the batch). Of a max pool: gathered, since the pool
  holds where the maxima of the whole batch lie. ``PoolAdjoint`` (a third derivative) has no rule.
- ``Rounding`` (floor, ceil, trunc, round, sign): elementwise (an LP pool's sign of its window sums).
- ``BatchNorm`` in eval mode: per sample (running statistics replicated). In training mode the
  statistics span the batch (torch's ``SyncBatchNorm``): the rule composes the op from tensor
  ops, the mean and variance over the sharded batch are partial sums (all-reduced, never
  gathered), and the gradient through them comes from the tape.
"""

import copy

from gt.ops import batch_norm, conv, conv_transpose, fold, padding, pool_indices
from gt.ops import elementwise as ew
from gt.sharding.placement import Partial, Shard
from gt.tensor import rules
from gt.tensor.conv_rules import per_sample
from gt.tensor.rules import Plan, _is_tensor, _shard_axis, _sizes


def _batch_sharded(x, window_axes=0):
    """Whether ``x`` is cut along axis 0 (not partial) and axis 0 is none of its last ``window_axes``."""
    return _is_tensor(x) and not x.placement.is_partial() and _shard_axis(x) == 0 and x.ndim > window_axes


def window_argmax(cls, args, kwargs):
    x, windows = args[0], args[1] if len(args) > 1 else kwargs["windows"]
    return per_sample(cls, args, kwargs) if _batch_sharded(x, len(windows[-1])) else None


def conv_input_grad(cls, args, kwargs):
    """``ConvInputGrad(g, weight, x_shape, geometry)``: the rebuilt input has the device's batch size."""
    plan = per_sample(cls, args, kwargs)
    if plan is None:
        return None
    x_shape = tuple(args[2])

    def local(d, largs, kw):
        return [largs[0], largs[1], (largs[0].shape[0],) + x_shape[1:], largs[3]], kw
    return Plan(plan.targets, plan.out, local)


def conv_weight_grad(cls, args, kwargs):
    """``ConvWeightGrad(x, g, w_shape, geometry)``: a sum over the batch, so each device's share
    of it is partial. x and g are cut alike (one of them may be replicated: cutting it is free)."""
    x, g = args[:2]
    lead = x if _batch_sharded(x) else g if _batch_sharded(g) else None
    if lead is None or any(not (_batch_sharded(t) or t.placement.is_replicate()) for t in (x, g)):
        return None
    sizes = _sizes(lead)
    return Plan([(Shard(0), sizes), (Shard(0), sizes), None, None], Partial())


def pad_grad(cls, args, kwargs):
    """``PadGrad(g, pad)``: per sample unless the pad crops or pads axis 0."""
    g, pad = args
    if not _batch_sharded(g) or any(dim % g.ndim == 0 for dim, _, _ in pad.pads):
        return None

    def local(d, largs, kw):
        mine = copy.copy(largs[1])
        mine.in_shape = (largs[0].shape[0],) + tuple(pad.in_shape[1:])
        return [largs[0], mine], kw
    return Plan([(Shard(0), _sizes(g)), None], Shard(0), local)


def pool_route(cls, args, kwargs):
    """``PoolRoute(g, pool)``: per sample for an average pool only."""
    g, pool = args
    if not (isinstance(pool, conv.AvgPool) and _batch_sharded(g, len(pool.args[0]))):
        return None
    return per_sample(cls, args, kwargs)


def batch_norm_rule(cls, args, kwargs):
    """``BatchNorm(x, weight, bias, mean, var, eps, training)``: per sample with running statistics,
    synced (whole-batch statistics) in training."""
    x = args[0]
    if not _batch_sharded(x, 1) or any(_is_tensor(t) and not t.placement.is_replicate() for t in args[1:3]):
        return None
    eps = args[5] if len(args) > 5 else kwargs.get("eps", 1e-5)
    if not (args[6] if len(args) > 6 else kwargs.get("training", True)):
        return per_sample(cls, args, kwargs)
    return _synced_batch_norm(x, args[1], args[2], eps)


def _synced_batch_norm(x, weight, bias, eps):
    """``BatchNorm``'s training-mode forward composed from tensor ops on the sharded batch: the
    statistics are sums over the sharded axis (partial, all-reduced), and the tape gives the
    gradient through them (the fused op's train-mode gradient). The caller's statistics (computed
    without a tape for the running averages) are computed again here, with one."""
    axes = (0,) + tuple(range(2, x.ndim))
    shape = (1, x.shape[1]) + (1,) * (x.ndim - 2)                  # a channel's values broadcast
    xc = x - x.mean(dim=axes, keepdim=True)
    var = (xc * xc).mean(dim=axes, keepdim=True).replicate()      # summed once, before the constant eps
    out = xc * (1.0 / (var + eps).sqrt())
    if weight is not None:
        out = out * weight.reshape(shape)
    if bias is not None:
        out = out + bias.reshape(shape)
    return out


# ---- gradients recorded on the sharded inputs (create_graph) -----------------------------------
def _on_inputs(ctx, inputs):
    ctx.inputs = inputs
    return ctx


def _pad_on_inputs(ctx, inputs):
    ctx = _on_inputs(ctx, inputs)
    ctx.in_shape = tuple(inputs[0].shape)     # the whole input's: a gathered PadGrad reads it
    return ctx


# Ops whose ``backward_graph`` reads only its inputs and attributes that do not depend on the batch
# (geometry over the spatial axes, a pool's divisor over its window grid): the recorded gradient
# of their per-device run is recorded on the sharded inputs themselves (``ShardedNode.
# backward_graph``), so its ops dispatch by the rules above instead of gathering the inputs.
# ``LOCAL_GRAPH[cls](ctx, inputs)``: a copy of one device's record, made to stand for the whole op.
LOCAL_GRAPH = {cls: _on_inputs for cls in (conv.Conv, conv.AvgPool, conv_transpose.ConvTranspose, fold.Unfold,
                                           fold.Fold, batch_norm.BatchNorm)}
LOCAL_GRAPH[padding.Pad] = _pad_on_inputs

# floor, ceil, trunc, round and sign are per element (an LP pool's sign of the window sums, in
# gt/nn/lp_pool.py, is the one op of that pool that had no rule)
rules.RULES[ew.Rounding] = rules.elementwise

rules.RULES.update({
    conv_transpose.ConvTranspose: per_sample, fold.Unfold: per_sample, fold.Fold: per_sample,
    pool_indices.WindowArgmax: window_argmax, conv.ConvInputGrad: conv_input_grad,
    conv.ConvWeightGrad: conv_weight_grad, padding.PadGrad: pad_grad,
    conv.PoolRoute: pool_route, batch_norm.BatchNorm: batch_norm_rule,
})
