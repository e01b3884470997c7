"""A torch-style ``gt.autograd.Function`` on a mesh: its backward runs once, on the whole
gradient, where that gradient reaches it partial (a replicated weight used with sharded data).
It ran once per device's share, each share overwriting the last, so the weight's gradient was
one device's share (a quarter of the sum on 4 devices, say)."""

import numpy as np
import pytest

import gt
from gt.sharding import use_mesh
from helpers import torch_or_skip

pytestmark = pytest.mark.own_mesh   # every mesh chosen with use_mesh (tests/conftest.py)

W = np.random.default_rng(0).standard_normal((4, 3))
X = np.random.default_rng(1).standard_normal((8, 3))


def _scaled(m):
    """(y, 2 * y) with the gradient 3 * g1 + 5 * g2: a backward that is not the identity, of two outputs."""
    class Twice(m.autograd.Function):
        @staticmethod
        def forward(ctx, a):
            return a * 1.0, a * 2.0

        @staticmethod
        def backward(ctx, g1, g2):
            calls.append(1)
            return 3 * g1 + 5 * g2

    calls = []
    return Twice, calls


def _weight_grad(m, devices):
    twice, calls = _scaled(m)
    with use_mesh(devices) if m is gt else _nothing():
        w = m.tensor(W, requires_grad=True)
        a, b = twice.apply(w)
        y = m.tensor(X) @ a.T + (m.tensor(X) @ b.T) ** 2
        y.sum().backward()
        return w.grad.numpy(), len(calls)


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


@pytest.mark.parametrize("devices", [2, 4])
def test_custom_function_backward_runs_once_on_the_whole_gradient(devices):
    torch = torch_or_skip()
    want, _ = _weight_grad(torch, 1)
    got, calls = _weight_grad(gt, devices)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    assert calls == 1
