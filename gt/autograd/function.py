"""Differentiable ops and when they are recorded: ``Function``, grad mode, the debugging tape.

Each differentiable op is a ``Function`` subclass with ``forward`` and ``backward`` side by
side (see gt/ops). ``Function.apply`` runs the forward on engine arrays and, when grad mode is
on and an input requires grad, records the op on the output tensor (its ``grad_fn``) and on the
tape. gt/autograd/backward.py walks what was recorded.

This layer sits below the tensor layer (gt/tensor) and never imports it: the tensor layer
registers, when it is imported, the tensor class (results are made with ``Tensor._wrap``) and
how an op runs on tensors sharded over the mesh (``set_tensor_hooks``).
"""

import collections
import itertools
import weakref

from gt.autograd import anomaly, inference_saved, levels, node_hooks, saved_hooks, view_table
from gt.autograd.grad_mode import enable_grad, is_grad_enabled, no_grad, set_grad_enabled  # noqa: F401
from gt.autograd.grad_mode import mode as _mode
from gt.backend import B

# (op, output) weak references of recently recorded ops, for gt.debug; cleared by backward.
tape = collections.deque(maxlen=4096)
# How many ops each device of the mesh ran (its share of a sharded op counts once), for
# gt.debug.get_worker_stats(); an op on unsharded tensors runs on the home device, 0.
ops_run = collections.Counter()

# Registered by the tensor layer (gt/tensor/core.py) through set_tensor_hooks: the tensor class,
# ``_dispatch(cls, args, kwargs)`` (an op on inputs sharded over the mesh) and
# ``_backward_placed(ctx, g, inputs)`` (input gradients of such an op, or of a gradient spread
# over the mesh; None: take the plain path). Plain globals: Function.apply reads them on every op.
Tensor = None
_dispatch = None
_backward_placed = None
# The profiler recording now (gt/autograd/profiler_record.py), or None: the one test apply pays
profiling = None
# Whether an inference tensor was ever made (read by each recorded op: gt/autograd/inference_saved.py)
_inference_made = inference_saved.made
# While a forward AD level is entered (gt/autograd/forward_ad.py): ``hook(cls, args, kwargs)``, the op's
# result with its tangent where an input is a dual tensor, else None; None outside a level
dual_hook = None


# torch's kind of Function subclass: ``apply`` for it, and torch's ``once_differentiable`` at torch's
# path (torch.autograd.function), both set by gt/autograd/custom_function.py when it is imported (it
# builds on this module, so this one cannot import it)
_custom_apply = None
once_differentiable = None


def set_tensor_hooks(tensor_class, dispatch, backward_placed):
    """Register the tensor layer's class and sharded dispatch (called once, by gt/tensor/core.py)."""
    global Tensor, _dispatch, _backward_placed
    Tensor, _dispatch, _backward_placed = tensor_class, dispatch, backward_placed


# numbers the recorded ops in the order they were made: the backward walk runs the ops ready by
# this number, the latest first, as torch's engine runs its nodes (gt/autograd/backward.py)
sequence = itertools.count()


def put_on_tape(ctx, result):
    """Put a recorded op and the tensor it made on the debugging tape, stamped with the epoch
    (gt/autograd/rebind.py: which version of a tensor changed in place since it read) and its
    sequence number (``seq``)."""
    ctx.epoch = _epoch
    ctx.seq = next(sequence)
    tape.append((weakref.ref(ctx), weakref.ref(result)))
    if anomaly.enabled:
        anomaly.record(ctx)


# Counts the in-place changes recorded on the tape (gt/autograd/rebind.py); every op recorded
# carries the count of its time, so the walk knows which version of a changed tensor it read.
_epoch = 0


def new_epoch():
    """Start a new epoch (an in-place change of a tensor in the graph); returns its number."""
    global _epoch
    _epoch += 1
    return _epoch


class GraphNode:
    """torch's questions to a recorded node (a tensor's ``grad_fn``). Needs ``inputs`` and the
    slots ``_next`` and ``_metadata``."""

    __slots__ = ()

    @property
    def name(self):
        """The op's name, ``"Mul"`` (the public gt's ``grad_fn.name``); called, torch's name of the
        node, ``grad_fn.name() == "MulBackward0"``. One gt op standing for several torch ops
        (``Permute`` for ``transpose`` and ``t``) names its node ``_torch_name``, as torch's."""
        own = getattr(self, "__dict__", None)       # a node named apart (gt/tensor/shape.py's _named) comes first
        named = (own and own.get("_torch_name")) or getattr(self, "_torch_name", None)
        return OpName(type(self).__name__, named or type(self).__name__ + "Backward0")

    @property
    def next_functions(self):
        """torch's edges of the graph: for each tensor input, ``(node, 0)`` with the node that made
        it (its ``grad_fn``), an ``AccumulateGrad`` for a leaf that requires grad, or None. Number
        arguments have none (torch lists a scalar operand of some ops too). Kept when backward
        frees an op that saved nothing, as torch's; empty once backward has freed the values an
        op saved (torch keeps those edges too; gt/autograd/release.py)."""
        if not self.inputs:                    # freed by backward (or an op of no tensor)
            return ()
        edges = getattr(self, "_next", None)   # kept: the same AccumulateGrad nodes on every look
        if edges is None:
            edges = self._next = tuple((_node_of(a), 0) for a in self.inputs if isinstance(a, Tensor))
        return edges

    @property
    def metadata(self):
        """A dict for the caller's own notes on this node (torch's ``grad_fn.metadata``)."""
        if getattr(self, "_metadata", None) is None:
            self._metadata = {}
        return self._metadata

    def register_prehook(self, hook):
        """Run ``hook(grad_outputs)`` before this node's backward (gt/autograd/node_hooks.py)."""
        return node_hooks.register(self, hook, pre=True)

    def register_hook(self, hook):
        """Run ``hook(grad_inputs, grad_outputs)`` after this node's backward (node_hooks.py)."""
        return node_hooks.register(self, hook, pre=False)


class Function(GraphNode):
    """One differentiable op. Subclasses write ``forward(*arrays, **kw) -> array`` and
    ``backward(grad) -> tuple of grads`` (one per positional input, ``None`` where
    there is none), both on engine arrays. Non-tensor positional inputs (Python
    scalars) are passed through as constants.
    """

    __slots__ = ("inputs", "needs_input_grad", "_saved", "saved_versions", "released", "out_shape", "epoch", "seq",
                 "_next", "_metadata", "_node_hooks", "__weakref__")

    # Inputs whose whole gradient is one product that may be written straight into a leaf by
    # plain gradient descent in the backward (gt/autograd/hooks.py). An op listing some reads
    # ``self.fused`` ({input index: (alpha, leaf array)}, set by the walk, absent or None when
    # not fusing) in its backward: where it applies the update, it returns None for that input.
    fusable = ()
    # (arrays, versions) an in-place op wrote and its backward reads back (gt/tensor/inplace_grad.py);
    # a class default, so the walk's check of every op is a plain read
    written = None
    # a view op (its result may share its first input's memory): unrecorded, it is kept by ``note_view``
    makes_view = False
    # a view op whose view over the mesh holds torch's values (forward AD keeps such views of a sharded dual)
    mesh_view = False
    # the positions of the arguments torch saves for backward, where gt keeps other arrays (derived
    # ones): an inference tensor there is refused (gt/autograd/levels.py); None: those whose array ``save`` kept
    torch_saves = None

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        # torch's style of Function: forward a staticmethod taking ctx (gt/autograd/custom_function.py)
        forward = next(c.__dict__["forward"] for c in cls.__mro__ if "forward" in c.__dict__)
        if isinstance(forward, staticmethod):
            cls.apply = classmethod(_custom_apply)
            cls.__call__ = _legacy_call

    def save(self, *values):
        """Keep ``values`` (engine arrays, or anything else) for the backward, with the versions
        of the arrays: the walk raises if one is changed in place before then
        (gt/autograd/versions.py)."""
        hooks = saved_hooks.active()
        # torch packs only what a recorded op saves: not under no_grad, nor for inputs without grad
        if hooks is not None and _mode.record and True in getattr(self, "needs_input_grad", (True,)):
            self._saved = saved_hooks.Packed(values, hooks, Tensor._wrap, B.is_array)
            self.saved_versions = None
            return
        self._saved = values
        self.saved_versions = B.versions_of(values)

    def save_for_graph(self, *arrays):
        """Version-check ``arrays`` (inputs that ``backward`` does not read, but ``backward_graph``
        reads through ``self.inputs``) before a ``create_graph`` backward only: an in-place change
        of them raises there, and leaves the plain backward alone (torch saves what each reads)."""
        self.graph_saved = (arrays, B.versions_of(arrays))

    @property
    def saved(self):
        """What ``save`` kept (unpacked by the saved-tensor hooks it was packed with, if any)."""
        values = self._saved
        if type(values) is saved_hooks.Packed:
            return values.unpack(_data_of)
        return values

    @saved.setter
    def saved(self, values):
        self._saved = values

    def forward(self, *args, **kwargs):
        raise NotImplementedError

    def backward(self, grad):
        raise NotImplementedError

    @classmethod
    def apply(cls, *args, **kwargs):
        # Runs on every op: one pass over the inputs, no generator, and the float check of the
        # result only when there is something to record (a small model's step is bound by this).
        if dual_hook is not None:
            dual = dual_hook(cls, args, kwargs)
            if dual is not None:
                return dual
        arrays, needs = [], []
        for a in args:
            if isinstance(a, Tensor):
                if a._placed is not None:  # sharded or partial over the mesh
                    out = _dispatch(cls, args, kwargs) if profiling is None else profiling.sharded(cls, args, kwargs)
                    # (a view over the mesh is kept by placed_view, not note_view: unrecorded ones, a
                    # transform's captures, an inference tensor's views)
                    return levels.placed_view(out, cls, args, kwargs) if cls.makes_view else out
                arrays.append(a._array)
                needs.append(a._requires_grad)
            else:
                arrays.append(a)
                needs.append(False)
        ops_run[0] += 1
        ctx = cls()
        ctx.needs_input_grad = needs = tuple(needs)
        if profiling is None:
            result = Tensor._wrap(ctx.forward(*arrays, **kwargs))
        else:
            result = profiling.forward(ctx, arrays, kwargs)
        # only float results carry gradients (a cast to int64 ends the graph, as in torch)
        # (_inference_made: false while no inference tensor is alive, gt/autograd/inference_saved.py)
        if _mode.record and True in needs and result.dtype.differentiable and (
                not _inference_made[0] or inference_saved.records(ctx, args, arrays)):
            result._requires_grad = True
            ctx.inputs = args
            ctx.released = False
            ctx.out_shape = result.shape
            result._ctx = ctx
            put_on_tape(ctx, result)
        elif cls.makes_view:
            note_view(ctx, result, args, not _mode.record)
            if _inference_made[0] and inference_saved.is_inference(args[0]):
                levels.inference_view(result, args[0])
        return result

    def __repr__(self):
        return f"<{self.name}Backward>"


# Unrecorded views (gt/autograd/views.py): id(base) -> [weak reference to the base, weak
# references to the views taken of it in grad mode...]; and weak references to the views taken
# under no_grad (torch refuses to differentiate through one once its memory is changed in place
# in grad mode, through whichever alias, so they are found by memory).
views_of = {}
no_grad_views = []


def note_view(ctx, view, args, no_grad):
    """Keep ``view``, made by the unrecorded view op ``ctx`` from ``args``, as a view of ``args[0]``
    where it lies in its memory (an index array gives a copy): a later in-place write of a value
    that requires grad into either gives it the base's new history, as torch's
    (gt/autograd/views.py). ``no_grad``: taken under ``no_grad``. About half a microsecond."""
    base = args[0]
    if _mode.level:        # a view of a tensor a gt.func transform captured is captured too
        levels.inherit(view, base)
    # a reshape to the same shape hands back the base's own array: a view all the same, as torch's
    if view._array is not base._array and not B.is_view_of(view._array, base._array):
        return
    view._view = (base, ctx, args, no_grad)       # the base held, as torch's ``view._base``
    view_table.remember(views_of, no_grad_views, base, view, no_grad)


def _legacy_call(self, *args, **kwargs):
    raise RuntimeError("Legacy autograd function with non-static forward method is deprecated. Please use new-style "
                       "autograd function with static forward method. (Example: "
                       "https://pytorch.org/docs/stable/autograd.html#torch.autograd.Function)")


class OpName(str):
    """An op's name as a string that, called, gives torch's name of its node (``name()``)."""

    def __new__(cls, name, torch_name):
        self = super().__new__(cls, name)
        self.torch_name = torch_name
        return self

    def __call__(self):
        return self.torch_name


class AccumulateGrad:
    """torch's graph node of a leaf that requires grad, as ``next_functions`` lists it:
    ``variable`` is the leaf. One per leaf while some node refers to it, as torch's."""

    __slots__ = ("variable", "__weakref__")
    next_functions = ()

    def __init__(self, variable):
        self.variable = variable

    @staticmethod
    def name():
        return "torch::autograd::AccumulateGrad"

    def __repr__(self):
        return f"<AccumulateGrad of a leaf of shape {tuple(self.variable.shape)}>"


_accumulators = weakref.WeakValueDictionary()    # id(leaf) -> its AccumulateGrad (it holds the leaf)


def _node_of(value):
    """The ``next_functions`` node of one input of an op."""
    if not isinstance(value, Tensor):
        return None
    if value._ctx is not None:
        return getattr(value._ctx, "custom_node", value._ctx)    # a custom call's output: its one node
    if not value._requires_grad:
        return None
    node = _accumulators.get(id(value))
    if node is None or node.variable is not value:
        node = _accumulators[id(value)] = AccumulateGrad(value)
    return node


def _data_of(t):
    """The engine array of what an unpack hook returned (a tensor, or an array)."""
    return t._data if isinstance(t, Tensor) else B.asarray(t)


def unbroadcast(grad, shape):
    """Sum ``grad`` down to ``shape``, undoing numpy broadcasting (leading axes and size-1 axes).
    The result is a fresh array (no view), so a leaf can keep it as its .grad without a copy."""
    shape = tuple(shape)
    if tuple(grad.shape) == shape:
        return grad
    lead = grad.ndim - len(shape)
    if lead > 0:
        grad = B.sum(grad, axis=tuple(range(lead)))
    ones = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    if ones:
        grad = B.sum(grad, axis=ones, keepdims=True)
    return grad if tuple(grad.shape) == shape else B.reshape(grad, shape)


def fit_grad(grad, shape, dtype):
    """``grad`` summed back to ``shape`` (undoing broadcasting) and cast to ``dtype``, as its input."""
    if tuple(grad.shape) != tuple(shape):
        grad = unbroadcast(grad, shape)
    if B.dtype_of(grad) != dtype:
        if B.dtype_of(grad).is_complex and not dtype.is_complex:
            grad = B.real(grad)       # a real input of a complex result: the real part (torch's)
        grad = B.astype(grad, dtype)
    return grad
