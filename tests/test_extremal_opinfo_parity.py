"""gt against torch 2.13 at extremal and special values: inf, -inf, NaN, -0.0, huge and tiny
magnitudes and subnormals, as torch's test_unary_ufuncs/test_binary_ufuncs test its elementwise
ops through ``op.reference_inputs`` (tests/test_opinfo_parity.py runs ``op.sample_inputs``, ordinary
random values).

* Elementwise ops: every op of torch's ``unary_ufuncs`` and ``binary_ufuncs`` lists (``op_db``)
  that gt provides (mapped to gt's function as tests/test_opinfo_parity.py maps them), and clamp,
  on one 1-d input (one pair for binary ops) per dtype that joins torch's own extremal generators
  (``opinfo.core``: the small values with -0.0 and +-pi, filtered to the op's domain; the large
  ones where the op ``handles_large_floats``, but for polygamma, whose -5e6 takes scipy and torch
  0.2 s; inf/-inf/NaN and their pairs) with ``special_values``: the dtype's largest and smallest
  normal magnitudes, its smallest subnormal, 1e20, 0, 1, inf, NaN and their negatives (binary
  ops: every pair of them; the special polynomials take degrees 0 to 5). Unary inputs hold each
  value once.
* Reductions, scans, sorts and softmaxes (``REDUCTIONS``: sum, mean, prod, amax/amin, max/min
  with and without dim, argmax/argmin, nansum/nanmean, logsumexp, vector norms, var/std,
  cumsum/cumprod, cummax/cummin, sort/argsort (stable), topk, median/nanmedian, softmax and
  log_softmax) on a matrix whose rows hold NaN, inf, -inf, both infinities, all -0.0, values
  whose sum overflows, subnormals, all NaN and all -inf, along its rows and over the whole.

in float32, float64, float16 and (torch engine) bfloat16 where the op takes them. Compared:
values element by element (rtol 1e-5 in float32, 1e-10 in float64, two units in the last place
in float16 and bfloat16, an absolute tolerance of four subnormals), NaN at the same places, the
signs of infinities and of zeros (-0.0 against 0.0), integer outputs (indices: NaN is the
largest, and where max/sort put it) exactly, dtypes and shapes; in float64, the gradients
(``grad_outputs``: fixed random cotangents; rtol 1e-8, the absolute tolerance the smallest
normal) wherever torch's are finite. numpy's RuntimeWarnings at these values are not compared
(a known difference: MISSING.md).

Known differences are listed below with their reasons: places where torch 2.13 is wrong or
imprecise, where IEEE leaves a zero's sign open, and gt's own limits (each with its reason).
"""
import itertools
import math
import warnings

import numpy as np
import pytest

import gt
from helpers import torch_test_fn_from_frames  # noqa: F401 - the fixture, used by every test below
from test_opinfo_parity import DTYPES, _full, _name, _numpy, flat, gt_function, torch

pytest.importorskip("expecttest")
# table: the later passes run a spread of it (tests/conftest.py)
pytestmark = [pytest.mark.table, pytest.mark.usefixtures("torch_test_fn_from_frames")]

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from torch.testing._internal.common_methods_invocations import binary_ufuncs, op_db, unary_ufuncs
    from torch.testing._internal.opinfo import core

DTYPES = {**DTYPES, torch.bfloat16: gt.bfloat16}
# bfloat16 is the torch engine's only (README dtypes)
FLOATS = (torch.float32, torch.float64, torch.float16) + ((torch.bfloat16,) if gt.get_backend() == "torch" else ())
# two units in the last place in float16 and bfloat16 (torch rounds its intermediates, gt rounds once)
RTOL = {torch.float32: 1e-5, torch.float64: 1e-10, torch.float16: 2e-3, torch.bfloat16: 1.6e-2}


# ---- known differences ------------------------------------------------------------------------
# op -> reason: not compared.
SKIP = {"nn.functional.rrelu": "draws random slopes (tests/test_opinfo_parity.py RANDOM)",
        "chalf": "gt has no complex32 (chalf): complex64 and complex128 only (MISSING.md)"}
if gt.get_backend() == "numpy":
    SKIP["bfloat16"] = "bfloat16 is the torch engine's only (README dtypes)"
for _name_ in ("special.airy_ai", "special.bessel_j0", "special.bessel_j1", "special.bessel_y0", "special.bessel_y1"):
    SKIP[_name_] = "scipy's values on the numpy engine (closer to exact than torch's; MISSING.md gt.special)"
# op -> [(part, dtypes, where, reason)]: the elements of ``part`` ("out": the values, "grad": the
# gradients) in ``dtypes`` (None: all) where ``where(*inputs)`` (the inputs as float64 arrays) holds
# are not compared.
_F16, _F32, _F64 = (torch.float16, torch.bfloat16), (torch.float32,), (torch.float64,)
_ZERO_MIN_MAX = ("float16/bfloat16 max/min of 0.0 and -0.0: torch's vectorised loop in these dtypes returns its "
                 "second argument (its float32 loop and short tensors the first, as gt; IEEE: either)")
_NAN_GRAD = ("the gradient at NaN: torch's vectorised loop gives 0, its scalar loop (tensors under 8 elements) "
             "passes it on, as gt does")
_POLE_GRAD = ("the gradient at digamma's poles (the non-positive integers): trigamma's inf (scipy, gt's numpy "
              "engine), where torch's is a large finite number (MISSING.md gt.special)")
_IGAMMA = ("the numpy engine's scipy values: torch gives numbers for NaN inputs, NaN where the arguments are "
           "huge, 0 for a subnormal a, and is 1e-10 (float64, a and x near 500) or 1e-5 (float32, a near 0) "
           "off where scipy agrees with mpmath")
KNOWN = {
    "nn.functional.relu6": [("grad", None, lambda x: np.isnan(x), _NAN_GRAD)],
    "nn.functional.hardtanh": [("grad", None, lambda x: np.isnan(x), _NAN_GRAD)],
    "nn.functional.hardshrink": [("grad", None, lambda x: np.isnan(x), _NAN_GRAD)],
    "nn.functional.softshrink": [
        ("grad", None, lambda x: np.isnan(x), _NAN_GRAD),
        ("out", None, lambda x: (x <= 0) & (x >= -0.5), "the sign of softshrink's zeros: torch's x * 0 keeps "
                                                         "x's sign (-0.0 for small negative x), gt gives 0.0")],
    "sinc": [("grad", None, lambda x: np.abs(x) < 1e-300, "the gradient at subnormal x (exactly -pi**2 x / 3, "
              "under 1e-322): torch 0, gt 1e-307")],
    "digamma": [("grad", None, lambda x: (x <= 0) & (x == np.floor(x)), _POLE_GRAD)],
    "special.ndtr": [("out", _F16, lambda x: x < -3, "torch's float16 ndtr is 13% off below -3 (0.000732 at "
                      "-3.14, where the exact value and gt's are 0.000843), its bfloat16 ndtr 0 there")],
    "special.modified_bessel_k1": [("out", _F32, lambda x: (x > 0) & (x < 1e-38), "torch's float32 K1 of a "
                                    "subnormal is NaN, where 1/x overflows to inf (gt, scipy)")],
    "special.zeta": [("out", None, lambda x, q: (x > 1e19) & (q > 1e19), "torch's zeta(x, q) is NaN for huge "
                      "x and q, where it underflows to 0 (gt, scipy)")],
    "atan2": [("grad", None, lambda y, x: (np.abs(x) < 1e-150) & (np.abs(y) < 1e-150), "x**2 + y**2 underflows "
               "to 0 for tiny x and y: the exact gradient overflows; torch gives 0, gt a large number")],
    "ldexp": [("grad", None, lambda x, e: np.abs(x) > 1e300, "the gradient for the exponent at a huge x: gt's "
               "g * x overflows before its product with 2**e = 0 (NaN), torch multiplies the result (0)")],
    "igamma": [("out", None, lambda a, x: np.isnan(a) | np.isnan(x) | (a > 1e19) | (x > 1e19) | (a < 1e-30)
                | (a > 500) | ((a < 0.01) & (x > 0)), _IGAMMA)],
}
# op -> (rtol of its float64 gradients, why), where 1e-8 is too tight
GRAD_RTOL = {
    "nn.functional.hardsigmoid": (1e-7, "torch's float64 backward multiplies by a float32 1/6 (3e-8 off; "
                                  "tests/test_opinfo_parity.py TOLERANCE)"),
    "nn.functional.celu": (2e-5, "torch's float64 backward multiplies by a float32 1/alpha (1.5e-8 off for "
                           "alpha = 0.8; 1e-5 at x = -501, in exp(x / alpha))"),
}
KNOWN["igammac"] = KNOWN["igamma"]
# reductions: their inputs are reduction_input's rows
_TOPK_TIES = ("the order among ties is torch's sort's (undefined; MISSING.md third pass): values only, each "
              "zero's sign left out (0.0 and -0.0 tie)")
_ROW = lambda x, rows: np.isin(np.arange(x.shape[0]), rows)[:, None] & np.ones_like(x, bool)  # noqa: E731
KNOWN["logsumexp"] = [("grad", _F64, lambda x: _ROW(x, [6]), "the gradient where two elements are 1.8e308: "
                       "torch's exp(x - logsumexp) is 1 for each (logsumexp rounds to 1.8e308), gt's softmax 1/2")]
KNOWN["cumsum"] = [("out", None, lambda x: _ROW(x, [5]), "cumsum of -0.0s: torch adds them to a +0.0 start "
                    "(0.0), gt's is IEEE's sum, -0.0 (its sum() too, as torch's)")]
KNOWN["topk"] = [("grad", None, lambda x: _ROW(x, [5, 6, 7, 8, 9, 11]), _TOPK_TIES + ": the gradient goes to "
                  "another of tied elements")]
KNOWN["special.scaled_modified_bessel_k1"] = KNOWN["special.modified_bessel_k1"]
for _name_ in ("polygamma.polygamma_n_0", "special.polygamma.special_polygamma_n_0"):
    KNOWN[_name_] = KNOWN["digamma"]
for _n in range(1, 5):
    KNOWN[f"polygamma.polygamma_n_{_n}"] = [("out", None, lambda x: np.isposinf(x), "polygamma(n >= 1, inf): "
                                             "its limit 0 on the numpy engine (scipy), torch's NaN")]
for _name_ in ("clamp_max", "clamp_min", "max.binary", "maximum", "min.binary", "minimum", "fmax", "fmin"):
    KNOWN[_name_] = [("out", _F16, lambda x, y: (x == 0) & (y == 0), _ZERO_MIN_MAX)]
KNOWN["clamp"] = [("out", _F16, lambda x, lo, hi: (lo == 0) | (hi == 0), _ZERO_MIN_MAX)]
if gt.get_backend() == "torch" and gt.get_mesh().size > 1:
    # torch's float32 max/min of 0.0 and -0.0 give one zero in its vectorised loop and the other in its
    # scalar tail (the last elements of a tensor); the torch engine runs that kernel on each block
    _BLOCK_TAILS = ("float32 max/min of 0.0 and -0.0: torch's kernel gives either zero by the element's place "
                    "in its vector loop, and the torch engine runs it on each device's block (IEEE: either)")
    for _name_ in ("clamp_max", "clamp_min", "max.binary", "maximum", "min.binary", "minimum"):
        KNOWN[_name_].append(("out", _F32, lambda x, y: (x == 0) & (y == 0), _BLOCK_TAILS))
    KNOWN["clamp"].append(("out", _F32, lambda x, lo, hi: (lo == 0) | (hi == 0), _BLOCK_TAILS))
for _name_ in ("nn.functional.silu", "nn.functional.mish"):
    KNOWN[_name_] = [("grad", None, lambda x: x < -1e300, "the gradient at x near -1.8e308: gt's g * x overflows "
                      "before its product with sigmoid'(x) = 0 (NaN), torch's formula multiplies sigmoid(x) first")]
for _name_ in ("chebyshev_polynomial_u", "chebyshev_polynomial_w", "laguerre_polynomial_l", "legendre_polynomial_p",
               "shifted_chebyshev_polynomial_u", "shifted_chebyshev_polynomial_w"):
    KNOWN["special." + _name_] = [("out", None, lambda x, n: np.isnan(x), "torch 2.13 gives 0, inf, -inf or "
                                   "memory it never wrote (4.6e-41) at a NaN x for n >= 2; gt NaN")]
for _name_ in ("fmod", "remainder"):
    KNOWN[_name_] = [(part, dtypes, where, "torch's fmod is NaN where x / y overflows; gt's is exact (0 there)")
                     for part, dtypes, where in (("out", _F32 + _F16, lambda x, y: np.abs(x) > 3.4e38 * np.abs(y)),
                                                 ("out", _F64, lambda x, y: np.isinf(x / y) & np.isfinite(x)))]


# ---- inputs -------------------------------------------------------------------------------------
def special_values(dtype):
    """The values torch's generators leave out: the dtype's extremes and subnormals, and 1e20."""
    info = torch.finfo(dtype)
    values = [info.max, info.tiny, info.smallest_normal * info.eps, 1e20, 0.0, 1.0, math.inf, math.nan]
    return [v for value in values for v in (value, -value)][:-1]


def _unary_input(op, dtype):
    """One 1-d tensor with torch's extremal samples of ``op`` and ``special_values``."""
    make = dict(device="cpu", dtype=dtype)
    parts = [s.input for s in core.generate_elementwise_unary_small_value_tensors(op, **make)]
    if op.handles_large_floats and not op.name == "polygamma":     # scipy's and torch's: 0.2 s for -5e6
        parts += [s.input for s in core.generate_elementwise_unary_large_value_tensors(op, **make)]
    parts.append(next(iter(core.generate_elementwise_unary_extremal_value_tensors(op, **make))).input)
    parts.append(torch.tensor(special_values(dtype), dtype=dtype))
    x = torch.cat(parts)
    # each value once (the generators repeat them, as the pairs of binary ops): by bits, -0.0 kept
    bits = x.view({2: torch.int16, 4: torch.int32, 8: torch.int64}[x.element_size()]).numpy()
    return x[np.sort(np.unique(bits, return_index=True)[1])]


_MAXIMUM = next(op for op in binary_ufuncs if op.name == "maximum")


def _binary_inputs(op, dtype):
    make = dict(device="cpu", dtype=dtype)
    samples = list(core.generate_elementwise_binary_small_value_tensors(op, **make))
    samples += list(core.generate_elementwise_binary_large_value_tensors(op, **make))
    samples.append(next(iter(core.generate_elementwise_binary_extremal_value_tensors(op, **make))))
    pairs = list(itertools.product(special_values(dtype), repeat=2))
    lhs = torch.cat([s.input for s in samples] + [torch.tensor([a for a, _ in pairs], dtype=dtype)])
    rhs = torch.cat([s.args[0] for s in samples] + [torch.tensor([b for _, b in pairs], dtype=dtype)])
    return lhs, rhs


# ---- comparison ----------------------------------------------------------------------------------
def _differ(a, b, rtol, tiny, signs=True):
    """A mask of the elements where b (gt's) is not a's (torch's); ``signs``: also where one is
    -0.0 and the other 0.0."""
    if a.dtype.kind == "c":
        return _differ(a.real, b.real, rtol, tiny, signs) | _differ(a.imag, b.imag, rtol, tiny, signs)
    if a.dtype.kind not in "fc":
        return a != b
    with np.errstate(invalid="ignore", over="ignore"):
        a, b = a.astype(np.float64), b.astype(np.float64)
        close = (np.abs(a - b) <= rtol * np.abs(a) + tiny) | (a == b)
    nan = np.isnan(a)
    zero_sign = signs & (a == 0) & (b == 0) & (np.signbit(a) != np.signbit(b))
    return (nan != np.isnan(b)) | (~nan & ~close) | zero_sign


def difference(t, g, where, rtol, inputs=(), mask=None, grads=False):
    """None if gt's tensor g is torch's t (at the elements of ``mask`` only, if given), else what differs."""
    if not isinstance(g, gt.Tensor):
        return f"{where}: gt gives {type(g).__name__}"
    if _name(t.dtype) != _name(g.dtype) or tuple(t.shape) != tuple(g.shape):
        return f"{where}: torch {_name(t.dtype)} {tuple(t.shape)}, gt {_name(g.dtype)} {tuple(g.shape)}"
    a, b = _numpy(t.float() if t.dtype == torch.bfloat16 else t), np.asarray(g.detach().float().numpy()
                                                                               if t.dtype == torch.bfloat16
                                                                               else g.detach().numpy())
    # a few subnormals for values; the smallest normal for gradients (torch's flush to 0 there)
    info = torch.finfo(t.dtype) if t.dtype.is_floating_point else None
    tiny = 0 if info is None else info.smallest_normal if grads else 4 * info.smallest_normal * info.eps
    bad = _differ(a, b, rtol, tiny, signs=not grads)   # gradients: the signs of their zeros left out
    if mask is not None:
        bad &= mask
    if not bad.any():
        return None
    shown = []
    for i in map(tuple, np.argwhere(bad)[:4]):
        at = ", ".join(f"{float(_numpy(x.double())[i]):.4g}" for x in inputs if tuple(x.shape) == tuple(t.shape))
        shown.append(f"at {i} ({at}) torch {a[i]!r} gt {b[i]!r}")
    return f"{where}: {bad.sum()} of {bad.size} differ, " + "; ".join(shown)


def _gt(x, grad):
    if x.dtype == torch.bfloat16:
        # torch's bits, NaNs' signs included: a float32 copy cast back would set a NaN's sign bit
        # where torch's vectorised cast does (AVX2: 0xFFFF), unlike the NaNs torch's samples hold
        bits = gt.tensor(_numpy(x.detach().view(torch.int16))).view(gt.bfloat16)
        return bits.detach().requires_grad_(grad)
    return gt.tensor(_numpy(x), dtype=DTYPES[x.dtype], requires_grad=grad)


def _compared(known, part, dtype, inputs):
    """None, or the mask of the elements compared: those no entry of ``known`` leaves out."""
    entries = [where for p, dtypes, where, _ in known if p == part and (dtypes is None or dtype in dtypes)]
    if not entries:
        return None
    xs = [_numpy(x.detach().double()) for x in inputs]
    with np.errstate(all="ignore"):
        return ~np.logical_or.reduce([np.broadcast_to(where(*xs), xs[0].shape) for where in entries])


def _fit(mask, shape):
    """``mask`` (of the input's elements) for an output of ``shape``: itself, a row's (a reduction
    along dim 1: the row is compared where all its elements are), or None."""
    if mask is None or mask.shape == shape:
        return mask
    if mask.ndim == 2 and len(shape) >= 1 and shape[0] == mask.shape[0]:
        return np.broadcast_to(mask.all(axis=1).reshape((-1,) + (1,) * (len(shape) - 1)), shape)
    return None


def check(fn_t, fn_g, inputs, dtype, grad, known=(), grad_rtol=1e-8):
    """The differences (a list of strings) of fn_g on gt's copies of ``inputs`` from fn_t on them:
    values and, where ``grad``, gradients wherever torch's are finite; but for the elements that
    ``known`` (a ``KNOWN`` entry) leaves out."""
    t_in = [x.detach().requires_grad_(grad) for x in inputs]
    g_in = [_gt(x, grad) for x in inputs]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t_out = fn_t(*t_in)
        try:
            g_out = fn_g(*g_in)
        except Exception as error:      # noqa: BLE001
            return [f"{_name(dtype)}: gt raised {type(error).__name__}: {str(error)[:200]}"]
    t_flat, g_flat = flat(t_out), flat(g_out)
    if len(t_flat) != len(g_flat):
        return [f"{_name(dtype)}: torch gives {len(t_flat)} outputs, gt {len(g_flat)}"]
    mask = _compared(known, "out", dtype, inputs)
    found = [d for i, (a, b) in enumerate(zip(t_flat, g_flat))
             if (d := difference(a, b, f"{_name(dtype)} out[{i}]", RTOL[dtype], inputs, _fit(mask, tuple(a.shape))))]
    if found or not grad:
        return found
    rng = np.random.default_rng(0)
    # gt's result has no graph where its gradient is 0 (fill)
    pairs = [(a, b) for a, b in zip(t_flat, g_flat) if a.requires_grad and a.dtype.is_floating_point
             and b.requires_grad]
    if not pairs:
        return []
    cot = [rng.standard_normal(tuple(a.shape)) for a, _ in pairs]
    t_grads = torch.autograd.grad([a for a, _ in pairs], t_in, [torch.tensor(c) for c in cot], allow_unused=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            g_grads = gt.autograd.grad([b for _, b in pairs], g_in, [gt.tensor(c) for c in cot], allow_unused=True)
        except Exception as error:      # noqa: BLE001
            return [f"grad: gt raised {type(error).__name__}: {str(error)[:200]}"]
    mask = _compared(known, "grad", dtype, inputs)
    for i, (a, b, x) in enumerate(zip(t_grads, g_grads, t_in)):
        a = torch.zeros_like(x) if a is None or a._is_zerotensor() else a
        b = gt.zeros(tuple(x.shape), dtype=gt.float64) if b is None else b
        finite = np.isfinite(_numpy(a)) & (True if mask is None or mask.shape != tuple(a.shape) else mask)
        if (d := difference(a, b, f"grad[{i}]", grad_rtol, inputs, finite, grads=True)):
            found.append(d)
    return found


# ---- elementwise ops --------------------------------------------------------------------------
def _elementwise_cases():
    cases = []
    for op in list(unary_ufuncs) + list(binary_ufuncs) + [o for o in op_db if o.name == "clamp"]:
        if gt_function(op) is None or not any(op.supports_dtype(d, "cpu") for d in FLOATS):
            continue
        full = _full(op)
        marks = [pytest.mark.skip(reason=SKIP[full])] if full in SKIP else []
        cases.append(pytest.param(op, id=full, marks=marks))
    return cases


@pytest.mark.parametrize("op", _elementwise_cases())
def test_elementwise_extremal_values(op):
    fn_g, full = gt_function(op), _full(op)
    found = []
    for dtype in FLOATS:
        if not op.supports_dtype(dtype, "cpu") or (full == "complex" and dtype == torch.float16):
            continue    # complex(half, half) is complex32, which gt has not (MISSING.md)
        if op.name == "clamp":
            x, lo = _binary_inputs(_MAXIMUM, dtype)    # clamp's OpInfo is no BinaryUfuncInfo
            inputs, kwargs = [x, lo, torch.roll(lo, 1)], {}     # clamp's OpInfo has no sample_kwargs
        elif op in unary_ufuncs:
            inputs = [_unary_input(op, dtype)]
            kwargs = op.sample_kwargs("cpu", dtype, inputs[0])[0]
        else:
            inputs = list(_binary_inputs(op, dtype))
            kwargs = op.sample_kwargs("cpu", dtype, inputs[0])[0]
            if "polynomial" in op.name:     # degrees 0 to 5: gt's recurrence takes n steps (4 s for n = 1e5)
                inputs[1] = (torch.arange(len(inputs[1])) % 6).to(dtype)
        grad = dtype == torch.float64 and op.supports_autograd
        found += check(lambda *a: op.op(*a, **kwargs), lambda *a: fn_g(*a, **kwargs), inputs, dtype, grad,
                       KNOWN.get(full, ()), GRAD_RTOL.get(full, (1e-8,))[0])
    assert found == []


# ---- reductions, scans, sorts and softmaxes ---------------------------------------------------
def reduction_input(dtype):
    """A (12, 6) matrix whose rows hold NaN, infinities, zeros of both signs, values whose sum
    overflows, subnormals, all NaN and all -inf."""
    info = torch.finfo(dtype)
    big, tiny, sub = info.max, info.tiny, info.smallest_normal * info.eps
    inf, nan = math.inf, math.nan
    rows = [[1, -2, 3, 0.5, -0.0, 2], [1, nan, 3, -1, nan, 0], [1, inf, -2, 3, 0, 1], [-inf, 1, 2, -inf, 0, 3],
            [inf, -inf, 1, 2, 3, 0], [-0.0] * 6, [big, big, -1, 1, 2, 3], [sub, -sub, tiny, 2 * sub, 0, tiny],
            [nan] * 6, [-inf] * 6, [inf, nan, -inf, 1, 0, -0.0], [0.0, -0.0, -1, -0.0, 0.0, -2]]
    return torch.tensor(rows, dtype=dtype)


_NORM = lambda m, x, ord: m.linalg.vector_norm(x, ord, dim=1)     # noqa: E731
# name -> the calls compared, each of (module, x): torch's or gt's
REDUCTIONS = {
    "sum": [lambda m, x: m.sum(x, 1), lambda m, x: m.sum(x)],
    "mean": [lambda m, x: m.mean(x, 1)],
    "prod": [lambda m, x: m.prod(x, 1)],
    "amax": [lambda m, x: m.amax(x, 1), lambda m, x: m.amin(x, 1)],
    "max": [lambda m, x: m.max(x, dim=1), lambda m, x: m.min(x, dim=1), lambda m, x: m.max(x),
            lambda m, x: m.min(x)],
    "argmax": [lambda m, x: m.argmax(x, 1), lambda m, x: m.argmin(x, 1), lambda m, x: m.argmax(x)],
    "nansum": [lambda m, x: m.nansum(x, 1), lambda m, x: m.nanmean(x, 1)],
    "logsumexp": [lambda m, x: m.logsumexp(x, 1)],
    "norm": [lambda m, x, o=o: _NORM(m, x, o) for o in (2, 1, 3, math.inf, -math.inf, 0)]
    + [lambda m, x: m.norm(x, dim=1)],
    "var": [lambda m, x: m.var(x, 1, correction=1), lambda m, x: m.std(x, 1, correction=0)],
    "cumsum": [lambda m, x: m.cumsum(x, 1), lambda m, x: m.cumprod(x, 1)],
    "cummax": [lambda m, x: m.cummax(x, 1), lambda m, x: m.cummin(x, 1)],
    "sort": [lambda m, x: m.sort(x, dim=1, stable=True), lambda m, x: m.sort(x, dim=1, descending=True, stable=True),
             lambda m, x: m.argsort(x, dim=1, stable=True)],
    # _TOPK_TIES
    "topk": [lambda m, x: m.topk(x, 3, 1).values.abs(), lambda m, x: m.topk(x, 2, 1, largest=False).values.abs()],
    # the index of an all-NaN row's nanmedian is undefined (torch: 3 of 6, gt 0): that row left out
    "median": [lambda m, x: m.median(x, 1), lambda m, x: m.nanmedian(m.cat([x[:8], x[9:]]), 1),
               lambda m, x: m.median(x)],
    "softmax": [lambda m, x: m.nn.functional.softmax(x, dim=1), lambda m, x: m.nn.functional.log_softmax(x, dim=1)],
}
# name -> reason: not compared
REDUCTION_SKIP = {}


@pytest.mark.parametrize("name", [pytest.param(n, marks=[pytest.mark.skip(reason=REDUCTION_SKIP[n])]
                                               if n in REDUCTION_SKIP else []) for n in REDUCTIONS])
def test_reduction_extremal_values(name):
    found = []
    for dtype in FLOATS:
        for i, call in enumerate(REDUCTIONS[name]):
            found += [f"call {i}: {d}" for d in check(lambda x: call(torch, x), lambda x: call(gt, x),
                                                       [reduction_input(dtype)], dtype, dtype == torch.float64,
                                                       KNOWN.get(name, ()))]
    assert found == []
