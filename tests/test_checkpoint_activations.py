"""``gt.utils.checkpoint`` (torch's ``torch.utils.checkpoint``): a checkpointed segment gives the
values and every gradient of the plain one (bit for bit, dropout included), torch's gradients on
the same weights, keeps none of its intermediate values, and refuses what torch refuses."""

import gc
import weakref

import numpy as np
import pytest

import gt
from gt.sharding.mesh import use_mesh
from gt.utils.checkpoint import CheckpointError, checkpoint, checkpoint_sequential
from helpers import collecting_only_its_own_garbage, randn

torch = pytest.importorskip("torch")
nn = gt.nn


def _net(lib, dropout=0.0):
    lib.manual_seed(0)
    return lib.nn.Sequential(lib.nn.Linear(4, 8), lib.nn.GELU(), lib.nn.Dropout(dropout), lib.nn.Linear(8, 8),
                             lib.nn.Tanh(), lib.nn.Linear(8, 3))


def _grads(net, x, y):
    (y ** 2).sum().backward()
    return [y.detach().numpy(), x.grad.numpy()] + [p.grad.numpy() for p in net.parameters()]


@pytest.mark.parametrize("how", ["reentrant", "non_reentrant", "sequential"])
def test_checkpointed_equals_plain_bit_for_bit_with_dropout(how):
    net = _net(gt, dropout=0.3)
    got = []
    for checkpointed in (False, True):
        net.zero_grad()
        gt.manual_seed(1)
        x = gt.tensor(randn(5, 4), dtype=gt.float32, requires_grad=True)
        if not checkpointed:
            y = net(x)
        elif how == "sequential":
            y = checkpoint_sequential(net, 3, x, use_reentrant=False)
        else:
            y = checkpoint(net, x, use_reentrant=how == "reentrant")
        got.append(_grads(net, x, y))
    for a, b in zip(*got):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("reentrant", [True, False])
def test_gradients_are_torchs_on_the_same_weights(reentrant):
    ours, theirs = _net(gt), _net(torch).double()
    ours.load_state_dict(theirs.state_dict())
    ours = ours.to(gt.float64)
    got = []
    for lib, net in ((gt, ours), (torch, theirs)):
        x = lib.tensor(randn(5, 4), dtype=lib.float64, requires_grad=True)
        y = lib.utils.checkpoint.checkpoint(net, x, use_reentrant=reentrant)
        got.append(_grads(net, x, y))
    for a, b in zip(*got):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("reentrant", [True, False])
def test_inputs_without_grad_give_the_parameters_gradients_as_torch_does(reentrant):
    seen = []
    for lib in (gt, torch):
        net = _net(lib)
        x = lib.tensor(randn(5, 4), dtype=lib.float32)
        if reentrant:
            with pytest.warns(UserWarning, match="None of the inputs have requires_grad=True"):
                y = lib.utils.checkpoint.checkpoint(net, x, use_reentrant=True)
        else:
            y = lib.utils.checkpoint.checkpoint(net, x, use_reentrant=False)
        seen.append((y.requires_grad, [p.grad is None for p in net.parameters()] if not y.requires_grad else None))
        if y.requires_grad:
            y.sum().backward()
            seen[-1] = (True, [p.grad is None for p in net.parameters()])
    assert seen[0] == seen[1]


def test_nothing_inside_the_segment_is_kept_after_the_forward():
    kept = []

    def block(x):
        h = (x * 2).exp()
        kept.append(weakref.ref(h))
        return h.sum(1)
    x = gt.tensor(randn(3, 4), requires_grad=True)
    with collecting_only_its_own_garbage():
        y = checkpoint(block, x, use_reentrant=False)
        gc.collect()
    assert kept[0]() is None             # dropped with the segment's graph
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * np.exp(2 * randn(3, 4)), rtol=1e-5)


def test_a_captured_computed_tensor_and_several_outputs():
    w = gt.tensor(randn(4, seed=1), requires_grad=True)
    got = []
    for checkpointed in (False, True):
        w.grad = None
        x = gt.tensor(randn(3, 4), requires_grad=True)
        scale = (w * 3).tanh()                       # computed outside, read inside

        def block(a, k):
            return a * scale * k, a.argmax(1), "label", (a * w).sum()
        out = checkpoint(block, x, 2.0, use_reentrant=False) if checkpointed else block(x, 2.0)
        assert out[2] == "label" and not out[1].requires_grad
        ((out[0] ** 2).sum() + out[3]).backward()
        got.append((out[0].detach().numpy(), out[1].numpy(), x.grad.numpy(), w.grad.numpy()))
    for a, b in zip(*got):
        np.testing.assert_allclose(a, b, rtol=1e-6)


def test_second_derivatives_through_a_checkpoint_are_the_plain_ones():
    got = []
    for checkpointed in (False, True):
        x = gt.tensor(randn(3, 4), dtype=gt.float64, requires_grad=True)
        f = lambda a: (a.sin() * a).sum(1) ** 2          # noqa: E731
        y = checkpoint(f, x, use_reentrant=False) if checkpointed else f(x)
        g, = gt.autograd.grad(y.sum(), x, create_graph=True)
        (g ** 2).sum().backward()
        got.append((g.detach().numpy(), x.grad.numpy()))
    for a, b in zip(*got):
        np.testing.assert_allclose(a, b, rtol=1e-12)


@pytest.mark.parametrize("devices", [2, 4])
def test_a_sharded_batch_gives_the_unsharded_gradients(devices):
    got = []
    for shard in (False, True):
        with use_mesh(devices):
            net = _net(gt)
            x = gt.tensor(randn(8, 4), dtype=gt.float32, requires_grad=True)
            y = checkpoint(net, x.shard(0) if shard else x, use_reentrant=False)
            got.append(_grads(net, x, y))
    for a, b in zip(*got):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)


def test_errors_and_warnings_are_torchs():
    net = _net(gt)
    x = gt.tensor(randn(2, 4), dtype=gt.float32, requires_grad=True)
    with pytest.warns(UserWarning, match="use_reentrant parameter should be passed explicitly"):
        checkpoint(net, x)
    with pytest.raises(ValueError, match="Unexpected keyword arguments: scale"):
        checkpoint(lambda a, scale: a * scale, x, use_reentrant=True, scale=2.0)
    y = checkpoint(lambda a, scale: a * scale, x, use_reentrant=False, scale=2.0)     # fine without reentrancy
    np.testing.assert_allclose(y.detach().numpy(), 2 * x.detach().numpy())
    calls = []

    def changing(a):
        calls.append(1)
        return a[: len(calls)] * 2
    z = checkpoint(changing, x, use_reentrant=False)
    with pytest.raises(CheckpointError, match="recomputed values have different metadata"):
        z.sum().backward()
