"""gt.autograd.grad (gt/autograd/gradients.py) beside torch.autograd.grad: the gradients of leaves
and computed tensors, no .grad touched, allow_unused / materialize_grads, torch's errors, the
graph freed unless retain_graph, tensor hooks, sharded tensors."""

import numpy as np
import pytest

import gt
from helpers import torch_or_skip

RNG = np.random.default_rng(0)
A = RNG.standard_normal((3, 4))
W = RNG.standard_normal((4, 2))


def _program(L, a, w):
    """(outputs, computed tensors) of the same program in gt or torch (``L``)."""
    h = (a @ w).tanh()
    y = h * a[:, :2]
    return (y * y).sum() + h.sum(), h


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_gradients_of_leaves_and_computed_tensors_are_torchs(dtype):
    torch = torch_or_skip()
    a, w = gt.tensor(A.astype(dtype), requires_grad=True), gt.tensor(W.astype(dtype), requires_grad=True)
    ta, tw = torch.tensor(A.astype(dtype), requires_grad=True), torch.tensor(W.astype(dtype), requires_grad=True)
    out, h = _program(gt, a, w)
    tout, th = _program(torch, ta, tw)
    ours = gt.autograd.grad(out, [w, h, a])
    theirs = torch.autograd.grad(tout, [tw, th, ta])
    assert isinstance(ours, tuple) and len(ours) == 3
    for g, t in zip(ours, theirs):
        assert g.dtype.name == dtype and not g.requires_grad
        np.testing.assert_allclose(g.numpy(), t.numpy(), rtol=1e-5 if dtype == "float32" else 1e-12)
    assert a.grad is None and w.grad is None


def test_grad_touches_no_grad_attribute_and_runs_no_post_accumulate_hook():
    w = gt.tensor(W, requires_grad=True)
    w.grad = gt.ones(4, 2, dtype=gt.float64)
    seen = []
    w.register_post_accumulate_grad_hook(seen.append)
    (g,) = gt.autograd.grad((w * 3).sum(), w)
    np.testing.assert_array_equal(g.numpy(), np.full((4, 2), 3.0))
    np.testing.assert_array_equal(w.grad.numpy(), np.ones((4, 2)))
    assert seen == []


def test_a_large_weight_gradient_comes_back_dense():
    # a Linear's weight gradient of few rows may be kept as factors by backward(): grad() makes it
    x = gt.randn(2, 256, dtype=gt.float64)
    lin = gt.nn.Linear(256, 512, dtype=gt.float64)
    (g,) = gt.autograd.grad(lin(x).sum(), lin.weight)
    np.testing.assert_allclose(g.numpy(), np.ones((512, 2)) @ x.numpy(), rtol=1e-12)
    assert lin.weight.grad is None


def test_several_outputs_with_grad_outputs_and_repeated_inputs():
    torch = torch_or_skip()
    x, tx = gt.tensor(A, requires_grad=True), torch.tensor(A, requires_grad=True)
    up = RNG.standard_normal((3, 4))
    ours = gt.autograd.grad([x * 2, x.sum()], [x, x], grad_outputs=[gt.tensor(up), None])
    theirs = torch.autograd.grad([tx * 2, tx.sum()], [tx, tx], grad_outputs=[torch.tensor(up), None])
    for g, t in zip(ours, theirs):
        np.testing.assert_allclose(g.numpy(), t.numpy(), rtol=1e-12)


def test_unused_inputs():
    x, unused = gt.tensor(A, requires_grad=True), gt.tensor(W, requires_grad=True)
    gx, none = gt.autograd.grad((x * 2).sum(), [x, unused], allow_unused=True, retain_graph=True)
    assert none is None
    np.testing.assert_array_equal(gx.numpy(), np.full((3, 4), 2.0))
    _, zeros = gt.autograd.grad((x * 2).sum(), [x, unused], materialize_grads=True)
    assert zeros.shape == (4, 2) and zeros.dtype == gt.float64 and not zeros.numpy().any()
    with pytest.raises(RuntimeError, match="The differentiated Tensor at index 1 appears to not have been used in "
                                           "the graph. Set allow_unused=True"):
        gt.autograd.grad((x * 2).sum(), [x, unused])
    with pytest.raises(ValueError, match="Expected allow_unused to be True or not passed when materialize_grads"):
        gt.autograd.grad((x * 2).sum(), x, allow_unused=False, materialize_grads=True)


@pytest.mark.parametrize("call, error, message", [
    (lambda x: gt.autograd.grad(x * 2, x), RuntimeError, "grad can be implicitly created only for scalar outputs"),
    (lambda x: gt.autograd.grad(gt.ones(2).sum(), x), RuntimeError,
     "element 0 of tensors does not require grad and does not have a grad_fn"),
    (lambda x: gt.autograd.grad((x * 2).sum(), gt.ones(2)), RuntimeError,
     "One of the differentiated Tensors does not require grad"),
    (lambda x: gt.autograd.grad(x * 2, x, grad_outputs=gt.ones(2)), RuntimeError,
     r"Mismatch in shape: grad_output\[0\] has a shape of \(2,\) and output\[0\] has a shape of \(3, 4\)"),
    (lambda x: gt.autograd.grad([x * 2, x.sum()], x, grad_outputs=[gt.ones(3, 4)]), RuntimeError,
     "got 2 tensors and 1 gradients"),
    (lambda x: gt.autograd.grad((x * 2).sum(), []), RuntimeError, "`inputs` argument to `grad..` cannot be empty"),
    (lambda x: gt.autograd.grad((x * 2).sum(), 3), TypeError, "inputs must be a tensor or a sequence of tensors"),
])
def test_errors_are_torchs(call, error, message):
    with pytest.raises(error, match=message):
        call(gt.tensor(A, requires_grad=True))


def test_the_graph_is_freed_unless_retained():
    x = gt.tensor(A, requires_grad=True)
    h = x.exp()
    out = (h * 3).sum()
    gt.autograd.grad(out, h, retain_graph=True)
    gt.autograd.grad(out, h)
    with pytest.raises(RuntimeError, match="backward through a graph a second time"):
        gt.autograd.grad(out, h)
    # only the ops on a path to the inputs ran: exp's is still there, as in torch
    h.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), np.exp(A), rtol=1e-12)


def test_tensor_hooks_run_as_in_torch():
    torch = torch_or_skip()
    results = []
    for L in (gt, torch):
        x = L.tensor(A, requires_grad=True)
        y = x * 2
        y.register_hook(lambda g: g * 10)
        x.register_hook(lambda g: g + 1)
        out = (y * 3).sum()
        results.append([g.numpy() if L is gt else g.detach().numpy()
                        for g in (*L.autograd.grad(out, y, retain_graph=True), *L.autograd.grad(out, x))])
    for ours, theirs in zip(*results):
        np.testing.assert_allclose(ours, theirs, rtol=1e-12)


def test_sharded_tensors_get_their_global_shape():
    x = gt.from_numpy(np.tile(A, (2, 1)))          # data: sharded along dim 0 over the mesh, if any
    w = gt.tensor(W, requires_grad=True)           # a parameter: replicated
    xs = x.requires_grad_() if x.is_leaf else x
    h = xs @ w
    gw, gx, gh = gt.autograd.grad((h * h).sum(), [w, xs, h])
    hv = np.tile(A, (2, 1)) @ W
    assert gw.shape == (4, 2) and gx.shape == (6, 4) and gh.shape == (6, 2)
    np.testing.assert_allclose(gh.numpy(), 2 * hv, rtol=1e-12)
    np.testing.assert_allclose(gw.numpy(), np.tile(A, (2, 1)).T @ (2 * hv), rtol=1e-12)
    np.testing.assert_allclose(gx.numpy(), 2 * hv @ W.T, rtol=1e-12)
    assert gx.placement == xs.placement
    assert w.grad is None and xs.grad is None


def _both():
    torch = torch_or_skip()
    return [(gt, lambda t: t.numpy()), (torch, lambda t: t.detach().numpy())]


def test_backward_of_several_tensors_is_torchs():
    """gt.autograd.backward([...], [...]): the gradients of every root summed into the leaves."""
    results = []
    for L, arr in _both():
        a, w = L.tensor(A, requires_grad=True), L.tensor(W, requires_grad=True)
        out, h = _program(L, a, w)
        up = L.tensor(RNG.standard_normal((3, 2)) if L is gt else results[0][-1])
        L.autograd.backward([out, h, h[0, 0]], [None, up, None])
        results.append([arr(a.grad), arr(w.grad), arr(up)])
    for ours, theirs in zip(*results):
        np.testing.assert_allclose(ours, theirs, rtol=1e-12)


@pytest.mark.filterwarnings("ignore:Using backward\\(\\) with create_graph=True:UserWarning")   # torch's advice
@pytest.mark.parametrize("create_graph", [False, True])
def test_backward_inputs_fills_only_their_grad_as_torchs(create_graph):
    results = []
    for L, arr in _both():
        a, w, unused = (L.tensor(v, requires_grad=True) for v in (A, W, W))
        seen = []
        w.register_post_accumulate_grad_hook(lambda p: seen.append(arr(p.grad).copy()))
        out, h = _program(L, a, w)
        h.retain_grad()
        out.backward(inputs=[w, unused], retain_graph=True, create_graph=create_graph)
        first = arr(w.grad).copy()
        out.backward(inputs=h, create_graph=create_graph)     # a computed tensor: its .grad, no leaf's
        second = [arr(w.grad), arr(h.grad)]
        results.append([first, *second, a.grad is None, unused.grad is None, len(seen),
                        w.grad.requires_grad == create_graph])
        if create_graph:                                        # the gradient has a graph: differentiate it
            results[-1].append(arr(L.autograd.grad(w.grad.sum(), a)[0]))
    for ours, theirs in zip(*results):
        np.testing.assert_allclose(ours, theirs, rtol=1e-12)
    assert results[0][3:7] == [True, True, 1, True]


def test_backward_inputs_errors_are_torchs():
    x = gt.tensor(W, requires_grad=True)
    with pytest.raises(RuntimeError, match="`inputs` argument to `backward\\(\\)` cannot be empty"):
        (x * 2).sum().backward(inputs=[])
    with pytest.raises(TypeError, match="backward\\(\\): inputs must be a tensor or a sequence of tensors"):
        (x * 2).sum().backward(inputs=[3])
    with pytest.raises(RuntimeError, match="grad can be implicitly created only for scalar outputs"):
        gt.autograd.backward([(x * 2).sum(), x * 2])


def test_an_assigned_grad_must_be_a_tensor_of_the_shape():
    p = gt.tensor(W, requires_grad=True)
    with pytest.raises(RuntimeError, match="attempting to assign a gradient of size \\[2\\] to a tensor of size "
                                           "\\[4, 2\\]"):
        p.grad = gt.ones(2)          # it would broadcast in an optimizer's update
    with pytest.raises(TypeError, match="assigned grad expected to be a Tensor or None but got grad of type list"):
        p.grad = [1.0, 2.0]
    p.grad = gt.ones(4, 2, dtype=gt.float32)      # another dtype: the optimizers cast it
    p.grad = None
    assert p.grad is None


def test_a_retained_grad_held_from_an_earlier_backward_keeps_its_values():
    """torch adds a retain_grad() tensor's next gradient out of place (a leaf's, in place)."""
    results = []
    for L, arr in _both():
        x = L.tensor([1.0, 2.0], requires_grad=True)
        y = x * 3
        y.retain_grad()
        (y * y).sum().backward(retain_graph=True)
        held, held_leaf = y.grad, x.grad
        (y * y).sum().backward()
        results.append([arr(held).tolist(), arr(y.grad).tolist(), held is y.grad, held_leaf is x.grad,
                        arr(x.grad).tolist()])
    assert results[0] == results[1] == [[6.0, 12.0], [12.0, 24.0], False, True, [36.0, 72.0]]
