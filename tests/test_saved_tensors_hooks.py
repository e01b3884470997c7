"""gt.autograd.graph's saved-tensor hooks (gt/autograd/saved_hooks.py) beside torch's: the hooks
run when the op runs (pack) and when the backward reads (unpack), the innermost block applies,
hooks that keep the values give the gradients without them (and torch's), custom Functions'
save_for_backward, save_on_cpu, and disable_saved_tensors_hooks."""

import numpy as np
import pytest

import gt
from helpers import torch_or_skip

RNG = np.random.default_rng(5)
X, W1, W2 = RNG.normal(size=(4, 3)), RNG.normal(size=(3, 5)), RNG.normal(size=(5, 2))


def _step(m, hooks=None):
    x = m.tensor(X, requires_grad=True)
    w1, w2 = m.tensor(W1, requires_grad=True), m.tensor(W2, requires_grad=True)
    ctx = hooks if hooks is not None else _Nothing()
    with ctx:
        h = (x @ w1).tanh()
        y = m.nn.functional.log_softmax(h @ w2, dim=1)
        loss = (y * y).sum() + (h.exp() / (1 + h * h)).mean()
    loss.backward()
    return [t.grad.numpy() for t in (x, w1, w2)]


class _Nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_hooks_run_at_save_and_at_read_and_keep_the_gradients():
    torch = torch_or_skip()
    plain = _step(gt)
    packed, unpacked = [], []

    def pack(t):
        packed.append(tuple(t.shape))
        return t.numpy().copy()                    # kept as numpy arrays, as an offloading hook would

    def unpack(a):
        unpacked.append(a.shape)
        return gt.tensor(a)

    with gt.autograd.graph.saved_tensors_hooks(pack, unpack):
        x = gt.tensor(X, requires_grad=True)
        y = (x * x).sum()
    assert packed and not unpacked                 # packed when the op ran
    y.backward()
    assert unpacked
    packed.clear()
    unpacked.clear()
    hooked = _step(gt, gt.autograd.graph.saved_tensors_hooks(pack, unpack))
    assert packed and len(unpacked) >= len(packed)
    for a, b, t in zip(hooked, plain, _step(torch)):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_allclose(a, t, rtol=1e-12)


def test_innermost_hooks_apply_and_custom_functions_are_packed():
    torch = torch_or_skip()
    for m in (torch, gt):
        calls = []

        class Square(m.autograd.Function):
            @staticmethod
            def forward(ctx, x):
                ctx.save_for_backward(x)
                return x * x

            @staticmethod
            def backward(ctx, g):
                x, = ctx.saved_tensors
                return 2 * x * g

        outer = m.autograd.graph.saved_tensors_hooks(lambda t: calls.append("outer") or t, lambda t: t)
        inner = m.autograd.graph.saved_tensors_hooks(lambda t: calls.append("inner") or t,
                                                     lambda t: calls.append("unpack") or t)
        x = m.tensor([1.0, -2.0], dtype=m.float64, requires_grad=True)
        with outer, inner:
            y = Square.apply(x)
        y.sum().backward()
        # how many tensors an op saves is each framework's own: at least the one saved here
        assert "outer" not in calls and calls.count("inner") >= 1 and calls.count("unpack") >= 1
        assert x.grad.tolist() == [2.0, -4.0]


def test_save_on_cpu_and_disable_as_torch():
    torch = torch_or_skip()
    for m in (torch, gt):
        x = m.tensor(X, requires_grad=True)
        with m.autograd.graph.save_on_cpu():
            loss = (x.sin() * x).sum()
        loss.backward()
        np.testing.assert_allclose(x.grad.numpy(), np.cos(X) * X + np.sin(X), rtol=1e-12)
        with m.autograd.graph.disable_saved_tensors_hooks("no hooks here"):
            with pytest.raises(RuntimeError, match="no hooks here"):
                with m.autograd.graph.saved_tensors_hooks(lambda t: t, lambda t: t):
                    pass
    with pytest.raises(TypeError, match="must be callables"):
        gt.autograd.graph.saved_tensors_hooks(1, lambda t: t)
