"""``Tensor.register_hook``: each program runs in gt and in torch on the same values, and what the
hooks saw, the gradients and what ``retain_grad()`` kept are compared; then the errors, the
handles, a hook next to plain gradient descent in the backward, and tensors on a mesh."""

import numpy as np
import pytest

import gt
from gt.sharding import Partial, Shard, use_mesh
from helpers import collecting_only_its_own_garbage, torch_or_skip

RNG = np.random.default_rng(0)
A = RNG.standard_normal((3, 4))
B = RNG.standard_normal((3, 4))
V = RNG.standard_normal(4)


def _tensors(lib, dtype):
    """``a`` and ``v`` require grad, ``b`` does not."""
    make = (lambda x, g: gt.tensor(x.astype(dtype), requires_grad=g)) if lib is gt else \
        (lambda x, g: lib.tensor(x, dtype=getattr(lib, dtype), requires_grad=g))
    return make(A, True), make(B, False), make(V, True)


def _numpy(lib, t):
    return t.numpy() if lib is gt else t.detach().numpy()


# Each program returns a list of tensors (what hooks saw, gradients, kept gradients), compared
# one by one; ``seen`` collects the gradients the hooks saw, in the order they ran.
def _leaf_hook_scales(a, b, v, seen):
    a.register_hook(lambda g: seen.append(g) or g * 3)
    (a * b).sum().backward()
    return seen + [a.grad]


def _leaf_hook_before_post_accumulate(a, b, v, seen):
    a.register_hook(lambda g: g * 2)
    a.register_post_accumulate_grad_hook(lambda t: seen.append(t.grad.clone()))
    (a * a).sum().backward()
    return seen + [a.grad]


def _hook_sees_the_sum_of_every_use(a, b, v, seen):
    h = a * 2
    h.register_hook(lambda g: seen.append(g))
    (h * b + h.exp() + h[0].sum()).sum().backward()
    return seen + [a.grad]


def _non_leaf_hook_replaces_what_flows_on(a, b, v, seen):
    h = a * v
    h.register_hook(lambda g: g * 0 + 1)
    (h * b).sum().backward()
    return [a.grad, v.grad]


def _retain_grad_keeps_the_hooks_result(a, b, v, seen):
    h1, h2 = a * 2, a * 3
    h1.retain_grad()                       # before the hook
    h1.register_hook(lambda g: g * 10)
    h2.register_hook(lambda g: g + 1)
    h2.retain_grad()                       # after it: either way the hooks' result is kept
    (h1 * b + h2 * h2).sum().backward()
    return [h1.grad, h2.grad, a.grad]


def _hooks_run_in_registration_order(a, b, v, seen):
    h = a.sum(1)
    h.register_hook(lambda g: g * 2)
    h.register_hook(lambda g: seen.append(g) or g + 1)
    h.register_hook(lambda g: g * g)
    (h * h.detach()).sum().backward()   # the seed h (torch's backward(grad) has a slow first call)
    return seen + [a.grad]


def _hook_returning_none_keeps_the_gradient(a, b, v, seen):
    v.register_hook(lambda g: seen.append(g.clone()) and None)
    (a @ v).sum().backward()
    return seen + [v.grad]


def _removed_hook_does_not_run(a, b, v, seen):
    handle = a.register_hook(lambda g: g * 100)
    a.register_hook(lambda g: g + 1)
    handle.remove()
    handle.remove()                         # twice: nothing more
    (a * b).sum().backward()
    return [a.grad]


def _hook_runs_at_every_backward(a, b, v, seen):
    a.register_hook(lambda g: seen.append(g) or g * 2)
    (a * b).sum().backward()
    (a * a).sum().backward()
    return seen + [a.grad]


def _hook_off_the_path_does_not_run(a, b, v, seen):
    unused = a * 2
    unused.register_hook(lambda g: seen.append(g))
    (v * 3).sum().backward()
    return [v.grad, len(seen) + v.sum() * 0]


def _hooks_and_an_in_place_change(a, b, v, seen):
    """Hooks registered before the change see the gradient of the values before it."""
    h = a * 2
    h.register_hook(lambda g: seen.append(g))
    h.retain_grad()
    early = h * 5
    h.add_(1)
    h.register_hook(lambda g: seen.append(g * 100))
    (early + h * b).sum().backward()
    return seen + [h.grad, a.grad]


def _hook_on_a_0d_tensor(a, b, v, seen):
    s = (a * b).sum()
    s.register_hook(lambda g: g * 4)
    (s * s).backward()
    return [a.grad]


PROGRAMS = {f.__name__[1:]: f for f in (
    _leaf_hook_scales, _leaf_hook_before_post_accumulate, _hook_sees_the_sum_of_every_use,
    _non_leaf_hook_replaces_what_flows_on, _retain_grad_keeps_the_hooks_result, _hooks_run_in_registration_order,
    _hook_returning_none_keeps_the_gradient, _removed_hook_does_not_run, _hook_runs_at_every_backward,
    _hook_off_the_path_does_not_run, _hooks_and_an_in_place_change, _hook_on_a_0d_tensor)}


def _run(lib, program, dtype):
    a, b, v = _tensors(lib, dtype)
    return [_numpy(lib, t) for t in program(a, b, v, [])]


@pytest.mark.parametrize("name", list(PROGRAMS))
def test_hooks_as_in_torch(name):
    torch = torch_or_skip()
    ours, theirs = _run(gt, PROGRAMS[name], "float64"), _run(torch, PROGRAMS[name], "float64")
    assert len(ours) == len(theirs), (len(ours), len(theirs))
    for i, (x, y) in enumerate(zip(ours, theirs)):
        np.testing.assert_allclose(x, y, rtol=1e-10, atol=1e-12, err_msg=f"{name}: item {i}")


@pytest.mark.parametrize("name", ["leaf_hook_scales", "retain_grad_keeps_the_hooks_result"])
def test_hooks_keep_float32(name):
    torch = torch_or_skip()
    ours, theirs = _run(gt, PROGRAMS[name], "float32"), _run(torch, PROGRAMS[name], "float32")
    for x, y in zip(ours, theirs):
        assert x.dtype == y.dtype == np.float32
        np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-6)


def test_a_hook_sees_a_gt_tensor_that_does_not_record():
    a = gt.tensor(A, requires_grad=True)
    seen = []
    a.register_hook(lambda g: seen.append((type(g), g.shape, g.requires_grad, gt.is_grad_enabled())))
    (a * 2).sum().backward()
    assert seen == [(gt.Tensor, (3, 4), False, False)]
    assert gt.is_grad_enabled()


def test_the_handle_works_as_a_context_manager():
    a = gt.tensor(V, requires_grad=True)
    with a.register_hook(lambda g: g * 0):
        (a * 1).sum().backward()
    (a * 1).sum().backward()
    np.testing.assert_array_equal(a.grad.numpy(), np.ones(4))


def test_retains_grad_as_in_torch():
    torch = torch_or_skip()
    for lib in (gt, torch):
        a = _tensors(lib, "float32")[0]
        h = a * 2
        before = (a.retains_grad, h.retains_grad)
        h.retain_grad()
        assert before == (False, False) and h.retains_grad and not a.retains_grad


# ---- errors: torch's messages ------------------------------------------------------------------
def test_a_tensor_that_does_not_require_grad_refuses_a_hook():
    torch = torch_or_skip()
    message = "cannot register a hook on a tensor that doesn't require gradient"
    for t in (gt.zeros(3), torch.zeros(3)):
        with pytest.raises(RuntimeError, match=message):
            t.register_hook(lambda g: g)
    with pytest.raises(TypeError, match="expects a callable, got 3"):
        gt.zeros(3, requires_grad=True).register_hook(3)


@pytest.mark.parametrize("hook, error, message", [
    (lambda g: gt.ones(5), RuntimeError, r"hook '<lambda>' has changed the size of value \(was \(3, 4\), got \(5,\)\)"),
    (lambda g: g.double(), RuntimeError,
     r"hook '<lambda>' has changed the type of value \(was gt.float32 got gt.float64"),
    (lambda g: 3, TypeError, r"expected a tensor or None, but hook '<lambda>' returned 'int'"),
], ids=["size", "dtype", "not a tensor"])
def test_a_hook_that_returns_something_else_raises(hook, error, message):
    a = gt.tensor(A.astype(np.float32), requires_grad=True)
    a.register_hook(hook)
    with pytest.raises(error, match=message):
        (a * 2).sum().backward()


# ---- a hook beside plain gradient descent in the backward ----------------------------------------
def test_a_hook_on_a_weight_sees_its_gradient_when_sgd_steps_in_the_backward():
    """Plain SGD in the backward may write a weight's update straight from the product that makes
    its gradient (gt/autograd/hooks.py): not for a weight with a hook, which must see that gradient
    and may change it."""
    gt.manual_seed(0)
    fc = gt.nn.Linear(4, 3)
    w0 = fc.weight.numpy().copy()
    opt = gt.optim.SGD(fc.parameters(), lr=0.1, in_backward=True)
    seen = []
    fc.weight.register_hook(lambda g: seen.append(g.numpy().copy()) or g * 2)
    x = gt.tensor(A.astype(np.float32))
    fc(x).sum().backward()
    opt.step()
    expected_grad = np.ones((3, 3)).T @ A.astype(np.float32)
    np.testing.assert_allclose(seen[0], expected_grad, rtol=1e-5)
    np.testing.assert_allclose(fc.weight.numpy(), w0 - 0.1 * 2 * expected_grad, rtol=1e-5, atol=1e-6)


def test_a_hook_sees_a_weight_gradient_kept_as_factors_as_a_tensor():
    """A big weight gradient of few rows may be held as its two factors (gt/autograd/deferred.py);
    a hook sees the gradient itself, and what it returns is what .grad holds."""
    gt.manual_seed(0)
    fc = gt.nn.Linear(256, 256, bias=False)
    x = gt.randn(2, 256)
    seen = []
    fc.weight.register_hook(lambda g: seen.append(g.numpy().copy()) or g * 2)
    fc(x).sum().backward()
    expected = np.ones((2, 256), np.float32).T @ x.numpy()
    np.testing.assert_allclose(seen[0], expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(fc.weight.grad.numpy(), 2 * expected, rtol=1e-5, atol=1e-5)


def test_a_backward_without_hooks_never_runs_them(monkeypatch):
    from gt.autograd import grad_hooks

    def boom(*args):
        raise AssertionError("grad_hooks.run called without hooks")
    monkeypatch.setattr(grad_hooks, "run", boom)
    a = gt.tensor(A, requires_grad=True)
    (a * a).sum().backward()
    b = gt.tensor(A, requires_grad=True)
    b.register_hook(lambda g: g).remove()
    (b * b).sum().backward()
    assert a.grad is not None and b.grad is not None


def test_a_hooks_tensor_goes_with_its_tensor():
    from gt.autograd import grad_hooks
    # by keys, not a count: a garbage collection during the loop may free earlier tests' tensors
    before = set(grad_hooks.table())
    for _ in range(5):
        a = gt.tensor(V, requires_grad=True)
        (a * 2).register_hook(lambda g: g)
        a.register_hook(lambda g: g)
    assert set(grad_hooks.table()) - before == {id(a)}
    del a
    assert set(grad_hooks.table()) - before == set()


# ---- on a mesh: the hook sees the gradient of the whole tensor ---------------------------------
@pytest.mark.own_mesh
def test_hooks_on_a_mesh_see_the_global_gradient():
    x_np = RNG.standard_normal((8, 3)).astype(np.float32)
    results = {}
    for n in (1, 4):
        with use_mesh(n):
            w = gt.tensor(V[:3].astype(np.float32), requires_grad=True)
            x = gt.tensor(x_np).shard(0) if n > 1 else gt.tensor(x_np)
            seen = []
            w.register_hook(lambda g: seen.append((g.placement, g.shape, g.numpy().copy())) or g * 2)
            h = x * w
            h.register_hook(lambda g: seen.append((g.placement, g.shape, g.numpy().copy())) or g + 1)
            h.retain_grad()
            (h * 3).sum().backward()
            results[n] = seen, w.grad.numpy(), h.grad.numpy()
    (seen1, w1, h1), (seen4, w4, h4) = results[1], results[4]
    assert [s[1] for s in seen4] == [(8, 3), (3,)]
    assert seen4[0][0] == Shard(0) and seen4[1][0] == Partial()     # h's is sharded, w's a partial sum
    for (_, _, g1), (_, _, g4) in zip(seen1, seen4):
        np.testing.assert_allclose(g4, g1, rtol=1e-6)
    np.testing.assert_allclose(w4, w1, rtol=1e-6)
    np.testing.assert_allclose(w4, 2 * 4 * x_np.sum(0), rtol=1e-5)
    np.testing.assert_allclose(h4, h1)


# ---- hooks elsewhere do not change a graph's gradients ----------------------------------------------
def _attention_like_grad(lib, x, weights):
    """The gradient of ``x`` that three branches (``q``, ``k``, ``v``) sum: their order is the
    order of that sum, so a change of the backward's order shows in its last bits."""
    xt = (gt.from_numpy(x.copy()) if lib is gt else lib.from_numpy(x.copy())).requires_grad_()
    wq, wk, wv = ((gt.from_numpy(w) if lib is gt else lib.from_numpy(w)) for w in weights)
    h = xt * 1.0
    q, k, v = h @ wq, h @ wk, h @ wv
    ((q * k).sum(-1, keepdim=True) * v).sum().backward()
    return _numpy(lib, xt.grad).copy()


@pytest.mark.parametrize("kind", ["tensor", "post_accumulate", "node"])
def test_a_hook_on_another_graph_leaves_this_graphs_gradient_bits_alone(monkeypatch, kind):
    # A hook that some other model holds (an optimizer stepping in the backward, alive until
    # Python's collector frees it) put every backward in torch's hook order, whose sums round
    # otherwise: the same seed gave other bits after other work (a resumed training run was
    # 1 ulp off the uninterrupted one). Only hooks on the graph walked may choose its order.
    from gt.autograd import node_hooks

    monkeypatch.setattr(node_hooks, "registered", False)   # no node hook so far, whatever ran before
    rng = np.random.default_rng(3)
    x = rng.standard_normal((24, 8)).astype(np.float32)
    weights = tuple(rng.standard_normal((8, 8)).astype(np.float32) for _ in range(3))
    alone = _attention_like_grad(gt, x, weights)
    other = gt.zeros(3, requires_grad=True)
    doubled = other * 2
    handle = (other.register_hook(lambda g: g) if kind == "tensor" else
              other.register_post_accumulate_grad_hook(lambda t: None) if kind == "post_accumulate" else
              doubled.grad_fn.register_hook(lambda gi, go: None))
    beside = _attention_like_grad(gt, x, weights)
    np.testing.assert_array_equal(beside.view(np.uint32), alone.view(np.uint32))
    handle.remove()
    torch = torch_or_skip()
    np.testing.assert_allclose(alone, _attention_like_grad(torch, x, weights), rtol=1e-5, atol=1e-5)


def _make_hooked(kind):
    """A tensor that one of the autograd's weak tables keeps an entry for."""
    x = gt.randn(3, requires_grad=True)
    if kind == "hook":
        x.register_hook(lambda g: g)
    elif kind == "post_accumulate":
        x.register_post_accumulate_grad_hook(lambda t: None)
    elif kind == "view":      # a view of a tensor that needs no gradient, taken in grad mode
        x = gt.randn(3, 2)
        x[0]
    else:   # an in-place change of a tensor an op saved
        x = x * 1
        x.exp().add_(1)
        x.add_(1)
    return x


@pytest.mark.parametrize("kind, module, names", [
    ("hook", "gt.autograd.grad_hooks", ("_hooks", "_drop")),
    ("post_accumulate", "gt.autograd.hooks", ("_hooks", "_fused", "_refs", "_forget")),
    ("view", "gt.autograd.function", ("views_of",)),
    ("inplace", "gt.autograd.rebind", ("_changed", "_olds")),
])
def test_a_tensor_dropped_after_its_modules_globals_are_gone_says_nothing(monkeypatch, kind, module, names):
    """At interpreter exit a module's globals can be cleared before the last tensors die; their
    weak references' callbacks must not read them (they printed "Exception ignored in ...")."""
    import importlib
    import sys

    import gc

    mod = importlib.import_module(module)
    with collecting_only_its_own_garbage():
        x = _make_hooked(kind)
        raised = []
        monkeypatch.setattr(sys, "unraisablehook", raised.append)
        for name in names:
            monkeypatch.setattr(mod, name, None)
        del x
        gc.collect()
    assert [r.exc_value for r in raised] == []
