"""Sharded training of the Pixel Transformer equals one device, with the placements DESIGN.md
describes and the collectives it promises (one all-reduce per parameter gradient)."""

import numpy as np
import pytest

import gt
from gt import nn
from gt.sharding import Partial, Replicate, Shard, count_collectives, use_mesh
from lpm.model import PixelTransformer

def _batches(batch, seq, img, classes, steps, seed=0):
    rng = np.random.default_rng(seed)
    return [(rng.standard_normal((batch, seq, img, img)).astype(np.float32),
             rng.integers(0, classes, batch)) for _ in range(steps)]


def _train(n_devices, model_kw, batches, lr=0.05, optimizer="sgd", copies=False):
    """Losses and final parameters of a few optimizer steps on ``n_devices`` virtual devices."""
    with use_mesh(n_devices, copies=copies):
        gt.manual_seed(0)
        model = PixelTransformer(**model_kw)
        params = list(model.parameters())
        opt = gt.optim.SGD(params, lr=lr) if optimizer == "sgd" else gt.optim.SGD(params, lr=lr, momentum=0.9)
        losses = []
        for x, y in batches:
            xb, yb = gt.from_numpy(x), gt.from_numpy(y)
            if n_devices > 1:
                assert xb.placement == Shard(0) and yb.placement == Shard(0)
            loss = nn.functional.cross_entropy(model(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        return np.array(losses), {k: v.copy() for k, v in model.state_dict().items()}


@pytest.mark.own_mesh       # _train picks each mesh (use_mesh): GT_DEVICES would only repeat these
@pytest.mark.parametrize("pos_encoding", ["sinusoidal", "learned"])
@pytest.mark.parametrize("batch", [8, 6, 5])  # even and uneven splits over 4 devices
def test_training_on_4_devices_equals_one_device(small_model_config, pos_encoding, batch):
    kw = dict(small_model_config, pos_encoding=pos_encoding)
    batches = _batches(batch, 5, 12, 5, steps=5)
    losses1, params1 = _train(1, kw, batches)
    losses4, params4 = _train(4, kw, batches)
    np.testing.assert_allclose(losses4, losses1, rtol=1e-5)
    assert params1.keys() == params4.keys()
    if pos_encoding == "learned":
        assert "pos_embedding" in params4  # a trained parameter, sliced to the sequence length
    for name in params1:
        scale = float(np.abs(params1[name]).max()) or 1.0
        np.testing.assert_allclose(params4[name], params1[name], rtol=1e-5, atol=1e-6 * scale, err_msg=name)
    assert not np.allclose(params1["embed.weight"], _train(1, kw, batches[:1])[1]["embed.weight"])  # it trained


@pytest.mark.own_mesh
@pytest.mark.parametrize("n_devices", [2, 3])
def test_devices_without_shared_memory_train_as_one_device(small_model_config, n_devices):
    """The paths data takes between GPUs (each replica its own copy, results brought home, each
    device's buffers made on that device), run on virtual CPU devices that do not share memory."""
    batches = _batches(6, 5, 12, 5, steps=3)
    losses1, params1 = _train(1, small_model_config, batches)
    with count_collectives() as c:
        losses_n, params_n = _train(n_devices, small_model_config, batches, copies=True)
    assert c["broadcast"] > 0          # replicated parameters go to every device
    np.testing.assert_allclose(losses_n, losses1, rtol=1e-5)
    for name in params1:
        scale = float(np.abs(params1[name]).max()) or 1.0
        np.testing.assert_allclose(params_n[name], params1[name], rtol=1e-5, atol=1e-6 * scale, err_msg=name)


@pytest.mark.own_mesh
@pytest.mark.parametrize("n_devices", [2, 3])
def test_training_with_momentum_on_2_and_3_devices(small_model_config, n_devices):
    # (not Adam: the key bias gets a gradient that is zero up to rounding, which Adam's
    # normalisation turns into full-size steps of either sign)
    kw = dict(small_model_config, pos_encoding="learned", dropout=0.0)
    batches = _batches(7, 4, 12, 5, steps=3, seed=1)
    losses1, params1 = _train(1, kw, batches, optimizer="momentum")
    lossesn, paramsn = _train(n_devices, kw, batches, optimizer="momentum")
    np.testing.assert_allclose(lossesn, losses1, rtol=1e-5)
    for name in params1:
        np.testing.assert_allclose(paramsn[name], params1[name], rtol=1e-5, atol=1e-6, err_msg=name)


@pytest.mark.own_mesh
def test_default_model_five_steps_on_4_devices():
    """The default PixelTransformer (200x200 images, 13.4M parameters), float32."""
    batches = _batches(8, 3, 200, 10, steps=5, seed=2)
    losses1, params1 = _train(1, {}, batches, lr=0.01)
    losses4, params4 = _train(4, {}, batches, lr=0.01)
    np.testing.assert_allclose(losses4, losses1, rtol=1e-5)
    for name in params1:
        scale = float(np.abs(params1[name]).max()) or 1.0
        _assert_close(params4[name], params1[name], rtol=1e-5, atol=1e-6 * scale, name=name)


def _assert_close(got, want, rtol, atol, name):
    """assert_allclose's test (|got - want| <= atol + rtol * |want|) in four passes over the arrays,
    stricter only in that a NaN or inf fails even where both have it: on the default model's 10
    million embedding weights assert_allclose's own took 0.2-0.5 s a call, here called twice a run."""
    assert got.shape == want.shape, f"{name}: shape {got.shape}, expected {want.shape}"
    bound = np.abs(want)
    bound *= rtol
    bound += atol
    err = np.abs(got - want)
    close = err <= bound
    close &= np.isfinite(want)      # an inf bound would pass any value (assert_allclose's isclose checks it too)
    assert close.all(), f"{name}: {close.size - np.count_nonzero(close)} values off, largest error {np.nanmax(err)}"


def test_placements_in_a_training_step(small_model_config, mesh4):
    """Parameters replicated, activations sharded along the batch, the loss partial until read,
    gradients replicated after backward."""
    gt.manual_seed(0)
    model = PixelTransformer(**small_model_config)
    x = gt.from_numpy(_batches(8, 5, 12, 5, 1)[0][0])
    y = gt.tensor([0, 1, 2, 3, 4, 0, 1, 2])
    assert all(p.placement == Replicate() for p in model.parameters())
    tokens = model.embed(x.reshape(8, 5, 144))
    assert tokens.placement == Shard(0)
    h = model.blocks[0](tokens)
    assert h.placement == Shard(0) and h.shape == (8, 5, 32)
    logits = model(x)
    assert logits.placement == Shard(0)
    loss = nn.functional.cross_entropy(logits, y)
    assert loss.placement == Partial()
    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.placement == Replicate(), name


def test_one_all_reduce_per_parameter_gradient_and_no_activation_gathers(small_model_config, mesh4):
    """Counts the collectives of one training step, so that a regression which gathers the
    batch (or all-reduces a gradient twice) is caught."""
    gt.manual_seed(0)
    model = PixelTransformer(**dict(small_model_config, pos_encoding="learned"))
    opt = gt.optim.SGD(model.parameters(), lr=0.1)
    x, y = _batches(8, 5, 12, 5, 1)[0]
    with count_collectives() as c:
        xb, yb = gt.from_numpy(x), gt.from_numpy(y)
        loss = nn.functional.cross_entropy(model(xb), yb)
        opt.zero_grad()
        loss.backward()
        opt.step()
    n_params = len(list(model.parameters()))
    assert c["all_reduce"] == n_params, dict(c)  # one per parameter gradient, none for the loss yet
    assert c["reduce_scatter"] == 0 and c["broadcast"] == 0
    # a few scalars are gathered for the input checks (min/max of pixels and labels); never activations
    assert c.elements_moved["all_gather"] <= 4 * 4, dict(c.elements_moved)
    with count_collectives() as c:
        loss.item()
    assert dict(c) == {"all_reduce": 1}  # the partial loss is summed when it is read


def test_partial_gradient_is_reduced_once_however_often_a_parameter_is_used():
    with use_mesh(3):
        w = gt.randn(4, 4, requires_grad=True)
        x = gt.randn(9, 4)
        assert x.placement == Shard(0)
        with count_collectives() as c:
            out = (x @ w).relu() @ w + x @ w.T   # w used three times, each giving a partial gradient
            out.sum().backward()
        assert c["all_reduce"] == 1 and c["all_gather"] == 0, dict(c)
    with use_mesh(1):
        w1 = gt.tensor(w.detach().numpy(), requires_grad=True)
        x1 = gt.tensor(x.numpy())
        ((x1 @ w1).relu() @ w1 + x1 @ w1.T).sum().backward()
    np.testing.assert_allclose(w.grad.numpy(), w1.grad.numpy(), rtol=1e-5)


@pytest.mark.parametrize("pos_encoding", ["sinusoidal", "learned"])
def test_class_token_training_on_4_devices_equals_one_device(small_model_config, pos_encoding):
    # The class token (replicated, expanded over a batch split unevenly: 6 over 4 devices) is
    # concatenated with the sharded frames; its gradient sums over every device's sequences.
    kw = dict(small_model_config, pool="cls", pos_encoding=pos_encoding)
    batches = _batches(6, 5, 12, 5, steps=3)
    losses1, params1 = _train(1, kw, batches)
    losses4, params4 = _train(4, kw, batches)
    np.testing.assert_allclose(losses4, losses1, rtol=1e-5)
    assert params1.keys() == params4.keys() and "cls_token" in params4
    gt.manual_seed(0)
    start = PixelTransformer(**kw).cls_token.numpy()
    assert not np.allclose(params1["cls_token"], start)                   # it trained
    for name in params1:
        scale = float(np.abs(params1[name]).max()) or 1.0
        np.testing.assert_allclose(params4[name], params1[name], rtol=1e-5, atol=1e-6 * scale, err_msg=name)
