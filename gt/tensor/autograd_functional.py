"""torch's ``torch.autograd.functional`` as ``gt.autograd.functional``: ``vjp``, ``jvp``,
``jacobian``, ``hessian``, ``vhp`` and ``hvp`` of a function of tensors, built on
``gt.autograd.grad`` (with ``create_graph=True`` where a second derivative is needed). The
forward-mode products (``jvp``, ``hvp``) use the double-backward trick, as torch's do.

It lives in the tensor layer because it makes tensors (zeros, stacks); ``gt/__init__.py`` puts
it at torch's import path, ``gt.autograd.functional``.

Differs from torch: ``vectorize=True`` is accepted and computes the same Jacobian row by row
(gt has no vmap), and ``strategy="forward-mode"`` (gt has no forward-mode AD) computes it by
reverse mode too, with forward mode's dtypes and torch's refusals.
"""

from gt.autograd import enable_grad, grad, is_grad_enabled, set_grad_enabled
from gt.tensor.core import Tensor
from gt.tensor.creation import zeros_like
from gt.tensor.functions import stack

__all__ = ["vjp", "jvp", "jacobian", "hessian", "vhp", "hvp"]


def _as_tuple(value, what, fn):
    """``(was a tuple, tuple of tensors)``, refusing anything else as torch does."""
    was = isinstance(value, tuple)
    values = value if was else (value,)
    for i, v in enumerate(values):
        if not isinstance(v, Tensor):
            where = f"the value at index {i} has type {type(v)}" if was else f"the given {what} has type {type(v)}"
            raise TypeError(f"The {what} given to {fn} must be either a Tensor or a tuple of Tensors but {where}.")
    return was, values


def _unpack(res, was):
    """Undo ``_as_tuple`` (``was`` a bool), or both levels of a nested result (a pair of bools)."""
    if isinstance(was, tuple):
        if not was[1]:
            res = tuple(r[0] for r in res)
        return res if was[0] else res[0]
    return res if was else res[0]


def _fresh(inputs, create_graph, need_graph):
    """New tensor objects for the inputs: attached to the caller's graph only with
    ``create_graph`` (so a tensor the function captures itself is told apart, as in torch)."""
    return tuple(t.view_as(t) if create_graph and t.requires_grad else t.detach().requires_grad_(need_graph)
                 for t in inputs)


def _finish(values, create_graph):
    if values and isinstance(values[0], Tensor):
        return values if create_graph else tuple(v.detach() for v in values)
    return tuple(_finish(v, create_graph) for v in values)


def _check_v(v, like, was_tuple):
    if len(v) != len(like):
        raise RuntimeError(f"v is a tuple of invalid length: should be {len(like)} but got {len(v)}." if was_tuple
                           else "The given v should contain a single Tensor.")
    for i, (a, b) in enumerate(zip(v, like)):
        if a.shape != b.shape:
            raise RuntimeError(f"{f'Entry {i} in ' if was_tuple else ''}v has invalid size: should be "
                               f"{tuple(b.shape)} but got {tuple(a.shape)}.")


def _v(v, like, was_tuple, fn, where):
    if v is None:
        if len(like) != 1 or like[0].numel() != 1:
            raise RuntimeError(f"The vector v can only be None if the {where} a single Tensor with a single "
                               "element.")
        return None
    _, v = _as_tuple(v, "v", fn)
    v = _fresh(v, False, False)
    _check_v(v, like, was_tuple)
    return v


_STRICT = {
    "outputs": "Output {i} of the user-provided function does not require gradients. The outputs must be computed "
               "in a differentiable manner from the input when running in strict mode.",
    "grad_inputs": "The gradient with respect to input {i} is independent of the inputs of the user-provided "
                   "function. This is not allowed in strict mode.",
    "jacobian": "While computing the hessian, found that the jacobian of the user-provided function with respect "
                "to input {i} is independent of the input. This is not allowed in strict mode.",
    "hessian": "The hessian of the user-provided function with respect to input {i} is independent of the input. "
               "This is not allowed in strict mode.",
}


def _strict(values, kind, strict):
    if not strict:
        return
    for i, t in enumerate(values):
        if t is None:
            raise RuntimeError(f"The output of the user-provided function is independent of input {i}. This is not "
                               "allowed in strict mode.")
        if not t.requires_grad:
            raise RuntimeError(_STRICT[kind].format(i=i))


def _grad(outputs, inputs, grad_outputs=None, create_graph=False, retain_graph=None):
    """``gt.autograd.grad`` over the outputs that require grad; None for an input none reaches."""
    grad_outputs = (None,) * len(outputs) if grad_outputs is None else grad_outputs
    kept = [(o, g) for o, g in zip(outputs, grad_outputs) if o is not None and o.requires_grad]
    if not kept:
        return (None,) * len(inputs)
    return grad(tuple(o for o, _ in kept), inputs, tuple(g for _, g in kept), retain_graph=retain_graph,
                create_graph=create_graph, allow_unused=True)


def _zeros_for_none(grads, refs, strict, create_graph, what):
    out = []
    for i, g in enumerate(grads):
        if g is None:
            if strict:
                raise RuntimeError(f"The {what} of the user-provided function is independent of input {i}. This is "
                                   "not allowed in strict mode.")
            g = zeros_like(refs[i])
        elif strict and create_graph and not g.requires_grad:
            raise RuntimeError(f"The {what} of the user-provided function is independent of input {i}. This is not "
                               "allowed in strict mode when create_graph=True.")
        out.append(g)
    return tuple(out)


def vjp(func, inputs, v=None, create_graph=False, strict=False):
    """``(func(*inputs), v^T J)``: the vector-Jacobian product at ``inputs`` (a tensor or a tuple),
    ``v`` of the outputs' shapes (None for a one-element output). Shapes follow the inputs."""
    with enable_grad():
        was_in, inputs = _as_tuple(inputs, "inputs", "vjp")
        inputs = _fresh(inputs, create_graph, True)
        was_out, outputs = _as_tuple(func(*inputs), "outputs of the user-provided function", "vjp")
        _strict(outputs, "outputs", strict)
        v = _v(v, outputs, was_out, "vjp", "user-provided function returns")
    with set_grad_enabled(create_graph or is_grad_enabled()):
        got = _zeros_for_none(_grad(outputs, inputs, v, create_graph), inputs, strict, create_graph, "output")
    return _unpack(_finish(outputs, create_graph), was_out), _unpack(_finish(got, create_graph), was_in)


def jvp(func, inputs, v=None, create_graph=False, strict=False):
    """``(func(*inputs), J v)``: the Jacobian-vector product, ``v`` of the inputs' shapes, by the
    double-backward trick (the vjp is linear in its vector, so differentiating it again gives J v)."""
    with enable_grad():
        was_in, inputs = _as_tuple(inputs, "inputs", "jvp")
        inputs = _fresh(inputs, create_graph, True)
        v = _v(v, inputs, was_in, "jvp", "input to the user-provided function is")
        was_out, outputs = _as_tuple(func(*inputs), "outputs of the user-provided function", "jvp")
        _strict(outputs, "outputs", strict)
        dummies = tuple(zeros_like(o).requires_grad_() for o in outputs)
        grad_inputs = _grad(outputs, inputs, dummies, create_graph=True)
        _strict(grad_inputs, "grad_inputs", strict)
    with set_grad_enabled(create_graph or is_grad_enabled()):
        got = _zeros_for_none(_grad(grad_inputs, dummies, v, create_graph), outputs, strict, create_graph, "output")
    return _unpack(_finish(outputs, create_graph), was_out), _unpack(_finish(got, create_graph), was_out)


def jacobian(func, inputs, create_graph=False, strict=False, vectorize=False, strategy="reverse-mode"):
    """The Jacobian of ``func`` at ``inputs``: for one output and one input a tensor of shape
    ``output.shape + input.shape``; for tuples, ``result[i][j]`` is output i's with respect to
    input j. One reverse pass per output element."""
    if strategy not in ("forward-mode", "reverse-mode"):     # torch's error type and message
        raise AssertionError('Expected strategy to be either "forward-mode" or "reverse-mode". Hint: If your '
                             'function has more outputs than inputs, "forward-mode" tends to be more performant. '
                             f'Otherwise, prefer to use "reverse-mode". (got {strategy!r})')
    if strategy == "forward-mode":
        if create_graph:
            raise NotImplementedError('gt.autograd.functional.jacobian: `create_graph=True` and '
                                      '`strategy="forward-mode"` are not supported together (yet). Please either set '
                                      '`create_graph=False` or `strategy="reverse-mode"`.')
        return _forward_mode(func, inputs, strict, vectorize, False)
    if vectorize and strict:
        raise RuntimeError("gt.autograd.functional.jacobian: `strict=True` and `vectorized=True` are not supported "
                           "together. Please either set `strict=False` or `vectorize=False`.")
    result, outputs, was = _jacobian_tuples(func, inputs, create_graph, strict)
    return _unpack(_finish(result, create_graph), was)


def _jacobian_tuples(func, inputs, create_graph, strict):
    """``(result[i][j], outputs, (was_out, was_in))``: the Jacobian blocks as nested tuples."""
    with enable_grad():
        was_in, inputs = _as_tuple(inputs, "inputs", "jacobian")
        inputs = _fresh(inputs, create_graph, True)
        was_out, outputs = _as_tuple(func(*inputs), "outputs of the user-provided function", "jacobian")
        _strict(outputs, "outputs", strict)
        result = tuple(_jacobian_of(i, out, inputs, create_graph, strict) for i, out in enumerate(outputs))
    return result, outputs, (was_out, was_in)


def _forward_mode(func, inputs, strict, vectorize, graph):
    """torch's ``strategy="forward-mode"`` (with ``vectorize=True`` only, as torch's): the same
    Jacobian computed by reverse mode, each block in its output's dtype (torch's forward mode
    gives the output's, reverse mode the input's). As torch's dual tensors, the blocks carry a graph
    where an input requires grad (``graph``: always, for the Hessian's inner Jacobian)."""
    if strict:
        raise RuntimeError('gt.autograd.functional.jacobian: `strict=True` and `strategy="forward-mode"` are not '
                           'supported together (yet). Please either set `strict=False` or `strategy="reverse-mode"`.')
    _, tupled = _as_tuple(inputs, "inputs", "jacobian")
    if not vectorize:
        raise NotImplementedError("Computing Jacobian using forward-AD or forward-over-reverse Hessian is only "
                                  "implemented for `vectorize=True`.")
    graph = graph or any(t.requires_grad for t in tupled)
    result, outputs, was = _jacobian_tuples(func, inputs, graph, False)
    # torch's forward mode answers lists where the inputs are a tuple
    result = [[b.to(out.dtype) for b in row] for row, out in zip(_finish(result, graph), outputs)]
    return _unpack(result, was)


def _jacobian_of(i, out, inputs, create_graph, strict):
    rows = tuple([] for _ in inputs)
    flat = out.reshape(-1)
    for k in range(out.numel()):
        got = _grad((flat[k],), inputs, retain_graph=True, create_graph=create_graph)
        for j, (g, x) in enumerate(zip(got, inputs)):
            if g is None:
                if strict:
                    raise RuntimeError(f"Output {i} of the user-provided function is independent of input {j}. This "
                                       "is not allowed in strict mode.")
                g = zeros_like(x)
            elif strict and create_graph and not g.requires_grad:
                raise RuntimeError(f"The jacobian of the user-provided function is independent of input {i}. This "
                                   "is not allowed in strict mode when create_graph=True.")
            rows[j].append(g)
    return tuple((stack(r) if r else zeros_like(x).reshape((0, *x.shape))).reshape(out.shape + x.shape)
                 for r, x in zip(rows, inputs))


def hessian(func, inputs, create_graph=False, strict=False, vectorize=False, outer_jacobian_strategy="reverse-mode"):
    """The Hessian of a function with one-element output: for one input of shape S a tensor of
    shape ``S + S``; for a tuple of inputs, ``result[i][j]`` the block of inputs i and j."""
    was_in, inputs = _as_tuple(inputs, "inputs", "hessian")
    if outer_jacobian_strategy not in ("forward-mode", "reverse-mode"):
        raise AssertionError('Expected strategy to be either "forward-mode" or "reverse-mode".')

    def scalar(*xs):
        out = func(*xs)
        was, outs = _as_tuple(out, "outputs of the user-provided function", "hessian")
        _strict(outs, "outputs", strict)
        if was:
            raise RuntimeError("The function given to hessian should return a single Tensor")
        if out.numel() != 1:
            raise RuntimeError("The Tensor returned by the function given to hessian should contain a single "
                               "element")
        return out.squeeze()

    def jac(*xs):
        j = jacobian(scalar, xs, create_graph=True)
        _strict(j, "jacobian", strict)
        return j

    if outer_jacobian_strategy == "forward-mode" and not create_graph:
        res = _forward_mode(jac, inputs, strict, vectorize, True)    # torch's results carry a graph here
    else:
        res = jacobian(jac, inputs, create_graph=create_graph, strict=strict, vectorize=vectorize,
                       strategy=outer_jacobian_strategy)
    return _unpack(res, (was_in, was_in))


def _scalar_and_jacobian(func, inputs, v, create_graph, strict, fn):
    was_in, inputs = _as_tuple(inputs, "inputs", fn)
    inputs = _fresh(inputs, create_graph, True)
    v = _v(v, inputs, was_in, fn, "input to the user-provided function is")
    was_out, outputs = _as_tuple(func(*inputs), "outputs of the user-provided function", fn)
    _strict(outputs, "outputs", strict)
    if was_out:
        raise RuntimeError(f"The function given to {fn} should return a single Tensor")
    if outputs[0].numel() != 1:
        raise RuntimeError(f"The Tensor returned by the function given to {fn} should contain a single element")
    jac = _grad(outputs, inputs, create_graph=True)
    _strict(jac, "jacobian", strict)
    return was_in, was_out, inputs, v, outputs, jac


def vhp(func, inputs, v=None, create_graph=False, strict=False):
    """``(func(*inputs), v^T H)`` for a function with one-element output; shapes follow the inputs."""
    with enable_grad():
        was_in, was_out, inputs, v, outputs, jac = _scalar_and_jacobian(func, inputs, v, create_graph, strict, "vhp")
    with set_grad_enabled(create_graph or is_grad_enabled()):
        got = _zeros_for_none(_grad(jac, inputs, v, create_graph), inputs, strict, create_graph, "jacobian")
    return _unpack(_finish(outputs, create_graph), was_out), _unpack(_finish(got, create_graph), was_in)


def hvp(func, inputs, v=None, create_graph=False, strict=False):
    """``(func(*inputs), H v)`` for a function with one-element output, by the double-backward
    trick (equal to ``vhp`` for a symmetric Hessian, as torch's)."""
    with enable_grad():
        was_in, was_out, inputs, v, outputs, jac = _scalar_and_jacobian(func, inputs, v, create_graph, strict, "hvp")
        dummies = tuple(zeros_like(x).requires_grad_() for x in inputs)
        double = _grad(jac, inputs, dummies, create_graph=True)
        _strict(jac, "hessian", strict)
    with set_grad_enabled(create_graph or is_grad_enabled()):
        got = _zeros_for_none(_grad(double, dummies, v, create_graph), inputs, strict, create_graph, "hessian")
    return _unpack(_finish(outputs, create_graph), was_out), _unpack(_finish(got, create_graph), was_in)
