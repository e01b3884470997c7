"""The profiler's recording, shared by ``gt.profiler.profile`` and ``gt.autograd.profiler.profile``.

While a ``Recorder`` records, the hot paths see it through one global, ``function.profiling``, read
by ``Function.apply`` and once per backward walk (gt/autograd/backward.py, graph_walk.py); otherwise
it is None and the paths pay that one test. What becomes an event:

- each op (``Function.apply``): its forward and the wrapping of its result, named as torch names
  the op (``aten::addmm`` style) where gt's op is torch's (``TORCH_OPS``, or the function name of
  an elementwise family: ``aten::exp``), gt's name of the op otherwise (``GetItem``, ``Conv``). An
  op on tensors sharded over the mesh is one event (its shares, and any ops its sharded rule runs,
  are inside it and not recorded apart);
- each backward node the walk runs, named as torch's (``AddmmBackward0``: ``grad_fn.name()``);
- ``record_function`` ranges, the optimizers' ``Optimizer.step#SGD.step`` and
  ``Optimizer.zero_grad#SGD.zero_grad``, and ``ProfilerStep#N`` (gt.profiler with a schedule);
- with ``with_modules=True``, each module call (``nn.Module: Linear_0``, torch's name of a
  module's range in its traces), through global module hooks that gt.profiler installs
  (``module_hooks``: this layer sits below gt.nn).

- work outside ``Function.apply`` through ``Recorder.call``, one event per call named as torch's
  op: the creation functions (``aten::zeros``, ``aten::randn``; ``gt.tensor`` and
  ``gt.from_numpy`` are ``aten::lift_fresh``), the in-place methods outside the tape
  (``aten::add_``, ``aten::sub_``, ``aten::mul_``, ``aten::copy_``, ``aten::zero_``, ``aten::exp_``,
  ``aten::normal_``, ...) and the optimizers' fused engine updates (``aten::add_`` per parameter
  of plain SGD, as torch's; ``aten::_fused_sgd_``, ``aten::_fused_adam_``, ``aten::_fused_adamw_``
  where gt runs torch's fused kernel's arithmetic in one call). What such a call runs inside
  (an op, a nested creation) is its self time, not events of their own: torch's inner
  ``aten::empty``/``aten::fill_`` are not gt's steps.

Memory (``profile_memory=True``): an event's self memory is the bytes of the tensors it made
(views of other tensors: 0, as torch's), less the bytes of tensors made while profiling that
were freed while it was the innermost open event; a free outside every event is a ``[memory]``
event of negative bytes, as torch's. gt sees tensors, not the allocator: temporaries inside an
op, and frees of memory made before the profile, are not counted.

Events are recorded on the thread that started the profile; ops of other threads are not.
"""

import collections
import contextlib
import os
import re
import sys
import threading
import weakref
from time import perf_counter_ns

from gt.autograd import function
from gt.autograd.profiler_util import FunctionEvent
from gt.backend import B

active = None        # the Recorder recording now, or None
_owner = None        # the profile started now (one at a time, on one thread)
# set by gt.profiler (above gt.nn): ``module_hooks(recorder)`` installs the global module hooks
# of ``with_modules=True`` and returns a function that removes them
module_hooks = None

# gt's ops whose name is torch's (snake case: ``LayerNorm`` is ``aten::layer_norm``); tests check
# each against torch.ops.aten. Others keep gt's name: theirs is no one torch op.
TORCH_OPS = frozenset((
    "Abs", "Add", "Angle", "BatchNorm", "BinaryCrossEntropy", "BinaryCrossEntropyWithLogits", "Cat", "Cholesky",
    "CholeskySolve", "Clip", "Complex", "Conj", "Contiguous", "Cumprod", "Cumsum", "Det", "Diagonal", "Div", "Einsum",
    "Embedding", "Exp", "Expand", "FloorDivide", "Gelu", "Imag", "IndexAdd", "IndexCopy", "IndexPut", "LayerNorm",
    "Linear", "Log", "LogSoftmax", "Logit", "LuSolve", "Matmul", "MatrixExp", "Max", "Maximum", "Mean", "Min",
    "Minimum", "Mul", "Neg", "Pad", "Permute", "Polygamma", "Pow", "Prod", "Qr", "Real", "Relu", "Reshape",
    "ScaledDotProductAttention", "Scatter", "ScatterReduce", "Sigmoid", "Softmax", "Sqrt", "Stack", "Sub", "Sum",
    "Svd", "Tanh", "Unfold", "ViewAsComplex", "ViewAsReal", "Where"))
_PRODUCTS = frozenset(("Linear", "Matmul", "LinearRelu"))     # with_flops: 2 * outputs * inner size
_names, _node_names = {}, {}
_CAMEL = re.compile(r"(?<=[a-z0-9])([A-Z])")
_GT_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep


def op_name(op):
    """The event name of the op ``op`` (a Function instance, after its forward)."""
    fn = getattr(op, "fn", None)
    if isinstance(fn, str):
        return "aten::" + fn            # an elementwise family: the function's own name (exp, erf, ...)
    return class_op_name(type(op))


def class_op_name(cls):
    """The event name of the ops of class ``cls``: torch's op name where it is one (``TORCH_OPS``)."""
    name = _names.get(cls)
    if name is None:
        own = cls.__name__
        name = _names[cls] = "aten::" + _CAMEL.sub(r"_\1", own).lower() if own in TORCH_OPS else own
    return name


def node_name(ctx):
    """The event name of a backward node: torch's (``grad_fn.name()``), or its class's."""
    own = getattr(ctx, "__dict__", None)
    if own and "_torch_name" in own:                # one node named apart (gt/tensor/shape.py)
        return own["_torch_name"]
    cls = type(ctx)
    name = _node_names.get(cls)
    if name is not None:
        return name
    fixed = getattr(cls, "_torch_name", None)
    if getattr(cls, "name", None) is function.GraphNode.name and not isinstance(fixed, property):
        name = _node_names[cls] = fixed or cls.__name__ + "Backward0"    # GraphNode.name's, once per class
        return name
    name = getattr(ctx, "name", None)
    try:
        name = name() if callable(name) else name
    except Exception:       # a node whose name reads state the walk freed
        name = None
    return str(name) if name else type(ctx).__name__


def claim(owner):
    """Make ``owner`` (a profile) the one profiling; another one already on is refused."""
    global _owner
    if _owner is not None and _owner is not owner:
        raise RuntimeError("Profiler is already enabled on this thread: a gt profile is already running (nested "
                           "profile(), or one started and not stopped); torch's profiler would silently leave the "
                           "outer profile empty, so gt refuses. Stop the running one first")
    _owner = owner


def release(owner):
    global _owner
    if _owner is owner:
        _owner = None


def _shape(value):
    shape = getattr(value, "shape", None)
    return [] if shape is None else [int(n) for n in shape]


def _arrays(value):
    """The engine arrays of ``value``: a tensor (each shard of one spread over the mesh), an
    array, or a tuple or list of them."""
    return [a for _, shards in _holders(value) for a in shards]


def _holders(value):
    """``(holder, arrays)`` for each tensor or array of ``value``: a tensor spread over the mesh is
    one holder (its layout) of all its shards, which go together, so its free is one event of
    their bytes, as the one tensor it is; any other array is its own holder."""
    if value is None:
        return []
    if isinstance(value, (tuple, list)):
        return [h for v in value for h in _holders(v)]
    placed = getattr(value, "_placed", None)
    if placed is not None:
        return [(placed, list(placed.shards))]
    array = value._array if isinstance(value, function.Tensor) else value
    return [(array, [array])]


def python_stack(limit=64):
    """The Python frames outside gt that led here, innermost first, as torch writes them
    (``file.py(12): forward``)."""
    frame, out = sys._getframe(2), []
    while frame is not None and len(out) < limit:
        code = frame.f_code
        if not code.co_filename.startswith(_GT_DIR):
            out.append(f"{code.co_filename}({frame.f_lineno}): {code.co_name}")
        frame = frame.f_back
    return out


class Recorder:
    """The events of one recording (one active cycle of a profile)."""

    def __init__(self, record_shapes=False, profile_memory=False, with_stack=False, with_flops=False,
                 with_modules=False):
        self.record_shapes, self.profile_memory, self.with_stack = record_shapes, profile_memory, with_stack
        self.with_flops, self.with_modules = with_flops, with_modules
        self.events, self.open, self.tid = [], [], threading.get_ident()
        self._modules, self._module_counts, self._unhook = {}, collections.Counter(), None
        self.calling = False        # inside ``call``: what runs there is that event's own work
        self._tracked = {}          # id of an array made while profiling -> its finalizer (profile_memory)

    def start(self):
        global active
        if active is not None and active is not self:
            active.stop()
        self.tid = threading.get_ident()
        active = function.profiling = self
        if self.with_modules and module_hooks is not None:
            self._unhook = module_hooks(self)

    def stop(self):
        """Stop recording; ranges still open (a ``record_function`` not exited) end now."""
        global active
        if active is self:
            active = function.profiling = None
        if self._unhook is not None:
            self._unhook()
            self._unhook = None
        for fin in self._tracked.values():      # frees after the profile are not its events
            fin.detach()
        self._tracked.clear()
        now = perf_counter_ns()
        for ev in self.open:
            ev.end_ns = now
        self.open.clear()

    def begin(self, name, cat, shapes=None):
        """Open an event inside the innermost open one; its clock starts last."""
        parent = self.open[-1] if self.open else None
        ev = FunctionEvent(len(self.events), name, cat, self.tid, parent)
        if parent is not None:
            parent.cpu_children.append(ev)
        if shapes is not None:
            ev.input_shapes = shapes
        if self.with_stack:
            ev.stack = python_stack()
        self.events.append(ev)
        self.open.append(ev)
        ev.start_ns = perf_counter_ns()
        return ev

    def end(self, ev):
        ev.end_ns = perf_counter_ns()
        if self.open and self.open[-1] is ev:
            self.open.pop()
        elif ev in self.open:       # ranges ended out of order (record_function's __exit__ by hand)
            self.open.remove(ev)

    def records_call(self):
        """Whether work outside ``Function.apply`` is an event of its own now: on the profiling
        thread, and not inside another such event (whose own work it is)."""
        return not self.calling and threading.get_ident() == self.tid

    def call(self, name, made, fn, args, kwargs):
        """``fn(*args, **kwargs)``, work outside ``Function.apply`` (a creation function, an
        in-place update), as one event ``name``. ``made``: what it returns is new memory."""
        ev = self.begin(name, "cpu_op", [_shape(a) for a in args] if self.record_shapes else None)
        self.calling = True
        try:
            result = fn(*args, **kwargs)
        finally:
            self.calling = False
            self.end(ev)
        if made and self.profile_memory:
            ev.self_cpu_memory_usage += self._bytes_made(result)
        return result

    def forward(self, op, arrays, kwargs):
        """``Function.apply``'s forward of ``op`` on ``arrays``, timed: the result tensor."""
        if threading.get_ident() != self.tid or self.calling:
            return function.Tensor._wrap(op.forward(*arrays, **kwargs))
        ev = self.begin("", "cpu_op", [_shape(a) for a in arrays] if self.record_shapes else None)
        try:
            result = function.Tensor._wrap(op.forward(*arrays, **kwargs))
        finally:
            self.end(ev)
            ev.name = ev.trace_name = op_name(op)
        self._made(ev, type(op).__name__, result, arrays)
        return result

    def sharded(self, cls, args, kwargs):
        """``Function.apply`` of ``cls`` on tensors sharded over the mesh: one event."""
        if threading.get_ident() != self.tid or self.calling:
            return function._dispatch(cls, args, kwargs)
        ev = self.begin(cls.__name__, "cpu_op", [_shape(a) for a in args] if self.record_shapes else None)
        function.profiling = None       # the shares and the ops of its sharded rule are this event
        try:
            result = function._dispatch(cls, args, kwargs)
        finally:
            function.profiling = self if active is self else None
            self.end(ev)
        shares = getattr(getattr(result, "_ctx", None), "ctxs", None)
        ev.name = ev.trace_name = op_name(shares[0]) if shares and type(shares[0]) is cls else class_op_name(cls)
        self._made(ev, cls.__name__, result, args)
        return result

    def _made(self, ev, kind, result, inputs):
        if self.profile_memory:
            ev.self_cpu_memory_usage += self._bytes_made(result, inputs)
        if self.with_flops and kind in _PRODUCTS and inputs and getattr(inputs[0], "ndim", 0):
            ev.flops = 2 * int(result.numel()) * int(inputs[0].shape[-1])

    def node(self, ctx, run, g):
        """``run(ctx, g)``, a backward walk's step through the node ``ctx``, timed."""
        # a custom Function's output stand-in only hands its gradient on to the call's one node:
        # timed too, each call would count twice (torch's custom node is one event)
        if threading.get_ident() != self.tid or getattr(type(ctx), "custom_node", None) is not None:
            return run(ctx, g)
        ev = self.begin(node_name(ctx), "cpu_op", [_shape(g)] if self.record_shapes else None)
        try:
            grads = run(ctx, g)
        finally:
            self.end(ev)
        if self.profile_memory:
            made = grads if isinstance(grads, (tuple, list)) else (grads,)
            # the plain walk's (input, gradient) pairs: the gradients
            made = [pg[1] if type(pg) is tuple and len(pg) == 2 and not hasattr(pg, "shape") else pg for pg in made]
            ev.self_cpu_memory_usage += self._bytes_made(made, (g,))
        return grads

    def _bytes_made(self, value, inputs=()):
        """The bytes of the arrays of ``value`` that are not inputs nor views of them (torch's
        views make no memory), each array then watched: its free is counted where it happens."""
        total, ins = 0, [i for i in _arrays(inputs) if B.is_array(i)]
        for _, shards in _holders(value):
            made = []
            for a in shards:
                size = getattr(a, "nbytes", None)
                if size is None or id(a) in self._tracked or any(a is i for i in ins):
                    continue
                if ins and B.is_view(a) and any(B.is_view_of(a, i) for i in ins):
                    continue
                made.append((a, int(size)))
            group = [len(made), 0]     # shards of one tensor still alive, bytes freed of them so far
            for a, size in made:
                try:
                    fin = self._tracked[id(a)] = weakref.finalize(a, self._shard_freed, id(a), size, group)
                    fin.atexit = False
                except TypeError:       # an array no weak reference can watch: made, never seen freed
                    group[0] -= 1
                total += size
        return total

    def _shard_freed(self, key, n, group):
        """One array of a tensor is gone; the tensor's free is counted once its last shard went,
        as one free of all their bytes (a tensor spread over the mesh is one tensor)."""
        self._tracked.pop(key, None)
        group[0] -= 1
        group[1] += n
        if group[0] <= 0:
            self._freed(None, group[1])

    def _freed(self, key, n):
        """An array made while profiling is gone: ``n`` bytes less for the innermost open event
        (torch's negative self memory), or a ``[memory]`` event where none is open."""
        self._tracked.pop(key, None)
        if active is not self or threading.get_ident() != self.tid:
            return
        if self.open:
            self.open[-1].self_cpu_memory_usage -= n
            return
        ev = FunctionEvent(len(self.events), "[memory]", "cpu_instant_event", self.tid, None)
        ev.start_ns = ev.end_ns = perf_counter_ns()
        ev.self_cpu_memory_usage = -n
        self.events.append(ev)

    def module_enter(self, module):
        if threading.get_ident() != self.tid:
            return
        name = self._modules.get(id(module))
        if name is None:
            kind = type(module).__name__
            name = self._modules[id(module)] = f"nn.Module: {kind}_{self._module_counts[kind]}"
            self._module_counts[kind] += 1
        self.begin(name, "python_function")

    def module_exit(self, module):
        name = self._modules.get(id(module))
        for ev in reversed(self.open):
            if ev.name == name:
                self.end(ev)
                return


class record_function(contextlib.ContextDecorator):
    """A named range (torch's ``record_function``): a context manager, or a decorator (each call a
    range). Its event contains the ops run inside it. Outside a profile it records nothing."""

    def __init__(self, name, args=None):
        if not isinstance(name, str):
            raise TypeError(f"record_function(name): name must be a str, got {type(name).__name__}")
        self.name, self.args, self._events = name, args, []

    def __enter__(self):
        rec = active
        if rec is not None and threading.get_ident() == rec.tid:
            self._events.append((rec, rec.begin(self.name, "user_annotation")))
        else:
            self._events.append(None)
        return self

    def __exit__(self, *exc):
        if self._events:
            opened = self._events.pop()
            if opened is not None and opened[1] in opened[0].open:
                opened[0].end(opened[1])
        return False

    def _recreate_cm(self):
        # ContextDecorator's hook: each decorated call gets its own range, so calls on several
        # threads never share one object's stack of open ranges
        return record_function(self.name, self.args)


def timed(name, fn):
    """``fn`` as one event ``name`` per call while profiling (``fn`` itself otherwise): an engine
    call that updates in place (an optimizer's fused step). Callers ask only while ``active``."""
    rec = active
    if rec is None or not rec.records_call():
        return fn
    return lambda *args, **kwargs: rec.call(name, False, fn, args, kwargs)


def inside(name):
    """Whether the innermost open range while profiling is ``name``."""
    rec = active
    return rec is not None and bool(rec.open) and rec.open[-1].name == name


def around(name, fn, *args):
    """``fn(*args)`` inside a range ``name`` while profiling (not again where the innermost open
    range has that name: a subclass's ``step`` calling its base's is one range, as torch's)."""
    rec = active
    if rec is None or (rec.open and rec.open[-1].name == name):
        return fn(*args)
    with record_function(name):
        return fn(*args)


def gpu_in_use():
    """Whether gt computes on a CUDA GPU here (the torch engine on a machine with one)."""
    return B.cuda_device_count() > 0
