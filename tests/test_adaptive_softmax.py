"""nn.AdaptiveLogSoftmaxWithLoss beside torch 2.13: a torch state dict loads and gives torch's outputs,
loss, log_prob, predict and gradients (input and every parameter); unbatched input, clusters with
no rows, errors, a sharded batch."""

import warnings

import numpy as np
import pytest

import gt
from gt.sharding.mesh import use_mesh
from helpers import randn, torch_or_skip

# a cluster of no classes makes a zero-element Linear: torch warns at its init too, as gt now does
pytestmark = pytest.mark.filterwarnings("ignore:Initializing zero-element tensors is a no-op")

CONFIGS = [
    dict(in_features=8, n_classes=10, cutoffs=[4, 8]),
    dict(in_features=8, n_classes=10, cutoffs=[4, 8], div_value=2.0, head_bias=True),
    dict(in_features=6, n_classes=5, cutoffs=[1]),
    dict(in_features=12, n_classes=9, cutoffs=[2, 3, 6], div_value=1.5, head_bias=True),
]


def _twins(kwargs, dtype="float64"):
    """torch's module and gt's with torch's weights, both in ``dtype``."""
    torch = torch_or_skip()
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)      # torch's note on a zero-width tail projection
        ref = torch.nn.AdaptiveLogSoftmaxWithLoss(**kwargs).double()
    module = gt.nn.AdaptiveLogSoftmaxWithLoss(**kwargs, dtype=gt.float64)
    assert [(k, tuple(v.shape)) for k, v in ref.state_dict().items()] == \
           [(k, v.shape) for k, v in module.state_dict().items()]
    ours = "\n".join(line.split("  #")[0] for line in repr(module).splitlines())
    assert ours == repr(ref)
    module.load_state_dict({k: v.numpy() for k, v in ref.state_dict().items()})
    if dtype == "float32":
        ref = ref.float()
        module = gt.nn.AdaptiveLogSoftmaxWithLoss(**kwargs)
        module.load_state_dict({k: v.numpy() for k, v in ref.state_dict().items()})
    return torch, ref, module


def _targets(n_classes, n, seed):
    return np.random.default_rng(seed).integers(0, n_classes, n)


def _compare_grads(ref, module, x_t, x_g, rtol):
    np.testing.assert_allclose(x_g.grad.numpy(), x_t.grad.numpy(), rtol=rtol, atol=rtol * 1e-2)
    theirs = dict(ref.named_parameters())
    for name, p in module.named_parameters():
        if theirs[name].grad is None:          # a cluster no target fell in
            assert p.grad is None or not np.any(p.grad.numpy()), name
            continue
        assert p.grad is not None, name
        np.testing.assert_allclose(p.grad.numpy(), theirs[name].grad.numpy(), rtol=rtol, atol=rtol * 1e-2,
                                   err_msg=name)


@pytest.mark.parametrize("kwargs", CONFIGS)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_forward_loss_and_gradients_as_torch(kwargs, dtype):
    torch, ref, module = _twins(kwargs, dtype)
    x = randn(7, kwargs["in_features"], seed=1).astype(dtype)
    target = _targets(kwargs["n_classes"], 7, seed=2)
    x_t = torch.tensor(x, requires_grad=True)
    x_g = gt.tensor(x, requires_grad=True)
    out_t, loss_t = ref(x_t, torch.tensor(target))
    out_g, loss_g = module(x_g, gt.tensor(target))
    rtol = 1e-10 if dtype == "float64" else 1e-5
    assert out_g.shape == (7,) and loss_g.shape == () and out_g.dtype.name == dtype
    np.testing.assert_allclose(out_g.numpy(), out_t.detach().numpy(), rtol=rtol)
    np.testing.assert_allclose(float(loss_g.item()), loss_t.item(), rtol=rtol)
    up = randn(7, seed=3).astype(dtype)
    (out_t * torch.tensor(up)).sum().add(loss_t * 2).backward()
    ((out_g * gt.tensor(up)).sum() + loss_g * 2).backward()
    _compare_grads(ref, module, x_t, x_g, 1e-8 if dtype == "float64" else 1e-4)


def test_named_output_and_all_rows_in_one_place():
    """Only shortlist rows, then only rows of one tail cluster (the other clusters get no rows)."""
    torch, ref, module = _twins(CONFIGS[3])
    x = randn(5, 12, seed=4)
    for target in ([0, 1, 1, 0, 0], [6, 7, 8, 8, 6], [2, 2, 2, 2, 2]):
        x_t, x_g = torch.tensor(x, requires_grad=True), gt.tensor(x, requires_grad=True)
        ref.zero_grad()
        module.zero_grad()
        res_t = ref(x_t, torch.tensor(target))
        res_g = module(x_g, gt.tensor(target))
        assert res_g._fields == ("output", "loss")
        np.testing.assert_allclose(res_g.output.numpy(), res_t.output.detach().numpy(), rtol=1e-10)
        res_t.loss.backward()
        res_g.loss.backward()
        x_t.grad = x_t.grad if x_t.grad is not None else torch.zeros_like(x_t)
        _compare_grads(ref, module, x_t, x_g, 1e-8)


def test_unbatched_input():
    torch, ref, module = _twins(CONFIGS[0])
    x = randn(8, seed=5)
    for target in (2, 9):
        out_t, loss_t = ref(torch.tensor(x), torch.tensor(target))
        out_g, loss_g = module(gt.tensor(x), gt.tensor(target))
        assert out_g.shape == () and loss_g.shape == ()
        np.testing.assert_allclose(out_g.numpy(), out_t.detach().numpy(), rtol=1e-10)
        np.testing.assert_allclose(loss_g.numpy(), loss_t.detach().numpy(), rtol=1e-10)


@pytest.mark.parametrize("kwargs", CONFIGS[:2] + CONFIGS[3:])
def test_log_prob_as_torch(kwargs):
    torch, ref, module = _twins(kwargs)
    x = randn(6, kwargs["in_features"], seed=6)
    x_t, x_g = torch.tensor(x, requires_grad=True), gt.tensor(x, requires_grad=True)
    lp_t, lp_g = ref.log_prob(x_t), module.log_prob(x_g)
    assert lp_g.shape == (6, kwargs["n_classes"])
    np.testing.assert_allclose(lp_g.numpy(), lp_t.detach().numpy(), rtol=1e-10)
    np.testing.assert_allclose(np.exp(lp_g.numpy()).sum(1), 1.0, rtol=1e-12)   # a distribution per row
    up = randn(6, kwargs["n_classes"], seed=7)
    (lp_t * torch.tensor(up)).sum().backward()
    (lp_g * gt.tensor(up)).sum().backward()
    _compare_grads(ref, module, x_t, x_g, 1e-8)


@pytest.mark.parametrize("bias", ["shortlist", "tail", "mixed"])
def test_predict_as_torch(bias):
    """Rows whose best head entry is in the shortlist, a cluster, or some of each."""
    torch, ref, module = _twins(CONFIGS[1])
    x = randn(8, 8, seed=8)
    with torch.no_grad():
        if bias == "shortlist":
            ref.head.bias[:4] += 20.0
        elif bias == "tail":
            ref.head.bias[4:] += 20.0
        else:
            ref.head.weight[4] = 0.0
            ref.head.weight[4, 0] = 40.0       # rows with x[:, 0] large pick cluster 0
    module.load_state_dict({k: v.numpy() for k, v in ref.state_dict().items()})
    x[:4, 0] = 1.0
    x[4:, 0] = -1.0
    want = ref.predict(torch.tensor(x)).numpy()
    got = module.predict(gt.tensor(x))
    assert got.dtype == gt.int64
    np.testing.assert_array_equal(got.numpy(), want)
    np.testing.assert_array_equal(got.numpy(), module.log_prob(gt.tensor(x)).argmax(1).numpy())
    in_tail = want >= 4
    assert {"shortlist": not in_tail.any(), "tail": in_tail.all(), "mixed": 0 < in_tail.sum() < 8}[bias]


# ---- errors ------------------------------------------------------------------------------------
@pytest.mark.first_pass
@pytest.mark.parametrize("cutoffs", [[], [4, 2], [0, 4], [4, 10], [4, 4], [2.5]])
def test_bad_cutoffs_as_torch(cutoffs):
    torch = torch_or_skip()
    with pytest.raises(ValueError):
        torch.nn.AdaptiveLogSoftmaxWithLoss(8, 10, cutoffs)
    with pytest.raises(ValueError, match="cutoffs should be a sequence"):
        gt.nn.AdaptiveLogSoftmaxWithLoss(8, 10, cutoffs)


@pytest.mark.first_pass
@pytest.mark.parametrize("x_shape,target,match", [
    ((3, 8), [1, 2], "same size in the batch dimension"),
    ((3, 2, 8), [1, 2, 3], "1D target tensor expects 2D input"),
    ((3, 8), 1, "0D target tensor expects 1D input"),
    ((3, 8), [[1, 2, 3]], "multi-target not supported"),
    ((3, 8), [1, 10, 2], r"Target values should be in \[0, 9\], but values in range \[1, 10\]"),
    ((3, 8), [1, -1, 2], r"Target values should be in \[0, 9\], but values in range \[-1, 2\]"),
])
def test_bad_inputs_as_torch(x_shape, target, match):
    torch = torch_or_skip()
    ref = torch.nn.AdaptiveLogSoftmaxWithLoss(8, 10, [4, 8], div_value=2.0)
    module = gt.nn.AdaptiveLogSoftmaxWithLoss(8, 10, [4, 8], div_value=2.0)
    with pytest.raises(RuntimeError):
        ref(torch.zeros(x_shape), torch.tensor(target))
    with pytest.raises(RuntimeError, match=match):
        module(gt.zeros(*x_shape), gt.tensor(target))


@pytest.mark.first_pass
def test_float_target_and_1d_log_prob_are_refused():
    module = gt.nn.AdaptiveLogSoftmaxWithLoss(8, 10, [4, 8])
    with pytest.raises(RuntimeError, match="integer class indices"):
        module(gt.zeros(2, 8), gt.tensor([1.0, 2.0]))
    with pytest.raises(IndexError, match="2-D input"):
        module.log_prob(gt.zeros(8))


def test_trains_like_torch():
    """Three SGD steps from torch's weights land on torch's weights."""
    torch, ref, module = _twins(CONFIGS[1])
    x, target = randn(6, 8, seed=9), _targets(10, 6, seed=10)
    opt_g = gt.optim.SGD(module.parameters(), lr=0.5)
    for _ in range(3):
        ref.zero_grad()
        ref(torch.tensor(x), torch.tensor(target)).loss.backward()
        with torch.no_grad():                  # torch's SGD step, without its optimizer's start-up cost
            for p in ref.parameters():
                if p.grad is not None:
                    p -= 0.5 * p.grad
        opt_g.zero_grad()
        module(gt.tensor(x), gt.tensor(target)).loss.backward()
        opt_g.step()
    theirs = ref.state_dict()
    for name, value in module.state_dict().items():
        np.testing.assert_allclose(np.asarray(value), theirs[name].numpy(), rtol=1e-9, atol=1e-12, err_msg=name)


@pytest.mark.own_mesh
@pytest.mark.parametrize("n", [2, 4])
def test_sharded_batch_gives_the_unsharded_answer(n):
    kwargs = dict(CONFIGS[1], dtype=gt.float64)
    x_np, target = randn(8, 8, seed=11), _targets(10, 8, seed=12)

    def run():
        gt.manual_seed(0)
        module = gt.nn.AdaptiveLogSoftmaxWithLoss(**kwargs)
        x = gt.tensor(x_np, requires_grad=True)
        out, loss = module(x.shard(0), gt.tensor(target).shard(0))
        loss.backward()
        return [out.numpy(), loss.numpy(), x.grad.numpy(), module.predict(gt.tensor(x_np).shard(0)).numpy()] + [
            p.grad.numpy() for p in module.parameters()]

    with use_mesh(1):
        want = run()
    with use_mesh(n):
        got = run()
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
