"""F.cross_entropy and F.nll_loss (gt/nn/class_losses.py) beside torch's: class weights,
ignore_index, label smoothing, (N, C, d1, ...) inputs, class-probability targets, every
reduction, the deprecated size_average/reduce, the modules' weight buffers, gradients in float64,
and the errors."""

import numpy as np
import pytest

import gt
from helpers import torch_or_skip

RNG = np.random.default_rng(7)
LOGITS = {"2d": RNG.normal(size=(6, 4)), "4d": RNG.normal(size=(3, 4, 2, 5))}
TARGETS = {"2d": np.array([0, 3, 1, 3, 2, 0]), "4d": RNG.integers(0, 4, size=(3, 2, 5))}
WEIGHT = np.array([0.5, 2.0, 1.0, 0.25])


def _targets(shape, ignore):
    t = TARGETS[shape].copy()
    if ignore:
        t.flat[[1, 4]] = -1
    return t


def _run(m, fn, shape, weight, ignore, smoothing, reduction, log_space):
    x = m.tensor(LOGITS[shape], dtype=m.float64, requires_grad=True)
    t = m.tensor(_targets(shape, ignore))
    kwargs = dict(reduction=reduction, ignore_index=-1 if ignore else -100)
    if weight:
        kwargs["weight"] = m.tensor(WEIGHT, dtype=m.float64)
    if fn == "cross_entropy":
        loss = m.nn.functional.cross_entropy(x, t, label_smoothing=smoothing, **kwargs)
    else:
        loss = m.nn.functional.nll_loss(x.log_softmax(1) if log_space else x, t, **kwargs)
    loss.sum().backward() if reduction == "none" else loss.backward()
    return loss.detach().numpy(), x.grad.numpy()


@pytest.mark.parametrize("fn", ["cross_entropy", "nll_loss"])
@pytest.mark.parametrize("shape", ["2d", "4d"])
@pytest.mark.parametrize("weight", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("ignore", [False, True], ids=["all", "ignored"])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_class_losses_are_torch_s(fn, shape, weight, ignore, reduction):
    torch = torch_or_skip()
    for smoothing in ((0.0, 0.2) if fn == "cross_entropy" else (0.0,)):
        want = _run(torch, fn, shape, weight, ignore, smoothing, reduction, True)
        got = _run(gt, fn, shape, weight, ignore, smoothing, reduction, True)
        for g, w in zip(got, want):
            np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("shape", ["2d", "4d"])
@pytest.mark.parametrize("weight", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("smoothing", [0.0, 0.3])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_on_class_probabilities_is_torch_s(shape, weight, smoothing, reduction):
    torch = torch_or_skip()
    p = RNG.random(LOGITS[shape].shape)
    p /= p.sum(1, keepdims=True)
    results = []
    for m in (torch, gt):
        x = m.tensor(LOGITS[shape], dtype=m.float64, requires_grad=True)
        w = m.tensor(WEIGHT, dtype=m.float64) if weight else None
        loss = m.nn.functional.cross_entropy(x, m.tensor(p), weight=w, label_smoothing=smoothing, reduction=reduction)
        loss.sum().backward()
        results.append((loss.detach().numpy(), x.grad.numpy()))
    for g, w in zip(results[1], results[0]):
        np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-14)


def test_nothing_counted_gives_nan_as_torch():
    torch = torch_or_skip()
    for m in (torch, gt):
        x = m.zeros(3, 4, dtype=m.float64, requires_grad=True)
        a = m.nn.functional.cross_entropy(x, m.tensor([0, 1, 1]), weight=m.zeros(4, dtype=m.float64))
        b = m.nn.functional.nll_loss(x, m.tensor([-100, -100, -100]))
        c = m.nn.functional.cross_entropy(x, m.tensor([-100, -100, -100]), label_smoothing=0.1)
        assert np.isnan(a.item()) and np.isnan(b.item()) and np.isnan(c.item())
        (b + c).backward()           # every target ignored: a zero gradient, as torch's
        assert x.grad.abs().sum().item() == 0.0
    # every weight 0: torch's gradient is 0 / 0 = NaN, gt's is 0 (no division by zero)
    x = gt.zeros(3, 4, dtype=gt.float64, requires_grad=True)
    gt.nn.functional.cross_entropy(x, gt.tensor([0, 1, 1]), weight=gt.zeros(4, dtype=gt.float64)).backward()
    assert x.grad.abs().sum().item() == 0.0


def test_modules_positional_forms_buffers_and_legacy_arguments():
    torch = torch_or_skip()
    x, t = LOGITS["2d"], TARGETS["2d"]
    for name in ("CrossEntropyLoss", "NLLLoss"):
        tm = getattr(torch.nn, name)(torch.tensor(WEIGHT), ignore_index=3, reduction="sum")
        gm = getattr(gt.nn, name)(gt.tensor(WEIGHT), ignore_index=3, reduction="sum")
        assert list(gm.state_dict()) == list(tm.state_dict()) == ["weight"]
        np.testing.assert_allclose(gm(gt.tensor(x), gt.tensor(t)).item(), tm(torch.tensor(x), torch.tensor(t)).item(),
                                   rtol=1e-12)
        assert list(getattr(gt.nn, name)().state_dict()) == list(getattr(torch.nn, name)().state_dict()) == []
        for m in (torch, gt):
            with pytest.warns(UserWarning, match="size_average and reduce args will be deprecated"):
                assert getattr(m.nn, name)(size_average=False).reduction == "sum"
            with pytest.warns(UserWarning, match="reduction='none'"):
                assert getattr(m.nn, name)(reduce=False).reduction == "none"
    # gt's own positional reduction, kept
    assert gt.nn.CrossEntropyLoss("sum").reduction == "sum"
    xs, ts = gt.tensor(x), gt.tensor(t)
    assert gt.nn.functional.cross_entropy(xs, ts, "sum").item() == pytest.approx(
        torch.nn.functional.cross_entropy(torch.tensor(x), torch.tensor(t), reduction="sum").item(), rel=1e-12)


@pytest.mark.parametrize("call, error, match", [
    (lambda F: F.cross_entropy(gt.zeros(2, 3), gt.tensor([0, 1]), weight=gt.ones(2)), ValueError, "one value per class"),
    (lambda F: F.cross_entropy(gt.zeros(2, 3), gt.ones(2, 3) / 3, ignore_index=1), ValueError, "not supported for floating"),
    (lambda F: F.cross_entropy(gt.zeros(2, 3), gt.ones(2, 2)), RuntimeError, "logits' shape"),
    (lambda F: F.nll_loss(gt.zeros(2, 3), gt.tensor([0, 3])), IndexError, "out of range for 3 classes"),
    (lambda F: F.nll_loss(gt.zeros(2, 3), gt.zeros(2)), RuntimeError, "integer class indices"),
    (lambda F: F.nll_loss(gt.zeros(2, 3), gt.tensor([0, 1]), reduction="avg"), ValueError, "reduction must be"),
    (lambda F: F.cross_entropy(gt.zeros(3), gt.tensor([0, 1])), ValueError, r"\(N, C\)"),
])
def test_class_loss_errors_name_the_value(call, error, match):
    with pytest.raises(error, match=match):
        call(gt.nn.functional)


# ---- where whether a target is ignored is not read back (a GPU): the one op masks them ----------
@pytest.fixture
def deferred(monkeypatch):
    """Checks queued as on a GPU (this machine's mesh is the CPU, where they run at once)."""
    from gt import checks

    monkeypatch.setattr(checks, "deferred", lambda: True)
    yield checks
    checks._pending.clear()


def _op_names(t):
    """The names of the recorded ops that ``t`` was computed through."""
    seen, todo = {}, [t.grad_fn]
    while todo:
        op = todo.pop()
        if op is not None and id(op) not in seen:
            seen[id(op)] = type(op).__name__
            todo.extend(getattr(i, "grad_fn", None) for i in op.inputs)
    return set(seen.values())


@pytest.mark.parametrize("targets,ignore_index", [([0, 3, 1, 3, 2, 0], -100), ([0, -100, 1, 3, -100, 0], -100),
                                                  ([0, 2, 1, 3, 2, 0], 2), ([2, 2, 2, 2, 2, 2], 2)])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_unread_targets_take_the_one_op_with_torchs_values_and_gradients(deferred, targets, ignore_index, reduction):
    torch = torch_or_skip()
    x = gt.tensor(LOGITS["2d"], dtype=gt.float64, requires_grad=True)
    loss = gt.nn.functional.cross_entropy(x, gt.tensor(targets), ignore_index=ignore_index, reduction=reduction)
    assert "SoftmaxCrossEntropy" in _op_names(loss)
    loss.sum().backward()
    tx = torch.tensor(LOGITS["2d"], requires_grad=True)
    tl = torch.nn.functional.cross_entropy(tx, torch.tensor(targets), ignore_index=ignore_index, reduction=reduction)
    tl.sum().backward()
    np.testing.assert_allclose(loss.detach().numpy(), tl.detach().numpy(), rtol=1e-12, atol=1e-15, equal_nan=True)
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-12, atol=1e-15)
    assert not deferred._pending or all(bool(ok.item()) for ok, _, _ in deferred._pending)


def test_unread_targets_second_derivatives_are_torchs(deferred):
    torch = torch_or_skip()
    targets, v = [0, -100, 1, 3, -100, 0], RNG.normal(size=(6, 4))
    x = gt.tensor(LOGITS["2d"], dtype=gt.float64, requires_grad=True)
    (g,) = gt.autograd.grad(gt.nn.functional.cross_entropy(x, gt.tensor(targets)), x, create_graph=True)
    (g * gt.tensor(v)).sum().backward()
    tx = torch.tensor(LOGITS["2d"], requires_grad=True)
    (tg,) = torch.autograd.grad(torch.nn.functional.cross_entropy(tx, torch.tensor(targets)), tx, create_graph=True)
    (tg * torch.tensor(v)).sum().backward()
    np.testing.assert_allclose(g.detach().numpy(), tg.detach().numpy(), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-10, atol=1e-13)


def test_an_unread_target_out_of_range_is_reported_at_the_next_read_not_by_the_indexing(deferred):
    loss = gt.nn.functional.cross_entropy(gt.zeros(3, 4, requires_grad=True), gt.tensor([1, 9, -100]))
    loss.backward()                       # the op indexed a clamped target: no IndexError yet
    with pytest.raises(IndexError, match=r"cross_entropy: target 9 is out of range for 4 classes"):
        loss.item()


@pytest.mark.gpu
@pytest.mark.skipif(not gt.cuda.is_available(), reason="needs CUDA: checks are deferred there by themselves")
def test_on_a_gpu_ignored_targets_take_the_one_op_with_torchs_values():
    torch = torch_or_skip()
    targets = [0, -100, 1, 3, -100, 0]
    x = gt.tensor(LOGITS["2d"], dtype=gt.float32, requires_grad=True)
    loss = gt.nn.functional.cross_entropy(x, gt.tensor(targets))
    assert "SoftmaxCrossEntropy" in _op_names(loss)
    loss.backward()
    tx = torch.tensor(LOGITS["2d"], dtype=torch.float32, requires_grad=True)
    tl = torch.nn.functional.cross_entropy(tx, torch.tensor(targets))
    tl.backward()
    np.testing.assert_allclose(loss.item(), tl.item(), rtol=1e-5)
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("copies", [False, True])
def test_unread_targets_of_a_sharded_batch_give_the_whole_batchs_loss_and_gradient(deferred, copies):
    from gt.sharding import use_mesh

    logits = RNG.normal(size=(8, 5))
    targets = [0, -100, 1, 4, -100, 2, 3, 0]

    def run(devices):
        with use_mesh(devices, copies=copies):
            x = gt.tensor(logits, dtype=gt.float64, requires_grad=True)
            t = gt.tensor(targets)
            loss = gt.nn.functional.cross_entropy(x.shard(0) if devices > 1 else x, t.shard(0) if devices > 1 else t)
            loss.backward()
            return loss.item(), x.grad.numpy()

    (whole, g_whole), (sharded, g_sharded) = run(1), run(2)
    np.testing.assert_allclose(sharded, whole, rtol=1e-12)
    np.testing.assert_allclose(g_sharded, g_whole, rtol=1e-12, atol=1e-15)
