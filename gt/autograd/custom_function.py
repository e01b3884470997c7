"""torch's way of extending autograd: a ``gt.autograd.Function`` subclass whose ``forward`` is a
``staticmethod`` taking ``ctx`` (or taking the inputs only, with a ``setup_context``), and whose
``backward(ctx, *grads)`` returns one gradient per input of ``forward``; called as
``MyFn.apply(*args)``. Both work on gt tensors, as torch's do on torch tensors::

    class Exp(gt.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            y = x.exp()
            ctx.save_for_backward(y)
            return y

        @staticmethod
        def backward(ctx, g):
            y, = ctx.saved_tensors
            return g * y

gt's own ops subclass the same class with instance methods on engine arrays (gt/ops); a class
is torch's kind when its ``forward`` is a ``staticmethod`` (``Function.__init_subclass__``
gives it this module's ``apply``).

How a call is recorded: one node (``CustomNode``, the ``ctx`` that forward and backward see)
takes the call's inputs and makes a hidden scalar tensor; each differentiable output is a small
``_Output`` op of that scalar. The walk reaches every output's op before the node (they are its
only users): each leaves its gradient with the node and passes a zero on, and the node then
calls the user's ``backward`` once with all of them, as torch does. Under
``create_graph=True`` the user's backward runs in grad mode, so its gradient can be
differentiated again (unless it is marked ``once_differentiable``).
"""

import functools
import inspect

from gt.autograd import (deferred, forward_ad, function, function_transforms, grad_hooks, inference_saved, node_hooks,
                         rebind, saved_hooks)
from gt.autograd.function import Function, fit_grad, no_grad, put_on_tape
from gt.autograd.grad_mode import mode
from gt.autograd.sparse_grad import SparseGrad
from gt.backend import B

_FREED = ("Trying to backward through the graph a second time (or directly access saved tensors after they have "
          "already been freed): specify retain_graph=True if you need to backward through the graph a second time "
          "or to access saved tensors after calling backward")


def once_differentiable(backward):
    """Mark a ``backward`` whose gradient cannot be differentiated again (torch's decorator): it
    runs without recording, and under ``create_graph=True`` its gradients carry no graph."""
    @functools.wraps(backward)
    def wrapper(ctx, *grads):
        with no_grad():
            return backward(ctx, *grads)
    wrapper.once_differentiable = True
    return wrapper


class CustomNode(Function):
    """The ``ctx`` of one call of a torch-style Function: what ``forward`` saves and marks, and the
    recorded node whose backward calls the user's ``backward``."""

    whole_grad = True      # the user's backward runs once, on the whole gradient (gt/tensor/dispatch.py)
    complex_graph = True   # its recorded gradient is the user's backward, written for complex tensors or not

    def __init__(self, fn, inputs):
        self.fn, self.inputs, self._released, self.saved_objects = fn, inputs, False, ()
        self.needs_input_grad = tuple(isinstance(a, function.Tensor) and a.requires_grad for a in inputs)
        self.to_save, self.saved = (), None
        self.materialize_grads, self.non_differentiable, self.outputs = True, set(), []
        self.grads = None
        self.dirty = ()
        self._fn_hooks = self._hooked_out = None

    # ---- torch's ctx API -------------------------------------------------------------------------
    def save_for_backward(self, *tensors):
        """Keep tensors (or None) for the backward, where ``saved_tensors`` gives them back; changing
        one in place before then makes the backward raise, as torch's does."""
        for i, t in enumerate(tensors):   # by position: tensors.index would compare tensors with ==
            if t is not None and not isinstance(t, function.Tensor):
                raise TypeError(f"save_for_backward can only save tensors, but argument {i} is of type "
                                f"{type(t).__name__}")
        self.to_save = tensors

    def save_for_forward(self, *tensors):
        """Keep tensors (or None) for ``jvp`` (forward AD), where ``saved_tensors`` gives them back."""
        self.saved_for_forward = tensors

    @property
    def saved_tensors(self):
        if self.released:
            raise RuntimeError(_FREED)
        saved = self.saved_objects
        return saved.unpack(lambda t: t) if type(saved) is saved_hooks.Packed else saved

    def mark_non_differentiable(self, *outputs):
        """These outputs get no gradient (``requires_grad`` False); the backward still receives a
        zero tensor for each (None without materialized gradients)."""
        self.non_differentiable.update(id(t) for t in outputs)

    def set_materialize_grads(self, value):
        """With False, an output that gets no gradient passes None to ``backward`` instead of zeros."""
        self.materialize_grads = bool(value)

    def mark_dirty(self, *tensors):
        """Say that ``forward`` changed these inputs in place; it must return each of them. As in
        torch, the returned tensor is the input itself, whose ``grad_fn`` becomes this call: ops
        recorded before read its values of before (their gradients go on to its history), ops
        after read the new ones. A leaf that requires grad is refused, as torch refuses it."""
        for i, t in enumerate(tensors):
            if not any(t is a for a in self.inputs):
                raise ValueError(f"{self.name}: ctx.mark_dirty: argument {i} is not an input of forward; only inputs "
                                 "changed in place can be marked dirty")
        self.dirty = tensors

    @property
    def name(self):
        # shown as <NameBackward>, as gt names its ops; name() is torch's name of the node
        return function.OpName(self.fn.__name__, self.fn.__name__ + "Backward")

    # ---- the recorded node ------------------------------------------------------------------------
    @property
    def released(self):
        return self._released

    @released.setter
    def released(self, value):   # the walk frees the graph: the saved tensors go with it
        self._released = value
        if value:
            self.saved_objects = ()

    def register_prehook(self, hook):
        """Run ``hook(grad_outputs)`` before the user's backward: one entry per output of
        ``forward``, None where an output got no gradient (torch's, before materializing)."""
        return self._register(hook, pre=True)

    def register_hook(self, hook):
        """Run ``hook(grad_inputs, grad_outputs)`` after the user's backward: one gradient (or
        None) per tensor input of ``forward``."""
        return self._register(hook, pre=False)

    def _register(self, hook, pre):
        # kept apart from _node_hooks: the walk would hand those the hidden scalar's gradient
        return node_hooks.add(self, "_fn_hooks", hook, pre)

    def _grads_in(self):
        grads = [g if g is None or isinstance(g, function.Tensor) else function.Tensor._wrap(g)
                 for g in self.grads or [None] * len(self.outputs)]
        self.grads = None
        if self._fn_hooks is not None:
            for hook in list(self._fn_hooks.pre):
                got = hook(tuple(grads))
                if got is not None:
                    grads = list(node_hooks.one_each(got, len(grads), "prehook"))
            self._hooked_out = tuple(grads)
        for i, (out, dtype, shape) in enumerate(self.outputs):
            if grads[i] is None and self.materialize_grads and dtype is not None:   # None for a non-tensor output
                grads[i] = function.Tensor._wrap(B.zeros(shape, dtype))
        return grads

    def _run_post_hooks(self, out):
        """``out`` (one gradient per input) after the hooks registered with ``register_hook``."""
        tensors = [i for i, a in enumerate(self.inputs) if isinstance(a, function.Tensor)]
        grad_inputs = tuple(out[i] for i in tensors)
        for hook in list(self._fn_hooks.post):
            got = hook(grad_inputs, self._hooked_out)
            if got is not None:
                grad_inputs = node_hooks.one_each(got, len(tensors), "hook")
        for i, g in zip(tensors, grad_inputs):
            out[i] = g if self.needs_input_grad[i] else None
        return out

    def _call_backward(self, grads):
        backward = self.fn.backward
        if backward is Function.backward:
            backward = getattr(self.fn, "vjp", None)
            if backward is None:
                raise NotImplementedError(f"{self.fn.__name__}: you must implement either the backward or vjp method "
                                          "of a custom autograd.Function to use it with backward mode AD")
        got = backward(self, *grads)
        if not isinstance(got, tuple):
            got = (got,)
        n = len(self.inputs)
        if len(got) < n or any(g is not None for g in got[n:]):
            raise RuntimeError(f"function {self.name}Backward returned an incorrect number of gradients (expected {n}, got "
                               f"{len(got)})")
        out = []
        for i, (x, g) in enumerate(zip(self.inputs, got)):
            if g is not None and not isinstance(g, function.Tensor):
                raise RuntimeError(f"function {self.name}Backward: expected a tensor or None as gradient {i}, got "
                                   f"{type(g).__name__}")
            if g is not None and not isinstance(x, function.Tensor):
                raise RuntimeError(f"function {self.name}Backward returned a gradient different than None at position "
                                   f"{i + 1}, but the corresponding forward input was not a Variable")
            if g is None or not self.needs_input_grad[i]:
                out.append(None)
                continue
            if g.shape != x.shape and not _sums_to(g.shape, x.shape):
                raise RuntimeError(f"Function {self.name}Backward returned an invalid gradient at index {i} - got "
                                   f"{list(g.shape)} but expected shape compatible with {list(x.shape)}")
            out.append(g)
        return out if self._fn_hooks is None or not self._fn_hooks.post else self._run_post_hooks(out)

    def backward(self, _):
        # the user's backward is no op's own backward on plain arrays: ops it runs (a walk of its own
        # included, gt.utils.checkpoint's) must not take the walk's flag for one (gt/autograd/deferred.py)
        plain, deferred.plain = deferred.plain, False
        try:
            with no_grad():
                grads = self._call_backward(self._grads_in())
        finally:
            deferred.plain = plain
        return tuple(None if g is None else _plain_grad(g, x, self.seq) for g, x in zip(grads, self.inputs))

    def backward_graph(self, _):
        if getattr(self.fn.backward, "once_differentiable", False):
            with no_grad():
                return tuple(None if g is None else g.detach() for g in self._call_backward(self._grads_in()))
        return tuple(self._call_backward(self._grads_in()))


def _plain_grad(g, x, seq):
    """The user's gradient tensor ``g`` for input ``x`` as the walk takes it; a sparse one stays
    sparse for a leaf (gt/autograd/sparse_grad.py: ``gt.utils.checkpoint`` of a sparse embedding)."""
    if g.is_sparse:
        sparse = SparseGrad(g, seq)
        return sparse if x._ctx is None else sparse.materialize()
    return fit_grad(g._data, x.shape, x.dtype)


def _sums_to(got, shape):
    """Whether a gradient of shape ``got`` sums back to ``shape`` (``shape`` broadcasts to it)."""
    got, shape = tuple(got), tuple(shape)
    if len(shape) > len(got):
        return False
    return all(s == g or s == 1 for s, g in zip(shape, got[len(got) - len(shape):]))


_CTX_API = frozenset(("saved_tensors", "save_for_backward", "mark_dirty", "mark_non_differentiable",
                      "set_materialize_grads"))
# what gt's node keeps for itself on the ctx: never handed out as if ``forward`` had set it
_NODE_OWN = frozenset(("fn", "inputs", "saved_objects", "grads", "outputs", "dirty", "dtype", "index",
                       "materialize_grads", "out_shape", "saved", "to_save"))


class _Output(Function):
    """One differentiable output of a custom call: hands its gradient to the node."""

    complex_graph = True   # the user's backward is the formula, complex or not (gt/autograd/graph_walk.py)
    whole_grad = True      # on a mesh, a partial gradient is summed before it is handed over

    def __init__(self, node, index):
        self.node, self.index = node, index

    @property
    def custom_node(self):
        """What torch's ``grad_fn`` of this output is: the call's one node, shared by its outputs
        (``Tensor.grad_fn`` and ``next_functions`` give it)."""
        return self.node

    @property
    def name(self):
        return self.node.name

    @property
    def next_functions(self):
        return self.node.next_functions      # the hidden scalar between them is gt's, not torch's

    @property
    def metadata(self):
        return self.node.metadata

    def register_prehook(self, hook):
        return self.node.register_prehook(hook)     # torch's grad_fn of a custom call is its one node

    def register_hook(self, hook):
        return self.node.register_hook(hook)

    def __getattr__(self, attr):
        # torch's grad_fn of a custom call is its ctx: ``y.grad_fn.saved_tensors``, ``y.grad_fn.k``;
        # only the ctx API and what forward set, never what the walk probes ops for (``_saved``, ...)
        node = self.__dict__.get("node")
        if node is not None and (attr in _CTX_API or (attr in node.__dict__ and not attr.startswith("_")
                                                      and attr not in _NODE_OWN)):
            return getattr(node, attr)
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{attr}'")

    def _give(self, g):
        node = self.node
        if node.grads is None:
            node.grads = [None] * len(node.outputs)
        node.grads[self.index] = g

    def backward(self, g):
        self._give(g)
        return (B.zeros((), self.node.dtype),)

    def backward_graph(self, g):
        self._give(g)
        return (function.Tensor._wrap(B.zeros((), self.node.dtype)),)


def apply(cls, *args, **kwargs):
    """``cls.forward`` run without recording on ``args``, and its outputs recorded as one node
    whose backward is ``cls.backward`` (torch's ``Function.apply``)."""
    Tensor = function.Tensor
    setup = getattr(cls, "setup_context", None)      # torch's other style: forward takes no ctx
    if setup is not None:                            # the inputs with their defaults, as torch binds them
        bound = inspect.signature(cls.forward).bind(*args, **kwargs)
        bound.apply_defaults()
        args, kwargs = bound.args, bound.kwargs
    ruled = None    # (outputs of cls's vmap staticmethod, whether they stand for forward's)
    if mode.layers and not cls.__module__.startswith("gt."):    # in a transform (gt's own: not torch's kind)
        ruled = function_transforms.layered(cls, setup, args, kwargs)
        if ruled is not None and not ruled[1]:
            return ruled[0]
    # keyword arguments count as inputs after the positional ones (one gradient each), as in torch
    node = CustomNode(cls, args + tuple(kwargs.values()))
    dual = _dual_tangents(cls, node.inputs)     # torch's forward AD: cls.jvp gives the tangents
    with no_grad(), forward_ad.hidden():
        if setup is not None:
            result = cls.forward(*args, **kwargs) if ruled is None else ruled[0]
            setup(node, args, result)
        else:
            result = cls.forward(node, *args, **kwargs)
    single = not isinstance(result, tuple)
    outputs = (result,) if single else result
    record = function.is_grad_enabled() and True in node.needs_input_grad
    _check_dirty(node, outputs)
    fresh = []
    for out in outputs:
        # an input returned as it is: an alias, as torch's (a dirty one too when nothing is recorded
        # and it requires grad: torch's result then does not)
        dirty = any(out is d for d in node.dirty) and (record or not out._requires_grad)
        if isinstance(out, Tensor) and any(out is a for a in node.inputs) and not dirty:
            out = Tensor._from_value(out._value)
        fresh.append(out)
    node.outputs = [(t, t.dtype, t.shape) if isinstance(t, Tensor) else (None, None, None) for t in fresh]
    if record and inference_saved.made[0]:
        inference_saved.refuse_tensors(node.to_save, node.inputs)
    hooks = saved_hooks.active() if record else None    # torch packs nothing for a call it does not record
    if hooks is None:
        node.saved_objects = tuple(node.to_save)
        node.save(*(t._array for t in node.to_save if t is not None and t._placed is None))   # their versions
    else:    # gt.autograd.graph.saved_tensors_hooks: each tensor packed once, its version not checked
        node.saved_objects = saved_hooks.Packed(node.to_save, hooks, lambda t: t, lambda v: v is not None)
    if record:
        _record(node, fresh)
    if dual is not None:
        _dual_outputs(cls, node, dual, fresh)
    return fresh[0] if single else tuple(fresh)


# ---- forward AD (gt/autograd/forward_ad.py) -----------------------------------------------------
def _dual_tangents(cls, inputs):
    """The tangents ``cls.jvp`` receives for a call on ``inputs`` (zeros for a tensor without one,
    None for a non-tensor), or None where no level is entered or no input is dual. Raises torch's
    error where ``cls`` has no ``jvp``."""
    if not forward_ad.entered():
        return None
    tangents = [forward_ad.tangent_of(a) if isinstance(a, function.Tensor) else None for a in inputs]
    if all(t is None for t in tangents):
        return None
    if getattr(cls, "jvp", None) is None:
        raise NotImplementedError("You must implement the jvp function for custom autograd.Function to use it with "
                                  "forward mode AD.")
    return [t if t is not None or not isinstance(a, function.Tensor) else
            function.Tensor._wrap(B.zeros(a.shape, a.dtype)) for a, t in zip(inputs, tangents)]


def _dual_outputs(cls, ctx, tangents, outputs):
    """Give ``outputs`` of a custom call the tangents ``cls.jvp(ctx, *tangents)`` returns (in it,
    ``ctx.saved_tensors`` are those of ``ctx.save_for_forward``, as torch's)."""
    saved = ctx.saved_objects
    if hasattr(ctx, "saved_for_forward"):
        ctx.saved_objects = tuple(ctx.saved_for_forward)
    try:
        with forward_ad.hidden():
            got = cls.jvp(ctx, *tangents)
    finally:
        ctx.saved_objects = saved
    got = got if isinstance(got, tuple) else (got,)
    if len(got) != len(outputs):
        raise RuntimeError(f"jvp: expected {len(outputs)} tangents (one per output of forward), got {len(got)}")
    for out, tangent in zip(outputs, got):
        if isinstance(out, function.Tensor) and tangent is not None and \
                (out.dtype.is_floating_point or out.dtype.is_complex):
            if tuple(tangent.shape) != tuple(out.shape):
                raise RuntimeError(f"jvp: the tangent of an output of shape {list(out.shape)} has shape "
                                   f"{list(tangent.shape)}")
            forward_ad.set_tangent(out, tangent)


def _check_dirty(node, outputs):
    """torch's rules for inputs marked dirty: each is returned, and none is a leaf that requires
    grad or a view (gt rewrites no other tensor's history here)."""
    for t in node.dirty:
        if not any(t is out for out in outputs):
            raise RuntimeError("Some elements marked as dirty during the forward method were not returned as output. "
                               "The inputs that are modified inplace must all be outputs of the Function.")
        if t._requires_grad and t._ctx is None and function.is_grad_enabled():
            raise RuntimeError("a leaf Variable that requires grad has been used in an in-place operation.")
        if t._ctx is not None and rebind.view_base(t) is not None:
            raise NotImplementedError(f"{node.name}: ctx.mark_dirty of a view of another tensor in the graph is not "
                                      "supported in gt; change the tensor it is a view of instead")


def _rebase_dirty(node):
    """Each input marked dirty gets a stand-in for its values of before (its history and hooks),
    which this call reads; the input itself becomes an output of the call (gt/autograd/rebind.py)."""
    Tensor = function.Tensor
    olds = []
    for t in node.dirty:
        old = Tensor._from_value(t._value)
        old._ctx, old._requires_grad = t._ctx, t._requires_grad
        grad_hooks.move(t, old)
        node.inputs = tuple(old if a is t else a for a in node.inputs)
        olds.append((t, old))
    return olds


def _record(node, outputs):
    Tensor = function.Tensor
    olds = _rebase_dirty(node)
    # complex outputs too, as torch's (they were left without a gradient before)
    diff = [i for i, t in enumerate(outputs) if isinstance(t, Tensor) and t.dtype.differentiable
            and id(t) not in node.non_differentiable]
    if not diff:
        return
    node.dtype = outputs[diff[0]].dtype
    hidden = Tensor._wrap(B.zeros((), node.dtype))
    hidden._requires_grad, hidden._ctx, node.out_shape = True, node, ()
    put_on_tape(node, hidden)
    for i in diff:
        op = _Output(node, i)
        op.inputs, op.needs_input_grad, op.released, op.out_shape = (hidden,), (True,), False, outputs[i].shape
        out = outputs[i]
        out._ctx, out._requires_grad = op, True
        put_on_tape(op, out)
    for t, old in olds:
        rebind.changed(t, old, function.new_epoch())


function._custom_apply, function.once_differentiable = apply, once_differentiable
