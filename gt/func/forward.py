"""``gt.func``'s forward-mode transforms, ``jvp`` and ``linearize``, computed by gt's reverse mode
(the vjp of the vjp; see gt/func/__init__.py), and torch's forward mode's ways with the caller's
tensors: a function may change its input in place (the caller's primal and tangent change), and
an output that is the input, or a view of it, is a view of the caller's primal (its tangent the
caller's tangent itself, or the same view of it)."""

from gt.autograd import forward_ad, is_grad_enabled, no_grad
from gt.autograd.backward import topological_order
from gt.autograd.forward_ad import connect
from gt.autograd.levels import transform_level
from gt.autograd.versions import saved_changed
from gt.tensor.creation import zeros
from gt.tensor.inplace import bump_versions
from gt.func.derivatives import (_Inputs, _first_vjp, _geometry, _level_out, _lies_in, _needs_graph, _offset,
                                 _second_vjp, _split_aux, _tensor_leaves, _view_like)
from gt.func import dual_runs
from gt.func.constants import HiddenOps, cut_forward_only
from gt.func.pytree import _flatten, _spec_str, _unflatten
from gt.tensor import Tensor


# one piece, as torch's reads: its checks, the two reverse passes and the forward-AD fallback share the
# flattened arguments and the function's copies of them
def jvp(func, primals, tangents, *, strict=False, has_aux=False):
    """``jvp(func, primals, tangents)`` -> ``(output, jvp_out)`` (``(output, jvp_out, aux)`` with
    ``has_aux``): ``func(*primals)`` and its directional derivative along ``tangents`` (the same
    structure as ``primals``, a tuple). Computed as the vjp of the vjp (two reverse passes), with
    the same values as torch's forward mode; where gt records no gradient of an op's gradient
    (eigh, svd, complex tensors), through ``gt.autograd.forward_ad`` (``func`` then runs twice).
    """
    if not isinstance(primals, tuple):
        raise RuntimeError("jvp(f, primals, tangents): Expected primals to be a tuple. E.g. it should be valid "
                           "to call f(*primals).")
    if not isinstance(tangents, tuple):
        raise RuntimeError("jvp(f, primals, tangents): Expected tangents to be a tuple. E.g. it should be valid "
                           "to call f(*primals).")
    p_leaves, p_spec = _flatten(primals)
    t_leaves, t_spec = _flatten(tangents)
    if _spec_str(p_spec) != _spec_str(t_spec):
        raise RuntimeError(f"jvp(f, primals, tangents): Expected primals and tangents to have the same python "
                           f"structure. For example, if primals is a tuple of 3 tensors, tangents also must be. "
                           f"Got primals with structure {_spec_str(p_spec)} and tangents with structure "
                           f"{_spec_str(t_spec)}")
    if not p_leaves:
        raise RuntimeError("jvp(f, primals, tangents): Expected primals to be a non-empty tuple of Tensors")
    if not all(isinstance(p, Tensor) and isinstance(t, Tensor) for p, t in zip(p_leaves, t_leaves)):
        raise RuntimeError("jvp(f, primals, tangents): Expected primals and tangents to be tuples of Tensors")
    dual_runs.refuse_nested()
    for p, t in zip(p_leaves, t_leaves):
        if tuple(p.shape) != tuple(t.shape):
            raise RuntimeError(f"Trying to set a forward gradient that has a different size than that of the "
                               f"original Tensor, this is not supported. Tensor is of size {list(p.shape)} while "
                               f"the given forward gradient is of size {list(t.shape)}.")
    inputs = _Inputs(primals, tuple(range(len(primals))), writable=True)
    with inputs.level(kind="forward"):
        out, aux = _split_aux(func(*inputs.args), has_aux, "jvp(f, primals, tangents)")
    changed = inputs.changes()
    recorded = [(fresh, copy) for fresh, copy, tangent_changed in changed if tangent_changed]
    out_leaves, out_spec = _tensor_leaves(out, "jvp(f, primals, tangents)")
    keep = _needs_graph(out_leaves, inputs.flat, inputs.outer) or any(t.requires_grad for t in t_leaves) and inputs.outer
    # the vjp with a free cotangent u is linear in u; its vjp along the tangents is J @ tangents
    ends = out_leaves + [copy for _, copy in recorded]     # (the changed inputs' tangents: written back below)
    try:
        us, vj = _first_vjp(ends, inputs.flat)
    except (NotImplementedError, RuntimeError) as exc:    # (see _jvp_by_forward_ad: func runs again)
        # (forward AD gathers sharded tensors: copies)
        if not (keep or forward_ad.entered() or dual_runs.sharded(p_leaves + t_leaves)) and (
                isinstance(exc, NotImplementedError) or saved_changed(exc)):
            return _jvp_by_forward_ad(func, p_leaves, p_spec, t_leaves, has_aux)
        inputs.write_back()
        raise
    inputs.write_back()
    _count_unrecorded(changed, inputs, t_leaves)
    jv = _second_vjp(ends, us, vj, t_leaves, keep, keep)
    if keep:
        cut_forward_only(out_leaves + jv + _flatten(aux)[0])
    _write_tangents(recorded, jv[len(out_leaves):], inputs, t_leaves)
    jv, primal = jv[:len(out_leaves)], [o if keep else o.detach() for o in out_leaves]
    if not keep:
        _alias_inputs(out_leaves, primal, jv, inputs, t_leaves)
    result = (_unflatten(out_spec, primal), _unflatten(out_spec, jv))
    if not has_aux:
        return result
    aux_leaves, aux_spec = _flatten(_level_out(aux, keep))
    if not keep:    # torch unwraps aux as a view of the input it lies in
        for _, x, _, alias, _, _ in inputs.written:
            aux_leaves = [_view_like(x, a, alias, a, True) if isinstance(a, Tensor) and _lies_in(a, alias) else a
                          for a in aux_leaves]
    return result + (_unflatten(aux_spec, aux_leaves),)


def _write_tangents(changed, tangents, inputs, t_leaves):
    """torch's forward mode keeps the caller's tangent as the dual's, so an input changed in place
    changes its tangent too: ``tangents`` (of the changed copies) into the caller's, after the
    same change of shape (``t_``, ``unsqueeze_``: torch makes it on the tangent, not the primal)."""
    at = {id(f): i for i, f in enumerate(inputs.flat)}
    original = {id(w[0]): w[3] for w in inputs.written}     # each copy's layout before func
    with no_grad():
        for (fresh, copy), tangent in zip(changed, tangents):
            t, alias = t_leaves[at[id(fresh)]], original[id(fresh)]
            if _geometry(copy) != _geometry(alias) and _geometry(t) == _geometry(alias):
                t.as_strided_(copy.shape, copy.stride(), t.storage_offset() + _offset(copy, alias))
                if bool((t == tangent).all()):
                    continue        # a change of shape alone: torch's tangent counts that one version
            t.copy_(tangent)


def _count_unrecorded(changed, inputs, t_leaves):
    """An input changed in place where gt recorded no change (``t_()`` of a vector or a 0-d tensor,
    a view of itself; a write under ``inference_mode``): torch's forward mode makes the op on the
    tangent too, whose version counts it. The values stay (a recorded change writes the tangent:
    ``_write_tangents``; the function's writes under ``no_grad`` are recorded: gt/autograd/grad_mode.py)."""
    at = {id(f): i for i, f in enumerate(inputs.flat)}
    counts = {id(w[0]): w[3]._version - w[4] for w in inputs.written}
    for fresh, _, tangent_changed in changed:
        if not tangent_changed:
            tangent = t_leaves[at[id(fresh)]]
            for _ in range(counts[id(fresh)]):
                bump_versions([tangent])


def _alias_inputs(outs, primal, jv, inputs, t_leaves):
    """torch's jvp returns an output lying in an input's memory (the input itself, changed in place
    or not, or a view of it) as a view of the caller's primal, and its tangent, where the output
    is differentiated through the input, as the caller's tangent itself (for the input itself) or
    the same view of it. ``primal`` and ``jv`` (the results of ``outs``) are changed so."""
    at = {id(f): i for i, f in enumerate(inputs.flat)}
    for fresh, x, copy, alias, _, _ in inputs.written:
        t = t_leaves[at[id(fresh)]]
        for j, o in enumerate(outs):
            if not _lies_in(o, alias):
                continue
            primal[j] = _view_like(x, o, alias, primal[j])
            if o.requires_grad:
                jv[j] = t if o is copy else _view_like(t, o, alias, jv[j])


def _jvp_by_forward_ad(func, p_leaves, p_spec, t_leaves, has_aux):
    """``jvp``'s result through forward AD (gt/autograd/forward_ad.py: closed forms, or one output
    element at a time), where the double-vjp trick cannot record a gradient's gradient or read a value
    that ``func`` changed in place after an op saved it; ``func`` runs once more, on dual tensors of the
    caller's primals and tangents (its changes in place reach them, as torch's; until then they hold
    the values func was first called with: it changed copies)."""
    api = "jvp(f, primals, tangents)"
    with dual_runs.own_level():
        tangents = [t.detach() for t in t_leaves]
        duals = [forward_ad.make_dual(p.detach(), t) for p, t in zip(p_leaves, tangents)]
        with transform_level(duals + tangents, kind="forward"):     # (a change of a dual is written into its tangent)
            out, aux = _split_aux(func(*_unflatten(p_spec, duals)), has_aux, api)
        leaves, spec = _tensor_leaves(out, api)
        pairs = [forward_ad.unpack_dual(o) for o in leaves]
    jv = [zeros(p.shape, dtype=p.dtype) if t is None else t for p, t in pairs]
    result = (_unflatten(spec, [p for p, _ in pairs]), _unflatten(spec, jv))
    return result + (aux,) if has_aux else result


def linearize(func, *primals):
    """``linearize(func, *primals)`` -> ``(output, jvp_fn)``: ``jvp_fn(*tangents)`` is
    ``jvp(func, primals, tangents)[1]``, without running ``func`` again (the first of the two
    reverse passes of the double-vjp trick is kept and reused; each call runs the second).
    """
    inputs = _Inputs(primals, tuple(range(len(primals)))) if primals else None
    if inputs is None:
        raise RuntimeError("linearize(f, *primals): Expected at least one primal")
    p_leaves, p_spec = _flatten(primals)
    # torch runs func on the primals themselves first: requires_grad_() there sets the caller's flag
    callers = {id(f): x for f, x in zip(inputs.flat, p_leaves)}
    with inputs.level(layer=False, kind="linearize", callers=callers):   # (torch traces func under forward AD)
        out = func(*inputs.args)
    dual_runs.refuse_nested()       # (torch's runs func first, then enters its level to trace the jvp)
    if inputs.outer:        # an input whose caller's flag func turned on: the output reaches the caller's tensor
        for fresh, x in zip(inputs.flat, p_leaves):
            if fresh.is_leaf and x.requires_grad:
                connect(fresh, x)
    out_leaves, out_spec = _tensor_leaves(out, "linearize(f, *primals)")
    keep = _needs_graph(out_leaves, inputs.flat, inputs.outer)
    if keep:    # the output is the caller's: jvp_fn's own run of func, on detached primals (see _traced)
        cut_forward_only(out_leaves)
        out_leaves, flat = _traced(func, p_leaves, p_spec)
    else:
        flat = inputs.flat
    us, vj = _first_vjp(out_leaves, flat)
    run = _constants(out_leaves, flat)

    def jvp_fn(*tangents):
        t_leaves, t_spec = _flatten(tangents)
        if _spec_str(t_spec) != _spec_str(p_spec):
            raise RuntimeError(f"linearize: expected the tangents to have the structure of the primals, "
                               f"{_spec_str(p_spec)}, got {_spec_str(t_spec)}")
        for p, t in zip(p_leaves, t_leaves):
            if not isinstance(t, Tensor) or tuple(t.shape) != tuple(p.shape):
                raise RuntimeError(f"linearize: expected each tangent to be a tensor of its primal's shape "
                                   f"{tuple(p.shape)}, got {tuple(t.shape) if isinstance(t, Tensor) else type(t)}")
        if not (is_grad_enabled() and (keep or any(t.requires_grad for t in t_leaves))):
            return _unflatten(out_spec, _second_vjp(out_leaves, us, vj, t_leaves, False, True))
        # torch's traced jvp records its ops (its result requires grad): this call's own first vjp, whose
        # graph a backward through the result may free
        with run.shown():
            call_us, call_vj = _first_vjp(out_leaves, flat)
        return _unflatten(out_spec, _second_vjp(out_leaves, call_us, call_vj, t_leaves, True, True))
    return _level_out(out, keep), jvp_fn


def _traced(func, p_leaves, p_spec):
    """torch's ``linearize`` runs ``func`` twice: for the output (on the caller's primals, connected
    to its graph) and to trace the jvp, whose constants are detached from it. gt's second run so: a
    backward through the output then leaves jvp_fn's graph whole, and jvp_fn's results (recorded,
    as torch's) reach no caller's tensor. Returns the run's output leaves and its fresh inputs."""
    primals = _unflatten(p_spec, [x.detach() if isinstance(x, Tensor) else x for x in p_leaves])
    inputs = _Inputs(primals, tuple(range(len(primals))))
    with inputs.level(layer=False, kind="linearize"):
        out = func(*inputs.args)
    return _tensor_leaves(out, "linearize(f, *primals)")[0], inputs.flat


def _constants(outputs, inputs):
    """The values of linearize's run computed from its fresh ``inputs``, made leaves (as torch's trace
    holds them): a backward through a jvp_fn result stops at them, leaving the run's ops, which the
    next call walks, unfreed. Their ops hidden (``shown()``: back, for one call's first vjp)."""
    outputs, cut = [o for o in outputs if o.requires_grad], []
    made = {id(x) for x in inputs}
    for t in topological_order(outputs[0], outputs[1:]) if outputs else ():
        ctx = t._ctx
        if ctx is not None and any(id(a) in made for a in ctx.inputs):
            made.add(id(t))
            cut.append((t, ctx))
    hidden = HiddenOps(cut)
    hidden.hide()
    return hidden
