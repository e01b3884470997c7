"""Which tensors each differentiable op saves for its backward, against torch 2.13, over torch's own
op test table (``common_methods_invocations.op_db``, mapped to gt as tests/test_opinfo_parity.py maps
it), as a user sees it: an in-place change after the forward and before the backward.

torch saves an operand only where an input that requires grad needs it (``y = a * b`` with only
``a`` requiring grad keeps ``b``), so changing what was not saved is accepted and changing what was
is refused ("one of the variables needed for gradient computation has been modified by an inplace
operation"). For one float64 sample of each op (of its first ``SAMPLES``, the one with the most float
tensors), for each float tensor input alone requiring grad and for all of them together, each tensor
of the sample and the outputs are changed in place under ``no_grad`` after the forward (floats by
``add_(0.5)``, so a backward that read a changed value unchecked gives other gradients; others by a
``copy_`` of themselves), then the backward of ``sum(outputs * fixed random cotangents)`` runs. gt
must refuse where torch accepts only where ``DIFFERS`` says why, and where both accept, give torch's
gradients (1e-10). Where torch refuses, gt may compute (some of its ops keep a value of their own, made
in the forward, where torch keeps the input: ``mse_loss`` the difference, ``amax`` its mask), but then
its gradients must be those of the run without the change: never a silently wrong gradient.

A configuration whose unchanged run already differs (values or gradients: tests/test_opinfo_parity.py's
subject) is not compared.
"""

import warnings

import numpy as np
import pytest

import gt
from helpers import torch_test_fn_from_frames  # noqa: F401 - the fixture, used by every test below
from test_forward_ad_opinfo_parity import _walk
from test_opinfo_parity import (DTYPES, RANDOM, SKIP, UNINITIALISED, _as_gt_function, _full, _Unsupported, compare,
                                flat, gt_function, op_db, to_gt, torch)

# table: the torch engine's and the GT_DEVICES passes run a spread of the table (tests/conftest.py)
pytestmark = [pytest.mark.table, pytest.mark.usefixtures("torch_test_fn_from_frames")]

SAMPLES = 1
REFUSED = "modified by an inplace operation"
# (op, what is changed) -> why gt answers otherwise: "out" or "input N" (the tensors of the sample in
# order), None any. test_known_differences keeps each as a strict xfail, so a change that removes it shows.
_OWN_COPY = ("torch's composite saves a value of its own (%s), not the input: it accepts the input changed, "
             "gt saves the input and refuses (never a wrong gradient)")
_MULTI_VIEW = ("torch refuses to read an output of a function that returns several views (split, chunk, "
               "unbind) once it or its base was changed in place, even under no_grad; gt reads it, and its "
               "gradient (the values are not read) is right")
DIFFERS = {
    ("kron", None): "torch 2.13 accepts either operand changed in place and differentiates with the new values "
                    "(its composite's _unsafe_view does not share the operand's version): gt refuses",
    ("special.ndtr", "input 0"): _OWN_COPY % "erfc's input -x / sqrt(2)",
    ("ldexp", "input 0"): _OWN_COPY % "pow(2, other) and the result",
    ("nn.functional.instance_norm", "input 3"): _OWN_COPY % "the weight repeated over the batch",
    **{(name, None): _MULTI_VIEW for name in ("split", "split.list_args", "split_with_sizes", "chunk", "unbind")},
}


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """torch's small float64 kernels (batch and instance norm, conv) on one thread: on two busy cores its
    pool's waiting took half this file's CPU time."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# ---- the harness --------------------------------------------------------------------------------
def _tensors(args, lib):
    """The tensors of ``args`` (a sample's ``(input, args, kwargs)``) in a fixed order."""
    found = []
    _walk(args, lambda x: found.append(x) if isinstance(x, lib.Tensor) else None)
    return found


def _change(lib, x):
    """Change ``x`` in place, as an optimizer's step would (a version counted by both frameworks)."""
    with lib.no_grad():
        if x.is_floating_point() or x.is_complex():
            x.add_(0.5)
        else:
            x.copy_(x.clone())


def _loss(lib, outs):
    rng, loss = np.random.default_rng(0), 0
    for o in flat(outs):
        if isinstance(o, lib.Tensor) and o.is_floating_point():
            c = rng.standard_normal(tuple(o.shape))     # drawn for every output, so both frameworks pair them
            if o.requires_grad:
                loss = loss + (o * lib.tensor(c, dtype=o.dtype)).sum()
    return loss


def _run(lib, call, process, args, change):
    """``(stage, answer)``: ``"ok"`` and the gradients of the sample's tensors that require grad, or
    where it stopped (``"forward"``, ``"change"``, ``"backward"``) and why (``"refused"``: the saved-value
    check, else the error's type). ``change``: the position of the tensor changed, "out", or None."""
    tensors = _tensors(args, lib)
    leaves = [x for x in tensors if x.requires_grad]
    try:
        out = call(args[0], *args[1], **args[2])
    except _Unsupported:
        raise
    except Exception as error:          # noqa: BLE001 - compared with the other framework's
        return "forward", type(error).__name__
    try:
        for x in ([o for o in flat(out) if isinstance(o, lib.Tensor)] if change == "out"
                  else [tensors[change]] if change is not None else []):
            _change(lib, x)
    except Exception as error:          # noqa: BLE001
        return "change", type(error).__name__
    try:
        loss = _loss(lib, process(out))     # (torch refuses to read a changed output of split/unbind here)
        if not isinstance(loss, lib.Tensor):
            return "ok", [None] * len(leaves)
        return "ok", list(lib.autograd.grad(loss, leaves, allow_unused=True))
    except Exception as error:          # noqa: BLE001
        return "backward", "refused" if REFUSED in str(error) else type(error).__name__


def _difference(t, g, leaves, unchanged):
    """None, or how gt's answer ``g`` differs from torch's ``t`` (``_run``'s). Where torch refuses and
    gt computes (it kept a value of its own, not the tensor changed), gt's gradients must be those of
    the run without the change, ``unchanged``."""
    if t == ("backward", "refused") and g[0] == "ok":
        t = unchanged
    if t[0] != g[0] or t[0] != "ok" and t[1] != g[1]:
        return f"torch {t[0]} {t[1] if t[0] != 'ok' else 'accepted'}, gt {g[0]} {g[1] if g[0] != 'ok' else 'accepted'}"
    if t[0] != "ok":
        return None
    for i, (a, b, x) in enumerate(zip(t[1], g[1], leaves)):
        a = torch.zeros_like(x) if a is None or a._is_zerotensor() else a
        b = gt.zeros(tuple(x.shape), dtype=DTYPES[x.dtype]) if b is None else b
        if (d := compare(a, b, f"grad[{i}]", (1e-4, 1e-10))):
            return d
    return None


def _sample(op):
    """One float64 sample of ``op``: of its first ``SAMPLES``, the one with the most float tensors."""
    torch.default_generator.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        drawn = [s for _, s in zip(range(SAMPLES), op.sample_inputs("cpu", torch.float64, requires_grad=False))]
    floats = [sum(x.is_floating_point() for x in _tensors((s.input, s.args, s.kwargs), torch)) for s in drawn]
    return drawn[floats.index(max(floats))] if drawn and max(floats) else None


def _cases(n, floats):
    """``(positions that require grad, what is changed)`` for a sample of ``n`` tensors."""
    cases = []
    for grad_at in [(i,) for i in floats] + ([tuple(floats)] if len(floats) > 1 else []):
        changed = [j for j in range(n) if len(grad_at) > 1 or j not in grad_at] + ["out"]
        if len(floats) == 1:
            changed.append(grad_at[0])      # the input that requires grad itself (a leaf: under no_grad)
        cases.append((grad_at, [None] + changed))
    return cases


def check_op(op, listed=None):
    """The differences of op's sample (a list of strings): each case, what torch and gt answered.
    Those ``DIFFERS`` lists are left out; ``listed`` ("out", "input N"): only those of that change that
    ``DIFFERS`` lists."""
    sample = _sample(op)
    if sample is None:
        return []
    fn_t, fn_g = op.op, gt_function(op)
    process = sample.output_process_fn_grad
    gprocess = _as_gt_function(process) if callable(getattr(process, "__code__", None)) else process
    base = (sample.input, sample.args, sample.kwargs)
    tensors = _tensors(base, torch)
    if len({x.untyped_storage().data_ptr() for x in tensors}) < len(tensors):
        return []                       # the sample shares memory between its tensors: the copies could not
    floats = [i for i, x in enumerate(tensors) if x.is_floating_point()]
    found = []
    for grad_at, changes in _cases(len(tensors), floats):
        for change in changes:
            ids = {id(tensors[i]) for i in grad_at}
            t_args = _walk(base, lambda x: x.detach().clone().requires_grad_(id(x) in ids)
                           if isinstance(x, torch.Tensor) else x)
            leaves = [x for x in _tensors(t_args, torch) if x.requires_grad]
            try:
                g_args = to_gt(t_args, [])
            except _Unsupported:
                return found
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                torch.default_generator.manual_seed(0)
                t = _run(torch, fn_t, process, t_args, change)
                try:
                    g = _run(gt, fn_g, gprocess, g_args, change)
                except _Unsupported:
                    return found
            if change is None:
                if t[0] != "ok" or _difference(t, g, leaves, t):
                    break               # torch's own refusal, or tests/test_opinfo_parity.py's subject
                unchanged = t
                continue
            if not (d := _difference(t, g, leaves, unchanged)):
                continue
            why = _listed(op, change)
            if why is None if listed is None else why is not None and listed in (True, _what(change)):
                found.append(f"grad at {list(grad_at)} of {len(tensors)}, changed {_what(change)}: {d}")
    return found


def _listed(op, change):
    """Why ``DIFFERS`` lists a change of op's sample, or None."""
    return DIFFERS.get((_full(op), _what(change))) or DIFFERS.get((_full(op), None))


def _what(change):
    return "out" if change == "out" else f"input {change}"


def _ops():
    cases = []
    for op in op_db:
        full = _full(op)
        if (not op.supports_autograd or gt_function(op) is None or full in SKIP or full in RANDOM
                or full in UNINITIALISED or not op.supports_dtype(torch.float64, "cpu")):
            continue
        cases.append(pytest.param(op, id=full))
    return cases


@pytest.mark.parametrize("op", _ops())
def test_saved_tensors_match_torch(op):
    assert check_op(op) == []


_BY_NAME = {_full(op): op for op in op_db}


@pytest.mark.parametrize("key", [pytest.param(k, id=f"{k[0]}-{k[1] or 'any'}", marks=pytest.mark.xfail(
    strict=True, reason=why)) for k, why in DIFFERS.items()])
def test_known_differences(key):
    op = _BY_NAME[key[0]]
    assert check_op(op, listed=key[1] or True) == []
