"""gt against torch 2.13 over torch's own op test table (``common_methods_invocations.op_db``).

For every OpInfo whose op gt provides (``op.name`` or an alias under ``gt``, ``gt.nn.functional``,
``gt.linalg``, ``gt.special``; torch's wrapper lambdas are run with ``torch`` read as ``gt``; the
method variant as the gt Tensor method), the first samples of ``op.sample_inputs`` in float32,
float64 and, where the op takes them, int64 and bool (complex64, complex128, uint8, int8 and int16:
tests/test_opinfo_dtypes_parity.py) are run in both frameworks: values (rtol 1e-5
in float32, 1e-10 in float64, relative to the output's largest magnitude near zero), dtypes,
shapes, named-tuple fields, and the gradients of ``sum(outputs * fixed random cotangents)`` with
respect to every input that requires grad (through ``op.gradcheck_wrapper`` where torch's own
gradient tests use one). ``op.error_inputs`` must raise in gt too (any exception type: gt raises
ValueError/TypeError/IndexError where torch raises RuntimeError, README "Errors").

Known differences are listed below with their reasons; each is a documented divergence (README,
MISSING.md or the module's docstring), a place where torch 2.13's own answer is wrong or
imprecise, or a limit of comparing through copies (the harness gives gt fresh tensors, so
samples that rely on torch's shared storage cannot be reproduced).
"""

import dataclasses
import itertools
import math
import types
import warnings

import numpy as np
import pytest

import gt
import gt.linalg
import gt.nn.functional
import gt.special
from helpers import torch_test_fn_from_frames  # noqa: F401 - the fixture, used by every test below

torch = pytest.importorskip("torch")
pytest.importorskip("expecttest")
# table: the GT_DEVICES passes run a spread of the table (tests/conftest.py)
pytestmark = [pytest.mark.table, pytest.mark.usefixtures("torch_test_fn_from_frames")]

_frozen = torch.backends.flags_frozen()
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from torch.testing._internal.common_methods_invocations import op_db
if not _frozen:     # common_utils freezes torch.backends flags at import; gt.backends sets them on GPUs
    torch.backends.flags_frozen.__globals__["__allow_nonbracketed_mutation_flag"] = True

# The first samples of each dtype (the same inputs in every run); the method variant runs the first one.
SAMPLES = {torch.float32: 1, torch.float64: 2, torch.int64: 1, torch.bool: 1}
ERROR_SAMPLES = 6
DTYPES = {torch.float32: gt.float32, torch.float64: gt.float64, torch.int64: gt.int64, torch.bool: gt.bool,
          torch.int32: gt.int32, torch.float16: gt.float16, torch.complex64: gt.complex64,
          torch.complex128: gt.complex128, torch.uint8: gt.uint8, torch.int8: gt.int8, torch.int16: gt.int16}
# the tolerance of each dtype: rtol[0] for float32 and complex64, rtol[1] for float64 and complex128
_SINGLE, _DOUBLE = (torch.float32, torch.complex64), (torch.float64, torch.complex128)


def _full(op):
    return op.name + ("." + op.variant_test_name if op.variant_test_name else "")


# ---- known differences ------------------------------------------------------------------------
# Whole ops not compared, with why. Those in STRICT differ on every engine and mesh: they are
# xfail(strict=True), so a change that removes the difference shows; the rest are skipped (they
# differ on one engine only, or by an order torch leaves undefined).
SKIP = {
    "max.reduction_with_dim": "gt.max(x, 1) gives values only (gt's numpy convention, README; dim= gives torch's pair)",
    "min.reduction_with_dim": "gt.min(x, 1) gives values only (gt's numpy convention, README; dim= gives torch's pair)",
    "std": "gt's std/var default to ddof=0 like numpy (README 'max/min/var')",
    "var": "gt's std/var default to ddof=0 like numpy (README 'max/min/var')",
    "as_strided.partial_views": "samples are views into a larger storage; the harness copies them (gt: README as_strided)",
    "as_strided_scatter": "torch 2.13's backward is wrong (op_db marks test_fn_grad expectedFailure); gt's is exact",
    "linalg.eigh": "eigenvectors' signs are not unique",
    "svd_lowrank": "singular vectors' signs are not unique",
    "pca_lowrank": "singular vectors' signs are not unique",
    "topk": "the order among ties is torch's sort's (undocumented; MISSING.md third pass)",
    "sort": "torch's unstable sort orders ties its own way (stable=False)",
    "argsort": "torch's unstable sort orders ties its own way (stable=False)",
    "nn.functional.one_hot": "gt's one_hot gives float32 by default on purpose (MISSING.md)",
    "bfloat16": "bfloat16 is the torch engine's only (README dtypes)",
    "to_sparse": "this harness compares dense outputs only (sparse ones: tests/test_sparse_coo_parity.py)",
    "logcumsumexp": "torch's float32 gradient is off by up to 2e-3 relative; gt's is within 1e-7 of float64",
    "chalf": "gt has no complex32 (chalf): complex64 and complex128 only (MISSING.md)",
    "linalg.eig": "gt has no gradient for eig (refused: MISSING.md); eigenvectors' phases are not unique",
    "linalg.eigvals": "gt has no gradient for eigvals (refused: MISSING.md)",
    "stft": "return_complex=False is refused (deprecated in torch 2.x; gt.view_as_real of the complex result)",
    "nn.functional.multi_margin_loss": "a 0-d input with a 0-d target (torch reads it as one class) is refused",
    "linalg.vander": "a 0-d x (torch reads it as one element) is refused",
}
# Special functions: the numpy engine follows scipy, closer to exact values than torch (MISSING.md);
# the torch engine gives torch's values.
for _name in ("special.airy_ai", "special.bessel_j0", "special.bessel_j1", "special.bessel_y0", "special.bessel_y1"):
    SKIP[_name] = "scipy's values on the numpy engine (closer to exact than torch's; MISSING.md gt.special)"
# Ops that draw random numbers: only shapes and dtypes are compared.
RANDOM = {"bernoulli", "normal", "normal.number_mean", "multinomial", "rand_like", "randn_like", "randint_like",
          "randint", "nn.functional.dropout", "nn.functional.dropout2d", "nn.functional.dropout3d",
          "nn.functional.alpha_dropout", "nn.functional.feature_alpha_dropout.with_train",
          "nn.functional.feature_alpha_dropout.without_train", "nn.functional.rrelu", "uniform", "cauchy",
          "exponential", "geometric", "log_normal", "nn.functional.gumbel_softmax",
          "nn.functional.fractional_max_pool2d", "nn.functional.fractional_max_pool3d",
          "nn.functional.scaled_dot_product_attention", "normal.in_place", "randn", "rand",
          "nn.functional.multi_head_attention_forward"}
UNINITIALISED = {"empty", "empty_like", "new_empty", "empty_strided", "empty_permuted", "new_empty_strided"}
# Dtypes gt refuses for an op (a TypeError that names the dtype) where torch computes.
DTYPE_SKIP = {}       # none left: name -> ({torch dtypes}, reason)
# error_inputs gt does not refuse, by op: the reason.
_NUMBERS = "gt takes a Python number where torch's signature asks for a tensor (an extension)"
ERRORS_NOT_RAISED = {name: _NUMBERS for name in ("clamp_max", "clamp_min")}
_OUT_DTYPE = "gt's out= casts by torch's general rule; torch asks this op's out for one exact dtype"
ERRORS_NOT_RAISED.update({
    "multinomial": _OUT_DTYPE,
    "mean": "the mean of an integer tensor is float32 in gt (numpy's convention), torch refuses it",
    "nn.functional.max_pool1d": "an input with a zero-size non-batch dim gives an empty result (torch refuses)",
    "nn.functional.max_pool3d": "an input with a zero-size non-batch dim gives an empty result (torch refuses)",
})
STRICT = {"max.reduction_with_dim", "min.reduction_with_dim", "std", "var", "as_strided.partial_views",
          "as_strided_scatter", "nn.functional.one_hot", "to_sparse", "nn.functional.multi_margin_loss",
          "linalg.vander", "clamp_max", "clamp_min", "mean", "nn.functional.max_pool3d"}
# Tolerances wider than the default, with why.
TOLERANCE = {
    "nn.functional.hardsigmoid": "torch's float64 backward multiplies by a float32 1/6 (3e-8 off)",
    "linalg.lstsq": "an ill-conditioned float32 sample: gt solves through pinv (gt/linalg.py), torch through QR",
    "linalg.lstsq.grad_oriented": "an ill-conditioned float32 sample: gt solves through pinv, torch through QR",
}


# ---- the harness --------------------------------------------------------------------------------
class _Unsupported(Exception):
    """A sample gt cannot be given (a dtype, layout or object it has no form of)."""


class _TorchAsGt(types.ModuleType):
    """``torch`` inside op_db's wrapper lambdas: torch.X is gt.X."""

    def __getattr__(self, name):
        if name in ("nn", "linalg", "special"):
            return getattr(gt, name)
        if name == "ops" or not hasattr(gt, name):
            raise _Unsupported(f"gt has no {name}")
        return getattr(gt, name)


_SHIM = _TorchAsGt("torch_as_gt")


def _as_gt_function(fn):
    """``fn`` (op_db's lambda) reading ``torch`` and ``F`` as gt's."""
    names = {**fn.__globals__, "torch": _SHIM, "F": gt.nn.functional}
    new = types.FunctionType(fn.__code__, names, fn.__name__, fn.__defaults__, fn.__closure__)
    new.__kwdefaults__ = fn.__kwdefaults__
    return new


def _lookup(name):
    obj = gt
    for part in name.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            return None
    return obj if callable(obj) else None


def gt_function(op):
    """gt's form of op's function variant, or None."""
    if op.name.startswith(("fft.", "_", "masked.", "signal.", "sparse.", "jiterator")):
        return None
    fn = op.op
    if isinstance(fn, types.FunctionType) and (fn.__name__ == "<lambda>" or fn.__module__.startswith("torch.testing")):
        return _as_gt_function(fn)
    for name in [op.name] + [alias.name for alias in op.aliases]:
        found = _lookup(name)
        if found is not None:
            return found
    return None


def gt_method(op):
    name = getattr(op.method_variant, "__name__", None)
    if name is None or not hasattr(gt.Tensor, name):
        return None
    return lambda self, *args, **kwargs: getattr(self, name)(*args, **kwargs)


def _module_as_gt(module):
    cls = getattr(gt.nn, type(module).__name__, None)
    if cls is None:
        raise _Unsupported(type(module).__name__)
    return cls(**{k: getattr(module, k) for k in ("eps", "keepdim") if hasattr(module, k)},
               **({"p": module.norm} if hasattr(module, "norm") else {}))


def to_gt(x, leaves):
    """x with torch's tensors, dtypes and objects as gt's; tensors that require grad are paired
    with their gt copies in ``leaves``."""
    if isinstance(x, torch.Tensor):
        if x.dtype not in DTYPES or x.device.type != "cpu" or x.layout != torch.strided:
            raise _Unsupported(f"{x.dtype} on {x.device}")
        t = gt.tensor(_numpy(x), dtype=DTYPES[x.dtype], requires_grad=x.requires_grad)
        if x.requires_grad:
            leaves.append((x, t))
        return t
    if isinstance(x, torch.dtype):
        if x not in DTYPES:
            raise _Unsupported(str(x))
        return DTYPES[x]
    if isinstance(x, torch.Size):
        return tuple(x)
    if isinstance(x, torch.device):
        return str(x)
    if isinstance(x, torch.memory_format):
        return getattr(gt, str(x).replace("torch.", ""))
    if isinstance(x, torch.nn.Module):
        return _module_as_gt(x)
    if type(x).__name__ == "LinearCrossEntropyOptions":
        return gt.nn.LinearCrossEntropyOptions(**{f.name: to_gt(getattr(x, f.name), leaves)
                                                  for f in dataclasses.fields(x)})
    if isinstance(x, (list, tuple)):
        items = [to_gt(v, leaves) for v in x]
        return type(x)(*items) if hasattr(x, "_fields") else type(x)(items)
    if isinstance(x, dict):
        return {k: to_gt(v, leaves) for k, v in x.items()}
    if isinstance(x, torch.Generator):
        raise _Unsupported("generator")
    return x


def flat(out):
    if isinstance(out, (list, tuple)):
        return [leaf for item in out for leaf in flat(item)]
    return [out]


def _numpy(t):
    """A copy of torch's tensor ``t`` as a numpy array (its lazy conjugate or negation resolved)."""
    return np.array(t.detach().resolve_conj().resolve_neg().numpy())


def _name(dtype):
    return str(dtype).replace("torch.", "").replace("gt.", "")


def _close(a, b, rtol, where):
    """None, or what differs between arrays a (torch's) and b (gt's)."""
    if a.dtype.kind in "biu" or a.size == 0:
        return None if np.array_equal(a, b) else f"{where}: {a.ravel()[:6]} vs {b.ravel()[:6]}"
    if not np.array_equal(np.isnan(a), np.isnan(b)):
        return f"{where}: NaN at other places"
    finite = np.isfinite(a)
    scale = np.max(np.abs(a[finite]), initial=1.0)
    ok = np.isclose(a, b, rtol=rtol, atol=rtol * scale, equal_nan=True)
    if ok.all():
        return None
    i = tuple(np.argwhere(~ok)[0])
    return f"{where}: {(~ok).sum()} of {ok.size} differ, at {i} torch {a[i]!r} gt {b[i]!r}"


def compare(t, g, where, rtol):
    """None if gt's output g matches torch's t, else what differs."""
    if isinstance(t, torch.Tensor):
        if not isinstance(g, gt.Tensor):
            return f"{where}: gt gives {type(g).__name__}"
        if _name(t.dtype) != _name(g.dtype) or tuple(t.shape) != tuple(g.shape):
            return f"{where}: torch {_name(t.dtype)} {tuple(t.shape)}, gt {_name(g.dtype)} {tuple(g.shape)}"
        scale = rtol[0] if t.dtype in _SINGLE else rtol[1] if t.dtype in _DOUBLE else 1e-3
        return _close(_numpy(t), np.asarray(g.detach().numpy()), scale, where)
    if isinstance(t, (list, tuple)) and not isinstance(t, torch.Size):
        if not isinstance(g, (list, tuple)) or len(g) != len(t):
            return f"{where}: torch {type(t).__name__} of {len(t)}, gt {type(g).__name__}"
        if hasattr(t, "_fields") and getattr(g, "_fields", None) != t._fields:
            return f"{where}: fields {t._fields} vs {getattr(g, '_fields', None)}"
        return next((d for i, (a, b) in enumerate(zip(t, g)) if (d := compare(a, b, f"{where}[{i}]", rtol))), None)
    if isinstance(t, float) and isinstance(g, (int, float)) and not isinstance(g, bool):
        return None if math.isclose(t, g, rel_tol=1e-6) or (math.isnan(t) and math.isnan(g)) else f"{where}: {t} vs {g}"
    if isinstance(t, (bool, int, torch.Size)) and not isinstance(g, gt.Tensor):
        return None if (tuple(t) if isinstance(t, torch.Size) else t) == g else f"{where}: {t} vs {g}"
    return None


def _shapes(t, g):
    for i, (a, b) in enumerate(zip(flat(t), flat(g))):
        if isinstance(a, torch.Tensor) and (not isinstance(b, gt.Tensor) or tuple(a.shape) != tuple(b.shape)
                                            or _name(a.dtype) != _name(b.dtype)):
            return f"out[{i}]: torch {tuple(a.shape)} {a.dtype}, gt {b!r:.60}"
    return None


def _grads(op, fn_t, fn_g, sample, gt_sample, leaves, rtol):
    """None, or how the gradients of sum(outputs * cotangents) differ."""
    wrap = op.gradcheck_wrapper         # e.g. ctc_loss's log_softmax, the triangular and hermitian inputs
    t_out = sample.output_process_fn_grad(wrap(fn_t, sample.input, *sample.args, **sample.kwargs))
    if isinstance(wrap, types.FunctionType):
        wrap = _as_gt_function(wrap)
    process = sample.output_process_fn_grad
    if isinstance(process, types.FunctionType):
        process = _as_gt_function(process)
    g_out = process(wrap(fn_g, gt_sample[0], *gt_sample[1], **gt_sample[2]))
    rng = np.random.default_rng(0)
    t_loss, g_loss = 0, 0
    for a, b in zip(flat(t_out), flat(g_out)):
        if isinstance(a, torch.Tensor) and a.requires_grad and (a.dtype.is_floating_point or a.dtype.is_complex):
            c = rng.standard_normal(tuple(a.shape))
            if a.dtype.is_complex:      # a real loss, Re(sum(a * c)): gradients in torch's conjugate convention
                c = c + 1j * rng.standard_normal(tuple(a.shape))
            t_loss = t_loss + (a * torch.tensor(c, dtype=a.dtype)).sum().real
            if isinstance(b, gt.Tensor) and b.requires_grad:   # gt's result has no graph where its gradient is 0
                g_loss = g_loss + (b * gt.tensor(c, dtype=b.dtype)).sum().real
    if not isinstance(t_loss, torch.Tensor):
        return None
    t_inputs = [t for t, _ in leaves]
    t_grads = torch.autograd.grad(t_loss, t_inputs, allow_unused=True)
    g_grads = [None] * len(leaves)
    if isinstance(g_loss, gt.Tensor):
        g_grads = gt.autograd.grad(g_loss, [g for _, g in leaves], allow_unused=True)
    for i, (a, b, x) in enumerate(zip(t_grads, g_grads, t_inputs)):
        a = torch.zeros_like(x) if a is None or a._is_zerotensor() else a
        b = gt.zeros(tuple(x.shape), dtype=DTYPES[x.dtype]) if b is None else b
        if (d := compare(a, b, f"grad[{i}]", (rtol[0] * 10, rtol[1] * 100))):
            return d
    return None


def run_sample(op, fn_t, fn_g, sample):
    """None if gt agrees with torch on this sample, else what differs."""
    try:
        t_out = fn_t(sample.input, *sample.args, **sample.kwargs)
    except Exception:                   # noqa: BLE001 - a sample torch itself refuses says nothing of gt
        return None
    leaves = []
    try:
        gt_sample = (to_gt(sample.input, leaves), to_gt(sample.args, leaves), to_gt(sample.kwargs, leaves))
        g_out = fn_g(gt_sample[0], *gt_sample[1], **gt_sample[2])
    except _Unsupported:
        return None
    except Exception as error:          # noqa: BLE001
        return f"gt raised {type(error).__name__}: {str(error)[:200]}"
    full = _full(op)
    if full in UNINITIALISED:
        return None
    if full in RANDOM:
        return _shapes(t_out, g_out)
    rtol = (1e-5, 1e-10) if full not in TOLERANCE else (1e-4, 1e-7)
    if (d := compare(t_out, g_out, "out", rtol)) or not (op.supports_autograd and leaves):
        return d
    try:
        return _grads(op, fn_t, fn_g, sample, gt_sample, leaves, rtol)
    except _Unsupported:
        return None
    except Exception as error:          # noqa: BLE001
        if "torch" in str(getattr(error, "__module__", "")) or isinstance(error, NotImplementedError):
            return None
        return f"grad: gt raised {type(error).__name__}: {str(error)[:200]}"


def check_op(op, samples=None, dtypes=(torch.float32, torch.float64, torch.int64, torch.bool)):
    """The differences of op's first samples per dtype (``SAMPLES``, or ``samples`` of each) and
    variant (a list of strings)."""
    fn_g, method = gt_function(op), gt_method(op)
    variants = [(name, t, g) for name, t, g in (("function", op.op, fn_g), ("method", op.method_variant, method))
                if g is not None and t is not None]
    found = []
    for dtype in dtypes:
        if not op.supports_dtype(dtype, "cpu") or dtype in DTYPE_SKIP.get(_full(op), ((),))[0]:
            continue
        torch.manual_seed(0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            requires_grad = op.supports_autograd and (dtype.is_floating_point or (
                dtype.is_complex and dtype in op.supported_backward_dtypes("cpu")))
            drawn = op.sample_inputs("cpu", dtype, requires_grad=requires_grad)
            for i, sample in enumerate(itertools.islice(drawn, samples or SAMPLES[dtype])):
                for name, fn_t, fn_g in variants[:None if samples or i == 0 else 1]:
                    torch.manual_seed(0)
                    if (d := run_sample(op, fn_t, fn_g, sample)):
                        found.append(f"{_name(dtype)} {name} sample {i} ({sample.summary()[:160]}): {d}")
    return found


def _shares_storage(sample):
    out = sample.kwargs.get("out")
    if out is None:
        return False
    outs = [t for t in flat(out) if isinstance(t, torch.Tensor)]
    if any(0 in t.stride() and t.numel() > 1 for t in outs):
        return True                     # an expanded out: its elements share memory
    ptrs = {t.untyped_storage().data_ptr() for t in outs}
    inputs = flat([sample.input, list(sample.args), [v for k, v in sample.kwargs.items() if k != "out"]])
    return any(isinstance(t, torch.Tensor) and t.untyped_storage().data_ptr() in ptrs for t in inputs)


def check_errors(op, samples=ERROR_SAMPLES):
    """op's error inputs that gt computes without raising (a list of strings)."""
    fn_g = gt_function(op)
    if op.error_inputs_func is None or fn_g is None:
        return []
    missing = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        errors = list(itertools.islice(op.error_inputs("cpu"), samples))
        for error in errors:
            sample = error.sample_input
            if _shares_storage(sample):
                continue                # torch refuses an `out` that overlaps an input: copies cannot
            try:
                leaves = []
                args = (to_gt(sample.input, leaves), to_gt(sample.args, leaves), to_gt(sample.kwargs, leaves))
            except (_Unsupported, ValueError):      # ValueError: numpy has no 65-dim arrays
                continue
            try:
                fn_g(args[0], *args[1], **args[2])
            except Exception:           # noqa: BLE001 - any type: README "Errors"
                continue
            missing.append(f"{sample.summary()[:160]}: torch raises {error.error_type.__name__} "
                           f"{error.error_regex[:80]!r}")
    return missing


def _cases(for_errors):
    cases = []
    for op in op_db:
        if gt_function(op) is None and (for_errors or gt_method(op) is None):
            continue
        if for_errors and op.error_inputs_func is None:
            continue
        full, marks = _full(op), []
        reason = (ERRORS_NOT_RAISED if for_errors else SKIP).get(full)
        if reason is not None:
            strict = full in STRICT
            marks.append(pytest.mark.xfail(strict=True, reason=reason) if strict else pytest.mark.skip(reason=reason))
        cases.append(pytest.param(op, id=full, marks=marks))
    return cases


@pytest.mark.parametrize("op", _cases(for_errors=False))
def test_samples_match_torch(op):
    assert check_op(op) == []


@pytest.mark.parametrize("op", _cases(for_errors=True))
def test_error_inputs_raise(op):
    assert check_errors(op) == []
