"""gt.nn.utils.prune beside torch.nn.utils.prune: masks, state dicts, hooks, iterative pruning, remove,
errors, and a training step of a pruned Linear."""

import math

import numpy as np
import pytest

import gt
import gt.nn.utils.prune as prune
from gt.sharding.mesh import use_mesh
from helpers import distinct, torch_or_skip


def _pair(shape, seed=0, make=None):
    """A gt module and a torch module with the same distinct-valued ``weight`` of ``shape``."""
    torch = torch_or_skip()
    w = distinct(*shape, seed=seed) + 0.03   # |w| pairwise distinct: no ties in any ordering
    if len(shape) == 2:
        g, t = gt.nn.Linear(shape[1], shape[0]), torch.nn.Linear(shape[1], shape[0])
    else:
        g, t = gt.nn.Conv1d(shape[1], shape[0], shape[2]), torch.nn.Conv1d(shape[1], shape[0], shape[2])
    with gt.no_grad():
        g.weight.copy_(gt.tensor(w, dtype=gt.float32))
        g.bias.copy_(gt.tensor(np.arange(shape[0]) * 0.1, dtype=gt.float32))
    with torch.no_grad():
        t.weight.copy_(torch.tensor(w, dtype=torch.float32))
        t.bias.copy_(torch.tensor(np.arange(shape[0]) * 0.1, dtype=torch.float32))
    return g, t


def _same_state(g, t, name="weight"):
    np.testing.assert_array_equal(getattr(g, name + "_mask").numpy(), getattr(t, name + "_mask").numpy())
    np.testing.assert_array_equal(getattr(g, name).detach().numpy(), getattr(t, name).detach().numpy())
    np.testing.assert_array_equal(getattr(g, name + "_orig").detach().numpy(),
                                  getattr(t, name + "_orig").detach().numpy())
    assert list(g.state_dict()) == list(t.state_dict())
    assert [n for n, _ in g.named_parameters()] == [n for n, _ in t.named_parameters()]
    assert [n for n, _ in g.named_buffers()] == [n for n, _ in t.named_buffers()]
    assert isinstance(g._parameters[name + "_orig"], gt.nn.Parameter)
    assert name not in g._parameters and not isinstance(getattr(g, name), gt.nn.Parameter)
    assert str(getattr(g, name + "_mask").dtype) == "gt.float32"


@pytest.mark.parametrize("amount", [0, 1, 5, 12, 0.0, 0.25, 0.5, 0.99, 1.0])
def test_l1_unstructured_beside_torch(amount):
    import torch.nn.utils.prune as tprune
    g, t = _pair((3, 4))
    assert prune.l1_unstructured(g, "weight", amount=amount) is g
    tprune.l1_unstructured(t, "weight", amount=amount)
    _same_state(g, t)
    hooks = [h for h in g._forward_pre_hooks.values()]
    assert len(hooks) == 1 and isinstance(hooks[0], prune.L1Unstructured) and hooks[0]._tensor_name == "weight"
    assert hooks[0].amount == amount


@pytest.mark.parametrize("n", [1, 2, 3, math.inf, -math.inf, "fro"])
@pytest.mark.parametrize("dim", [0, 1, -1, 2])
@pytest.mark.parametrize("amount", [1, 0.5, 0])
def test_ln_structured_beside_torch(n, dim, amount):
    import torch.nn.utils.prune as tprune
    g, t = _pair((4, 3, 2), seed=1)
    prune.ln_structured(g, "weight", amount=amount, n=n, dim=dim)
    tprune.ln_structured(t, "weight", amount=amount, n=n, dim=dim)
    _same_state(g, t)


def test_importance_scores_and_prune_method():
    torch = torch_or_skip()
    import torch.nn.utils.prune as tprune
    scores = np.random.default_rng(5).standard_normal((3, 4))   # no ties among entries or column norms
    g, t = _pair((3, 4))
    prune.l1_unstructured(g, "weight", 5, importance_scores=gt.tensor(scores, dtype=gt.float32))
    tprune.l1_unstructured(t, "weight", 5, importance_scores=torch.tensor(scores, dtype=torch.float32))
    _same_state(g, t)
    g, t = _pair((3, 4), seed=2)
    prune.ln_structured(g, "weight", 1, 1, 1, importance_scores=gt.tensor(scores, dtype=gt.float32))
    tprune.ln_structured(t, "weight", 1, 1, 1, importance_scores=torch.tensor(scores, dtype=torch.float32))
    _same_state(g, t)
    # the method objects' own prune(): t * mask, t unchanged
    x = distinct(2, 5, seed=3) + 0.03
    got = prune.L1Unstructured(amount=4).prune(gt.tensor(x))
    want = tprune.L1Unstructured(amount=4).prune(torch.tensor(x))
    np.testing.assert_array_equal(got.numpy(), want.numpy())
    assert str(got.dtype) == "gt.float64"
    got = prune.LnStructured(1, n=2, dim=0).prune(gt.tensor(x), importance_scores=gt.tensor(-x))
    want = tprune.LnStructured(1, n=2, dim=0).prune(torch.tensor(x), importance_scores=torch.tensor(-x))
    np.testing.assert_array_equal(got.numpy(), want.numpy())


def test_iterative_pruning_composes_masks():
    import torch.nn.utils.prune as tprune
    g, t = _pair((4, 3, 2), seed=4)
    steps = [("l1_unstructured", dict(amount=3)), ("ln_structured", dict(amount=1, n=2, dim=0)),
             ("l1_unstructured", dict(amount=0.3)), ("ln_structured", dict(amount=1, n=1, dim=-1)),
             ("identity", {})]
    for i, (fn, kw) in enumerate(steps):
        getattr(prune, fn)(g, "weight", **kw)
        getattr(tprune, fn)(t, "weight", **kw)
        _same_state(g, t)
        hooks = list(g._forward_pre_hooks.values())
        assert len(hooks) == 1
        if i:
            assert isinstance(hooks[0], prune.PruningContainer) and len(hooks[0]) == i + 1
            assert [type(m).__name__ for m in hooks[0]] == [type(m).__name__ for m in t._forward_pre_hooks[
                next(iter(t._forward_pre_hooks))]]
    assert int(g.weight_mask.sum().item()) == int(t.weight_mask.sum().item())


def test_custom_identity_global():
    torch = torch_or_skip()
    import torch.nn.utils.prune as tprune
    mask = (distinct(3, 4, seed=7) > 0).astype(np.float32)
    g, t = _pair((3, 4))
    prune.custom_from_mask(g, "weight", gt.tensor(mask))
    tprune.custom_from_mask(t, "weight", torch.tensor(mask))
    _same_state(g, t)
    prune.identity(g, "bias")
    tprune.identity(t, "bias")
    _same_state(g, t, "bias")
    np.testing.assert_array_equal(g.bias_mask.numpy(), np.ones(3, np.float32))
    # global: over two modules at once, one of them already pruned, with importance scores for one
    g2, t2 = _pair((4, 3, 2), seed=8)
    sc = distinct(3, 4, seed=9)
    gp = [(g, "weight"), (g2, "weight"), (g2, "bias")]
    tp = [(t, "weight"), (t2, "weight"), (t2, "bias")]
    prune.global_unstructured(iter(gp), pruning_method=prune.L1Unstructured, amount=10,
                              importance_scores={(g, "weight"): gt.tensor(sc, dtype=gt.float32)})
    tprune.global_unstructured(tp, pruning_method=tprune.L1Unstructured, amount=10,
                               importance_scores={(t, "weight"): torch.tensor(sc, dtype=torch.float32)})
    _same_state(g, t)
    _same_state(g2, t2)
    _same_state(g2, t2, "bias")
    assert isinstance(list(g2._forward_pre_hooks.values())[0], prune.CustomFromMask)
    hooks = {h._tensor_name: h for h in g._forward_pre_hooks.values()}
    assert isinstance(hooks["weight"], prune.PruningContainer) and isinstance(hooks["bias"], prune.Identity)
    assert [type(m).__name__ for m in hooks["weight"]] == ["CustomFromMask", "CustomFromMask"]


def test_remove_and_is_pruned():
    import torch.nn.utils.prune as tprune
    g, t = _pair((3, 4))
    seq = gt.nn.Sequential(gt.nn.ReLU(), g)
    assert not prune.is_pruned(seq)
    prune.l1_unstructured(g, "weight", 0.5)
    tprune.l1_unstructured(t, "weight", 0.5)
    assert prune.is_pruned(seq) and prune.is_pruned(g)
    with pytest.raises(ValueError, match="'bias'.*has to be pruned"):
        prune.remove(g, "bias")
    assert prune.remove(g, "weight") is g
    tprune.remove(t, "weight")
    assert not prune.is_pruned(seq)
    assert isinstance(g._parameters["weight"], gt.nn.Parameter) and g.weight.requires_grad
    np.testing.assert_array_equal(g.weight.detach().numpy(), t.weight.detach().numpy())
    assert list(g.state_dict()) == list(t.state_dict()) == ["bias", "weight"]
    assert len(g._forward_pre_hooks) == 0 and not hasattr(g, "weight_mask") and not hasattr(g, "weight_orig")
    assert int((g.weight == 0).sum().item()) == 6


def test_forward_hook_recomputes_and_state_dict_round_trip():
    torch = torch_or_skip()
    import torch.nn.utils.prune as tprune
    g, t = _pair((3, 4))
    prune.l1_unstructured(g, "weight", 4)
    tprune.l1_unstructured(t, "weight", 4)
    # editing _orig takes effect at the next forward through the pre-hook, as in torch
    with gt.no_grad():
        g.weight_orig.add_(1.0)
    with torch.no_grad():
        t.weight_orig.add_(1.0)
    x = distinct(2, 4, seed=11)
    np.testing.assert_allclose(g(gt.tensor(x, dtype=gt.float32)).detach().numpy(),
                               t(torch.tensor(x, dtype=torch.float32)).detach().numpy(), rtol=1e-6)
    np.testing.assert_array_equal(g.weight.detach().numpy(), t.weight.detach().numpy())
    # a torch pruned state dict loads into a gt pruned module, and back
    g2, t2 = _pair((3, 4), seed=12)
    prune.l1_unstructured(g2, "weight", 1)
    tprune.l1_unstructured(t2, "weight", 1)
    g2.load_state_dict({k: gt.tensor(v.numpy()) for k, v in t.state_dict().items()})
    t2.load_state_dict({k: torch.tensor(np.asarray(v)) for k, v in g.state_dict().items()})
    for k, v in t.state_dict().items():
        np.testing.assert_array_equal(np.asarray(g2.state_dict()[k]), v.numpy())
        np.testing.assert_array_equal(t2.state_dict()[k].numpy(), v.numpy())
    np.testing.assert_allclose(g2(gt.tensor(x, dtype=gt.float32)).detach().numpy(),
                               t(torch.tensor(x, dtype=torch.float32)).detach().numpy(), rtol=1e-6)


def test_training_step_beside_torch():
    torch = torch_or_skip()
    import torch.nn.utils.prune as tprune
    g, t = _pair((3, 4), seed=13)
    prune.l1_unstructured(g, "weight", 0.5)
    tprune.l1_unstructured(t, "weight", 0.5)
    gopt = gt.optim.SGD(g.parameters(), lr=0.1)
    topt = torch.optim.SGD(t.parameters(), lr=0.1)
    x, y = distinct(5, 4, seed=14), distinct(5, 3, seed=15)
    for _ in range(2):
        gl = ((g(gt.tensor(x, dtype=gt.float32)) - gt.tensor(y, dtype=gt.float32)) ** 2).mean()
        tl = ((t(torch.tensor(x, dtype=torch.float32)) - torch.tensor(y, dtype=torch.float32)) ** 2).mean()
        gopt.zero_grad()
        topt.zero_grad()
        gl.backward()
        tl.backward()
        np.testing.assert_allclose(gl.item(), tl.item(), rtol=1e-5)
        np.testing.assert_allclose(g.weight_orig.grad.numpy(), t.weight_orig.grad.numpy(), rtol=1e-5, atol=1e-7)
        assert np.all(g.weight_orig.grad.numpy()[g.weight_mask.numpy() == 0] == 0)
        gopt.step()
        topt.step()
        np.testing.assert_allclose(g.weight_orig.detach().numpy(), t.weight_orig.detach().numpy(), rtol=1e-5)
        np.testing.assert_allclose(g.bias.detach().numpy(), t.bias.detach().numpy(), rtol=1e-5)


@pytest.mark.parametrize("amount,frac", [(5, None), (0.4, 0.4), (0, None), (1.0, 1.0)])
def test_random_methods_counts(amount, frac):
    gt.manual_seed(0)
    g = gt.nn.Conv1d(3, 5, 2)     # weight (5, 3, 2)
    prune.random_unstructured(g, "weight", amount)
    want = amount if frac is None else round(frac * 30)
    assert int((g.weight_mask == 0).sum().item()) == want
    assert tuple(g.weight_mask.shape) == (5, 3, 2) and list(g.state_dict()) == ["bias", "weight_orig", "weight_mask"]
    np.testing.assert_array_equal(g.weight.detach().numpy(), (g.weight_orig * g.weight_mask).detach().numpy())
    # structured along dim 0 (5 channels) on a fresh module
    h = gt.nn.Conv1d(3, 5, 2)
    k = amount if frac is None else round(frac * 5)
    prune.random_structured(h, "weight", amount=amount, dim=0)
    per_channel = h.weight_mask.numpy().reshape(5, -1)
    assert set(per_channel.sum(1).tolist()) <= {0.0, 6.0}
    assert int((per_channel.sum(1) == 0).sum()) == k
    # the draw comes from gt's generator: the same seed gives the same mask
    gt.manual_seed(3)
    a = prune.RandomUnstructured(0.5).compute_mask(gt.ones(4, 4), gt.ones(4, 4)).numpy()
    gt.manual_seed(3)
    b = prune.RandomUnstructured(0.5).compute_mask(gt.ones(4, 4), gt.ones(4, 4)).numpy()
    np.testing.assert_array_equal(a, b)
    assert int((a == 0).sum()) == 8


def test_random_structured_iterative_keeps_channels_pruned():
    gt.manual_seed(1)
    g = gt.nn.Linear(4, 6)
    prune.random_structured(g, "weight", 2, dim=0)
    prune.random_structured(g, "weight", 2, dim=0)
    rows = g.weight_mask.numpy().sum(1)
    assert int((rows == 0).sum()) == 4 and set(rows.tolist()) <= {0.0, 4.0}


@pytest.mark.first_pass
def test_amount_errors():
    for bad in (-1, 1.5, -0.1):
        with pytest.raises(ValueError, match="amount=.*should either be a float in the range"):
            prune.L1Unstructured(bad)
    with pytest.raises(TypeError, match="Invalid type for amount"):
        prune.RandomUnstructured("0.5")
    with pytest.raises(TypeError, match="Invalid type for amount"):
        prune.LnStructured(None, n=2)
    with pytest.raises(TypeError, match="not a BasePruningMethod"):
        prune.PruningContainer(prune.Identity(), "x")
    a, b = prune.Identity(), prune.Identity()
    a._tensor_name, b._tensor_name = "weight", "bias"
    with pytest.raises(ValueError, match="Can only add pruning methods acting on the parameter named 'weight'"):
        prune.PruningContainer(a).add_pruning_method(b)
    with pytest.raises(TypeError, match="parameters is not an Iterable"):
        prune.global_unstructured(3, prune.L1Unstructured, amount=1)
    with pytest.raises(TypeError, match="BasePruningMethod is abstract|abstract"):
        prune.BasePruningMethod()


def test_compute_errors_leave_module_unchanged():
    g = gt.nn.Linear(4, 3)
    with pytest.raises(ValueError, match="amount=13 should be smaller than the number of parameters to prune=12"):
        prune.l1_unstructured(g, "weight", 13)
    assert isinstance(g._parameters["weight"], gt.nn.Parameter) and "weight_orig" not in g._parameters
    assert not prune.is_pruned(g)
    with pytest.raises(ValueError, match="Structured pruning can only be applied to multidimensional"):
        prune.ln_structured(g, "bias", 1, n=2, dim=0)
    assert sorted(g.state_dict()) == ["bias", "weight"]
    with pytest.raises(IndexError, match="Invalid index 2 for tensor of size"):
        prune.random_structured(g, "weight", 1, dim=2)
    with pytest.raises(AssertionError, match="importance_scores should have the same shape"):
        prune.l1_unstructured(g, "weight", 1, importance_scores=gt.ones(4, 3))
    with pytest.raises(TypeError, match='Only "unstructured" PRUNING_TYPE'):
        prune.global_unstructured([(g, "weight")], prune.LnStructured, amount=1, n=2)
    with pytest.raises(TypeError, match="importance_scores must be of type dict"):
        prune.global_unstructured([(g, "weight")], prune.L1Unstructured, importance_scores=[1], amount=1)
    with pytest.raises(AssertionError, match="default_mask shape"):
        prune.custom_from_mask(g, "weight", gt.ones(3))
    # a failed pruning re-registers the parameter, so it moves last: torch does the same
    assert list(g.state_dict()) == ["bias", "weight"] and isinstance(g.weight, gt.nn.Parameter)
    assert not prune.is_pruned(g) and not hasattr(g, "weight_mask")


def test_sharded_weight_gives_unsharded_mask():
    w = distinct(4, 6, seed=20) + 0.03
    want = prune.L1Unstructured(0.5).prune(gt.tensor(w)).numpy()
    want_ln = prune.LnStructured(2, n=1, dim=1).prune(gt.tensor(w)).numpy()
    with use_mesh(2):
        x = gt.tensor(w).shard(0)
        np.testing.assert_array_equal(prune.L1Unstructured(0.5).prune(x).numpy(), want)
        np.testing.assert_array_equal(prune.LnStructured(2, n=1, dim=1).prune(x).numpy(), want_ln)


def test_float64_and_deepcopy():
    import copy
    torch = torch_or_skip()
    import torch.nn.utils.prune as tprune
    g, t = _pair((3, 4), seed=21)
    g, t = g.double(), t.double()
    prune.l1_unstructured(g, "weight", 5)
    tprune.l1_unstructured(t, "weight", 5)
    assert str(g.weight_mask.dtype) == "gt.float64" and t.weight_mask.dtype == torch.float64
    np.testing.assert_array_equal(g.weight_mask.numpy(), t.weight_mask.numpy())
    c = copy.deepcopy(g)     # the copy carries its own hook, acting on its own _orig
    with gt.no_grad():
        c.weight_orig.mul_(2.0)
    c(gt.ones(1, 4, dtype=gt.float64))
    np.testing.assert_allclose(c.weight.detach().numpy(), 2 * g.weight.detach().numpy())
    prune.remove(c, "weight")
    assert prune.is_pruned(g) and not prune.is_pruned(c)
