"""Gradients of sparse COO tensors beside torch 2.13's (gt/tensor/sparse_autograd.py and beside it):
the dense gradient carried on from ``to_sparse`` (and a sparse leaf) through later ops into products
and ``sum()``, the sum of an uncoalesced leaf and another sparse tensor, the sparse gradient of the
dense operand of ``sparse * dense``, ``gt.sparse.mm(dense, sparse)``'s gradient order, torch's errors
where its sparse backward raises, ``narrow_copy``'s refusals, SGD's sparse momentum buffer in
state dicts and checkpoints, a computed embedding weight's sparse gradient passed on to its leaf,
``gt.sparse.sum(s, dim)``'s refusal of a dense gradient, and the other operand of a product by an
uncoalesced sparse tensor."""

import copy
import io
import warnings

import numpy as np
import pytest

import gt
from gt.sharding.mesh import get_mesh
from helpers import torch_or_skip

pytestmark = pytest.mark.skipif(get_mesh().size > 1, reason="sparse tensors are refused on a mesh")
IDX = [[0, 1, 1, 0, 2], [2, 0, 2, 2, 1]]
VAL = [0.3, 0.4, 0.5, 0.1, -0.2]
X = np.array([[0.0, 0.7, -0.4], [1.5, 0.0, 0.0], [0.0, -2.0, 0.9]])
W = np.arange(9.0).reshape(3, 3) / 4 - 1


def _torch():
    torch = torch_or_skip()
    warnings.filterwarnings("ignore", message="Sparse invariant checks")
    warnings.filterwarnings("ignore", message=".*received self with sparse layout")
    return torch


def _s(m, coalesced=False, leaf=True):
    s = m.sparse_coo_tensor(m.tensor(IDX), m.tensor(VAL, dtype=m.float64), (3, 3))
    s = s.coalesce() if coalesced else s
    return s.detach().requires_grad_(True) if leaf else s


def _grad(g):
    """(is_sparse, indices or None, values, coalesced flag or None) of a gradient."""
    if g.is_sparse:
        return True, g._indices().numpy(), g._values().detach().numpy(), g.is_coalesced()
    return False, None, g.detach().numpy(), None


def _same_grad(g, t, exact_layout=True):
    """The same layout and values; with ``exact_layout`` the same entries in the same order too."""
    if not exact_layout:
        assert g.is_sparse == t.is_sparse
        g, t = (g.to_dense() if g.is_sparse else g), (t.to_dense() if t.is_sparse else t)
    g, t = _grad(g), _grad(t)
    assert g[0] == t[0] and g[3] == t[3]
    if g[0]:
        np.testing.assert_array_equal(g[1], t[1])
    np.testing.assert_allclose(g[2], t[2], rtol=1e-10, atol=1e-12)


# ops after which a product or sum() hands torch's dense gradient on (gt gave the stored positions only)
CARRIED = {
    "mul@": lambda m, s, w: (s * 2) @ w, "rmul@": lambda m, s, w: w @ (3 * s), "div@": lambda m, s, w: (s / 2) @ w,
    "neg.sum": lambda m, s, w: (-s).sum(), "t@": lambda m, s, w: s.t() @ w,
    "add.coalesce@": lambda m, s, w: (s + s).coalesce() @ w, "clone.sum": lambda m, s, w: (s.clone() * 3).sum(),
    "log1p@": lambda m, s, w: s.log1p() @ w, "muldense@": lambda m, s, w: (s * w) @ w,
    "index_select@": lambda m, s, w: s.index_select(0, m.tensor([2, 0, 0])) @ w,
    "narrow_copy@": lambda m, s, w: w[:, :2] @ s.narrow_copy(0, 1, 2), "mm": lambda m, s, w: m.mm(s.t() * 2, w),
    "sub.sum": lambda m, s, w: (s - s * 2).sum(), "frac.sum": lambda m, s, w: s.frac().sum(),
}


@pytest.mark.parametrize("name", sorted(CARRIED))
@pytest.mark.parametrize("source", ["to_sparse", "sparse leaf"])
def test_the_dense_gradient_carries_on_through_later_ops_as_torch_s(name, source):
    torch = _torch()
    got = []
    for m in (torch, gt):
        if source == "to_sparse":
            x = m.tensor(X, requires_grad=True)
            s = x.to_sparse()
        else:
            x = s = _s(m)
        out = CARRIED[name](m, s, m.tensor(W))
        (out * out).sum().backward()
        got.append(x.grad)
    assert not got[0].is_sparse       # torch's: every position, dense
    _same_grad(got[1], got[0])


def test_sparse_sum_and_to_dense_keep_the_stored_positions_beside_a_carried_product_as_torch_s():
    torch = _torch()
    got = []
    for m in (torch, gt):
        x = m.tensor(X, requires_grad=True)
        s = x.to_sparse() * 3
        (m.sparse.sum(s) + (s.t() * m.tensor(W)).to_dense().sum() + (s @ m.tensor(W)).pow(2).sum()).backward()
        got.append(x.grad)
    _same_grad(got[1], got[0])


def _b(m, coalesced=False):
    b = m.sparse_coo_tensor(m.tensor([[2, 0, 1], [2, 2, 1]]), m.tensor([1.0, 2.0, 3.0], dtype=m.float64), (3, 3))
    return b.coalesce() if coalesced else b


# two ops in a row, where the second reaches positions the first one's operand does not store
COMPOSED = {"t then +": lambda m, s: m.sparse.sum(s.t() + _b(m)),
            "div then +": lambda m, s: (((s / 4) + _b(m, True)).to_dense() * m.tensor(W + 2)).sum(),
            "t then * sparse": lambda m, s: (s.t() * _s(m, True, leaf=False)).sum(),
            "t then * sparse @": lambda m, s: ((s.t() * _s(m, leaf=False)) @ m.tensor(W)).sum()}


@pytest.mark.parametrize("name", sorted(COMPOSED))
@pytest.mark.parametrize("source", ["to_sparse", "sparse leaf"])
def test_gradients_through_two_ops_reach_the_positions_torch_s_reach(name, source):
    torch = _torch()
    got = []
    for m in (torch, gt):
        x = m.tensor(X, requires_grad=True) if source == "to_sparse" else _s(m)
        out = COMPOSED[name](m, x.to_sparse() if source == "to_sparse" else x)
        (out * out).sum().backward()
        got.append(x.grad)
    _same_grad(got[1], got[0], exact_layout=False)     # the same layout and values (the entries' order may differ)


@pytest.mark.parametrize("other_coalesced", [False, True])
@pytest.mark.parametrize("how", ["a+b", "b+a", "a-b"])
@pytest.mark.parametrize("upstream", ["to_dense", "sparse.sum", "@"])
def test_an_uncoalesced_leaf_added_to_a_sparse_tensor_gets_torch_s_gradient(other_coalesced, how, upstream):
    torch = _torch()
    got = []
    for m in (torch, gt):
        a = _s(m)
        b = _b(m, other_coalesced)
        out = {"a+b": lambda: a + b, "b+a": lambda: b + a, "a-b": lambda: a - b}[how]()
        w = m.tensor(W)
        loss = {"to_dense": lambda: (out.to_dense() * w).sum(), "sparse.sum": lambda: m.sparse.sum(out * 2),
                "@": lambda: (out @ w).pow(2).sum()}[upstream]()
        loss.backward()
        got.append((out, a.grad))
    np.testing.assert_array_equal(got[1][0]._indices().numpy(), got[0][0]._indices().numpy())
    np.testing.assert_allclose(got[1][0]._values().detach().numpy(), got[0][0]._values().detach().numpy())
    _same_grad(got[1][1], got[0][1])


@pytest.mark.parametrize("coalesced", [False, True])
@pytest.mark.parametrize("left", [False, True])
@pytest.mark.parametrize("upstream", ["to_dense", "sparse.sum", "@", "to_sparse @"])
def test_the_dense_operand_of_sparse_times_dense_gets_torch_s_sparse_gradient(coalesced, left, upstream):
    torch = _torch()
    got = []
    for m in (torch, gt):
        d = m.tensor(W * 2 - 1, requires_grad=True)
        x = m.tensor(X, requires_grad=True)
        s = x.to_sparse() if upstream == "to_sparse @" else _s(m, coalesced, leaf=False)
        out = d * s if left else s * d
        w = m.tensor(W)
        loss = {"to_dense": lambda: (out.to_dense() * w).sum(), "sparse.sum": lambda: m.sparse.sum(out),
                "@": lambda: (out @ w).pow(2).sum(), "to_sparse @": lambda: (out @ w).pow(2).sum()}[upstream]()
        loss.backward()
        got.append((d.grad, x.grad))
    assert got[0][0].is_sparse
    _same_grad(got[1][0], got[0][0])
    if upstream == "to_sparse @":
        _same_grad(got[1][1], got[0][1])


@pytest.mark.parametrize("coalesced", [False, True])
def test_sparse_mm_of_dense_by_sparse_lists_the_gradient_in_torch_s_order(coalesced):
    torch = _torch()
    got = []
    for m in (torch, gt):
        s = _s(m, coalesced)
        out = m.sparse.mm(m.tensor(W[:2]), s) + m.sparse.mm(m.tensor(W[:2]), s.detach())
        out.pow(2).sum().backward()
        got.append(s.grad)
    _same_grad(got[1], got[0])


# torch 2.13's sparse backward raises for these (upstream: what takes the result on)
RAISING = {"sqrt": (lambda m, s: s.abs().sqrt(), "to_dense"), "sin": (lambda m, s: s.sin(), "to_dense"),
           "tanh": (lambda m, s: s.tanh(), "sum"), "expm1": (lambda m, s: s.expm1(), "@"),
           "erf": (lambda m, s: s.erf(), "to_dense"), "atanh": (lambda m, s: (s / 2).atanh(), "to_dense"),
           "index_select": (lambda m, s: s.index_select(1, m.tensor([2, 0])), "to_dense"),
           "narrow_copy": (lambda m, s: s.narrow_copy(0, 1, 2), "sparse.sum"),
           "relu": (lambda m, s: s.relu(), "@"), "softmax": (lambda m, s: m.sparse.softmax(s, 1), "sum"),
           "abs then relu": (lambda m, s: s.abs().relu(), "@"),
           "square then softmax": (lambda m, s: m.sparse.log_softmax(s.square(), 0), "sum")}


@pytest.mark.parametrize("name", sorted(RAISING))
@pytest.mark.parametrize("source", ["to_sparse", "sparse leaf"])
def test_the_backward_raises_torch_s_error_where_torch_s_sparse_backward_does(name, source):
    torch = _torch()
    f, upstream = RAISING[name]
    errors = []
    for m in (torch, gt):
        s = m.tensor(X, requires_grad=True).to_sparse() if source == "to_sparse" else _s(m)
        out = f(m, s)
        loss = {"to_dense": lambda: out.to_dense().sum(), "sparse.sum": lambda: m.sparse.sum(out),
                "sum": lambda: out.sum(), "@": lambda: (out @ m.tensor(W)).sum()}[upstream]()
        with pytest.raises((RuntimeError, NotImplementedError)) as info:
            loss.backward()
        errors.append(info.type)
    assert errors[1] is errors[0]


def test_narrow_copy_refuses_a_negative_dim_or_start_and_softmax_takes_one_as_torch_s():
    torch = _torch()
    for m in (torch, gt):
        for args in ((-1, 0, 1), (0, -1, 1), (1, 2, 2), (0, 1, -1)):
            with pytest.raises(RuntimeError):
                _s(m, leaf=False).narrow_copy(*args)
    got = []
    for m in (torch, gt):
        s = _s(m)
        out = m.sparse.softmax(s, -1)
        (out.to_dense() * m.tensor(W)).sum().backward()
        positive = _s(m)
        (m.sparse.softmax(positive, 1).to_dense() * m.tensor(W)).sum().backward()
        got.append((out._values().detach().numpy(), s.grad, positive.grad))
    np.testing.assert_allclose(got[1][0], got[0][0], rtol=1e-12)
    # torch 2.13's backward with a negative dim takes each entry alone (not the softmax's gradient):
    # gt's is the gradient, torch's of the same dim counted from the start
    _same_grad(got[1][1], got[0][2])


def test_sgd_saves_its_sparse_momentum_buffer_sparse_as_torch_and_loads_torch_s():
    torch = _torch()
    weight = np.arange(10.0).reshape(5, 2) / 7

    def run(m, steps, state=None):
        emb = m.nn.Embedding(5, 2, sparse=True)
        with m.no_grad():
            emb.weight.copy_(m.tensor(weight, dtype=m.float32))
        opt = m.optim.SGD(emb.parameters(), lr=0.1, momentum=0.9)
        if state is not None:
            opt.load_state_dict(state)
        for ids in steps:
            opt.zero_grad()
            emb(m.tensor(ids)).pow(2).sum().backward()
            opt.step()
        return emb.weight.detach().numpy(), copy.deepcopy(opt.state_dict())

    _, torch_state = run(torch, [[1, 3, 1], [0, 3]])
    _, gt_state = run(gt, [[1, 3, 1], [0, 3]])
    tb, gb = torch_state["state"][0]["momentum_buffer"], gt_state["state"][0]["momentum_buffer"]
    assert gb.is_sparse and gb.is_coalesced() == tb.is_coalesced()
    np.testing.assert_array_equal(gb._indices().numpy(), tb._indices().numpy())
    np.testing.assert_allclose(gb._values().numpy(), tb._values().numpy(), rtol=1e-6)
    expected, _ = run(torch, [[2, 3]], copy.deepcopy(torch_state))
    for state in (gt_state, torch_state):          # gt's own and torch's state dict, continued in gt
        np.testing.assert_allclose(run(gt, [[2, 3]], copy.deepcopy(state))[0], expected, rtol=1e-6)
    f = io.BytesIO()
    gt.save(gt_state, f)
    f.seek(0)
    read = torch.load(f, weights_only=True)["state"][0]["momentum_buffer"]
    assert read.layout == torch.sparse_coo and torch.equal(read._indices(), tb._indices())
    f = io.BytesIO()
    torch.save(torch_state, f)
    f.seek(0)
    back = gt.load(f, weights_only=True)["state"][0]["momentum_buffer"]
    assert back.is_sparse
    np.testing.assert_array_equal(back._indices().numpy(), tb._indices().numpy())


# a computed embedding weight: torch's sparse gradient reaches the leaf through these ops (sparse);
# the ops whose torch backward raises or densifies: tests/test_sparse_grad_leftovers2_parity.py
COMPUTED_WEIGHT = {"w*2": lambda m, w: w * 2, "clone": lambda m, w: w.clone(), "w+1": lambda m, w: w + 1,
                   "-w": lambda m, w: -w, "w*w": lambda m, w: w * w, "w/2": lambda m, w: w / 2,
                   "exp": lambda m, w: w.exp(), "sin": lambda m, w: w.sin(), "w*2+w": lambda m, w: w * 2 + w,
                   "d-w": lambda m, w: m.ones(5, 2, dtype=m.float64) - w, "pow3": lambda m, w: w.pow(3),
                   "lerp": lambda m, w: m.lerp(w, m.zeros_like(w), 0.3), "1/w": lambda m, w: 1 / w}


@pytest.mark.parametrize("padding", [None, 3])
@pytest.mark.parametrize("name", sorted(COMPUTED_WEIGHT))
def test_a_computed_embedding_weight_passes_torch_s_sparse_gradient_on_to_the_leaf(name, padding):
    torch = _torch()
    got = []
    for m in (torch, gt):
        w = m.tensor(np.arange(10.0).reshape(5, 2) / 3 + 0.5, requires_grad=True)
        out = m.nn.functional.embedding(m.tensor([1, 3, 1, 4]), COMPUTED_WEIGHT[name](m, w), padding_idx=padding,
                                        sparse=True)
        (out * m.tensor([[1.0, -2.0]], dtype=m.float64)).pow(2).sum().backward()
        got.append(w.grad)
    assert got[0].is_sparse
    _same_grad(got[1], got[0])


def test_a_computed_embedding_weight_s_gradient_is_dense_where_torch_s_is_and_the_hooks_see_it_sparse():
    torch = _torch()
    got = []
    for m in (torch, gt):
        w = m.tensor(np.arange(10.0).reshape(5, 2) / 3 + 0.5, requires_grad=True)
        w2 = w * 2
        w2.retain_grad()
        seen = []
        w2.register_hook(lambda g: seen.append(g.is_sparse))
        ids = m.tensor([1, 3, 1])
        emb = m.nn.functional.embedding
        (emb(ids, w2, sparse=True).pow(2).sum() + emb(ids, w2.exp(), sparse=True).sum()).backward()
        v = m.tensor(np.ones((5, 2)), requires_grad=True)
        (emb(ids, v * 3, sparse=True).sum() + (v * v).sum()).backward()    # sparse + dense: dense
        (g,) = m.autograd.grad(emb(ids, w * 3, sparse=True).sum(), [w])
        got.append((w.grad, w2.grad, seen, v.grad, g))
    for mine, theirs in zip(got[1], got[0]):
        if isinstance(mine, list):
            assert mine == theirs
        else:
            _same_grad(mine, theirs)


@pytest.mark.parametrize("loss", ["sum", "times 2 then sum", "plus dense"])
@pytest.mark.parametrize("dim", [0, -1, 1])
def test_sparse_sum_over_a_dim_refuses_a_dense_gradient_as_torch_s(dim, loss):
    torch = _torch()
    errors = []
    for m in (torch, gt):
        s = _s(m)
        out = m.sparse.sum(s, dim)
        total = {"sum": lambda: out.sum(), "times 2 then sum": lambda: (out * 2).sum(),
                 "plus dense": lambda: (m.tensor(W[0]) + out).sum()}[loss]()
        with pytest.raises(RuntimeError) as info:
            total.backward()
        errors.append(str(info.value))
        ok = _s(m)       # a sparse gradient (to_dense, gt.sparse.sum) is taken, as torch's
        (m.sparse.sum(m.sparse.sum(ok, dim) * 2) + (m.sparse.sum(ok, dim).to_dense() ** 2).sum()).backward()
        errors.append(ok.grad)
    assert errors[2].startswith(errors[0])
    _same_grad(errors[3], errors[1], exact_layout=False)     # torch flags the sum of the two coalesced


@pytest.mark.parametrize("first", ["t", "*2", "clone", "s+s"])
@pytest.mark.parametrize("coalesced", [False, True])
def test_an_operand_multiplied_by_an_uncoalesced_sparse_tensor_gets_torch_s_gradient_on_its_entries(first, coalesced):
    # torch's gradient of the other operand lies on every entry of the uncoalesced one, also where the
    # leaf stores nothing (gt gave the leaf's own positions only: (2, 2) was missing, silently)
    torch = _torch()
    got = []
    for m in (torch, gt):
        s = _s(m, coalesced)
        x = {"t": lambda: s.t(), "*2": lambda: s * 2, "clone": lambda: s.clone(), "s+s": lambda: s + s}[first]()
        ((x * _b(m)).to_dense() * m.tensor(W)).sum().backward()
        got.append(s.grad)
    _same_grad(got[1], got[0])
