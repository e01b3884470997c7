"""Sparse products on the engines' sparse kernels (gt/ops/sparse_products.py): operands the
parity tests do not reach (uncoalesced COO entries that repeat a position and come unsorted, int32
CSR indices with empty rows, no entries at all), their gradients, and ``create_graph`` gradients
of gradients, against torch's dense products of the same matrix (``index_put`` of the values:
torch's own formulas, float64 to 1e-10, float32 to 1e-5)."""

import warnings

import numpy as np
import pytest

import gt
from gt.sharding.mesh import get_mesh
from helpers import torch_or_skip

pytestmark = pytest.mark.skipif(get_mesh().size > 1, reason="sparse tensors are refused on a mesh")
R = np.random.default_rng(0)
# (rows, cols) of 6 x 5 matrices: repeats and unsorted entries (COO), empty rows 0 and 4 (CSR), none
CASES = {"uncoalesced coo": ([3, 1, 3, 5, 1, 3], [2, 0, 2, 4, 0, 1]),
         "int32 csr": ([1, 1, 2, 3, 3, 5], [0, 3, 1, 2, 4, 0]),
         "nnz 0": ([], [])}


def _torch():
    torch = torch_or_skip()
    warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
    warnings.filterwarnings("ignore", message="Sparse invariant checks")
    return torch


def _sparse(m, case, values):
    rows, cols = CASES[case]
    if m is not gt:          # torch's reference: the dense matrix of the entries, repeats added
        z = m.zeros((6, 5), dtype=values.dtype)
        return z.index_put((m.tensor(rows, dtype=m.int64), m.tensor(cols, dtype=m.int64)), values, accumulate=True)
    if case == "int32 csr":
        crow = np.searchsorted(rows, np.arange(7))
        return gt.sparse_csr_tensor(gt.tensor(crow, dtype=gt.int32), gt.tensor(cols, dtype=gt.int32), values, (6, 5))
    return gt.sparse_coo_tensor(gt.tensor([rows, cols], dtype=gt.int64), values, (6, 5))


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("case", list(CASES))
def test_products_with_dense_and_their_gradients_are_torch_s(case, dtype):
    torch = _torch()
    tol = 1e-10 if dtype == "float64" else 1e-5
    vals, d, e = R.normal(size=len(CASES[case][0])), R.normal(size=(5, 3)), R.normal(size=(4, 6))
    got = {}
    for m in (torch, gt):
        dt = getattr(m, dtype)
        v, dm, em = (m.tensor(x, dtype=dt, requires_grad=True) for x in (vals, d, e))
        s = _sparse(m, case, v)
        first = (s @ dm).sin().sum() + (em @ s).cos().sum()
        if m is gt:
            first = first + (gt.sparse.mm(s, dm) * 0.5).sum() + gt.sparse.addmm(dm[:1, :1], s, dm, alpha=2.0).sum()
        else:
            first = first + (s @ dm * 0.5).sum() + (dm[:1, :1] + 2.0 * (s @ dm)).sum()
        grads = m.autograd.grad(first, (v, dm, em), create_graph=True)
        sum(g.square().sum() for g in grads).backward()
        got[m] = [first, *grads, v.grad, dm.grad, em.grad]
    for g, t in zip(got[gt], got[torch]):
        assert g.shape == tuple(t.shape)
        np.testing.assert_allclose(g.detach().numpy(), t.detach().numpy(), rtol=tol, atol=tol)


def test_a_leaf_s_dense_gradient_and_the_dense_operand_s_gradient_of_its_gradient_are_torch_s():
    torch = _torch()
    w, d = R.normal(size=(5, 5)) * (R.random((5, 5)) < 0.4), R.normal(size=(5, 3))
    got = {}
    for m in (torch, gt):
        s = m.tensor(w, requires_grad=True) if m is torch else gt.tensor(w).to_sparse_csr().requires_grad_()
        dm = m.tensor(d, requires_grad=True)
        first = (s @ dm).square().sum() + (dm[:, :2].t() @ s).exp().sum()
        (gd,) = m.autograd.grad(first, (dm,), create_graph=True)
        gd.square().sum().backward()
        got[m] = (first, gd, s.grad, dm.grad)
    for g, t in zip(got[gt], got[torch]):
        np.testing.assert_allclose(g.detach().numpy(), t.detach().numpy(), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("layout", ["coo", "csr"])
def test_sparse_at_sparse_of_values_that_require_grad_and_its_second_gradient_are_torch_s(layout):
    torch = _torch()
    ar, ac = [0, 2, 0, 1, 2, 2], [1, 0, 1, 2, 2, 0]          # a repeats (0, 1)
    br, bc = [1, 2, 0, 2], [0, 0, 2, 1]
    av, bv = np.array([1.0, 2, 1, 3, -1, 0.5]), np.array([1.5, -1.0, 2, 0.25])
    got = {}
    for m in (torch, gt):
        a_v, b_v = m.tensor(av, requires_grad=True), m.tensor(bv, requires_grad=True)
        if m is torch:
            a = m.zeros(3, 3, dtype=m.float64).index_put((m.tensor(ar), m.tensor(ac)), a_v, accumulate=True)
            b = m.zeros(3, 3, dtype=m.float64).index_put((m.tensor(br), m.tensor(bc)), b_v, accumulate=True)
            ref = torch.sparse.mm(a.detach().to_sparse(), b.detach().to_sparse()).coalesce()
            idx = ref.indices()
            y = (a @ b)[idx[0], idx[1]]
        else:
            a = gt.sparse_coo_tensor(gt.tensor([ar, ac]), a_v, (3, 3))
            b = gt.sparse_coo_tensor(gt.tensor([br, bc]), b_v, (3, 3)).coalesce()
            if layout == "csr":
                a, b = a.coalesce().to_sparse_csr(), b.to_sparse_csr()
            out = a @ b if layout == "coo" else (a @ b).to_sparse_coo()
            idx, y = out.indices(), out.values()
        first = (y * m.arange(1.0, y.shape[0] + 1, dtype=m.float64)).sin().sum()
        ga, gb = m.autograd.grad(first, (a_v, b_v), create_graph=True)
        (ga.square().sum() + gb.cos().sum()).backward()
        got[m] = (idx, y, ga, gb, a_v.grad, b_v.grad)
    for g, t in zip(got[gt], got[torch]):
        np.testing.assert_allclose(g.detach().numpy(), t.detach().numpy(), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("dtype", ["float64", "float32", "int64"])
@pytest.mark.parametrize("scipy", [True, False])
def test_csr_at_csr_is_torch_s_on_its_pattern(dtype, scipy, monkeypatch):
    """CSR @ CSR builds its CSR result from the engine kernel's arrays (int32 indices and empty rows
    in, explicit zeros where terms cancel, an operand without entries); the numpy engine's numpy-only
    walk too, where scipy is missing; integers (which torch refuses) on gt's ops. torch's result lists
    each row's columns unsorted: compared through its entries sorted."""
    torch = _torch()
    if not scipy:
        if gt.get_backend() != "numpy":
            pytest.skip("scipy is the numpy engine's")
        monkeypatch.setattr("gt.backend.numpy_sparse._scipy", lambda: None)
    a = np.array([[0, 0, 0, 0, 0], [1, 0, 1, 0, 0], [0, 3, 0, 0, -1], [0, 0, 0, 0, 0], [2, 0, 0, 1, 0],
                  [0, 0, 0, 0, 5]])
    b = np.array([[1, 0, 2, 0], [0, 1, 0, 0], [-1, 0, 0, 1], [0, 0, 0, 0], [3, 0, 0, 0]])
    for i, (x, y) in enumerate(((a, b), (a, np.zeros((5, 4))), (a[:, :0], b[:0]))):
        got = gt.tensor(x, dtype=getattr(gt, dtype)).to_sparse_csr()
        got = gt.sparse_csr_tensor(got.crow_indices().int(), got.col_indices().int(), got.values(), got.shape)
        out = got @ gt.tensor(y, dtype=getattr(gt, dtype)).to_sparse_csr()
        tdt = getattr(torch, dtype.replace("int64", "float64"))      # torch refuses integer sparse products
        want = (torch.tensor(x, dtype=tdt).to_sparse_csr() @ torch.tensor(y, dtype=tdt).to_sparse_csr()).to_sparse_coo()
        want = torch.sparse_coo_tensor(want.indices(), want.values(), want.shape).coalesce()    # sorted
        assert out.is_sparse_csr and out.shape == tuple(want.shape) and str(out.crow_indices().dtype) == "gt.int64"
        assert out._nnz() == want._nnz() and out.col_indices().dtype == out.crow_indices().dtype
        np.testing.assert_array_equal(out.to_sparse_coo().indices().numpy(), want.indices().numpy())
        np.testing.assert_allclose(out.values().numpy(), want.values().numpy(), rtol=1e-6, atol=1e-6)
        np.testing.assert_array_equal(out.crow_indices().numpy(), want.to_sparse_csr().crow_indices().numpy())
        if i == 0:          # (1, 0): 1 * 1 + 1 * -1 cancels, kept on the pattern
            assert out.col_indices().tolist()[:3] == [0, 2, 3] and out.values().tolist()[0] == 0
