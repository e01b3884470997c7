"""Forward-mode AD of gt (``gt.autograd.forward_ad``) against torch 2.13 over torch's own op test
table (``common_methods_invocations.op_db``).

For every OpInfo that torch marks ``supports_forward_ad`` and whose op gt provides (turned into gt
calls as tests/test_opinfo_parity.py does, through ``op.gradcheck_wrapper``), its first float64
sample: each input that requires grad is made dual with a fixed random tangent (the same in both
frameworks), and the primal outputs and their tangents (``unpack_dual``) are compared (rtol 1e-7,
relative to the largest magnitude near zero; a missing tangent counts as zeros). Where torch's
forward AD raises, gt must raise too. The second test does the same with primals that require grad
in grad mode: gt then records the tangents for reverse mode (gt/autograd/forward_ad.py), another
code path. The third compares the first complex128 sample (complex tangents).

Known differences are listed below with their reasons, as strict xfails (or skips where torch's own
answer is undefined); the first table's (tests/test_opinfo_parity.py ``SKIP``: conventions of gt's
values) are skipped too.
"""

import types
import warnings

import numpy as np
import pytest

import gt
import gt.autograd.forward_ad as gfw
from helpers import torch_test_fn_from_frames  # noqa: F401 - the fixture, used by every test below
from test_opinfo_parity import (DTYPES, RANDOM, SKIP, UNINITIALISED, _as_gt_function, _full, _Unsupported,
                                compare, flat, gt_function, op_db, to_gt, torch)

# table: the GT_DEVICES passes run a spread of the table (tests/conftest.py)
pytestmark = [pytest.mark.table, pytest.mark.usefixtures("torch_test_fn_from_frames")]
tfw = torch.autograd.forward_ad
RTOL = (1e-7, 1e-7)

# ---- known differences ------------------------------------------------------------------------
_UNPOOL = "duplicate indices: torch's tangent is undefined (op_db skips its own test_forward_mode_AD)"
# Ops whose tangents differ, or that gt refuses, on every engine: strict xfails.
DIFFERS = {
    "linalg.eig": "gt has no gradient nor tangent for eig (refused: MISSING.md gt.linalg)",
    "linalg.eigvals": "gt has no gradient nor tangent for eigvals (refused: MISSING.md gt.linalg)",
}
# Not compared: torch's answer is undefined or imprecise.
UNDEFINED = {
    "nn.functional.max_unpool1d": _UNPOOL, "nn.functional.max_unpool2d": _UNPOOL,
    "nn.functional.max_unpool3d": _UNPOOL,
    "logcumsumexp": "torch's float64 tangent is 2e-6 off where inputs reach 1e4 (op_db skips its own "
                    "test_forward_mode_AD); gt's agrees with extended-precision finite differences",
}
_NO_GRADGRAD = "no recorded gradient of its gradient, so no tangent recorded for reverse mode (MISSING.md)"
# With tangents recorded for reverse mode, besides DIFFERS: ops gt refuses (NotImplementedError).
NOT_RECORDED = {name: _NO_GRADGRAD for name in ("bernoulli",)}


# ---- the comparison -------------------------------------------------------------------------------
def _walk(x, fn):
    """``x`` with ``fn`` applied to each leaf of its lists, tuples and dicts."""
    if isinstance(x, (list, tuple)) and not isinstance(x, torch.Size):
        items = [_walk(v, fn) for v in x]
        return type(x)(*items) if hasattr(x, "_fields") else type(x)(items)
    if isinstance(x, dict):
        return {k: _walk(v, fn) for k, v in x.items()}
    return fn(x)


def _dual_run(lib, fw, call, args, tangents, requires_grad=False):
    """``[(primal, tangent)]`` of ``call``'s outputs with each tensor of ``args`` named in
    ``tangents`` (by id) made dual, or the exception it raised."""
    def dual(x):
        if id(x) not in tangents:
            return x
        primal = x.detach().requires_grad_(requires_grad)
        return fw.make_dual(primal, lib.tensor(tangents[id(x)], dtype=x.dtype))
    with fw.dual_level():
        try:
            outs = flat(call(*_walk(args, dual)))
            return [fw.unpack_dual(o) if isinstance(o, lib.Tensor) else (o, None) for o in outs]
        except _Unsupported:
            raise
        except Exception as error:      # noqa: BLE001 - compared with the other framework's
            return error


def jvp_difference(op, sample, requires_grad=False):
    """None if gt's primal outputs and tangents on ``sample`` match torch's, else what differs."""
    wrap, process = op.gradcheck_wrapper, sample.output_process_fn_grad
    gwrap = _as_gt_function(wrap) if isinstance(wrap, types.FunctionType) else wrap
    gprocess = _as_gt_function(process) if isinstance(process, types.FunctionType) else process
    fn_g = gt_function(op)
    leaves = []
    g_args = (to_gt(sample.input, leaves), to_gt(sample.args, leaves), to_gt(sample.kwargs, leaves))
    if not leaves:
        return None
    rng = np.random.default_rng(0)
    drawn = [rng.standard_normal(tuple(t.shape)) + (1j * rng.standard_normal(tuple(t.shape)) if t.is_complex() else 0)
             for t, _ in leaves]
    t_out = _dual_run(torch, tfw, lambda i, a, k: process(wrap(op.op, i, *a, **k)),
                      (sample.input, sample.args, sample.kwargs), {id(t): d for (t, _), d in zip(leaves, drawn)})
    with gt.enable_grad():
        g_out = _dual_run(gt, gfw, lambda i, a, k: gprocess(gwrap(fn_g, i, *a, **k)), g_args,
                          {id(g): d for (_, g), d in zip(leaves, drawn)}, requires_grad)
    if isinstance(t_out, Exception) or isinstance(g_out, Exception):
        if isinstance(t_out, Exception) and not isinstance(g_out, Exception):
            return f"torch raised {type(t_out).__name__}: {str(t_out)[:120]}; gt did not"
        return None if isinstance(t_out, Exception) else f"gt raised {type(g_out).__name__}: {str(g_out)[:200]}"
    if _full(op) in RANDOM or _full(op) in UNINITIALISED:
        return None
    if len(t_out) != len(g_out):
        return f"torch gives {len(t_out)} outputs, gt {len(g_out)}"
    for i, ((a, ta), (b, tb)) in enumerate(zip(t_out, g_out)):
        if (d := compare(a, b, f"primal[{i}]", RTOL)):
            return d
        if isinstance(a, torch.Tensor) and isinstance(b, gt.Tensor) and (a.dtype.is_floating_point or
                                                                           a.dtype.is_complex):
            ta = torch.zeros_like(a) if ta is None or ta._is_zerotensor() else ta
            tb = gt.zeros(tuple(b.shape), dtype=DTYPES[a.dtype]) if tb is None else tb
            if (d := compare(ta, tb, f"tangent[{i}]", RTOL)):
                return d
    return None


def _first_sample(op, dtype):
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return next(iter(op.sample_inputs("cpu", dtype, requires_grad=True)), None)


def _cases(recorded, dtype=torch.float64):
    cases = []
    for op in op_db:
        full = _full(op)
        if not op.supports_forward_ad or not op.supports_dtype(dtype, "cpu") or gt_function(op) is None:
            continue
        if dtype.is_complex and dtype not in op.supported_backward_dtypes("cpu"):
            continue
        reason, strict = DIFFERS.get(full) or (NOT_RECORDED.get(full) if recorded else None), True
        if reason is None:
            reason, strict = SKIP.get(full) or UNDEFINED.get(full), False
        marks = [] if reason is None else [pytest.mark.xfail(strict=True, reason=reason) if strict else
                                           pytest.mark.skip(reason=reason)]
        cases.append(pytest.param(op, id=full, marks=marks))
    return cases


def _check(op, recorded, dtype=torch.float64):
    sample = _first_sample(op, dtype)
    if sample is None:
        return
    torch.manual_seed(0)
    try:
        assert jvp_difference(op, sample, recorded) is None
    except _Unsupported:
        pass


@pytest.mark.parametrize("op", _cases(recorded=False))
def test_jvp_matches_torch(op):
    _check(op, recorded=False)


@pytest.mark.parametrize("op", _cases(recorded=True))
def test_jvp_recorded_for_reverse_mode_matches_torch(op):
    _check(op, recorded=True)


@pytest.mark.parametrize("op", _cases(recorded=False, dtype=torch.complex128))
def test_complex_jvp_matches_torch(op):
    """Complex tangents: torch's convention (the complex derivative of a holomorphic op; in general
    ``dy = df/dz dz + df/dz* conj(dz)``): closed forms (mul, matmul, conv, linalg) or one output
    element at a time (no complex gradient of a gradient is recorded: gt/autograd/forward_rows.py)."""
    _check(op, recorded=False, dtype=torch.complex128)
