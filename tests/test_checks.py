"""Value checks on GPUs wait for the next host read instead of stalling the device; the error
and its message are the same as on the CPU. (Deferral is switched on here by hand: this
machine's mesh is the CPU, where checks run at once.)"""

import numpy as np
import pytest

import gt
from gt import checks, nn
from lpm.model import PixelTransformer


@pytest.fixture
def on_gpu(monkeypatch):
    monkeypatch.setattr(checks, "deferred", lambda: True)
    yield
    checks._pending.clear()


@pytest.mark.skipif(gt.cuda.is_available(), reason="gt computes on a GPU: checks wait for a host read")
def test_on_the_cpu_a_bad_target_raises_at_once():
    with pytest.raises(IndexError, match=r"cross_entropy: target 7 is out of range for 4 classes \(valid: 0..3\)"):
        nn.functional.cross_entropy(gt.zeros(2, 4), gt.tensor([1, 7]))
    assert not checks._pending


def test_on_a_gpu_a_bad_target_raises_at_the_next_host_read(on_gpu):
    loss = nn.functional.cross_entropy(gt.zeros(2, 4, requires_grad=True), gt.tensor([-2, 1]))  # queued
    assert len(checks._pending) == 1
    with pytest.raises(IndexError, match=r"cross_entropy: target -2 is out of range for 4 classes"):
        loss.item()
    assert not checks._pending
    assert np.isfinite(loss.item())            # reported once


@pytest.mark.parametrize("read", ["item", "numpy", "tolist", "bool"])
def test_every_host_read_reports_queued_checks(on_gpu, read):
    nn.functional.one_hot(gt.tensor([0, 5]), num_classes=3)
    x = gt.ones(1)
    with pytest.raises(ValueError, match="one_hot: class 5 is out of range for num_classes=3"):
        {"item": x.item, "numpy": x.numpy, "tolist": x.tolist, "bool": lambda: bool(x)}[read]()


def test_good_values_pass_silently(on_gpu):
    loss = nn.functional.cross_entropy(gt.zeros(2, 4), gt.tensor([0, 3]))
    assert abs(loss.item() - np.log(4)) < 1e-6
    assert not checks._pending


def _queue(*oks):
    for i, ok in enumerate(oks):
        checks.require(gt.tensor([ok]), IndexError, lambda i=i: f"check {i} failed")


def test_queued_checks_that_hold_are_read_back_once(on_gpu, monkeypatch):
    """Each read of a verdict makes the host wait for the device: several are combined into one."""
    from gt.backend import B

    _queue(True, True, True)
    reads = []
    real = B.item
    monkeypatch.setattr(B, "item", lambda arr: reads.append(1) or real(arr))
    assert gt.ones(1).item() == 1.0
    assert len(reads) == 2                       # the verdicts together, then the value itself
    assert not checks._pending


@pytest.mark.parametrize("verdicts, failed", [((False, True, True), 0), ((True, True, False), 2),
                                              ((True, False, False), 1)])
def test_the_first_failed_queued_check_raises(on_gpu, verdicts, failed):
    _queue(*verdicts)
    with pytest.raises(IndexError, match=f"check {failed} failed"):
        gt.ones(1).item()
    assert not checks._pending


@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")   # the forward runs on the inf
def test_non_finite_pixels_on_a_gpu_raise_at_the_loss_read(on_gpu):
    gt.manual_seed(0)
    model = PixelTransformer(img_size=8, embed_dim=8, num_heads=2, num_layers=1, ff_dim=16, num_classes=3)
    images = np.zeros((2, 3, 8, 8), np.float32)
    images[1, 2, 4, 4] = np.inf
    loss = nn.functional.cross_entropy(model(images), gt.tensor([0, 1]))    # no error yet
    with pytest.raises(ValueError, match=r"non-finite pixel values \(min 0.0, max inf\)"):
        loss.item()


@pytest.mark.parametrize("call, message", [
    (lambda: nn.functional.embedding(gt.tensor([1, 12]), gt.randn(10, 4)), "embedding: index 12 is out of range"),
    (lambda: gt.randn(3, 4)[gt.tensor([0, 5])], "index 5 is out of bounds for dimension 0 with size 3"),
    (lambda: gt.randn(3, 4)[[0, -4]], "index -4 is out of bounds for dimension 0 with size 3"),
    (lambda: gt.randn(3, 4)[..., gt.tensor([1, 9])], "index 9 is out of bounds for dimension 1 with size 4"),
    (lambda: gt.randn(3, 4).gather(1, gt.tensor([[0, 9]] * 3)), "index 9 is out of bounds for dimension 1"),
    (lambda: gt.randn(3, 4).index_select(0, gt.tensor([7])), "index 7 is out of bounds for dimension 0"),
    (lambda: gt.zeros(3, 4).scatter(1, gt.tensor([[4]]), 1.0), "scatter: index 4 is out of bounds"),
    (lambda: gt.zeros(3, 4).index_add(0, gt.tensor([3]), gt.ones(1, 4)), "index_add: index 3 is out of bounds"),
], ids=["embedding", "index tensor", "index list", "after ellipsis", "gather", "index_select", "scatter", "index_add"])
def test_on_a_gpu_a_bad_index_never_reaches_the_kernel(on_gpu, call, message):
    """The call itself computes (the indices it hands the engine are clamped into range, so no
    CUDA kernel sees a bad one and its device-side assert never fires); the next read raises."""
    out = call()
    assert checks._pending
    with pytest.raises((IndexError, RuntimeError), match=message):     # gather's is torch's RuntimeError
        out.sum().item()
    assert not checks._pending


def _set(x, index):
    x[index] = 1.0


@pytest.mark.parametrize("call, message", [
    (lambda m, x: x[m.tensor([0, 5])], "index 5 is out of bounds for dimension 0 with size 3"),
    (lambda m, x: x[5], "index 5 is out of bounds for dimension 0 with size 3"),
    (lambda m, x: x[:, 7], "index 7 is out of bounds for dimension 1 with size 4"),
    (lambda m, x: _set(x, m.tensor([7])), "index 7 is out of bounds for dimension 0 with size 3"),
    (lambda m, x: _set(x, (1, 9)), "index 9 is out of bounds for dimension 1 with size 4"),
], ids=["index tensor", "integer", "second axis", "write, index tensor", "write, integers"])
def test_a_bad_index_says_what_torch_says_with_the_shape(call, message):
    """The message of the checks read at once (the CPU) is torch's, as the deferred one: torch's
    "dimension" where numpy says "axis", and the tensor's shape after it."""
    torch = pytest.importorskip("torch")
    with pytest.raises(IndexError) as theirs:
        call(torch, torch.zeros(3, 4))
    assert str(theirs.value) == message
    with pytest.raises(IndexError, match=rf"^{message} \(tensor of shape \(3, 4\)\)$"):
        out = call(gt, gt.zeros(3, 4))
        if out is not None:
            out.sum().item()       # where checks are deferred (a GPU), the next read raises


def test_on_a_gpu_good_indices_are_not_changed(on_gpu):
    x = gt.tensor(np.arange(12.0).reshape(3, 4))
    np.testing.assert_array_equal(x[gt.tensor([2, -1, 0])].numpy(), np.arange(12.0).reshape(3, 4)[[2, -1, 0]])
    np.testing.assert_array_equal(x.gather(1, gt.tensor([[3], [0], [1]])).numpy(), [[3.0], [4.0], [9.0]])
    np.testing.assert_array_equal(x[gt.tensor([True, False, True])].numpy(), np.arange(12.0).reshape(3, 4)[[0, 2]])
    checks.flush()                              # nothing failed: nothing raised
