"""A value an op saved for its backward, changed in place before that backward, is an error, as
in torch (gt/autograd/versions.py): never a silently wrong gradient. Each program below runs in
gt and in torch; both raise, or both give the same gradients."""

import re

import numpy as np
import pytest

import gt
from gt import nn
from gt.sharding import Shard, use_mesh
from helpers import torch_or_skip

MODIFIED = "modified by an inplace operation"
# torch's engine knows the version an op saved; numpy's knows that it changed since (one int a save)
SINCE = r"(; expected version 0 instead|, changed after the forward saved it)"


def _arrays(seed=0):
    rng = np.random.default_rng(seed)
    return {k: rng.uniform(0.5, 1.5, size=(3, 4)) for k in "abc"}


def _run(lib, program, arrays):
    """``program(lib, t)`` with t the arrays as tensors of ``lib`` (``a`` requires grad); returns
    a's gradient, or the RuntimeError's text."""
    if lib is gt:
        t = {k: gt.tensor(v.astype(np.float32), requires_grad=(k == "a")) for k, v in arrays.items()}
        no_grad = gt.no_grad
    else:
        t = {k: lib.tensor(v, dtype=lib.float32, requires_grad=(k == "a")) for k, v in arrays.items()}
        no_grad = lib.no_grad
    try:
        program(lib, t, no_grad)
    except RuntimeError as exc:
        return str(exc)
    return t["a"].grad.numpy()


def _sum_backward(y):
    y.sum().backward()


# Each program changes something in place between the forward and the backward.
# name -> (program, whether the change touches a value the backward reads)
PROGRAMS = {
    "mul, the other factor changed": (lambda L, t, ng: (y := t["a"] * t["b"], t["b"].add_(1), _sum_backward(y)), True),
    "div, the divisor changed": (lambda L, t, ng: (y := t["a"] / t["b"], t["b"].mul_(2), _sum_backward(y)), True),
    "matmul, the right side changed": (lambda L, t, ng: (y := t["a"] @ t["b"].T, t["b"].copy_(t["c"]),
                                                         _sum_backward(y)), True),
    "mul, a view of the factor changed": (lambda L, t, ng: (y := t["a"] * t["b"], t["b"][1:].zero_(),
                                                            _sum_backward(y)), True),
    "mul, one element of the factor assigned": (lambda L, t, ng: (y := t["a"] * t["b"], t["b"].__setitem__((0, 0), 5.0),
                                                                  _sum_backward(y)), True),
    "exp, its output changed under no_grad": (lambda L, t, ng: (y := t["a"].exp(), _in(ng, lambda: y.mul_(2)),
                                                                _sum_backward(y)), True),
    "sigmoid, its output changed under no_grad": (lambda L, t, ng: (y := t["a"].sigmoid(), _in(ng, lambda: y.add_(1)),
                                                                    _sum_backward(y)), True),
    "mul, the leaf itself changed under no_grad": (lambda L, t, ng: (y := t["a"] * t["a"], _in(ng, lambda: t["a"].add_(1)),
                                                                     _sum_backward(y)), True),
    # torch's mm keeps an operand only for the other's gradient: a data @ h never reads h again
    "matmul by data, the other side changed": (lambda L, t, ng: (h := t["a"] * 1, y := t["b"] @ h.T, h.mul_(2),
                                                                 _sum_backward(y)), False),
    "matmul by data, the other side transposed in place": (
        lambda L, t, ng: (h := t["a"] * 1, y := t["b"] @ h.T, h.t_(), _sum_backward(y)), False),
    "batched matmul by data, the other side changed": (
        lambda L, t, ng: (h := t["a"] * 1, y := t["b"].reshape(3, 1, 4) @ h.T, h.add_(1), _sum_backward(y)), False),
    "vector-matrix product by data, the matrix changed": (
        lambda L, t, ng: (h := t["a"] * 1, y := t["b"][0] @ h.T, h.t_(), _sum_backward(y)), False),
    # torch's linear keeps the weight only for the input's gradient: a first layer's weight may be
    # stepped between the forward and the backward
    "linear of data, the weight changed under no_grad": (
        lambda L, t, ng: (y := L.nn.functional.linear(t["b"], t["a"]), _in(ng, lambda: t["a"].mul_(0.5)),
                          _sum_backward(y)), False),
    "scatter_add, the source changed where only self needs a gradient": (
        lambda L, t, ng: (y := t["a"].scatter_add(0, L.tensor([[0, 2, 1, 0]]), t["b"][:1]), t["b"].add_(1),
                          _sum_backward(y)), False),
    "hypot, the other input changed": (lambda L, t, ng: (y := L.hypot(t["a"], t["b"]), t["b"].add_(1),
                                                         _sum_backward(y)), False),
    "atan2, its output changed under no_grad": (lambda L, t, ng: (y := L.atan2(t["a"], t["b"]),
                                                                  _in(ng, lambda: y.add_(1)), _sum_backward(y)), False),
    "softmax of no elements, its input changed": (
        lambda L, t, ng: (y := L.softmax(t["a"][:, :0], -1), _in(ng, lambda: t["a"].add_(1)), _sum_backward(y)), False),
    "repeat to no elements, its output changed under no_grad": (
        lambda L, t, ng: (y := t["a"].repeat(0, 1), _in(ng, lambda: y.add_(1)), _sum_backward(y)), False),
    "add, the other term changed": (lambda L, t, ng: (y := t["a"] + t["b"], t["b"].add_(1), _sum_backward(y)), False),
    "sum then mul by a constant, the constant's source changed": (
        lambda L, t, ng: (y := t["a"].sum() * 2.0, t["b"].add_(1), y.backward()), False),
    "mul, a copy of the factor changed": (lambda L, t, ng: (y := t["a"] * t["b"], t["b"].clone().add_(1),
                                                            _sum_backward(y)), False),
    "mul, the factor changed after the backward": (lambda L, t, ng: (y := t["a"] * t["b"], _sum_backward(y),
                                                                     t["b"].add_(1)), False),
}


def _in(no_grad, fn):
    with no_grad():
        fn()


@pytest.mark.parametrize("name", list(PROGRAMS))
def test_a_change_of_a_saved_value_raises_as_in_torch(name):
    torch = torch_or_skip()
    program, reads_it = PROGRAMS[name]
    arrays = _arrays()
    ours, theirs = _run(gt, program, arrays), _run(torch, program, arrays)
    if reads_it:
        assert isinstance(theirs, str) and MODIFIED in theirs, f"torch did not raise for {name!r}"
        assert isinstance(ours, str) and MODIFIED in ours, f"gt did not raise for {name!r}: {ours!r}"
    else:
        assert not isinstance(theirs, str), theirs
        assert not isinstance(ours, str), ours
        np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-7)


def test_the_error_names_the_value_and_the_versions():
    w = gt.randn(3, 4, requires_grad=True)
    x = gt.randn(2, 4)
    y = x @ w.T
    x.add_(1)
    x[0, 0] = 2.0
    with pytest.raises(RuntimeError) as info:
        y.sum().backward()
    text = str(info.value)
    if x.placement == Shard(0):
        # a mesh from GT_DEVICES: each device saved its rows, and torch counts each share's change
        # of the one buffer the shards lie in
        assert "[gt.float32 tensor of shape (1, 4), one device's share of it]" in text
        assert re.search(r"is at version [2-9]" + SINCE, text)
    else:
        assert "[gt.float32 tensor of shape (2, 4)]" in text
        assert re.search(r"is at version 2" + SINCE, text)
    assert "saved by MatmulBackward" in text
    assert "clone()" in text


@pytest.mark.own_mesh
def test_versions_count_changes_and_views_share_them_as_in_torch():
    torch = torch_or_skip()
    for lib in (gt, torch):
        with use_mesh(1):
            a = lib.zeros(4, 3)
        v = a[1:]
        counts = [a._version]
        a.add_(1)
        counts.append(a._version)
        v.mul_(2)                    # through a view: the base's count moves too
        counts.append((a._version, v._version))
        a[0] = 3.0
        counts.append((a._version, v._version))
        b = a + 1                    # a new tensor starts at 0
        counts.append(b._version)
        if lib is gt:
            ours = counts
        else:
            theirs = counts
    assert ours == theirs == [0, 1, (2, 2), (3, 3), 0]


@pytest.mark.parametrize("make_opt", [
    lambda ps: gt.optim.SGD(ps, lr=0.1),
    lambda ps: gt.optim.SGD(ps, lr=0.1, momentum=0.9),
    lambda ps: gt.optim.Adam(ps, lr=0.01),
    lambda ps: gt.optim.AdamW(ps, lr=0.01),
], ids=["sgd", "sgd-momentum", "adam", "adamw"])
def test_a_step_between_forward_and_backward_raises(make_opt):
    """Every optimizer's update counts as a change of its parameters, including the fused kernels
    that write the weights without an in-place tensor op (torch's fused Adam does not count it)."""
    gt.manual_seed(0)
    fc = nn.Linear(4, 3)
    opt = make_opt(fc.parameters())
    x = gt.randn(5, 4, requires_grad=True)
    loss = (fc(x) ** 2).sum()
    loss.backward(retain_graph=True)
    opt.step()
    with pytest.raises(RuntimeError, match=MODIFIED):
        loss.backward()


def test_a_step_of_a_first_layer_between_forward_and_backward_is_taken_as_torch():
    """A weight whose input needs no gradient is not kept by the backward (torch's linear): changed in
    place after the forward, its gradient is still dY^T X, and plain gradient descent inside the backward
    (the product written into the weight) updates the changed weight."""
    torch = torch_or_skip()
    rng = np.random.default_rng(0)
    x, w0, b0 = rng.standard_normal((5, 4)), rng.standard_normal((3, 4)), rng.standard_normal(3)
    results = []
    for lib in (gt, torch):
        fc = lib.nn.Linear(4, 3)
        with lib.no_grad():
            fc.weight.copy_(lib.tensor(w0, dtype=lib.float32))
            fc.bias.copy_(lib.tensor(b0, dtype=lib.float32))
        kwargs = {"in_backward": True} if lib is gt else {}
        opt = lib.optim.SGD(fc.parameters(), lr=0.1, **kwargs)
        loss = (fc(lib.tensor(x, dtype=lib.float32)) ** 2).sum()
        with lib.no_grad():
            fc.weight.mul_(0.5)
        loss.backward()
        if lib is torch:
            opt.step()
        results.append((fc.weight.detach().numpy(), fc.bias.detach().numpy()))
    for ours, theirs in zip(*results):
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)


def test_training_loops_never_meet_the_check():
    """The usual order (forward, backward, step) and the optimizer stepping in the backward."""
    gt.manual_seed(0)
    fc1, fc2 = nn.Linear(6, 8), nn.Linear(8, 2)
    params = list(fc1.parameters()) + list(fc2.parameters())
    plain = gt.optim.SGD(list(fc1.parameters()), lr=0.05)
    in_bwd = gt.optim.AdamW(list(fc2.parameters()), lr=0.01, in_backward=True)
    x, y = gt.randn(16, 6), gt.randn(16, 2)
    losses = []
    for _ in range(4):
        plain.zero_grad()
        loss = ((fc2(fc1(x).relu()) - y) ** 2).mean()
        loss.backward()
        plain.step()
        in_bwd.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]
    assert all(p._version > 0 for p in params)


@pytest.mark.own_mesh
def test_a_sharded_saved_value_changed_in_place_raises():
    with use_mesh(2):
        w = gt.randn(4, requires_grad=True)
        x = gt.randn(6, 4).shard(0)
        assert x.placement == Shard(0)
        y = x * w
        x.add_(1)
        with pytest.raises(RuntimeError, match=MODIFIED):
            y.sum().backward()
        z = gt.randn(6, 4).shard(0)
        y = z * w
        y.sum().backward()           # unchanged: no error
        assert w.grad is not None


def test_the_count_of_an_array_goes_with_it():
    """The numpy engine's table of versions holds an entry only while its array lives (a long run
    that changes fresh tensors in place every step must not grow it)."""
    if gt.get_backend() != "numpy":
        pytest.skip("torch keeps its own counts, on the tensors")
    from gt.backend import B
    # entries of arrays freed by a garbage collection during the loop (earlier tests' cycles)
    # leave the table too, so the loop's own entries are told apart by their generation
    start = B._generation
    for _ in range(50):
        t = gt.zeros(8)
        t.add_(1)
        t[0] = 2.0
        assert t._version == 2
    assert sum(entry[2] > start for entry in B._versions.values()) == 1
    del t
    assert [entry for entry in B._versions.values() if entry[2] > start] == []
