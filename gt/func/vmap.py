"""``gt.func.vmap``: ``func`` run once per batch element on slices of the mapped inputs, the outputs
stacked along ``out_dims`` (see gt/func/__init__.py)."""

import collections
import functools
import weakref

from gt.autograd import function_transforms, grad_hooks, rebind
from gt.autograd.function import new_epoch
from gt.autograd.grad_mode import enable_grad, mode, no_grad
from gt.autograd.levels import arrays, note_changed, transform_level, vmap_changes, watch_changes
from gt.backend import B
from gt.ops.shape import Clone
from gt.tensor import Tensor, inplace, inplace_grad, stack
from gt.tensor.strided_methods import SHAPE_WATCHERS, VMAP_DEPTH
from gt.nn.norm_functions import VMAP_SLICES
from gt.func import function_vmap
from gt.func.pytree import _broadcast_prefix, _check_randomness, _flatten, _name, _spec_str, _unflatten

function_transforms.set_rule_caller(function_vmap.call_rule)     # a custom Function's vmap staticmethod


# one piece, as torch's vmap reads: the in_dims checks, the loop over elements and the randomness
# modes share the batch size and the flattened arguments
def vmap(func, in_dims=0, out_dims=0, randomness="error", *, chunk_size=None):
    """``vmap(func)(*args)``: ``func`` mapped over dimension ``in_dims`` of its tensor arguments,
    the results stacked along ``out_dims``. ``in_dims``: an int (every tensor), None (not mapped),
    or a tuple with one entry per positional argument, nested as the arguments are (a prefix of
    their pytree); keyword arguments are passed unmapped. ``out_dims``: an int or None, or a tuple
    matching the outputs. Runs ``func`` once per batch element (see the module's notes).

        >>> x = gt.randn(5, 3)
        >>> gt.func.vmap(gt.dot)(x, x).shape        # five dot products
        (5,)
    """
    _check_randomness(randomness)
    if chunk_size is not None and not (isinstance(chunk_size, int) and chunk_size > 0):
        raise ValueError(f"vmap: chunk_size should be None or greater than 0. (got {chunk_size})")
    name = _name(func)

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        where = f"vmap({name}, in_dims={in_dims}, ...)(<inputs>)"
        if not args:
            raise ValueError(f"vmap({name})(<inputs>): got no inputs. Maybe you forgot to add inputs, or you are "
                             "trying to vmap over a function with no inputs. The latter is unsupported.")
        if not _valid_dims(in_dims):
            raise ValueError(f"{where}: expected `in_dims` to be int or a (potentially nested) tuple matching the "
                             f"structure of inputs, got: {type(in_dims)}.")
        leaves, spec = _flatten(args)

        def spec_error():
            dims_spec = _spec_str(_flatten(in_dims)[1])
            raise ValueError(f"{where}: in_dims is not compatible with the structure of `inputs`. in_dims has "
                             f"structure {dims_spec} but inputs has structure {_spec_str(spec)}.")
        dims = _broadcast_prefix(in_dims if isinstance(in_dims, tuple) else (in_dims,) * len(args), args, spec_error)
        sizes, columns = [], []
        for x, d in zip(leaves, dims):
            if d is None:
                columns.append(None)
                continue
            if not isinstance(x, Tensor):
                raise ValueError(f"{where}: Got in_dim={d} for an input but the input is of type {type(x)}. We cannot "
                                 "vmap over non-Tensor arguments, please use None as the respective in_dim")
            if not -x.dim() <= d < x.dim():
                raise ValueError(f"{where}: Got in_dim={d} for some input, but that input is a Tensor of "
                                 f"dimensionality {x.dim()} so expected in_dim to satisfy -{x.dim()} <= in_dim < "
                                 f"{x.dim()}.")
            sizes.append(x.shape[d])
            # an empty batch: func runs once on zeros of an element's shape, for the outputs' shapes
            elem = x.shape[:d % x.dim()] + x.shape[d % x.dim() + 1:]
            columns.append(x.unbind(d) if x.shape[d] else [x.new_zeros(elem)])
        if not sizes:
            raise ValueError("vmap: Expected at least one Tensor to vmap over")
        if len(set(sizes)) > 1:
            raise ValueError(f"vmap: Expected all tensors to have the same size in the mapped dimension, got sizes "
                             f"{sizes} for the mapped dimension")
        start = B.get_rng_state() if randomness != "different" else None
        fixed = [x for x, c in zip(leaves, columns) if c is None and isinstance(x, Tensor)]
        fixed += [x for x in _flatten(kwargs)[0] if isinstance(x, Tensor)]
        # an in-place change of shape (unsqueeze_, t_ of a square matrix) counts a version, as torch's: those
        # counted are told from writes (an undone t_ is no change), and shapes and strides watched
        before = ([(x, x._version, _layout(x)) for x in fixed], [(c, _geometry(c[0])) for c in columns if c])
        changes = collections.Counter()
        SHAPE_WATCHERS.append(changes)
        watch_changes()      # the captured tensors func changes, made once (gt/autograd/levels.py)
        _SIZES.append(sizes[0])
        function_transforms.frames.append(function_transforms.VmapFrame(randomness))
        try:
            outs = _run(func, kwargs, spec, leaves, columns, sizes[0], randomness, start, name, before, changes)
            _undo_changes(vmap_changes[-1][1], done=True)
        finally:
            SHAPE_WATCHERS.pop()     # this call's, by position: an inner vmap's Counter may equal it
            function_transforms.frames.pop()
            vmap_changes.pop()
            _SIZES.pop()
        return _stack_outputs(outs, out_dims, name, sizes[0])
    return wrapper


# the loop of vmap's wrapper over the batch's elements (its arguments are the wrapper's state)
def _run(func, kwargs, spec, leaves, columns, size, randomness, start, name, before, changes):
    outs = []
    for i in range(max(size, 1)):
        if i and vmap_changes[-1][1]:
            _undo_changes(vmap_changes[-1][1])
        if randomness == "same":
            B.set_rng_state(start)
        outs.append(_element(func, kwargs, spec, leaves, [None if c is None else c[i] for c in columns]))
        if not note_changed(vmap_changes[-1][1]):
            moved = _moved(vmap_changes[-1][1])
            _undo_changes(vmap_changes[-1][1])    # batched values (each element's its own): torch refuses
            raise RuntimeError(_batched_message(moved[0].op, moved[0].t.shape, moved[0].t, VMAP_DEPTH[0] + 1))
        if not i and any(kept.checked for kept in vmap_changes[-1][1].values()):
            _refuse_batched(func, kwargs, spec, leaves, columns, vmap_changes[-1][1])
            if start is not None:
                B.set_rng_state(start)
            outs[0] = _element(func, kwargs, spec, leaves, [None if c is None else c[0] for c in columns])
        _refuse_changed_inputs(name, *before, i, changes, vmap_changes[-1][1])
        if randomness == "error" and B.get_rng_state() != start:
            raise RuntimeError("vmap: called random operation while in randomness error mode. Please either "
                               "use the 'same' or 'different' randomness flags on vmap or perform the "
                               "randomness operation out of vmap")
    return outs


def _element(func, kwargs, spec, leaves, slices):
    """func on one element: ``slices`` of the mapped leaves (None for the others), its own at its level."""
    call = _unflatten(spec, [x if s is None else s for x, s in zip(leaves, slices)])
    mapped = [s for s in slices if s is not None]
    VMAP_SLICES.append({id(s) for s in mapped})
    VMAP_DEPTH[0] += 1
    try:
        # the mapped slices are func's own; an unmapped input is changed once as a captured tensor, as torch's
        with transform_level(mapped, _Refusal()):
            frame = function_transforms.frames[-1]      # the Functions func applies: batched inputs
            frame.serial, frame.mapped = mode.level, mode.level_inputs
            return func(*call, **kwargs)
    finally:
        VMAP_SLICES.pop()
        VMAP_DEPTH[0] -= 1


# torch's vmap changes a captured tensor once (values not batched) or refuses (batched ones); gt makes
# the change once (gt/autograd/levels.py made_once), and refuses, in torch's words, a mapped slice (or a
# view of one) written (at once: _Refusal) and values made inside func that differ between the elements
# or move on NaN slices (_refuse_batched). Values that depend on the mapped inputs' shape alone
# (ones_like(x), x.new_zeros(2)) are batched for torch, which refuses them; they are the same for any
# values of the element's shape, so no run of func on other values tells them from constants
# (ones(x.shape), which torch writes): that needs to know what each value was made from, a mark passed
# on by every op func runs (torch's BatchedTensor), which gt's per-element vmap does not pay.


class _Refusal:
    """A vmap level's refusal (gt/tensor/inplace_grad.py ``refuse_captured`` calls it): torch's error
    for a captured tensor ``base`` changed by ``op`` (through ``written``, a view of it, or itself)
    with a mapped slice, or a view of one (batched)."""

    def __call__(self, written, op, base):
        return _batched_message(op, written.shape, base, VMAP_DEPTH[0])


def _refuse_batched(func, kwargs, spec, leaves, columns, changes):
    """A captured tensor changed by values made inside func, equal for every element so far: torch
    refuses those that are batched (computed from a mapped input, even where equal), which gt's
    per-element run cannot tell by the values. func runs once more on the first element's slices
    made NaN (integers: plus one), the changes put back before and after (the caller runs the first
    element again): a tensor whose new values then move was changed by batched values (torch's
    error). An error in that run tells nothing."""
    start = B.get_rng_state()
    _undo_changes(changes)
    with no_grad():
        probes = [None if c is None else (c[0].detach().clone().fill_(float("nan")) if c[0].is_floating_point()
                                          else c[0].detach() + 1) for c in columns]
    try:
        _element(func, kwargs, spec, leaves, probes)
        moved = _moved(changes)
    except Exception:       # (the NaN values may take func where it raises: no answer)
        moved = []
    finally:
        B.set_rng_state(start)
        _undo_changes(changes)
    if moved:
        raise RuntimeError(_batched_message(moved[0].op, moved[0].t.shape, moved[0].t, VMAP_DEPTH[0] + 1))


def _moved(changes):
    """The ``checked`` tensors among ``changes`` whose values are not those of the first element's run."""
    return [kept for kept in changes.values() if kept.checked and not _same_values(kept.t, kept.result)]


def _same_values(t, values):
    with no_grad():
        return t.shape == values.shape and bool(((t == values) | (t.isnan() & values.isnan())).all())


def _batched_message(op, shape, base, level):
    """torch's error for an in-place change by ``op`` of a tensor of ``shape`` (a view of ``base``, or
    ``base``) that vmap does not map, by a mapped (batched) value."""
    if op == "add_":    # (torch's add_ broadcasts first, over the sizes of the vmaps ``base`` is captured for)
        stamp = getattr(base, "_level", 0)
        sizes = [n for (start, _), n in zip(vmap_changes, _SIZES) if stamp < start]
        return f"output with shape {list(shape)} doesn't match the broadcast shape {[*sizes, *shape]}"
    what = "inplace arithmetic" if op in (None, "copy_", "mul_", "div_", "sub_") else op if op in (
        "fill_", "index_put_", "index_add_") else f"aten::{op}"
    where = "in a vmap" if not what.startswith("aten::") else f"at level {level}"
    return (f"vmap: {what}(self, *extra_args) is not possible because there exists a Tensor `other` in extra_args "
            f"that has more elements than `self`. This happened due to `other` being vmapped over but `self` not "
            f"being vmapped over {where}. Please try to use out-of-place operators instead of {what}. If said "
            "operator is being called inside the PyTorch framework, please file a bug report instead.")


_SIZES = []      # the batch sizes of the vmap calls running, beside vmap_changes'

# a captured tensor's op after vmap changed it -> the tensors standing for its versions put back
_held = weakref.WeakKeyDictionary()


def _undo_changes(changes, done=False):
    """The captured tensors ``made_once`` kept (gt/autograd/levels.py), back to their values,
    history and versions before the first change (a put-back of the transform's own, not a change
    of its function's: no level checks it). A change recorded on the tape is undone as a change of its own, so ops
    recorded since read the version of then (gt/autograd/rebind.py). ``done``: the call is over:
    each tensor keeps its values and takes the versions counted by the first element's run."""
    m = mode
    level, m.level = m.level, 0
    try:
        for kept in changes.values():
            t = kept.t
            if not done:
                if t._array is not kept.layout[0] or t._placed is not kept.layout[1]:
                    t._array, t._placed = kept.layout      # the same memory, seen as before a change of shape
                if t._ctx is not kept.ctx or t._requires_grad != kept.requires_grad:
                    _unrecord(t, kept)
                with no_grad():
                    t.copy_(kept.values)
            for a, state in zip(arrays(t), kept.after if done else kept.versions):
                B.set_version_state(a, state)
            if done and kept.olds and t._ctx is not None:
                # rebind holds them weakly; the ops that read them hold t, which holds its op
                _held.setdefault(t._ctx, []).extend(kept.olds)
    finally:
        m.level = level


def _unrecord(t, kept):
    """Put ``t``'s history back as it was before the first change, recorded as a change of ``t``:
    ``t`` becomes a new node, a copy of the tensor that stands for the values of then (its op
    belongs to that one alone)."""
    old = Tensor._from_value(t._value)      # stands for t's values before the put-back
    old._ctx, old._requires_grad = t._ctx, t._requires_grad
    grad_hooks.move(t, old)
    if kept.ctx is None:
        t._ctx, t._requires_grad = None, kept.requires_grad
    else:
        with enable_grad():
            again = Clone.apply(rebind.version_at(t, kept.epoch))
        inplace_grad._written.add(again._ctx)     # t is that memory, no view of the tensor it copies
        t._ctx, t._requires_grad = again._ctx, True
    rebind.changed(t, old, new_epoch())
    kept.olds.append(old)


def _refuse_changed_inputs(name, fixed, mapped, i, changes, once):
    """After element ``i``: an unmapped input (``fixed``: (tensor, version, geometry)) changed in
    place (a version not counted by a change of shape in ``changes`` nor by a change made once,
    kept in ``once``; or another geometry), or a mapped one (``mapped``: (slices, geometry))
    changed in shape or strides, raises."""
    owners = {id(B.memory_owner(a)) for kept in once.values() for a in arrays(kept.t)}

    def repeated(x, version, layout):
        return (_layout(x) != layout or x._version - inplace.shape_changes(x, changes) != version) and \
            owners.isdisjoint(id(B.memory_owner(a)) for a in arrays(x))
    if any(repeated(*entry) for entry in fixed):
        # func runs once per element here: the change would repeat (torch refuses it for a mapped value)
        raise RuntimeError(f"vmap({name}, ...): func changed an unmapped input (in_dims=None, or a keyword "
                           "argument) in place; gt's vmap runs func once per batch element, so the change "
                           "would be made once per element. Change a copy (tensor.clone()) instead")
    if any(_geometry(c[i]) != geometry for c, geometry in mapped):
        raise RuntimeError(f"vmap({name}, ...): func changed the shape of a mapped input in place (squeeze_, "
                           "unsqueeze_, t_, transpose_, resize_, ...); gt's vmap runs func on slices of the "
                           "input, so the change cannot reach the input. Use the out-of-place op instead")


def _layout(x):
    """What an unmapped input's change of shape in place shows in: its geometry, and on a mesh its
    placement and its shards' strides (there ``t_`` re-lays the shards and ``stride()`` is
    row-major whatever the layout; a transpose undone before func returns leaves them as they were)."""
    placed = getattr(x, "_placed", None)
    if placed is None:
        return _geometry(x)
    return _geometry(x), repr(placed.placement), tuple(B.element_strides(s) for s in placed.shards)


def _geometry(x):
    """Shape and strides (the shape alone where there are no strides: sparse, nested)."""
    if x.ndim < 2:
        return x.shape
    try:
        return x.shape, x.stride()
    except (RuntimeError, NotImplementedError):
        return x.shape


def _valid_dims(dims):
    if dims is None or isinstance(dims, int) and not isinstance(dims, bool):
        return True
    if isinstance(dims, tuple):
        return all(_valid_dims(d) or isinstance(d, (list, dict)) for d in dims)
    return False


def _stack_outputs(outs, out_dims, name, size):
    first_leaves, spec = _flatten(outs[0])
    per_elem = [_flatten(o)[0] for o in outs]

    def spec_error():
        raise ValueError(f"vmap({name}, ..., out_dims={out_dims})(<inputs>): out_dims is not compatible with the "
                         f"structure of `outputs`. out_dims has structure {_spec_str(_flatten(out_dims)[1])} but "
                         f"outputs has structure {_spec_str(spec)}.")
    if isinstance(out_dims, tuple) and not isinstance(outs[0], tuple):
        if not (isinstance(outs[0], Tensor) and len(out_dims) == 1):    # torch takes (d,) for one tensor
            spec_error()
        out_dims = out_dims[0]
    dims = _broadcast_prefix(out_dims, outs[0], spec_error)
    result = []
    for j, d in enumerate(dims):
        column = [leaves[j] for leaves in per_elem]
        if d is None:
            same = all(c is column[0] for c in column) or all(
                isinstance(c, Tensor) and isinstance(column[0], Tensor) and c.shape == column[0].shape
                and bool((c == column[0]).all()) for c in column) or all(
                not isinstance(c, Tensor) and c == column[0] for c in column)
            if not same:
                raise ValueError(f"vmap({name}, ...): `{name}` can not return a BatchedTensor when out_dim is None")
            result.append(column[0])
            continue
        if not isinstance(column[0], Tensor):
            raise ValueError(f"vmap({name}, ...): `{name}` must only return Tensors, got type {type(column[0])}. "
                             "Did you mean to set out_dims= to None for output?")
        if not isinstance(d, int) or isinstance(d, bool):
            raise ValueError(f"vmap({name}, ..., out_dims={out_dims}): `out_dims` must be an int, None or a python "
                             f"collection of ints representing where in the outputs the vmapped dimension should "
                             f"appear.")
        nd = column[0].dim() + 1
        if not -nd <= d < nd:
            raise IndexError(f"Dimension out of range (expected to be in range of [{-nd}, {nd - 1}], but got {d})")
        result.append(stack(column, d) if size else stack(column, d).narrow(d, 0, 0))
    return _unflatten(spec, result)
