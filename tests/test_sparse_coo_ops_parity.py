"""More of torch's sparse COO API beside torch (gt/tensor/sparse_elementwise.py and beside it):
dense @ sparse (``mm``, ``@``, ``matmul``, ``gt.sparse.mm``), the ops that keep zeros, ``pow`` by a
number, ``mul`` by a dense or a sparse tensor, ``sparse_mask``, ``narrow_copy``, ``index_select``,
``gt.sparse.softmax``/``log_softmax``, hybrid tensors; values, layouts and gradients (where torch's
backward raises, gt's gradient is checked against torch's of the same values made dense)."""

import warnings

import numpy as np
import pytest

import gt
from gt.sharding.mesh import get_mesh
from helpers import torch_or_skip

pytestmark = pytest.mark.skipif(get_mesh().size > 1, reason="sparse tensors are refused on a mesh")
IDX = [[0, 1, 1, 0, 2], [2, 0, 2, 2, 1]]
VAL = [0.3, 0.4, 0.5, 0.1, -0.2]
D = np.arange(6.0).reshape(2, 3) / 5
W = np.arange(9.0).reshape(3, 3) - 4


def _torch():
    torch = torch_or_skip()
    warnings.filterwarnings("ignore", message="Sparse invariant checks")
    warnings.filterwarnings("ignore", message=".*received self with sparse layout")
    return torch


def _s(m, requires_grad=False, coalesced=False):
    s = m.sparse_coo_tensor(m.tensor(IDX), m.tensor(VAL, dtype=m.float64), (3, 3))
    s = s.coalesce() if coalesced else s
    return s.detach().requires_grad_(True) if requires_grad else s


def _same(g, t, coalesced=True):
    """Entry by entry (the layout too) and the coalesced flag."""
    assert g.is_sparse and t.is_sparse and g.shape == tuple(t.shape) and g.dtype.name == str(t.dtype).split(".")[1]
    np.testing.assert_array_equal(g._indices().numpy(), t._indices().numpy())
    np.testing.assert_allclose(g._values().detach().numpy(), t._values().detach().numpy(), rtol=1e-7, atol=1e-12)
    if coalesced:
        assert g.is_coalesced() == t.is_coalesced()


def _dense_grad(sparse_grad):
    return sparse_grad.to_dense().numpy() if sparse_grad.is_sparse else sparse_grad.numpy()


@pytest.mark.parametrize("how", ["mm", "@", "matmul", "method", "sparse.mm", "vector"])
def test_dense_at_sparse_values_and_gradients_are_torch_s(how):
    torch = _torch()
    calls = {"mm": lambda m, d, s: m.mm(d, s), "@": lambda m, d, s: d @ s, "matmul": lambda m, d, s: m.matmul(d, s),
             "method": lambda m, d, s: d.mm(s), "sparse.mm": lambda m, d, s: m.sparse.mm(d, s),
             "vector": lambda m, d, s: d[1] @ s}
    got = []
    for m in (torch, gt):
        s, d = _s(m, requires_grad=True), m.tensor(D, requires_grad=True)
        out = calls[how](m, d, s)
        (out * out).sum().backward()
        got.append((out.detach().numpy(), d.grad.numpy(), s.grad.is_sparse, _dense_grad(s.grad)))
    (o, dg, sparse, sg), (to, tdg, tsparse, tsg) = got[1], got[0]
    np.testing.assert_allclose(o, to, rtol=1e-12)
    np.testing.assert_allclose(dg, tdg, rtol=1e-12)
    assert sparse == tsparse == (how == "sparse.mm")   # only gt.sparse.mm keeps the gradient on the stored entries
    np.testing.assert_allclose(sg, tsg, rtol=1e-12)


ZERO_KEEPING = {"neg": lambda s: s.neg(), "abs": lambda s: s.abs(), "square": lambda s: s.square(),
                "pow2": lambda s: s.pow(2), "pow-1": lambda s: s ** -1, "relu": lambda s: s.relu(),
                "log1p": lambda s: s.log1p(), "sign": lambda s: s.sign(), "sqrt": lambda s: s.abs().sqrt(),
                "sin": lambda s: s.sin(), "tanh": lambda s: s.tanh(), "floor": lambda s: (s * 10).floor(),
                "asin": lambda s: s.asin(), "expm1": lambda s: s.expm1(), "erf": lambda s: s.erf()}


@pytest.mark.parametrize("name", sorted(ZERO_KEEPING))
@pytest.mark.parametrize("coalesced", [False, True])
def test_ops_that_keep_zeros_are_torch_s(name, coalesced):
    torch = _torch()
    f = ZERO_KEEPING[name]
    _same(f(_s(gt, coalesced=coalesced)), f(_s(torch, coalesced=coalesced)))
    # gradients: torch's where its backward runs, else torch's error type (no sparse backward for sqrt, sin, ...)
    s = _s(gt, requires_grad=True, coalesced=coalesced)
    t = _s(torch, requires_grad=True, coalesced=coalesced)
    try:
        (f(t).to_dense() ** 2 * torch.tensor(W)).sum().backward()
        expected = _dense_grad(t.grad)
    except (RuntimeError, NotImplementedError) as error:
        with pytest.raises(type(error), match="the backward of .* on a sparse COO tensor"):
            (f(s).to_dense() ** 2 * gt.tensor(W)).sum().backward()
        return
    (f(s).to_dense() ** 2 * gt.tensor(W)).sum().backward()
    assert s.grad.is_sparse
    np.testing.assert_allclose(_dense_grad(s.grad), expected, rtol=1e-6, atol=1e-12)


def test_pow_and_div_refusals_are_torch_s():
    torch = _torch()
    for m in (torch, gt):
        with pytest.raises(RuntimeError, match="cannot raise to zeroth power on sparse tensor"):
            _s(m).pow(0)
    with pytest.raises(NotImplementedError, match="^pow: .*Python number as the exponent"):
        _s(gt) ** gt.ones(3, 3)
    with pytest.raises(NotImplementedError, match="^div: "):
        _s(gt) / gt.ones(3, 3)
    with pytest.raises(NotImplementedError, match="^exp: not supported on a sparse COO tensor"):
        gt.exp(_s(gt))


@pytest.mark.parametrize("dense", ["full", "row", "column", "left"])
def test_mul_by_a_dense_tensor_is_torch_s_with_both_gradients(dense):
    torch = _torch()
    shapes = {"full": (3, 3), "row": (3,), "column": (3, 1), "left": (3, 3)}
    got = []
    for m in (torch, gt):
        s = _s(m, requires_grad=True)
        d = m.tensor(np.arange(np.prod(shapes[dense]), dtype=np.float64).reshape(shapes[dense]) - 2,
                     requires_grad=True)
        out = d * s if dense == "left" else s * d
        (out.to_dense() ** 2).sum().backward(inputs=[s] if m is torch and dense == "row" else None)
        if d.grad is None:         # torch's backward cannot sum a sparse gradient over broadcast rows
            (s.detach().to_dense() * d).pow(2).sum().backward()
        got.append((out, _dense_grad(s.grad), _dense_grad(d.grad)))     # torch's d.grad is sparse, gt's dense
    _same(got[1][0], got[0][0])
    np.testing.assert_allclose(got[1][1], got[0][1], rtol=1e-12)
    np.testing.assert_allclose(got[1][2], got[0][2], rtol=1e-12)


def test_mul_of_two_sparse_tensors_is_torch_s_intersection():
    torch = _torch()
    a_idx, b_idx = [[0, 1, 2, 1], [0, 1, 2, 1]], [[1, 2, 0, 2], [1, 1, 0, 0]]
    for ca in (False, True):
        for cb in (False, True):
            out = []
            for m in (torch, gt):
                a = m.sparse_coo_tensor(m.tensor(a_idx), m.tensor([1.0, 2.0, 3.0, 5.0]), (3, 3))
                b = m.sparse_coo_tensor(m.tensor(b_idx), m.tensor([10.0, 20.0, 30.0, 40.0]), (3, 3))
                a, b = (a.coalesce() if ca else a), (b.coalesce() if cb else b)
                out.append((a * b, b * a, _s(m) * _s(m)))
            for g, t in zip(out[1], out[0]):
                _same(g, t)
    s, v = _s(gt, requires_grad=True), _s(gt, requires_grad=True)
    (s * v).to_dense().sum().backward()
    np.testing.assert_allclose(s.grad.to_dense().numpy(), _s(gt, coalesced=True).to_dense().numpy(), rtol=1e-12)


def test_sparse_mask_narrow_copy_and_index_select_are_torch_s():
    torch = _torch()
    for coalesced in (False, True):
        got = []
        for m in (torch, gt):
            s, d = _s(m, coalesced=coalesced), m.tensor(W, requires_grad=True)
            masked = d.sparse_mask(s)
            masked.to_dense().pow(2).sum().backward()
            got.append([masked, d.grad.numpy(), s.narrow_copy(0, 1, 2), s.narrow_copy(1, 1, 2),
                        s.narrow_copy(1, 0, 1), s.index_select(0, m.tensor([2, 0, 0])),
                        s.index_select(1, m.tensor([2, 1])), m.index_select(s, 1, m.tensor([1, 1, 2, 0]))])
        for g, t in zip(got[1], got[0]):
            if isinstance(g, np.ndarray):
                np.testing.assert_allclose(g, t, rtol=1e-12)
            else:
                _same(g, t)
    s = _s(gt, requires_grad=True)          # torch 2.13 has no backward of these for a sparse gradient
    with pytest.raises(NotImplementedError, match="narrow_copy: the backward of narrow_copy"):
        s.index_select(0, gt.tensor([2, 0, 0])).narrow_copy(1, 1, 2).to_dense().sum().backward()
    with pytest.raises(RuntimeError, match="exceeds dimension size"):
        _s(gt).narrow_copy(0, 2, 2)
    with pytest.raises(IndexError, match="index out of range"):
        _s(gt).index_select(0, gt.tensor([3]))


@pytest.mark.parametrize("log", [False, True])
@pytest.mark.parametrize("dim", [0, 1])
def test_sparse_softmax_and_log_softmax_are_torch_s_with_gradients(log, dim):
    torch = _torch()
    got = []
    for m in (torch, gt):
        s = _s(m, requires_grad=True)
        f = m.sparse.log_softmax if log else m.sparse.softmax
        out = f(s, dim)
        (out.to_dense() ** 2 * m.tensor(W)).sum().backward()
        got.append((out, _dense_grad(s.grad), f(_s(m), dim, dtype=m.float32)))
    _same(got[1][0], got[0][0])
    np.testing.assert_allclose(got[1][1], got[0][1], rtol=1e-9, atol=1e-12)
    assert got[1][2].dtype == gt.float32 and got[0][2].dtype == torch.float32
    negative = gt.sparse.softmax(_s(gt), dim - 2)      # counted from the end, as torch's forward
    np.testing.assert_array_equal(negative._values().numpy(), gt.sparse.softmax(_s(gt), dim)._values().numpy())


def test_hybrid_tensors_take_the_dense_dim_ops():
    torch = _torch()
    got = []
    for m in (torch, gt):
        x = m.tensor([[0.0, 0.0], [0.5, -1.0], [0.0, 2.0]], dtype=m.float64)
        h = x.to_sparse(1)
        got.append([h.abs(), h * m.tensor([2.0, 3.0], dtype=m.float64), h.narrow_copy(1, 1, 1),
                    h.index_select(1, m.tensor([1, 1, 0])), m.sparse.softmax(h, 1), h.narrow_copy(0, 1, 2)])
        assert h.sparse_dim() == 1 and h.dense_dim() == 1 and h._nnz() == 2
    for g, t in zip(got[1], got[0]):
        _same(g, t)
