"""torch's remaining activations (ReLU6, Hardtanh, Hardsigmoid, Hardswish, Mish, SELU, CELU, GLU,
LogSigmoid, Softsign, Softmin, Softshrink, Hardshrink, Tanhshrink, Threshold, PReLU, RReLU), their F
forms and the in-place forms: values, dtypes and gradients beside torch's, at the kinks too."""

import warnings

import numpy as np
import pytest

import gt
from gt import nn
from gt.nn import functional as F
from helpers import check_grad, compare_with_torch, torch_or_skip

# every kink (0, +-0.5, +-1, +-3, 6) exactly, points between, and values that overflow exp in float32
X = np.array([-1000.0, -90, -30, -6.5, -4, -3, -2.2, -1, -0.5, -0.3, 0, 0.3,
              0.5, 1, 2.2, 3, 4, 6, 6.5, 30, 90, 1000, -0.7, 0.8]).reshape(4, 6)


def tF():
    return torch_or_skip().nn.functional


# (id, gt function, torch function): each run on X, forward and gradients compared
CASES = [
    ("relu6", F.relu6, lambda x: tF().relu6(x)),
    ("hardtanh", F.hardtanh, lambda x: tF().hardtanh(x)),
    ("hardtanh(-3, 0.5)", lambda x: F.hardtanh(x, -3, 0.5), lambda x: tF().hardtanh(x, -3, 0.5)),
    ("hardsigmoid", F.hardsigmoid, lambda x: tF().hardsigmoid(x)),
    ("hardswish", F.hardswish, lambda x: tF().hardswish(x)),
    ("mish", F.mish, lambda x: tF().mish(x)),
    ("selu", F.selu, lambda x: tF().selu(x)),
    ("celu", F.celu, lambda x: tF().celu(x)),
    ("celu(0.5)", lambda x: F.celu(x, 0.5), lambda x: tF().celu(x, 0.5)),
    ("logsigmoid", F.logsigmoid, lambda x: tF().logsigmoid(x)),
    ("softsign", F.softsign, lambda x: tF().softsign(x)),
    ("softshrink", F.softshrink, lambda x: tF().softshrink(x)),
    ("softshrink(1)", lambda x: F.softshrink(x, 1.0), lambda x: tF().softshrink(x, 1.0)),
    ("hardshrink", F.hardshrink, lambda x: tF().hardshrink(x)),
    ("hardshrink(3)", lambda x: F.hardshrink(x, 3.0), lambda x: tF().hardshrink(x, 3.0)),
    ("tanhshrink", F.tanhshrink, lambda x: tF().tanhshrink(x)),
    ("threshold", lambda x: F.threshold(x, 0.5, -2.0), lambda x: tF().threshold(x, 0.5, -2.0)),
    ("rrelu eval", lambda x: F.rrelu(x, 0.1, 0.3), lambda x: tF().rrelu(x, 0.1, 0.3)),
    ("relu", F.relu, lambda x: tF().relu(x)),
    ("leaky_relu", lambda x: F.leaky_relu(x, 0.2), lambda x: tF().leaky_relu(x, 0.2)),
    ("elu", F.elu, lambda x: tF().elu(x)),
    ("silu", F.silu, lambda x: tF().silu(x)),
    ("glu", F.glu, lambda x: tF().glu(x)),
    ("glu dim 0", lambda x: F.glu(x, 0), lambda x: tF().glu(x, 0)),
    ("softmin", lambda x: F.softmin(x, 1), lambda x: tF().softmin(x, 1)),
    ("softmin -2", lambda x: F.softmin(x, dim=-2), lambda x: tF().softmin(x, dim=-2)),
    ("softplus", F.softplus, lambda x: tF().softplus(x)),           # its slope at 0 is 1/2 (torch's)
    ("softplus beta", lambda x: F.softplus(x, 2.0, 3.0), lambda x: tF().softplus(x, 2.0, 3.0)),
]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name, ours, theirs", CASES, ids=[c[0] for c in CASES])
def test_functions_are_torchs_with_kinks_and_no_overflow(name, ours, theirs, dtype):
    with warnings.catch_warnings():
        warnings.simplefilter("error")           # an overflow in exp would warn (numpy) here
        compare_with_torch(ours, theirs, X, dtype=dtype)


@pytest.mark.parametrize("fn", [F.logsigmoid, F.mish, F.selu, F.celu, F.hardswish, F.softsign, F.glu],
                         ids=lambda f: f.__name__)
def test_gradients_match_finite_differences(fn):
    check_grad(fn, np.array([[-2.5, -0.7, 0.4, 1.3], [2.1, -1.6, 0.9, -0.2]]))


ELEMENTWISE = ["relu6", "hardtanh", "hardsigmoid", "hardswish", "mish", "selu", "celu", "logsigmoid", "softsign",
               "softshrink", "hardshrink", "tanhshrink", "relu", "leaky_relu", "elu", "silu"]


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")   # numpy's inf * 0 = NaN, as torch's
@pytest.mark.parametrize("name", ELEMENTWISE)
def test_nan_inf_empty_and_0d_are_torchs(name):
    torch = torch_or_skip()
    special = np.array([np.nan, np.inf, -np.inf], dtype=np.float32)
    for arr in (special, np.zeros((0, 3), np.float32), np.array(-1.5, np.float32)):
        ours, theirs = getattr(F, name)(gt.tensor(arr)), getattr(torch.nn.functional, name)(torch.tensor(arr))
        assert ours.shape == tuple(theirs.shape) and ours.dtype == gt.float32
        np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-6)


@pytest.mark.parametrize("ours, theirs", [
    (F.relu6, lambda t, x: t.nn.functional.relu6(x)), (F.hardtanh, lambda t, x: t.nn.functional.hardtanh(x)),
    (lambda x: F.threshold(x, 1, 7), lambda t, x: t.nn.functional.threshold(x, 1, 7)),
    (F.softsign, lambda t, x: t.nn.functional.softsign(x)), (F.tanhshrink, lambda t, x: t.nn.functional.tanhshrink(x)),
], ids=["relu6", "hardtanh", "threshold", "softsign", "tanhshrink"])
def test_integer_inputs_are_torchs(ours, theirs):
    torch = torch_or_skip()
    arr = np.arange(-3, 9)
    out, want = ours(gt.tensor(arr)), theirs(torch, torch.tensor(arr))
    assert out.dtype.name == str(want.dtype).replace("torch.", "")
    np.testing.assert_allclose(out.numpy(), want.numpy(), rtol=1e-6)


@pytest.mark.parametrize("name", ["mish", "selu", "celu", "logsigmoid", "hardsigmoid", "hardswish", "glu",
                                  "softshrink", "hardshrink"])
def test_integer_inputs_are_refused_where_torch_has_no_kernel(name):
    with pytest.raises(TypeError, match=f"{name}: expected a floating-point input, got dtype gt.int64"):
        getattr(F, name)(gt.tensor([2, -2]))


# ---- modules ----------------------------------------------------------------------------------
MODULES = [
    ("ReLU6", (), {}), ("ReLU6", (), {"inplace": True}), ("Hardtanh", (-2.0, 0.5), {}),
    ("Hardtanh", (), {"inplace": True}), ("Hardsigmoid", (), {}), ("Hardswish", (), {"inplace": True}),
    ("Mish", (), {}), ("SELU", (), {"inplace": True}), ("CELU", (0.7,), {}), ("CELU", (), {"inplace": True}),
    ("GLU", (), {}), ("GLU", (1,), {}), ("LogSigmoid", (), {}), ("Softsign", (), {}), ("Softmin", (1,), {}),
    ("Softshrink", (1.0,), {}), ("Hardshrink", (), {}), ("Tanhshrink", (), {}), ("Threshold", (0.1, 20.0), {}),
    ("Threshold", (0.1, 20.0, True), {}), ("RReLU", (0.1, 0.3), {}), ("RReLU", (), {"inplace": True}),
    ("ReLU", (), {"inplace": True}), ("LeakyReLU", (0.2, True), {}), ("ELU", (0.5,), {"inplace": True}),
    ("SiLU", (), {"inplace": True}), ("ReLU", (), {}), ("LeakyReLU", (), {}), ("ELU", (), {}), ("SiLU", (), {}),
]


@pytest.mark.parametrize("name, args, kwargs", MODULES,
                         ids=[f"{n}{a}{k}" for n, a, k in MODULES])
def test_modules_are_torchs(name, args, kwargs):
    torch = torch_or_skip()
    ours, theirs = getattr(nn, name)(*args, **kwargs).eval(), getattr(torch.nn, name)(*args, **kwargs).eval()
    assert repr(ours) == repr(theirs)
    # an in-place layer needs a non-leaf input: x * 1, as a layer inside a model sees
    compare_with_torch(lambda x: ours(x * 1), lambda x: theirs(x * 1), X[:2], dtype="float32")


def test_inplace_forms_write_into_the_input_and_backpropagate():
    torch = torch_or_skip()
    for name, args in [("relu_", ()), ("elu_", (0.5,)), ("leaky_relu_", (0.2,)), ("hardtanh_", (-0.5, 2.0)),
                       ("threshold_", (0.3, -1.0)), ("selu_", ()), ("celu_", (2.0,)), ("rrelu_", (0.1, 0.2))]:
        a, ta = gt.tensor(X, requires_grad=True), torch.tensor(X, requires_grad=True)
        y, ty = a * 2, ta * 2
        out = getattr(F, name)(y, *args)
        getattr(torch.nn.functional, name)(ty, *args)
        assert out is y, name
        np.testing.assert_allclose(y.numpy(), ty.detach().numpy(), rtol=1e-12, err_msg=name)
        (y * y).sum().backward()
        (ty * ty).sum().backward()
        np.testing.assert_allclose(a.grad.numpy(), ta.grad.numpy(), rtol=1e-10, atol=1e-15, err_msg=name)


def test_inplace_on_a_leaf_that_requires_grad_is_refused():
    with pytest.raises(RuntimeError, match="leaf"):
        F.relu6(gt.tensor([1.0, -1.0], requires_grad=True), inplace=True)


def test_softmin_implicit_dim_is_torchs_with_its_warning():
    torch = torch_or_skip()
    for shape in [(), (5,), (2, 3), (2, 3, 4), (2, 1, 3, 2)]:
        arr = np.random.default_rng(1).standard_normal(shape)
        with pytest.warns(UserWarning, match="Implicit dimension choice for softmin"):
            ours = F.softmin(gt.tensor(arr))
        with pytest.warns(UserWarning):
            theirs = torch.nn.functional.softmin(torch.tensor(arr))
        np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-12)
    out = F.softmin(gt.tensor(np.ones((2, 2))), 0, dtype=gt.float32)
    assert out.dtype == gt.float32


# ---- PReLU and RReLU ----------------------------------------------------------------------------
@pytest.mark.parametrize("num, shape", [(1, (2, 3, 4)), (3, (2, 3, 4)), (3, (5, 3)), (1, (4,)), (1, ())])
def test_prelu_loads_torchs_state_dict_and_matches_it(num, shape):
    torch = torch_or_skip()
    ref = torch.nn.PReLU(num, init=0.1)
    with torch.no_grad():
        ref.weight.copy_(torch.linspace(-0.5, 0.8, num))
    ours = nn.PReLU(num)
    ours.load_state_dict(ref.state_dict())
    assert list(ours.state_dict()) == ["weight"] and ours.weight.shape == (num,)
    assert repr(ours).startswith(repr(ref))
    arr = np.random.default_rng(2).standard_normal(shape).astype(np.float32)
    arr.reshape(-1)[:1] = 0.0                                   # the kink: slope `weight` there, as torch
    x, tx = gt.tensor(arr, requires_grad=True), torch.tensor(arr, requires_grad=True)
    out, tout = ours(x), ref(tx)
    np.testing.assert_allclose(out.numpy(), tout.detach().numpy(), rtol=1e-6)
    up = np.random.default_rng(3).standard_normal(shape).astype(np.float32)
    out.backward(gt.tensor(up))
    tout.backward(torch.tensor(up))
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-6)
    np.testing.assert_allclose(ours.weight.grad.numpy(), ref.weight.grad.numpy(), rtol=1e-5, atol=1e-6)


def test_prelu_function_is_torchs_in_float64():
    w = np.array([0.2, -0.3, 0.7])
    compare_with_torch(F.prelu, lambda x, w: tF().prelu(x, w), X[:, :3].reshape(2, 3, 2).transpose(0, 1, 2), w)
    assert nn.PReLU().weight.dtype == gt.float32 and float(nn.PReLU(init=0.3).weight[0]) == pytest.approx(0.3)
    assert nn.PReLU(2, dtype=gt.float64).weight.dtype == gt.float64
    assert nn.Module.num_parameters(nn.PReLU(4)) == 4                   # .num_parameters is torch's int here


def test_rrelu_training_draws_slopes_from_gts_generator():
    x = gt.tensor(-np.ones((200,)), requires_grad=True)
    gt.manual_seed(0)
    out = F.rrelu(x * 1, 0.1, 0.3, training=True)
    slopes = -out.numpy()
    assert slopes.min() >= 0.1 and slopes.max() < 0.3 and slopes.std() > 0.03
    out.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), slopes)          # the gradient is each element's slope
    gt.manual_seed(0)
    np.testing.assert_array_equal(nn.RReLU(0.1, 0.3)(gt.tensor(-np.ones((200,)))).numpy(), out.numpy())
    pos = gt.tensor([0.5, 2.0])
    np.testing.assert_array_equal(F.rrelu(pos, training=True).numpy(), pos.numpy())


# ---- errors -------------------------------------------------------------------------------------
@pytest.mark.parametrize("call, exc, match", [
    (lambda: F.glu(gt.zeros(2, 3), 1), ValueError, "halving dimension must be even, but dimension 1 is size 3"),
    (lambda: nn.GLU()(gt.zeros(3)), ValueError, "dimension 0 is size 3"),
    (lambda: F.glu(gt.tensor(1.0)), ValueError, "glu does not support scalars"),
    (lambda: F.glu(gt.zeros(2, 4), 2), IndexError, r"dim 2 is out of range .*\[-2, 1\]"),
    (lambda: F.hardtanh(gt.zeros(2), 2.0, 1.0), ValueError, "min_val cannot be greater than max_val"),
    (lambda: nn.Hardtanh(2.0, 1.0), ValueError, r"max_val \(1.0\) must be greater than min_val \(2.0\)"),
    (lambda: F.softshrink(gt.zeros(2), -1.0), ValueError, "lambda must be greater or equal to 0, but found to be -1"),
    (lambda: nn.Softshrink(-0.5), ValueError, "Softshrink: lambda must be greater or equal to 0"),
    (lambda: F.celu(gt.zeros(2), 0.0), ValueError, "alpha cannot be 0"),
    (lambda: nn.CELU(0), ValueError, "alpha cannot be 0"),
    (lambda: F.prelu(gt.zeros(2, 4), gt.ones(3)), ValueError, "parameter numbers = 3 and channel size = 4"),
    (lambda: F.prelu(gt.zeros(4), gt.ones(4)), ValueError, "parameter numbers = 4 and channel size = 1"),
    (lambda: F.prelu(gt.zeros(2, 4), gt.ones(2, 2)), ValueError, "scalar or 1D tensor, but got: ndim = 2"),
    (lambda: nn.PReLU(0), ValueError, "num_parameters must be a positive int, got 0"),
    (lambda: nn.PReLU(3)(gt.zeros(2, 4)), ValueError, "parameter numbers = 3 and channel size = 4"),
    (lambda: F.rrelu(gt.zeros(2), 0.5, 0.1), ValueError, "lower bound should be less than or equal to the upper"),
    (lambda: nn.RReLU(0.5, 0.1), ValueError, "lower=0.5, upper=0.1"),
    (lambda: F.softmin(gt.tensor(1.0), 1), IndexError, r"dim 1 is out of range for a 0-d tensor"),
])
def test_bad_arguments_are_named(call, exc, match):
    with pytest.raises(exc, match=match):
        call()
