"""torch's way of extending autograd (``class F(gt.autograd.Function)`` with static ``forward(ctx,
...)``/``backward(ctx, ...)``, ``F.apply``), run beside the same class written for torch: values,
gradients, what backward receives, double backward, the ctx API and torch's errors."""

import numpy as np
import pytest

import gt
from gt.sharding.mesh import use_mesh
from helpers import check_grad, randn

torch = pytest.importorskip("torch")


def _exp(m):
    class Exp(m.autograd.Function):
        @staticmethod
        def forward(ctx, x, scale=2.0):
            y = x.exp() * scale
            ctx.save_for_backward(y)
            return y

        @staticmethod
        def backward(ctx, g):
            y, = ctx.saved_tensors
            return g * y, None
    return Exp


def _split(m, materialize=True, seen=None):
    """Two float outputs and an integer one; the backward records what it was given."""
    class Split(m.autograd.Function):
        @staticmethod
        def forward(ctx, x, w):
            ctx.set_materialize_grads(materialize)
            ctx.save_for_backward(x, w)
            ctx.needs = ctx.needs_input_grad
            flags = (x > 0).long()
            ctx.mark_non_differentiable(flags)
            return x * w, x.sin(), flags

        @staticmethod
        def backward(ctx, ga, gb, gflags):
            seen.append(tuple(None if g is None else g.detach().numpy().copy() for g in (ga, gb, gflags)))
            x, w = ctx.saved_tensors
            gx = ga * w if ga is not None else None
            if gb is not None:
                gx = gb * x.cos() if gx is None else gx + gb * x.cos()
            gw = (ga * x).sum(0) if ga is not None and ctx.needs_input_grad[1] else None
            return gx, gw
    return Split


def _pair(m, dtype):
    kind = getattr(m, dtype)
    return (m.tensor(randn(4, 3), dtype=kind, requires_grad=True),
            m.tensor(randn(3, seed=1), dtype=kind, requires_grad=True))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_values_and_gradients_are_torchs(dtype):
    got = []
    for m in (gt, torch):
        x, _ = _pair(m, dtype)
        y = _exp(m).apply(x, 3.0)
        (y * y.detach().cos()).sum().backward()
        got.append((y.detach().numpy(), x.grad.numpy(), str(y.dtype).split(".")[-1], y.requires_grad))
    tol = 1e-5 if dtype == "float32" else 1e-13
    np.testing.assert_allclose(got[0][0], got[1][0], rtol=tol)
    np.testing.assert_allclose(got[0][1], got[1][1], rtol=tol)
    assert got[0][2:] == got[1][2:]


def test_the_gradient_equals_finite_differences():
    check_grad(lambda x: _exp(gt).apply(x, 0.5).sum(), randn(3, 2))


@pytest.mark.parametrize("materialize", [True, False])
@pytest.mark.parametrize("use", ["both", "first", "second"])
def test_several_outputs_give_backward_what_torch_gives(use, materialize):
    results = []
    for m in (gt, torch):
        seen = []
        x, w = _pair(m, "float64")
        a, b, flags = _split(m, materialize, seen).apply(x, w)
        loss = {"both": (a * 2).sum() + (b ** 2).sum(), "first": (a * 2).sum(), "second": (b ** 2).sum()}[use]
        loss.backward()
        results.append((seen, x.grad.numpy(), None if w.grad is None else w.grad.numpy(), flags.requires_grad,
                        flags.numpy(), a.requires_grad, b.requires_grad))
    (seen_gt, *rest_gt), (seen_t, *rest_t) = results
    assert len(seen_gt) == len(seen_t) == 1
    for g, t in zip(seen_gt[0], seen_t[0]):
        assert (g is None) == (t is None)
        if g is not None:
            np.testing.assert_allclose(g, t, rtol=1e-13)
    for g, t in zip(rest_gt, rest_t):
        if isinstance(g, np.ndarray):
            np.testing.assert_allclose(g, t, rtol=1e-13)
        else:
            assert g == t


def test_needs_input_grad_and_non_tensor_arguments_are_torchs():
    needs = {}
    for m in (gt, torch):
        class Scale(m.autograd.Function):
            @staticmethod
            def forward(ctx, x, y, factor, label=None):
                needs[m] = (ctx.needs_input_grad, label)
                return x * y * factor

            @staticmethod
            def backward(ctx, g):
                return g, g, None, None
        x = m.tensor([1.0, 2.0], requires_grad=True)
        Scale.apply(x, m.tensor([3.0, 4.0]), 2, label="k").sum().backward()   # 4 inputs: 4 gradients
    assert needs[gt] == needs[torch] == ((True, False, False, False), "k")


def test_setup_context_style_is_torchs():
    got = []
    for m in (gt, torch):
        class Cube(m.autograd.Function):
            @staticmethod
            def forward(x, scale=2.0):
                return x ** 3 * scale

            @staticmethod
            def setup_context(ctx, inputs, output):
                ctx.save_for_backward(inputs[0])
                ctx.scale = inputs[1]          # the default, bound as torch binds it

            @staticmethod
            def backward(ctx, g):
                x, = ctx.saved_tensors
                return 3 * x * x * g * ctx.scale, None
        x, _ = _pair(m, "float64")
        Cube.apply(x).sum().backward()
        Cube.apply(x, scale=0.5).sum().backward()
        got.append(x.grad.numpy())
    np.testing.assert_allclose(*got, rtol=1e-13)


def _cube(m, once):
    class Cube(m.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x ** 3

        @staticmethod
        def backward(ctx, g):
            x, = ctx.saved_tensors
            return 3 * x * x * g
    if once:
        Cube.backward = staticmethod(m.autograd.function.once_differentiable(Cube.backward))
    return Cube


@pytest.mark.parametrize("once", [False, True])
def test_double_backward_through_a_custom_function_is_torchs(once):
    got = []
    for m in (gt, torch):
        x, _ = _pair(m, "float64")
        y = _cube(m, once).apply(x * 1.0)
        gx, = m.autograd.grad((y * y.detach()).sum(), x, create_graph=True)
        got.append((gx.detach().numpy(), gx.requires_grad))
        if not once:
            gx.pow(2).sum().backward()
            got.append(x.grad.numpy())
    np.testing.assert_allclose(got[0][0], got[-1 if once else 2][0], rtol=1e-13)
    assert got[0][1] == got[-1 if once else 2][1] == (not once)
    if not once:
        np.testing.assert_allclose(got[1], got[3], rtol=1e-13)


def test_saved_tensors_are_freed_by_the_backward_unless_retained():
    for m in (gt, torch):
        x, _ = _pair(m, "float64")
        y = _exp(m).apply(x)
        y.sum().backward(retain_graph=True)
        y.sum().backward()
        np.testing.assert_allclose(x.grad.numpy(), 2 * y.detach().numpy())
        with pytest.raises(RuntimeError, match="(?i)trying to backward through (a|the) graph a second time"):
            y.sum().backward()
    ctx = _exp(gt).apply(_pair(gt, "float64")[0]).grad_fn      # the call's node, its ctx, as torch's
    assert ctx.saved_tensors[0].shape == (4, 3)


def test_a_saved_tensor_changed_in_place_raises_as_torch():
    for m in (gt, torch):
        x, _ = _pair(m, "float64")
        y = _cube(m, False).apply(x * 1.0)
        h = x * 1.0
        y2 = _cube(m, False).apply(h)
        with m.no_grad():
            h.add_(1.0)
        y.sum().backward()          # untouched: fine
        with pytest.raises(RuntimeError, match="modified by an inplace operation"):
            y2.sum().backward()


def test_no_grad_and_inputs_without_grad_record_nothing():
    x = gt.tensor([1.0, 2.0], requires_grad=True)
    with gt.no_grad():
        y = _exp(gt).apply(x)
    assert not y.requires_grad and y.grad_fn is None
    z = _exp(gt).apply(gt.tensor([1.0]))
    assert not z.requires_grad and z.grad_fn is None


def test_an_input_returned_as_it_is_is_an_alias_with_the_functions_gradient():
    for m in (gt, torch):
        class Twice(m.autograd.Function):
            @staticmethod
            def forward(ctx, x):
                return x

            @staticmethod
            def backward(ctx, g):
                return 2 * g
        x = m.tensor([1.0, 2.0], requires_grad=True)
        y = Twice.apply(x)
        assert y is not x and x.grad_fn is None and y.grad_fn is not None
        y.sum().backward()
        np.testing.assert_array_equal(x.grad.numpy(), [2.0, 2.0])


def test_gradient_summed_back_and_cast_to_the_inputs_shape_and_dtype():
    got = []
    for m in (gt, torch):
        class Wide(m.autograd.Function):
            @staticmethod
            def forward(ctx, b):
                return b * 1.0

            @staticmethod
            def backward(ctx, g):
                return m.ones((5, 2, 3), dtype=m.float64) * 2    # broadcast of b's (2, 1)... (1, 3)
        b = m.tensor(np.ones((1, 3), np.float32), requires_grad=True)
        Wide.apply(b).sum().backward()
        got.append((b.grad.numpy(), str(b.grad.dtype).split(".")[-1]))
    np.testing.assert_array_equal(got[0][0], got[1][0])
    assert got[0][1] == got[1][1] == "float32"


def _bad(m, returned):
    class Bad(m.autograd.Function):
        @staticmethod
        def forward(ctx, x, k):
            return x * k

        @staticmethod
        def backward(ctx, g):
            return returned(g)
    return Bad


@pytest.mark.parametrize("returned, message", [
    (lambda g: g, r"function BadBackward returned an incorrect number of gradients \(expected 2, got 1\)"),
    (lambda g: (g, None, g), r"returned an incorrect number of gradients \(expected 2, got 3\)"),
    (lambda g: (g[:1], None), r"returned an invalid gradient at index 0 - got \[1, 3\] but expected shape compatible "
                              r"with \[2, 3\]"),
    (lambda g: (3, None), r"(expected Variable or None|expected a tensor or None as gradient 0, got int)"),
])
def test_wrong_gradients_are_refused_as_torch(returned, message):
    for m in (gt, torch):
        x = m.tensor(np.ones((2, 3)), requires_grad=True)
        y = _bad(m, returned).apply(x, 2.0)
        with pytest.raises(RuntimeError, match=message):
            y.sum().backward()


def test_extra_none_gradients_are_accepted_as_torch():
    for m in (gt, torch):
        x = m.tensor(np.ones(2), requires_grad=True)
        _bad(m, lambda g: (g, None, None)).apply(x, 2.0).sum().backward()
        np.testing.assert_array_equal(x.grad.numpy(), [1.0, 1.0])


def _scale_in_place(m, returns=True):
    """x *= w in place, marked dirty (torch's documented use of mark_dirty)."""
    class ScaleInPlace(m.autograd.Function):
        @staticmethod
        def forward(ctx, x, w):
            x.mul_(w)
            ctx.mark_dirty(x)
            ctx.save_for_backward(w)
            return x if returns else x * 1

        @staticmethod
        def backward(ctx, g):
            (w,) = ctx.saved_tensors
            return g * w, None
    return ScaleInPlace


@pytest.mark.parametrize("twice", [False, True])
def test_mark_dirty_rebases_the_input_as_torch(twice):
    """The output is the input itself; an op recorded before the change reads the old values, ops
    after read the new ones, and every gradient is torch's."""
    got = []
    for m in (gt, torch):
        a = m.tensor([1.0, 2.0, 3.0], dtype=m.float64, requires_grad=True)
        w = m.tensor([2.0, -3.0, 0.5], dtype=m.float64)
        x = a * 1.5
        before = x.exp()                        # reads x's values of before the change
        out = _scale_in_place(m).apply(x, w)
        if twice:
            out = _scale_in_place(m).apply(out, w)
        assert out is x and x.grad_fn is not None
        ((out * out).sum() + before.sum()).backward()
        got.append((a.grad.numpy().copy(), x.detach().numpy().copy(), before.detach().numpy().copy()))
    for g, t in zip(*got):
        np.testing.assert_allclose(g, t, rtol=1e-12)


def test_mark_dirty_errors_are_torch_s():
    for m in (gt, torch):
        leaf = m.tensor([1.0, 2.0], requires_grad=True)
        with pytest.raises(RuntimeError, match="a leaf Variable that requires grad has been used in an in-place"):
            _scale_in_place(m).apply(leaf, m.tensor([2.0, 2.0]))
        x = m.tensor([1.0, 2.0], requires_grad=True) * 1
        with pytest.raises(RuntimeError, match="marked as dirty during the forward method were not returned"):
            _scale_in_place(m, returns=False).apply(x, m.tensor([2.0, 2.0]))
        # an op that saved x's values before the change can no longer run its backward
        x = m.tensor([1.0, 2.0], requires_grad=True) * 1
        y = x * x
        _scale_in_place(m).apply(x, m.tensor([2.0, 2.0]))
        with pytest.raises(RuntimeError, match="modified by an inplace operation"):
            y.sum().backward()


def test_mark_dirty_on_a_tensor_outside_the_graph_as_torch():
    """A tensor that did not require grad, changed with a weight that does: it joins the graph."""
    got = []
    for m in (gt, torch):
        w = m.tensor([2.0, 3.0], requires_grad=True)
        x = m.tensor([1.0, -1.0])

        class MulBy(m.autograd.Function):
            @staticmethod
            def forward(ctx, x, w):
                ctx.save_for_backward(x.clone(), w)
                x.mul_(w)
                ctx.mark_dirty(x)
                return x

            @staticmethod
            def backward(ctx, g):
                x0, w = ctx.saved_tensors
                return g * w, g * x0
        out = MulBy.apply(x, w)
        assert out is x and x.requires_grad
        (out * out).sum().backward()
        got.append((w.grad.numpy().copy(), x.detach().numpy().copy()))
    for g, t in zip(*got):
        np.testing.assert_allclose(g, t, rtol=1e-6)


def test_what_gt_does_not_support_is_refused_by_name():
    class NoBackward(gt.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2
    with pytest.raises(NotImplementedError, match="NoBackward: you must implement either the backward or vjp"):
        NoBackward.apply(gt.tensor([1.0], requires_grad=True)).sum().backward()
    with pytest.raises(TypeError, match="save_for_backward can only save tensors, but argument 0 is of type int"):
        _ctx_saving(3).apply(gt.tensor([1.0], requires_grad=True))


def _ctx_saving(value):
    class Saving(gt.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(value)
            return x * 1.0

        @staticmethod
        def backward(ctx, g):
            return g
    return Saving


def test_grad_fn_names_the_function_and_autograd_grad_reaches_through_it():
    x, w = _pair(gt, "float64")
    y = _exp(gt).apply(x * w)
    assert repr(y.grad_fn) == "<ExpBackward>"
    gx, gw, unused = gt.autograd.grad(y.sum(), (x, w, gt.tensor([1.0], requires_grad=True)), allow_unused=True)
    np.testing.assert_allclose(gx.numpy(), (y.detach() * w.detach()).numpy() * np.ones((4, 1)), rtol=1e-13)
    assert unused is None and x.grad is None


@pytest.mark.parametrize("devices", [2, 4])
def test_a_batch_sharded_input_gives_the_unsharded_values_and_gradients(devices):
    class Scaled(gt.autograd.Function):
        @staticmethod
        def forward(ctx, x, w):
            ctx.save_for_backward(x, w)
            return (x * w) ** 2

        @staticmethod
        def backward(ctx, g):
            x, w = ctx.saved_tensors
            return g * 2 * x * w * w, (g * 2 * x * x * w).sum(0)
    got = []
    for shard in (False, True):
        with use_mesh(devices):
            x, w = (gt.tensor(a, requires_grad=True) for a in (randn(8, 3), randn(3, seed=1)))
            y = Scaled.apply(x.shard(0) if shard else x, w)
            (y * 1.5).sum().backward()
            got.append((y.detach().numpy(), x.grad.numpy(), w.grad.numpy(), str(y.placement)))
    for a, b in zip(got[0][:3], got[1][:3]):
        np.testing.assert_allclose(a, b, rtol=1e-12)
    assert got[1][3] == "Shard(0)"


@pytest.mark.own_mesh
def test_mark_dirty_on_a_sharded_input_gives_the_unsharded_gradients():
    got = []
    for n in (1, 2):
        with use_mesh(n):
            a = gt.tensor(np.arange(8.0).reshape(4, 2) + 1, requires_grad=True)
            x = (a.shard(0) if n > 1 else a) * 1.5
            before = x.exp()
            out = _scale_in_place(gt).apply(x, gt.tensor(np.array([[2.0, -1.0]])))
            assert out is x
            ((out * out).sum() + before.sum()).backward()
            got.append(a.grad.numpy())
    np.testing.assert_allclose(got[1], got[0], rtol=1e-12)


def test_mark_dirty_of_a_view_in_the_graph_is_refused_by_name():
    a = gt.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True) * 1
    with pytest.raises(NotImplementedError, match="ScaleInPlace: ctx.mark_dirty of a view of another tensor"):
        _scale_in_place(gt).apply(a[0], gt.tensor([2.0, 2.0]))
