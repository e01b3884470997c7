"""Tape-based reverse-mode autograd.

Each differentiable op is a ``Function`` subclass with ``forward`` and
``backward`` side by side (see gt/ops). ``Function.apply`` runs the forward on
engine arrays and, when grad mode is on and an input requires grad, records the
op on the output tensor (its ``grad_fn``) and on the tape.
``Tensor.backward()`` walks the recorded graph in reverse topological order,
accumulating gradients, then frees it.

This layer sits below the tensor layer (gt/tensor) and never imports it: the tensor layer
registers, when it is imported, the tensor class (results are made with ``Tensor._wrap``) and
how an op runs on tensors sharded over the mesh (``set_tensor_hooks``).
"""

import collections
import functools
import weakref

from gt.backend import B
from gt.sharding import layout
from gt.sharding.layout import Placed

_grad_enabled = True
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


def set_tensor_hooks(tensor_class, dispatch, backward_placed):
    """Register the tensor layer's class and sharded dispatch (called once, by gt/tensor/core.py)."""
    global Tensor, _dispatch, _backward_placed
    Tensor, _dispatch, _backward_placed = tensor_class, dispatch, backward_placed


def put_on_tape(ctx, result):
    """Put a recorded op and the tensor it made on the debugging tape."""
    tape.append((weakref.ref(ctx), weakref.ref(result)))


def is_grad_enabled():
    return _grad_enabled


class set_grad_enabled:
    """Turn gradient recording on or off, as torch does: called on its own it takes effect at
    once (``gt.set_grad_enabled(False)``); as a context manager it restores the previous mode
    on exit; as a decorator it applies to each call of the function only."""

    def __init__(self, mode=True):
        global _grad_enabled
        self.mode = bool(mode)
        self.prev = _grad_enabled
        self._saved = []  # one entry per active `with`, so one instance may be entered re-entrantly
        if type(self) is set_grad_enabled:  # no_grad / enable_grad act only when entered
            _grad_enabled = self.mode

    def __enter__(self):
        global _grad_enabled
        # set_grad_enabled captured the mode before switching it in __init__
        self._saved.append(self.prev if type(self) is set_grad_enabled and not self._saved else _grad_enabled)
        _grad_enabled = self.mode
        return self

    def __exit__(self, *exc):
        global _grad_enabled
        _grad_enabled = self._saved.pop()
        return False

    def __call__(self, func):
        global _grad_enabled
        if type(self) is set_grad_enabled:
            _grad_enabled = self.prev  # decorating a function does not switch the mode now
        mode = self.mode

        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            global _grad_enabled
            prev, _grad_enabled = _grad_enabled, mode
            try:
                return func(*args, **kwargs)
            finally:
                _grad_enabled = prev

        return wrapper


class no_grad(set_grad_enabled):
    """Record nothing on the tape: ``with gt.no_grad(): ...`` or ``@gt.no_grad()``.

    Also usable as a bare decorator: ``@gt.no_grad``.
    """

    def __new__(cls, func=None):
        self = super().__new__(cls)
        if callable(func):
            self.__init__()
            return self(func)
        return self

    def __init__(self, func=None):
        super().__init__(False)


class enable_grad(set_grad_enabled):
    """Turn recording back on inside a ``no_grad`` region (context manager or decorator)."""

    def __init__(self):
        super().__init__(True)


class Function:
    """One differentiable op. Subclasses write ``forward(*arrays, **kw) -> array`` and
    ``backward(grad) -> tuple of grads`` (one per positional input, ``None`` where
    there is none), both on engine arrays. Non-tensor positional inputs (Python
    scalars) are passed through as constants.
    """

    __slots__ = ("inputs", "needs_input_grad", "saved", "released", "out_shape", "__weakref__")

    def save(self, *values):
        self.saved = values

    def forward(self, *args, **kwargs):
        raise NotImplementedError

    def backward(self, grad):
        raise NotImplementedError

    @classmethod
    def apply(cls, *args, **kwargs):
        arrays = []
        for a in args:
            if isinstance(a, Tensor):
                if a._placed is not None:  # sharded or partial over the mesh
                    return _dispatch(cls, args, kwargs)
                arrays.append(a._array)
            else:
                arrays.append(a)
        ops_run[0] += 1
        ctx = cls()
        needs = tuple(isinstance(a, Tensor) and a.requires_grad for a in args)
        ctx.needs_input_grad = needs
        out = ctx.forward(*arrays, **kwargs)
        result = Tensor._wrap(out)
        # only float results carry gradients (a cast to int64 ends the graph, as in torch)
        record = _grad_enabled and any(needs) and result.dtype.is_floating_point
        result._requires_grad = record
        if record:
            ctx.inputs = args
            ctx.released = False
            ctx.out_shape = result.shape
            result._ctx = ctx
            put_on_tape(ctx, result)
        return result

    @property
    def name(self):
        return type(self).__name__

    def __repr__(self):
        return f"<{self.name}Backward>"


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
        grad = B.astype(grad, dtype)
    return grad


def _topological_order(root):
    """Nodes reachable from ``root`` through recorded ops, inputs before outputs (iterative DFS)."""
    order, seen = [], set()
    stack = [(root, False)]
    while stack:
        node, expanded = stack.pop()
        if expanded:
            order.append(node)
            continue
        if id(node) in seen:
            continue
        seen.add(id(node))
        stack.append((node, True))
        ctx = node._ctx
        if ctx is not None and not ctx.released:
            for parent in ctx.inputs:
                if isinstance(parent, Tensor) and parent.requires_grad and id(parent) not in seen:
                    stack.append((parent, False))
    return order


def backward(root, grad=None, retain_graph=False):
    """Accumulate d(root)/d(leaf) into every leaf's ``.grad``. See ``Tensor.backward``."""
    if not root.requires_grad:
        raise RuntimeError(
            "backward() called on a tensor that does not require grad and has no grad_fn: "
            "create the inputs with requires_grad=True, and do not compute it under gt.no_grad()"
        )
    if grad is None:
        if root.numel() != 1:
            raise RuntimeError(
                f"backward() without a gradient is only defined for scalar outputs; this tensor has shape "
                f"{root.shape}: call .sum() or .mean() first, or pass backward(grad) with that shape"
            )
        seed = B.ones(root.shape, root.dtype)
    else:
        seed = grad._data if isinstance(grad, Tensor) else B.asarray(grad, dtype=root.dtype)
        if tuple(seed.shape) != root.shape:
            raise ValueError(f"backward(grad): grad has shape {tuple(seed.shape)} but the tensor has shape {root.shape}")
        # A copy in the root's dtype: the caller keeps theirs; ours may end up as a leaf's .grad.
        seed = B.astype(seed, root.dtype) if B.dtype_of(seed) != root.dtype else B.copy(seed)

    if root._ctx is not None and root._ctx.released:
        raise RuntimeError(_FREED)

    order = _topological_order(root)
    grads = {id(root): seed}
    # How many entries of ``grads`` hold each array (by id; every entry is counted in and out, so
    # an id reused by a new array starts from zero). A leaf may keep the array it is handed as its
    # .grad without a copy only when no entry still holds it and it is no view (of another
    # gradient, or a broadcast): users mutate .grad in place (zero_(), +=), which must not change
    # another leaf's gradient.
    held = collections.Counter({id(seed): 1})
    for node in reversed(order):
        g = grads.pop(id(node), None)
        if g is None:
            continue
        _release(held, g)
        ctx = node._ctx
        if ctx is None:
            _accumulate_leaf(node, g, held)
            continue
        if node._retains_grad:
            _accumulate_leaf(node, g, None)  # g also flows on into ctx.backward: always a copy
        if ctx.released:
            raise RuntimeError(_FREED)
        fitted = False
        input_grads = None
        if not isinstance(ctx, Function) or isinstance(g, Placed):
            input_grads = _backward_placed(ctx, g, ctx.inputs)  # sharded: grads come in shape and dtype
            fitted = input_grads is not None
            if not fitted:
                g = layout.materialize(g)
        if not fitted:
            input_grads = ctx.backward(g)
            if not isinstance(input_grads, tuple):
                input_grads = (input_grads,)
        for parent, pg in zip(ctx.inputs, input_grads):
            if pg is None or not getattr(parent, "requires_grad", False):
                continue
            if not fitted:
                pg = fit_grad(pg, parent.shape, parent.dtype)
            prev = grads.get(id(parent))
            if prev is not None:
                _release(held, prev)
                pg = layout.add(prev, pg)  # out of place: prev may be a view that other entries share
            grads[id(parent)] = pg
            held[id(pg)] += 1
        if not retain_graph:
            ctx.saved = None
            ctx.inputs = ()
            ctx.released = True
    tape.clear()
    if _after_backward:
        hooks = list(_after_backward)
        _after_backward.clear()
        for fn in hooks:
            fn()


_after_backward = []   # callbacks for the end of the next backward() (gt.distributed's gradient sync)


def call_after_backward(fn):
    """Run ``fn()`` once, when the next ``backward()`` has filled every ``.grad`` (registering the
    same callable twice before then runs it once)."""
    if fn not in _after_backward:
        _after_backward.append(fn)


def _release(held, arr):
    key = id(arr)
    held[key] -= 1
    if held[key] <= 0:
        del held[key]


def _accumulate_leaf(node, g, held):
    """Add ``g`` into ``node.grad``. ``held`` (None: always copy) tells whether the pass still
    holds ``g`` elsewhere; only an array nobody else holds becomes the .grad without a copy."""
    if node._placed is not None or isinstance(g, Placed):
        _accumulate_placed(node, g, held)
        return
    if node.grad is None:
        owned = held is not None and id(g) not in held and B.is_array(g) and not B.is_view(g)
        node.grad = Tensor._wrap(g if owned else B.copy(g), requires_grad=False)
    else:
        node.grad._data += g  # the leaf owns its .grad array, so in place is safe


def _accumulate_placed(node, g, held):
    """``_accumulate_leaf`` where the leaf or its gradient is spread over the mesh: the gradient
    takes the leaf's placement. A replicated parameter's partial gradient is all-reduced here,
    once per backward, after every contribution has been summed."""
    target = node.placement
    if node._placed is None:  # replicated leaf
        if isinstance(g, Placed):
            shared = held is None or id(g) in held
            if shared:
                g = Placed(g.shards, g.placement, g.shape, owned=False)
            arr = layout.materialize(g)  # a fresh array, or the first share that we own
        else:
            arr = B.copy(g)
        if node.grad is None:
            node.grad = Tensor._wrap(arr, requires_grad=False)
        else:
            node.grad._data += arr
        return
    value = layout.convert(g, target, node._placed.sizes)
    shards = [B.copy(s) for s in (value.shards if isinstance(value, Placed) else [value])]
    if node.grad is None:
        node.grad = Tensor._from_value(Placed(shards, target, node.shape))
    else:
        for mine, extra in zip(node.grad._placed.shards, shards):
            mine += extra


_FREED = (
    "trying to backward through a graph a second time (its saved values were freed by the first "
    "backward); call backward(retain_graph=True) the first time if you need to"
)


def zero_grads(params, set_to_none=True):
    """Clear the ``.grad`` of each tensor in ``params``: drop it (``set_to_none``) or fill it with zeros.
    Shared by ``Module.zero_grad`` and ``Optimizer.zero_grad``. A dropped gradient that nobody
    else holds (no reference to the tensor, its array or a view of it) goes back to the engine
    (``B.recycle``), which hands the buffer out again for the next gradient of that shape: large
    fresh allocations page-fault. ``p.grad`` is None afterwards either way, as in torch."""
    for p in params:
        g = p.grad
        if g is None:
            continue
        if not set_to_none:
            g.zero_()
            continue
        p.grad = None
        if g._placed is None:
            arr = g._array
            alive = weakref.ref(g)
            del g
            if alive() is None:  # the tensor is gone: only `arr` here and whoever holds the array remain
                B.recycle(arr)
