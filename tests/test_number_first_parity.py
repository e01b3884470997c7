"""Python numbers in the tensor arguments of gt's top-level functions, beside torch 2.13: each
function called with (number, tensor), (tensor, number), (number, number), bools and complex
numbers among the numbers, float32/float64/int64/bool tensors, with ``out=`` and ``alpha=`` where
torch takes them; a unary function on a number; a ternary one (``where``, ``lerp``, ``addcmul``)
with numbers in its places. Where torch computes, gt gives its dtype, shape and values; where it
refuses, gt raises an error of the same type (gt/tensor/number_first.py). Gradients of a number
first (``gt.sub(2, x)``) reach the tensor as torch's do.
"""

import numpy as np
import pytest

import gt
from helpers import torch_or_skip

torch = torch_or_skip()

VALUES = {"float32": [0.5, 1.5, -2.5, 3.0], "float64": [0.5, 1.5, -2.5, 3.0], "int64": [1, 2, -3, 4],
          "bool": [True, False, True, True]}
NUMBERS = (2, 2.5, True, 1 + 2j, -3)
TENSORS = tuple(VALUES)

UNARY = ("abs", "abs_", "absolute", "acos", "acos_", "acosh", "acosh_", "alias_copy", "all", "amax", "amin",
         "aminmax", "angle", "any", "arccos", "arccos_", "arccosh", "arccosh_", "arcsin", "arcsin_", "arcsinh",
         "arcsinh_", "arctan", "arctan_", "arctanh", "arctanh_", "argmax", "argmin", "argsort", "argwhere", "asin",
         "asin_", "asinh", "asinh_", "atan", "atan_", "atanh", "atanh_", "bitwise_not", "ceil", "ceil_", "celu",
         "celu_", "clone", "combinations", "conj", "conj_physical", "conj_physical_", "corrcoef", "cos", "cos_",
         "cosh", "cosh_", "count_nonzero", "cov", "deg2rad", "deg2rad_", "detach", "detach_", "detach_copy", "diag",
         "diag_embed", "diagflat", "diff", "digamma", "erf", "erf_", "erfc", "erfc_", "erfinv", "exp", "exp2",
         "exp2_", "exp_", "expm1", "expm1_", "fix", "fix_", "flatten", "flipud", "floor", "floor_", "frac", "frac_",
         "frexp", "gradient", "hardshrink", "histc", "i0", "i0_", "isfinite", "isinf", "isnan", "isneginf",
         "isposinf", "isreal", "lgamma", "log", "log10", "log10_", "log1p", "log1p_", "log2", "log2_", "log_",
         "logical_not", "logit", "logit_", "mean", "median", "mode", "msort", "nan_to_num", "nan_to_num_", "nanmean",
         "nanmedian", "nansum", "neg", "neg_", "negative", "negative_", "nonzero", "norm", "norm_except_dim",
         "ones_like", "positive", "prod", "rad2deg", "rad2deg_", "ravel", "real", "reciprocal", "reciprocal_", "relu",
         "relu_", "resolve_conj", "resolve_neg", "round", "round_", "rsqrt", "rsqrt_", "selu", "selu_", "sgn",
         "sigmoid", "sigmoid_", "sign", "signbit", "sin", "sin_", "sinc", "sinc_", "sinh", "sinh_", "slice_copy",
         "sort", "sqrt", "sqrt_", "square", "square_", "squeeze", "squeeze_copy", "std", "std_mean", "sum", "t",
         "t_copy", "tan", "tan_", "tanh", "tanh_", "trunc", "trunc_", "unbind", "unbind_copy", "unique",
         "unique_consecutive", "vander", "var", "var_mean", "zero_", "zeros_like")
BINARY = ("add", "allclose", "arctan2", "atan2", "atleast_1d", "atleast_2d", "atleast_3d",
          "binary_cross_entropy_with_logits", "bitwise_and", "bitwise_left_shift", "bitwise_or",
          "bitwise_right_shift", "bitwise_xor", "block_diag", "broadcast_tensors", "bucketize", "cartesian_prod",
          "clamp", "clamp_", "clamp_max", "clamp_max_", "clamp_min", "clamp_min_", "clip", "clip_", "complex",
          "copysign", "cumulative_trapezoid", "dist", "div", "divide", "dot", "eq", "equal", "float_power",
          "floor_divide", "fmax", "fmin", "fmod", "gcd", "gcd_", "ge", "ger", "greater", "greater_equal", "gt",
          "heaviside", "hinge_embedding_loss", "histogram", "hypot", "igamma", "igammac", "inner", "isclose", "isin",
          "kl_div", "kron", "lcm", "lcm_", "ldexp", "ldexp_", "le", "less", "less_equal", "logaddexp", "logaddexp2",
          "logical_and", "logical_or", "logical_xor", "lt", "matmul", "max", "maximum", "meshgrid", "min", "minimum",
          "mul", "multiply", "ne", "nextafter", "not_equal", "outer", "pairwise_distance", "polar", "pow",
          "remainder", "resize_as_", "rsub", "searchsorted", "slice_scatter", "sub", "subtract", "tensor_split",
          "trapezoid", "trapz", "true_divide", "vdot", "xlogy", "xlogy_")
TERNARY = ("addcdiv", "addcmul", "addr", "lerp", "margin_ranking_loss", "triplet_margin_loss", "where")

# Cells left different from torch, by function: (which cells, why). Every other cell matches (the
# last ones, max/min(x, 2, out=t), raise torch's TypeError since 2026-12-06).
LEFT = {}


class _T:
    """A tensor of ``dtype`` made fresh for each library and call (in-place functions write it)."""

    def __init__(self, dtype, empty=False):
        self.dtype, self.empty = dtype, empty

    def make(self, lib):
        if self.empty:
            return lib.empty(4, dtype=getattr(lib, self.dtype))
        return lib.tensor(VALUES[self.dtype], dtype=getattr(lib, self.dtype))

    def __repr__(self):
        return f"<{'out ' if self.empty else ''}{self.dtype}>"


def _call(lib, name, args, kwargs):
    args = [a.make(lib) if isinstance(a, _T) else a for a in args]
    kwargs = {k: v.make(lib) if isinstance(v, _T) else v for k, v in kwargs.items()}
    try:
        return getattr(lib, name)(*args, **kwargs)
    except Exception as e:      # noqa: BLE001  (compared by type in _assert_same)
        return e


def _torch_takes(name, args, kwargs=None):
    return not isinstance(_call(torch, name, args, kwargs or {}), Exception)


def _cells(name):
    """The calls of ``name`` to compare, as (args, kwargs)."""
    if name in UNARY:
        return [([n], {}) for n in NUMBERS]
    if name in TERNARY:
        cond = name == "where"
        return [([_T("bool") if cond and i == 0 else n if mask >> i & 1 else _T(d) for i in range(3)], {})
                for d in ("float32", "int64") for mask in range(2 if cond else 1, 8, 2 if cond else 1)
                for n in (2, 2.5, True)]
    cells = [(args, {}) for n in NUMBERS for d in TENSORS for args in ([n, _T(d)], [_T(d), n])]
    cells += [([n, m], {}) for n in NUMBERS for m in NUMBERS]
    f = _T("float32") if _torch_takes(name, [_T("float32")] * 2) else _T("int64")
    if _torch_takes(name, [f, f], {"out": _T(f.dtype, empty=True)}):
        for n in (2, 2.5, True):
            for d, od in (("float32", "float32"), ("int64", "int64"), ("int64", "float32"), ("float32", "int64"),
                          ("bool", "bool")):
                cells += [([n, _T(d)], {"out": _T(od, True)}), ([_T(d), n], {"out": _T(od, True)})]
            cells.append(([n, 3], {"out": _T("float32", True)}))
    if _torch_takes(name, [f, f], {"alpha": 2}):
        cells += [(args, {"alpha": a}) for n in (2, 2.5, True) for d in ("float32", "int64", "bool")
                  for a in (2, 2.5, True) for args in ([n, _T(d)], [_T(d), n])]
        cells += [([n, 3], {"alpha": 2}) for n in (2, 2.5, True)]
    return cells


def _assert_same(ours, theirs, where):
    if isinstance(theirs, Exception):
        # torch's Python-level functions (torch.norm) read a number's .layout: AttributeError; gt's TypeError
        base = next(b for b in (NotImplementedError, IndexError, ValueError, TypeError, RuntimeError)
                    if isinstance(theirs, b)) if not isinstance(theirs, AttributeError) else TypeError
        assert isinstance(ours, base), f"{where}: torch raises {type(theirs).__name__} ({theirs}), gt gives {ours!r}"
        return
    assert not isinstance(ours, Exception), f"{where}: torch gives {theirs!r}, gt raises {ours!r}"
    if isinstance(theirs, (tuple, list)):
        assert isinstance(ours, (tuple, list)) and len(ours) == len(theirs), where
        for a, b in zip(ours, theirs):
            _assert_same(a, b, where)
        return
    if not isinstance(theirs, torch.Tensor):
        assert ours == theirs, f"{where}: torch gives {theirs!r}, gt {ours!r}"
        return
    assert isinstance(ours, gt.Tensor), f"{where}: torch gives a tensor, gt {ours!r}"
    assert ours.dtype.name == str(theirs.dtype).replace("torch.", ""), f"{where}: {ours.dtype} vs {theirs.dtype}"
    assert ours.shape == tuple(theirs.shape), f"{where}: {ours.shape} vs {tuple(theirs.shape)}"
    np.testing.assert_allclose(ours.detach().numpy(), theirs.detach().resolve_conj().numpy(), rtol=1e-5, atol=1e-6,
                               equal_nan=True, err_msg=where)


@pytest.mark.table
@pytest.mark.filterwarnings("ignore::UserWarning")      # torch's and gt's resize and meshgrid warnings
@pytest.mark.filterwarnings("ignore::RuntimeWarning")   # numpy's division by a False
@pytest.mark.parametrize("name", UNARY + BINARY + TERNARY)
def test_numbers_in_a_functions_tensor_arguments_are_torchs(name):
    left, _ = LEFT.get(name, (lambda args, kwargs: False, None))
    for args, kwargs in _cells(name):
        if not left(args, kwargs):
            _assert_same(_call(gt, name, args, kwargs), _call(torch, name, args, kwargs),
                         f"{name}{tuple(args)} {kwargs or ''}")


def test_the_examples_of_torchs_number_first_rule():
    ints, floats, bools = gt.tensor([1, 2, 3]), gt.ones(3), gt.tensor([True, False, True])
    assert gt.add(2, floats).tolist() == [3.0, 3.0, 3.0]
    assert gt.add(2, ints).dtype == gt.int64 and gt.add(2.5, ints).dtype == gt.float32
    assert gt.add(2, 3).item() == 5 and gt.add(2, 3).dtype == gt.int64 and gt.add(2, 3).ndim == 0
    assert gt.add(1j, floats).dtype == gt.complex64 and gt.mul(1j, floats.double()).dtype == gt.complex128
    assert gt.remainder(-3, gt.tensor([2.0])).tolist() == [1.0] and gt.floor_divide(7, ints).tolist() == [7, 3, 2]
    for refused in (lambda: gt.sub(True, bools), lambda: gt.sub(True, floats)):
        with pytest.raises(RuntimeError, match="Subtraction, the `-` operator, with"):
            refused()
    for refused in (lambda: gt.exp(2), lambda: gt.atan2(2, floats), lambda: gt.hypot(floats, 2.0),
                    lambda: gt.maximum(floats, 0), lambda: gt.pow(2, 3), lambda: gt.remainder(2, floats, out=floats)):
        with pytest.raises(TypeError):
            refused()
    with pytest.raises(RuntimeError, match="alpha must not be a floating point number"):
        gt.add(ints, 2, alpha=2.5)


@pytest.mark.parametrize("name", ["add", "sub", "mul", "div", "true_divide", "pow", "remainder", "floor_divide"])
@pytest.mark.parametrize("number", [2, -1.5])
def test_gradients_of_a_number_first_reach_the_tensor_as_torchs(name, number):
    v = np.array([0.5, 1.25, -2.0, 3.5])
    x, t = gt.tensor(v, requires_grad=True), torch.tensor(v, requires_grad=True)
    kwargs = {"alpha": 3} if name in ("add", "sub") else {}
    ours, theirs = getattr(gt, name)(number, x, **kwargs), getattr(torch, name)(number, t, **kwargs)
    assert ours.dtype == gt.float64
    np.testing.assert_allclose(ours.detach().numpy(), theirs.detach().numpy(), rtol=1e-12, equal_nan=True)
    w = np.array([1.0, -2.0, 0.5, 3.0])
    if name in ("remainder", "floor_divide"):       # torch's number-first overloads have no derivative
        for loss in ((ours * gt.tensor(w)).sum(), (theirs * torch.tensor(w)).sum()):
            with pytest.raises(RuntimeError, match=f"derivative for aten::{name} is not implemented"):
                loss.backward()
        return
    (ours * gt.tensor(w)).sum().backward()
    (theirs * torch.tensor(w)).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), t.grad.numpy(), rtol=1e-12, atol=1e-12, equal_nan=True)
