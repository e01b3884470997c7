"""``F.cross_entropy`` / ``nn.CrossEntropyLoss`` with torch's options against torch: ``ignore_index``,
``label_smoothing`` (also together), every reduction, (N, C) and (N, C, d1, ...) inputs, a batch
whose targets are all ignored (NaN mean, as torch); values and the gradient of the logits in
float64 and float32; a sharded batch on four devices; clear errors."""

import warnings

import numpy as np
import pytest

import gt
from gt import checks, nn
from gt.nn import functional as F
from gt.sharding import use_mesh
from helpers import compare_with_torch, randn

torch = pytest.importorskip("torch", reason="torch is not installed: the cross_entropy comparisons are skipped "
                                            "(pip install torch==2.13.0 to run them)")
import torch.nn.functional as tF  # noqa: E402

T_IGNORED = np.array([2, -100, 0, 4, -100, 1])           # (N,) for C = 5, two ignored
T_SPATIAL = np.array([[[0, 1, -100], [2, 2, 1]], [[-100, -100, 0], [1, 0, 2]]])   # (2, 2, 3) for C = 3

CASES = {
    # name: (logits shape, target, options)
    "ignore": ((6, 5), T_IGNORED, {}),
    "smoothing": ((6, 5), np.array([2, 3, 0, 4, 1, 1]), {"label_smoothing": 0.1}),
    "ignore_and_smoothing": ((6, 5), T_IGNORED, {"label_smoothing": 0.25}),
    "ignore_a_class": ((6, 5), np.array([2, 3, 0, 4, 3, 1]), {"ignore_index": 3, "label_smoothing": 0.1}),
    "spatial": ((2, 3, 2, 3), T_SPATIAL, {"label_smoothing": 0.2}),
    "spatial_plain": ((2, 3, 4), np.array([[0, 1, 2, 2], [1, 0, 0, 2]]), {}),
    "all_ignored": ((3, 4), np.full(3, -100), {"label_smoothing": 0.1}),
    "all_ignored_plain": ((3, 4), np.full(3, 7), {"ignore_index": 7}),
}


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("reduction", ["mean", "none"])   # "sum": test_module_passes_the_options
@pytest.mark.parametrize("name", list(CASES))
def test_cross_entropy_options_match_torch(name, reduction, dtype):
    shape, target, kw = CASES[name]
    kw = dict(kw, reduction=reduction)
    compare_with_torch(lambda z, t: F.cross_entropy(z, t, **kw), lambda z, t: tF.cross_entropy(z, t, **kw),
                       randn(*shape, seed=1, scale=2.0), target, dtype=dtype)


def test_all_ignored_mean_is_nan_with_zero_gradient_as_torch():
    z = gt.randn(3, 4, requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")                  # and no division by zero along the way
        loss = F.cross_entropy(z, [-100] * 3, label_smoothing=0.1)
        assert np.isnan(loss.item())
        loss.backward()
    np.testing.assert_array_equal(z.grad.numpy(), 0.0)


@pytest.mark.skipif(gt.cuda.is_available(), reason="on a GPU whether a target is ignore_index is not read back "
                                                   "from the device: the general path")
def test_plain_targets_keep_the_fast_path():
    """Every target a class and no smoothing: the loss is the mean of the picked log-probabilities
    (the path the models train on), not a sum divided by a count of kept targets."""
    loss = F.cross_entropy(gt.randn(4, 3, requires_grad=True), [0, 2, 1, 1])
    if gt.checks.deferred():
        # a GPU: whether a target is ignored is not read back, so the mean is over the kept ones
        # for plain targets too, taken by the fused op that masks them
        assert loss.grad_fn.name == "SoftmaxCrossEntropy" and loss.shape == ()
        return
    assert loss.grad_fn.name == "Mean"
    loss = F.cross_entropy(gt.randn(4, 3, requires_grad=True), [0, -100, 1, 1])
    assert loss.grad_fn.name == "Where"


def test_module_passes_the_options():
    z, t = randn(6, 5, seed=2), T_IGNORED
    crit = nn.CrossEntropyLoss(reduction="sum", ignore_index=-100, label_smoothing=0.3)
    np.testing.assert_allclose(crit(gt.tensor(z), t).item(),
                               tF.cross_entropy(torch.tensor(z), torch.tensor(t), reduction="sum",
                                                label_smoothing=0.3).item(), rtol=1e-12)


def test_cross_entropy_rejects_bad_options():
    z = gt.randn(3, 4)
    with pytest.raises(ValueError, match="label_smoothing must be between 0.0 and 1.0, got 1.5"):
        F.cross_entropy(z, [0, 1, 2], label_smoothing=1.5)
    with pytest.raises(TypeError, match="ignore_index must be an int, got 'x'"):
        F.cross_entropy(z, [0, 1, 2], ignore_index="x")
    with pytest.raises(IndexError, match=r"target -3 is out of range for 4 classes \(valid: 0..3\); ignore_index is "
                                         r"-100"):
        F.cross_entropy(z, [0, -100, -3]).item()          # on a GPU the check waits for a host read
    with pytest.raises(IndexError, match="target 9 is out of range"):
        F.cross_entropy(z, [9, -100, 1]).item()
    with pytest.raises(ValueError, match=r"target must have shape \(3, 5\)"):
        F.cross_entropy(gt.randn(3, 4, 5), [0, 1, 2])
    with pytest.raises(ValueError, match=r"\(N, C\) or \(N, C, d1, ...\)"):
        F.cross_entropy(gt.randn(4), [0, 1])          # an unbatched (C,) input takes one target, as torch's


def test_on_a_gpu_an_ignored_batch_needs_no_host_read(monkeypatch):
    monkeypatch.setattr(checks, "deferred", lambda: True)
    try:
        loss = F.cross_entropy(gt.zeros(3, 4), [1, -100, 5], label_smoothing=0.1)   # queued, not raised
        assert len(checks._pending) == 1
        with pytest.raises(IndexError, match="target 5 is out of range for 4 classes"):
            loss.item()
        loss = F.cross_entropy(gt.zeros(3, 4), [1, -100, 2])
        assert abs(loss.item() - np.log(4)) < 1e-6
    finally:
        checks._pending.clear()


@pytest.mark.own_mesh
def test_sharded_batch_matches_one_device():
    z, t = randn(8, 5, 3, seed=3), np.array([[0, 1, -100], [4, -100, 2]] * 4)

    def run():
        logits = gt.tensor(z, requires_grad=True)
        loss = F.cross_entropy(logits.shard(0) if gt.sharding.get_mesh().size > 1 else logits, gt.tensor(t),
                               label_smoothing=0.1)
        loss.backward()
        return loss.item(), logits.grad.numpy()

    with use_mesh(1):
        ref = run()
    with use_mesh(4):
        got = run()
    np.testing.assert_allclose(got[0], ref[0], rtol=1e-6)
    np.testing.assert_allclose(got[1], ref[1], rtol=1e-6, atol=1e-9)
