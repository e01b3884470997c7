"""gt.special (gt/special.py), the gamma-family and Bessel tensor methods, ``logaddexp2`` and
``cummax``/``cummin`` (gt/tensor/special_methods.py), each run beside torch on the same inputs:
values, dtypes and gradients, inside each function's domain and at its edges (0, negatives,
poles, large values, NaN, inf), integer inputs, 0-d and empty tensors, errors, sharded inputs.

Precision beside torch, float64: the numpy engine computes with scipy.special, the torch engine
is torch itself. Both follow Cephes for most functions and agree within 1e-12 relative (plus
1e-15 absolute near a function's zeros). Where they differ (measured against mpmath at 30
digits, on |x| < 12): torch's ``polygamma(1, x)`` (so digamma's gradient) is 5e-10 off
relative, scipy's 5e-16, and at the poles -1, -2, ... torch's is finite (1e32), scipy's inf; torch's ``bessel_j0``, ``bessel_j1``, ``bessel_y0``, ``bessel_y1`` are
up to 8e-7 off absolute (3e-5 relative), and ``airy_ai`` up to 2.2e-6 absolute for x < 0, where
scipy's are within 6e-16. Those are compared with the looser tolerances of ``RTOL``/``ATOL``.
At infinities: torch's ``polygamma(n >= 1)`` gives NaN at +inf for n >= 2 and at -inf for n = 1,
scipy's 0 and inf; torch's ``zeta(x, inf)`` is NaN, scipy's 0; ``gammainc`` of NaN and 0 or inf
is 0 or 1 in torch, NaN in scipy: left out of the value comparisons (numpy engine only).
"""

import math
import sys
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
X = RNG.standard_normal(12) * 3                        # anywhere
POS = RNG.uniform(0.1, 6.0, 12)                        # (0, 6)
P = RNG.uniform(0.02, 0.98, 12)                        # inside (0, 1)
INF, NAN = np.inf, np.nan
GAMMA_EDGES = [0.0, -0.0, -1.0, -2.0, -2.5, 1e-30, 1.0, 2.0, 150.0, 1e6, INF, -INF, NAN]
BESSEL_EDGES = [0.0, -0.0, 1.0, -1.0, 50.0, -50.0, 700.0, INF, -INF, NAN]
# name -> (values where its gradient is compared too, edges where only values are); x is torch.special's
UNARY = {
    "gammaln": (X, GAMMA_EDGES), "digamma": (X, GAMMA_EDGES), "i0": (X, BESSEL_EDGES), "i0e": (X, BESSEL_EDGES),
    "i1": (X, BESSEL_EDGES), "i1e": (X, BESSEL_EDGES), "erfcx": (X, [-30.0, -26.0, 0.0, 30.0, 1e10, INF, -INF, NAN]),
    "ndtr": (X, [-40.0, -10.0, 0.0, 10.0, INF, -INF, NAN]), "ndtri": (P, [0.0, 1.0, -0.1, 1.1, 1e-300, 0.5, NAN]),
    "log_ndtr": (X, [-1e3, -40.0, 0.0, 40.0, INF, -INF, NAN]), "entr": (POS, [0.0, -1.0, INF, -INF, NAN]),
}
# the functions torch does not differentiate (values only; their results are outside the graph)
NO_GRAD = {"airy_ai": X, "bessel_j0": X, "bessel_j1": X, "bessel_y0": POS, "bessel_y1": POS,
           "modified_bessel_i0": X, "modified_bessel_i1": X, "modified_bessel_k0": POS, "modified_bessel_k1": POS,
           "scaled_modified_bessel_k0": POS, "scaled_modified_bessel_k1": POS, "spherical_bessel_j0": X}
NO_GRAD_EDGES = [0.0, -0.0, -1.0, 1e-5, 30.0, INF, -INF, NAN]
# float64 tolerances beside torch (module docstring); the rest: 1e-12 relative, 1e-15 absolute
RTOL = {"bessel_j0": 4e-5, "bessel_j1": 4e-5, "bessel_y0": 4e-5, "bessel_y1": 4e-5, "airy_ai": 4e-5}
ATOL = {"bessel_j0": 1e-6, "bessel_j1": 1e-6, "bessel_y0": 1e-6, "bessel_y1": 1e-6, "airy_ai": 3e-6}
F64 = {"rtol": 1e-12, "atol": 1e-15}


def _special(name):
    return lambda t: getattr(gt.special if isinstance(t, gt.Tensor) else _torch().special, name)(t)


def _torch():
    return sys.modules["torch"]


def _tolerances(name, dtype):
    if dtype == "float32":
        return {"rtol": 2e-5, "atol": 1e-6}
    return {"rtol": RTOL.get(name, 1e-12), "atol": ATOL.get(name, 1e-15)}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", list(UNARY))
def test_unary_values_and_gradients_are_torchs(name, dtype):
    inside, edges = UNARY[name]
    tol = _tolerances(name, dtype)
    compare_with_torch(_special(name), None, inside, dtype=dtype, **(tol if dtype == "float32" else
                                                                     {"rtol": 1e-9, "atol": 1e-12}))
    # the edges: values (inf at the poles, NaN outside the domain) to the function's precision
    compare_with_torch(_special(name), None, np.array(edges), dtype=dtype, grad=False, **tol)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", list(NO_GRAD))
def test_functions_without_gradient_are_torchs_and_outside_the_graph(name, dtype):
    compare_with_torch(_special(name), None, np.concatenate([NO_GRAD[name], NO_GRAD_EDGES]), dtype=dtype,
                       grad=False, **_tolerances(name, dtype))
    out = getattr(gt.special, name)(gt.tensor(NO_GRAD[name], requires_grad=True))
    assert not out.requires_grad and out.grad_fn is None


@pytest.mark.parametrize("name", ["gammaln", "digamma", "i0", "i0e", "i1", "i1e", "erfcx", "ndtr", "log_ndtr", "entr"])
def test_unary_gradients_match_finite_differences(name):
    inside = UNARY[name][0][:6]
    check_grad(getattr(gt.special, name), inside, rtol=1e-5, atol=1e-7)


def test_ndtri_gradient_matches_finite_differences_and_bessel_gradients_at_zero():
    check_grad(gt.special.ndtri, P[:6])
    # i1 and i1e have the limit 1/2 at 0 (no 0 / 0), as torch
    compare_with_torch(lambda t: gt.special.i1(t) + gt.special.i1e(t) if isinstance(t, gt.Tensor)
                       else _torch().special.i1(t) + _torch().special.i1e(t), None, np.array([0.0, -0.0, 1e-8]))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("n", [0, 1, 2, 3])
def test_polygamma_is_torchs(n, dtype):
    torch = torch_or_skip()
    tol = {"rtol": 2e-5, "atol": 1e-6} if dtype == "float32" else {"rtol": 2e-9, "atol": 1e-12}
    compare_with_torch(lambda t: gt.polygamma(n, t), lambda t: torch.polygamma(n, t), X, dtype=dtype, **tol)
    # the poles 0, -1, -2 and NaN (the infinities and trigamma's poles: module docstring)
    poles = [0.0] if n == 1 else [0.0, -1.0, -2.0]
    compare_with_torch(lambda t: t.polygamma(n), None, np.array(poles + [-2.5, 0.5, NAN]), dtype=dtype,
                       grad=False, **tol)
    if gt.get_backend() == "numpy":                 # scipy's trigamma is inf at every pole, torch's ~1e32
        assert gt.polygamma(1, gt.tensor([-1.0, -2.0])).tolist() == [INF, INF]
    check_grad(lambda t: gt.polygamma(n, t), POS[:5], rtol=1e-5)


def test_digamma_gradient_is_polygamma_1():
    check_grad(gt.digamma, X[:6])
    x = gt.tensor(X, dtype=gt.float64, requires_grad=True)
    x.digamma().sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), gt.polygamma(1, gt.tensor(X)).numpy())


BINARY = {"zeta": (POS + 1.0, POS), "gammainc": (POS, POS[::-1]), "gammaincc": (POS, POS[::-1]),
          "xlog1py": (X, POS - 0.5)}
BINARY_EDGES = np.array([-1.0, 0.0, 0.5, 1.0, 2.0, 10.0, INF, NAN])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", list(BINARY))
def test_binary_values_and_gradients_are_torchs(name, dtype):
    torch = torch_or_skip()
    a, b = BINARY[name]
    tol = {"rtol": 2e-5, "atol": 1e-6} if dtype == "float32" else {"rtol": 1e-12, "atol": 1e-15}

    def fn(x, y):
        if isinstance(x, gt.Tensor):
            return getattr(gt.special, name)(x.detach() if name != "xlog1py" else x, y)
        return getattr(torch.special, name)(x.detach() if name != "xlog1py" else x, y)

    compare_with_torch(fn, None, a, b, dtype=dtype, **tol)
    if name != "xlog1py":           # only the second argument has a gradient
        check_grad(lambda x, y: fn(x, y), a[:5], b[:5], wrt=[1])
    else:
        check_grad(lambda x, y: fn(x, y), a[:5], b[:5])
    # every pair of edges (the NaN and inf cases where scipy and torch differ are left out)
    ea, eb = (m.ravel() for m in np.meshgrid(BINARY_EDGES, BINARY_EDGES, indexing="ij"))
    if name == "zeta":
        differ = eb == INF
    elif name.startswith("gammainc"):
        differ = ((ea == INF) & np.isnan(eb)) | (np.isnan(ea) & ((eb == 0) | (eb == INF)))
    else:
        differ = np.zeros(ea.shape, bool)
    compare_with_torch(fn, None, ea[~differ], eb[~differ], dtype=dtype, grad=False, **tol)


@pytest.mark.parametrize("name, what", [("zeta", "zeta"), ("gammainc", "igamma: input"),
                                        ("gammaincc", "igammac: input")])
def test_no_gradient_in_the_first_argument_as_torch(name, what):
    a = gt.tensor([2.0, 3.0], requires_grad=True)
    out = getattr(gt.special, name)(a, gt.tensor([1.0, 2.0]))
    with pytest.raises(NotImplementedError, match=f"derivative for '{what}' is not implemented"):
        out.sum().backward()


def test_xlog1py_at_zero_and_numbers_on_either_side():
    torch = torch_or_skip()
    x = np.array([0.0, 0.0, 0.0, 2.0, 0.0])
    y = np.array([-1.0, -2.0, NAN, -1.0, 3.0])
    compare_with_torch(lambda a, b: gt.special.xlog1py(a, b), lambda a, b: torch.special.xlog1py(a, b), x, y)
    np.testing.assert_allclose(gt.special.xlog1py(2.0, gt.tensor([1.0, 3.0])).numpy(),
                               torch.special.xlog1py(2.0, torch.tensor([1.0, 3.0])).numpy())
    np.testing.assert_allclose(gt.special.zeta(gt.tensor([2.0, 4.0]), 1).numpy(),
                               torch.special.zeta(torch.tensor([2.0, 4.0]), 1).numpy(), rtol=1e-6)


@pytest.mark.parametrize("name", ["gammaln", "digamma", "i0", "i1e", "erfcx", "ndtr", "entr", "bessel_j0"])
def test_integer_and_bool_inputs_give_float32(name):
    torch = torch_or_skip()
    ints = np.array([1, 2, 3, 7])
    ours, theirs = _special(name)(gt.tensor(ints)), getattr(torch.special, name)(torch.tensor(ints))
    assert ours.dtype == gt.float32 and theirs.dtype == torch.float32
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=2e-5, atol=1e-6)
    assert gt.special.zeta(gt.tensor([2, 3]), gt.tensor([1, 2])).dtype == gt.float32
    assert gt.polygamma(1, gt.tensor([1, 2])).dtype == gt.float32
    assert gt.special.i0(gt.tensor([True, False])).dtype == gt.float32
    assert gt.special.gammainc(gt.tensor([1, 2]), gt.tensor([0.5], dtype=gt.float64)).dtype == gt.float64


def test_empty_and_zero_dim_tensors():
    for fn in (gt.special.gammaln, gt.special.i0e, gt.special.ndtri, gt.special.airy_ai, gt.digamma):
        assert fn(gt.zeros((0, 3))).shape == (0, 3)
        assert fn(gt.tensor(0.5)).shape == ()
    assert gt.special.zeta(gt.tensor(2.0), gt.zeros((0,)) + 1).shape == (0,)
    assert gt.polygamma(2, gt.tensor(1.5)).shape == ()


def test_half_precision_computes_in_float32():
    x = gt.tensor([0.5, 2.0], dtype=gt.float16)
    for fn in (gt.special.erfcx, gt.special.log_ndtr, gt.special.gammaln, lambda t: gt.polygamma(1, t)):
        out = fn(x)
        assert out.dtype == gt.float16
        np.testing.assert_allclose(out.numpy().astype(np.float64), fn(x.to(gt.float32)).numpy(), rtol=1e-3)


def test_nothing_warns_at_the_edges():
    ops = [getattr(gt.special, name) for name in list(UNARY) + list(NO_GRAD)]
    ops += [lambda t: gt.polygamma(2, t), lambda t: gt.special.zeta(3.0, t), lambda t: gt.special.gammainc(2.0, t),
            lambda t: gt.special.xlog1py(t, t), lambda t: gt.logaddexp2(t, t), lambda t: t.cummax(0).values]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for op in ops:
            edges = gt.tensor(GAMMA_EDGES + BESSEL_EDGES + [1.1, -0.1], dtype=gt.float64, requires_grad=True)
            out = op(edges)
            if out.requires_grad:
                out.backward(gt.ones_like(out))


def test_second_derivatives_are_recorded():
    torch = torch_or_skip()
    for name in ("gammaln", "digamma", "i0", "i0e", "i1", "i1e", "erfcx", "ndtr", "ndtri", "log_ndtr", "entr"):
        x = gt.tensor(P, dtype=gt.float64, requires_grad=True)
        (g,) = gt.autograd.grad(getattr(gt.special, name)(x).sum(), x, create_graph=True)
        g.sum().backward()
        t = torch.tensor(P, requires_grad=True)
        (tg,) = torch.autograd.grad(getattr(torch.special, name)(t).sum(), t, create_graph=True)
        tg.sum().backward()
        np.testing.assert_allclose(x.grad.numpy(), t.grad.numpy(), rtol=1e-8, err_msg=name)
    zero = gt.tensor([0.0, 0.5], dtype=gt.float64, requires_grad=True)        # i1's limit at 0
    (g,) = gt.autograd.grad(gt.special.i1(zero).sum(), zero, create_graph=True)
    assert g.tolist()[0] == 0.5
    for name in ("xlog1py", "zeta", "gammainc", "gammaincc"):
        a_np, b_np = (np.ascontiguousarray(v[:6]) for v in BINARY[name])
        first = name == "xlog1py"                        # only xlog1py has a gradient in its first argument
        a, b = gt.tensor(a_np, requires_grad=first), gt.tensor(b_np, requires_grad=True)
        ta, tb = torch.tensor(a_np, requires_grad=first), torch.tensor(b_np, requires_grad=True)
        wrt, twrt = ([a, b], [ta, tb]) if first else ([b], [tb])
        grads = gt.autograd.grad(getattr(gt.special, name)(a, b).sum(), wrt, create_graph=True)
        sum(x.sum() for x in grads).backward()
        tgrads = torch.autograd.grad(getattr(torch.special, name)(ta, tb).sum(), twrt, create_graph=True)
        sum(x.sum() for x in tgrads).backward()
        for ours, theirs in zip(wrt, twrt):
            np.testing.assert_allclose(ours.grad.numpy(), theirs.grad.numpy(), rtol=1e-8, err_msg=name)


# ---- the tensor methods: lgamma, digamma, polygamma, mvlgamma, i0, logaddexp2 ---------------------
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_methods_and_gt_functions_are_torchs(dtype):
    torch = torch_or_skip()
    pos = POS + 1.5
    for name in ("lgamma", "digamma", "i0"):
        # digamma's gradient is polygamma(1): 5e-10 between scipy and torch (module docstring)
        tol = {} if dtype == "float32" else {"rtol": 1e-9, "atol": 1e-12} if name == "digamma" else F64
        compare_with_torch(lambda t: getattr(t, name)(), None, X, dtype=dtype, **tol)
        compare_with_torch(lambda t: getattr(gt if isinstance(t, gt.Tensor) else torch, name)(t), None, X,
                           dtype=dtype, **tol)
    for p in (1, 2, 3):
        compare_with_torch(lambda t: t.mvlgamma(p), None, pos, dtype=dtype)
        compare_with_torch(lambda t: (gt.special if isinstance(t, gt.Tensor) else torch.special).multigammaln(t, p),
                           None, pos, dtype=dtype)
    compare_with_torch(lambda t: gt.mvlgamma(t, p=2), lambda t: torch.mvlgamma(t, p=2), pos, dtype=dtype)
    check_grad(lambda t: t.mvlgamma(3), pos[:5])


def test_mvlgamma_errors_are_torchs():
    """torch 2.13: RuntimeError for p < 1, TypeError for a p that is not an int (gt raised ValueError
    for both); elements at or below (p - 1) / 2 are computed (tests/test_extremal_mends_parity.py)."""
    with pytest.raises(RuntimeError, match="p has to be greater than or equal to 1, got 0"):
        gt.tensor([2.0]).mvlgamma(0)
    with pytest.raises(TypeError, match="must be int, not float"):
        gt.special.multigammaln(gt.tensor([2.0]), 1.5)
    with pytest.raises(TypeError, match="must be int, not bool"):
        gt.tensor([2.0]).mvlgamma(True)


def test_polygamma_errors():
    with pytest.raises(ValueError, match="does not support negative n, got n=-1"):
        gt.polygamma(-1, gt.tensor([1.0]))
    with pytest.raises(TypeError, match="n must be an int, got 1.0"):
        gt.tensor([1.0]).polygamma(1.0)
    with pytest.raises(TypeError, match=r"argument 'input' must be a tensor or an array, not float \(2.0\)"):
        gt.special.gammaln(2.0)
    with pytest.raises(TypeError, match="zeta: expected at least one tensor, got float and int"):
        gt.special.zeta(2.0, 1)
    with pytest.raises(ValueError, match="zeta"):
        gt.special.zeta(gt.ones(3), gt.ones(2))
    with pytest.raises(ValueError, match="special_math: unknown function 'gamma'"):
        B.special_math("gamma", B.asarray([1.0]))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_logaddexp2_is_torchs(dtype):
    torch = torch_or_skip()
    a, b = X, X[::-1] * 2
    b[3] = a[3]                                   # a tie: the gradient splits evenly
    compare_with_torch(lambda x, y: gt.logaddexp2(x, y), lambda x, y: torch.logaddexp2(x, y), a, b, dtype=dtype)
    compare_with_torch(lambda x, y: x.logaddexp2(y), None, a, b, dtype=dtype)
    check_grad(lambda x, y: x.logaddexp2(y), a[:5], b[:5])
    edges = np.array([INF, -INF, INF, -INF, NAN, 1.0, 1e30])
    compare_with_torch(lambda x, y: x.logaddexp2(y), None, edges, edges[[0, 1, 3, 2, 5, 4, 6]], dtype=dtype,
                       grad=False)
    with pytest.raises(TypeError, match=r"logaddexp2\(\): argument 'input' \(position 1\) must be Tensor"):
        gt.logaddexp2(1.0, gt.tensor([1.0]))       # a Python number: torch's TypeError


def test_inplace_forms_are_torchs():
    torch = torch_or_skip()
    for name, args in (("lgamma", ()), ("digamma", ()), ("polygamma", (2,)), ("i0", ()), ("mvlgamma", (2,))):
        ours, theirs = gt.tensor(POS + 1.0), torch.tensor(POS + 1.0, dtype=torch.float32)
        assert getattr(ours, f"{name}_")(*args) is ours
        getattr(theirs, f"{name}_")(*args)
        np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=2e-6, err_msg=name)
    # recorded on the tape, as torch
    leaf = gt.tensor(POS, dtype=gt.float64, requires_grad=True)
    y = leaf * 1.0
    y.lgamma_()
    y.sum().backward()
    np.testing.assert_allclose(leaf.grad.numpy(), gt.tensor(POS).digamma().numpy(), rtol=1e-6)
    with pytest.raises(RuntimeError, match="result type Float can't be cast to the desired output type Long"):
        gt.tensor([1, 2]).lgamma_()


# ---- cummax / cummin -----------------------------------------------------------------------------
TIES = np.array([[1.0, 3.0, 3.0, 2.0, 5.0, 5.0, -1.0], [2.0, 2.0, 2.0, NAN, 1.0, NAN, 4.0]])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("op", ["cummax", "cummin"])
def test_cummax_cummin_are_torchs(op, dtype):
    torch = torch_or_skip()
    for dim in (0, 1, -1):
        g, t = compare_with_torch(lambda x: getattr(x, op)(dim), None, TIES, dtype=dtype, grad=False)
        np.testing.assert_array_equal(g[1].numpy(), t[1].numpy())        # the LAST index of ties, NaN's
    data = RNG.standard_normal((3, 4, 5)).round(0)                        # many ties
    for dim in (0, 1, 2, -2):
        g, t = compare_with_torch(lambda x: tuple(getattr(x, op)(dim)), None, data, dtype=dtype)
        np.testing.assert_array_equal(g[1].numpy(), t[1].numpy())
        assert g[1].dtype == gt.int64
    compare_with_torch(lambda x: getattr(gt if isinstance(x, gt.Tensor) else torch, op)(x, dim=1).values, None,
                       data, dtype=dtype)


def test_cummax_gradient_goes_to_the_index_and_names_its_fields():
    x = gt.tensor([1.0, 3.0, 3.0, 2.0], requires_grad=True)
    result = x.cummax(0)
    values, indices = result
    assert result.values is values and result.indices is indices and type(result).__name__ == "cummax"
    values.backward(gt.tensor([1.0, 10.0, 100.0, 1000.0]))
    assert x.grad.tolist() == [1.0, 10.0, 1100.0, 0.0]
    check_grad(lambda t: t.cummin(1).values, RNG.standard_normal((2, 5)))


@pytest.mark.parametrize("op", ["cummax", "cummin"])
def test_cummax_cummin_of_integers_bools_empty_and_0d(op):
    torch = torch_or_skip()
    for data in (np.array([[3, 1, 3, 7, 7, -2]]), np.array([True, False, True, False]), np.zeros((0, 3)),
                 np.zeros((2, 0))):
        ours, theirs = getattr(gt.tensor(data), op)(-1), getattr(torch.tensor(data), op)(-1)
        assert ours.values.dtype.name == str(theirs.values.dtype).replace("torch.", "")
        np.testing.assert_array_equal(ours.values.numpy(), theirs.values.numpy())
        np.testing.assert_array_equal(ours.indices.numpy(), theirs.indices.numpy())
    zero_d = getattr(gt.tensor(2.5), op)(0)
    assert zero_d.values.shape == () and zero_d.values.item() == 2.5 and zero_d.indices.item() == 0
    assert getattr(gt, op)(gt.tensor(2.5), -1).indices.shape == ()


def test_cummax_errors():
    with pytest.raises(IndexError, match="cummax: axis 2 is out of range for a tensor with 2 dimension"):
        gt.ones((2, 3)).cummax(2)
    with pytest.raises(IndexError, match="cummin: axis 1 is out of range for a tensor with 0 dimension"):
        gt.tensor(1.0).cummin(1)
    with pytest.raises(TypeError, match="cummax: axis must be an int, got None"):
        gt.ones(3).cummax(None)


# ---- the rest of torch.special: the functions gt already had, under torch's names ---------------
def test_torch_special_names_of_existing_functions():
    torch = torch_or_skip()
    s = torch.special
    for name in ("erf", "erfc", "erfinv", "exp2", "expm1", "log1p", "expit", "sinc", "psi"):
        data = P if name == "erfinv" else X
        compare_with_torch(lambda t: getattr(gt.special if isinstance(t, gt.Tensor) else s, name)(t), None, data)
    compare_with_torch(lambda t: gt.special.logit(t, eps=0.1), lambda t: s.logit(t, eps=0.1), P)
    compare_with_torch(lambda t: gt.special.round(t * 10, decimals=1), lambda t: s.round(t * 10, decimals=1), P,
                       grad=False)
    compare_with_torch(lambda a, b: gt.special.xlogy(a, b), lambda a, b: s.xlogy(a, b), X, POS)
    m = X.reshape(3, 4)
    for name in ("softmax", "log_softmax"):
        compare_with_torch(lambda t: getattr(gt.special, name)(t, 1), lambda t: getattr(s, name)(t, 1), m)
        compare_with_torch(lambda t: getattr(gt.special, name)(t, dim=0, dtype=gt.float64),
                           lambda t: getattr(s, name)(t, dim=0, dtype=torch.float64), m, dtype="float32")
    compare_with_torch(lambda t: gt.special.logsumexp(t, 1, keepdim=True), lambda t: s.logsumexp(t, 1, keepdim=True),
                       m)
    missing = {"chebyshev_polynomial_t", "chebyshev_polynomial_u", "chebyshev_polynomial_v", "chebyshev_polynomial_w",
               "hermite_polynomial_h", "hermite_polynomial_he", "laguerre_polynomial_l", "legendre_polynomial_p",
               "shifted_chebyshev_polynomial_t", "shifted_chebyshev_polynomial_u", "shifted_chebyshev_polynomial_v",
               "shifted_chebyshev_polynomial_w", "multi_dim_common", "common_args", "torch", "Tensor"}
    theirs = {n for n in dir(s) if not n.startswith("_")} - missing
    assert theirs <= set(gt.special.__all__), sorted(theirs - set(gt.special.__all__))


def test_without_scipy_the_numpy_engine_says_what_to_install(monkeypatch):
    if gt.get_backend() != "numpy":
        pytest.skip("the torch engine computes with torch.special")
    from gt.backend import numpy_special

    monkeypatch.setattr(numpy_special, "_scipy_special", None)
    monkeypatch.setitem(sys.modules, "scipy", None)
    monkeypatch.setitem(sys.modules, "scipy.special", None)
    with pytest.raises(ImportError, match=r"gammaln|lgamma: the numpy engine computes this special function with "
                                          r"scipy, which is not installed; pip install scipy"):
        gt.special.gammaln(gt.tensor([1.0]))
    with pytest.raises(ImportError, match="polygamma: .*pip install scipy"):
        gt.polygamma(1, gt.tensor([1.0]))


@pytest.mark.parametrize("n", [2, 4])
def test_sharded_inputs_stay_sharded(n):
    """The elementwise rule keeps a shard of axis 0: no collective, the values and gradients of one device."""
    ops = {"gammaln": gt.special.gammaln, "i0e": gt.special.i0e, "polygamma": lambda t: t.polygamma(1),
           "xlog1py": lambda t: gt.special.xlog1py(t, t * 2), "zeta": lambda t: gt.special.zeta(3.0, t)}
    data = np.concatenate([POS, POS * 0.5]).reshape(6, 4)
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
    with use_mesh(n):
        x = gt.tensor(data).shard(0)
        np.testing.assert_array_equal(x.cummax(0).indices.numpy(), gt.tensor(data).cummax(0).indices.numpy())
        assert math.isfinite(float(x.cummin(1).values.sum().item()))
