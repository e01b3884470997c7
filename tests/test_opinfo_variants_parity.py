"""gt's op variants and layouts against torch 2.13 over torch's own op test table
(``common_methods_invocations.op_db``), as torch's test_ops.py tests its own.

For every OpInfo whose op gt provides (mapped as tests/test_opinfo_parity.py maps them):

- variants: the function (``gt.add``), the method (``x.add``), the in-place method (``x.add_``),
  the operator (``x + y``), the in-place operator (``x += y``) and the aliases give torch's values
  and gradients (``sum(outputs * fixed random cotangents)`` with respect to every input that
  requires grad), and refuse where torch's refuse: an in-place result whose dtype does not cast to
  self's (int64 samples), in-place broadcasting that would change self's shape, in-place on a leaf
  that requires grad, in-place on an expanded tensor. As torch's test, in-place variants run on a
  clone of the input, so the gradient reaches the sample's leaves through it;
- layouts: each sample's tensors made non-contiguous as OpInfo's ``sample.noncontiguous()`` makes
  them (every other element of a twice-as-wide tensor, the rest NaN), transposed in memory (the
  last two axes) and expanded (the first row broadcast with stride 0), the same views built from
  the sample's leaves in both frameworks (in-place variants write into those views);
- in-place results: the in-place variant returns self, bumps ``_version`` as torch's does (the
  in-place shape changes too), and keeps self's strides (a shape change
  gives torch's);
- ``out=`` (``op.supports_out`` and gt's function takes ``out``): the result is written into
  ``out`` and ``out`` returned, for an out of the result's shape, a zero-size one (resized
  silently), one of another shape (resized with torch's warning) and a non-contiguous one; an out
  of a dtype the result does not cast to, one that requires grad, and inputs that require grad
  are refused as torch's.

float64 (values and gradients to 1e-10, relative to the largest magnitude near zero) and float32
(1e-5, gradients 1e-4). ``PLAN`` is the whole pass (two float64 samples in every layout, a float32
one contiguous and non-contiguous, an int64 one and the first whose input broadcasts for the
in-place variants); CI runs ``CI_PLAN``.
Known differences are listed below with their reasons; the first table's (``SKIP``) are skipped
too.
"""

import types
import warnings

import numpy as np
import pytest

import gt
from helpers import torch_test_fn_from_frames  # noqa: F401 - the fixture, used by every test below
from test_forward_ad_opinfo_parity import _walk
from test_opinfo_parity import (DTYPES, RANDOM, SKIP, TOLERANCE, UNINITIALISED, _as_gt_function, _full, _lookup, _name,
                                _Unsupported, compare, flat, gt_function, op_db, to_gt, torch)
from torch.testing._internal.opinfo.core import S as _S  # noqa: E402 - after test_opinfo_parity's importorskip

# table: the GT_DEVICES passes run a spread of the table (tests/conftest.py)
pytestmark = [pytest.mark.table, pytest.mark.usefixtures("torch_test_fn_from_frames")]

# ---- known differences ------------------------------------------------------------------------
# (op, variant kind, layout) -> why gt differs, None matching any. Not compared by the tests over the
# table; test_known_differences keeps each one as a strict xfail, so a change that removes it shows.
_SHARDED_RESIZE = ("resize_ of a sharded tensor keeps its elements in row-major order (a sharded tensor has no "
                   "memory layout of its own); torch's reads the memory a non-contiguous tensor lies in, in its order")
DIFFERS = {
    ("resize_", None, "transposed"): _SHARDED_RESIZE,
    ("resize_", None, "noncontiguous"): _SHARDED_RESIZE,
    ("resize_", None, "expanded"): _SHARDED_RESIZE,
    ("nn.functional.batch_norm", "function", "expanded"): "expanded running statistics: torch's kernel writes "
        "the channels' updates into their one memory from its threads at once, so its answer changes with "
        "torch.get_num_threads() (one thread: the updates in channel order); gt refuses as torch's in-place ops do",
}
# the keys of DIFFERS that differ only on a mesh (resize_ of a sharded tensor): resize_'s samples have
# torch's S rows, and a tensor is cut over the mesh only when it has a row for every device
_MESH_ONLY = {("resize_", None, layout) for layout in ("noncontiguous", "transposed", "expanded")}
_RESIZE_SHARDED = 1 < gt.sharding.get_mesh().size <= _S
DIFFERS = {key: reason for key, reason in DIFFERS.items() if key not in _MESH_ONLY or _RESIZE_SHARDED}
# (op, variant kind, layout) -> why not compared: torch's own answer is not unique there.
_SINGULAR = "the expanded layout repeats a matrix's first row: singular matrices, no unique factorization"
NOT_COMPARED = {(name, None, "expanded"): _SINGULAR for name in (
    "linalg.cholesky_ex", "linalg.cond", "linalg.inv_ex", "linalg.lstsq", "linalg.lstsq.grad_oriented",
    "linalg.qr", "linalg.solve_ex", "lu", "qr", "linalg.slogdet")}
# (op, kind of out) -> why gt's out= differs; strict xfails (test_known_out_differences).
OUT_DIFFERS = {
    ("narrow_copy", "noncontiguous"): "torch 2.13 writes a non-contiguous out as if it were contiguous "
                                      "(its values land in the wrong places); gt's are right",
}


# ---- the harness --------------------------------------------------------------------------------
def _gt_callable(variant):
    """gt's form of a torch method/in-place variant (a method of the same name, or op_db's lambda
    read with gt), or None."""
    name = getattr(variant, "__name__", None)
    lambda_ = name == "<lambda>" or (getattr(variant, "__module__", None) or "").startswith("torch.testing")
    if isinstance(variant, types.FunctionType) and lambda_:
        return _as_gt_function(variant)
    if name is None or not hasattr(gt.Tensor, name):
        return None
    return lambda self, *args, **kwargs: getattr(self, name)(*args, **kwargs)


def variants(op):
    """``[(kind, torch's callable, gt's callable)]`` of op's variants that gt has."""
    found = []
    fn_g = gt_function(op)
    if fn_g is not None:
        found.append(("function", op.op, fn_g))
    for kind, variant in (("method", op.method_variant), ("inplace", op.inplace_variant)):
        if variant is not None and (g := _gt_callable(variant)) is not None:
            found.append((kind, variant, g))
    for kind, variant in (("operator", op.operator_variant), ("inplace_operator", op.inplace_operator_variant)):
        if variant is not None:
            found.append((kind, variant, variant))
    for alias in op.aliases:
        if (g := _lookup(alias.name)) is not None and alias.op is not None:
            found.append((f"alias {alias.name}", alias.op, g))
        for kind, variant in (("method", alias.method_variant), ("inplace", alias.inplace_variant)):
            if variant is not None and (g := _gt_callable(variant)) is not None:
                found.append((f"alias {kind} {alias.name}", variant, g))
    return found


def _is_inplace(kind):
    return kind.startswith("inplace") or kind.startswith("alias inplace")


def _keys(full, kind, layout):
    """The keys of the tables that name op ``full``'s ``kind`` variant in ``layout``."""
    base = "inplace" if _is_inplace(kind) else "method" if "method" in kind else kind.split()[0]
    return ((full, base, layout), (full, base, None), (full, None, layout), (full, None, None))


def _listed(table, full, kind, layout):
    """The reason ``table`` gives for op ``full``'s ``kind`` variant in ``layout``, or None."""
    return next((table[key] for key in _keys(full, kind, layout) if key in table), None)


def _layout(lib, x, layout, inplace):
    """``x`` (a tensor of ``lib``) in ``layout``, a view built from it (so its gradient reaches x)."""
    if layout == "noncontiguous":           # torch's noncontiguous_like: every other element
        filler = lib.full_like(x, float("nan")) if x.is_floating_point() or x.is_complex() else lib.zeros_like(x)
        return lib.stack([filler, x], -1)[..., 1]
    if layout == "transposed" and x.ndim >= 2:
        return x.mT.contiguous().mT
    if layout == "expanded" and x.ndim and x.shape[0] > 1:
        return x[:1].expand(*x.shape)
    return x.clone() if inplace and layout != "leaf" else x


class _Run:
    """One call of a variant in one framework: its inputs, output or error, and self's version
    and strides before and after."""

    def __init__(self, lib, call, args, layout, inplace):
        self.error, self.out = None, None
        self.args = _walk(args, lambda x: _layout(lib, x, layout, inplace) if isinstance(x, lib.Tensor) else x)
        self.self = self.args[0] if isinstance(self.args[0], lib.Tensor) else None
        before = (self.self._version, self.self.stride()) if self.self is not None else None
        try:
            self.out = call(self.args[0], *self.args[1], **self.args[2])
        except _Unsupported:
            raise
        except Exception as error:      # noqa: BLE001 - compared with the other framework's
            self.error = error
        self.bumped = None if before is None else self.self._version - before[0]
        self.strides = None if before is None else (before[1], self.self.stride())


def _loss(lib, outs, rng):
    loss = 0
    for o in flat(outs):
        if isinstance(o, lib.Tensor) and (o.is_floating_point() or o.is_complex()):
            c = rng.standard_normal(tuple(o.shape))     # drawn for every output, so both frameworks pair them
            if o.is_complex():
                c = c + 1j * rng.standard_normal(tuple(o.shape))
            if o.requires_grad:         # gt's result has no graph where its gradient is 0 (slogdet's sign)
                loss = loss + (o * lib.tensor(c, dtype=o.dtype)).sum().real
    return loss


def _grad_difference(t_outs, g_outs, leaves, rtol):
    t_loss, g_loss = _loss(torch, t_outs, np.random.default_rng(0)), _loss(gt, g_outs, np.random.default_rng(0))
    if not isinstance(t_loss, torch.Tensor):
        return None
    try:
        t_grads = torch.autograd.grad(t_loss, [t for t, _ in leaves], allow_unused=True)
    except (RuntimeError, NotImplementedError):     # torch's backward refuses (in-place acosh_, ...)
        return None
    g_grads = [None] * len(leaves)
    if isinstance(g_loss, gt.Tensor):
        g_grads = gt.autograd.grad(g_loss, [g for _, g in leaves], allow_unused=True)
    for i, (a, b, (x, _)) in enumerate(zip(t_grads, g_grads, leaves)):
        a = torch.zeros_like(x) if a is None or a._is_zerotensor() else a
        b = gt.zeros(tuple(x.shape), dtype=DTYPES[x.dtype]) if b is None else b
        if (d := compare(a, b, f"grad[{i}]", rtol)):
            return d
    return None


def _inplace_difference(t, g, versions):
    if g.out is not g.self:
        return f"gt's in-place variant returned {type(g.out).__name__}, not self"
    if g.self._placed is not None:
        # a sharded tensor's strides are its shape's row-major ones (README); on the torch engine the
        # virtual devices' shards are views of one buffer, whose version each shard's write bumps
        return None
    if versions and g.bumped != t.bumped:
        return f"_version bumped by {g.bumped} in gt, {t.bumped} in torch"
    kept = t.strides[0] == t.strides[1]       # a value op keeps self's strides; a shape op changes them as torch's
    if (kept and g.strides[1] != g.strides[0]) or (g.self.numel() and g.strides[1] != t.strides[1]):
        return f"self's strides {g.strides[0]} -> {g.strides[1]} in gt, {t.strides[0]} -> {t.strides[1]} in torch"
    return None


def run_variant(op, kind, fn_t, fn_g, sample, layout, versions=True):
    """None if gt's ``kind`` variant agrees with torch's on ``sample`` in ``layout``, else what differs
    (``versions``: whether ``_version`` bumps are compared)."""
    inplace = _is_inplace(kind)
    wrap, process = op.gradcheck_wrapper, sample.output_process_fn_grad
    gwrap = _as_gt_function(wrap) if isinstance(wrap, types.FunctionType) else wrap
    gprocess = _as_gt_function(process) if isinstance(process, types.FunctionType) else process
    leaves = []
    g_args = to_gt((sample.input, sample.args, sample.kwargs), leaves)
    torch.default_generator.manual_seed(0)     # torch.manual_seed also seeds (lazily) every accelerator: 1 ms
    t = _Run(torch, lambda i, *a, **k: wrap(fn_t, i, *a, **k), (sample.input, sample.args, sample.kwargs),
             layout, inplace)
    g = _Run(gt, lambda i, *a, **k: gwrap(fn_g, i, *a, **k), g_args, layout, inplace)
    if t.error is not None or g.error is not None:
        if t.error is None:
            return f"gt raised {type(g.error).__name__}: {str(g.error)[:200]}"
        if g.error is None:
            return f"torch raises {type(t.error).__name__} ({str(t.error)[:100]}), gt computes"
        return None
    if inplace and t.self is not None and t.out is t.self and (d := _inplace_difference(t, g, versions)):
        return d                        # self, _version and strides: random ops' too
    if _full(op) in UNINITIALISED or _full(op) in RANDOM:
        return None
    rtol = (1e-4, 1e-7) if _full(op) in TOLERANCE else (1e-5, 1e-10)
    if (d := compare(t.out, g.out, "out", rtol)):
        return d
    if not leaves or not op.supports_autograd:
        return None
    return _grad_difference(process(t.out), gprocess(g.out), leaves, (rtol[0] * 10, rtol[1]))


# (dtype, samples, layouts) of each run; int64 for the in-place variants' cast refusals only
LAYOUTS = ("contiguous", "noncontiguous", "transposed", "expanded", "leaf")
# the first sample whose input broadcasts to the result (in-place variants: torch refuses)
BROADCASTS = "broadcasts"
PLAN = ((torch.float64, 2, LAYOUTS), (torch.float32, 1, ("contiguous", "noncontiguous")),
        (torch.int64, 1, ("contiguous",)), (torch.float64, BROADCASTS, ("contiguous",)))
# CI's plan: every layout of the first float64 sample, the first float32 and int64 samples contiguous;
# the method, operator and alias variants on the contiguous float64 sample only (their layouts and
# dtypes are the function's)
CI_PLAN = ((torch.float64, 1, LAYOUTS), (torch.float32, 1, ("contiguous",)), (torch.int64, 1, ("contiguous",)),
           (torch.float64, BROADCASTS, ("contiguous",)))


def _samples(op, dtype, count):
    torch.default_generator.manual_seed(0)
    requires_grad = op.supports_autograd and dtype.is_floating_point
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        drawn = op.sample_inputs("cpu", dtype, requires_grad=requires_grad)
        if count == BROADCASTS:
            return [s for _, s in zip(range(40), drawn) if s.broadcasts_input][:1]
        return [s for _, s in zip(range(count), drawn)]


def check_variants(op, plan=PLAN, only=None, every_layout=True):
    """The differences of op's variants over ``plan`` (a list of strings): those ``DIFFERS`` lists
    are left out, or (``only``, one of its keys) only those that key names are run."""
    found = []
    full = _full(op)
    found_variants = variants(op)
    for dtype, count, layouts in plan:
        if not op.supports_dtype(dtype, "cpu"):
            continue
        kinds = [v for v in found_variants if dtype != torch.int64 and count != BROADCASTS or _is_inplace(v[0])]
        if not kinds:
            continue
        for i, sample in enumerate(_samples(op, dtype, count)):
            for layout in layouts:          # "leaf" last: where torch computes, it writes into the sample
                for kind, fn_t, fn_g in kinds:
                    if layout == "leaf" and not _is_inplace(kind) or _listed(NOT_COMPARED, full, kind, layout):
                        continue
                    if not (every_layout or _is_inplace(kind) or kind == kinds[0][0]
                            or layout == "contiguous" and dtype == torch.float64):
                        continue
                    if (only not in _keys(full, kind, layout) if only else _listed(DIFFERS, full, kind, layout)):
                        continue
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        try:
                            d = run_variant(op, kind, fn_t, fn_g, sample, layout)
                        except _Unsupported:
                            continue
                    if d:
                        found.append(f"{_name(dtype)} {kind} {layout} sample {i} ({sample.summary()[:120]}): {d}")
    return found


# ---- out= ---------------------------------------------------------------------------------------
def _takes_out(fn):
    return getattr(fn, "_takes_out", False) or (isinstance(fn, types.FunctionType) and "out" in
                                                 fn.__code__.co_varnames[:fn.__code__.co_argcount
                                                                         + fn.__code__.co_kwonlyargcount])


def _outs(lib, expected, how):
    """Tensors of ``lib`` to pass as ``out`` for torch's ``expected`` result, made as ``how`` says."""
    def one(e):
        dtype = e.dtype if lib is torch else DTYPES[e.dtype]
        if how == "zero-size":
            return lib.empty(0, dtype=dtype)
        if how == "other shape":
            return lib.zeros(e.numel() + 3, dtype=dtype)
        if how == "noncontiguous":
            base = lib.zeros((*e.shape, 2), dtype=dtype)
            if lib is gt and base._placed is not None:     # a sharded tensor's row is no view (README sharding)
                raise _Unsupported("a row of a sharded tensor")
            return base[..., 0]
        if how == "narrower dtype":     # a cast torch's general rule allows; some of its kernels refuse it
            return lib.zeros(tuple(e.shape), dtype=_NARROWER.get(e.dtype, e.dtype) if lib is torch else
                             DTYPES[_NARROWER.get(e.dtype, e.dtype)])
        if how == "uncastable":         # a result that does not cast: floating -> integer, integer -> bool
            return lib.zeros(tuple(e.shape), dtype=lib.int64 if e.is_floating_point() or e.is_complex() else lib.bool)
        out = lib.zeros(tuple(e.shape), dtype=dtype)
        return out.requires_grad_() if how == "requires grad" and (e.is_floating_point() or e.is_complex()) else out
    items = [one(e) for e in flat(expected)]
    return items[0] if isinstance(expected, torch.Tensor) else tuple(items)


def _call_out(lib, fn, args, out):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            back = fn(args[0], *args[1], **args[2], out=out)
        except _Unsupported:
            raise
        except Exception as error:      # noqa: BLE001 - compared with the other framework's
            return error, [w for w in caught if "resized" in str(w.message)]
    return back, [w for w in caught if "resized" in str(w.message)]


OUT_KINDS = ("same shape", "zero-size", "other shape", "noncontiguous", "narrower dtype", "uncastable",
             "requires grad", "inputs grad")
_NARROWER = {torch.float64: torch.float32, torch.complex128: torch.complex64, torch.int64: torch.int32}


def out_difference(op, fn_g, sample, how):
    """None if gt's ``out=`` agrees with torch's on ``sample`` with an ``out`` made as ``how``."""
    grad = how == "inputs grad"
    detach = (lambda x: x.detach() if isinstance(x, torch.Tensor) else x) if not grad else (lambda x: x)
    t_args = _walk((sample.input, sample.args, sample.kwargs), detach)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")         # torch's deprecations (torch.lu, triangular_solve)
            expected = op.op(t_args[0], *t_args[1], **t_args[2])
    except Exception:                   # noqa: BLE001 - a sample torch refuses says nothing of gt
        return None
    if not all(isinstance(e, torch.Tensor) for e in flat(expected)):
        return None
    g_args = to_gt(t_args, [])
    t_out, g_out = _outs(torch, expected, how), _outs(gt, expected, how)
    t_back, t_warned = _call_out(torch, op.op, t_args, t_out)
    g_back, g_warned = _call_out(gt, fn_g, g_args, g_out)
    if isinstance(t_back, Exception) or isinstance(g_back, Exception):
        if not isinstance(t_back, Exception):
            return f"gt raised {type(g_back).__name__}: {str(g_back)[:200]}"
        if not isinstance(g_back, Exception):
            return f"torch raises {type(t_back).__name__} ({str(t_back)[:100]}), gt computes"
        return None
    if bool(t_warned) != bool(g_warned):
        return "torch warns that out was resized, gt does not" if t_warned else "torch resizes out silently, gt warns"
    if not all(a is b for a, b in zip(flat(g_back), flat(g_out))):
        return "gt did not return out"
    if _full(op) in RANDOM or _full(op) in UNINITIALISED:
        return None
    rtol = (1e-4, 1e-7) if _full(op) in TOLERANCE or how == "narrower dtype" else (1e-5, 1e-10)
    return compare(t_out, g_out, "out", rtol)


def check_out(op, dtypes=(torch.float64,), only=None):
    """The differences of op's ``out=`` (a list of strings): those ``OUT_DIFFERS`` lists are left
    out, or (``only``, a kind of out) only that kind is run."""
    fn_g = gt_function(op)
    if not op.supports_out or fn_g is None or not _takes_out(fn_g):
        return []
    found, compared = [], 0
    for dtype in dtypes:
        if not op.supports_dtype(dtype, "cpu"):
            continue
        for sample in _samples(op, dtype, 1):
            for how in OUT_KINDS:
                if how != only if only else (_full(op), how) in OUT_DIFFERS:
                    continue
                try:
                    d = out_difference(op, fn_g, sample, how)
                except _Unsupported:
                    continue
                compared += 1
                if d:
                    found.append(f"{_name(dtype)} out {how} ({sample.summary()[:120]}): {d}")
    if only and not compared:       # a strict xfail of a kind this pass cannot make (a sharded tensor's row)
        pytest.skip(f"no out {only} to compare in this pass")
    return found


# ---- the tests ------------------------------------------------------------------------------------
def _ops(for_out):
    cases = []
    for op in op_db:
        full = _full(op)
        if for_out:
            fn = gt_function(op)
            if not op.supports_out or fn is None or not _takes_out(fn):
                continue
        elif not variants(op):
            continue
        marks = [pytest.mark.skip(reason=SKIP[full])] if full in SKIP else []
        cases.append(pytest.param(op, id=full, marks=marks))
    return cases


_BY_NAME = {_full(op): op for op in op_db}


@pytest.mark.parametrize("op", _ops(for_out=False))
def test_variants_match_torch(op):
    assert check_variants(op, CI_PLAN, every_layout=False) == []


@pytest.mark.parametrize("op", _ops(for_out=True))
def test_out_matches_torch(op):
    assert check_out(op) == []


@pytest.mark.parametrize("key", [pytest.param(key, id=":".join(str(k) for k in key),
                                              marks=pytest.mark.xfail(strict=True, reason=reason))
                                 for key, reason in DIFFERS.items()])
def test_known_differences(key):
    assert check_variants(_BY_NAME[key[0]], PLAN, only=key) == []


@pytest.mark.parametrize("key", [pytest.param(key, id=":".join(key),
                                              marks=pytest.mark.xfail(strict=True, reason=reason))
                                 for key, reason in OUT_DIFFERS.items()])
def test_known_out_differences(key):
    assert check_out(_BY_NAME[key[0]], only=key[1]) == []
