"""Custom autograd Functions and gradient hooks beside torch: what ``grad_fn`` of a custom call
exposes, its node hooks, saved-tensor hooks left out of unrecorded ops, ``retain_grad`` with
``backward(inputs=)`` and ``autograd.grad``, and torch's errors for misused ``save_for_backward`` and
gradients of non-tensor inputs."""

import warnings

import numpy as np
import pytest

import gt

torch = pytest.importorskip("torch")

X = np.random.RandomState(0).randn(3, 4).round(3)


def _leaf(m):
    return m.tensor(X.tolist(), dtype=m.float64, requires_grad=True)


def _np(t):
    return None if t is None else t.detach().numpy().copy()


def _both(program):
    """``program(m, log)`` run on torch and on gt: the two results and logs."""
    got = []
    for m in (torch, gt):
        log = []
        got.append((program(m, log), log))
    return got


def _assert_same(a, b):
    if isinstance(a, (list, tuple)):
        assert isinstance(b, (list, tuple)) and len(a) == len(b), (a, b)
        for x, y in zip(a, b):
            _assert_same(x, y)
    elif isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        assert a is not None and b is not None, (a, b)
        np.testing.assert_allclose(b, a, rtol=1e-6, atol=1e-9)
    else:
        assert a == b


def _scaled(m):
    class Scaled(m.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            ctx.k = 3.0
            return x * ctx.k

        @staticmethod
        def backward(ctx, g):
            return g * ctx.k
    return Scaled


def test_save_for_backward_of_a_non_tensor_is_a_type_error():
    for m in (torch, gt):
        class Bad(m.autograd.Function):
            @staticmethod
            def forward(ctx, x):
                ctx.save_for_backward(x, 3)
                return x * 2

            @staticmethod
            def backward(ctx, g):
                return g
        with pytest.raises(TypeError, match="argument 1 is of type int"):
            Bad.apply(_leaf(m))


def test_grad_fn_of_a_custom_call_is_its_ctx():
    def program(m, log):
        x = _leaf(m)
        y = _scaled(m).apply(x)
        log.append((y.grad_fn.k, y.grad_fn.needs_input_grad, _np(y.grad_fn.saved_tensors[0])))
        y.sum().backward()
        with pytest.raises(RuntimeError, match="backward through the graph a second time"):
            y.grad_fn.saved_tensors
        return _np(x.grad)
    (tg, tlog), (gg, glog) = _both(program)
    _assert_same(tg, gg)
    _assert_same(tlog, glog)


def test_saved_tensors_hooks_pack_only_what_is_recorded():
    def program(m, log):
        x = _leaf(m)

        def pack(t):
            log.append(tuple(t.shape))
            return t

        class Twice(m.autograd.Function):
            @staticmethod
            def forward(ctx, x):
                ctx.save_for_backward(x)
                return x ** 2

            @staticmethod
            def backward(ctx, g):
                x, = ctx.saved_tensors
                return 2 * x * g
        with m.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            with m.no_grad():
                x.exp()
                Twice.apply(x)
            x.detach().exp()
            Twice.apply(x.detach())
            log.append("recorded")
            y = Twice.apply(x)
        y.sum().backward()
        return _np(x.grad)
    (tg, tlog), (gg, glog) = _both(program)
    _assert_same(tg, gg)
    assert glog == tlog == ["recorded", (3, 4)]


def _two_outputs(m, log):
    class Two(m.autograd.Function):
        @staticmethod
        def forward(ctx, x, k, w):
            return x * 2, x * 3

        @staticmethod
        def backward(ctx, a, b):
            log.append(("backward", _np(a), _np(b)))
            return a * 2 + b * 3, None, None
    return Two


def test_node_hooks_of_a_custom_call_see_all_its_outputs():
    def program(m, log):
        x, w = _leaf(m), m.ones(4, dtype=m.float64)
        a, b = _two_outputs(m, log).apply(x, 3, w)
        a.grad_fn.register_prehook(lambda go: log.append(("pre", [_np(g) for g in go])))
        a.grad_fn.register_prehook(lambda go: (None if go[0] is None else go[0] * 10, go[1]))
        b.grad_fn.register_hook(lambda gi, go: log.append(("post", [_np(g) for g in gi], [_np(g) for g in go])))
        handle = a.grad_fn.register_hook(lambda gi, go: (gi[0] + 1, None))
        (a * a).sum().backward(retain_graph=True)
        first = _np(x.grad)
        handle.remove()
        x.grad = None
        b.sum().backward()
        return first, _np(x.grad)
    (tg, tlog), (gg, glog) = _both(program)
    _assert_same(tg, gg)
    _assert_same(tlog, glog)


def test_custom_node_hook_returning_a_wrong_count_raises():
    x = _leaf(gt)
    a, _ = _two_outputs(gt, []).apply(x, 3, gt.ones(4, dtype=gt.float64))
    a.grad_fn.register_prehook(lambda go: (go[0],))
    with pytest.raises(RuntimeError, match="returned 1 gradients where the node has 2"):
        a.sum().backward()


@pytest.mark.parametrize("hook", [False, True])
def test_retain_grad_with_backward_inputs_counts_once(hook):
    def program(m, log):
        out = []
        for retain, inputs in ((True, "xy"), (False, "xy"), (True, "y"), (False, "y")):
            x = _leaf(m)
            y = x * 2
            if hook:
                y.register_hook(lambda g: g * 100)
            if retain:
                y.retain_grad()
            (y * y).sum().backward(inputs=[x, y] if inputs == "xy" else [y])
            out.append((_np(x.grad), _np(y.grad), y.retains_grad))
        return out
    (tg, _), (gg, _) = _both(program)
    _assert_same(tg, gg)


def test_retain_grad_is_filled_by_autograd_grad_of_that_tensor():
    def program(m, log):
        x = _leaf(m)
        y = x * 2
        y.retain_grad()
        z = (y * y).sum()
        out = []
        for inputs in (x, [x, y], y):
            got = m.autograd.grad(z, inputs, retain_graph=True)
            out.append(([_np(g) for g in got], _np(y.grad)))
        w = m.ones(3, 4, dtype=m.float64, requires_grad=True)
        u = _leaf(m) * 2            # reached by the walk, but neither an input nor on a path to one
        u.retain_grad()
        got = m.autograd.grad((u * w).sum(), w)
        out.append(([_np(g) for g in got], _np(u.grad)))
        return out
    (tg, _), (gg, _) = _both(program)
    _assert_same(tg, gg)


def test_gradient_for_a_non_tensor_input_raises():
    for m in (torch, gt):
        class Bad(m.autograd.Function):
            @staticmethod
            def forward(ctx, x, n):
                return x * n

            @staticmethod
            def backward(ctx, g):
                return g * 2, g
        with pytest.raises(RuntimeError, match="position 2, but the corresponding forward input was not a Variable"):
            Bad.apply(_leaf(m), 3).sum().backward()


def test_autograd_backward_ignores_extra_grad_tensors():
    def program(m, log):
        x = _leaf(m)
        m.autograd.backward([(x * 2).sum()], [None, None])
        m.autograd.backward(x * 3, [m.ones(3, 4, dtype=m.float64), None])
        return _np(x.grad)
    (tg, _), (gg, _) = _both(program)
    _assert_same(tg, gg)


def _drifting(m, step):
    """A backward that adds ``step`` times its call count: not reentrant, not multiplied by its
    output gradient."""
    class Drift(m.autograd.Function):
        calls = [0]

        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, g):
            Drift.calls[0] += 1
            return g * 2 + Drift.calls[0] * step
    return Drift


@pytest.mark.parametrize("step, nondet_tol, message", [
    (1e-3, 0.0, "Backward is not reentrant"),
    (1e-9, 1e-6, "backward not multiplied by grad_output"),
])
def test_gradcheck_runs_torchs_reentrancy_and_zero_gradient_checks(step, nondet_tol, message):
    verdicts = []
    for m in (torch, gt):
        fn = _drifting(m, step).apply
        verdicts.append(m.autograd.gradcheck(fn, (_leaf(m),), nondet_tol=nondet_tol, raise_exception=False))
        with pytest.raises(gt.autograd.GradcheckError if m is gt else RuntimeError, match=message):
            m.autograd.gradcheck(fn, (_leaf(m),), nondet_tol=nondet_tol)
        assert m.autograd.gradcheck(_drifting(m, 0.0).apply, (_leaf(m),))
    assert verdicts == [False, False]


def test_mark_dirty_under_no_grad_returns_an_alias_without_grad():
    def program(m, log):
        class Double(m.autograd.Function):
            @staticmethod
            def forward(ctx, x):
                x.mul_(2)
                ctx.mark_dirty(x)
                return x

            @staticmethod
            def backward(ctx, g):
                return g * 2
        out = []
        for x in (_leaf(m), _leaf(m) * 1, m.tensor(X.tolist(), dtype=m.float64)):
            with m.no_grad():
                y = Double.apply(x)
            out.append((y is x, y.requires_grad, _np(y), _np(x)))
        return out
    (tg, _), (gg, _) = _both(program)
    _assert_same(tg, gg)


@pytest.mark.parametrize("create_graph", [False, True])
def test_autograd_grad_of_a_hooked_tensor_whose_op_runs_on(create_graph):
    """torch captures a computed input before its tensor hooks when the walk goes on through its op
    (another input lies below it), and after them when it stops there."""
    def program(m, log):
        out = []
        for inputs in ("y", "x", "yx", "xy"):
            x = _leaf(m)
            y = x * 2
            y.register_hook(lambda g: g * 100)
            z = (y * y).sum()
            got = m.autograd.grad(z, [{"x": x, "y": y}[k] for k in inputs], create_graph=create_graph)
            out.append([_np(g) for g in got])
        return out
    (tg, _), (gg, _) = _both(program)
    _assert_same(tg, gg)


def test_calling_an_instance_of_a_function_raises_torchs_error():
    for m in (torch, gt):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)   # torch's for the instance itself
            fn = _scaled(m)()
        with pytest.raises(RuntimeError, match="Legacy autograd function with non-static forward method"):
            fn(_leaf(m))


def test_the_outputs_of_a_call_share_its_one_node():
    """torch's grad_fn of every output of a custom call is the call's node (found by the fuzzer:
    gt's outputs each had a node of their own that stood for it)."""
    def program(m, log):
        class Split(m.autograd.Function):
            @staticmethod
            def forward(ctx, x):
                ctx.mark_non_differentiable()
                return x * 2, x * 3, x.sum()

            @staticmethod
            def backward(ctx, ga, gb, gs):
                log.append("backward")
                return ga * 2 + gb * 3 + gs

        x = _leaf(m)
        a, b, s = Split.apply(x)
        after = (a * b).exp()
        shared = [a.grad_fn is b.grad_fn, b.grad_fn is s.grad_fn, after.grad_fn.next_functions[0][0] is a.grad_fn]
        a.grad_fn.register_prehook(lambda g: log.append(("prehook", len(g))))
        (after.sum() + s).backward()
        return shared + [_np(x.grad)]
    (tg, tlog), (gg, glog) = _both(program)
    _assert_same(tg, gg)
    assert tlog == glog
