"""Every differentiable op against torch autograd on the same inputs, in float64 and float32:
forward values and every input gradient (rtol 1e-5 in float64, 1e-4 in float32).

The cases are those of test_ops_grad.py (op_cases.py). Skipped as a whole when torch is absent.
"""

import numpy as np
import pytest

from helpers import compare_with_torch, torch_or_skip
from op_cases import CASES

torch = torch_or_skip()

DTYPES = ["float64", "float32"]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_matches_torch(case, dtype):
    compare_with_torch(case.gt_fn, case.torch_fn, *case.inputs, dtype=dtype, **case.torch_kw)


# ---- the points where a choice is made: ties, kinks, zero bases ----------------------------
@pytest.mark.parametrize("dtype", DTYPES)
def test_maximum_minimum_ties_like_torch(dtype):
    a = np.array([[1.0, 2.0, 3.0], [0.0, -1.0, 4.0]])
    b = np.array([1.0, 5.0, 3.0])
    compare_with_torch(lambda x, y: x.maximum(y), lambda x, y: torch.maximum(x, y), a, b, dtype=dtype)
    compare_with_torch(lambda x, y: x.minimum(y), lambda x, y: torch.minimum(x, y), a, b, dtype=dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_max_min_ties_like_torch(dtype):
    x = np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]])
    compare_with_torch(lambda t: t.max(), None, x, dtype=dtype)  # a full reduction shares among ties
    compare_with_torch(lambda t: t.min(), None, x, dtype=dtype)
    compare_with_torch(lambda t: t.max(axis=1), lambda t: torch.amax(t, dim=1), x, dtype=dtype)
    compare_with_torch(lambda t: t.min(axis=0, keepdims=True), lambda t: torch.amin(t, dim=0, keepdim=True), x,
                       dtype=dtype)
    compare_with_torch(lambda t: t.max(axis=(0, 1)), lambda t: torch.amax(t, dim=(0, 1)), x, dtype=dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_kinks_like_torch(dtype):
    x = np.array([-2.0, -1.0, 0.0, 1.0, 2.0])
    compare_with_torch(lambda t: t.relu(), None, x, dtype=dtype)
    compare_with_torch(lambda t: t.abs(), None, x, dtype=dtype)
    compare_with_torch(lambda t: t.clip(-1.0, 1.0), lambda t: t.clamp(-1.0, 1.0), x, dtype=dtype)
    compare_with_torch(lambda t: t.clip(min=0.0), lambda t: t.clamp(min=0.0), x, dtype=dtype)
    compare_with_torch(lambda t: t.clip(max=0.0), lambda t: t.clamp(max=0.0), x, dtype=dtype)
    lo, hi = np.array([-1.0, 0.5, 0.0, 1.0, 3.0]), np.array([1.0, -0.5, 0.0, 1.0, 2.5])  # incl. low > high, ties
    compare_with_torch(lambda t, a, b: t.clip(a, b), lambda t, a, b: t.clamp(a, b), x, lo, hi, dtype=dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_pow_at_zero_like_torch(dtype):
    x = np.array([0.0, 1.5, 2.0])
    compare_with_torch(lambda t: t ** 2, None, x, dtype=dtype)
    compare_with_torch(lambda t: t ** 0, None, x, dtype=dtype)
    compare_with_torch(lambda t: t ** 1, None, x, dtype=dtype)
    compare_with_torch(lambda t, e: t ** e, None, x, np.array([2.0, 0.0, 3.0]), dtype=dtype)
    compare_with_torch(lambda t, e: t ** e, None, np.array([0.0, 0.0, 2.0]), np.array([0.0, 2.5, 1.0]), dtype=dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_softmax_huge_inputs_like_torch(dtype):
    x = np.array([[1000.0, 1001.0, 999.0, -1000.0], [0.0, 1e4, -1e4, 5.0]])
    compare_with_torch(lambda t: t.softmax(-1), None, x, dtype=dtype)
    compare_with_torch(lambda t: t.log_softmax(-1), None, x, dtype=dtype)
    compare_with_torch(lambda t: t.log_softmax(0), None, x, dtype=dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_long_chain_like_torch(dtype):
    """A small network end to end: matmul, bias, gelu, layer-norm-like statistics, log_softmax, a gather."""
    rng = np.random.default_rng(0)
    x, w1, b1, w2 = rng.standard_normal((6, 5)), rng.standard_normal((5, 7)), rng.standard_normal(7), \
        rng.standard_normal((7, 3))
    rows, labels = np.arange(6), np.array([0, 2, 1, 1, 0, 2])

    def gt_fn(x, w1, b1, w2):
        h = (x @ w1 + b1).gelu()
        h = (h - h.mean(axis=-1, keepdims=True)) / (h.var(axis=-1, keepdims=True) + 1e-5).sqrt()
        logp = (h @ w2).log_softmax(-1)
        return -logp[rows, labels].mean()

    def torch_fn(x, w1, b1, w2):
        h = torch.nn.functional.gelu(x @ w1 + b1)
        h = (h - h.mean(dim=-1, keepdim=True)) / (h.var(dim=-1, keepdim=True, correction=0) + 1e-5).sqrt()
        logp = (h @ w2).log_softmax(-1)
        return -logp[rows, labels].mean()

    compare_with_torch(gt_fn, torch_fn, x, w1, b1, w2, dtype=dtype)
