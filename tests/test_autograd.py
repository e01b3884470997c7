"""The tape: backward, accumulation, graph freeing, grad modes, in-place rules, gradient
ownership (no aliasing), print_tape, seeding and dtypes."""

import io
import itertools

import numpy as np
import pytest

import gt
from gt.backend import B
from gt.sharding import use_mesh
from helpers import randn


def leaf(values, dtype=None):
    return gt.tensor(np.asarray(values, dtype=np.float64), dtype=dtype or gt.float64, requires_grad=True)


# ---- backward ------------------------------------------------------------------------------
def test_backward_on_scalar():
    x = leaf([1.0, 2.0, 3.0])
    (x * x).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 4.0, 6.0])


def test_backward_with_grad_on_non_scalar():
    x = leaf([[1.0, 2.0], [3.0, 4.0]])
    y = x * 3.0
    y.backward(gt.tensor([[1.0, 0.0], [2.0, -1.0]], dtype=gt.float64))
    np.testing.assert_array_equal(x.grad.numpy(), [[3.0, 0.0], [6.0, -3.0]])
    x2 = leaf([1.0, 2.0])
    (x2 * 2.0).backward(np.array([1.0, 1.0]))  # numpy arrays and lists work too
    (x2 * 2.0).backward([0.5, 0.5])
    np.testing.assert_array_equal(x2.grad.numpy(), [3.0, 3.0])


def test_backward_on_a_leaf_itself():
    x = leaf([1.0, 2.0])
    x.backward(gt.tensor([3.0, 4.0], dtype=gt.float64))
    np.testing.assert_array_equal(x.grad.numpy(), [3.0, 4.0])


def test_zero_dim_gradients_are_arrays():
    w = leaf(2.0)
    (w * w).backward()
    assert w.grad.shape == () and w.grad.item() == 4.0
    w.grad.zero_()  # a 0-d .grad is a real (writable) array, not a numpy scalar
    assert w.grad.item() == 0.0
    s = gt.randn(3).sum()
    s += 1.0
    s.zero_()
    assert s.item() == 0.0


# ---- accumulation -----------------------------------------------------------------------------
def test_gradients_accumulate_over_multiple_uses():
    x = leaf([1.0, 2.0])
    y = x * x + x * 3.0 + x  # three uses of x
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [2.0 * 1 + 4.0, 2.0 * 2 + 4.0])


def test_diamond_graph():
    x = leaf([0.5, -1.0])
    a = x.exp()
    b = a * 2.0
    c = a * a
    (b + c).sum().backward()
    ex = np.exp([0.5, -1.0])
    np.testing.assert_allclose(x.grad.numpy(), 2 * ex + 2 * ex * ex)


def test_gradients_accumulate_over_backward_calls_until_zeroed():
    x = leaf([1.0, 2.0])
    for _ in range(3):
        (x * 2.0).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [6.0, 6.0])
    x.grad.zero_()
    (x * 2.0).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 2.0])
    x.grad = None
    (x * 5.0).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [5.0, 5.0])


def test_same_tensor_twice_in_one_op():
    x = leaf([1.0, -2.0])
    (x + x).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 2.0])
    y = leaf([3.0])
    (y * y).backward(gt.tensor([1.0], dtype=gt.float64))
    np.testing.assert_array_equal(y.grad.numpy(), [6.0])


def test_deep_chain_does_not_recurse():
    x = leaf([1.0])
    y = x
    for _ in range(3000):
        y = y + 1e-3
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [1.0])


# ---- the graph is freed ---------------------------------------------------------------------
def test_graph_freed_after_backward():
    x = leaf([1.0, 2.0])
    y = (x * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="retain_graph"):
        y.backward()
    assert y.grad_fn.saved is None  # saved arrays are released


def test_freed_intermediate_raises():
    x = leaf([1.0, 2.0])
    h = x * x
    h.sum().backward()
    with pytest.raises(RuntimeError, match="retain_graph"):
        (h * 2.0).sum().backward()


def test_retain_graph_allows_second_backward():
    x = leaf([1.0, 2.0])
    y = (x * x).sum()
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_array_equal(x.grad.numpy(), [4.0, 8.0])


# ---- requires_grad and grad modes -------------------------------------------------------------
def test_requires_grad_propagation():
    a = leaf([1.0])
    b = gt.tensor([2.0], dtype=gt.float64)
    assert (a * b).requires_grad and (b * a).requires_grad and (a + 1).requires_grad
    assert not (b * b).requires_grad and (b * b).grad_fn is None
    assert (a * b).grad_fn is not None and not (a * b).is_leaf
    assert a.is_leaf and a.grad_fn is None
    assert not a.to(gt.int64).requires_grad  # integer results carry no gradient
    assert not (a > 0).requires_grad
    c = gt.zeros(2)
    assert not c.requires_grad
    c.requires_grad_()
    assert c.requires_grad
    c.requires_grad = False
    assert not c.requires_grad


def test_no_grad_context_manager():
    a = leaf([1.0])
    with gt.no_grad():
        assert not gt.is_grad_enabled()
        y = a * 2.0
        with gt.enable_grad():
            z = a * 2.0
    assert gt.is_grad_enabled()
    assert not y.requires_grad and y.grad_fn is None
    assert z.requires_grad


def test_no_grad_restored_after_exception():
    with pytest.raises(ZeroDivisionError):
        with gt.no_grad():
            1 / 0
    assert gt.is_grad_enabled()


def test_no_grad_decorators():
    a = leaf([1.0])

    @gt.no_grad()
    def called(x):
        return x * 2.0

    @gt.no_grad
    def bare(x):
        """docstring kept"""
        return x * 2.0

    assert not called(a).requires_grad
    assert not bare(a).requires_grad
    assert bare.__name__ == "bare" and bare.__doc__ == "docstring kept"
    assert gt.is_grad_enabled()
    assert (a * 2.0).requires_grad

    @gt.set_grad_enabled(False)
    def off(x):
        return x * 2.0

    assert not off(a).requires_grad
    with gt.set_grad_enabled(False):
        assert not (a * 1.0).requires_grad
    assert gt.is_grad_enabled()

    @gt.enable_grad()
    def on(x):
        return x * 2.0

    with gt.no_grad():
        assert on(a).requires_grad and not gt.is_grad_enabled()


def test_set_grad_enabled_as_a_call_and_reentrant_no_grad():
    try:
        gt.set_grad_enabled(False)  # like torch: takes effect at once
        assert not gt.is_grad_enabled()
    finally:
        gt.set_grad_enabled(True)
    assert gt.is_grad_enabled()
    ng = gt.no_grad()
    with ng:
        with ng:
            pass
        assert not gt.is_grad_enabled()
    assert gt.is_grad_enabled()


# ---- in-place updates -----------------------------------------------------------------------
def test_inplace_update_under_no_grad_keeps_the_array():
    w = gt.randn(4, 3, requires_grad=True)
    (w * w).sum().backward()
    before = w._data
    expected = w.numpy() - 0.1 * w.grad.numpy()
    with gt.no_grad():
        w -= 0.1 * w.grad
    assert w._data is before
    assert w.requires_grad and w.is_leaf
    np.testing.assert_allclose(w.numpy(), expected, rtol=1e-6)
    with gt.no_grad():
        w += 1.0
        w *= 2.0
        w /= 2.0
        w.add_(w.grad, alpha=-0.5)
    assert w._data is before and w.dtype == gt.float32


def test_inplace_on_leaf_requiring_grad_raises():
    w = gt.randn(3, requires_grad=True)
    for update in (lambda: w.__isub__(1.0), lambda: w.__iadd__(1.0), lambda: w.__imul__(2.0),
                   lambda: w.add_(1.0), lambda: w.zero_(), lambda: w.__setitem__(0, 1.0)):
        with pytest.raises(RuntimeError, match="no_grad"):
            update()


def test_inplace_on_non_leaf_is_recorded_in_place():
    x = leaf([1.0, 2.0])
    y = x * 2.0
    y_before = y
    y += 1.0  # recorded in place, as torch: the same tensor, with the addition as its grad_fn
    assert y is y_before and y.grad_fn.name == "Add"
    (y * y).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [2 * 3.0 * 2, 2 * 5.0 * 2])


# ---- detach, retain_grad ----------------------------------------------------------------------
def _shares(a, b):
    # on a GPU .numpy() copies to the host: compare the device addresses there
    return a.data_ptr() == b.data_ptr() if gt.cuda.is_available() else np.shares_memory(a.numpy(), b.numpy())


def test_detach_shares_memory_and_cuts_the_graph():
    x = leaf([1.0, 2.0])
    y = x * 2.0
    d = y.detach()
    assert not d.requires_grad and d.grad_fn is None and d.is_leaf
    assert _shares(d, y)
    (d * x).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 4.0])  # no path through d
    assert x.data.numpy() is not None and not x.data.requires_grad
    assert _shares(x.data, x)


def test_retain_grad():
    x = leaf([1.0, 2.0])
    h = x * 3.0
    h.retain_grad()
    other = x * 4.0
    (h * h + other).sum().backward()
    np.testing.assert_array_equal(h.grad.numpy(), [6.0, 12.0])
    with pytest.warns(UserWarning, match=r"retain_grad\(\) before backward"):   # torch warns too
        assert other.grad is None
    np.testing.assert_array_equal(x.grad.numpy(), [18.0 + 4.0, 36.0 + 4.0])


# ---- gradient ownership: a leaf's .grad is its own --------------------------------------------
def _assert_independent(*tensors):
    arrays = [t.grad.numpy() for t in tensors]
    for (i, a), (j, b) in itertools.combinations(enumerate(arrays), 2):
        assert not np.shares_memory(a, b), f"grads of leaves {i} and {j} share memory"
    for a in arrays:
        assert a.flags.writeable, "a .grad must be a writable array (zero_() and += work on it)"


def test_add_grads_do_not_alias():
    a, b = leaf([1.0, 2.0]), leaf([3.0, 4.0])
    g = gt.tensor([1.0, 1.0], dtype=gt.float64)
    y = a + b
    y.backward(g)
    _assert_independent(a, b)
    a.grad.zero_()
    np.testing.assert_array_equal(b.grad.numpy(), [1.0, 1.0])
    assert not np.shares_memory(b.grad.numpy(), g.numpy()) and not np.shares_memory(a.grad.numpy(), g.numpy())
    g.zero_()  # the caller's gradient is theirs
    np.testing.assert_array_equal(b.grad.numpy(), [1.0, 1.0])
    b.grad.zero_()
    np.testing.assert_array_equal(g.numpy(), [0.0, 0.0])


def test_backward_on_leaf_does_not_alias_user_grad():
    x = leaf([1.0, 2.0])
    g = np.array([5.0, 6.0])
    x.backward(g)
    g[:] = 0
    np.testing.assert_array_equal(x.grad.numpy(), [5.0, 6.0])


def test_broadcast_and_view_grads_are_writable_copies():
    a, b, c = leaf([1.0, 2.0]), leaf([[3.0, 4.0]]), leaf(1.5)
    y = (a + b).reshape(2) * 1.0 + c  # Sum/Expand backward hand out read-only broadcast views
    y.sum().backward()
    _assert_independent(a, b, c)
    for t in (a, b, c):
        t.grad.zero_()  # would raise on a read-only broadcast view


def test_parameter_grads_are_owned_without_extra_copies():
    """The usual parameter paths (x @ W, + bias, broadcasting) hand each leaf a fresh array."""
    x = gt.randn(4, 5, 3)
    w, b, s = gt.randn(3, 2, requires_grad=True), gt.randn(2, requires_grad=True), gt.randn(1, 5, 1, requires_grad=True)
    ((x @ w) + b + x.sum(-1, keepdims=True) * s).sum().backward()
    for t in (w, b, s):
        assert not B.is_view(t.grad._data) and t.grad.numpy().flags.writeable


def test_retained_grad_does_not_alias_leaf_grads():
    a, b = leaf([1.0, 2.0]), leaf([3.0, 4.0])
    y = a + b
    y.retain_grad()
    (y * 2.0).sum().backward()
    _assert_independent(a, b, y)
    y.grad.zero_()
    np.testing.assert_array_equal(a.grad.numpy(), [2.0, 2.0])
    np.testing.assert_array_equal(b.grad.numpy(), [2.0, 2.0])


def test_many_leaves_never_alias():
    """Leaves fed through every op that passes its gradient on unchanged (add, expand, reshape,
    permute, cat, indexing), several times each, then two more backward passes."""
    leaves = [leaf(randn(2, 3, seed=i)) for i in range(6)]
    a, b, c, d, e, f = leaves
    y = a + b
    z = (y + c.reshape(3, 2).T) + d[:, :1].expand(2, 3) + y
    w = gt.cat([z, e], axis=0).permute(1, 0) + f.sum(axis=0, keepdims=True).T
    out = w.sum() + (a + b).sum() + d.max()
    out.backward(retain_graph=True)
    _assert_independent(*leaves)
    snapshot = [t.grad.numpy().copy() for t in leaves]
    out.backward(retain_graph=True)
    for t, s in zip(leaves, snapshot):
        np.testing.assert_allclose(t.grad.numpy(), 2 * s)
    a.grad.zero_()
    for t, s in zip(leaves[1:], snapshot[1:]):
        np.testing.assert_allclose(t.grad.numpy(), 2 * s)


# ---- dtypes of gradients ----------------------------------------------------------------------
def test_float32_gradients_stay_float32():
    x = gt.randn(3, 4, requires_grad=True)
    w = gt.randn(4, 2, requires_grad=True)
    y = ((x @ w).maximum(gt.tensor(0.1)).max(axis=0) ** 2 + 2.0 ** x.sum()).sum()
    y.backward()
    assert x.grad.dtype == gt.float32 and w.grad.dtype == gt.float32
    z = gt.randn(3, requires_grad=True)
    (z * 2).backward(np.ones(3))  # a float64 upstream is cast to the tensor's dtype
    assert z.grad.dtype == gt.float32


def test_float64_inputs_mix_with_float32():
    a = gt.randn(3, requires_grad=True)
    b = gt.randn(3, dtype=gt.float64, requires_grad=True)
    (a * b).sum().backward()
    assert a.grad.dtype == gt.float32 and b.grad.dtype == gt.float64


# ---- print_tape, seeds, dtypes, printing ------------------------------------------------------
def test_print_tape_shows_recorded_ops():
    x = gt.randn(2, 3, requires_grad=True)
    # replicated, so that on a mesh no redistribution is recorded in between
    y = (x @ gt.randn(3, 4).replicate()).relu().sum()
    buf = io.StringIO()
    n = gt.debug.print_tape(y, file=buf)
    text = buf.getvalue()
    assert n == 3
    for name in ("Matmul", "Relu", "Sum", "(2, 3)"):
        assert name in text
    buf = io.StringIO()
    assert gt.debug.print_tape(file=buf) >= 3
    y.backward()
    buf = io.StringIO()
    assert gt.debug.print_tape(file=buf) == 0  # backward frees the tape


def test_print_tape_to_stdout(capsys):
    x = gt.randn(2, requires_grad=True)
    gt.debug.print_tape(x.exp() * 2.0)
    out = capsys.readouterr().out
    assert "Exp" in out and "Mul" in out


def test_manual_seed_reproducible():
    gt.manual_seed(123)
    a, b = gt.randn(3, 4), gt.rand(5)
    gt.manual_seed(123)
    c, d = gt.randn(3, 4), gt.rand(5)
    np.testing.assert_array_equal(a.numpy(), c.numpy())
    np.testing.assert_array_equal(b.numpy(), d.numpy())
    assert not np.array_equal(gt.randn(3, 4).numpy(), a.numpy())
    assert np.all((b.numpy() >= 0) & (b.numpy() < 1))


def test_dtypes():
    assert gt.randn(2).dtype == gt.float32
    assert gt.rand(2).dtype == gt.float32
    assert gt.zeros(2).dtype == gt.float32 and gt.ones(2, 2).dtype == gt.float32
    assert gt.tensor([1.0, 2.0]).dtype == gt.float32
    assert gt.tensor([1, 2]).dtype == gt.int64
    assert gt.tensor([True, False]).dtype == gt.bool
    assert gt.tensor([1, 2], dtype=gt.float64).dtype == gt.float64
    assert gt.randn(2, dtype=gt.float64).dtype == gt.float64
    assert gt.zeros(2, dtype=gt.int64).dtype == gt.int64
    assert gt.tensor([1.5], dtype="float64").dtype == gt.float64
    assert gt.float64 == "float64" and gt.float32 == np.float32 and gt.int64 == np.dtype("int64")
    assert repr(gt.float32) == "gt.float32"
    assert (gt.randn(2) * 2.0).dtype == gt.float32  # Python scalars never widen
    assert (gt.randn(2) * np.float64(2.0)).dtype == gt.float32  # nor do numpy scalars
    assert (gt.arange(3) * 2).dtype == gt.int64 and (gt.arange(3) + gt.arange(3)).dtype == gt.int64
    # integers meeting floats compute in float32 (torch's rule), never silently in float64
    assert (gt.arange(3) * 0.5).dtype == gt.float32 and (0.5 * gt.arange(3)).dtype == gt.float32
    assert (gt.arange(3) / 2).dtype == gt.float32 and (gt.arange(3) / gt.arange(1, 4)).dtype == gt.float32
    assert (gt.arange(3) + gt.randn(3)).dtype == gt.float32
    assert (gt.arange(3) + gt.randn(3, dtype=gt.float64)).dtype == gt.float64
    assert (gt.tensor([True, False]) * 1.5).dtype == gt.float32
    with pytest.raises(RuntimeError, match="expected m1 and m2 to have the same dtype"):
        gt.arange(6).reshape(2, 3) @ gt.randn(3, 2)     # but products keep one dtype, as torch's
    np.testing.assert_allclose((gt.arange(3) / 2).numpy(), [0.0, 0.5, 1.0])


def test_print_is_readable():
    with use_mesh(1):      # sharded over the mesh, a tensor also prints gt's placement= label
        text = str(gt.tensor([[1.0, 2.0], [3.0, 4.5]]))
    assert text == "tensor([[1.0000, 2.0000],\n        [3.0000, 4.5000]])"   # torch's layout
    assert "requires_grad=True" in repr(gt.zeros(2, requires_grad=True))
    assert "grad_fn" in repr(gt.zeros(2, requires_grad=True) * 2.0)
    assert "int32" in repr(gt.arange(3, dtype=gt.int32))
    big = repr(gt.zeros(1000, 1000))
    assert len(big) < 2000 and "..." in big  # summarised, never a million numbers
