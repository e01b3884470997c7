"""Autograd semantics, optimizers and gradient utilities beside torch (found by differential
fuzzing): saved-value checks that follow what each backward reads, ``.data``, views of the same
shape, grad mode per thread and around generators, half-precision norms, tensor learning rates,
the optimizer's state and step hooks. Each program runs in gt and in torch: both raise, or both
give the same values."""

import threading

import numpy as np
import pytest

import gt
from helpers import torch_or_skip

MODIFIED = "modified by an inplace operation"


def _outcome(program, lib):
    """``program(lib)`` as a list of floats, or "raise" where it raises torch's in-place error."""
    try:
        return [float(v) for v in np.ravel(np.asarray(program(lib).tolist()))]
    except RuntimeError as exc:
        assert MODIFIED in str(exc)
        return "raise"


def _same(program, rtol=1e-5):
    torch = torch_or_skip()
    ours, theirs = _outcome(program, gt), _outcome(program, torch)
    if theirs == "raise" or ours == "raise":
        assert ours == theirs
    else:
        np.testing.assert_allclose(ours, theirs, rtol=rtol, atol=1e-6)


# ---- saved values changed in place ------------------------------------------------------------
@pytest.mark.parametrize("x_shape,w_shape", [((1, 2, 3, 3), (1, 2, 3, 3)), ((1, 2, 4, 4), (1, 2, 1, 1))])
def test_conv_input_changed_after_the_forward_raises(x_shape, w_shape):
    # a kernel as large as the input, or 1x1: the saved columns are a strided view of the input
    def program(lib):
        x, w = lib.ones(*x_shape, requires_grad=True), lib.ones(*w_shape, requires_grad=True)
        h = x * 1.0
        y = lib.nn.functional.conv2d(h, w)
        h.mul_(5.0)
        y.sum().backward()
        return w.grad
    _same(program)


def test_layer_norm_input_changed_after_the_forward_never_gives_a_wrong_gradient():
    torch = torch_or_skip()
    X = np.array([[0.5, 1.2, 2.0], [1.5, 0.7, 0.9]], dtype=np.float32)

    def program(lib, change):
        ln = lib.nn.LayerNorm(3)
        x = lib.tensor(X, requires_grad=True)
        h = x * 2.0
        y = ln(h)
        if change:
            h.add_(1.0)
        (y * lib.tensor([1.0, 2.0, 3.0])).sum().backward()
        return lib.cat([x.grad.flatten(), ln.weight.grad])
    assert _outcome(lambda lib: program(lib, True), torch) == "raise"
    ours = _outcome(lambda lib: program(lib, True), gt)
    if ours != "raise":       # the numpy engine saves its own normalised copy: the values of the forward
        np.testing.assert_allclose(ours, program(torch, False).tolist(), rtol=1e-5, atol=1e-6)


UNARY = ["sin", "cos", "tan", "asin", "acos", "atan", "sinh", "cosh", "asinh", "acosh", "atanh", "log1p",
         "expm1", "exp2", "erf", "erfc", "erfinv", "lgamma", "digamma", "sinc", "exp", "sqrt", "rsqrt",
         "reciprocal", "log", "sigmoid", "tanh"]
SPECIAL = ["i0", "i0e", "i1", "i1e", "erfcx", "ndtri", "log_ndtr", "entr"]
OTHERS = {"pow2": lambda lib, x: x ** 2, "pow_half": lambda lib, x: x ** 0.5, "two_over": lambda lib, x: 2 / x,
          "pow_tensor": lambda lib, x: x ** lib.tensor([2.0, 3.0]), "two_pow": lambda lib, x: 2 ** x,
          "linear_frozen_weight": lambda lib, x: lib.nn.functional.linear(x, lib.tensor([[1.0, 2.0], [3.0, 4.0]]))}


def _function(name):
    if name in OTHERS:
        return OTHERS[name]
    if name in SPECIAL:
        return lambda lib, x: getattr(lib.special, name)(x)
    return lambda lib, x: getattr(x, name)()


@pytest.mark.parametrize("changed", ["output", "input"])
@pytest.mark.parametrize("name", UNARY + SPECIAL + list(OTHERS))
def test_in_place_change_raises_only_where_the_backward_reads_it(name, changed):
    # torch saves what each derivative reads (sin: x, tan: its result, x ** 2: x): changing the
    # other in place is no error there, and the gradient is the forward's
    f = _function(name)
    base = {"asin": [0.3, 0.6], "acos": [0.3, 0.6], "atanh": [0.3, 0.6], "erfinv": [0.3, 0.6],
            "ndtri": [0.3, 0.6], "acosh": [1.5, 2.0]}.get(name, [0.5, 2.0])

    def program(lib):
        x = lib.tensor(base, requires_grad=True)
        h = x * 1.0
        y = f(lib, h)
        (y if changed == "output" else h).add_(1.0)
        y.sum().backward()
        return x.grad
    _same(program)


@pytest.mark.parametrize("name", ["tan", "exp2", "expm1", "ndtri", "two_over", "reciprocal", "exp", "sqrt", "sigmoid", "tanh"])
def test_create_graph_never_reads_an_input_changed_in_place(name):
    # these backwards do not read the input, but their recorded gradients do: an error, not its new values
    torch = torch_or_skip()
    f = _function(name)

    def program(lib):
        x = lib.tensor([0.3, 0.6], requires_grad=True)
        h = x * 1.0
        y = f(lib, h)
        h.add_(1.0)
        return lib.autograd.grad(y.sum(), x, create_graph=True)[0]
    ours = _outcome(program, gt)
    if ours != "raise":
        np.testing.assert_allclose(ours, program(torch).tolist(), rtol=1e-5)


def test_data_changed_in_place_is_hidden_from_the_saved_value_check():
    def program(lib):
        w = lib.tensor([1.0, 2.0], requires_grad=True)
        loss = (w * w).sum()
        w.data.mul_(3)
        loss.backward()
        return w.grad
    _same(program)


# ---- views of the same shape --------------------------------------------------------------
SAME_SHAPE = {"view": lambda x: x.view(2, 3), "view_as": lambda x: x.view_as(x), "reshape": lambda x: x.reshape(2, 3),
              "reshape_as": lambda x: x.reshape_as(x), "squeeze": lambda x: x.squeeze(),
              "expand": lambda x: x.expand(2, 3), "expand_as": lambda x: x.expand_as(x),
              "broadcast_to": lambda x: x.broadcast_to((2, 3)), "unflatten": lambda x: x.unflatten(1, (3,))}


@pytest.mark.parametrize("name", list(SAME_SHAPE))
def test_a_shape_op_to_the_same_shape_makes_a_new_view(name):
    torch = torch_or_skip()
    for lib in (gt, torch):
        x = lib.ones(2, 3, requires_grad=True)
        y = SAME_SHAPE[name](x)
        assert y is not x and not y.is_leaf and y.requires_grad
        with pytest.raises(RuntimeError):
            y.requires_grad_(False)          # only a leaf's flag may be turned off
        assert x.requires_grad
        (y * 2).sum().backward()
        assert x.grad.tolist() == [[2.0] * 3] * 2
    x = gt.ones(2, 3)
    y = x.view(2, 3)
    y.add_(1.0)                              # a view: the change shows in x
    assert x.tolist() == [[2.0] * 3] * 2


# ---- grad mode ---------------------------------------------------------------------------
def test_no_grad_on_a_generator_holds_at_each_step():
    torch = torch_or_skip()
    for lib in (gt, torch):
        x = lib.ones(2, requires_grad=True)

        @lib.no_grad()
        def batches():
            for _ in range(2):
                yield (x * 2).requires_grad

        @lib.enable_grad()
        def recorded():
            yield (x * 2).requires_grad

        @lib.inference_mode()
        def inferred():
            yield (x * 2).requires_grad, lib.is_inference_mode_enabled()

        assert list(batches()) == [False, False]
        with lib.no_grad():
            steps = recorded()
        assert list(steps) == [True]
        assert list(inferred()) == [(False, True)] and not lib.is_inference_mode_enabled()
        assert lib.is_grad_enabled()


def test_bare_enable_grad_decorator_and_enable_grad_inside_inference_mode():
    torch = torch_or_skip()
    for lib in (gt, torch):
        @lib.enable_grad
        def f(x):
            return (x * 2).requires_grad
        x = lib.ones(1, requires_grad=True)
        with lib.no_grad():
            assert f(x)
        with lib.inference_mode():
            with lib.enable_grad():
                assert not (x * 2).requires_grad        # inference mode still records nothing
        assert (x * 2).requires_grad


def test_grad_mode_is_per_thread():
    torch = torch_or_skip()
    for lib in (gt, torch):
        x = lib.ones(2, requires_grad=True)
        inside, done, seen = threading.Event(), threading.Event(), []

        def evaluator():
            with lib.no_grad():
                inside.set()
                done.wait()

        def fresh():
            seen.append((lib.is_grad_enabled(), lib.is_inference_mode_enabled(), (x * 2).requires_grad))

        t = threading.Thread(target=evaluator)
        t.start()
        inside.wait()
        y = (x * 2).sum()                 # this thread's mode is untouched by the other's no_grad
        done.set()
        t.join()
        assert y.requires_grad
        with lib.inference_mode():
            t = threading.Thread(target=fresh)     # a new thread starts with grad mode on
            t.start()
            t.join()
        assert seen == [(True, False, True)]


# ---- gradient utilities in half precision -----------------------------------------------------------
@pytest.mark.parametrize("norm_type", [2.0, 3.0])
def test_clip_grad_norm_of_float16_gradients_sums_in_float32(norm_type):
    torch = torch_or_skip()
    out = {}
    for lib in (gt, torch):
        p = lib.ones(3, dtype=lib.float16, requires_grad=True)
        p.grad = lib.full((3,), 300.0, dtype=lib.float16)
        norm = lib.nn.utils.clip_grad_norm_([p], max_norm=1.0, norm_type=norm_type)
        out[lib] = norm, p.grad
    (n, g), (tn, tg) = out[gt], out[torch]
    assert n.dtype == gt.float16 and g.dtype == gt.float16
    np.testing.assert_allclose(float(n), float(tn), rtol=1e-3)
    np.testing.assert_allclose(g.numpy().astype(np.float32), tg.numpy().astype(np.float32), rtol=2e-3)


@pytest.mark.parametrize("ord", [2, 3, 1, 0.5, -1])
def test_half_norms_sum_in_float32_and_keep_the_dtype(ord):
    torch = torch_or_skip()
    for f in (lambda lib, x: lib.linalg.vector_norm(x, ord), lambda lib, x: x.norm(ord),
              lambda lib, x: lib.nn.utils.get_total_norm([x], ord)):
        ours, theirs = (f(lib, lib.full((3,), 300.0, dtype=lib.float16)) for lib in (gt, torch))
        assert ours.dtype == gt.float16
        np.testing.assert_allclose(float(ours), float(theirs), rtol=1e-3)


# ---- optimizers ----------------------------------------------------------------------------
OPTIMIZERS = ["SGD", "Adam", "AdamW", "Adagrad", "Adadelta", "Adamax", "ASGD", "NAdam", "RAdam", "RMSprop", "Rprop",
              "Adafactor"]


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_optimizers_take_a_tensor_learning_rate(name):
    torch = torch_or_skip()
    out = []
    for lib in (gt, torch):
        p = lib.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
        opt = getattr(lib.optim, name)([p], lr=lib.tensor(0.1))
        p.grad = lib.tensor([[1.0, -1.0], [0.5, 0.5]])
        opt.step()
        out.append(p.detach().numpy())
        with pytest.raises(ValueError, match="1-element"):
            getattr(lib.optim, name)([p], lr=lib.tensor([0.1, 0.2]))
    np.testing.assert_allclose(out[0], out[1], rtol=1e-5)


def test_optimizer_state_is_a_defaultdict_and_step_hooks_run():
    torch = torch_or_skip()
    for lib in (gt, torch):
        p = lib.tensor([1.0, 2.0], requires_grad=True)
        opt = lib.optim.Adam([p], lr=0.1)
        assert dict(opt.state[p]) == {}
        calls = []
        pre = opt.register_step_pre_hook(lambda o, args, kwargs: calls.append(("pre", o is opt)))
        opt.register_step_post_hook(lambda o, args, kwargs: calls.append(("post", o is opt)))
        p.grad = lib.tensor([1.0, 1.0])
        opt.step()
        assert sorted(opt.state[p]) == ["exp_avg", "exp_avg_sq", "step"]
        pre.remove()
        opt.step()
        assert calls == [("pre", True), ("post", True), ("post", True)]
        np.testing.assert_allclose(p.detach().numpy(), [0.8, 1.8], rtol=1e-5)


def test_adagrad_initial_accumulator_is_the_constructors():
    torch = torch_or_skip()
    out = []
    for lib in (gt, torch):
        w = lib.tensor([1.0, 2.0], dtype=lib.float64, requires_grad=True)
        v = lib.tensor([1.0, 2.0], dtype=lib.float64, requires_grad=True)
        opt = lib.optim.Adagrad([{"params": [w], "initial_accumulator_value": 10.0}], lr=0.1)
        opt.add_param_group({"params": [v], "initial_accumulator_value": 10.0})
        w.grad = lib.tensor([1.0, 1.0], dtype=lib.float64)
        v.grad = lib.tensor([1.0, 1.0], dtype=lib.float64)
        opt.step()
        out.append(np.concatenate([w.detach().numpy(), v.detach().numpy()]))
    np.testing.assert_allclose(out[0], out[1], rtol=1e-12)
