"""Optimizers stepping inside the backward (``in_backward=True``), post-accumulate-grad hooks,
and plain gradient descent fused into the weight-gradient gemm: the same parameters as the
usual ``backward(); step()`` (bit for bit where the arithmetic is the same, to one rounding
where the update is fused), and no gradient left behind."""

import gc

import numpy as np
import pytest

import gt
from gt.backend import B
from gt.client import nn
from gt.nn import functional as F
from helpers import collecting_only_its_own_garbage


def _model(tied=False):
    gt.manual_seed(0)
    model = nn.Sequential(nn.Linear(20, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 5))
    if tied:   # the middle weight is used twice: its gradient is two products
        model[2].weight = model[2].weight
    return model


def _train(in_backward, cls=gt.optim.SGD, steps=3, tied=False, schedule=False, **hyper):
    model = _model(tied)
    opt = cls(model.parameters(), in_backward=in_backward, **hyper)
    sched = gt.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5) if schedule else None
    rng = np.random.default_rng(1)
    for _ in range(steps):
        x = gt.from_numpy(rng.standard_normal((8, 20)).astype(np.float32))
        y = gt.from_numpy(rng.integers(0, 5, 8))
        h = model[1](model[0](x))
        if tied:
            h = model[3](model[2](h)) + model[2](h)
        else:
            h = model[3](model[2](h))
        loss = F.cross_entropy(model[4](h), y)
        opt.zero_grad()
        loss.backward()
        if in_backward:
            assert all(p.grad is None for p in model.parameters())
        opt.step()
        if sched is not None:
            sched.step()
    return [p.numpy().copy() for p in model.parameters()], opt


def _fused_calls(monkeypatch):
    calls = []
    real = B.addmm_
    monkeypatch.setattr(B, "addmm_", lambda *args: (calls.append(args[0].shape), real(*args))[1])
    return calls


@pytest.mark.parametrize("hyper", [dict(lr=0.1), dict(lr=0.1, momentum=0.9), dict(lr=0.1, weight_decay=0.01),
                                   dict(lr=0.1, momentum=0.9, nesterov=True)],
                         ids=["plain", "momentum", "decay", "nesterov"])
def test_sgd_in_backward_gives_the_parameters_of_step(hyper, monkeypatch):
    expected, _ = _train(False, **hyper)
    calls = _fused_calls(monkeypatch)
    got, _ = _train(True, **hyper)
    plain = len(hyper) == 1
    for e, g in zip(expected, got):
        if plain:   # the fused gemm rounds once where gemm-then-update rounds twice
            np.testing.assert_allclose(g, e, rtol=1e-6, atol=1e-7)
        else:
            np.testing.assert_array_equal(g, e)
    unsharded = gt.get_mesh().size == 1
    # plain gradient descent: the three Linear weights, three steps, each one fused gemm
    assert len(calls) == (9 if plain and unsharded else 0)


@pytest.mark.parametrize("cls", [gt.optim.Adam, gt.optim.AdamW])
def test_adam_in_backward_is_bit_identical(cls):
    expected, e_opt = _train(False, cls=cls, lr=1e-2)
    got, g_opt = _train(True, cls=cls, lr=1e-2)
    for e, g in zip(expected, got):
        np.testing.assert_array_equal(g, e)
    for (ke, ve), (kg, vg) in zip(sorted(e_opt.state_dict()["state"].items()),
                                  sorted(g_opt.state_dict()["state"].items())):
        assert ke == kg and ve["step"] == vg["step"]
        np.testing.assert_array_equal(ve["exp_avg_sq"], vg["exp_avg_sq"])


def test_a_weight_used_twice_is_updated_once_with_its_whole_gradient(monkeypatch):
    expected, _ = _train(False, tied=True, lr=0.1)
    calls = _fused_calls(monkeypatch)
    got, _ = _train(True, tied=True, lr=0.1)
    for e, g in zip(expected, got):
        np.testing.assert_allclose(g, e, rtol=1e-6, atol=1e-7)
    assert (16, 16) not in calls    # two products make its gradient: not fused


@pytest.mark.parametrize("hyper", [dict(lr=0.1), dict(lr=0.1, maximize=True)], ids=["plain", "maximize"])
def test_sgd_in_backward_steps_unfused_parameters_in_one_engine_call_bit_for_bit(hyper, monkeypatch):
    # the biases are not fused: plain gradient descent goes straight to B.sgd_step_ (the
    # hook's per-parameter cost on the torch engine), with step()'s bits; maximize does not.
    # One step: after it the fused weights differ by a rounding, and so would later gradients
    expected, _ = _train(False, steps=1, **hyper)
    through_update = []
    real = gt.optim.SGD._update
    monkeypatch.setattr(gt.optim.SGD, "_update",
                        lambda self, p, *a: (through_update.append(p.shape), real(self, p, *a)))
    got, _ = _train(True, steps=1, **hyper)
    for e, g in zip(expected[1::2], got[1::2]):     # the biases
        np.testing.assert_array_equal(g, e)
    if gt.get_mesh().size == 1:   # a parameter spread over the mesh takes the tensor arithmetic
        assert len(through_update) == (0 if len(hyper) == 1 else 6)


def test_a_scheduler_changes_the_fused_learning_rate():
    expected, _ = _train(False, schedule=True, lr=0.1)
    got, opt = _train(True, schedule=True, lr=0.1)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.1 / 8)
    for e, g in zip(expected, got):
        np.testing.assert_allclose(g, e, rtol=1e-6, atol=1e-7)


def test_post_accumulate_grad_hook_sees_the_whole_gradient_once_per_backward():
    w = gt.tensor([1.0, 2.0, 3.0], requires_grad=True)
    seen = []
    handle = w.register_post_accumulate_grad_hook(lambda p: seen.append(p.grad.numpy().copy()))
    ((w * w).sum() + (3 * w).sum()).backward()      # two contributions: 2w and 3
    np.testing.assert_array_equal(seen[0], [5.0, 7.0, 9.0])
    (w * w).sum().backward()                         # accumulates into .grad, as torch does
    assert len(seen) == 2
    np.testing.assert_array_equal(seen[1], [7.0, 11.0, 15.0])
    handle.remove()
    (w * w).sum().backward()
    assert len(seen) == 2


def test_post_accumulate_grad_hook_against_torch():
    torch = pytest.importorskip("torch")
    got, want = [], []
    w = gt.tensor([0.5, -1.0], requires_grad=True)
    tw = torch.tensor([0.5, -1.0], requires_grad=True)
    w.register_post_accumulate_grad_hook(lambda p: got.append(p.grad.numpy().copy()))
    tw.register_post_accumulate_grad_hook(lambda p: want.append(p.grad.detach().numpy().copy()))
    (w.exp() * w).sum().backward()
    (tw.exp() * tw).sum().backward()
    assert len(got) == len(want) == 1
    np.testing.assert_allclose(got[0], want[0], rtol=1e-6)


def test_hooks_need_a_leaf_that_requires_grad_and_a_callable():
    w = gt.ones(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf"):
        (w * 2).register_post_accumulate_grad_hook(print)
    with pytest.raises(RuntimeError, match="does not require grad"):
        gt.ones(3).register_post_accumulate_grad_hook(print)
    with pytest.raises(TypeError, match="callable"):
        w.register_post_accumulate_grad_hook(3)


def test_one_parameter_has_at_most_one_in_backward_optimizer_and_a_dropped_one_lets_go():
    with collecting_only_its_own_garbage():
        model = _model()
        opt = gt.optim.SGD(model.parameters(), lr=0.1, in_backward=True)
        with pytest.raises(ValueError, match="already updated in the backward"):
            gt.optim.SGD(model[0].parameters(), lr=0.1, in_backward=True)
        with pytest.raises(TypeError, match="in_backward must be True or False"):
            gt.optim.SGD(model.parameters(), lr=0.1, in_backward="yes")
        del opt
        gc.collect()
    # the optimizer is gone, and with it its hooks: backward fills .grad again, and a new
    # in_backward optimizer may take the parameters
    F.cross_entropy(model(gt.randn(4, 20)), gt.tensor([0, 1, 2, 3])).backward()
    assert all(p.grad is not None for p in model.parameters())
    gt.optim.SGD(model.parameters(), lr=0.1, in_backward=True)


def test_an_in_backward_optimizer_resumes_from_a_state_dict_as_step_would():
    _, opt = _train(False, lr=0.1, momentum=0.9)
    _, opt_in = _train(True, lr=0.1, momentum=0.9)
    a, b = opt.state_dict(), opt_in.state_dict()
    assert a["param_groups"] == b["param_groups"]
    for k in a["state"]:
        np.testing.assert_array_equal(a["state"][k]["momentum_buffer"], b["state"][k]["momentum_buffer"])
    model = _model()
    fresh = gt.optim.SGD(model.parameters(), lr=0.5, momentum=0.9, in_backward=True)
    fresh.load_state_dict(b)
    assert fresh.param_groups[0]["lr"] == 0.1
    F.cross_entropy(model(gt.randn(4, 20)), gt.tensor([0, 1, 2, 3])).backward()   # steps with lr 0.1
