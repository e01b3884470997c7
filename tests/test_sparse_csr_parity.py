"""Sparse CSR tensors (gt/tensor/sparse_csr.py and beside it) beside torch 2.13: construction with
torch's invariant checks, repr, conversions to and from dense and COO, the elementwise ops torch
runs on CSR, sums, adds, products with dense tensors and sparse @ sparse (COO x COO, CSR x CSR)
with their gradients (float64, 1e-10), and torch's refusals. On a mesh of several devices sparse
tensors are refused."""

import warnings

import numpy as np
import pytest

import gt
from gt.sharding.mesh import get_mesh
from helpers import torch_or_skip

MESH = get_mesh().size > 1
dense_only = pytest.mark.skipif(MESH, reason="sparse tensors are refused on a mesh (tested below)")
CROW, COL, VAL = [0, 2, 3, 5], [0, 2, 1, 0, 2], [1.0, -2.0, 3.0, 4.0, 0.5]
D = np.random.default_rng(0).normal(size=(3, 2))
W = np.random.default_rng(1).normal(size=(3, 3))


def _torch():
    torch = torch_or_skip()
    warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
    warnings.filterwarnings("ignore", message="Sparse invariant checks")
    return torch


def _csr(m, requires_grad=False, dtype=None, idx="int64"):
    i = getattr(m, idx)
    return m.sparse_csr_tensor(m.tensor(CROW, dtype=i), m.tensor(COL, dtype=i), m.tensor(VAL, dtype=dtype or m.float64),
                               (3, 3), requires_grad=requires_grad)


def _same_csr(g, t, tol=1e-12):
    assert g.layout == gt.sparse_csr and t.layout == t.layout and g.is_sparse_csr and not g.is_sparse
    assert g.shape == tuple(t.shape) and g._nnz() == t._nnz() and str(g.dtype)[3:] == str(t.dtype)[6:]
    for a, b in ((g.crow_indices(), t.crow_indices()), (g.col_indices(), t.col_indices())):
        assert str(a.dtype)[3:] == str(b.dtype)[6:]
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    np.testing.assert_allclose(g.values().detach().numpy(), t.values().detach().numpy(), rtol=tol, atol=tol)


def _same_coo(g, t):
    assert g.is_sparse and t.is_sparse and g.shape == tuple(t.shape) and g.is_coalesced() == t.is_coalesced()
    np.testing.assert_array_equal(g._indices().numpy(), t._indices().numpy())
    np.testing.assert_allclose(g._values().detach().numpy(), t._values().detach().numpy(), rtol=1e-12, atol=1e-12)


def _same(g, t):
    if t.layout == _torch().sparse_csr:
        _same_csr(g, t)
    elif t.is_sparse:
        _same_coo(g, t)
    else:
        assert not g.is_sparse and not g.is_sparse_csr
        np.testing.assert_allclose(g.detach().numpy(), t.detach().numpy(), rtol=1e-12, atol=1e-12)


@dense_only
def test_construction_repr_attributes_and_index_dtypes_are_torch_s():
    torch = _torch()
    for dtype, idx in (("float32", "int64"), ("float64", "int32"), ("int64", "int64"), ("bool", "int32")):
        g = _csr(gt, dtype=getattr(gt, dtype), idx=idx)
        t = _csr(torch, dtype=getattr(torch, dtype), idx=idx)
        assert repr(g).replace("gt.", "torch.") == repr(t)
        _same_csr(g, t)
        assert (g.is_sparse, g.is_sparse_csr, g.sparse_dim(), g.dense_dim(), str(g.layout)) == \
               (False, True, 2, 0, "torch.sparse_csr")
    cases = [lambda m: m.sparse_csr_tensor(CROW, COL, VAL),
             lambda m: m.sparse_csr_tensor(m.tensor([0, 0, 0]), m.tensor([], dtype=m.int64), m.tensor([]), (2, 2)),
             lambda m: m.sparse_csr_tensor(m.tensor([[0, 1, 2, 2], [0, 0, 1, 2]]), m.tensor([[0, 2], [1, 0]]),
                                           m.tensor([[1.0, 2], [3, 4]]), (2, 3, 3)),
             lambda m: _csr(m, requires_grad=True),
             lambda m: m.sparse_csr_tensor(CROW, COL, VAL, dtype=m.float64)]
    for f in cases:
        g, t = f(gt), f(torch)
        assert repr(g).replace("gt.", "torch.") == repr(t)
        _same_csr(g, t)
        np.testing.assert_array_equal(g.to_dense().detach().numpy(), t.to_dense().detach().numpy())
    assert gt.tensor([1.0]).is_sparse_csr is False and gt.sparse_csr != gt.sparse_coo


@dense_only
@pytest.mark.parametrize("case, match", [
    (dict(crow=[0, 2, 3, 6]), r"crow_indices\[\.\.\., -1\] == nnz"),
    (dict(crow=[1, 2, 3, 5]), r"crow_indices\[\.\.\., 0\] == 0"),
    (dict(crow=[0, 3, 2, 5]), "sorted and distinct"),
    (dict(col=[0, 2, 1, 0, 3]), "0 <= col_indices < ncols"),
    (dict(col=[0, 2, 1, 0, -1]), "0 <= col_indices < ncols"),
    (dict(col=[2, 0, 1, 0, 2]), "sorted and distinct"),
    (dict(col=[0, 0, 1, 0, 2]), "sorted and distinct"),
    (dict(size=(4, 3)), "number of rows"),
    (dict(size=(3, 2)), "0 <= col_indices < ncols"),
    (dict(size=(3,)), "dimensionality"),
    (dict(size=(3, 3, 2)), "dimensionality"),
    (dict(val=VAL[:4]), "nnz"),
    (dict(crow_dtype="int32"), "same dtype"),
    (dict(crow_dtype="float32"), "same dtype"),
])
def test_construction_errors_are_torch_s(case, match):
    torch = _torch()
    for m in (torch, gt):
        crow = m.tensor(case.get("crow", CROW), dtype=getattr(m, case.get("crow_dtype", "int64")))
        args = (crow, m.tensor(case.get("col", COL)), m.tensor(case.get("val", VAL)), case.get("size", (3, 3)))
        with pytest.raises(RuntimeError, match=match):
            m.sparse_csr_tensor(*args, check_invariants=True)


@dense_only
def test_conversions_are_torch_s():
    torch = _torch()
    x = np.array([[0.0, 1.5, 0.0], [2.0, 0.0, -1.0]])
    xb = np.array([[[1.0, 0], [0, 2]], [[0, 3.0], [4, 0]]])
    coo = [[[0, 1, 1, 0], [2, 0, 2, 2]], [3.0, 4, 5, 1]]
    cases = [lambda m: m.tensor(x).to_sparse_csr(), lambda m: m.tensor(x).to_sparse(layout=m.sparse_csr),
             lambda m: m.tensor(x.astype(np.int64)).to_sparse_csr(), lambda m: m.tensor(xb).to_sparse_csr(),
             lambda m: m.sparse_coo_tensor(*coo, (2, 3)).to_sparse_csr(),
             lambda m: m.sparse_coo_tensor(*coo, (2, 3)).to_sparse(layout=m.sparse_csr),
             lambda m: _csr(m).to_sparse_coo(), lambda m: _csr(m).to_sparse(), lambda m: _csr(m).to_sparse_csr(),
             lambda m: m.tensor(xb).to_sparse_csr().to_sparse_coo(), lambda m: _csr(m).to_dense(),
             lambda m: _csr(m).to(m.float32), lambda m: _csr(m).float(), lambda m: _csr(m).int()]
    for f in cases:
        _same(f(gt), f(torch))
    for m in (gt, torch):
        with pytest.raises(RuntimeError, match="same number of specified elements per batch"):
            m.tensor([[[1.0, 0], [0, 0]], [[1, 1], [0, 0]]]).to_sparse_csr()
        with pytest.raises(RuntimeError, match="sparse_dim"):
            m.sparse_coo_tensor([[0, 1], [1, 0], [0, 0]], [1.0, 2], (2, 2, 2)).to_sparse_csr()


@dense_only
def test_elementwise_sums_and_adds_are_torch_s():
    torch = _torch()
    other = {m: m.sparse_csr_tensor([0, 1, 1, 3], [1, 0, 2], [7.0, -1, 2], (3, 3), dtype=m.float64)
             for m in (gt, torch)}
    ops = ["abs", "sqrt", "sin", "tanh", "relu", "sign", "sgn", "floor", "ceil", "round", "trunc", "frac", "erf",
           "expm1", "log1p", "asin", "atan", "sinh", "tan", "asinh", "atanh", "erfinv", "deg2rad", "rad2deg", "isnan",
           "isinf", "signbit", "isposinf", "isneginf", "neg", "negative", "positive", "angle", "conj_physical"]
    cases = [(lambda m, op=op: getattr(_csr(m), op)()) for op in ops]
    cases += [lambda m: -_csr(m), lambda m: abs(_csr(m)), lambda m: _csr(m) * 2.5, lambda m: 3 * _csr(m),
              lambda m: _csr(m).mul(m.tensor(2.0, dtype=m.float64)), lambda m: _csr(m) * m.tensor(W),
              lambda m: m.tensor(W) * _csr(m), lambda m: _csr(m) * other[m], lambda m: _csr(m) + other[m],
              lambda m: other[m] + _csr(m), lambda m: _csr(m).add(other[m], alpha=2), lambda m: _csr(m) + _csr(m),
              lambda m: _csr(m) + m.tensor(W), lambda m: m.tensor(W) + _csr(m), lambda m: _csr(m).sum(),
              lambda m: _csr(m).sum(0, keepdim=True), lambda m: _csr(m).sum(1, keepdim=True),
              lambda m: _csr(m).sum(dtype=m.float32), lambda m: _csr(m).mul_(2), lambda m: _csr(m).zero_(),
              lambda m: _csr(m).clone(), lambda m: _csr(m).detach()]
    small = {m: _csr(m, idx="int32") for m in (gt, torch)}      # which results keep int32 indices: torch's
    other32 = {m: m.sparse_csr_tensor([0, 1, 1, 3], [1, 0, 2], [7.0, -1, 2], dtype=m.float64).to_sparse_coo()
               .to_sparse_csr() for m in (gt, torch)}
    cases += [lambda m: small[m] + other[m], lambda m: small[m] * other[m], lambda m: small[m].sum(0, keepdim=True),
              lambda m: -small[m], lambda m: small[m] * 2, lambda m: small[m] * other32[m]]
    for f in cases:
        _same(f(gt), f(torch))
    # CSR @ CSR: torch 2.13's kernel lists each row's columns in the order it first meets them (here
    # [1, 0, 2]: unsorted, against its own invariants); gt's are sorted: the same matrix, int64 indices
    g, t = small[gt] @ other[gt], small[torch] @ other[torch]
    _same_csr(g, t.to_dense().to_sparse_csr())      # no explicit zeros here
    assert t.col_indices().tolist() == [1, 0, 2, 1, 0, 2] and g.col_indices().tolist() == [0, 1, 2, 0, 1, 2]


@dense_only
@pytest.mark.parametrize("name", ["exp", "cos", "sigmoid", "square", "sub", "div", "pow", "sum(0)", "coalesce",
                                  "indices", "reshape", "mean", "batched @", "csr @ coo", "csr * row"])
def test_refusals_are_runtime_errors_as_torch_s(name):
    torch = _torch()
    for m in (torch, gt):
        s = _csr(m)
        calls = {"sub": lambda: s - s, "div": lambda: s / 2, "pow": lambda: s ** 2, "sum(0)": lambda: s.sum(0),
                 "reshape": lambda: s.reshape(9), "csr @ coo": lambda: s @ s.to_sparse_coo(),
                 "csr * row": lambda: s * m.ones(1, 3, dtype=m.float64),
                 "batched @": lambda: m.tensor(np.ones((2, 3, 3))).to_sparse_csr() @ m.ones(3, 2, dtype=m.float64)}
        with pytest.raises(RuntimeError):
            calls.get(name, lambda: getattr(s, name)())()


def _grads(m, how, w):
    s = _csr(m, requires_grad=True)
    d = m.tensor(D, requires_grad=True)
    fns = {"@": lambda: s @ d, "mm": lambda: s.mm(d), "gt.mm": lambda: m.mm(s, d), "matmul": lambda: m.matmul(s, d),
           "addmm": lambda: m.addmm(m.ones(3, 2, dtype=m.float64), s, d, beta=0.5, alpha=2.0),
           "sparse.mm": lambda: m.sparse.mm(s, d), "to_dense": lambda: s.to_dense() @ d,
           "sparse.addmm": lambda: m.sparse.addmm(m.ones(3, 2, dtype=m.float64), s, d, beta=0.5, alpha=2.0),
           "dense @": lambda: d.t() @ s, "vector": lambda: (s @ d[:, 0]).unsqueeze(1) + (d[:, 1] @ s).unsqueeze(1),
           "to_sparse_coo": lambda: m.sparse.mm(s.to_sparse_coo(), d), "mul": lambda: (s * 2.0).to_dense() @ d,
           "sum": lambda: s.sum() * d, "+ dense": lambda: (s + m.tensor(W)) @ d,
           "dense +": lambda: (m.tensor(W) + s) @ d,
           "+ csr": lambda: (s + s.detach().mul(m.tensor(W))).to_dense() @ d,
           "+ other": lambda: s.add(m.sparse_csr_tensor([0, 1, 1, 3], [1, 0, 2], [7.0, -1, 2], dtype=m.float64),
                                    alpha=2).to_dense() @ d,
           "leaf + leaf": lambda: (s + _csr(m, requires_grad=True)).to_dense() @ d}
    y = fns[how]()
    (y * m.tensor(w[:y.shape[0], :y.shape[1]])).sum().backward()
    return y, s.grad, d.grad


@dense_only
@pytest.mark.parametrize("how", ["@", "mm", "gt.mm", "matmul", "addmm", "sparse.mm", "sparse.addmm", "to_dense",
                                 "dense @", "vector", "to_sparse_coo", "mul", "sum", "+ dense", "dense +", "+ csr",
                                 "+ other", "leaf + leaf"])
def test_products_and_gradients_are_torch_s(how):
    torch = _torch()
    got, want = _grads(gt, how, W), _grads(torch, how, W)
    for g, t in zip(got, want):
        _same(g, t)


@dense_only
def test_gradients_of_values_and_accumulation_are_torch_s():
    torch = _torch()
    got = {}
    for m in (torch, gt):
        v = m.tensor(VAL, dtype=m.float64, requires_grad=True)
        s = m.sparse_csr_tensor(m.tensor(CROW), m.tensor(COL), v, (3, 3))
        ((s @ m.tensor(D)) ** 2).sum().backward()
        leaf, dense = _csr(m, requires_grad=True), _csr(m, requires_grad=True)
        for _ in range(2):
            (leaf.to_dense() * m.tensor(W)).sum().backward()
            (dense @ m.tensor(D)).sum().backward()
        got[m] = (v.grad, leaf.grad, dense.grad)
    for g, t in zip(got[gt], got[torch]):
        _same(g, t)


def _sparse_pair(m, layout):
    a = m.sparse_coo_tensor([[0, 1, 1, 1], [1, 0, 2, 0]], [1.0, -1, 2, 0.5], (2, 3), dtype=m.float64)
    b = m.sparse_coo_tensor([[1, 0, 2], [0, 0, 1]], [1.0, 1, 3], (3, 2), dtype=m.float64)
    a, b = a.coalesce().detach(), b.coalesce().detach()
    if layout == "csr":
        a, b = a.to_sparse_csr(), b.to_sparse_csr()
    return a.requires_grad_(), b.requires_grad_()


@dense_only
@pytest.mark.parametrize("layout", ["coo", "csr"])
def test_sparse_at_sparse_values_layouts_and_gradients_are_torch_s(layout):
    torch = _torch()
    got = {}
    for m in (torch, gt):
        a, b = _sparse_pair(m, layout)
        y = a @ b
        (y.to_dense() * m.tensor(W[:2, :2])).sum().backward()
        got[m] = (y, a.grad, b.grad, m.sparse.mm(a, b), m.mm(a, b))
        cancel = {"coo": lambda t: t, "csr": lambda t: t.to_sparse_csr()}[layout]
        one = cancel(m.sparse_coo_tensor([[0, 0], [0, 1]], [1.0, -1], (1, 2)))
        got[m] += (one @ cancel(m.sparse_coo_tensor([[0, 1], [0, 0]], [1.0, 1], (2, 1))),)   # an explicit zero
        if layout == "coo":      # uncoalesced operands
            u = m.sparse_coo_tensor([[0, 0, 1], [1, 1, 0]], [1.0, 2, 3], (2, 2))
            got[m] += (u @ u,)
    for g, t in zip(got[gt], got[torch]):
        _same(g, t)
    for m in (torch, gt):
        a, b = _sparse_pair(m, layout)
        for bad in (lambda: a @ a, lambda: a @ b.float(), lambda: a @ (b.to_sparse_csr() if layout == "coo" else
                                                                      b.to_sparse_coo())):
            with pytest.raises(RuntimeError):
                bad()


@dense_only
def test_sparse_mm_of_two_sparse_gives_a_leaf_its_own_entries():
    """torch.sparse.mm's gradient of a sparse leaf lies on its own entries (its sparse_mask), where
    ``@``'s holds the whole pattern of ``grad @ b^T``; gt gave gt.sparse.mm ``@``'s: nonzero values
    at (0, 0) of ``a`` and (0, 1) of ``b``, which neither stores."""
    torch = _torch()
    got = {}
    for m in (torch, gt):
        a, b = _sparse_pair(m, "coo")
        (m.sparse.mm(a, b).to_dense() * m.tensor(W[:2, :2])).sum().backward()
        got[m] = (a.grad.coalesce(), b.grad.coalesce())
    for g, t in zip(got[gt], got[torch]):
        _same(g, t)


@dense_only
def test_a_batched_leaf_gets_its_gradient_at_its_entries():
    """torch 2.13's backward of a batched CSR tensor's to_dense raises (no COO -> CSR for sparse_dim 3);
    gt's gradient is the upstream one at the stored positions, CSR on the leaf's pattern."""
    w = np.random.default_rng(2).normal(size=(2, 3, 3))
    b = gt.sparse_csr_tensor([[0, 1, 2, 2], [0, 0, 1, 2]], [[0, 2], [1, 0]], [[1.0, 2], [3, 4]], dtype=gt.float64,
                             requires_grad=True)
    (b.to_dense() * gt.tensor(w)).sum().backward()
    assert b.grad.is_sparse_csr and b.grad.crow_indices().tolist() == b.crow_indices().tolist()
    np.testing.assert_array_equal(b.grad.values().numpy(), [[w[0, 0, 0], w[0, 1, 2]], [w[1, 1, 1], w[1, 2, 0]]])


@dense_only
def test_what_gt_refuses_on_csr():
    s = _csr(gt)
    with pytest.raises(NotImplementedError, match=r"^permute: not supported on a sparse CSR tensor"):
        s.permute(1, 0)          # torch's: NotImplementedError (no as_strided for CSR)
    with pytest.raises(NotImplementedError, match="hybrid"):
        gt.tensor([[0.0, 1.0]]).to_sparse_csr(dense_dim=1)
    with pytest.raises(TypeError, match="layout"):
        gt.tensor([[0.0, 1.0]]).to_sparse(layout="torch.sparse_csc")      # torch's: a layout, no string
    assert s.to_sparse(layout=gt.strided).layout == gt.strided and gt.ones(1).to_sparse(layout=gt.strided).ndim == 1
    with pytest.raises(NotImplementedError, match="exp: not supported on a sparse CSR"):
        gt.exp(s)
    for s in (s, s.t()):
        with pytest.raises(RuntimeError, match="sparse.sum: expected a sparse COO tensor"):
            gt.sparse.sum(s)         # torch refuses it too


@pytest.mark.skipif(not MESH, reason="needs GT_DEVICES > 1")
def test_sparse_csr_tensors_are_refused_on_a_mesh():
    with pytest.raises(NotImplementedError, match="sparse CSR tensors are not supported on a mesh"):
        gt.sparse_csr_tensor(CROW, COL, VAL, (3, 3))
    with pytest.raises(NotImplementedError, match="not supported on a mesh"):
        gt.tensor([[0.0, 1.0]]).to_sparse_csr()


@dense_only
@pytest.mark.parametrize("how", ["csr @", "@ csr", "csr sum", "csr to_dense", "csr addmm", "coo @", "@ coo", "coo sum",
                                 "coo sparse.mm", "coo leaf sum", "coo leaf sparse.sum", "coo leaf + coo",
                                 "coo leaf - coo", "dense + coo leaf"])
def test_gradients_through_to_sparse_and_sums_are_torch_s(how):
    """torch hands the dense tensor a sparse one was made from a dense gradient through products
    and sum() (ToSparseBackward passes it on), a masked one through to_dense and gt.sparse.mm."""
    torch = _torch()
    got = {}
    for m in (torch, gt):
        x = m.tensor(W * (np.abs(W) > 0.5), requires_grad=True)
        d = m.tensor(D)
        leaf = m.tensor(W * (np.abs(W) > 0.5)).to_sparse().requires_grad_()
        fns = {"csr @": lambda: x.to_sparse_csr() @ d, "@ csr": lambda: d.t() @ x.to_sparse_csr(),
               "csr sum": lambda: x.to_sparse_csr().sum(), "csr to_dense": lambda: x.to_sparse_csr().to_dense(),
               "csr addmm": lambda: m.addmm(m.ones(3, 2, dtype=m.float64), x.to_sparse_csr(), d),
               "coo @": lambda: x.to_sparse() @ d, "@ coo": lambda: d.t() @ x.to_sparse(),
               "coo sum": lambda: x.to_sparse().sum(), "coo sparse.mm": lambda: m.sparse.mm(x.to_sparse(), d),
               "coo leaf sum": lambda: leaf.sum(), "coo leaf sparse.sum": lambda: m.sparse.sum(leaf),
               "coo leaf + coo": lambda: (leaf + m.tensor(D @ D.T).to_sparse()).to_dense(),
               "coo leaf - coo": lambda: (leaf - m.sparse_coo_tensor([[0, 2], [1, 1]], [1.0, 3], (3, 3),
                                                                     dtype=m.float64).coalesce()).to_dense(),
               "dense + coo leaf": lambda: m.tensor(W) + leaf}
        y = fns[how]()
        (y * m.tensor(np.arange(1.0, 1 + y.numel()).reshape(y.shape))).sum().backward()
        got[m] = (y, x.grad if x.grad is not None else leaf.grad)
    for g, t in zip(got[gt], got[torch]):      # a COO leaf's gradient: torch's entries, not its coalesced flag
        _same(g.coalesce() if g.is_sparse else g, t.coalesce() if t.is_sparse else t)
