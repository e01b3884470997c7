"""The order in which backward runs hooks on independent branches, beside torch (found by
differential fuzzing of hooks): torch's engine runs the ready node of the highest sequence number
(the latest made) first, and a leaf's accumulation as soon as its last reader has run; gt walked
its graph in the order of a depth-first search, so hooks of independent branches ran in another
order (with the same gradients)."""

import numpy as np
import pytest

import gt
from helpers import torch_or_skip


def _hooked(t, name, log):
    t.register_hook(lambda g: log.append(name))
    return t


PROGRAMS = {
    "two branches": lambda x, y, h: (h(x * 2, "a") + h(y * 3, "b")).sum(),
    "two branches, the other way": lambda x, y, h: (h(y * 3, "b") + h(x * 2, "a")).sum(),
    "diamond": lambda x, y, h: (lambda a: (h(a * 2, "b") + h(a.exp(), "c")).sum())(h(x * y, "a")),
    "interleaved chains": lambda x, y, h: (lambda a, b: (h(a.exp(), "a2") * h(b.sin(), "b2")).sum())(
        h(x * 2, "a1"), h(y * 2, "b1")),
    "a leaf read twice": lambda x, y, h: (h(x * 2, "a") + h(x * y, "b") + h(y.exp(), "c")).sum(),
    "three branches": lambda x, y, h: (lambda a: (lambda b: (h(a.sin(), "c") + h(b.cos(), "d") + h(a * b, "e")).sum())(
        h(y * 3, "b")))(h(x * 2, "a")),
    "a leaf read last": lambda x, y, h: (h(x.exp(), "a") * h(y.tanh(), "b") + h(x * x, "c")).sum(),
}


def _order(lib, program):
    log = []
    x = lib.tensor([1.0, 2.0], dtype=lib.float64, requires_grad=True)
    y = lib.tensor([3.0, 4.0], dtype=lib.float64, requires_grad=True)
    x.register_hook(lambda g: log.append("x"))
    y.register_hook(lambda g: log.append("y"))
    x.register_post_accumulate_grad_hook(lambda t: log.append("x accumulated"))
    y.register_post_accumulate_grad_hook(lambda t: log.append("y accumulated"))
    program(x, y, lambda t, name: _hooked(t, name, log)).backward()
    return log, x.grad.tolist(), y.grad.tolist()


@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_hooks_run_in_torchs_order(name):
    torch = torch_or_skip()
    ours, theirs = _order(gt, PROGRAMS[name]), _order(torch, PROGRAMS[name])
    assert ours[0] == theirs[0]
    np.testing.assert_allclose(ours[1:], theirs[1:], rtol=1e-12)


def test_node_hooks_and_retained_grads_in_torchs_order():
    torch = torch_or_skip()

    def run(lib):
        log = []
        w = lib.ones(3, requires_grad=True)
        a, b = w * 2, w * 3
        c, d = a.sin(), b.cos()
        for t, name in ((a, "a"), (b, "b"), (c, "c"), (d, "d")):
            t.grad_fn.register_prehook(lambda g, name=name: log.append(name))
        (c + d).sum().backward()
        return log
    assert run(gt) == run(torch)
