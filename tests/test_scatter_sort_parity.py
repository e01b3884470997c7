"""Scatter/gather-style and ordering ops beside torch, for the differences a differential fuzzer
found: accumulating writes into bool tensors, the gradient of ``scatter_reduce(..., "prod")``,
the deprecated ``scatter(..., reduce=)``, ``gather`` on 0-d tensors and its dim check, the
index ``kthvalue`` reports among tied values, and ``topk`` of a 0-d tensor."""

import warnings

import numpy as np
import pytest

import gt
from helpers import compare_with_torch, torch_or_skip

RNG = np.random.default_rng(0)
TIES = RNG.integers(-1, 2, (4, 5)).astype(np.float64)          # zeros and repeated values
INDEX = RNG.integers(0, 4, (4, 5))


def _same(ours, theirs):
    assert str(ours.dtype).split(".")[-1] == str(theirs.dtype).split(".")[-1]
    assert tuple(ours.shape) == tuple(theirs.shape)
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())


@pytest.mark.parametrize("call", [
    lambda L, x, s: x.index_add(0, L.tensor([0, 0, 2]), s[:3]),
    lambda L, x, s: x.index_put((L.tensor([1, 1, 0]),), s[:3], accumulate=True),
    lambda L, x, s: x.index_put((x,), L.tensor(True), accumulate=True),
    lambda L, x, s: x.clone().put_(L.tensor([0, 4, 4, -1]), s[0, :4], accumulate=True),
])
def test_accumulating_writes_into_bool_tensors(call):
    torch = torch_or_skip()
    x, s = RNG.random((3, 5)) < 0.5, RNG.random((4, 5)) < 0.5
    _same(call(gt, gt.tensor(x), gt.tensor(s)), call(torch, torch.tensor(x), torch.tensor(s)))


@pytest.mark.parametrize("include_self", [True, False])
@pytest.mark.parametrize("dim", [0, -1])
def test_scatter_reduce_prod_gradient_with_zero_factors(include_self, dim):
    index = INDEX if dim == 0 else RNG.integers(0, 5, (4, 5))
    src = RNG.integers(-1, 2, (4, 5)).astype(np.float64)          # one, two or no zeros per position
    for dtype in ("float64", "float32"):
        compare_with_torch(lambda x, i, s: x.scatter_reduce(dim, i, s, "prod", include_self=include_self), None,
                           TIES + (TIES == 1), index, src, dtype=dtype)


@pytest.mark.parametrize("include_self", [True, False])
def test_scatter_reduce_prod_second_derivative(include_self):
    torch = torch_or_skip()
    x, src = TIES + 0.5 * (TIES != 0), RNG.standard_normal((4, 5))
    src[0, 0] = 0.0                                             # one zero at its position
    u, v, w = (RNG.standard_normal(a.shape) for a in (x, x, src))
    found = []
    for L in (gt, torch):
        a, b = L.tensor(x, requires_grad=True), L.tensor(src, requires_grad=True)
        out = a.scatter_reduce(0, L.tensor(INDEX), b, "prod", include_self=include_self)
        ga, gb = L.autograd.grad((out * L.tensor(u)).sum(), [a, b], create_graph=True)
        found.append([t.detach().numpy() for t in L.autograd.grad((ga * L.tensor(v)).sum() + (gb * L.tensor(w)).sum(),
                                                                  [a, b])])
    for ours, theirs in zip(*found):
        np.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=1e-12)


def test_scatter_reduce_prod_refuses_a_second_derivative_through_two_zeros():
    # torch's second derivative refuses it too ("Double backward is unsupported for src when >1 zeros")
    x, src = gt.tensor([1.0, 2.0], requires_grad=True), gt.tensor([0.0, 0.0, 3.0], requires_grad=True)
    out = x.scatter_reduce(0, gt.tensor([0, 0, 1]), src, "prod")
    _, gs = gt.autograd.grad(out.sum(), [x, src], create_graph=True)
    np.testing.assert_array_equal(gs.detach().numpy(), [0.0, 0.0, 2.0])
    with pytest.raises(RuntimeError, match="Double backward is unsupported for src when >1 zeros"):
        gt.autograd.grad(gs.sum(), src)


@pytest.mark.parametrize("reduce", ["add", "multiply"])
def test_scatter_with_reduce(reduce):
    torch = torch_or_skip()
    x, i, s = TIES + 0.5, INDEX[:2], RNG.standard_normal((2, 5))
    for L, make in ((gt, gt.tensor), (torch, torch.tensor)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = [make(x).scatter(0, make(i), make(s), reduce=reduce),
                   make(x).scatter(1, make(i), 2.5, reduce=reduce),
                   make(x).scatter_(0, make(i), make(s), reduce=reduce),
                   make(x.astype(np.int64)).scatter(0, make(i), 3, reduce=reduce),
                   make(x > 0).scatter(0, make(i), make(s > 0), reduce=reduce),
                   L.scatter(make(np.array(2.0)), 0, make(np.array(0)), make(np.array(3.0)), reduce=reduce)]
        if L is gt:
            ours = out
    for a, b in zip(ours, out):
        assert str(a.dtype).split(".")[-1] == str(b.dtype).split(".")[-1] and tuple(a.shape) == tuple(b.shape)
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-12)
    with pytest.warns(UserWarning, match="reduce argument of torch.scatter with Tensor src is deprecated"):
        gt.tensor(x).scatter(0, gt.tensor(i), gt.tensor(s), reduce=reduce)


def test_scatter_with_reduce_gradient_and_bad_reduce():
    # torch's backward raises "not implemented"; gt's is scatter_reduce's (sum / prod)
    x, s = gt.tensor([1.0, 2.0, 3.0], requires_grad=True), gt.tensor([4.0, 5.0], requires_grad=True)
    with pytest.warns(UserWarning, match="deprecated"):
        x.scatter(0, gt.tensor([0, 0]), s, reduce="multiply").sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [20.0, 1.0, 1.0])
    np.testing.assert_allclose(s.grad.numpy(), [5.0, 4.0])
    with pytest.raises(RuntimeError, match="reduce argument must be either add or multiply"):
        gt.ones(3).scatter(0, gt.tensor([0]), 1.0, reduce="sum")


def test_gather_of_zero_dim_tensors():
    torch = torch_or_skip()
    for x, i in ((1.5, 0), (1.5, [0, 0]), ([1.0, 2.0, 3.0], 2)):
        for dim in (0, -1):
            compare_with_torch(lambda t, j: t.gather(dim, j), None, np.array(x), np.array(i))
    with pytest.raises(IndexError):
        gt.ones(2, 2).gather(5, gt.zeros(2, 2, dtype=gt.int64))        # torch's IndexError; gt read dim 1
    with pytest.raises(IndexError):
        torch.ones(2, 2).gather(5, torch.zeros(2, 2, dtype=torch.int64))
    with pytest.raises((ValueError, RuntimeError)):
        gt.ones(2, 2).gather(0, gt.zeros(2, 2, dtype=gt.bool))


@pytest.mark.parametrize("dtype", ["float64", "int64", "float32"])
def test_kthvalue_reports_torchs_index_among_ties(dtype):
    torch = torch_or_skip()
    rng = np.random.default_rng(1)
    for _ in range(40):
        shape = tuple(int(n) for n in rng.integers(1, 9, 2))
        x = rng.integers(0, 3, shape).astype(dtype)
        if dtype != "int64" and rng.random() < 0.3:
            x[rng.random(shape) < 0.3] = np.nan
        dim = int(rng.integers(-2, 2))
        k = int(rng.integers(1, shape[dim] + 1))
        for keepdim in (False, True):
            ours, theirs = gt.tensor(x).kthvalue(k, dim, keepdim), torch.tensor(x).kthvalue(k, dim, keepdim)
            _same(ours.indices, theirs.indices)
            np.testing.assert_array_equal(ours.values.numpy(), theirs.values.numpy())
    compare_with_torch(lambda t: t.kthvalue(2, 0).values, None, np.array([1.0, 1.0, 1.0, 0.0]))


@pytest.mark.parametrize("largest", [True, False])
def test_topk_of_a_zero_dim_tensor(largest):
    torch = torch_or_skip()
    for k in (0, 1):
        ours, theirs = gt.tensor(2.5).topk(k, largest=largest), torch.tensor(2.5).topk(k, largest=largest)
        _same(ours.values, theirs.values)
        _same(ours.indices, theirs.indices)


def test_bincount_dtype_of_half_weights():
    torch = torch_or_skip()
    for dtype in ("float16", "float32", "float64"):
        ours = gt.bincount(gt.tensor([0, 2, 2]), gt.tensor([0.5, 1.5, 2.0], dtype=getattr(gt, dtype)))
        theirs = torch.bincount(torch.tensor([0, 2, 2]), torch.tensor([0.5, 1.5, 2.0], dtype=getattr(torch, dtype)))
        _same(ours, theirs)


def test_put_refuses_a_source_of_another_dtype():
    torch = torch_or_skip()
    for L in (gt, torch):
        with pytest.raises(RuntimeError, match="self and source expected to have the same dtype"):
            L.zeros(3).put_(L.tensor([0]), L.tensor([1]))


def test_scatter_of_a_zero_dim_index_into_a_vector():
    compare_with_torch(lambda x, i, s: x.scatter(0, i, s), None, np.array([1.0, 2.0, 3.0]), np.array(1), np.array(5.0))
    compare_with_torch(lambda x, i, s: x.scatter_reduce(0, i, s, "amax"), None, np.array([1.0, 2.0, 3.0]),
                       np.array(2), np.array(5.0))
    compare_with_torch(lambda x, i: x.scatter(0, i, 7.0), None, np.array([1.0, 2.0, 3.0]), np.array(0))


@pytest.mark.parametrize("shape, dim", [((2, 0), 0), ((0, 0), 0), ((0, 3, 0), 1)])
def test_unique_along_a_dim_refuses_other_empty_dims(shape, dim):
    torch = torch_or_skip()
    for L in (gt, torch):
        for op in ("unique", "unique_consecutive"):
            with pytest.raises(RuntimeError, match="so unique cannot be applied"):
                getattr(L, op)(L.zeros(shape), dim=dim)
    _same(gt.zeros((0, 3)).unique(dim=0), torch.zeros((0, 3)).unique(dim=0))      # the empty dim itself: empty
