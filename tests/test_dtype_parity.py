"""Dtypes beside torch where gt once differed: joins of mixed dtypes (``cat``/``stack`` promoted
int with float to float64 on the numpy engine; ``hstack`` & co. gave float16 with bfloat16 as
bfloat16), half-precision softmax, variance and running log-sums computed in float32 and rounded
once (as torch's CPU kernels), ``view(dtype)``, and the older tolerance arguments of
``linalg.pinv``/``matrix_rank`` and ``gt.nuclear_norm``."""

import itertools
import warnings

import numpy as np
import pytest

import gt
from helpers import torch_or_skip

NUMPY_DTYPES = ["bool", "int32", "int64", "float16", "float32", "float64"]


def _pair(torch, name, values=(1, 0, 3)):
    data = np.asarray(values)
    return gt.tensor(data).to(getattr(gt, name)), torch.tensor(data).to(getattr(torch, name))


@pytest.mark.parametrize("join", ["cat", "stack", "hstack", "vstack", "row_stack", "column_stack", "dstack"])
@pytest.mark.parametrize("a, b", list(itertools.product(NUMPY_DTYPES, NUMPY_DTYPES)))
def test_joins_promote_as_torch(join, a, b):
    torch = torch_or_skip()
    (ga, ta), (gb, tb) = _pair(torch, a), _pair(torch, b, (2, 5, 0))
    ours, theirs = getattr(gt, join)([ga, gb]), getattr(torch, join)([ta, tb])
    assert ours.dtype == theirs.dtype, (join, a, b, ours.dtype, theirs.dtype)
    np.testing.assert_array_equal(ours.float().numpy(), theirs.float().numpy())


def test_cat_of_int_and_float32_keeps_float32_and_its_gradient():
    x = gt.tensor([0.5, 1.5], requires_grad=True)
    out = gt.cat([gt.tensor([1, 2], dtype=gt.int32), x])
    assert out.dtype == gt.float32
    (out * gt.tensor([1.0, 2.0, 3.0, 4.0])).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [3.0, 4.0])


@pytest.mark.skipif(gt.get_backend() != "torch", reason="bfloat16 tensors need the torch engine (GT_BACKEND=torch)")
@pytest.mark.parametrize("join", ["hstack", "vstack", "dstack", "cat", "stack"])
def test_float16_with_bfloat16_joins_in_float32(join):
    torch = torch_or_skip()
    (ga, ta), (gb, tb) = _pair(torch, "float16"), _pair(torch, "bfloat16")
    assert getattr(gt, join)([ga, gb]).dtype == getattr(torch, join)([ta, tb]).dtype == torch.float32


# ---- halves: computed in float32, rounded once -------------------------------------------------------------
def _ulps(ours, theirs):
    a = np.asarray(ours.numpy(), np.float16).view(np.int16).astype(np.int64)
    b = np.asarray(theirs.numpy(), np.float16).view(np.int16).astype(np.int64)
    return int(np.abs(a - b).max())


HALF_OPS = {
    "softmax(-1)": (lambda x: x.softmax(-1), lambda t: t.softmax(-1)),
    "softmax(0)": (lambda x: x.softmax(0), lambda t: t.softmax(0)),
    "F.softmax": (lambda x: gt.nn.functional.softmax(x, dim=1), lambda t: t.softmax(1)),
    "log_softmax": (lambda x: x.log_softmax(-1), lambda t: t.log_softmax(-1)),
    "std": (lambda x: x.std(1, correction=1), lambda t: t.std(1)),
    "var": (lambda x: x.var(0, correction=1), lambda t: t.var(0)),
    "var all": (lambda x: x.var(correction=0), lambda t: t.var(correction=0)),
    "logcumsumexp": (lambda x: x.logcumsumexp(1), lambda t: t.logcumsumexp(1)),
}


@pytest.mark.parametrize("op", sorted(HALF_OPS))
def test_float16_reductions_round_once_as_torch(op):
    torch = torch_or_skip()
    data = (np.random.default_rng(0).standard_normal((50, 40)) * 3).astype(np.float16)
    ours_fn, theirs_fn = HALF_OPS[op]
    x = gt.tensor(data, dtype=gt.float16)
    ours = ours_fn(x)
    assert ours.dtype == gt.float16
    # torch's CPU kernels compute halves in float32 and round once: gt's float32 result, rounded
    # (rounding every step in float16 was up to 12 units of the last place from torch's)
    np.testing.assert_array_equal(ours.numpy(), ours_fn(x.float()).half().numpy())
    theirs = theirs_fn(torch.from_numpy(data))
    if op == "log_softmax":
        # torch's half kernel rounds its log-sum to float16 (at [23, 13] it answers -0.14685, three
        # units of the last place from the exact -0.147190; gt's -0.147217 is the nearest float16)
        np.testing.assert_allclose(ours.float().numpy(), theirs.float().numpy(), rtol=2 ** -10, atol=5e-4)
        exact = theirs_fn(torch.from_numpy(data).double()).numpy()
        assert np.abs(ours.float().numpy() - exact).max() <= np.abs(theirs.float().numpy() - exact).max()
    else:
        assert _ulps(ours, theirs) <= 1, op


def test_float16_softmax_gradient_comes_back_in_float16():
    torch = torch_or_skip()
    data = np.random.default_rng(1).standard_normal((4, 6)).astype(np.float16)
    weights = np.random.default_rng(2).standard_normal((4, 6)).astype(np.float16)
    x = gt.tensor(data, dtype=gt.float16, requires_grad=True)
    t = torch.tensor(data, requires_grad=True)
    (x.softmax(-1) * gt.tensor(weights, dtype=gt.float16)).sum().backward()
    (t.softmax(-1) * torch.from_numpy(weights)).sum().backward()
    assert x.grad.dtype == gt.float16
    np.testing.assert_allclose(x.grad.float().numpy(), t.grad.float().numpy(), rtol=2e-3, atol=2e-3)


# ---- view(dtype) -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("src, dst", list(itertools.product(["float32", "float64", "int32", "int64", "float16"],
                                                            ["float32", "float64", "int32", "int64", "float16",
                                                             "bool"])))
def test_view_as_dtype_reads_the_same_bits(src, dst):
    torch = torch_or_skip()
    data = np.random.default_rng(0).standard_normal((2, 8)) * 50
    ours, theirs = gt.tensor(data).to(getattr(gt, src)), torch.tensor(data).to(getattr(torch, src))
    try:
        want = theirs.view(getattr(torch, dst))
    except RuntimeError:
        with pytest.raises(RuntimeError):
            ours.view(getattr(gt, dst))
        return
    got = ours.view(getattr(gt, dst))
    assert got.dtype == getattr(gt, dst) and got.shape == tuple(want.shape)
    np.testing.assert_array_equal(got.numpy(), want.numpy())


def test_view_as_dtype_shares_memory_and_records_no_gradient():
    x = gt.tensor([1.0, -2.0, 3.0], requires_grad=True)
    bits = x.view(gt.int32)
    assert not bits.requires_grad
    np.testing.assert_array_equal(bits.numpy(), np.array([1.0, -2.0, 3.0], np.float32).view(np.int32))
    bits[1] = 0
    assert x.tolist() == [1.0, 0.0, 3.0]
    assert x.view(dtype=gt.float32).tolist() == [1.0, 0.0, 3.0]


def test_view_as_dtype_refuses_what_torch_refuses():
    x = gt.zeros(3, 4)
    if x.t().stride(-1) != 1:     # sharded over the mesh (GT_DEVICES), a tensor is laid out row-major
        with pytest.raises(RuntimeError, match="stride"):
            x.t().view(gt.float64)
    with pytest.raises(RuntimeError, match="divisible"):
        gt.zeros(3).view(gt.float64)
    with pytest.raises(RuntimeError, match="dim"):
        gt.tensor(1.0).view(gt.float64)
    with pytest.raises(TypeError):
        x.view(12, dtype=gt.int32)
    assert x.view(size=(12,)).shape == (12,) and x.view(2, -1).shape == (2, 6)


# ---- torch's older linear-algebra spellings ----------------------------------------------------------------
def _nearly_singular(torch):
    a = torch.tensor(np.random.default_rng(3).standard_normal((5, 4)))
    a[:, 3] = a[:, 2] + 1e-4 * a[:, 0]
    return gt.tensor(a.numpy()), a


@pytest.mark.parametrize("rcond", [0.5, 1e-3, 1e-6, 1e-12])
def test_pinv_takes_rcond_as_torch(rcond):
    torch = torch_or_skip()
    ours, theirs = _nearly_singular(torch)
    want = torch.linalg.pinv(theirs, rcond).numpy()
    np.testing.assert_allclose(gt.linalg.pinv(ours, rcond).numpy(), want, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(gt.linalg.pinv(ours, rcond=rcond).numpy(), want, rtol=1e-8, atol=1e-10)
    with pytest.raises(TypeError):
        gt.linalg.pinv(ours, rcond, rtol=rcond)


@pytest.mark.parametrize("tol", [10.0, 0.5, 1e-3, 1e-6, 1e-12])
def test_matrix_rank_takes_tol_as_torch(tol):
    torch = torch_or_skip()
    ours, theirs = _nearly_singular(torch)
    want = int(torch.linalg.matrix_rank(theirs, tol))
    assert int(gt.linalg.matrix_rank(ours, tol)) == int(gt.linalg.matrix_rank(ours, tol=tol)) == want
    with pytest.raises(TypeError):
        gt.linalg.matrix_rank(ours, tol, atol=tol)


@pytest.mark.parametrize("args", [(), (True,), ((0, 2),), ((1, 2), True)])
def test_nuclear_norm_as_torch(args):
    torch = torch_or_skip()
    data = np.random.default_rng(4).standard_normal((2, 3, 4))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")        # torch's deprecation of its top-level nuclear_norm
        want = torch.nuclear_norm(torch.tensor(data), *args)
    got = gt.nuclear_norm(gt.tensor(data), *args)
    assert got.shape == tuple(want.shape)
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-12)
    with pytest.raises(RuntimeError):
        gt.nuclear_norm(gt.zeros(3))


# ---- float16 data stays float16, as torch's ---------------------------------------------------------
def test_float16_arrays_and_tensors_keep_their_dtype_as_torch():
    torch = torch_or_skip()
    a = np.array([1.5, -2.0, 65504.0], np.float16)
    shared = gt.from_numpy(a)
    assert shared.dtype == gt.float16 == gt.tensor(a).dtype == gt.as_tensor(a).dtype
    assert str(torch.from_numpy(a).dtype) == "torch.float16" == str(torch.tensor(a).dtype)
    a[0] = 3.0                                       # from_numpy shares memory, as torch's
    assert shared[0].item() == 3.0 and gt.tensor(a)[2].item() == 65504.0
    half = gt.tensor(torch.tensor([0.5, 1.0], dtype=torch.float16))
    assert half.dtype == gt.float16 and half.tolist() == [0.5, 1.0]
