"""What a backward frees, beside torch (found by a differential fuzzer of small graphs walked two
or three times with random ``retain_graph``): an op frees only what it saved, so a second backward
through ops that saved nothing works and accumulates, and one through an op whose saved values
were freed raises; the edges of a freed graph stay; ``1 / x`` and ``reciprocal``; ``.data``
replaced between the forward and the backward. Each program runs in gt and in torch: both raise
torch's error, or both give the same gradients."""

import numpy as np
import pytest

import gt
from helpers import torch_or_skip

TWICE = "second time"


def _run(program, lib):
    """``program(lib)``'s gradients (a list of lists of floats), or "raise" where it raised the
    backward-twice error."""
    try:
        out = program(lib)
    except RuntimeError as exc:
        assert TWICE in str(exc).lower(), exc
        return "raise"
    return [None if g is None else np.asarray(g.detach().tolist(), dtype=float) for g in out]


def _same(program):
    torch = torch_or_skip()
    ours, theirs = _run(program, gt), _run(program, torch)
    if isinstance(theirs, str) or isinstance(ours, str):
        assert ours == theirs
        return ours
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs):
        assert (a is None) == (b is None)
        if a is not None:
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    return ours


def _leaf(lib, values):
    return lib.tensor(values, requires_grad=True)


def _expand_twice(lib):
    a = _leaf(lib, [[1.0, 2.0]])
    x = a.expand(3, 2)
    x.sum().backward()
    x.sum().backward()
    return [a.grad]


def _views_and_sums_twice(lib):
    a = _leaf(lib, [[1.0, -2.0, 3.0], [0.5, 4.0, -1.0]])
    y = (a.t().reshape(-1)[1:] + 2).sum(0, keepdim=True).expand(4, 1) - a.mean()
    y.sum().backward()
    y.sum().backward(retain_graph=False)
    (y * 3).sum().backward()
    return [a.grad]


def _normal_twice(lib):
    mu, sigma = _leaf(lib, [0.0, 1.0]), _leaf(lib, [1.0, 2.0])
    x = lib.tensor([[0.5, 1.0], [2.0, -1.0]])
    d = lib.distributions.Normal(mu, sigma)
    d.log_prob(x).sum().backward()
    d.entropy().sum().backward()
    return [mu.grad, sigma.grad]


def _add_alpha_lerp_twice(lib):
    a, b = _leaf(lib, [1.0, 2.0]), _leaf(lib, [3.0, -1.0])
    y = a.add(b, alpha=3) + lib.lerp(a, b, 0.25) + a.sub(b, alpha=2)
    y.sum().backward()
    y.sum().backward()
    return [a.grad, b.grad]


@pytest.mark.parametrize("program", [_expand_twice, _views_and_sums_twice, _normal_twice, _add_alpha_lerp_twice])
def test_second_backward_through_ops_that_saved_nothing(program):
    assert _same(program) != "raise"


def _freed_beside_walkable(lib):
    a, b = _leaf(lib, [[1.0, 2.0, 3.0]]), _leaf(lib, [2.0, 0.5, -1.0])
    y = a.expand(2, 3)
    z = (y * b).sum()          # mul saved y and b
    z.backward()
    y.sum().backward()         # expand saved nothing: walkable again
    grads = [a.grad.clone(), b.grad.clone()]
    z.backward()               # mul's saved values are gone
    return grads


def test_freed_op_raises_while_ops_that_saved_nothing_stay_walkable():
    torch = torch_or_skip()
    with pytest.raises(RuntimeError, match=TWICE):
        _freed_beside_walkable(torch)
    with pytest.raises(RuntimeError, match=TWICE):
        _freed_beside_walkable(gt)

    def first_part(lib):
        a, b = _leaf(lib, [[1.0, 2.0, 3.0]]), _leaf(lib, [2.0, 0.5, -1.0])
        y = a.expand(2, 3)
        (y * b).sum().backward()
        y.sum().backward()
        return [a.grad, b.grad]
    _same(first_part)
    # torch raises for these too: a number operand of mul/div is saved as a tensor, exp saves its result
    for make in (lambda a: a * 2, lambda a: a / 2, lambda a: a.exp(), lambda a: 2 / a):
        def twice(lib, make=make):
            a = _leaf(lib, [1.0, 2.0])
            y = make(a)
            y.sum().backward()
            y.sum().backward()
            return [a.grad]
        assert _same(twice) == "raise"


def test_grad_then_backward_through_split_parts_meets_at_one_tensor():
    def program(lib):
        a = _leaf(lib, [[1.0, 2.0], [3.0, 4.0]])
        p = lib.stack(a.unbind(0)).reshape(-1).reshape(2, 2)
        q = lib.cat(p.chunk(2, 1), 1)
        g = lib.autograd.grad((q * q.detach()).sum(), [a])[0]
        q.sum().backward()
        q.sum().backward()
        return [g, a.grad]
    _same(program)


def test_retain_grad_and_hooks_on_a_second_backward():
    def program(lib):
        a = _leaf(lib, [[1.0, 2.0]])
        x = a.expand(3, 2)
        x.retain_grad()
        m = x + 0.0
        m.register_hook(lambda g: g * 2)
        s = (m - 1).sum()
        s.backward()
        s.backward(retain_graph=True)
        s.backward()
        return [a.grad, x.grad]
    _same(program)


def test_next_functions_of_a_freed_graph():
    torch = torch_or_skip()
    names = []
    for lib in (gt, torch):
        a = _leaf(lib, [1.0, 2.0])
        y = (a.exp().expand(2, 2) + a).sum()
        y.backward()
        node = y.grad_fn.next_functions[0][0]
        names.append([n.name() if n is not None else None for n, _ in node.next_functions])
    assert names[0] == names[1]


def test_reciprocal_of_one_over_x_and_in_place_change_of_the_result():
    def one_over(lib):
        x = _leaf(lib, [2.0, 4.0])
        y = 1 / x
        y.add_(1)                 # torch's 1 / x saved a reciprocal of its own, not y
        y.sum().backward()
        return [x.grad]
    _same(one_over)
    torch = torch_or_skip()
    for lib in (gt, torch):
        for method in ("reciprocal", "rsqrt"):
            x = _leaf(lib, [2.0, 4.0])
            y = getattr(x, method)()          # saves its result: changing it raises
            y.add_(1)
            with pytest.raises(RuntimeError, match="modified by an inplace operation"):
                y.sum().backward()


@pytest.mark.parametrize("case", ["leaf", "nonleaf", "constant", "square", "exp", "linear"])
def test_data_replaced_between_forward_and_backward(case):
    def program(lib):
        w, x = _leaf(lib, [2.0, 3.0]), _leaf(lib, [5.0, 7.0])
        c = lib.tensor([1.0, -1.0])
        if lib is gt and getattr(c, "_placed", None) is not None and case == "constant":
            pytest.skip("sharded over the mesh (GT_DEVICES): each device's op keeps the shard it saved (MISSING.md)")
        if case == "leaf":
            y, target = (w * x).sum(), w
        elif case == "nonleaf":
            h = w * 1.0 + 0.0
            y, target = (h * x).sum(), h
        elif case == "constant":
            y, target = (w * c).sum() + (x * c).sum(), c
        elif case == "square":
            y, target = (w * w).sum() + x.sum(), w
        elif case == "exp":
            y, target = w.exp().sum() + (x * w).sum(), w       # exp saved its result: the old values
        else:   # torch's linear saved weight.t(): the old values
            lin = lib.nn.Linear(2, 1)
            with lib.no_grad():
                lin.weight.copy_(lib.tensor([[0.5, -1.0]]))
            y = lin(x.reshape(1, 2)).sum() + (w * w).sum()
            lin.weight.data = lib.tensor([[4.0, 6.0]])
            w.data = lib.tensor([10.0, 20.0])
            y.backward()
            return [w.grad, x.grad, lin.weight.grad]
        target.data = lib.tensor([10.0, 20.0])
        y.backward()
        return [w.grad, x.grad]
    _same(program)


@pytest.mark.filterwarnings("ignore:Using backward\\(\\) with create_graph=True")   # torch's own, on its reference
def test_create_graph_gradient_then_plain_backward_adds_into_it():
    def program(lib):
        a, b = _leaf(lib, [[1.0, 2.0], [3.0, 4.0]]), _leaf(lib, [[1.0, 1.0], [1.0, 1.0]])
        (a.t() + b).sum().backward(create_graph=True)
        first = a.grad
        a.sum().backward()
        assert a.grad is first
        return [a.grad, b.grad]
    _same(program)


@pytest.mark.parametrize("allow_unused", [False, True])
def test_create_graph_grad_through_a_freed_graph_raises_as_torch(allow_unused):
    """``gt.autograd.grad(..., create_graph=True)`` through a graph a plain backward freed: torch's
    "second time" error, not "not used in the graph" (nor a silent None with ``allow_unused``)."""
    x = gt.ones(3, requires_grad=True)
    y = x.exp()
    y.sum().backward()
    with pytest.raises(RuntimeError, match="second time"):
        gt.autograd.grad(y.sum(), x, create_graph=True, allow_unused=allow_unused)
