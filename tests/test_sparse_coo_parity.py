"""Sparse COO tensors (gt/tensor/sparse_coo.py and beside it) beside torch: construction, repr,
coalescing, to_dense/to_sparse, products and their gradients (sparse on the stored positions for
gt.sparse.mm/addmm/to_dense, dense for @/mm/matmul, as torch's), sums, the sparse gradient of
Embedding(sparse=True) with SGD/SparseAdam steps and clipping, and the refusals. On a mesh of
several devices sparse tensors are refused."""

import warnings

import numpy as np
import pytest

import gt
from gt.sharding.mesh import get_mesh
from helpers import torch_or_skip

MESH = get_mesh().size > 1
dense_only = pytest.mark.skipif(MESH, reason="sparse tensors are refused on a mesh (tested below)")
IDX = [[0, 1, 1, 0, 2], [2, 0, 2, 2, 1]]
VAL = [3.0, 4.0, 5.0, 1.0, -2.0]
D = np.random.default_rng(0).normal(size=(3, 2))


def _torch():
    torch = torch_or_skip()
    warnings.filterwarnings("ignore", message="Sparse invariant checks")
    return torch


def _pair(m, requires_grad=False, dtype=None):
    dtype = dtype or m.float64
    return m.sparse_coo_tensor(m.tensor(IDX), m.tensor(VAL, dtype=dtype), (3, 3), requires_grad=requires_grad)


def _same_sparse(g, t):
    assert g.is_sparse and t.is_sparse and g.shape == tuple(t.shape)
    gc, tc = g.coalesce(), t.coalesce()
    np.testing.assert_array_equal(gc.indices().numpy(), tc.indices().numpy())
    np.testing.assert_allclose(gc.values().detach().numpy(), tc.values().detach().numpy(), rtol=1e-6, atol=1e-6)


@dense_only
def test_construction_repr_and_attributes_are_torch_s():
    torch = _torch()
    for dtype in ("float32", "float64"):
        g, t = _pair(gt, dtype=getattr(gt, dtype)), _pair(torch, dtype=getattr(torch, dtype))
        assert repr(g).replace("gt.", "torch.") == repr(t)
        assert (g.is_sparse, g.layout, g.sparse_dim(), g.dense_dim(), g._nnz(), g.is_coalesced()) == \
               (True, gt.sparse_coo, 2, 0, 5, False)
        assert str(g.layout) == str(t.layout) and g.shape == tuple(t.shape) and g.size() == tuple(t.size())
    inferred = gt.sparse_coo_tensor([[0, 4]], [[1, 2], [3, 4]])
    assert inferred.shape == (5, 2) and inferred.dtype == gt.int64 and inferred.dense_dim() == 1
    assert gt.tensor([[0.0, 1.0]]).is_sparse is False and gt.tensor([1.0]).layout == gt.strided


@dense_only
def test_coalesce_to_dense_to_sparse_transpose_sum_add_are_torch_s():
    torch = _torch()
    g, t = _pair(gt), _pair(torch)
    _same_sparse(g.coalesce(), t.coalesce())
    assert g.coalesce().is_coalesced() and g.coalesce()._nnz() == t.coalesce()._nnz()
    np.testing.assert_array_equal(g.coalesce().indices().numpy(), t.coalesce().indices().numpy())
    np.testing.assert_allclose(g.to_dense().numpy(), t.to_dense().numpy())
    for a, b in ((g.t(), t.t()), (g.transpose(0, 1), t.transpose(0, 1)), (g + g, t + t), (g * 2, t * 2),
                 (2.5 * g, 2.5 * t), (-g, -t), (g - g * 3, t - t * 3), (g / 4, t / 4)):
        _same_sparse(a, b)
    assert (g + g)._nnz() == (t + t)._nnz()
    # torch's CPU add walks both entry lists at once: the order and merging of uncoalesced entries
    a = {m: m.sparse_coo_tensor([[0, 1, 1, 0]], [1.0, 2, 3, 4], (3,)) for m in (gt, torch)}
    b = {m: m.sparse_coo_tensor([[2, 1]], [5.0, 6], (3,)) for m in (gt, torch)}
    for f in (lambda m: a[m] + b[m], lambda m: b[m] + a[m], lambda m: a[m] + b[m].coalesce(),
              lambda m: a[m].coalesce() + b[m], lambda m: a[m].coalesce() + b[m].coalesce()):
        r, e = f(gt), f(torch)
        assert r._indices().tolist() == e._indices().tolist() and r._values().tolist() == e._values().tolist()
        assert r.is_coalesced() == e.is_coalesced()
    np.testing.assert_allclose(g.sum().item(), t.sum().item())
    for dim in (0, 1, (0, 1)):
        a, b = gt.sparse.sum(g, dim), torch.sparse.sum(t, dim)
        if b.is_sparse:
            _same_sparse(a, b)
        else:
            np.testing.assert_allclose(a.numpy(), b.numpy())
    x = np.array([[0.0, 1.5, 0.0], [2.0, 0.0, 0.0]])
    _same_sparse(gt.tensor(x).to_sparse(), torch.tensor(x).to_sparse())
    _same_sparse(gt.tensor(x).to_sparse(1), torch.tensor(x).to_sparse(1))
    assert gt.tensor(x).to_sparse().is_coalesced()
    np.testing.assert_allclose((gt.ones(3, 3, dtype=gt.float64) + g).numpy(), (torch.ones(3, 3) + t).numpy())


@dense_only
@pytest.mark.parametrize("how", ["sparse.mm", "sparse.addmm", "to_dense", "@", "mm", "gt.mm", "matmul"])
def test_products_and_gradients_are_torch_s(how):
    torch = _torch()
    out = {}
    for m in (torch, gt):
        s = _pair(m, requires_grad=True)
        d = m.tensor(D, requires_grad=True)
        fns = {"sparse.mm": lambda: m.sparse.mm(s, d), "@": lambda: s @ d, "mm": lambda: s.mm(d),
               "gt.mm": lambda: m.mm(s, d), "matmul": lambda: m.matmul(s, d),
               "sparse.addmm": lambda: m.sparse.addmm(m.ones(3, 2, dtype=m.float64), s, d, beta=0.5, alpha=2.0),
               "to_dense": lambda: s.to_dense() @ d}
        y = fns[how]()
        (y * m.tensor(np.arange(6.0).reshape(3, 2))).sum().backward()
        out[m] = (y.detach().numpy(), s.grad, d.grad.numpy())
    np.testing.assert_allclose(out[gt][0], out[torch][0], rtol=1e-12)
    np.testing.assert_allclose(out[gt][2], out[torch][2], rtol=1e-12)
    sg, tg = out[gt][1], out[torch][1]
    assert sg.is_sparse == tg.is_sparse
    if tg.is_sparse:
        _same_sparse(sg, tg)
    else:
        np.testing.assert_allclose(sg.numpy(), tg.numpy(), rtol=1e-12)


@dense_only
def test_values_that_require_grad_get_torch_s_gradient_and_grads_accumulate():
    torch = _torch()
    got = []
    for m in (torch, gt):
        v = m.tensor(VAL, dtype=m.float64, requires_grad=True)
        s = m.sparse_coo_tensor(m.tensor(IDX), v, (3, 3))
        (m.sparse.mm(s.coalesce(), m.tensor(D)) ** 2).sum().backward()
        leaf = _pair(m, requires_grad=True)
        for _ in range(2):
            m.sparse.mm(leaf, m.tensor(D)).sum().backward()
        got.append((v.grad.numpy(), leaf.grad))
    np.testing.assert_allclose(got[1][0], got[0][0], rtol=1e-12)
    _same_sparse(got[1][1], got[0][1])


def _embedding_run(m, opt_name, kw, steps=3):
    m.manual_seed(0)
    table = np.random.default_rng(1).normal(size=(7, 3))
    emb = m.nn.Embedding(7, 3, sparse=True, **({"padding_idx": 2} if kw.pop("pad", False) else {}))
    with m.no_grad():
        emb.weight.copy_(m.tensor(table, dtype=m.float32))
    opt = getattr(m.optim, opt_name)(emb.parameters(), **kw)
    ids = m.tensor([[1, 2, 1], [4, 6, 2]])
    grads = []
    for i in range(steps):
        opt.zero_grad()
        loss = (emb(ids) ** 2).sum() * (i + 1)
        loss.backward()
        grads.append(emb.weight.grad)
        opt.step()
    return emb.weight.detach().numpy(), grads


@dense_only
@pytest.mark.parametrize("bad, words", [
    (lambda m: m.sparse_coo_tensor(m.tensor([[0]]), m.tensor([1.0], dtype=m.float64), (3,)), "size"),
    (lambda m: m.zeros(3, 3, dtype=m.float64), "type")])
def test_a_sparse_leaf_s_hooks_are_checked_as_torch_s(bad, words):
    # the gradient of a sparse leaf reaches it outside the walk's leaf step: its hooks' results
    # were taken unchecked (a (3,) gradient for a (3, 3) tensor)
    for m in (gt, _torch()):
        s = _pair(m, requires_grad=True)
        s.register_hook(lambda g: bad(m))
        with pytest.raises(RuntimeError, match=f"hook '<lambda>' has changed the {words} of value"):
            m.sparse.mm(s, m.tensor(D)).sum().backward()


@dense_only
@pytest.mark.parametrize("opt_name, kw", [
    ("SGD", {"lr": 0.1}), ("SGD", {"lr": 0.1, "momentum": 0.9}), ("SGD", {"lr": 0.1, "momentum": 0.9, "nesterov": True}),
    ("SGD", {"lr": 0.05, "momentum": 0.5, "dampening": 0.3, "maximize": True}), ("SGD", {"lr": 0.1, "pad": True}),
    ("SparseAdam", {"lr": 0.1}), ("SparseAdam", {"lr": 0.05, "betas": (0.8, 0.9), "maximize": True}),
    ("Adagrad", {"lr": 0.1}), ("Adagrad", {"lr": 0.1, "lr_decay": 0.01, "initial_accumulator_value": 0.5,
                                           "maximize": True, "pad": True})])
def test_embedding_sparse_training_gives_torch_s_parameters(opt_name, kw):
    torch = _torch()
    tw, tg = _embedding_run(torch, opt_name, dict(kw))
    gw, gg = _embedding_run(gt, opt_name, dict(kw))
    for a, b in zip(gg, tg):
        assert a.is_sparse and not a.is_coalesced() and a._nnz() == b._nnz()
        np.testing.assert_array_equal(a._indices().numpy(), b._indices().numpy())
        np.testing.assert_allclose(a._values().numpy(), b._values().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(gw, tw, rtol=1e-5, atol=1e-6)


@dense_only
def test_sparse_grads_accumulate_clip_and_refusals():
    torch = _torch()
    got = []
    for m in (torch, gt):
        emb = m.nn.Embedding(5, 2, sparse=True)
        emb(m.tensor([1, 3])).sum().backward()
        emb(m.tensor([0, 1])).sum().backward()
        got.append(emb.weight.grad)
        with pytest.raises(RuntimeError, match="Adam does not support sparse gradients, please consider SparseAdam"):
            m.optim.Adam(emb.parameters()).step()
        with pytest.raises(RuntimeError, match="add\\(sparse, dense\\) is not supported"):
            m.optim.SGD(emb.parameters(), lr=0.1, weight_decay=0.1).step()
        with pytest.raises(RuntimeError, match="weight_decay option is not compatible with sparse gradients"):
            m.optim.Adagrad(emb.parameters(), weight_decay=0.1).step()
        p = m.nn.Parameter(m.ones(2))
        p.grad = m.ones(2)
        with pytest.raises(RuntimeError, match="SparseAdam does not support dense gradients"):
            m.optim.SparseAdam([p]).step()
    for m in (torch, gt):
        with pytest.raises(ValueError, match=r"Sparse params at indices \[\[0, 0\]\]: SparseAdam requires dense"):
            m.optim.SparseAdam([_pair(m, requires_grad=True)])
        with pytest.raises(ValueError, match="Invalid learning rate"):
            m.optim.SparseAdam([m.nn.Parameter(m.ones(2))], lr=0.0)
    assert got[1]._nnz() == got[0]._nnz() == 4
    np.testing.assert_array_equal(got[1]._indices().numpy(), got[0]._indices().numpy())
    # torch 2.13's clip_grad_norm_ cannot take a sparse gradient (no sparse vector_norm): the
    # expected values are those of the same gradient made dense
    dense = got[0].to_dense()
    expected = torch.nn.utils.clip_grad_norm_([torch.nn.Parameter(torch.zeros(5, 2))], 0.5) * 0 + dense.norm()
    emb = gt.nn.Embedding(5, 2, sparse=True)
    emb.weight.grad = got[1]
    norm = gt.nn.utils.clip_grad_norm_(emb.parameters(), 0.5)
    np.testing.assert_allclose(norm.item(), expected.item(), rtol=1e-6)
    np.testing.assert_allclose(emb.weight.grad.to_dense().numpy(), (dense * 0.5 / (dense.norm() + 1e-6)).numpy(),
                               rtol=1e-5)


@dense_only
def test_other_ops_are_refused_by_name():
    s = _pair(gt)
    for op, call in [("exp", lambda: s.exp()), ("exp", lambda: gt.exp(s)), ("reshape", lambda: s.reshape(9)),
                     ("__getitem__", lambda: s[0]), ("numpy", lambda: s.numpy()), ("sigmoid", lambda: gt.sigmoid(s)),
                     ("mean", lambda: s.mean()), ("__rpow__", lambda: 2 ** s), ("where", lambda: gt.where(s > 0, s, s))]:
        with pytest.raises(NotImplementedError, match=r"not supported on a sparse COO tensor.*to_dense\(\)"):
            call()
    for name, call in (("softmax", lambda: gt.nn.functional.softmax(s, -1)), ("cat", lambda: gt.cat([s, s])),
                       ("bmm", lambda: gt.bmm(s, s)), ("exp", lambda: gt.exp(s))):
        with pytest.raises(NotImplementedError, match=f"^{name}: not supported"):
            call()
    with pytest.raises(RuntimeError, match="add\\(sparse, dense\\) is not supported"):
        s + gt.ones(3, 3)
    with pytest.raises(RuntimeError, match="indices and values must have same nnz"):
        gt.sparse_coo_tensor(IDX, VAL[:3])
    with pytest.raises(RuntimeError, match="size is inconsistent with indices: for dim 0, size is 2"):
        gt.sparse_coo_tensor(IDX, VAL, (2, 3))
    with pytest.raises(RuntimeError, match="Cannot get values on an uncoalesced tensor"):
        s.values()
    for op, call in (("div", lambda: s / gt.ones(3)),):
        with pytest.raises(NotImplementedError, match=rf"^{op}: .*\(got a dense tensor of shape \(3,\)\)"):
            call()


@pytest.mark.skipif(not MESH, reason="needs GT_DEVICES > 1")
def test_sparse_tensors_are_refused_on_a_mesh():
    with pytest.raises(NotImplementedError, match="not supported on a mesh"):
        gt.sparse_coo_tensor(IDX, VAL, (3, 3))
    with pytest.raises(NotImplementedError, match="not supported on a mesh"):
        gt.tensor([[0.0, 1.0]]).to_sparse()
    emb = gt.nn.Embedding(8, 2, sparse=True)
    with pytest.raises(NotImplementedError, match="sparse=True .* not supported on a mesh"):
        emb(gt.tensor([1, 2, 3, 4]))


@dense_only
def test_sparse_momentum_survives_a_state_dict_and_grads_deepcopy():
    torch = _torch()
    import copy
    got = []
    for m in (torch, gt):
        emb = m.nn.Embedding(5, 2, sparse=True)
        with m.no_grad():
            emb.weight.copy_(m.ones(5, 2))
        opt = m.optim.SGD(emb.parameters(), lr=0.1, momentum=0.9, nesterov=True)
        emb(m.tensor([1, 3])).sum().backward()
        opt.step()
        again = m.optim.SGD(emb.parameters(), lr=0.1, momentum=0.9, nesterov=True)
        again.load_state_dict(opt.state_dict())
        again.zero_grad()
        emb(m.tensor([1, 1])).sum().backward()
        again.step()
        copied = copy.deepcopy(emb.weight.grad)
        assert copied.is_sparse and copied._nnz() == 2
        got.append(emb.weight.detach().numpy())
    np.testing.assert_allclose(got[1], got[0], rtol=1e-6)


@dense_only
def test_embedding_sparse_weight_hooks_run_and_sgd_in_backward_steps():
    torch = _torch()
    seen, weights = {}, {}
    for m in (torch, gt):
        emb = m.nn.Embedding(4, 2, sparse=True)
        with m.no_grad():
            emb.weight.copy_(m.ones(4, 2))
        log = seen[m.__name__] = []
        emb.weight.register_hook(lambda g, log=log: log.append(("hook", g.is_sparse, g._nnz())) or g * 2)
        emb.weight.register_post_accumulate_grad_hook(lambda p, log=log: log.append(("post", p.grad.is_sparse)))
        (emb(m.tensor([1, 2, 1])) * 3).sum().backward()
        log.append(emb.weight.grad.to_dense().numpy().tolist())
        # an optimizer stepping in the backward is a post-accumulate hook on the weight
        emb = m.nn.Embedding(4, 2, sparse=True)
        with m.no_grad():
            emb.weight.copy_(m.ones(4, 2))
        if m is gt:
            opt = gt.optim.SGD(emb.parameters(), lr=0.5, in_backward=True)
        else:
            opt = torch.optim.SGD(emb.parameters(), lr=0.5)
            emb.weight.register_post_accumulate_grad_hook(lambda p, opt=opt: opt.step())
        (emb(m.tensor([1, 2, 1])) * 2).sum().backward()
        weights[m.__name__] = emb.weight.detach().numpy()
    assert seen["gt"] == seen["torch"]
    np.testing.assert_allclose(weights["gt"], weights["torch"])


@dense_only
def test_embedding_sparse_refuses_scale_grad_by_freq():
    torch = _torch()
    for m in (torch, gt):
        emb = m.nn.Embedding(4, 2, sparse=True, scale_grad_by_freq=True)
        with pytest.raises(RuntimeError, match="scale_grad_by_freq not supported with sparse gradients"):
            emb(m.tensor([1, 1, 2])).sum().backward()
        with m.no_grad():     # no gradient asked for: the lookup itself works, as torch's
            assert emb(m.tensor([1, 1])).shape == (2, 2)
