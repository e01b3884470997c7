"""``nn.Embedding(sparse=True)`` / ``F.embedding(sparse=True)`` as an op of the graph (torch's
``EmbeddingBackward0``) beside torch: ``gt.autograd.grad`` and ``backward(inputs=...)`` to the
weight give its sparse gradient, checkpointing, in-place changes of and hooks on the output,
``retain_graph`` with gradients accumulating in torch's layout (merged or side by side), a table
looked up several times in one graph, ``padding_idx``, weight hooks, the optimizer step's speed."""

import tracemalloc
import warnings

import numpy as np
import pytest

import gt
from gt.backend import B
from gt.sharding.mesh import get_mesh
from helpers import torch_or_skip

pytestmark = pytest.mark.skipif(get_mesh().size > 1, reason="sparse tensors are refused on a mesh")
IDS = [[1, 2, 1], [4, 1, 3]]
TABLE = np.random.default_rng(3).normal(size=(6, 3))


def _torch():
    torch = torch_or_skip()
    warnings.filterwarnings("ignore", message="Sparse invariant checks")
    return torch


def _emb(m, **kw):
    emb = m.nn.Embedding(6, 3, sparse=True, **kw)
    with m.no_grad():
        emb.weight.copy_(m.tensor(TABLE, dtype=m.float32))
    return emb


def _same(g, t):
    """The same sparse tensor entry by entry (uncoalesced layout included)."""
    assert g.is_sparse and t.is_sparse and g.shape == tuple(t.shape) and g._nnz() == t._nnz()
    np.testing.assert_array_equal(g._indices().numpy(), t._indices().numpy())
    np.testing.assert_allclose(g._values().detach().numpy(), t._values().detach().numpy(), rtol=1e-6, atol=1e-6)


def _both(fn):
    torch = _torch()
    return fn(gt), fn(torch)


def test_the_output_is_in_the_graph_and_autograd_grad_gives_the_sparse_gradient():
    def run(m):
        emb = _emb(m)
        out = emb(m.tensor(IDS))
        assert not out.is_leaf and out.grad_fn is not None
        loss = (out * out).sum()
        g, = m.autograd.grad(loss, [emb.weight], retain_graph=True)
        assert emb.weight.grad is None and not g.is_coalesced()
        go, gw = m.autograd.grad(loss, [out, emb.weight])
        return g, gw, go.detach().numpy()
    (g, gw, go), (tg, tgw, tgo) = _both(run)
    _same(g, tg)
    _same(gw, tgw)
    np.testing.assert_allclose(go, tgo, rtol=1e-6)


def test_backward_inputs_gives_the_weight_and_only_the_inputs_their_gradient():
    def run(m):
        emb, lin = _emb(m), m.nn.Linear(3, 2)
        with m.no_grad():
            lin.weight.copy_(m.tensor([[0.5, -1.0, 2.0], [1.0, 0.25, -0.5]]))
            lin.bias.zero_()
        loss = lin(emb(m.tensor(IDS))).pow(2).sum()
        loss.backward(inputs=[emb.weight], retain_graph=True)
        assert lin.weight.grad is None
        first = emb.weight.grad
        loss.backward(inputs=[lin.weight])
        assert emb.weight.grad is first
        return first, lin.weight.grad.numpy()
    (g, lw), (tg, tlw) = _both(run)
    _same(g, tg)
    np.testing.assert_allclose(lw, tlw, rtol=1e-5)


@pytest.mark.parametrize("reentrant", [False, True])
def test_checkpoint_gives_torch_s_sparse_gradient(reentrant):
    def run(m):
        emb = _emb(m)
        lin = m.nn.Linear(3, 3)
        with m.no_grad():
            lin.weight.copy_(m.tensor(TABLE[:3], dtype=m.float32))
            lin.bias.zero_()
        ids, scale = m.tensor(IDS), m.tensor([1.5, -0.5, 2.0], requires_grad=True)   # torch's reentrant needs one
        out = m.utils.checkpoint.checkpoint(lambda i, s: m.tanh(lin(emb(i)) * s), ids, scale, use_reentrant=reentrant)
        out.pow(2).sum().backward()
        return emb.weight.grad, lin.weight.grad.numpy(), scale.grad.numpy()
    (g, lw, sg), (tg, tlw, tsg) = _both(run)
    _same(g, tg)
    np.testing.assert_allclose(lw, tlw, rtol=1e-5)
    np.testing.assert_allclose(sg, tsg, rtol=1e-5)


def test_in_place_changes_of_and_hooks_on_the_output_reach_the_weight():
    def run(m):
        emb = _emb(m)
        out = emb(m.tensor(IDS))
        out.register_hook(lambda g: g * 3)
        out.mul_(2)
        out[0, 1] = 0.0
        (out * out).sum().backward()
        return emb.weight.grad
    g, tg = _both(run)
    _same(g, tg)


@pytest.mark.parametrize("loss", ["sum", "square"])
def test_retain_graph_two_backwards_accumulate_as_torch_s(loss):
    # torch's sparse += merges the entry lists where both value arrays are contiguous (a squared
    # loss) and puts them side by side where one is not (the expanded gradient of a sum)
    def run(m):
        emb = _emb(m)
        out = emb(m.tensor(IDS))
        total = out.sum() if loss == "sum" else (out * out).sum()
        total.backward(retain_graph=True)
        once = emb.weight.grad.to_dense().numpy()
        total.backward()
        return emb.weight.grad, once
    (g, once), (tg, tonce) = _both(run)
    _same(g, tg)
    assert g._nnz() == (12 if loss == "sum" else 6)
    np.testing.assert_allclose(g.to_dense().numpy(), 2 * once, rtol=1e-6)


@pytest.mark.parametrize("loss", ["sum", "square"])
def test_a_table_looked_up_three_times_sums_in_torch_s_order(loss):
    def run(m):
        emb = _emb(m)
        f = (lambda o: o.sum()) if loss == "sum" else (lambda o: (o * o).sum())
        total = sum(f(emb(m.tensor(ids))) for ids in ([5, 0], [1, 2], [4, 1]))
        total.backward()
        return emb.weight.grad
    g, tg = _both(run)
    _same(g, tg)


def test_padding_idx_and_weight_hooks():
    def run(m):
        emb = _emb(m, padding_idx=1)
        seen = []
        emb.weight.register_hook(lambda g: seen.append(g._nnz()) or g * 2)
        g, = m.autograd.grad((emb(m.tensor(IDS)) ** 2).sum(), emb.weight)
        emb.weight.register_hook(lambda g: g.to_dense())
        with pytest.raises(RuntimeError, match="hook .* has changed the type of value"):
            emb(m.tensor(IDS)).sum().backward()
        return g, seen
    (g, seen), (tg, tseen) = _both(run)
    _same(g, tg)
    assert seen == tseen == [3, 3]     # the second backward ran the first hook, then raised


def test_create_graph_gives_a_sparse_gradient_that_requires_grad():
    def run(m):
        emb = _emb(m)
        out = emb(m.tensor(IDS))
        g, = m.autograd.grad((out ** 3).sum(), emb.weight, create_graph=True)
        assert g.is_sparse and g.requires_grad
        again, = m.autograd.grad((g.to_dense() ** 2).sum(), out)
        return g, again.numpy()
    (g, again), (tg, tagain) = _both(run)
    _same(g, tg)
    np.testing.assert_allclose(again, tagain, rtol=1e-5)


def test_sparse_sgd_step_touches_only_the_looked_up_rows():
    # the step used to copy the whole table twice (an out-of-place index_add_): on a 50,000 x 64
    # table with 512 ids it must allocate no table-sized buffer (numpy's allocations are traced)
    gt.manual_seed(0)
    emb = gt.nn.Embedding(50_000, 64, sparse=True)
    opt = gt.optim.SGD(emb.parameters(), lr=0.1)
    ids = gt.randint(0, 50_000, (512,))
    before = emb.weight.detach().numpy().copy()

    def step():
        opt.zero_grad()
        (emb(ids) ** 2).sum().backward()
        opt.step()
    step()
    changed = np.flatnonzero((emb.weight.detach().numpy() != before).any(1))
    np.testing.assert_array_equal(changed, np.unique(ids.numpy()))
    if B.name == "numpy":
        tracemalloc.start()
        try:
            step()
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert peak < 50_000 * 64 * 4 / 8, f"a sparse SGD step allocated {peak} bytes at its peak"


def test_dense_optimizers_refuse_sparse_grads_only_once_one_can_exist(monkeypatch):
    import gt.optim.optimizer as optimizer
    from gt.tensor.sparse_autograd import SparseSeen
    calls = []
    real = optimizer.refuse_sparse_grads
    monkeypatch.setattr(optimizer, "refuse_sparse_grads", lambda *a: calls.append(a) or real(*a))
    p = gt.nn.Parameter(gt.ones(3))
    p.grad = gt.ones(3)
    monkeypatch.setattr(SparseSeen, "made", False)     # no sparse tensor made yet: no pass over the parameters
    gt.optim.Adam([p]).step()
    assert calls == []
    emb = _emb(gt)
    emb(gt.tensor(IDS)).sum().backward()
    assert SparseSeen.made
    for opt in (gt.optim.Adam, gt.optim.AdamW, gt.optim.RMSprop, gt.optim.Adamax):
        with pytest.raises(RuntimeError, match="does not support sparse gradients"):
            opt(emb.parameters()).step()


def test_an_optimizer_stepping_in_the_backward_refuses_a_sparse_grad_as_torch_s():
    torch = _torch()
    emb = _emb(torch)
    opt = torch.optim.Adam(emb.parameters())
    emb.weight.register_post_accumulate_grad_hook(lambda p: opt.step())
    with pytest.raises(RuntimeError, match="Adam does not support sparse gradients, please consider SparseAdam"):
        emb(torch.tensor(IDS)).sum().backward()
    emb = _emb(gt)
    opt = gt.optim.Adam(emb.parameters(), in_backward=True)
    with pytest.raises(RuntimeError, match="Adam does not support sparse gradients, please consider SparseAdam"):
        emb(gt.tensor(IDS)).sum().backward()


def test_a_table_tied_to_a_linear_head_gets_the_dense_sum_of_both_gradients():
    # a big head weight's gradient of few rows is kept as factors (gt/autograd/deferred.py): it
    # meets the embedding's sparse one at the tied weight, and torch's sum is dense
    def run(m):
        emb, head = m.nn.Embedding(300, 256, sparse=True), m.nn.Linear(256, 300, bias=False)
        head.weight = emb.weight
        with m.no_grad():
            emb.weight.copy_(m.tensor(np.random.default_rng(0).normal(size=(300, 256)) * 0.05, dtype=m.float32))
        head(emb(m.tensor([[1, 2, 3, 1]]))).pow(2).sum().backward()
        assert not emb.weight.grad.is_sparse
        return emb.weight.grad.numpy()
    g, tg = _both(run)
    np.testing.assert_allclose(g, tg, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("inputs", [False, True])
def test_a_dense_gradient_added_to_a_sparse_grad_makes_it_dense(inputs):
    # the second backward adds a dense gradient into the sparse .grad the first one left (torch's
    # AccumulateGrad: sparse + dense is dense); gt's walk used to add it to the sparse tensor's storage
    def run(m):
        emb = _emb(m)
        emb(m.tensor(IDS)).sum().backward()
        kw = {"inputs": [emb.weight]} if inputs else {}
        (emb.weight * m.tensor(TABLE, dtype=m.float32)).sum().backward(**kw)
        assert not emb.weight.grad.is_sparse
        return emb.weight.grad.numpy()
    g, tg = _both(run)
    np.testing.assert_allclose(g, tg, rtol=1e-6, atol=1e-6)


def test_lbfgs_reads_a_sparse_gradient_densely_as_torch_s():
    def run(m):
        emb = _emb(m)
        opt = m.optim.LBFGS(emb.parameters(), lr=0.5, max_iter=4)

        def closure():
            opt.zero_grad()
            loss = (emb(m.tensor(IDS)) - 1).pow(2).sum()
            loss.backward()
            return loss
        opt.step(closure)
        return emb.weight.detach().numpy()
    g, tg = _both(run)
    np.testing.assert_allclose(g, tg, rtol=1e-5, atol=1e-6)
