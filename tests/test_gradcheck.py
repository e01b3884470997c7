"""``gt.autograd.gradcheck``/``gradgradcheck`` give torch's verdict on the same functions, right
and wrong (custom Functions with a wrong or a detached backward), with torch's errors."""

import numpy as np
import pytest

import gt
from helpers import randn

torch = pytest.importorskip("torch")


def _functions(m):
    class Square(m.autograd.Function):          # a wrong backward: the gradient of x, not of x**2
        @staticmethod
        def forward(ctx, x):
            return x ** 2

        @staticmethod
        def backward(ctx, g):
            return g

    class Cube(m.autograd.Function):            # right once, but its gradient is cut from the graph
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x ** 3

        @staticmethod
        def backward(ctx, g):
            x, = ctx.saved_tensors
            return 3 * x.detach() ** 2 * g

    class Scale(m.autograd.Function):           # right, twice differentiable, a number among the inputs
        @staticmethod
        def forward(ctx, x, w, k):
            ctx.save_for_backward(x, w)
            ctx.k = k
            return (x * w).sin() * k, x.sum() * w

        @staticmethod
        def backward(ctx, ga, gb):
            x, w = ctx.saved_tensors
            c = (x * w).cos() * ctx.k * ga
            return c * w + (gb * w).sum(), (c * x).sum(0) + gb * x.sum(), None
    return {"square": Square.apply, "cube": Cube.apply, "scale": Scale.apply,
            "composed": lambda x, w=None, k=None: ((x.tanh() * 2) @ x.T).exp()}


def _inputs(m, name):
    x = m.tensor(randn(2, 3), dtype=m.float64, requires_grad=True)
    if name == "scale":
        return (x, m.tensor(randn(3, seed=1), dtype=m.float64, requires_grad=True), 1.5)
    return (x,)


@pytest.mark.parametrize("name", ["square", "cube", "scale", "composed"])
@pytest.mark.parametrize("check", ["gradcheck", "gradgradcheck"])
def test_the_verdict_is_torchs(check, name):
    verdicts = []
    for m in (gt, torch):
        f = _functions(m)[name]
        run = getattr(m.autograd, check)
        inputs = _inputs(m, name)
        if check == "gradgradcheck":
            outs = f(*inputs)
            outs = outs if isinstance(outs, tuple) else (outs,)
            grads = tuple(m.tensor(randn(*o.shape, seed=9 + i), dtype=m.float64, requires_grad=True)
                          for i, o in enumerate(outs))
            verdicts.append(run(f, inputs, grads, raise_exception=False))
        else:
            verdicts.append(run(f, inputs, raise_exception=False))
    assert verdicts[0] == verdicts[1]
    # gradgradcheck checks the derivatives of the gradient as computed: Square's (g, wrong but
    # linear in g) has consistent ones; Cube's, cut from the graph, has none
    assert verdicts[0] == {"square": check == "gradgradcheck", "cube": check == "gradcheck", "scale": True,
                           "composed": True}[name]


def test_a_mismatch_raises_naming_the_output_and_input_with_both_jacobians():
    x = gt.tensor([1.0, -2.0], dtype=gt.float64, requires_grad=True)
    with pytest.raises(gt.autograd.GradcheckError, match=r"Jacobian mismatch for output 0 with respect to input 0,\n"
                                                          r"numerical:.*\n.*\nanalytical:") as info:
        gt.autograd.gradcheck(_functions(gt)["square"], (x,))
    assert isinstance(info.value, RuntimeError)
    assert "2." in str(info.value) and "-4." in str(info.value)   # numerical: 2x on the diagonal


def test_the_inputs_are_left_as_they_were():
    x, w, k = _inputs(gt, "scale")
    before = x.detach().numpy().copy()
    assert gt.autograd.gradgradcheck(_functions(gt)["scale"], (x, w, k))
    np.testing.assert_array_equal(x.detach().numpy(), before)
    assert x.grad is None and w.grad is None


def test_float32_inputs_warn_and_bad_arguments_are_refused_as_torch():
    for m in (gt, torch):
        with pytest.warns(UserWarning, match="Input #0 requires gradient and is not a double precision"):
            m.autograd.gradcheck(lambda a: a * 2, (m.ones(2, requires_grad=True),), raise_exception=False)
        with pytest.raises(ValueError, match="gradcheck expects at least one input tensor to require gradient"):
            m.autograd.gradcheck(lambda a: a * 2, (m.ones(2, dtype=m.float64),))
    with pytest.raises(NotImplementedError, match=r"gradcheck\(check_forward_ad=True\): gt has no forward-mode AD"):
        gt.autograd.gradcheck(lambda a: a * 2, (gt.ones(2, dtype=gt.float64, requires_grad=True),),
                              check_forward_ad=True)
