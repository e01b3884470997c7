"""``gt.func``'s derivative transforms: ``grad``, ``grad_and_value``, ``vjp``, ``jvp``, ``linearize``,
``jacrev``, ``jacfwd``, ``hessian`` (gt's reverse mode; see gt/func/__init__.py)."""

import contextlib
import functools

from gt.autograd.gradients import grad as _autograd_grad     # (gt.autograd.grad: the user's)
from gt.autograd import enable_grad, forward_ad, is_grad_enabled, no_grad
from gt.autograd import function_transforms
from gt.autograd.backward import topological_order
from gt.autograd.levels import transform_level
from gt.autograd.versions import saved_changed
from gt.backend import B
from gt.tensor import Tensor, stack
from gt.tensor.creation import eye, zeros
from gt.tensor.functions import is_floating_point
from gt.func import dual_runs
from gt.func.constants import constants_cut as _constants_cut, cut_forward_only
from gt.func.pytree import _check_randomness, _flatten, _spec_str, _unflatten


# ---- differentiation ------------------------------------------------------------------------
def _fresh(x, outer):
    """A new tensor to differentiate ``x`` by: attached to ``x``'s graph when ``x`` requires grad
    (so an outer transform or the caller differentiates through the result), a new leaf otherwise."""
    if not isinstance(x, Tensor):
        raise ValueError(f"Thing passed to transform API must be Tensor, got {type(x)}")
    if x.requires_grad and outer:
        return x[...]   # a new node (view_as of the same shape gives x itself)
    if not is_floating_point(x) and not x.is_complex():
        raise RuntimeError("only Tensors of floating point dtype can require gradients")
    return _cut(x)._set_requires_grad(True)


def _check_argnums(argnums, nargs):
    if isinstance(argnums, bool) or not isinstance(argnums, (int, tuple)):
        raise RuntimeError(f"argnums must be int or Tuple[int, ...], got: {type(argnums)}")
    nums = argnums if isinstance(argnums, tuple) else (argnums,)
    if not nums:
        raise RuntimeError("argnums must be non-empty")
    out = []
    for n in nums:
        if isinstance(n, bool) or not isinstance(n, int):
            raise RuntimeError(f"argnums must be int or Tuple[int, ...], got: {type(argnums)}")
        if not -nargs <= n < nargs:
            raise RuntimeError(f"Got argnum={n}, but only {nargs} positional inputs")
        out.append(n % nargs)
    if len(set(out)) != len(out):
        raise RuntimeError(f"argnums must be unique, got {argnums}")
    return out


class _Inputs:
    """The differentiated arguments of one call: ``args`` with fresh tensors at ``argnums``.
    ``writable``: torch's forward-mode transforms (``jvp``, ``jacfwd``) let the function change
    its inputs in place, and the caller's tensors change with them; the function then gets a
    copy of each fresh leaf (whose in-place changes are recorded), and ``write_back`` copies
    the values it changed into the caller's tensor."""

    def __init__(self, args, argnums, writable=False):
        # the caller's grad mode: a transform computes its derivatives also under the caller's
        # no_grad (as torch's), but then its results are not connected to the caller's graph
        self.outer = is_grad_enabled()
        self.nums = _check_argnums(argnums, len(args))
        self.single = not isinstance(argnums, tuple)
        self.args = list(args)
        self.leaves, self.specs, self.written = [], [], []
        for n in self.nums:
            leaves, spec = _flatten(args[n])
            fresh = [_fresh(x, self.outer) for x in leaves]
            self.args[n] = _unflatten(spec, [self._copy(x, f) for x, f in zip(leaves, fresh)] if writable else fresh)
            self.leaves.append(fresh)
            self.specs.append(spec)
        self.flat = [t for leaves in self.leaves for t in leaves]

    def _copy(self, x, fresh):
        if not fresh.is_leaf:       # a view of the caller's x: its changes reach x (or are refused) already
            return fresh
        with enable_grad():         # (the caller's no_grad does not hold here, as for the function's run)
            copy = fresh.clone()
        alias = copy.detach()       # the copy's memory as laid out now: a t_() of the copy changes only its view
        self.written.append((fresh, x, copy, alias, alias._version, copy._ctx))
        return copy

    def changes(self):
        """The inputs ``func`` changed in place: ``[(the fresh leaf, its changed copy, whether the
        change was recorded: its tangent changed too)]``; ``write_back`` writes them."""
        return [(fresh, copy, copy._ctx is not ctx) for fresh, _, copy, alias, version, ctx in self.written
                if alias._version != version]

    def write_back(self):
        """The values ``func`` changed in place, into the caller's tensors (after the level: they
        are captured there; until then the caller's tensors hold the values func was called with)."""
        with no_grad():
            for _, x, _, alias, version, _ in self.written:
                if alias._version != version:
                    x.copy_(alias)

    def level(self, kwargs=None, layer=True, kind=None, callers=None):
        """The function's run: grad mode on, at a new transform level whose inputs are all the
        tensors it is called with (torch wraps those at argnums and the others alike)."""
        return _running([*_flatten(self.args)[0], *_flatten(kwargs or {})[0]], layer, kind, callers)

    def pack(self, grads):
        """Per-leaf results (in ``flat`` order) shaped as the differentiated arguments."""
        grads, out = list(grads), []
        for leaves, spec in zip(self.leaves, self.specs):
            out.append(_unflatten(spec, grads[:len(leaves)]))
            grads = grads[len(leaves):]
        return out[0] if self.single else tuple(out)


@contextlib.contextmanager
def _running(inputs, layer=True, kind=None, callers=None):
    """``enable_grad`` at a new ``transform_level`` (gt/autograd/levels.py) of ``inputs``."""
    with enable_grad(), transform_level([x for x in inputs if isinstance(x, Tensor)], layer=layer, kind=kind,
                                        callers=callers):
        yield


def _needs_graph(outputs, inputs, outer=True):
    """Whether the outputs depend on a tensor that requires grad besides ``inputs``: an outer
    transform's input or the caller's, through a closure or through ``inputs`` themselves. Then
    the gradients are recorded, for those outer derivatives."""
    if not outer:
        return False
    outputs = [o for o in outputs if isinstance(o, Tensor) and o.requires_grad]
    if not outputs:
        return False
    own = {id(t) for t in inputs}
    return any(node._ctx is None and id(node) not in own for node in topological_order(outputs[0], outputs[1:]))


def _grads(outputs, inputs, cotangents, create_graph, retain_graph, forward=False):
    """The vjp: one gradient per input (zeros for an input the outputs do not use). ``forward``: the
    walk of a forward transform (``jacfwd``), which differentiates through its function's no_grad."""
    pairs = [(o, c) for o, c in zip(outputs, cotangents) if o.requires_grad]
    if not pairs:
        return tuple(zeros(t.shape, dtype=t.dtype) for t in inputs)
    with contextlib.nullcontext() if forward else _constants_cut([o for o, _ in pairs]):
        got = _autograd_grad([o for o, _ in pairs], inputs, [c for _, c in pairs], retain_graph=retain_graph,
                             create_graph=create_graph, allow_unused=True, materialize_grads=True)
    return got if create_graph else tuple(_cut(g) for g in got)


def _cut(x):
    """``x.detach()``; inside a forward AD level keeping its tangent, as torch's transforms return
    their results as the level's dual tensors (gt/autograd/gradients.py gives gradients theirs)."""
    return forward_ad.detached(x) if forward_ad.entered() else x.detach()



def _level_out(tree, keep):
    """Results of a transform as the caller sees them: connected to its graph only when the
    transform recorded one (``keep``), plain values otherwise."""
    leaves, spec = _flatten(tree)
    return _unflatten(spec, [x if keep or not isinstance(x, Tensor) else _cut(x) for x in leaves])


def _split_aux(out, has_aux, api):
    if not has_aux:
        return out, None
    if not (isinstance(out, tuple) and len(out) == 2):
        raise RuntimeError(f"{api}: output of function f should be a tuple: (output, aux) if has_aux is True")
    for x in _flatten(out[1])[0]:
        if not isinstance(x, Tensor):     # torch's transforms unwrap aux as tensors only
            raise RuntimeError(f"Expected tensors, got unsupported type {type(x)}")
    return out


def grad_and_value(func, argnums=0, has_aux=False):
    """``grad_and_value(func)(*args)`` -> ``(gradient, value)`` (``(gradient, (value, aux))`` with
    ``has_aux``): ``func`` returns a one-element 0-d tensor; the gradient has the structure of
    ``args[argnums]`` (a tuple of such for a tuple ``argnums``).

        >>> g, value = gt.func.grad_and_value(lambda x: (x ** 2).sum())(gt.tensor([1.0, 2.0]))
        >>> g.tolist(), value.item()
        ([2.0, 4.0], 5.0)
    """
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        inputs = _Inputs(args, argnums)
        with inputs.level(kwargs):
            out, aux = _split_aux(func(*inputs.args, **kwargs), has_aux, "grad_and_value(f)(*args)")
        if not isinstance(out, Tensor):
            raise RuntimeError(f"grad_and_value(f)(*args): Expected f(*args) to return a Tensor, got {type(out)}")
        if out.dim() != 0:
            raise RuntimeError(f"grad_and_value(f)(*args): Expected f(*args) to return a scalar Tensor, got tensor "
                               f"with {out.dim()} dims. Maybe you wanted to use the vjp or jacrev APIs instead?")
        keep = _needs_graph([out], inputs.flat, inputs.outer)
        grads = _grads([out], inputs.flat, [None], keep, keep)
        value = _level_out(out, keep)
        return inputs.pack(grads), ((value, _level_out(aux, keep)) if has_aux else value)
    return wrapper


def grad(func, argnums=0, has_aux=False):
    """``grad(func)(*args)``: the gradient of ``func``'s 0-d tensor result with respect to
    ``args[argnums]`` (``(gradient, aux)`` with ``has_aux``). Nests: ``grad(grad(f))`` is the
    second derivative.

        >>> gt.func.grad(gt.sin)(gt.tensor(0.0)).item()
        1.0
    """
    gv = grad_and_value(func, argnums, has_aux)

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        g, value = gv(*args, **kwargs)
        return (g, value[1]) if has_aux else g
    return wrapper


def _tensor_leaves(tree, api, what="return only tensors"):
    leaves, spec = _flatten(tree)
    for x in leaves:
        if not isinstance(x, Tensor):
            raise RuntimeError(f"{api}: expected f(*primals) to {what}, got unsupported type {type(x)}")
    return leaves, spec


def _inexact(x):
    return is_floating_point(x) or x.is_complex()


def _refuse_exact_outputs(leaves):
    """Reverse mode has no cotangent for an integer or bool output: torch's vjp (and jacrev) refuse it."""
    for x in leaves:
        if not _inexact(x):
            raise RuntimeError(f"vjp(f, ...): All outputs of f must be floating-point or complex Tensors, got Tensor "
                               f"with dtype {x.dtype}")


def _first_vjp(out_leaves, flat):
    """The double-vjp trick's first pass: free cotangents ``us`` (None for an integer or bool output,
    whose tangent is zeros, as torch's forward mode gives) and the vjp along them, linear in them."""
    us = [zeros(o.shape, dtype=o.dtype)._set_requires_grad(True) if _inexact(o) else None for o in out_leaves]
    live = [(o, u) for o, u in zip(out_leaves, us) if u is not None and o.requires_grad]
    vj = _autograd_grad([o for o, _ in live], flat, [u for _, u in live], create_graph=True, retain_graph=True,
                        allow_unused=True, materialize_grads=True) if live else ()
    return us, vj


def _second_vjp(out_leaves, us, vj, tangents, keep, retain):
    """The tangents of the outputs: the vjp of ``vj`` along ``tangents``, as gradients of ``us``."""
    pairs = [(g, t) for g, t in zip(vj, tangents) if g.requires_grad]
    slots = [u for u in us if u is not None]
    if not pairs or not slots:
        return [zeros(o.shape, dtype=o.dtype) for o in out_leaves]
    jv = iter(_autograd_grad([g for g, _ in pairs], slots, [t for _, t in pairs], create_graph=keep,
                             retain_graph=retain, allow_unused=True, materialize_grads=True))
    return [zeros(o.shape, dtype=o.dtype) if u is None else (lambda j: j if keep else j.detach())(next(jv))
            for o, u in zip(out_leaves, us)]


def vjp(func, *primals, has_aux=False):
    """``vjp(func, *primals)`` -> ``(output, vjp_fn)`` (``(output, vjp_fn, aux)`` with ``has_aux``).
    ``vjp_fn(cotangents)``, cotangents shaped as ``output``, returns a tuple with one gradient per
    primal (each shaped as that primal's pytree); it may be called more than once.
    """
    inputs = _Inputs(primals, tuple(range(len(primals)))) if primals else None
    if inputs is None:
        raise RuntimeError("vjp(f, *primals): Expected at least one primal")
    with inputs.level():
        out, aux = _split_aux(func(*inputs.args), has_aux, "vjp(f, *primals)")
    out_leaves, out_spec = _tensor_leaves(out, "vjp(f, *primals)")
    _refuse_exact_outputs(out_leaves)
    keep = _needs_graph(out_leaves, inputs.flat, inputs.outer)

    def vjp_fn(cotangents, *, retain_graph=True, create_graph=None):
        ct, ct_spec = _flatten(cotangents)
        if _spec_str(ct_spec) != _spec_str(out_spec):
            raise RuntimeError(f"Expected pytree structure of cotangents to be the same as pytree structure of "
                               f"outputs to the function. cotangents: {_spec_str(ct_spec)}, primal output: "
                               f"{_spec_str(out_spec)}")
        for i, (c, o) in enumerate(zip(ct, out_leaves)):
            if not isinstance(c, Tensor):
                raise RuntimeError(f"vjp_fn: expected the cotangents to be tensors, got {type(c)}")
            if tuple(c.shape) != tuple(o.shape):
                raise RuntimeError(f"Mismatch in shape: grad_output[{i}] has a shape of {tuple(c.shape)} and "
                                   f"output[{i}] has a shape of {tuple(o.shape)}.")
        graph = keep or bool(create_graph) or any(c.requires_grad for c in ct) and is_grad_enabled()
        return tuple(inputs.pack(_grads(out_leaves, inputs.flat, ct, graph, True)))
    result = _level_out(out, keep)
    if not keep:    # torch's vjp returns an output that is a primal as the primal itself, a view of one as a view
        primal = _flatten(result)[0]
        for fresh, x in zip(inputs.flat, _flatten(primals)[0]):
            if fresh is not x and fresh.is_leaf:
                primal = [x if o is fresh else _view_like(x, o, fresh, p) if _lies_in(o, fresh) else p
                          for o, p in zip(out_leaves, primal)]
        result = _unflatten(out_spec, primal)
    return (result, vjp_fn, _level_out(aux, keep)) if has_aux else (result, vjp_fn)


def _lies_in(o, alias):
    return o._placed is None and alias._placed is None and B.memory_owner(o._array) is B.memory_owner(alias._array)


def _view_like(x, o, alias, otherwise, view=None):
    """The view of ``x`` that ``o`` is of ``alias`` (where ``x`` is laid out as ``alias``), else
    ``otherwise``; for an ``o`` not differentiated through ``alias`` (a ``detach()``; ``view``
    None), a view of ``x``'s detached alias, as torch's is no view of the caller's tensor."""
    if x._placed is not None or _geometry(x) != _geometry(alias):
        return otherwise
    with no_grad():
        return (x if (o.requires_grad if view is None else view) else x.detach()).as_strided(
            o.shape, o.stride(), x.storage_offset() + _offset(o, alias))


def _geometry(t):
    return tuple(t.shape), t.stride()


def _offset(t, alias):
    return t.storage_offset() - alias.storage_offset()


def _refuse_complex(leaves, api, what):
    """torch's jacrev/jacfwd take real tensors only: complex inputs (any argument, not only those
    at ``argnums``) and outputs are refused, where a real Jacobian would drop imaginary parts."""
    for i, x in enumerate(leaves):
        if isinstance(x, Tensor) and x.is_complex():
            raise RuntimeError(f"{api.split('(')[0]}: Expected all {what} to be real but received complex tensor at "
                               f"flattened input idx: {i}")


def _jacobian(func, args, kwargs, argnums, has_aux, api, forward=False):
    """The Jacobian by reverse mode. ``forward``: as torch's forward mode gives it, each block in
    its output's dtype (zeros for an integer output); else as reverse mode, in the input's dtype,
    refusing integer outputs."""
    _refuse_complex(_flatten(args)[0], api, "inputs")
    inputs = _Inputs(args, argnums, writable=forward)
    if forward:
        dual_runs.refuse_nested()
    with inputs.level(kwargs, kind="forward" if forward else None):
        out, aux = _split_aux(func(*inputs.args, **kwargs), has_aux, api)
    out_leaves, out_spec = _tensor_leaves(out, api, "return only tensors")
    if not forward:
        _refuse_exact_outputs(out_leaves)
    _refuse_complex(out_leaves, api, "outputs")
    keep = _needs_graph(out_leaves, inputs.flat, inputs.outer)
    try:
        per_output = _blocks(out_leaves, inputs, keep, forward)
    except RuntimeError as exc:
        # func changed in place a value an op had saved (y.copy_(y.sin())): reverse mode cannot read it
        # (torch's jacrev refuses too), torch's forward mode computes through it
        if not (saved_changed(exc) and forward) or keep or forward_ad.entered() or dual_runs.sharded(_flatten(args)[0]):
            inputs.write_back()
            raise
        per_output = _blocks_by_forward_ad(func, args, kwargs, inputs, out_leaves, has_aux)
    inputs.write_back()
    if forward and keep:
        cut_forward_only(_flatten(per_output)[0] + out_leaves + _flatten(aux)[0])
    jac = _unflatten(out_spec, per_output)
    return (jac, _level_out(aux, keep)) if has_aux else jac


def _blocks(out_leaves, inputs, keep, forward):
    """The Jacobian's blocks by reverse mode, one pass per output element; per output leaf, the
    blocks of the inputs packed as the differentiated arguments."""
    per_output = []
    for o in out_leaves:
        n = o.numel()
        if n == 0 or not o.requires_grad:
            jacs = [zeros(tuple(o.shape) + tuple(t.shape), dtype=o.dtype if forward else t.dtype)
                    for t in inputs.flat]
        else:
            rows = eye(n, dtype=o.dtype)
            # one reverse pass per output element (gt has no batched gradients)
            per_row = [_grads([o], inputs.flat, [rows[e].reshape(o.shape)], keep, True, forward) for e in range(n)]
            jacs = [stack([r[j] for r in per_row]).reshape(tuple(o.shape) + tuple(t.shape))
                    for j, t in enumerate(inputs.flat)]
            jacs = [j.to(o.dtype) if forward and j.dtype != o.dtype else j for j in jacs]
        per_output.append(inputs.pack(jacs))
    return per_output


def _blocks_by_forward_ad(func, args, kwargs, inputs, out_leaves, has_aux):
    """``_blocks`` by ``gt.autograd.forward_ad``, one input element at a time: ``func`` runs once per
    element of the differentiated inputs, on dual copies of the values it was called with (the
    caller's tensors still hold them: ``write_back`` comes after)."""
    flat = [x for n in inputs.nums for x in _flatten(args[n])[0]]

    def run(duals):
        call, rest = list(args), iter(duals)
        for n, spec in zip(inputs.nums, inputs.specs):
            call[n] = _unflatten(spec, [next(rest) for _ in _flatten(args[n])[0]])
        return _flatten(_split_aux(func(*call, **kwargs), has_aux, "jacfwd(f, ...)(*args)")[0])[0]
    columns = dual_runs.columns(run, flat, len(out_leaves))
    return [inputs.pack([stack(col, -1).reshape(tuple(o.shape) + tuple(x.shape)) if col else
                         zeros(tuple(o.shape) + tuple(x.shape), dtype=o.dtype) for col, x in zip(columns[k], flat)])
            for k, o in enumerate(out_leaves)]


def jacrev(func, argnums=0, *, has_aux=False, chunk_size=None, _preallocate_and_copy=False):
    """``jacrev(func)(*args)``: the Jacobian of ``func`` with respect to ``args[argnums]``, by
    reverse mode. Each output leaf of shape ``O`` and input leaf of shape ``I`` give a block of
    shape ``O + I``; the result has the output's structure, each leaf replaced by the input's
    structure (a tuple of them for a tuple ``argnums``). ``chunk_size`` is checked and otherwise
    has no effect (rows are computed one at a time).
    """
    if chunk_size is not None and not (isinstance(chunk_size, int) and chunk_size > 0):
        raise ValueError("jacrev: `chunk_size` should be greater than 0.")

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        return _jacobian(func, args, kwargs, argnums, has_aux, "jacrev(f, ...)(*args)")
    return wrapper


def jacfwd(func, argnums=0, has_aux=False, *, randomness="error"):
    """``jacfwd(func)(*args)``: the same Jacobian as ``jacrev`` (torch computes it by forward mode;
    gt, without one, by reverse mode: same values and structure)."""
    _check_randomness(randomness)

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        # torch's forward mode runs func under vmap, whose 'error' mode refuses random draws
        start = B.get_rng_state() if randomness == "error" else None
        function_transforms.frames.append(function_transforms.JACFWD)   # a Function there needs a vmap rule
        try:
            out = _jacobian(func, args, kwargs, argnums, has_aux, "jacfwd(f, ...)(*args)", forward=True)
        finally:
            function_transforms.frames.pop()
        if start is not None and B.get_rng_state() != start:
            raise RuntimeError("vmap: called random operation while in randomness error mode. Please either use the "
                               "'same' or 'different' randomness flags on vmap or perform the randomness operation "
                               "out of vmap")
        return out
    return wrapper


def hessian(func, argnums=0):
    """``hessian(func)(*args)``: ``jacfwd(jacrev(func, argnums), argnums)``, the second derivatives
    of ``func`` with respect to ``args[argnums]`` (shape ``O + I + I`` per leaf pair)."""
    return jacfwd(jacrev(func, argnums), argnums)
