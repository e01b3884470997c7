"""``gt.func.vmap``, ``jacrev``/``jacfwd`` and per-sample gradients against torch.func over torch's
own op test table (``common_methods_invocations.op_db``), as torch's test_vmap.py exercises its
vmap (``test_vmap_exhaustive``: each tensor argument batched in turn).

For every OpInfo whose op gt provides (turned into gt calls as tests/test_opinfo_parity.py does),
its first sample:

* vmap: each tensor argument batched alone along a new dim, the others unmapped (in_dims None):
  at 0 for every argument, also at -1 (last) for the first; then all of them at 0. The batch holds
  3 elements (floats scaled by 1, 1.25, 1.5, so that they differ; integers repeated). Values,
  dtypes and shapes of ``vmap(op, in_dims)`` are compared with torch.func.vmap's (float32, rtol
  1e-5); where torch raises, gt must raise too, except where torch's vmap cannot batch the op
  (``EXTENDS``: gt runs func per element, and its answer is compared with torch's op applied to
  each element). The in-place variant (``x.add_(y)``) runs with the input batched at -1
  (writes through slices that are not contiguous); the input it changed is compared too.
* jacrev in float64 with respect to every floating positional argument (of at most 30 elements;
  through ``op.gradcheck_wrapper``), rtol 1e-8; jacfwd too where they hold at most 12 elements in
  all. A wider run (60 elements) found only places where torch's jacfwd is the odd one out: it
  disagrees with its own jacrev for ``scatter_reduce('prod', include_self=False)``, is zeros for
  the chunked ``linear_cross_entropy`` (an autograd.Function without a forward-mode formula), and
  where a derivative is inf/NaN (``special.entr`` at 0) spreads NaN along the Jacobian's rows
  (forward mode: 0 * inf) where gt's, computed by reverse mode (MISSING.md gt.func), spreads it
  along the columns, as torch's jacrev.
* ``vmap(grad(f))``, f the sum of sin of the op's floating outputs: per-sample gradients with the
  input batched at 0, float64 (floating arguments of at most 100 elements).

Known differences are listed below with their reasons (strict xfails where they hold on every
engine); tests/test_opinfo_parity.py's ``SKIP`` (conventions of gt's values) are skipped too.
"""

import types
import warnings

import pytest

import gt
from gt.sharding.mesh import use_mesh
from helpers import torch_test_fn_from_frames  # noqa: F401 - the fixture, used by every test below
from test_opinfo_parity import (RANDOM, SKIP, UNINITIALISED, _as_gt_function, _full, _Unsupported, compare, flat,
                                gt_function, op_db, to_gt, torch)

pytest.importorskip("expecttest")
# table: the GT_DEVICES passes run a spread of the table (tests/conftest.py)
pytestmark = [pytest.mark.table, pytest.mark.usefixtures("torch_test_fn_from_frames")]
pytree = pytest.importorskip("torch.utils._pytree")
BATCH = 3

# ---- known differences ------------------------------------------------------------------------
_STATS = ("batch norm in training inside vmap: gt refuses running statistics that are not all mapped, "
          "also where the input is unmapped (torch runs it there; MISSING.md gt.func)")
_STRIDED = ("as_strided inside vmap: gt reads storage positions of the mapped input's whole memory (refused "
            "outside the element); torch's are relative to each element's start (MISSING.md gt.func)")
_SHAPE = ("an in-place change of shape of a mapped input (squeeze_, unsqueeze_, t_, transpose_, resize_): "
          "refused in gt, whose vmap runs func on slices that cannot pass the change to the input")
# vmap: ops that differ on every engine (strict xfails)
VMAP_DIFFERS = {"nn.functional.batch_norm": _STATS, "as_strided": _STRIDED, "as_strided_copy": _STRIDED}
INPLACE_DIFFERS = {name: _SHAPE for name in ("squeeze", "unsqueeze", "t", "transpose")}
INPLACE_DIFFERS["as_strided"] = _STRIDED
# vmap: not compared (torch's value is the imprecise one)
VMAP_SKIP = {name: "an element lands 6e-4 from trigamma's pole at -3 (x 1.25): torch's float32 value is 8e-5 "
                   "off, gt's is float64's rounded" for name in (
    "polygamma.polygamma_n_0", "polygamma.polygamma_n_1", "polygamma.polygamma_n_2", "polygamma.polygamma_n_3",
    "polygamma.polygamma_n_4", "special.polygamma.special_polygamma_n_0")}
VMAP_SKIP.update({
    "resize_": "torch's vmap fails an internal assert (NYI) for a batch dim that is not the first",
    "resize_as_": "torch refuses resizing an unmapped tensor to a mapped one's element shape (a limit of its "
                  "batching rule); gt resizes it to that shape, here its own",
})
_DYNAMIC = "its output's shape depends on the values: torch's vmap refuses (dynamic shape)"
_NO_RULE = "torch's vmap has no batching rule for it and no fallback"
_CONTROL = "data-dependent control flow (`if (var < 0).any()`): torch's vmap refuses"
# torch's vmap refuses these; gt runs func per element: compared with torch's op on each element
EXTENDS = {"masked_select": _DYNAMIC, "unique": _DYNAMIC, "unique_consecutive": _DYNAMIC, "nonzero": _DYNAMIC,
           "tensor_split": _NO_RULE, "column_stack": _NO_RULE, "histogramdd": _NO_RULE,
           "nn.functional.gaussian_nll_loss": _CONTROL}
JAC_DIFFERS = {
    "nn.functional.max_unpool3d": "duplicate indices: torch's forward-mode tangent is undefined (op_db skips its "
                                  "own test_forward_mode_AD); gt's jacfwd equals both frameworks' jacrev",
}
# where the batch is sharded (on either engine), each element gt's vmap slices is a tensor of its own, so
# as_strided's positions are relative to its start, as torch's: the per-sample gradients agree there
_SHARDED_BATCH = gt.zeros(BATCH, 2)._placed is not None
GRAD_DIFFERS = {} if _SHARDED_BATCH else {"as_strided": _STRIDED, "as_strided_copy": _STRIDED}


# ---- the harness ----------------------------------------------------------------------------------
def _first_sample(op, dtype):
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return next(iter(op.sample_inputs("cpu", dtype, requires_grad=False)), None)


def _batched(t, bdim):
    """BATCH copies of ``t`` stacked at ``bdim`` (0 or -1), floats scaled so the elements differ."""
    t = t.detach()
    copies = [t * (1 + 0.25 * k) for k in range(BATCH)] if t.is_floating_point() else [t] * BATCH
    return torch.stack(copies, dim=0 if bdim == 0 else t.dim()).contiguous()


def _variants(args, inplace=False):
    """``(name, batched args, in_dims)``: each tensor leaf batched alone (0; -1 too for the first),
    then all of them at 0."""
    leaves, spec = pytree.tree_flatten(args)
    tensors = [i for i, x in enumerate(leaves) if isinstance(x, torch.Tensor)]
    if not tensors:
        return
    picks = [[(tensors[0], -1)]] if inplace else [[(i, 0)] for i in tensors] + [[(tensors[0], -1)]]
    if len(tensors) > 1 and not inplace:
        picks.append([(i, 0) for i in tensors])
    for pick in picks:
        new, dims = list(leaves), [None] * len(leaves)
        for i, bdim in pick:
            new[i], dims[i] = _batched(leaves[i], bdim), bdim
        name = "all@0" if len(pick) > 1 else f"arg{pick[0][0]}@{pick[0][1]}"
        yield name, pytree.tree_unflatten(new, spec), tuple(pytree.tree_unflatten(dims, spec))


def _run(call):
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")     # torch's "performance drop" of its batching fallback, ...
            return call(), None
    except _Unsupported:
        raise
    except Exception as error:          # noqa: BLE001 - compared with the other framework's
        return None, error


def _dense(out):
    """torch's outputs with its lazy zero tensors made dense (gt's are plain zeros)."""
    if isinstance(out, torch.Tensor) and out._is_zerotensor():
        return torch.zeros_like(out)
    if isinstance(out, (list, tuple)) and not isinstance(out, torch.Size):
        items = [_dense(x) for x in out]
        return type(out)(*items) if hasattr(out, "_fields") else type(out)(items)
    return out


def _element_loop(fn, args, kwargs, in_dims):
    """torch's op applied to each element of the batch, outputs stacked at 0 (what vmap means)."""
    leaves, spec = pytree.tree_flatten(args)
    dims = pytree.tree_flatten(in_dims)[0] if len(pytree.tree_flatten(in_dims)[0]) == len(leaves) else None
    outs = []
    for k in range(BATCH):
        elem = [x if d is None else x.select(d, k) for x, d in zip(leaves, dims)]
        outs.append(flat(fn(*pytree.tree_unflatten(elem, spec), **kwargs)))
    return [torch.stack(column) if isinstance(column[0], torch.Tensor) else column[0] for column in zip(*outs)]


def _compare_errors(where, t_err, g_err):
    if t_err is not None and g_err is None:
        return f"{where}: torch raised {type(t_err).__name__}: {str(t_err)[:150]}; gt did not"
    if g_err is not None and t_err is None:
        return f"{where}: gt raised {type(g_err).__name__}: {str(g_err)[:200]}"
    return None


def vmap_differences(op, fn_t, fn_g, sample, inplace=False):
    """What differs between gt's vmap of ``fn_g`` and torch's of ``fn_t`` over ``sample``'s variants."""
    full, found = _full(op), []
    gkwargs = to_gt(sample.kwargs, [])
    for name, bargs, in_dims in _variants((sample.input, *sample.args), inplace):
        g_args = to_gt(bargs, [])          # before torch's run, which may change bargs in place
        torch.manual_seed(0)
        t_out, t_err = _run(lambda: torch.func.vmap(fn_t, in_dims=in_dims)(*bargs, **sample.kwargs))
        looped = t_err is not None and full in EXTENDS
        if looped:
            t_out, t_err = _run(lambda: _element_loop(fn_t, bargs, sample.kwargs, in_dims))
        gt.manual_seed(0)
        g_out, g_err = _run(lambda: gt.func.vmap(fn_g, in_dims=in_dims)(*g_args, **gkwargs))
        where = f"{name} in_dims={in_dims}"
        if t_err is not None or g_err is not None:
            if (d := _compare_errors(where, t_err, g_err)):
                found.append(d)
            continue
        if looped:
            g_out = flat(g_out)
        if full in UNINITIALISED:
            continue
        if full in RANDOM:
            d = next((f"{where}: shape" for a, b in zip(flat(t_out), flat(g_out)) if isinstance(a, torch.Tensor)
                      and tuple(a.shape) != tuple(b.shape)), None)
        else:
            d = compare(t_out, g_out, where, (1e-5, 1e-10))
        if d is None and inplace:
            d = compare(bargs[0], g_args[0], f"{where} changed input", (1e-5, 1e-10))
        if d:
            found.append(d)
    return found


def _floating_args(sample, limit=30):
    args = (sample.input, *sample.args)
    nums = tuple(i for i, a in enumerate(args) if isinstance(a, torch.Tensor) and a.is_floating_point())
    if not nums or any(args[i].numel() > limit for i in nums):
        return args, ()
    return tuple(a.detach() if isinstance(a, torch.Tensor) else a for a in args), nums


def _wrapped(op, fn_g):
    wrap = op.gradcheck_wrapper
    gwrap = _as_gt_function(wrap) if isinstance(wrap, types.FunctionType) else wrap
    return (lambda kwargs: lambda *a: wrap(op.op, *a, **kwargs)), (lambda kwargs: lambda *a: gwrap(fn_g, *a, **kwargs))


def jacobian_differences(op, sample):
    """What differs between gt's jacrev/jacfwd and torch's (float64), errors included."""
    args, nums = _floating_args(sample)
    if not nums or _full(op) in RANDOM:
        return []
    make_t, make_g = _wrapped(op, gt_function(op))
    g_args, gkwargs = to_gt(args, []), to_gt(sample.kwargs, [])
    found = []
    # jacfwd runs gt's jacrev code: on the smaller inputs only, for the time
    for api in ("jacrev", "jacfwd") if sum(args[i].numel() for i in nums) <= 12 else ("jacrev",):
        torch.manual_seed(0)
        t_out, t_err = _run(lambda: getattr(torch.func, api)(make_t(sample.kwargs), argnums=nums)(*args))
        if t_err is not None and "must be floating" not in str(t_err) and "real" not in str(t_err):
            continue                    # torch has no derivative (or no forward mode) for it: nothing to compare
        gt.manual_seed(0)
        g_out, g_err = _run(lambda: getattr(gt.func, api)(make_g(gkwargs), argnums=nums)(*g_args))
        d = _compare_errors(api, t_err, g_err) or (t_err is None and compare(_dense(t_out), g_out, api, (1e-8, 1e-8)))
        if d:
            found.append(d)
    return found


def _loss(lib, out):
    total = 0
    for i, o in enumerate(flat(out)):
        if isinstance(o, lib.Tensor) and o.dtype.is_floating_point:
            total = total + (o * (1.0 + 0.1 * i)).sin().sum()
    return total


def per_sample_grad_differences(op, sample):
    """What differs between gt's ``vmap(grad(f))`` and torch's, the input batched at 0 (float64)."""
    args, nums = _floating_args(sample, limit=100)
    if not nums or _full(op) in RANDOM or not isinstance(args[0], torch.Tensor):
        return []
    make_t, make_g = _wrapped(op, gt_function(op))
    in_dims = (0,) + (None,) * (len(args) - 1)
    bargs = (_batched(args[0], 0),) + args[1:]
    g_args, gkwargs = to_gt(bargs, []), to_gt(sample.kwargs, [])
    f_t, f_g = make_t(sample.kwargs), make_g(gkwargs)
    t_out, t_err = _run(lambda: torch.func.vmap(torch.func.grad(lambda *a: _loss(torch, f_t(*a)), argnums=nums),
                                                in_dims=in_dims)(*bargs))
    if t_err is not None:
        return []                       # torch has no (batched) derivative for it
    g_out, g_err = _run(lambda: gt.func.vmap(gt.func.grad(lambda *a: _loss(gt, f_g(*a)), argnums=nums),
                                             in_dims=in_dims)(*g_args))
    if g_err is not None:
        return [f"gt raised {type(g_err).__name__}: {str(g_err)[:200]}"]
    d = compare(_dense(t_out), g_out, "per-sample grads", (1e-8, 1e-8))
    return [d] if d else []


# ---- the tests ---------------------------------------------------------------------------------
def _cases(known, extra_skip=None, variant=None):
    cases = []
    for op in op_db:
        full = _full(op)
        fn = gt_function(op) if variant is None else variant(op)
        if fn is None:
            continue
        reason, strict = known.get(full), True
        if reason is None:
            reason, strict = SKIP.get(full) or (extra_skip or {}).get(full), False
        marks = [] if reason is None else [pytest.mark.xfail(strict=True, reason=reason) if strict else
                                           pytest.mark.skip(reason=reason)]
        cases.append(pytest.param(op, id=full, marks=marks))
    return cases


def _inplace(op):
    name = getattr(op.inplace_variant, "__name__", None)
    if name is None or not hasattr(gt.Tensor, name):
        return None
    return lambda self, *args, **kwargs: getattr(self, name)(*args, **kwargs)


def _check(differences, op, dtype, *fns):
    if not op.supports_dtype(dtype, "cpu"):
        return
    sample = _first_sample(op, dtype)
    if sample is None:
        return
    try:
        assert differences(op, *fns, sample) == []
    except _Unsupported:
        pass


@pytest.mark.parametrize("op", _cases(VMAP_DIFFERS, VMAP_SKIP))
def test_vmap_matches_torch(op):
    _check(vmap_differences, op, torch.float32, op.op, gt_function(op))


@pytest.mark.own_mesh     # one device: the rows of a sharded batch are copies, refused as targets of writes
@pytest.mark.parametrize("op", _cases(INPLACE_DIFFERS, VMAP_SKIP, variant=_inplace))
def test_vmap_of_the_inplace_variant_matches_torch(op):
    with use_mesh(1):
        _check(lambda op, t, g, sample: vmap_differences(op, t, g, sample, inplace=True), op, torch.float32,
               op.inplace_variant, _inplace(op))


@pytest.mark.parametrize("op", _cases(JAC_DIFFERS))
def test_jacrev_and_jacfwd_match_torch(op):
    _check(jacobian_differences, op, torch.float64)


@pytest.mark.parametrize("op", _cases(GRAD_DIFFERS))
def test_per_sample_gradients_match_torch(op):
    _check(per_sample_grad_differences, op, torch.float64)

