"""torch's elementwise math functions, ``prod`` and ``cumprod`` (gt/tensor/math_methods.py), each
run beside torch on the same inputs: values, dtypes and gradients, inside each function's domain
and at its edges (NaN, inf, poles, zeros), integer inputs, empty and 0-d tensors, errors, the
accuracy of the numpy engine's own erfc and erfinv, and sharded inputs that stay sharded."""

import math
import warnings

import numpy as np
import pytest

import gt
from gt.backend import B
from gt.sharding.collectives import count_collectives
from gt.sharding.mesh import use_mesh
from gt.sharding.placement import Shard
from helpers import check_grad, compare_with_torch, torch_or_skip

RNG = np.random.default_rng(0)
X = RNG.standard_normal((3, 4)) * 2                    # anywhere
U = RNG.uniform(-0.95, 0.95, (3, 4))                   # inside (-1, 1)
P = RNG.uniform(0.05, 0.95, (3, 4))                    # inside (0, 1)
ABOVE1 = RNG.uniform(1.05, 4.0, (3, 4))
FAR = RNG.uniform(0.3, 3.0, (3, 4)) * np.sign(RNG.standard_normal((3, 4)))   # |x| >= 0.3
# the edges: infinities, poles, domain bounds, zero (signed), NaN
EDGES = np.array([-np.inf, -3.0, -1.0, -0.5, -0.0, 0.0, 0.5, 1.0, 3.0, np.inf, np.nan])

UNARY = {"sin": X, "cos": X, "tan": U, "asin": U, "acos": U, "atan": X, "sinh": X, "cosh": X, "asinh": X * 3,
         "acosh": ABOVE1, "atanh": U, "log1p": P * 3 - 0.9, "expm1": X, "exp2": X, "erf": X, "erfc": X * 2,
         "erfinv": U, "sinc": FAR, "deg2rad": X * 100, "rad2deg": X, "logit": P}
ALIASES = {"arcsin": "asin", "arccos": "acos", "arctan": "atan", "arcsinh": "asinh", "arccosh": "acosh",
           "arctanh": "atanh"}


def _method(name, *args, **kwargs):
    return lambda t: getattr(t, name)(*args, **kwargs)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", list(UNARY))
def test_unary_values_and_gradients_are_torchs(name, dtype):
    """Inside the domain, and at the edges: NaN outside the domain, inf at the poles, the
    gradient there too, as torch's."""
    # logit's gradient at -0 is g / -0 in torch's vectorised kernel and g / +0 in its scalar one
    edges = EDGES[EDGES != 0] if name == "logit" else EDGES
    compare_with_torch(_method(name), None, np.concatenate([UNARY[name].ravel(), edges]), dtype=dtype)


def test_nothing_warns_outside_the_domains():
    ops = [_method(name) for name in UNARY] + [_method("logit", eps=0.1), _method("prod"), _method("cumprod", 0)]
    ops += [lambda x, name=name: getattr(x, name)(gt.tensor(x.numpy()[::-1], requires_grad=True))
            for name in ("xlogy", "atan2", "hypot", "logaddexp")]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        # a leaf each and no sum: gt's sums of inf and -inf (in sum(), into one leaf's .grad) warn
        for op in ops:
            for values in (EDGES, [1e30, 1e30, 0.0, 3.0]):
                out = op(gt.tensor(values, requires_grad=True))
                out.backward(gt.ones(*out.shape))


def test_aliases_and_function_forms():
    t = gt.tensor(U)
    for alias, name in ALIASES.items():
        np.testing.assert_array_equal(getattr(t, alias)().numpy(), getattr(t, name)().numpy())
        np.testing.assert_array_equal(getattr(gt, alias)(t).numpy(), getattr(t, name)().numpy())
    for name in UNARY:
        np.testing.assert_array_equal(getattr(gt, name)(t).numpy(), getattr(t, name)().numpy())
    assert gt.arctan2 is gt.atan2
    np.testing.assert_array_equal(gt.prod(t, 1).numpy(), t.prod(1).numpy())
    np.testing.assert_array_equal(gt.cumprod(t, 0).numpy(), t.cumprod(0).numpy())
    np.testing.assert_allclose(gt.sin([0.0, 1.0]).numpy(), np.sin([0.0, 1.0]), rtol=1e-6)


def test_integers_and_bools_become_float32_as_torch():
    torch = torch_or_skip()
    ints = np.array([-3, -1, 0, 1, 2])
    for name in UNARY:
        for arr in (ints, ints > 0):
            ours, theirs = getattr(gt.tensor(arr), name)(), getattr(torch.tensor(arr), name)()
            assert ours.dtype == gt.float32 and str(theirs.dtype) == "torch.float32", name
            np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-6, atol=1e-7, err_msg=name)


@pytest.mark.parametrize("shape", [(0,), (2, 0), ()])
def test_empty_and_0d_tensors(shape):
    for name in UNARY:
        x = gt.zeros(*shape, requires_grad=True) + 0.25
        out = getattr(x, name)()
        assert out.shape == shape and out.dtype == gt.float32, name
        out.sum().backward()
    if shape == ():
        compare_with_torch(lambda t: t.sin() * t.erfinv(), None, np.array(0.3))


def test_sinc_gradient_is_exact_near_zero():
    """(u cos u - sin u) / u**2 cancels for small u = pi x: torch's float32 gradient is off by 0.3%
    at x = 0.01; gt's is not (against the formula in 100-digit arithmetic)."""
    mpmath = pytest.importorskip("mpmath")
    x64 = np.array([0.0, 1e-30, 1e-6, -1e-3, 0.01, 0.05, -0.079, 0.08, 0.3, -0.318, 0.32, 0.5, 2.7])
    for dtype in (gt.float32, gt.float64):
        x = gt.tensor(x64, dtype=dtype, requires_grad=True)
        x.sinc().sum().backward()
        want = []
        with mpmath.workdps(100):                           # u cos u - sin u is u**3 / 3: 60 digits cancel at 1e-30
            for v in x.detach().numpy().tolist():           # the inputs as rounded to dtype
                u = mpmath.pi * mpmath.mpf(v)
                want.append(0.0 if v == 0 else float(mpmath.pi * (u * mpmath.cos(u) - mpmath.sin(u)) / (u * u)))
        rtol = 1e-6 if dtype == gt.float32 else 1e-14
        np.testing.assert_allclose(x.grad.numpy(), want, rtol=rtol, atol=0, err_msg=str(dtype))


def test_logit_eps_as_torch():
    vals = np.array([-0.5, 0.0, 0.05, 0.1, 0.3, 0.9, 0.95, 1.0, 1.5, np.nan])
    for eps in (None, 0.1, 0.0, -1.0):
        for dtype in ("float32", "float64"):
            compare_with_torch(_method("logit", eps=eps), None, vals, dtype=dtype)
    compare_with_torch(lambda t: gt.logit(t, 1e-6) if isinstance(t, gt.Tensor) else t.logit(1e-6), None, P)


# ---- binary ---------------------------------------------------------------------------------
BINARY = {"xlogy": (X, P), "atan2": (X, X[::-1].copy()), "hypot": (X, X[:, ::-1].copy()),
          "logaddexp": (X * 50, X[::-1] * 50)}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", list(BINARY))
def test_binary_values_and_gradients_are_torchs(name, dtype):
    """Random values and every pair of edge values (xlogy's 0 * log(0) = 0, atan2's quadrants and
    origin, hypot at 0, logaddexp of infinities), the gradients too (xlogy's in x is 0 where x is
    0 and y <= 0); then broadcasting, (3, 4) with (4,) or (3, 1) with (4,)."""
    a, b = BINARY[name]
    ea, eb = np.meshgrid(EDGES, EDGES)
    fn = lambda x, y: getattr(x, name)(y)         # noqa: E731
    compare_with_torch(fn, None, np.concatenate([a.ravel(), ea.ravel()]), np.concatenate([b.ravel(), eb.ravel()]),
                       dtype=dtype)
    compare_with_torch(fn, None, a if dtype == "float32" else a[:, :1], b[0], dtype=dtype)


def test_binary_functions_take_0d_tensors_and_numbers_where_torch_does():
    torch = torch_or_skip()
    t = gt.tensor(P, dtype=gt.float32)
    tt = torch.tensor(P, dtype=torch.float32)
    for name in BINARY:
        fn = getattr(torch, name)
        for ours, theirs in [(getattr(gt, name)(t, gt.tensor(2.5)), fn(tt, torch.tensor(2.5))),
                             (getattr(gt, name)(gt.tensor(0.5), t), fn(torch.tensor(0.5), tt)),
                             (getattr(gt, name)(t, gt.tensor(2)), fn(tt, torch.tensor(2)))]:
            assert ours.dtype == gt.float32
            np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-6, err_msg=name)
        for a, b in ((t, 2.5), (0.5, t)):       # a Python number: only xlogy's takes one, as torch's
            if name == "xlogy":
                np.testing.assert_allclose(gt.xlogy(a, b).numpy(), torch.xlogy(*(
                    x if isinstance(x, float) else tt for x in (a, b))).numpy(), rtol=1e-6)
            else:
                with pytest.raises(TypeError, match="must be Tensor, not float"):
                    getattr(gt, name)(a, b)
    ints = gt.tensor([1, 2, 3])
    assert gt.atan2(ints, ints).dtype == gt.float32 and gt.hypot(ints, gt.tensor(2.0)).dtype == gt.float32
    for name in ("hypot", "logaddexp", "logaddexp2", "igamma", "igammac"):     # float kernels only, as torch's
        with pytest.raises(NotImplementedError, match=f"\"{name}_cpu\" not implemented for 'Long'"):
            getattr(gt, name)(ints, gt.tensor(2))
    assert gt.xlogy(ints, t[0, :3].double()).dtype == gt.float64
    assert gt.xlogy(t, gt.tensor(2.0, dtype=gt.float64)).dtype == gt.float32    # a 0-d tensor yields, as torch
    assert gt.logaddexp(t.double(), t).dtype == gt.float64
    assert gt.xlogy(0, gt.tensor([0.0, np.nan, 2.0])).numpy().tolist()[::2] == [0.0, 0.0]
    assert gt.logaddexp(gt.tensor([1000.0]), gt.tensor([1000.0])).item() == pytest.approx(1000 + math.log(2))


# ---- prod and cumprod ----------------------------------------------------------------------------
ZEROS = np.array([[1.5, -2.0, 0.5, 3.0],      # no zero
                  [1.5, 0.0, 0.5, 3.0],       # one
                  [0.0, -2.0, 0.0, 3.0],      # two
                  [0.0, 0.0, 0.0, 0.0],       # all
                  [2.0, 0.5, 1.25, 0.0]])     # the last
PRODS = {"all": _method("prod"), "dim 1": _method("prod", 1), "dim 0": _method("prod", 0),
         "dim -1 kept": _method("prod", -1, keepdim=True), "dim 0 kept": _method("prod", dim=0, keepdim=True)}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("how", list(PRODS))
def test_prod_values_and_gradients_with_zeros_are_torchs(how, dtype):
    compare_with_torch(PRODS[how], None, np.concatenate([ZEROS, X]), dtype=dtype)   # columns: several zeros


def test_prod_over_several_dims_and_its_gradient():
    m = RNG.uniform(0.5, 1.5, (2, 3, 4))
    m[0, 1, 2] = m[1, 2, 0] = m[1, 0, 0] = 0.0
    compare_with_torch(lambda t: t.prod((0, 2)) if isinstance(t, gt.Tensor) else t.prod(2).prod(0), None, m)
    compare_with_torch(lambda t: t.prod((2, 0), keepdim=True) if isinstance(t, gt.Tensor)
                       else t.prod(2, keepdim=True).prod(0, keepdim=True), None, m)
    check_grad(lambda t: t.prod((1, 2)), m)
    check_grad(lambda t: t.prod(), ZEROS[:3])


@pytest.mark.parametrize("dim", [0, 1, -1])
def test_cumprod_values_and_gradients_with_zeros_are_torchs(dim):
    for dtype in ("float32", "float64"):
        compare_with_torch(_method("cumprod", dim), None, np.concatenate([ZEROS, X]), dtype=dtype)
    check_grad(_method("cumprod", dim), ZEROS)


def test_prod_and_cumprod_of_integers_bools_empty_and_0d():
    torch = torch_or_skip()
    ints = np.array([[1, -2, 3], [4, 0, -1]])
    cases = [(ints, "prod", ()), (ints, "prod", (1,)), (ints.astype(np.int32), "prod", (0,)), (ints > 0, "prod", ()),
             (ints, "cumprod", (1,)), (ints > -1, "cumprod", (0,)), (np.zeros((2, 0)), "prod", (1,)),
             (np.zeros((2, 0)), "prod", ()), (np.zeros((0, 3)), "cumprod", (0,)), (np.array(2.5), "prod", ()),
             (np.array(2.5), "prod", (0,)), (np.array(2.5), "cumprod", (-1,)), (np.ones((3, 1)), "cumprod", (1,))]
    for arr, name, args in cases:
        ours, theirs = getattr(gt.tensor(arr), name)(*args), getattr(torch.tensor(arr), name)(*args)
        assert ours.dtype.name == str(theirs.dtype).replace("torch.", ""), (arr, name, args, ours.dtype)
        assert ours.shape == tuple(theirs.shape), (arr, name, args)
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    assert gt.tensor(ints).prod(1, dtype=gt.float64).dtype == gt.float64
    assert gt.tensor(ints).cumprod(0, dtype=gt.float32).numpy().tolist() == [[1, -2, 3], [4, 0, -3]]
    for make in (lambda t: t.prod(), lambda t: t.prod(0, keepdim=True), lambda t: t.cumprod(0)):
        compare_with_torch(make, None, np.array(-1.5))
        compare_with_torch(make, None, np.zeros((0, 2)))


# ---- errors ---------------------------------------------------------------------------------------
ERRORS = [
    (lambda: gt.ones(2, 3).cumprod(), TypeError, r"cumprod: dim is required"),
    (lambda: gt.ones(2, 3).cumprod(2), IndexError, r"cumprod: axis 2 is out of range for a tensor with 2"),
    (lambda: gt.ones(2, 3).prod(-3), IndexError, r"prod: axis -3 is out of range for a tensor with 2"),
    (lambda: gt.ones(2, 3).prod((1, -1)), ValueError, r"prod: repeated axis in \(1, -1\)"),
    (lambda: gt.ones(2, 3).prod(1.5), TypeError, r"prod: dim must be an int, a tuple of ints or None, got 1.5"),
    (lambda: gt.atan2(gt.ones(3), gt.ones(4)), ValueError, r"atan2: shapes \(3,\) and \(4,\) cannot be broadcast"),
    (lambda: gt.hypot(1.0, 2.0), TypeError, r"hypot\(\): argument 'input' \(position 1\) must be Tensor, not float \(1.0\)"),
    (lambda: gt.ones(2).logit(eps="small"), TypeError, r"logit: eps must be a number or None, got 'small'"),
    (lambda: gt.ones(2).xlogy("a"), TypeError, r"xlogy: unsupported operand str"),
    (lambda: B.elementwise_math("sine", B.ones((2,), gt.float32)), ValueError,
     r"elementwise_math: unknown function 'sine'; expected one of"),
]


@pytest.mark.parametrize("k", range(len(ERRORS)))
def test_errors_name_the_value_and_what_was_expected(k):
    fn, error, message = ERRORS[k]
    with pytest.raises(error, match=message):
        fn()


# ---- the numpy engine's erfc and erfinv -----------------------------------------------------------
def test_erfc_and_erfinv_to_float64_precision():
    """Against torch's float64 functions (Cephes-derived), well inside float32's rounding and to
    a few units of float64's: erfc keeps its relative precision far out (erfc(26) is 5.6e-296)."""
    torch = torch_or_skip()
    x = np.concatenate([np.linspace(-6, 26, 161), [0.999, 1.0, 1.001, 1.999, 2.0, 40.0, np.inf, -np.inf]])
    u = np.concatenate([np.linspace(-0.999, 0.999, 81), 1 - np.logspace(-15, -2, 14), [0.5, -0.5, 1, -1, 1.5]])
    for name, values in (("erfc", x), ("erfinv", u)):
        ours = getattr(gt.tensor(values, dtype=gt.float64), name)().numpy()
        theirs = getattr(torch.special, name)(torch.tensor(values)).numpy()
        np.testing.assert_allclose(ours, theirs, rtol=4e-15, atol=0, err_msg=name)
        # float32: the numpy engine rounds its float64 result once (correctly, here); torch's own
        # float32 kernels (the torch engine's) may be a unit in the last place off
        values32 = values.astype(np.float32)
        ours32 = getattr(gt.tensor(values32), name)().numpy()
        theirs32 = getattr(torch.special, name)(torch.tensor(values32).double()).float().numpy()
        np.testing.assert_allclose(ours32, theirs32, rtol=0 if B.name == "numpy" else 3e-7, atol=0, err_msg=name)


# ---- sharding ---------------------------------------------------------------------------------
@pytest.mark.own_mesh
@pytest.mark.parametrize("n", [2, 3])
def test_sharded_inputs_stay_sharded(n):
    """The elementwise rule (and the along-an-axis and reduction ones) keep a shard of axis 0: no
    collective, and the values and gradients of one device."""
    ops = {"sin": lambda t: t.sin(), "erfinv": lambda t: t.erfinv(), "logit": lambda t: t.logit(1e-3),
           "atan2": lambda t: t.atan2(t * 2 + 0.1), "xlogy": lambda t: t.xlogy(t.abs() + 0.5),
           "cumprod along dim 1": lambda t: t.cumprod(1), "prod over dim 1": lambda t: t.prod(1)}
    data = np.concatenate([U, U * 0.5])                     # (6, 4)
    for name, op in ops.items():
        with use_mesh(1):
            leaf = gt.tensor(data, requires_grad=True)
            want = op(leaf)
            want.sum().backward()
            want_grad = leaf.grad.numpy()
        with use_mesh(n):
            leaf = gt.tensor(data, requires_grad=True)
            x = leaf.shard(0)
            with count_collectives() as counted:
                out = op(x)
            assert out.placement == Shard(0) and dict(counted) == {}, (name, out.placement, dict(counted))
            out.sum().backward()
            np.testing.assert_allclose(out.numpy(), want.numpy(), rtol=1e-6, err_msg=name)
            np.testing.assert_allclose(leaf.grad.numpy(), want_grad, rtol=1e-6, err_msg=name)


def test_log_and_sqrt_at_the_edges_of_their_domain_are_silent_as_torchs():
    # log(0) = -inf, log(-1) = nan, sqrt(-1) = nan and their gradients: values, never a numpy warning
    x = gt.tensor([0.0, -1.0, 4.0], requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y = x.log() + x.sqrt()
        y.sum().backward()
    values, grads = y.numpy(), x.grad.numpy()
    assert values[0] == -np.inf and np.isnan(values[1]) and values[2] == pytest.approx(np.log(4.0) + 2.0)
    assert np.isinf(grads[0]) and np.isnan(grads[1]) and grads[2] == pytest.approx(0.25 + 0.25)


@pytest.mark.parametrize("dtype", ["int64", "int32", "uint8"])
def test_integer_pow_with_negative_exponents_is_torchs(dtype):
    # 1 for a base of 1, +-1 for -1, 0 otherwise (numpy refuses these exponents; torch computes them)
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    lo = 0 if dtype == "uint8" else -3
    base = rng.integers(lo, 4, (6, 7)).astype(dtype)
    exps = rng.integers(-4, 4, (6, 7)).astype("int64" if dtype == "uint8" else dtype)
    cases = [(base, exps), (base, exps[0]), (base[:, :1], exps)]
    for a, b in cases:
        got = gt.pow(gt.tensor(a), gt.tensor(b))
        want = torch.pow(torch.from_numpy(a), torch.from_numpy(b))
        assert str(got.dtype) == "gt." + str(want.dtype).split(".")[1]
        np.testing.assert_array_equal(got.numpy(), want.numpy())
    with use_mesh(2):                         # each device its rows
        sharded = gt.tensor(base).shard(0) ** gt.tensor(exps).shard(0)
        assert sharded.placement == Shard(0)
        np.testing.assert_array_equal(sharded.numpy(), torch.pow(torch.from_numpy(base), torch.from_numpy(exps)).numpy())


@pytest.mark.parametrize("expr", ["b ** 2", "2 ** b", "b ** True", "b ** 2.5", "b ** i32", "i32 ** b", "i32 / True",
                                  "b / True", "7 // i32", "7 % i32", "-7 // i64", "True // i32", "7.5 // i32", "7 % f32"])
def test_dtypes_of_bools_and_numbers_beside_tensors_are_torchs(expr):
    # numpy gives int8 for bool powers (not a gt dtype), float64 for x / True, int64 for 7 // an
    # int32 tensor: torch's dtypes and values instead
    torch = pytest.importorskip("torch")
    values = {"b": [True, False, True], "i32": [3, -2, 5], "i64": [3, -2, 5], "f32": [1.5, -2.0, 4.0]}
    kinds = {"b": "bool", "i32": "int32", "i64": "int64", "f32": "float32"}
    env_g = {k: gt.tensor(np.array(v, dtype=kinds[k])) for k, v in values.items()}
    env_t = {k: torch.tensor(np.array(v, dtype=kinds[k])) for k, v in values.items()}
    got, want = eval(expr, {}, env_g), eval(expr, {}, env_t)
    assert str(got.dtype).split(".")[1] == str(want.dtype).split(".")[1], (got.dtype, want.dtype)
    np.testing.assert_allclose(got.numpy(), want.numpy())


def test_pow_of_two_bool_tensors_is_refused_as_torch_refuses_it():
    with pytest.raises(NotImplementedError, match="pow"):
        gt.tensor([True]) ** gt.tensor([False])


@pytest.mark.parametrize("op, kernel", [("floor_divide", "div_floor_cpu"), ("remainder", "remainder_cpu")])
def test_floor_division_and_remainder_of_bools_are_refused_as_torch_refuses_them(op, kernel):
    """(numpy gives int8 there, which no gt tensor may hold.)"""
    torch = pytest.importorskip("torch")
    flags = [[True, False], [True, True]]
    for other in ([True, True], True):
        with pytest.raises(NotImplementedError, match=kernel):
            getattr(torch, op)(torch.tensor(flags), torch.tensor(other) if isinstance(other, list) else other)
        with pytest.raises(NotImplementedError, match=f"{kernel}.*not implemented for 'Bool'"):
            getattr(gt, op)(gt.tensor(flags), gt.tensor(other) if isinstance(other, list) else other)
    got, want = getattr(gt, op)(gt.tensor(flags), 2), getattr(torch, op)(torch.tensor(flags), 2)    # bool and int
    assert got.dtype == gt.int64 and got.tolist() == want.tolist()


def test_pow_of_a_python_number_base_and_a_negative_number_exponent_as_torch():
    torch = pytest.importorskip("torch")
    e = [-1, 0, 2, 3]
    np.testing.assert_array_equal(gt.pow(2, gt.tensor(e)).numpy(), torch.pow(2, torch.tensor(e)).numpy())
    np.testing.assert_array_equal((-1) ** gt.tensor(e), torch.tensor(-1) ** torch.tensor(e))
    x, t = gt.tensor([0.5, 2.0], requires_grad=True), torch.tensor([0.5, 2.0], requires_grad=True)
    gt.pow(3.0, x).sum().backward()
    torch.pow(3.0, t).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), t.grad.numpy(), rtol=1e-6)
    # an integer tensor to a negative number: torch's RuntimeError on every engine
    with pytest.raises(RuntimeError, match="Integers to negative integer powers are not allowed"):
        gt.tensor([2, 3]) ** -1
    with pytest.raises(TypeError, match="invalid combination of arguments"):
        gt.pow(2, 3)                          # no tensor at all: torch refuses it too


@pytest.mark.parametrize("fn", ["softmax", "log_softmax"])
def test_softmax_of_rows_of_minus_inf_and_inf_is_silent_and_torchs(fn):
    # a row every key of which is masked (all -inf) is NaN in torch, with NaN gradients; no warning
    torch = pytest.importorskip("torch")
    x = np.array([[-np.inf, -np.inf], [1.0, -np.inf], [np.inf, 1.0]], np.float32)
    a, b = gt.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y = getattr(a, fn)(-1)
        y.sum().backward()
    z = getattr(b, fn)(-1)
    z.sum().backward()
    np.testing.assert_array_equal(y.detach().numpy(), z.detach().numpy())
    np.testing.assert_array_equal(a.grad.numpy(), b.grad.numpy())


def test_pow_of_a_negative_base_and_of_zero_is_silent_and_torchs():
    # (-2) ** 0.5 = nan and 0 ** -1 = inf with their gradients, never a numpy warning (torch's values)
    torch = pytest.importorskip("torch")
    a = np.array([-2.0, 4.0, 0.0])
    for f in (lambda v: v ** 0.5, lambda v: v.pow(-1.0), lambda v: (-2.0) ** v):
        x, t = gt.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            y = f(x)
            y.sum().backward()
        z = f(t)
        z.sum().backward()
        np.testing.assert_allclose(y.detach().numpy(), z.detach().numpy())
        np.testing.assert_allclose(x.grad.numpy(), t.grad.numpy())


def test_bool_tensors_through_sign_square_and_the_triangles_as_torch():
    torch = pytest.importorskip("torch")
    b = np.array([[True, False, True], [True, True, False]])
    g, t = gt.tensor(b), torch.tensor(b)
    for name in ("sign", "sgn", "square", "tril", "triu"):
        got, want = getattr(g, name)(), getattr(t, name)()
        assert str(got.dtype).split(".")[1] == str(want.dtype).split(".")[1], name
        np.testing.assert_array_equal(got.numpy(), want.numpy())
    for name in ("tril_", "triu_"):
        got, want = getattr(gt.tensor(b), name)(), getattr(torch.tensor(b), name)()
        np.testing.assert_array_equal(got.numpy(), want.numpy())


@pytest.mark.parametrize("p", [0, -1, -2.5, 0.5, 3])
def test_norm_of_any_order_as_torch(p):
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(7).standard_normal((3, 4)).astype(np.float32)
    a, b = gt.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    got, want = a.norm(p, dim=1), b.norm(p, dim=1)
    np.testing.assert_allclose(got.detach().numpy(), want.detach().numpy(), rtol=1e-5)
    got.sum().backward()
    want.sum().backward()
    if b.grad is None:        # p=0: torch's norm requires grad but has no gradient, and gt's so
        assert a.grad is None
    else:
        np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=1e-4, atol=1e-7)
    with_zero = x.copy()
    with_zero[0, 0] = 0.0
    assert gt.tensor(with_zero).norm(p).item() == pytest.approx(torch.tensor(with_zero).norm(p).item(), rel=1e-5)


def test_histogram_bins_default_and_broadcast_to_keeps_a_size_at_minus_one():
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(8).standard_normal(50).astype(np.float32)
    got, want = gt.tensor(x).histogram(), torch.tensor(x).histogram()
    np.testing.assert_array_equal(got.hist.numpy(), want.hist.numpy())
    assert gt.ones(3).broadcast_to((2, -1)).shape == (2, 3)
    with pytest.raises(RuntimeError, match="expanded size"):
        gt.ones(3).broadcast_to((2, -2))


@pytest.mark.parametrize("expr", ["x.flip(0, 2)", "x.flip((0, 2))", "x.flip(dims=(1,))", "x.squeeze(0, 1)",
                                  "x.squeeze((1,))", "x.squeeze()", "x.count_nonzero(0, 2)", "x.count_nonzero(dim=1)",
                                  "x.dsplit(1, 3)", "x.dsplit([1, 3])", "x.hsplit(1)", "x.copy_(x * 2, True)"])
def test_torchs_varargs_and_keyword_forms(expr):
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(9).standard_normal((3, 1, 4)).astype(np.float32)
    x[0, 0, :2] = 0.0
    got, want = eval(expr, {"x": gt.tensor(x.copy())}), eval(expr, {"x": torch.tensor(x.copy())})
    got, want = (got, want) if isinstance(want, (tuple, list)) else ((got,), (want,))
    assert len(got) == len(want)
    for a, b in zip(got, want):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


@pytest.mark.parametrize("expr", ["i.add_(1.5)", "i.mul_(0.5)", "i.div_(2)", "i.__iadd__(1.5)", "i.add_(d)",
                                  "b.mul_(2)"])
def test_an_in_place_result_the_dtype_cannot_hold_is_torchs_runtime_error(expr):
    torch = pytest.importorskip("torch")
    messages = []
    for M in (gt, torch):
        env = {"i": M.tensor([1, 2]), "b": M.tensor([True, False]), "d": M.tensor([1.0, 2.0], dtype=M.float64)}
        with pytest.raises(RuntimeError) as caught:
            eval(expr, {}, env)
        messages.append(str(caught.value))
    assert messages[0] == messages[1]


@pytest.mark.own_mesh
@pytest.mark.parametrize("devices", [2, 4])
def test_an_in_place_result_the_dtype_cannot_hold_names_a_sharded_operands_type(devices):
    # over the mesh the float64 operand is sharded: the message said Float where torch's says Double
    torch = pytest.importorskip("torch")
    from gt.sharding import use_mesh

    messages = []
    with use_mesh(devices):
        for M in (gt, torch):
            i, d = M.tensor([1, 2, 3, 4]), M.tensor([1.0, 2.0, 3.0, 4.0], dtype=M.float64)
            with pytest.raises(RuntimeError) as caught:
                i.add_(d)
            messages.append(str(caught.value))
    assert messages[0] == messages[1] == "result type Double can't be cast to the desired output type Long"


@pytest.mark.parametrize("accumulate", [False, True])
def test_put_and_put_are_torchs_with_gradients(accumulate):
    torch = pytest.importorskip("torch")
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    idx = np.array([[1, 5], [-1, 1 if accumulate else 7]])
    src = np.array([[5.0, 6.0], [7.0, 8.0]], np.float32)
    out = []
    for M in (gt, torch):
        w, v = M.tensor(a, requires_grad=True), M.tensor(src, requires_grad=True)
        z = w * 1
        z.put_(M.tensor(idx), v * 2, accumulate=accumulate)
        (z * M.tensor(np.arange(12, dtype=np.float32).reshape(3, 4))).sum().backward()
        copy = M.tensor(a).put(M.tensor(idx), M.tensor(src), accumulate=accumulate)
        out.append((z.detach().numpy(), w.grad.numpy(), v.grad.numpy(), copy.numpy()))
    for got, want in zip(*out):
        np.testing.assert_array_equal(got, want)
    with pytest.raises(IndexError, match="index 12 on a tensor of 12 elements"):
        gt.tensor(a).put_(gt.tensor([12]), gt.tensor([1.0]))


def test_memory_formats_are_named_as_torchs_and_checked():
    torch = pytest.importorskip("torch")
    x = gt.randn(2, 3)
    for name in ("preserve_format", "contiguous_format"):
        assert repr(getattr(gt, name)) == repr(getattr(torch, name))
        assert x.clone(memory_format=getattr(gt, name)).shape == (2, 3)
        assert gt.clone(x, memory_format=getattr(torch, name)).shape == (2, 3)
    assert gt.randn(1, 2, 3, 4).clone(memory_format=gt.channels_last).shape == (1, 2, 3, 4)
    with pytest.raises(RuntimeError, match="required rank 4"):
        x.clone(memory_format=gt.channels_last)
    with pytest.raises(ValueError, match="memory_format must be one of"):
        x.clone(memory_format="strided")
