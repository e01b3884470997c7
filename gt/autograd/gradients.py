"""``gt.autograd.grad``: the gradients of outputs with respect to chosen tensors, returned rather
than accumulated into ``.grad`` (torch's ``torch.autograd.grad``); and ``gt.autograd.backward``,
torch's ``torch.autograd.backward`` (several roots at once, ``inputs=``), which ``Tensor.backward``
runs.

It runs the same walk as ``backward()`` (gt/autograd/backward.py), told which tensors to capture:
only the ops on a path from the outputs to those tensors run (and are freed), no leaf's ``.grad``
changes, no post-accumulate-grad hook or fused optimizer update runs, and a weight gradient kept
as factors (gt/autograd/deferred.py) is made into its product. Tensor hooks (``register_hook``)
run as in a backward, and ``retain_grad()`` tensors on those paths, or captured, get their ``.grad``
as in torch (``backward(inputs=)`` makes a computed input retain its grad, as torch's does).
"""

import functools
import warnings

from gt.autograd import function, hooks, sparse_grad, walk_steps
from gt.autograd.backward import _seed, backward_one, finish, topological_order, walk
from gt.autograd.buffers import PendingGrads
from gt.autograd.grad_mode import mode as _mode
from gt.autograd.graph_walk import _check_supported, walk_graph
from gt.autograd.sparse_grad import SparseGrad
from gt.backend import B

_USED = "appears to not have been used in the graph. Set allow_unused=True if this is the desired behavior."


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False, only_inputs=True,
         allow_unused=None, is_grads_batched=False, materialize_grads=False):
    """The gradients of ``outputs`` with respect to ``inputs``: a tuple, one tensor per input, of
    that input's shape and dtype (on a mesh, its placement), summed over the outputs.

    ``outputs``, ``inputs``: a tensor or a sequence of them; inputs may be leaves or computed
    tensors. ``grad_outputs``: the gradient to start from for each output (a tensor of its shape,
    or None, which means ones and is allowed for a one-element output only). An input no output
    depends on raises, unless ``allow_unused`` (then its gradient is None, or zeros with
    ``materialize_grads``). ``retain_graph`` (default: ``create_graph``) keeps the ops walked for
    another backward. ``create_graph=True`` records the gradients themselves, so they can be
    differentiated again (gt/autograd/graph_walk.py; ops without a recorded backward are named in
    the error, and tensors sharded over devices are refused). ``inputs`` may be a dict
    ``{name: tensor}``: the gradients are then a dict with its keys. ``is_grads_batched``: the first
    dimension of every ``grad_outputs`` tensor is a batch of gradients to start from; the results
    get that dimension too (torch vmaps the backward; gt walks once per batch element).
    ``only_inputs`` is torch's deprecated argument, ignored (a warning when False).

        >>> x = gt.tensor([1.0, 2.0], requires_grad=True)
        >>> gt.autograd.grad((x * x).sum(), x)[0].tolist()
        [2.0, 4.0]
    """
    Tensor = function.Tensor
    if not only_inputs:
        warnings.warn("only_inputs argument is deprecated and is ignored now (defaults to True). To accumulate "
                      "gradient for other parts of the graph, please use torch.autograd.backward.", FutureWarning,
                      stacklevel=2)
    if allow_unused is None:
        allow_unused = materialize_grads
    elif materialize_grads and not allow_unused:
        raise ValueError("Expected allow_unused to be True or not passed when materialize_grads=True, but got: "
                         "allow_unused=False.")
    names = list(inputs) if isinstance(inputs, dict) else None
    outputs, inputs = _tensors(outputs, "outputs"), _tensors(list(inputs.values()) if names else inputs, "inputs")
    if not inputs:
        raise RuntimeError("`inputs` argument to `grad()` cannot be empty.")
    if any(_nested(t) for t in (*outputs, *inputs)):
        result = _nested_grad(outputs, inputs, grad_outputs, retain_graph, create_graph, allow_unused,
                              is_grads_batched, materialize_grads)
        return dict(zip(names, result)) if names else result
    for t in inputs:
        if not t.requires_grad:
            raise RuntimeError("One of the differentiated Tensors does not require grad")
    if is_grads_batched:
        result = _batched(outputs, inputs, grad_outputs, retain_graph, create_graph, allow_unused, materialize_grads)
    elif not create_graph and dual_detach is not None and _from_backward[0] == 0:
        result = _dual_grad(outputs, inputs, grad_outputs, retain_graph, allow_unused, materialize_grads)
    else:
        got = _walk(outputs, grad_outputs, retain_graph, create_graph, {id(t) for t in inputs})
        result = _results(inputs, got, allow_unused, materialize_grads, create_graph,
                          (lambda g: g) if create_graph else Tensor._from_value)
    return dict(zip(names, result)) if names else result


@functools.wraps(grad)
def user_grad(outputs, inputs, *args, **kwargs):
    # ``gt.autograd.grad`` as the user calls it (gt's own callers take ``grad``): refused as torch's
    # inside a forward transform's function (a flag read elsewhere)
    if _mode.level_kind == "forward":
        if not isinstance(inputs, dict):
            inputs = _tensors(inputs, "inputs")
        outputs = _tensors(outputs, "outputs")
        _refuse_at_forward_level(outputs, list(inputs.values()) if isinstance(inputs, dict) else inputs)
    return grad(outputs, inputs, *args, **kwargs)


def _refuse_at_forward_level(outputs, inputs):
    """torch's errors for ``grad`` in the function of ``jvp`` or ``jacfwd``: torch's level there
    records no reverse-mode graph for its inputs (dual tensors) and the tensors made at it, which
    require no grad there (only tensors made outside it are differentiated, the walk the caller's)."""
    level, own = _mode.level, _mode.level_inputs

    def at_level(t):
        return isinstance(t, function.Tensor) and (id(t) in own or getattr(t, "_level", 0) >= level)
    for i, out in enumerate(outputs):
        if at_level(out):
            raise RuntimeError(f"element {i} of tensors does not require grad and does not have a grad_fn")
    if any(at_level(t) for t in inputs):
        raise RuntimeError("One of the differentiated Tensors does not require grad")


# set by gt/autograd/forward_ad.py while a level is entered: a tensor's values and tangent, cut from the graph
dual_detach = None
_from_backward = [0]     # backward(inputs=) runs grad: its .grad carries no tangent, as torch's


def _dual_grad(outputs, inputs, grad_outputs, retain_graph, allow_unused, materialize_grads):
    """``grad`` inside a forward AD level: torch's backward formulas run under forward AD, so the
    gradients carry tangents (of ``H v``). The walk is recorded (its ops get tangents, gt/autograd/
    forward_ad.py) and its results cut from the graph, their tangents kept; where an op on the way
    records no backward (refused before any work), the plain walk."""
    ids = {id(t) for t in inputs}
    order = topological_order(outputs[0], outputs[1:])
    try:
        _check_supported(order, walk_steps.on_paths(order, ids))
    except (NotImplementedError, RuntimeError):     # (the plain walk raises what it refuses too)
        return _results(inputs, _walk(outputs, grad_outputs, retain_graph, False, ids), allow_unused,
                        materialize_grads, False, function.Tensor._from_value)
    got = _walk(outputs, grad_outputs, bool(retain_graph), True, ids)
    return _results(inputs, got, allow_unused, materialize_grads, False, dual_detach)


def _nested(t):
    return type(t) is not function.Tensor and t.is_nested


def _dense(tensors):
    """The dense tensors that carry the graph of ``tensors`` (a nested tensor's ``_autograd_tensors()``:
    a jagged one's values, a strided one's components) and how many each gave."""
    flat, counts = [], []
    for t in tensors:
        parts = t._autograd_tensors() if _nested(t) else (t,)
        flat.extend(parts)
        counts.append(len(parts))
    return flat, counts


def _dense_outputs(outputs, grad_outputs):
    """Nested outputs (and their gradients, nested tensors of the same structure) as the dense
    tensors behind them, checked as torch checks them."""
    Tensor = function.Tensor
    given = [grad_outputs] if grad_outputs is None or isinstance(grad_outputs, Tensor) else list(grad_outputs)
    given = given * len(outputs) if grad_outputs is None else given[:len(outputs)]
    seeds = []
    for i, (out, g) in enumerate(zip(outputs, given)):
        if not _nested(out):
            seeds.append(g)
        elif g is None:
            raise RuntimeError("grad can be implicitly created only for scalar outputs: pass a gradient, a nested "
                               f"tensor of output {i}'s structure {tuple(out.shape)}")
        elif not _nested(g) or g.shape != out.shape:
            raise RuntimeError(f"Mismatch in shape: grad_output[{i}] has a shape of {tuple(g.shape)} and output[{i}] "
                               f"has a shape of {tuple(out.shape)}.")
        else:
            seeds.extend(g._autograd_tensors())
    return _dense(outputs)[0], seeds


def _nested_grad(outputs, inputs, grad_outputs, retain_graph, create_graph, allow_unused, batched, materialize):
    """``grad`` where an output or input is a nested tensor (gt.nested): the walk on the dense
    tensors behind them, a nested input's gradient made a nested tensor of its structure (torch's)."""
    flat_out, seeds = _dense_outputs(outputs, grad_outputs)
    flat_in, counts = _dense(inputs)
    got = iter(grad(flat_out, flat_in, seeds, retain_graph, create_graph, allow_unused=True,
                    is_grads_batched=batched, materialize_grads=materialize))
    result = []
    for i, (t, n) in enumerate(zip(inputs, counts)):
        parts = [next(got) for _ in range(n)]
        if any(p is None for p in parts):
            if not allow_unused:
                raise RuntimeError(f"The differentiated Tensor at index {i} {_USED}" if len(inputs) > 1 else
                                   f"One of the differentiated Tensors {_USED}")
            result.append(None)
        else:
            result.append(t._from_autograd_grads(parts) if _nested(t) else parts[0])
    return tuple(result)


def _batched(outputs, inputs, grad_outputs, retain_graph, create_graph, allow_unused, materialize_grads):
    """``grad(..., is_grads_batched=True)``: one walk per batch element of ``grad_outputs`` (torch
    vmaps one walk over them), the gradients stacked along a new first dimension."""
    Tensor = function.Tensor
    given = [grad_outputs] if isinstance(grad_outputs, Tensor) else list(grad_outputs or [None] * len(outputs))
    sizes = set()
    for i, (out, g) in enumerate(zip(outputs, given)):
        if not isinstance(g, Tensor) or g.ndim == 0:
            raise RuntimeError("vmap: Expected all tensors to have the same size in the mapped dimension: "
                               "is_grads_batched=True needs a batched grad_output for each output")
        if tuple(g.shape[1:]) != tuple(out.shape):
            raise RuntimeError(f"If `is_grads_batched=True`, we interpret the first dimension of each grad_output "
                               f"as the batch dimension. The sizes of the remaining dimensions are expected to match "
                               f"the shape of corresponding output, but a mismatch was detected: grad_output[{i}] has "
                               f"a shape of {tuple(g.shape)} and output[{i}] has a shape of {tuple(out.shape)}. If you "
                               f"only want some tensors in `grad_output` to be considered batched, consider using "
                               f"vmap.")
        sizes.add(g.shape[0])
    if len(sizes) > 1:
        raise ValueError(f"vmap: Expected all tensors to have the same size in the mapped dimension, got sizes "
                         f"{sorted(sizes)} for the mapped dimension")
    n = sizes.pop() if sizes else 0
    retain = create_graph if retain_graph is None else retain_graph
    rows = [grad(outputs, inputs, [g[b] for g in given], retain or b < n - 1, create_graph,
                 allow_unused=allow_unused) for b in range(n)]
    got = {id(t): _stack([r[j] for r in rows]) for j, t in enumerate(inputs) if rows and rows[0][j] is not None}
    # an unused input's materialized zeros are not batched, as torch's (it materializes after its vmap)
    return _results(inputs, got, True, materialize_grads, create_graph, lambda g: g)


def _stack(column):
    """The tensors of ``column`` along a new first dimension (recorded when one requires grad: the
    autograd layer has no ``stack`` op of its own, so the rows are written into zeros)."""
    Tensor = function.Tensor
    if not any(c.requires_grad for c in column):
        return Tensor._wrap(B.stack([c._data for c in column], 0))
    out = Tensor._wrap(B.zeros((len(column),) + tuple(column[0].shape), column[0].dtype))
    for b, c in enumerate(column):
        out[b] = c
    return out


def backward(tensors, grad_tensors=None, retain_graph=None, create_graph=False, inputs=None):
    """Accumulate the gradients of ``tensors`` (a tensor or a sequence of them) into the ``.grad`` of
    every leaf they depend on, as torch's ``torch.autograd.backward``; ``Tensor.backward`` is this
    for one tensor.

    ``grad_tensors``: the gradient to start from for each tensor (a tensor of its shape, or None,
    which means ones and is allowed for a one-element tensor only); the gradients of several
    tensors are summed. ``retain_graph`` (default: ``create_graph``) keeps the graph for another
    backward; ``create_graph=True`` records the gradients (higher-order gradients). ``inputs``: a
    tensor or a sequence of them (leaves or computed tensors): only their ``.grad`` gets the
    gradient, and only the ops on a path to one of them run; an input no tensor depends on keeps its
    ``.grad``, as torch's.

        >>> x = gt.tensor([1.0, 2.0], requires_grad=True)
        >>> gt.autograd.backward([(x * x).sum(), x.sum()])
        >>> x.grad.tolist()
        [3.0, 5.0]
    """
    roots = _tensors(tensors, "tensors", "backward")
    if inputs is not None:
        # a nested input (gt.nested): the dense tensors behind it, whose .grad its .grad reads
        inputs = _dense(_tensors(inputs, "inputs", "backward"))[0]
        if any(_nested(t) for t in roots):
            roots, grad_tensors = _dense_outputs(roots, grad_tensors)
        _backward_into(roots, grad_tensors, retain_graph, create_graph, inputs)
    elif len(roots) == 1 and not _nested(roots[0]):
        # torch zips tensors with gradients: extra gradients are ignored (a list of numbers is one gradient's data)
        listed = isinstance(grad_tensors, (list, tuple)) and len(grad_tensors) >= 1
        one = grad_tensors[0] if listed and (len(grad_tensors) == 1 or _gradient_like(grad_tensors[0])) else grad_tensors
        backward_one(roots[0], one, retain_graph, create_graph)
    elif roots:
        if any(_nested(t) for t in roots):
            roots, grad_tensors = _dense_outputs(roots, grad_tensors)
        _walk(roots, grad_tensors, retain_graph, create_graph)
        finish()


def _gradient_like(g):
    return g is None or isinstance(g, function.Tensor)


def _walk(outputs, grad_outputs, retain_graph, create_graph, capture=None):
    """The walk back from ``outputs`` (started from ``grad_outputs``, checked as torch checks them),
    the gradients recorded with ``create_graph``: into the leaves' ``.grad`` (``backward``), or,
    with ``capture`` (tensor ids), returned as ``{id: gradient}`` of those (``grad``)."""
    seeds = _seeds(outputs, grad_outputs)
    retain = create_graph if retain_graph is None else retain_graph
    order = topological_order(outputs[0], outputs[1:])
    if create_graph:
        got = walk_graph(order, _graph_seeds(outputs, grad_outputs, seeds), retain, capture)
    else:
        pending = PendingGrads(outputs[0], seeds[0])
        for out, seed in zip(outputs[1:], seeds[1:]):
            pending.add(out, seed)      # an output given twice gets both gradients, as in torch
        got = walk(order, pending, retain, capture)
    function.tape.clear()
    return got


def _backward_into(roots, grad_tensors, retain_graph, create_graph, inputs):
    """``backward(inputs=...)``: ``grad``'s walk, its results added to each input's ``.grad`` (a
    leaf's post-accumulate-grad hooks then run, as in a backward)."""
    if not inputs:
        raise RuntimeError("`inputs` argument to `backward()` cannot be empty.")
    for t in inputs:     # as torch: a computed input retains its grad, which the walk then gives it once
        if not t.is_leaf and t.requires_grad:
            t.retain_grad()
    _from_backward[0] += 1
    try:
        grads = grad(roots, inputs, grad_tensors, retain_graph, create_graph, allow_unused=True)
    finally:
        _from_backward[0] -= 1
    with function.set_grad_enabled(create_graph):     # create_graph: the sums are recorded too
        for t, g in zip(inputs, grads):
            if g is not None and t.is_leaf:
                if (g.is_sparse or t.grad is not None and t.grad.is_sparse) and not create_graph:
                    sparse_grad.accumulate(t, g)     # as a backward's AccumulateGrad adds it
                else:
                    t.grad = g if t.grad is None else t.grad + g
                hooks.after_accumulate(t)
    finish()


def _results(inputs, got, allow_unused, materialize_grads, create_graph, wrap):
    """One gradient per input from the walk's ``got`` ({id: gradient}), each made a tensor by
    ``wrap``; an input no output reached raises, or is None (zeros with ``materialize_grads``)."""
    result = []
    for i, t in enumerate(inputs):
        g = got.get(id(t))
        if g is None and not allow_unused:
            raise RuntimeError(f"The differentiated Tensor at index {i} {_USED}" if len(inputs) > 1 else
                               f"One of the differentiated Tensors {_USED}")
        if g is None:
            # torch's materialized zeros require grad when the gradients are recorded
            result.append(function.Tensor._wrap(B.zeros(t.shape, t.dtype))._set_requires_grad(create_graph)
                          if materialize_grads else None)
        else:
            result.append(g.tensor if type(g) is SparseGrad else wrap(g))
    return tuple(result)


def _graph_seeds(outputs, grad_outputs, seeds):
    """The tensors the recorded walk starts from: a given gradient tensor itself (so the result
    depends on it, as torch's double backward does), else the checked seed."""
    Tensor = function.Tensor
    given = [grad_outputs] if isinstance(grad_outputs, Tensor) else list(grad_outputs or [None] * len(outputs))
    start = {}
    for out, seed, g in zip(outputs, seeds, given):
        g = (g if g.dtype == out.dtype else g.to(out.dtype)) if isinstance(g, Tensor) else Tensor._wrap(seed)
        start[id(out)] = g if id(out) not in start else start[id(out)] + g
    return start


def _tensors(value, name, fn="grad"):
    """``value`` (a tensor or a sequence of them) as a list of tensors; TypeError otherwise."""
    Tensor = function.Tensor
    items = [value] if isinstance(value, Tensor) else value
    if not isinstance(items, (list, tuple, str, bytes, dict)) and hasattr(items, "__iter__"):
        items = list(items)     # a generator of tensors, as torch's tuple(inputs)
    if not isinstance(items, (list, tuple)) or not all(isinstance(t, Tensor) for t in items):
        raise TypeError(f"{fn}(): {name} must be a tensor or a sequence of tensors, got {value!r}")
    return list(items)


def _seeds(outputs, grad_outputs):
    """The gradient each output starts from, checked as torch checks ``grad_outputs``."""
    Tensor = function.Tensor
    if grad_outputs is None or isinstance(grad_outputs, Tensor):
        grad_outputs = [grad_outputs] * len(outputs) if grad_outputs is None else [grad_outputs]
    grad_outputs = list(grad_outputs)[:len(outputs)]     # torch zips: extra gradients are ignored
    if len(grad_outputs) != len(outputs):
        raise RuntimeError(f"got {len(outputs)} tensors and {len(grad_outputs)} gradients")
    seeds = []
    for i, (out, g) in enumerate(zip(outputs, grad_outputs)):
        if not out.requires_grad:
            raise RuntimeError(f"element {i} of tensors does not require grad and does not have a grad_fn")
        if g is None and out.dtype.is_complex:
            raise RuntimeError(f"grad can be implicitly created only for real scalar outputs but got {out.dtype!r}")
        if g is None and out.numel() != 1:
            raise RuntimeError(f"grad can be implicitly created only for scalar outputs (output {i} has shape "
                               f"{out.shape}: pass grad_outputs with that shape)")
        if g is not None and tuple(getattr(g, "shape", ())) != out.shape:
            raise RuntimeError(f"Mismatch in shape: grad_output[{i}] has a shape of {tuple(g.shape)} and "
                               f"output[{i}] has a shape of {out.shape}.")
        seeds.append(_seed(out, g))
    return seeds
