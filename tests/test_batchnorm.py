"""Batch norm (gt/ops/batch_norm.py, ``F.batch_norm``, ``nn.BatchNorm1d``/``BatchNorm2d``) beside
torch: outputs and gradients in train and eval mode, the running statistics (unbiased variance,
momentum, cumulative average), the buffers and state dicts both ways, and the errors."""

import numpy as np
import pytest

import gt
from gt import nn
from gt.nn import functional as F
from helpers import check_grad, compare_with_torch, randn, torch_or_skip

DTYPES = ["float32", "float64"]
SHAPES = [(5, 3), (4, 3, 6), (3, 2, 4, 5)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
def test_functional_batch_norm_matches_torch(shape, training, dtype):
    torch = torch_or_skip()
    c = shape[1]
    stats = [randn(c, seed=4), np.random.default_rng(5).uniform(0.5, 2.0, c)]
    running = {"gt": [gt.tensor(s, dtype=getattr(gt, dtype)) for s in stats],
               "torch": [torch.tensor(s, dtype=getattr(torch, dtype)) for s in stats]}
    compare_with_torch(lambda x, w, b: F.batch_norm(x, *running["gt"], w, b, training=training, momentum=0.3),
                       lambda x, w, b: torch.nn.functional.batch_norm(x, *running["torch"], w, b, training=training,
                                                                      momentum=0.3),
                       randn(*shape, seed=1, scale=2.0) + 1, randn(c, seed=2), randn(c, seed=3), dtype=dtype)
    for mine, theirs in zip(running["gt"], running["torch"]):
        assert mine.dtype == getattr(gt, dtype)
        np.testing.assert_allclose(mine.numpy(), theirs.numpy(), rtol=1e-5 if dtype == "float32" else 1e-12)


def test_batch_norm_without_affine_or_running_stats_matches_torch():
    torch = torch_or_skip()
    compare_with_torch(lambda x: F.batch_norm(x, None, None, training=True, eps=1e-3),
                       lambda x: torch.nn.functional.batch_norm(x, None, None, training=True, eps=1e-3),
                       randn(4, 3, 5, seed=6))


def test_batch_norm_gradients_match_finite_differences():
    check_grad(lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True), randn(3, 2, 4, seed=7),
               randn(2, seed=8), randn(2, seed=9))
    check_grad(lambda x, w: F.batch_norm(x, gt.tensor([0.5, -1.0], dtype=gt.float64),
                                         gt.tensor([2.0, 0.7], dtype=gt.float64), w, training=False),
               randn(3, 2, seed=10), randn(2, seed=11))


def test_the_running_variance_is_unbiased_and_the_normalisation_biased():
    x = randn(4, 2, 3, seed=12)
    mean, var = gt.zeros(2, dtype=gt.float64), gt.ones(2, dtype=gt.float64)
    # eps 0 is refused while training, as torch's; 1e-30 leaves these variances unchanged
    out = F.batch_norm(gt.tensor(x), mean, var, training=True, momentum=1.0, eps=1e-30)
    np.testing.assert_allclose(var.numpy(), x.var(axis=(0, 2), ddof=1))
    np.testing.assert_allclose(mean.numpy(), x.mean(axis=(0, 2)))
    expected = (x - x.mean(axis=(0, 2), keepdims=True)) / x.std(axis=(0, 2), keepdims=True)
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-10)


def _pair(cls, **kwargs):
    torch = torch_or_skip()
    return getattr(nn, cls)(**kwargs, dtype=gt.float64), getattr(torch.nn, cls)(**kwargs).double()


@pytest.mark.parametrize("cls,shape", [("BatchNorm1d", (6, 3)), ("BatchNorm1d", (4, 3, 5)),
                                       ("BatchNorm2d", (3, 3, 4, 2))])
@pytest.mark.parametrize("momentum", [0.1, None], ids=["momentum", "cumulative"])
def test_modules_train_and_evaluate_as_torchs(cls, shape, momentum):
    torch = torch_or_skip()
    module, ref = _pair(cls, num_features=3, momentum=momentum)
    with torch.no_grad():
        ref.weight.copy_(torch.tensor(randn(3, seed=1))), ref.bias.copy_(torch.tensor(randn(3, seed=2)))
    module.load_state_dict(ref.state_dict())
    for step in range(3):
        x = randn(*shape, seed=10 + step, scale=step + 1.0) + step
        compare_with_torch(lambda a: module(a), lambda a: ref(a), x)
        for name, p in ref.named_parameters():
            np.testing.assert_allclose(getattr(module, name).grad.numpy(), p.grad.numpy(), rtol=1e-9, atol=1e-12)
            p.grad, getattr(module, name).grad = None, None
    want = ref.state_dict()
    for name, value in module.state_dict().items():
        np.testing.assert_allclose(value, want[name].numpy(), rtol=1e-12, err_msg=name)
    assert module.num_batches_tracked.item() == 3 and module.num_batches_tracked.dtype == gt.int64
    module.eval(), ref.eval()
    compare_with_torch(lambda a: module(a), lambda a: ref(a), randn(*shape, seed=20))


def test_without_running_stats_batch_statistics_are_used_in_eval_too():
    module, ref = _pair("BatchNorm2d", num_features=2, track_running_stats=False, affine=False)
    assert module.running_mean is None and module.num_batches_tracked is None and module.weight is None
    assert list(module.state_dict()) == list(ref.state_dict()) == []
    module.eval(), ref.eval()
    compare_with_torch(lambda a: module(a), lambda a: ref(a), randn(3, 2, 2, 2, seed=3))


def test_state_dicts_move_between_gt_and_torch():
    torch = torch_or_skip()
    module, ref = _pair("BatchNorm2d", num_features=4)
    assert [(k, tuple(v.shape), str(v.dtype)[len("torch."):]) for k, v in ref.state_dict().items()] == \
           [(k, v.shape, str(v.dtype)) for k, v in module.state_dict().items()]
    ref(torch.tensor(randn(3, 4, 2, 2, seed=1)))                          # running stats move
    module.load_state_dict(ref.state_dict())
    assert module.num_batches_tracked.item() == 1
    module.eval(), ref.eval()
    x = randn(2, 4, 3, 3, seed=2)
    np.testing.assert_allclose(module(gt.tensor(x)).numpy(), ref(torch.tensor(x)).detach().numpy(), rtol=1e-12)
    module.train()
    module(gt.tensor(randn(3, 4, 2, 2, seed=3)))
    fresh = torch.nn.BatchNorm2d(4).double()
    fresh.load_state_dict({k: torch.tensor(v) for k, v in module.state_dict().items()})
    assert int(fresh.num_batches_tracked) == 2
    np.testing.assert_allclose(fresh.running_var.numpy(), module.running_var.numpy())


def test_module_defaults_and_repr_follow_torch():
    torch = torch_or_skip()
    module, ref = nn.BatchNorm1d(5), torch.nn.BatchNorm1d(5)
    assert repr(module).split("  #")[0] == repr(ref)
    assert module.weight.dtype == module.running_mean.dtype == gt.float32
    np.testing.assert_array_equal(module.weight.numpy(), np.ones(5))
    np.testing.assert_array_equal(module.running_var.numpy(), np.ones(5))
    module(gt.randn(4, 5))
    module.reset_parameters()
    assert module.num_batches_tracked.item() == 0
    np.testing.assert_array_equal(module.running_mean.numpy(), np.zeros(5))
    assert [n for n, _ in module.named_buffers()] == ["running_mean", "running_var", "num_batches_tracked"]
    assert module.double().running_mean.dtype == gt.float64 and module.num_batches_tracked.dtype == gt.int64
    no_bias, ref = nn.BatchNorm2d(2, bias=False), torch.nn.BatchNorm2d(2, bias=False)
    assert no_bias.bias is None and list(no_bias.state_dict()) == list(ref.state_dict())
    assert repr(no_bias).split("  #")[0] == repr(ref)


@pytest.mark.parametrize("call,exc,match", [
    (lambda: nn.BatchNorm1d(3)(gt.zeros(2, 3, 4, 5)), ValueError, r"expected 2D or 3D input \(got 4D input"),
    (lambda: nn.BatchNorm2d(3)(gt.zeros(2, 3, 4)), ValueError, r"expected 4D input \(got 3D input"),
    (lambda: nn.BatchNorm2d(3)(gt.zeros(2, 4, 2, 2)), ValueError,
     r"running_mean should have shape \(4,\) \(the channels, dim 1 of input of shape \(2, 4, 2, 2\)\), got \(3,\)"),
    (lambda: nn.BatchNorm1d(3)(gt.zeros(1, 3)), ValueError,
     r"Expected more than 1 value per channel when training, got input size \(1, 3\)"),
    (lambda: F.batch_norm(gt.zeros(2, 3), None, None), ValueError, r"running_mean and running_var must be given"),
    (lambda: F.batch_norm(gt.zeros(2, 3), gt.zeros(3), gt.ones(3), weight=gt.ones(2)), ValueError,
     r"weight should have shape \(3,\)"),
    (lambda: F.batch_norm(gt.zeros(3), gt.zeros(3), gt.ones(3)), ValueError, r"at least 2 dims, got shape \(3,\)"),
    (lambda: F.batch_norm(gt.tensor([[1, 2], [3, 4]]), None, None, training=True), TypeError,
     r"expected a floating point input, got gt.int64"),
    (lambda: nn.BatchNorm2d(0), ValueError, r"num_features must be a positive int, got 0"),
    (lambda: nn.BatchNorm2d(2, momentum="x"), ValueError, r"momentum must be a number or None"),
])
def test_errors_name_the_problem(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_eval_mode_needs_no_batch_and_records_nothing():
    module = nn.BatchNorm1d(3).eval()
    out = module(gt.randn(1, 3))                     # one sample: fine when evaluating
    assert out.shape == (1, 3) and module.num_batches_tracked.item() == 0
    with gt.no_grad():
        module.train()(gt.randn(4, 3))
    assert module.num_batches_tracked.item() == 1


def test_an_empty_batch_in_training_gives_an_empty_result_and_keeps_the_statistics_as_torch():
    torch = pytest.importorskip("torch")
    got = []
    for lib in (gt, torch):
        m = lib.nn.BatchNorm1d(2)
        x = lib.zeros(3, 2, 0, requires_grad=True)
        y = m(x)
        y.sum().backward()
        got.append((tuple(y.shape), m.running_mean.numpy(), m.running_var.numpy(), int(m.num_batches_tracked),
                    m.weight.grad.numpy(), m.bias.grad.numpy(), tuple(x.grad.shape)))
    for a, b in zip(*got):
        np.testing.assert_array_equal(a, b)
