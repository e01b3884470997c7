"""Running a differentiable op on sharded tensors.

``dispatch`` asks the op's propagation rule (rules.py) how to lay the inputs out
and what placement the output gets, moves the inputs there, and runs the op's own forward once
per device on that device's arrays, each with its own context. The backward runs the op's own
backward per device the same way; the gradient of each input comes out in a placement that
follows from the forward's (a sharded input gets a sharded gradient, a replicated input a
partial one that is summed once, at the leaf). Ops with no local rule gather their inputs
(``Redistribute``) and run unsharded: correct before fast.

Redistribution is the identity on values, so its gradient is the gradient unchanged; the
placement it arrives in is converted wherever it is next used.
"""

import collections
import contextlib
import copy

from gt import autograd
from gt.autograd import fit_grad as _fit
from gt.autograd import inference_saved
from gt.autograd.function import GraphNode, OpName
from gt.backend import B
from gt.sharding import collectives as C
from gt.sharding import layout
from gt.sharding.layout import Placed
from gt.sharding.mesh import get_mesh
from gt.sharding.placement import Partial, Replicate, Shard
from gt.tensor import axis_rules  # noqa: F401  (rules along the sharded axis: max/min, cat, index arrays)
from gt.tensor import conv_rules  # noqa: F401  (adds the convolution and pooling rules to rules.RULES)
from gt.tensor import model_rules  # noqa: F401  (adds the attention and lookup rules to rules.RULES)
from gt.ops import shape as shape_ops
from gt.ops._shapes import view_strides
from gt.tensor import inplace_grad, mesh_row_follow, rules
from gt.tensor import sample_rules  # adds the other per-sample ops' rules to rules.RULES; LOCAL_GRAPH
from gt.tensor.rules import Plan
from gt.tensor.sharded_names import named_as_op

Tensor = None  # gt.Tensor, bound by gt/tensor/core.py once the class exists


def on_device(d):
    """The context for device ``d``'s share of an op: arrays the op allocates land on that GPU.
    Nothing to switch on a shared-memory (CPU) mesh."""
    mesh = get_mesh()
    return contextlib.nullcontext() if mesh.shared_memory else B.on_device(mesh.devices[d])


class _WithInputs:
    """One device's op context, seen with the inputs of the whole op (for its node's name)."""

    def __init__(self, share, inputs):
        self.share, self.inputs = share, inputs

    def __getattr__(self, name):
        return getattr(self.share, name)


class ShardedNode(GraphNode):
    """The tape entry of an op that ran per device: one op context per device."""

    __slots__ = ("cls", "ctxs", "inputs", "kwargs", "targets", "out", "out_sizes", "in_shapes", "in_dtypes",
                 "out_shape", "released", "epoch", "seq", "_next", "_metadata", "_node_hooks", "_torch_name",
                 "previous", "__weakref__")     # previous: a view's version before a change (mesh_view_write.py)

    @property
    def name(self):
        """The op's names, as its node unsharded gives them (torch's reads the op's inputs:
        ``AddmmBackward0`` for a Linear of 2-D input with a bias; one node named apart, ``TBackward0``
        for ``t()``'s Permute: gt/tensor/shape.py's ``_named``)."""
        named = getattr(self, "_torch_name", None) or getattr(self.cls, "_torch_name", None)
        if isinstance(named, property) and self.ctxs:
            named = named.fget(_WithInputs(self.ctxs[0], self.inputs))
        return OpName(self.cls.__name__, named if isinstance(named, str) else self.cls.__name__ + "Backward0")

    # autograd frees a node by setting ``saved = None``: here that drops the per-device contexts
    @property
    def saved(self):
        return self.ctxs or None

    @saved.setter
    def saved(self, value):
        if value is None:
            self.ctxs = ()

    def __repr__(self):
        return f"<{self.name}Backward (sharded, {self.out})>"

    def backward_graph(self, g):
        """The recorded gradient (``create_graph=True``): the op again on its inputs gathered to
        one device, whose ``backward_graph`` runs there (correct, not spread over the mesh); for the
        ops of ``sample_rules.LOCAL_GRAPH``, recorded on the sharded inputs themselves."""
        for ctx in self.ctxs:
            autograd.check_saved_versions(ctx, share=True)
        on_inputs = sample_rules.LOCAL_GRAPH.get(self.cls)
        if on_inputs is not None:   # recorded on the sharded inputs: its ops run per device too
            return on_inputs(copy.copy(self.ctxs[0]), self.inputs).backward_graph(g)
        whole = tuple(redistribute(a, Replicate()) if isinstance(a, Tensor) and a._placed is not None else a
                      for a in self.inputs)
        ctx = self.cls()
        ctx.needs_input_grad = tuple(isinstance(a, Tensor) and a.requires_grad for a in self.inputs)
        ctx.forward(*[a._array if isinstance(a, Tensor) else a for a in whole], **self.kwargs)
        ctx.inputs = whole
        return ctx.backward_graph(g)

    def backward(self, g):
        out = self.out
        if isinstance(out, Shard):
            g_loc = layout.to_locals(g, out, self.out_sizes)
        else:  # a partial output: every device's share needs the whole gradient
            g_loc = layout.to_locals(g, Replicate())
        per_device = []
        for ctx in self.ctxs:
            autograd.check_saved_versions(ctx, share=True)
        for d, (ctx, gd) in enumerate(zip(self.ctxs, g_loc)):
            with on_device(d):
                grads = ctx.backward(gd)
            per_device.append(grads if isinstance(grads, tuple) else (grads,))
        fitted = []
        for i, inp in enumerate(self.inputs):
            parts = [grads[i] if i < len(grads) else None for grads in per_device]
            if parts[0] is None or not getattr(inp, "requires_grad", False):
                fitted.append(None)
                continue
            fitted.append([_fit(p, shape[i], dtype[i]) for p, shape, dtype in zip(parts, self.in_shapes, self.in_dtypes)])
        # A first share may be reused as the buffer of a sum (all-reduce) only if no other
        # gradient here, and not the incoming gradient, holds the same array (e.g. add's (g, g)).
        uses = collections.Counter(id(a) for a in g_loc)
        for parts in fitted:
            if parts is not None:
                uses.update({id(p) for p in parts})
        results = []
        for i, (inp, parts) in enumerate(zip(self.inputs, fitted)):
            if parts is None:
                results.append(None)
                continue
            first = parts[0]
            owned = B.is_array(first) and not B.is_view(first) and uses[id(first)] == 1
            target = self.targets[i][0]
            if isinstance(target, Shard):
                results.append(Placed(parts, target, inp.shape, owned=owned))
            elif isinstance(target, Partial):
                results.append(first)  # d(sum of shares)/d(share) is the same on every device
            else:
                results.append(Placed(parts, Partial(), inp.shape, owned=owned))
        return tuple(results)


class Redistribute:
    """Tape entry of a layout change (gather, reduce, reshard): values unchanged, so is the gradient."""

    __slots__ = ("inputs", "released", "target", "saved", "out_shape", "epoch", "seq", "_torch_name", "__weakref__")
    complex_graph = True        # the identity's gradient: right for complex tensors too

    @property
    def name(self):
        """``"Redistribute"``; called, its node's name: torch's DTensor names its layout change's
        node ``RedistributeBackward``, one that ends an op is named as the op's (``_named``)."""
        return OpName("Redistribute", getattr(self, "_torch_name", None) or "RedistributeBackward")

    def __repr__(self):
        return f"<RedistributeBackward ({self.target})>"

    def backward(self, g):
        return (g,)

    def backward_graph(self, g):
        return (g,)


def redistribute(t, target, sizes=None, value=None):
    """``t`` laid out as ``target`` (differentiable); ``t`` itself is unchanged. ``value``: the
    result's value, where the caller has it."""
    value = layout.convert(t._value, target, sizes) if value is None else value
    out = Tensor._from_value(value)
    if t.requires_grad and autograd.is_grad_enabled():
        node = Redistribute()
        node.inputs, node.released, node.target, node.out_shape = (t,), False, target, t.shape
        out._requires_grad = True
        out._ctx = node
        autograd.put_on_tape(node, out)
    return out


def _gathered(t, own=False):
    """``t`` replicated over the mesh; an inference tensor's copy stands for it as one (a gathered
    operand that the op saves is refused as ``t`` would be, gt/autograd/levels.py). ``own``: a
    partial ``t`` is read from its own memory (its sum held in place, not a copy), so that what
    the op saves counts a later in-place change of ``t`` and the backward refuses it as torch's."""
    whole = layout.whole_in_place(t._placed) if own and _partial(t) else None
    out = redistribute(t, Replicate(), value=whole)
    if inference_saved.made[0] and inference_saved.is_inference(t):
        inference_saved.stand_for(out, t)
    return out


_VIEW_OPS = (shape_ops.GetItem, shape_ops.Reshape, shape_ops.Permute, shape_ops.AsStrided)


def _a_view(cls, args):
    """Whether torch's op would give a view of the sharded tensor (a reshape of a tensor whose
    strides allow none gives a copy there too, which torch lets change alone). Blocks of their own
    tell no strides: a tensor that is no view is taken as contiguous (an op's result), a view of
    one is let through (a false refusal would break a program torch runs)."""
    if cls is not shape_ops.Reshape:
        return True
    strides = layout.logical_strides(args[0]._placed)
    if strides is None:
        return inplace_grad.view_base(args[0]) is None
    return view_strides(args[0].shape, strides, tuple(args[1])) is not None


def _copy_of_a_view(out, cls):
    """Mark ``out``, a view op's result on a sharded tensor made as a view of a copy gathered to one
    device (no rule runs that op per device), as no view: an in-place change of it would leave the
    sharded tensor as it was (torch changes it), so gt refuses it (gt/tensor/inplace_grad.py)."""
    why = (f"a view ({cls.__name__}) of a tensor sharded over the mesh that gt made from a copy gathered to one device "
           "(no rule makes it per device), so changing it in place would leave that tensor unchanged; write into that "
           "tensor instead (x[index] = new values), or change a copy made on purpose (v.clone())")
    inplace_grad.mark_copy_of_shard_row(out, inplace_grad.ItemCopy(why) if cls is shape_ops.GetItem else why)


def dispatch(cls, args, kwargs):
    """Run ``cls`` (a Function) on arguments of which at least one tensor is sharded or partial."""
    plan = rules.plan_for(cls, args, kwargs)
    if plan is None:  # no local rule: gather everything and run unsharded
        own = cls not in _VIEW_OPS and autograd.is_grad_enabled() and \
            any(isinstance(a, Tensor) and a.requires_grad for a in args)
        gathered = [_gathered(a, own) if isinstance(a, Tensor) and a._placed is not None else a for a in args]
        out = cls.apply(*gathered, **kwargs)
        if cls in _VIEW_OPS and out._placed is None and gathered[0]._placed is None and \
                B.memory_owner(out._array) is B.memory_owner(gathered[0]._array) and _a_view(cls, args):
            _copy_of_a_view(out, cls)
            mesh_row_follow.keep_copy(out, args[0], lambda: dispatch(cls, args, kwargs))    # follows changes of it
        return out
    if not isinstance(plan, Plan):
        return named_as_op(plan, cls, args, kwargs)  # the rule computed it from other ops (mean = sum / count)

    n = get_mesh().size
    needs = tuple(isinstance(a, Tensor) and a.requires_grad for a in args)
    local_inputs = _local_inputs(args, plan.targets, n, any(needs) and autograd.is_grad_enabled())
    ctxs, outs, in_shapes, in_dtypes = [], [], [], []
    for d in range(n):
        largs = [vals[d] for vals in local_inputs]
        lkw = kwargs
        if plan.local is not None:
            largs, lkw = plan.local(d, largs, kwargs)
        ctx = cls()
        ctx.needs_input_grad = needs
        autograd.ops_run[d] += 1
        with on_device(d):
            outs.append(ctx.forward(*largs, **lkw))
            if plan.after is not None:
                outs[-1] = plan.after(d, outs[-1], largs)
        ctxs.append(ctx)
        in_shapes.append([tuple(x.shape) if B.is_array(x) else None for x in largs])
        in_dtypes.append([B.dtype_of(x) if B.is_array(x) else None for x in largs])
    outs = [o if B.is_array(o) else B.asarray(o) for o in outs]
    out_p = plan.out
    shape = list(outs[0].shape)
    if isinstance(out_p, Shard):
        shape[out_p.axis] = sum(o.shape[out_p.axis] for o in outs)
    result = Tensor._from_value(Placed(outs, out_p, tuple(shape), memory=True) if not isinstance(out_p, Replicate)
                                else outs[0])
    record = autograd.is_grad_enabled() and any(needs) and result.dtype.differentiable
    if record and inference_saved.made[0]:     # (false while no inference tensor is alive)
        record = all([inference_saved.records(ctx, args, [vals[d] for vals in local_inputs])
                      for d, ctx in enumerate(ctxs)])
    if record:
        node = ShardedNode()
        node.cls, node.ctxs, node.inputs, node.targets, node.kwargs = cls, ctxs, args, plan.targets, kwargs
        node.out, node.released, node.out_shape = out_p, False, result.shape
        node.out_sizes = [o.shape[out_p.axis] for o in outs] if isinstance(out_p, Shard) else None
        node.in_shapes, node.in_dtypes = in_shapes, in_dtypes
        result._requires_grad = True
        result._ctx = node
        autograd.put_on_tape(node, result)
    return result


def _local_inputs(args, targets, n, saves):
    """Each argument's value per device, laid out as the plan's ``targets`` say."""
    local_inputs = []
    for a, target in zip(args, targets):
        if not isinstance(a, Tensor):
            local_inputs.append([a] * n)
            continue
        if saves and isinstance(target[0], Replicate) and _partial(a):
            # read from the tensor's own memory (its sum held in place), not a copy: what the op
            # saves then counts a later in-place change of it, and the backward refuses it as torch's
            layout.whole_in_place(a._placed)
        local_inputs.append(layout.to_locals(a._value, target[0], target[1]))
    return local_inputs


def _partial(t):
    p = t._placed
    return p is not None and isinstance(p.placement, Partial)


def backward_placed(ctx, g, inputs):
    """Input gradients of a node whose incoming gradient ``g`` is a ``Placed`` value, or of a
    sharded node. Each result is already in its input's shape and dtype."""
    if isinstance(ctx, (ShardedNode, Redistribute)):
        return ctx.backward(g)
    # An op that ran unsharded (on replicated inputs). Its backward is linear in g, so a partial
    # gradient is handled share by share; any other layout is gathered first, and so is a partial
    # one for a node whose backward must see the whole gradient once (``whole_grad``: a custom
    # autograd.Function's, whose outputs hand their gradients to one call of the user's backward)
    if isinstance(g, Placed) and isinstance(g.placement, Partial) and not getattr(ctx, "whole_grad", False):
        per_share = []
        autograd.check_saved_versions(ctx)
        for s in C.home(g.shards):   # the op's saved values are on the home device
            grads = ctx.backward(s)
            per_share.append(grads if isinstance(grads, tuple) else (grads,))
        results = []
        for i, inp in enumerate(inputs):
            parts = [grads[i] if i < len(grads) else None for grads in per_share]
            if parts[0] is None or not getattr(inp, "requires_grad", False):
                results.append(None)
                continue
            dtype = inp.dtype
            parts = [_fit(p, inp.shape, dtype) for p in parts]
            results.append(Placed(parts, Partial(), inp.shape, owned=False))
        return tuple(results)
    return None  # caller materializes g and takes the plain path


def map_local(fn, args):
    """A non-differentiable elementwise function (comparisons, logical ops) of tensors some of
    which are sharded: computed per device under the elementwise rule, gathered if none fits."""
    plan = rules.elementwise(None, args, {})
    if plan is None:
        arrays = [a._data if isinstance(a, Tensor) else a for a in args]
        return Tensor._wrap(B.iterator_layout(fn(*arrays), *arrays))
    n = get_mesh().size
    inputs = [layout.to_locals(a._value, *t) if isinstance(a, Tensor) else [a] * n for a, t in zip(args, plan.targets)]
    outs = []
    for d in range(n):
        with on_device(d):
            arrays = [vals[d] for vals in inputs]
            outs.append(B.iterator_layout(fn(*arrays), *arrays))
    axis = plan.out.axis
    shape = list(outs[0].shape)
    shape[axis] = sum(o.shape[axis] for o in outs)
    return Tensor._from_value(Placed(outs, plan.out, tuple(shape)))
