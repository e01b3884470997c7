"""Sparse CSC, BSR and BSC tensors (gt/tensor/sparse_compressed.py and beside it), and the
transposes of CSR, beside torch 2.13: construction with torch's checks, repr, conversions between
every layout, the ops torch runs on them, products with dense tensors and their gradients
(float64, 1e-10), and torch's refusals. On a mesh of several devices sparse tensors are refused."""

import warnings

import numpy as np
import pytest

import gt
from gt.sharding.mesh import get_mesh
from helpers import torch_or_skip

MESH = get_mesh().size > 1
dense_only = pytest.mark.skipif(MESH, reason="sparse tensors are refused on a mesh (tested below)")
A = np.array([[1.0, 0, 2, 0], [0, 3, 0, 0], [4, 0, 5, 6], [0, 0, 0, 7]])
AB = np.stack([A, A[::-1, ::-1]])          # a batch of two, 7 entries and 4 blocks (2 x 2) each
D = np.random.default_rng(0).normal(size=(4, 3))
W = np.random.default_rng(1).normal(size=(4, 4))
LAYOUTS = ["csr", "csc", "bsr", "bsc"]


def _torch():
    torch = torch_or_skip()
    warnings.filterwarnings("ignore", message="Sparse [A-Z]+ tensor support is in beta")
    warnings.filterwarnings("ignore", message="Sparse invariant checks")
    return torch


def _to(x, layout, block=(2, 2)):
    return getattr(x, f"to_sparse_{layout}")(*([block] if layout[0] == "b" else []))


def _sparse(m, layout, requires_grad=False, x=A):
    s = _to(m.tensor(x, dtype=m.float64), layout)
    return s.requires_grad_() if requires_grad else s


def _same(g, t, tol=1e-12):
    """The same tensor: layout, shape, nnz, dtype, index tensors (with their dtypes) and values."""
    assert str(g.layout) == str(t.layout) and g.shape == tuple(t.shape), (g.layout, t.layout)
    assert str(g.dtype)[3:] == str(t.dtype)[6:]
    if str(t.layout) == "torch.strided":
        np.testing.assert_allclose(g.detach().numpy(), t.detach().numpy(), rtol=tol, atol=tol)
        return
    if str(t.layout) == "torch.sparse_coo":
        assert g.is_coalesced() == t.is_coalesced()
        np.testing.assert_array_equal(g._indices().numpy(), t._indices().numpy())
        np.testing.assert_allclose(g._values().detach().numpy(), t._values().detach().numpy(), rtol=tol, atol=tol)
        return
    names = ("ccol_indices", "row_indices") if str(t.layout)[-1] == "c" else ("crow_indices", "col_indices")
    assert g._nnz() == t._nnz()
    for name in names:
        a, b = getattr(g, name)(), getattr(t, name)()
        assert str(a.dtype)[3:] == str(b.dtype)[6:]
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    np.testing.assert_allclose(g.values().detach().numpy(), t.values().detach().numpy(), rtol=tol, atol=tol)


def _same_repr(g, t):
    """torch's repr; where a dtype is printed, up to where lines wrap (``gt.`` is shorter than ``torch.``)."""
    text = repr(g).replace("gt.", "torch.")
    if "dtype=" in text:
        text, want = " ".join(text.split()), " ".join(repr(t).split())
    else:
        want = repr(t)
    assert text == want


@dense_only
def test_construction_repr_and_attributes_are_torch_s():
    torch = _torch()
    cases = [lambda m: m.sparse_csc_tensor([0, 2, 3, 5], [0, 2, 1, 0, 2], [1.0, -2.0, 3.0, 4.0, 0.5], (3, 3)),
             lambda m: m.sparse_csc_tensor(m.tensor([0, 1, 1, 3], dtype=m.int32), m.tensor([1, 0, 1], dtype=m.int32),
                                           m.tensor([1.0, 2, 3], dtype=m.float64)),
             lambda m: m.sparse_bsr_tensor([0, 1, 2], [1, 0], m.arange(8.0).reshape(2, 2, 2), (4, 4)),
             lambda m: m.sparse_bsr_tensor([0, 1, 1], [2], m.ones(1, 2, 3)),
             lambda m: m.sparse_bsc_tensor([0, 1, 1], [2], m.ones(1, 2, 3), requires_grad=True),
             lambda m: m.sparse_bsc_tensor(m.tensor([0, 2, 2], dtype=m.int32), m.tensor([0, 1], dtype=m.int32),
                                           m.arange(4).reshape(2, 1, 2), (2, 4)),
             lambda m: m.sparse_csc_tensor([[0, 1, 2], [0, 0, 2]], [[1, 0], [0, 1]], [[1.0, 2], [3, 4]], (2, 2, 2))]
    cases += [lambda m, lay=lay: _sparse(m, lay, x=AB) for lay in ("csc", "bsr", "bsc")]
    for f in cases:
        g, t = f(gt), f(torch)
        _same_repr(g, t)
        _same(g, t)
        _same(g.to_dense(), t.to_dense())
        assert (g.is_sparse, g.is_sparse_csr, g.sparse_dim(), g.dense_dim()) == (False, False, 2, 0)
    assert gt.sparse_csc != gt.sparse_csr and str(gt.sparse_bsc) == "torch.sparse_bsc"
    for m in (gt, torch):
        for lay, wrong in (("csc", "crow_indices"), ("csc", "col_indices"), ("bsr", "ccol_indices"),
                           ("bsr", "row_indices"), ("bsc", "col_indices")):
            with pytest.raises(RuntimeError, match=f"{wrong} expected sparse .* compressed tensor layout but got"):
                getattr(_sparse(m, lay), wrong)()


@dense_only
@pytest.mark.parametrize("case, match", [
    (("csc", [1, 2, 3], [0, 1], [1.0, 2], (2, 2)), r"`ccol_indices\[\.\.\., 0\] == 0`"),
    (("csc", [0, 1, 2], [0, 2], [1.0, 2], (2, 2)), "`0 <= row_indices < nrows`"),
    (("csc", [0, 2, 2], [1, 0], [1.0, 2], (2, 2)), r"row_indices\[\.\.\., ccol_indices.* ncols are sorted"),
    (("csc", [0, 1, 2], [0, 1], [1.0, 2], (3, 3)), r"number of columns \+ 1 \(=4\)"),
    (("csc", [0, 1, 2], [0, 1], [1.0, 2, 3], (2, 2)), "row_indices.shape.* nnz"),
    (("bsr", [0, 1], [0], np.ones((1, 2, 2)), (3, 2)), r"shape\[0\] \(=3\) must be divisible with blocksize\[0\]"),
    (("bsr", [0, 1], [0], np.ones((1, 2)), (2, 2)), "values must have dimensionality > sum of batch and block"),
    (("bsr", [0, 1], [1], np.ones((1, 2, 2)), (2, 2)), "`0 <= col_indices < ncols`"),
])
def test_construction_errors_are_torch_s(case, match):
    torch = _torch()
    layout, comp, plain, vals, size = case
    for m in (torch, gt):
        with pytest.raises(RuntimeError, match=match):
            getattr(m, f"sparse_{layout}_tensor")(m.tensor(comp), m.tensor(plain), m.tensor(vals), size,
                                                  check_invariants=True)


@dense_only
def test_conversions_between_layouts_are_torch_s():
    torch = _torch()
    coo = [[[0, 1, 1, 0, 3], [2, 0, 2, 2, 3]], [3.0, 4, 5, 1, -1]]
    cases = [lambda m, a=a, b=b: _to(_to(m.tensor(A), a), b) for a in LAYOUTS for b in ("csc", "bsr", "bsc")
             if a[0] != "b" or b[0] == "b"]
    cases += [lambda m, b=b: _to(m.sparse_coo_tensor(*coo, (4, 4)), b) for b in ("csc", "bsr", "bsc")]
    cases += [lambda m, a=a: _sparse(m, a).to_sparse_coo() for a in LAYOUTS[1:]]
    cases += [lambda m, a=a: _sparse(m, a).to_sparse() for a in LAYOUTS[1:]]
    cases += [lambda m: _sparse(m, "csc").to_sparse_csr(), lambda m: _sparse(m, "csc").to_sparse_csc(),
              lambda m: m.tensor(A).to_sparse_bsr((1, 2)), lambda m: m.tensor(A).to_sparse_bsc((4, 1)),
              lambda m: m.tensor(A).to_sparse(layout=m.sparse_csc),
              lambda m: m.tensor(A).to_sparse(layout=m.sparse_bsr, blocksize=(2, 2)),
              lambda m: _sparse(m, "csr").to_sparse(layout=m.sparse_bsc, blocksize=(2, 1)),
              lambda m: _sparse(m, "csc").to_sparse(layout=m.sparse_csr),
              lambda m: _sparse(m, "bsr").to_sparse(layout=m.sparse_bsc, blocksize=(2, 2)),
              lambda m: _sparse(m, "bsr", x=AB).to_sparse_bsc((2, 2)), lambda m: _sparse(m, "csc", x=AB).to_dense(),
              lambda m: _sparse(m, "bsc").to(m.float32), lambda m: _sparse(m, "csc").int()]
    for f in cases:
        _same(f(gt), f(torch))
    refusals = [lambda m: _sparse(m, "bsr").to_sparse_csr(), lambda m: _sparse(m, "bsc").to_sparse_csc(),
                lambda m: _sparse(m, "bsr").to_sparse_bsr((1, 1)), lambda m: _sparse(m, "bsc").to_sparse_bsr((4, 4)),
                lambda m: m.tensor(A).to_sparse_bsr((3, 3)), lambda m: m.tensor(A).to_sparse(layout=m.sparse_bsr),
                lambda m: m.tensor(A).to_sparse(layout=m.sparse_csc, blocksize=(2, 2)),
                lambda m: m.tensor(np.stack([A, np.eye(4)])).to_sparse_bsr((2, 2))]
    for f in refusals:
        for m in (torch, gt):
            with pytest.raises(RuntimeError):
                f(m)
    for m in (torch, gt):
        with pytest.raises(TypeError, match="blocksize"):
            m.tensor(A).to_sparse_bsr()


@dense_only
def test_conversions_of_tensors_of_no_elements_are_torch_s():
    """A dimension of size 0 gives an empty layout (the COO coalesce under CSC and the block layouts
    divided by a zero stride: ZeroDivisionError)."""
    torch = _torch()
    for shape in ((0, 4), (4, 0), (2, 0, 4)):
        for layout in LAYOUTS:
            block = (1, 2) if shape[-1] else (2, 1)
            _same(_to(gt.zeros(shape, dtype=gt.float64), layout, block), _to(torch.zeros(shape, dtype=torch.float64),
                                                                            layout, block))
        _same(gt.zeros(shape).to_sparse().transpose(0, 1).coalesce(),
              torch.zeros(shape).to_sparse().transpose(0, 1).coalesce())


@dense_only
def test_transposes_are_torch_s():
    torch = _torch()
    cases = [lambda m, a=a: _sparse(m, a).t() for a in LAYOUTS]
    cases += [lambda m, a=a: _sparse(m, a).transpose(0, 1) for a in LAYOUTS]
    cases += [lambda m, a=a: _sparse(m, a, x=AB).transpose(-1, -2) for a in LAYOUTS]
    cases += [lambda m, a=a: _sparse(m, a, x=AB).mT for a in LAYOUTS]
    cases += [lambda m, a=a: _to(m.tensor(np.stack([AB, AB[::-1] * 2, AB])), a).transpose(1, 0) for a in LAYOUTS]
    cases += [lambda m: _sparse(m, "csr").transpose(1, 1), lambda m: _sparse(m, "bsc").adjoint(),
              lambda m: m.tensor(A * (1 - 2j)).to_sparse_csr().adjoint(),
              lambda m: m.t(_sparse(m, "csc")), lambda m: m.transpose(_sparse(m, "bsr"), 1, 0),
              lambda m: _sparse(m, "csr").t().t(), lambda m: _sparse(m, "bsr").t().to_dense()]
    for f in cases:
        g, t = f(gt), f(torch)
        _same_repr(g, t)
        _same(g, t)
    for m in (torch, gt):
        with pytest.raises(RuntimeError, match=r"t\(\) expects a tensor with <= 2 dimensions, but self is 3D"):
            _sparse(m, "bsc", x=AB).t()
        with pytest.raises(RuntimeError, match=r"can only transpose dimensions of the same type .* 0\(Batch\) and "
                                               r"1\(Sparse\)"):
            _sparse(m, "csr", x=AB).transpose(0, 1)


@dense_only
@pytest.mark.parametrize("layout", ["csc", "bsr", "bsc"])
def test_elementwise_sums_and_adds_are_torch_s(layout):
    torch = _torch()
    ops = ["abs", "sqrt", "sin", "tanh", "relu", "sign", "sgn", "floor", "ceil", "round", "trunc", "frac", "erf",
           "expm1", "log1p", "asin", "atan", "sinh", "tan", "asinh", "atanh", "erfinv", "deg2rad", "rad2deg", "isnan",
           "isinf", "signbit", "isposinf", "isneginf", "neg", "negative", "positive", "angle", "conj_physical"]
    x = A / 8
    cases = [(lambda m, op=op: getattr(_sparse(m, layout, x=x), op)()) for op in ops]
    cases += [lambda m: -_sparse(m, layout), lambda m: abs(_sparse(m, layout)), lambda m: _sparse(m, layout) * 2.5,
              lambda m: 3 * _sparse(m, layout), lambda m: _sparse(m, layout).mul(m.tensor(2.0, dtype=m.float64)),
              lambda m: _sparse(m, layout).mul_(2), lambda m: _sparse(m, layout).zero_(),
              lambda m: _sparse(m, layout).clone(), lambda m: _sparse(m, layout).detach(),
              lambda m: _sparse(m, layout).sum(), lambda m: _sparse(m, layout).sum(dtype=m.float32),
              lambda m: _sparse(m, layout, x=AB).sum(), lambda m: _sparse(m, layout).float()]
    same = {m: _sparse(m, layout) for m in (gt, torch)}
    cases += [lambda m: same[m] + same[m], lambda m: same[m].add(same[m], alpha=2)]
    if layout == "csc":
        cases += [lambda m: _sparse(m, layout) + m.tensor(W), lambda m: m.tensor(W) + _sparse(m, layout),
                  lambda m: _sparse(m, layout) @ _sparse(m, layout), lambda m: _sparse(m, layout) @ _sparse(m, "csr")]
    for f in cases:
        _same(f(gt), f(torch))


@dense_only
@pytest.mark.parametrize("name", ["exp", "square", "sub", "div", "sum(0)", "sum(1, keepdim)", "coalesce", "indices",
                                  "reshape", "mean", "* dense", "+ other pattern", "batched @", "@ itself"])
@pytest.mark.parametrize("layout", ["csc", "bsr", "bsc"])
def test_refusals_are_runtime_errors_as_torch_s(name, layout):
    torch = _torch()
    for m in (torch, gt):
        s = _sparse(m, layout)
        calls = {"sub": lambda: s - s, "div": lambda: s / 2, "sum(0)": lambda: s.sum(0),
                 "sum(1, keepdim)": lambda: s.sum(1, keepdim=True), "reshape": lambda: s.reshape(16),
                 "* dense": lambda: s * m.tensor(W),
                 "@ itself": lambda: s @ s if layout != "csc" else s @ s.to_sparse(),
                 "+ other pattern": lambda: s + _to(m.tensor(np.eye(4)), layout),
                 "batched @": lambda: _sparse(m, layout, x=AB) @ m.ones(4, 2, dtype=m.float64)}
        with pytest.raises(RuntimeError):
            calls.get(name, lambda: getattr(s, name)())()


def _products(m, s, d, side):
    dd = d if side == "left" else d.t()
    if side == "left":
        ys = [s @ dd, s.mm(dd), m.matmul(s, dd), s @ dd[:, 0], m.addmm(m.ones(4, 3, dtype=m.float64), s, d, alpha=2.0)]
    else:
        ys = [dd @ s, dd.mm(s), m.matmul(dd, s), dd[0] @ s]
    ys.append(s.sum() * 1)
    sum((y * m.tensor(np.resize(W.ravel(), y.shape))).sum() for y in ys).backward()
    return ys


@dense_only
@pytest.mark.parametrize("layout, side", [("csc", "left"), ("csc", "right"), ("bsr", "left"), ("bsc", "right")])
def test_products_with_dense_and_gradients_are_torch_s(layout, side):
    """A leaf gets torch's dense gradient; the dense operand its own. torch 2.13's backward for the
    dense operand of a BSR/BSC product needs the kernel of the other side, which it lacks: that
    gradient is checked against the product of the dense matrix."""
    torch = _torch()
    got = {}
    for m in (torch, gt):
        s, d = _sparse(m, layout, requires_grad=True), m.tensor(D, requires_grad=m is gt or layout == "csc")
        got[m] = _products(m, s, d, side) + [s.grad]
        if m is torch and layout != "csc":
            d = m.tensor(D, requires_grad=True)
            _products(m, m.tensor(A, requires_grad=True), d, side)
        got[m].append(d.grad)
        for other_side in ((lambda: d.t() @ s) if layout == "bsr" else (lambda: m.sparse.mm(s, d)) if layout == "bsc"
                           else (lambda: s @ s.to_sparse_bsr((2, 2))), lambda: s @ _sparse(m, layout, x=AB)):
            with pytest.raises(RuntimeError):        # no kernel in torch
                other_side()
        if layout != "csc":
            with pytest.raises(RuntimeError, match="non-square blocks"):
                _products(m, _to(m.tensor(A), layout, (2, 1)), d, side)
    for g, t in zip(got[gt], got[torch]):
        _same(g, t, 1e-10)


@dense_only
def test_gradients_through_transposes_conversions_and_of_values_are_torch_s():
    """Transposes pass gradients on; a dense tensor converted to a compressed layout gets torch's
    dense gradient through products and sum() (to_dense's is masked); values that require grad
    get theirs."""
    torch = _torch()
    got = {}
    for m in (torch, gt):
        leaf, d = _sparse(m, "csr", requires_grad=True), m.tensor(D)
        bsr, x = _sparse(m, "bsr", requires_grad=True), m.tensor(A, requires_grad=True)
        v = m.tensor([1.0, 2, 3, 4], dtype=m.float64, requires_grad=True)
        csc = m.sparse_csc_tensor(m.tensor([0, 1, 3, 3, 4]), m.tensor([1, 0, 3, 2]), v, (4, 4))
        y = (leaf.t() @ d).sin().sum() + (d.t() @ bsr.t()).sum() + ((csc @ d) ** 2).sum() + (d.t() @ csc.t()).sum()
        y = y + (x.to_sparse_csc() @ d).cos().sum() + (x.to_sparse_bsr((2, 2)) @ d).sum() + x.to_sparse_csc().sum()
        y = y + (d.t() @ x.to_sparse_bsc((1, 1))).exp().sum() + (x.to_sparse_csc().t() @ d).sum()
        y = y + (leaf.t().t() @ d).sum() * 3 + (x.to_sparse_csr().mT.mT @ d).sum() * 5
        (y + (x.to_sparse_csc().to_dense() * m.tensor(W)).sum()).backward()
        got[m] = (leaf.grad, bsr.grad, v.grad, x.grad, leaf.t().to_dense(), csc.t())
    for g, t in zip(got[gt], got[torch]):
        _same(g, t, 1e-10)


@dense_only
@pytest.mark.parametrize("layout", ["csc", "bsr", "bsc"])
def test_a_leaf_gets_its_gradient_at_its_entries_through_to_dense(layout):
    """torch 2.13's backward through these layouts' to_dense raises (they have no is_contiguous); gt's
    gradient is the upstream one at the stored elements, in the leaf's layout and pattern."""
    s = _sparse(gt, layout, requires_grad=True)
    for _ in range(2):        # the second adds up
        (s.to_dense() * gt.tensor(W)).sum().backward()
    assert s.grad.layout == s.layout and s.grad._nnz() == s._nnz()
    idx = s.to_sparse_coo()._indices().numpy()
    np.testing.assert_array_equal(s.grad.to_sparse_coo()._values().numpy(), 2 * W[idx[0], idx[1]])


@dense_only
@pytest.mark.parametrize("layout", LAYOUTS)
def test_transposes_of_a_leaf_pass_its_gradient_as_dense_transposes_do(layout):
    """(torch 2.13's backward through a batched or block layout's to_dense raises.) The gradient
    through a batch or matrix transpose equals the one through the dense transpose of to_dense."""
    w = np.random.default_rng(3).normal(size=(2, 4, 4, 4))
    grads = []
    for sparse_first in (True, False):
        s = _to(gt.tensor(np.stack([AB, AB[::-1] * 2, AB, -AB])), layout).requires_grad_()
        y = s.transpose(0, 1).mT.to_dense() if sparse_first else s.to_dense().transpose(0, 1).mT
        (y * gt.tensor(w)).sum().backward()
        grads.append(s.grad)
    assert grads[0].layout == grads[1].layout == s.layout
    a, b = grads[0].to_sparse_coo(), grads[1].to_sparse_coo()
    np.testing.assert_array_equal(a._indices().numpy(), b._indices().numpy())
    np.testing.assert_allclose(a._values().numpy(), b._values().numpy(), rtol=1e-12, atol=1e-12)
    assert float(a._values().abs().sum()) > 0


@dense_only
@pytest.mark.parametrize("layout", ["csr", "csc", "coo"])
@pytest.mark.parametrize("source", ["leaf", "dense"])
def test_a_transpose_made_under_no_grad_passes_no_gradient_to_its_source(layout, source):
    """A sparse transpose taken under no_grad, then multiplied with grad mode on: torch passes no
    gradient to the sparse leaf (or the dense tensor it was made from); gt's transposes took their
    source's dense gradient carrier all the same and gave it one."""
    torch = _torch()
    d = np.random.default_rng(4).normal(size=(4, 2))
    grads = []
    for m in (torch, gt):
        base = m.tensor(A, requires_grad=source == "dense")
        s = base.to_sparse() if layout == "coo" else _to(base, layout)
        leaf = s.requires_grad_() if source == "leaf" else base
        other = m.tensor(d, requires_grad=True)
        with m.no_grad():
            st = s.t()
        (st @ other).sum().backward()
        assert leaf.grad is None
        grads.append(other.grad.numpy())
    np.testing.assert_allclose(grads[1], grads[0], rtol=1e-12)


@dense_only
def test_a_dense_op_handed_a_sparse_tensor_names_its_layout():
    """A dense op that reads a sparse tensor's storage refuses it naming the tensor's own layout
    (CSR's named COO's list)."""
    for s, kind in ((_sparse(gt, "bsr"), "CSC/BSR/BSC"), (_sparse(gt, "csr"), "CSR"),
                    (gt.tensor(A).to_sparse(), "COO")):
        with pytest.raises(NotImplementedError, match=f"^cat: not supported on a sparse {kind} tensor"):
            gt.cat([s, s])


@dense_only
@pytest.mark.parametrize("layout", LAYOUTS)
def test_one_constructor_checks_every_layout_s_parts_in_its_names(layout):
    """gt's refusals where torch 2.13 builds a tensor gt does not hold (0-d indices, hybrid values),
    and a sparse index tensor refused naming the function and the index it was passed as."""
    make = getattr(gt, f"sparse_{layout}_tensor")
    first = "ccol_indices" if layout[-1] == "c" else "crow_indices"
    block = (1, 1) if layout[0] == "b" else ()
    with pytest.raises(RuntimeError, match=f"^{first} must have dimensionality >= 1 but got 0"):
        make(gt.tensor(0), gt.tensor(0), gt.tensor(1.0), (1, 1))
    with pytest.raises(RuntimeError, match=r"values must have dimensionality > sum of batch and block"):
        make([0, 1], [0], gt.ones(*block), (1, 1))
    with pytest.raises(NotImplementedError, match="no dense \\(hybrid\\) dims"):
        make([0, 1], [0], gt.ones(1, *block, 2), (1, 1))
    with pytest.raises(TypeError, match=f"^sparse_{layout}_tensor: {first} must be a dense tensor"):
        make(gt.tensor([0, 1]).to_sparse(), [0], gt.ones(1, *block), (1, 1))


@pytest.mark.skipif(not MESH, reason="needs GT_DEVICES > 1")
def test_compressed_tensors_are_refused_on_a_mesh():
    with pytest.raises(NotImplementedError, match="not supported on a mesh"):
        gt.sparse_csc_tensor([0, 1], [0], [1.0], (1, 1))
    with pytest.raises(NotImplementedError, match="not supported on a mesh"):
        gt.tensor([[0.0, 1.0]]).to_sparse_bsr((1, 1))
