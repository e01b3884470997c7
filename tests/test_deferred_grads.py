"""A big weight gradient of few rows is held as its two factors until read
(gt/autograd/deferred.py): every reader of ``.grad`` sees the tensor the backward would have
made, bit for bit; plain SGD applies it as one gemm, within 1e-6 of the two-step update; and
everything a user can do with ``.grad`` (read it after ``step()``, change it in place,
accumulate over two backwards, ``zero_grad``, clipping, other optimizers) works as before."""

import numpy as np
import pytest

import gt
from gt import nn
from gt.autograd import deferred
from gt.sharding import get_mesh

# A 4 MiB weight and 4 rows: the factors are 1/32 of the gradient.
IN, OUT, ROWS = 8192, 128, 4


@pytest.fixture
def no_deferral(monkeypatch):
    """Run a block with deferral off: the gradient made in the backward, as before it existed."""
    def off():
        monkeypatch.setattr(deferred, "worth", lambda *args: False)
    return off


def make(seed=0, **opt_kwargs):
    gt.manual_seed(seed)
    fc = nn.Linear(IN, OUT)
    x = gt.randn(ROWS, IN)
    opt_cls = opt_kwargs.pop("opt", gt.optim.SGD)
    return fc, opt_cls(fc.parameters(), lr=0.01, **opt_kwargs), x


def loss_of(fc, x):
    return (fc(x) ** 2).sum()


def held_as_factors(p):
    """Whether ``p`` holds its gradient as factors; only asserted on one device (sharded data
    makes per-device gradients, which the dispatch needs as arrays)."""
    return p._grad_factors is not None


def reference_grad(fc, x):
    """d/dW of sum((x W^T + b)^2) in float64: 2 (x W^T + b)^T x."""
    w, b, xs = (t.numpy().astype(np.float64) for t in (fc.weight, fc.bias, x))
    return 2 * (xs @ w.T + b).T @ xs


def test_the_rule_keeps_factors_only_for_big_weights_of_few_rows():
    assert deferred.worth(8, 256, 40_000)              # the Pixel Transformer's embedding at 2 x 4 images
    assert not deferred.worth(128, 256, 40_000)        # 16 x 8 images: the factors are half the gradient
    assert deferred.worth(8, 1024, 256)                # a block's feed-forward weight at 2 x 4 images
    assert not deferred.worth(8, 64, 64)               # a small weight (below deferred.MIN_ELEMENTS)
    assert not deferred.worth(3136, 512, 128)          # a decoder's rows


def test_off_the_cpu_the_gradient_is_made_in_the_backward(monkeypatch):
    """On a GPU the two copies of the factors cost two kernel launches where the product is
    one: the weight's gradient is made as before (the device taken for a GPU here)."""
    from gt.backend import B

    fc, _, x = make()
    loss_of(fc, x).backward()
    # deferred on the CPU where the batch is not cut over the mesh (4 rows: not over 5 devices)
    assert held_as_factors(fc.weight) == (x._placed is None and get_mesh().kind == "cpu")
    want = fc.weight.grad.numpy().copy()
    fc.weight.grad = None
    monkeypatch.setattr(B, "device_of", lambda arr: "cuda:0")
    loss_of(fc, x).backward()
    assert not held_as_factors(fc.weight)
    np.testing.assert_array_equal(fc.weight.grad.numpy(), want)


def test_the_gradient_read_is_the_one_the_backward_would_make(no_deferral):
    fc, _, x = make()
    loss_of(fc, x).backward()
    if get_mesh().size == 1:
        assert held_as_factors(fc.weight)
        assert not held_as_factors(fc.bias)            # 128 values
    got = fc.weight.grad.numpy().copy()
    assert not held_as_factors(fc.weight)              # made once, then kept
    assert fc.weight.grad is fc.weight.grad
    assert fc.weight._grad is fc.weight.grad           # the public gt's spelling reads the same tensor
    np.testing.assert_allclose(got, reference_grad(fc, x), rtol=2e-4, atol=1e-3)

    no_deferral()
    fc2, _, x2 = make()
    loss_of(fc2, x2).backward()
    assert not held_as_factors(fc2.weight)
    assert np.array_equal(got, fc2.weight.grad.numpy())


def test_the_public_spelling_makes_the_gradient_too():
    fc, _, x = make()
    loss_of(fc, x).backward()
    g = fc.weight._grad
    assert g is not None and g.shape == (OUT, IN)
    np.testing.assert_allclose(g.numpy(), reference_grad(fc, x), rtol=2e-4, atol=1e-3)


def test_sgd_applies_factors_within_1e6_and_the_gradient_stays_readable(no_deferral):
    fc, opt, x = make()
    loss_of(fc, x).backward()
    opt.step()
    after = fc.weight.numpy().copy()
    if get_mesh().size == 1:
        assert held_as_factors(fc.weight)              # the update did not make the gradient
    grad_after_step = fc.weight.grad.numpy().copy()
    opt.zero_grad()
    assert fc.weight.grad is None and fc.weight._grad_factors is None

    no_deferral()
    fc2, opt2, x2 = make()
    loss_of(fc2, x2).backward()
    expected_grad = fc2.weight.grad.numpy().copy()
    opt2.step()
    assert np.array_equal(grad_after_step, expected_grad)
    np.testing.assert_allclose(after, fc2.weight.numpy(), rtol=1e-6, atol=1e-6 * np.abs(after).max())
    assert not np.array_equal(after, make()[0].weight.numpy())   # the step did change the weight


def test_training_matches_the_two_step_update_over_several_steps(no_deferral):
    def run():
        fc, opt, x = make()
        for _ in range(3):
            loss_of(fc, x).backward()
            opt.step()
            opt.zero_grad()
        return fc.weight.numpy().copy(), fc.bias.numpy().copy()

    w, b = run()
    no_deferral()
    w2, b2 = run()
    np.testing.assert_allclose(w, w2, rtol=1e-6, atol=1e-6 * np.abs(w2).max())
    np.testing.assert_allclose(b, b2, rtol=1e-5, atol=1e-6 * np.abs(b2).max())


def test_a_gradient_changed_in_place_before_step_is_the_one_applied():
    fc, opt, x = make()
    loss_of(fc, x).backward()
    before = fc.weight.numpy().copy()
    fc.weight.grad.mul_(0.0)                  # read (made), then changed by the user
    opt.step()
    assert np.array_equal(fc.weight.numpy(), before)


def test_the_input_changed_after_backward_does_not_change_the_gradient():
    gt.manual_seed(0)
    fc = nn.Linear(IN, OUT)
    data = np.random.default_rng(0).standard_normal((ROWS, IN)).astype(np.float32)
    x = gt.from_numpy(data)                   # shares the caller's memory
    loss_of(fc, x).backward()
    expected = reference_grad(fc, gt.from_numpy(data.copy()))
    data[:] = 0.0                             # a loader reusing its buffer before step()
    np.testing.assert_allclose(fc.weight.grad.numpy(), expected, rtol=2e-4, atol=1e-3)


def test_two_backwards_without_zero_grad_accumulate(no_deferral):
    fc, _, x = make()
    loss_of(fc, x).backward()
    loss_of(fc, x * 2.0).backward()
    got = fc.weight.grad.numpy().copy()
    no_deferral()
    fc2, _, x2 = make()
    loss_of(fc2, x2).backward()
    loss_of(fc2, x2 * 2.0).backward()
    np.testing.assert_allclose(got, fc2.weight.grad.numpy(), rtol=1e-6, atol=1e-6 * np.abs(got).max())


def test_a_weight_used_twice_gets_both_gradients(no_deferral):
    def grad():
        fc, _, x = make()
        ((fc(x) ** 2).sum() + (fc(x * 0.5) ** 3).sum()).backward()
        return fc.weight.grad.numpy().copy()

    got = grad()
    no_deferral()
    np.testing.assert_allclose(got, grad(), rtol=1e-6, atol=1e-6 * np.abs(got).max())


@pytest.mark.parametrize("set_to_none", [True, False])
def test_zero_grad_drops_factors_without_making_them(set_to_none):
    fc, opt, x = make()
    loss_of(fc, x).backward()
    opt.zero_grad(set_to_none=set_to_none)
    assert fc.weight._grad_factors is None
    if set_to_none:
        assert fc.weight.grad is None
    else:
        assert fc.weight.grad.shape == (OUT, IN) and not fc.weight.grad.numpy().any()
    loss_of(fc, x).backward()                 # a fresh gradient, not added to a stale one
    np.testing.assert_allclose(fc.weight.grad.numpy(), reference_grad(fc, x), rtol=2e-4, atol=1e-3)


@pytest.mark.parametrize("opt_kwargs", [dict(momentum=0.9), dict(weight_decay=0.1),
                                        dict(opt=gt.optim.Adam), dict(opt=gt.optim.AdamW)],
                         ids=["momentum", "weight_decay", "adam", "adamw"])
def test_other_optimizers_read_the_gradient_as_before(opt_kwargs, no_deferral):
    def run():
        fc, opt, x = make(**dict(opt_kwargs))
        for _ in range(2):
            loss_of(fc, x).backward()
            opt.step()
            opt.zero_grad()
        return fc.weight.numpy().copy()

    w = run()
    no_deferral()
    assert np.array_equal(w, run())


def test_clipping_reads_the_gradient(no_deferral):
    def run():
        fc, opt, x = make()
        loss_of(fc, x).backward()
        norm = gt.nn.utils.clip_grad_norm_(fc.parameters(), 1.0)
        opt.step()
        return float(norm), fc.weight.numpy().copy()

    n, w = run()
    no_deferral()
    n2, w2 = run()
    assert n == pytest.approx(n2, rel=1e-6)
    assert np.array_equal(w, w2)


def test_in_backward_sgd_still_updates_inside_the_backward():
    fc, _, x = make()
    opt = gt.optim.SGD(fc.parameters(), lr=0.01, in_backward=True)
    before = fc.weight.numpy().copy()
    loss_of(fc, x).backward()
    assert fc.weight.grad is None and fc.weight._grad_factors is None
    assert not np.array_equal(before, fc.weight.numpy())
    opt.step()


def test_the_pixel_transformer_embedding_is_deferred_at_the_seed_batch(small_model, no_deferral):
    """The model's own embedding at few images: its gradient, and two SGD steps, as before."""
    from gt.nn import functional as F

    def run():
        model = small_model(seed=0, img_size=128, embed_dim=128)   # a 128 x 16,384 embedding: 8 MiB
        opt = gt.optim.SGD(model.parameters(), lr=0.01)
        rng = np.random.default_rng(0)
        x = gt.from_numpy(rng.random((2, 2, 128, 128), dtype=np.float32))
        y = gt.from_numpy(np.array([1, 2]))
        grads = []
        for _ in range(2):
            F.cross_entropy(model(x), y).backward()
            deferred_now = model.embed.weight._grad_factors is not None
            opt.step()
            grads.append(model.embed.weight.grad.numpy().copy())
            opt.zero_grad()
        return deferred_now, grads, {k: v.numpy().copy() for k, v in model.named_parameters()}

    was_deferred, grads, params = run()
    if get_mesh().size == 1 and get_mesh().kind == "cpu":
        assert was_deferred
    no_deferral()
    _, grads2, params2 = run()
    assert np.array_equal(grads[0], grads2[0])
    np.testing.assert_allclose(grads[1], grads2[1], rtol=1e-4, atol=1e-5 * np.abs(grads2[1]).max())
    for k in params:
        np.testing.assert_allclose(params[k], params2[k], rtol=1e-5, atol=1e-6 * np.abs(params2[k]).max() + 1e-7,
                                   err_msg=k)


def test_plain_sgd_takes_factors_up_to_the_size_of_the_gradient(no_deferral):
    """Factors half the size of the gradient: kept for a weight that plain SGD steps (it applies
    them as they are), not for one that Adam or SGD with momentum steps (they make the product)."""
    def build(opt_cls, **kwargs):
        gt.manual_seed(0)
        fc = nn.Linear(1024, 1024)                 # 256 rows: factors 256 x 2048, half of 1024 x 1024
        return fc, opt_cls(fc.parameters(), lr=0.01, **kwargs), gt.randn(256, 1024)

    def step(fc, opt, x):
        loss_of(fc, x).backward()
        held = held_as_factors(fc.weight)
        opt.step()
        opt.zero_grad()
        return held, fc.weight.numpy().copy()

    one_device = get_mesh().size == 1
    held, w = step(*build(gt.optim.SGD))
    assert held == one_device
    for opt_cls, kwargs in ((gt.optim.Adam, {}), (gt.optim.SGD, dict(momentum=0.9))):
        assert not step(*build(opt_cls, **kwargs))[0]
    fc, opt, x = build(gt.optim.SGD)
    opt.param_groups[0]["momentum"] = 0.9           # switched on later: the product again
    assert not step(fc, opt, x)[0]

    no_deferral()
    _, w2 = step(*build(gt.optim.SGD))
    np.testing.assert_allclose(w, w2, rtol=1e-6, atol=1e-6 * np.abs(w2).max())
