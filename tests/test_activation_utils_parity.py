"""Activations beside torch 2.13 at the edges a differential fuzzer found apart: the gradient at NaN
and +-inf of ELU/CELU/SELU/Hardsigmoid/Hardswish (torch's backward kernels pick a branch by
comparisons that NaN fails), and float16 GELU (tanh) on inputs whose cube overflows float16."""

import warnings

import numpy as np
import pytest

import gt
from gt.nn import functional as F
from helpers import torch_or_skip

EDGES = [np.nan, np.inf, -np.inf, -3.0, 3.0, 0.0, -0.5, 1.5, -1e30, 1e30]
FUNCS = ["elu", "celu", "selu", "hardsigmoid", "hardswish"]


def _value_and_grad(lib, fn, x, dtype, upstream):
    t = lib.tensor(x, dtype=getattr(lib, dtype), requires_grad=True)
    y = fn(t)
    y.backward(lib.tensor(upstream, dtype=getattr(lib, dtype)))
    to_np = (lambda a: a.numpy()) if lib is gt else (lambda a: a.detach().numpy())
    return to_np(y).astype(np.float64), to_np(t.grad).astype(np.float64)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", FUNCS)
def test_gradient_at_nan_and_inf_is_torchs(name, dtype):
    # torch's gradient at NaN is the scalar kernel's ("x <= 0" and "x <= 3" fail, so the upstream
    # gradient passes) only where cpu_kernel_vec takes its scalar tail: its vectorized body blends on
    # "x > 0" / "x >= 3", which NaN fails too, and takes the other branch (NaN). The body runs over
    # whole pairs of vectors: 8 doubles or 16 floats on AVX2 (an AMD EPYC), 16 or 32 on AVX-512 (an
    # Intel Xeon), so 10 float64 values put the NaN in the body on AVX2 only. Tensors of at most 5
    # values take the scalar loop on both CPU kinds, the answer gt gives (inf and -inf agree in both).
    torch = torch_or_skip()
    for part in np.array_split(np.arange(len(EDGES)), 2):
        x = np.array(EDGES)[part]
        upstream = np.linspace(0.5, 1.5, len(EDGES))[part]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)      # numpy's inf * 0 (MISSING.md)
            ours = _value_and_grad(gt, getattr(F, name), x, dtype, upstream)
        theirs = _value_and_grad(torch, getattr(torch.nn.functional, name), x, dtype, upstream)
        np.testing.assert_allclose(ours[0], theirs[0], rtol=1e-6, equal_nan=True)
        np.testing.assert_allclose(ours[1], theirs[1], rtol=1e-6, equal_nan=True)


@pytest.mark.parametrize("inplace", [False, True])
def test_elu_family_nan_gradient_in_place_and_modules(inplace):
    torch = torch_or_skip()
    x = np.array([np.nan, -1.0, 0.0, 2.0])
    for ours_mod, theirs_mod in ((gt.nn.ELU(0.5, inplace), torch.nn.ELU(0.5, inplace)),
                                 (gt.nn.CELU(2.0, inplace), torch.nn.CELU(2.0, inplace)),
                                 (gt.nn.SELU(inplace), torch.nn.SELU(inplace)),
                                 (gt.nn.Hardswish(inplace), torch.nn.Hardswish(inplace))):
        got = []
        for lib, mod in ((gt, ours_mod), (torch, theirs_mod)):
            t = lib.tensor(x, dtype=lib.float32, requires_grad=True)
            mod(t * 1).sum().backward()
            got.append(np.asarray(t.grad.numpy() if lib is gt else t.grad.numpy(), dtype=np.float64))
        np.testing.assert_allclose(got[0], got[1], rtol=1e-6, equal_nan=True, err_msg=repr(ours_mod))


def test_gelu_tanh_float16_large_inputs_are_torchs():
    torch = torch_or_skip()
    x = np.array([-1000.0, -300.0, -50.0, -3.0, 0.0, 0.7, 3.0, 50.0, 300.0, 1000.0, 65504.0])
    upstream = np.linspace(0.5, 1.5, x.size)
    fn = lambda lib: (lambda t: lib.nn.functional.gelu(t, approximate="tanh"))   # noqa: E731
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)       # no overflow in float16 any more
        ours = _value_and_grad(gt, fn(gt), x, "float16", upstream)
    theirs = _value_and_grad(torch, fn(torch), x, "float16", upstream)
    assert np.isfinite(ours[1]).all()
    np.testing.assert_allclose(ours[0], theirs[0], rtol=1e-3, atol=1e-3)
    np.testing.assert_allclose(ours[1], theirs[1], rtol=1e-3, atol=1e-3)
    y = F.gelu(gt.tensor(x, dtype=gt.float16), approximate="tanh")
    assert y.dtype == gt.float16



# float16: torch's CPU kernels compute in float32 and round once; gt's half ops rounded every step
# (celu(alpha=20) 5% off, tanh's gradient 10%) and compared with bounds rounded to float16
# (threshold(x, 0.001, v) replaced 0.001). Now the same bits as torch's ...
EXACT_HALF = [
    ("celu", dict(alpha=20.0)), ("elu", dict(alpha=20.0)), ("silu", {}), ("mish", {}), ("hardsigmoid", {}),
    ("leaky_relu", dict(negative_slope=0.3)), ("threshold", dict(threshold=0.001, value=3.3)),
    ("softshrink", dict(lambd=0.5306011)), ("softplus", dict(beta=1.7, threshold=0.001)), ("softplus", {}),
    ("tanh", {}),
]
# ... or within a unit in the last place where torch's own kernel rounds in between
CLOSE_HALF = [("selu", {}), ("tanhshrink", {})]


def _half_run(name, kw):
    torch = torch_or_skip()
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.standard_normal(300) * 3, rng.uniform(-8, 8, 300),
                        [0.001, 0.5306011, -0.5306011, 0.25, 0.5, 7.0]]).astype(np.float16)
    upstream = rng.standard_normal(x.size).astype(np.float16)
    fn = lambda lib: (lambda t: getattr(lib.nn.functional, name)(t, **kw))   # noqa: E731
    return _value_and_grad(gt, fn(gt), x, "float16", upstream), _value_and_grad(torch, fn(torch), x, "float16", upstream)


@pytest.mark.parametrize("name, kw", EXACT_HALF, ids=[f"{n}{kw}" for n, kw in EXACT_HALF])
def test_float16_is_computed_in_float32_as_torchs(name, kw):
    ours, theirs = _half_run(name, kw)
    np.testing.assert_array_equal(ours[0], theirs[0])
    np.testing.assert_array_equal(ours[1], theirs[1])


@pytest.mark.parametrize("name, kw", CLOSE_HALF, ids=[f"{n}{kw}" for n, kw in CLOSE_HALF])
def test_float16_within_one_unit_of_torchs(name, kw):
    ours, theirs = _half_run(name, kw)
    np.testing.assert_allclose(ours[0], theirs[0], rtol=2e-3, atol=1e-4)
    np.testing.assert_allclose(ours[1], theirs[1], rtol=2e-3, atol=1e-4)
    assert F.softplus(gt.tensor(np.ones(2, np.float16)), 2.0).dtype == gt.float16


ELU_FAMILY = {
    "elu": lambda F, x: F.elu(x),
    "elu alpha 2": lambda F, x: F.elu(x, 2.0),
    "elu in place": lambda F, x: F.elu(x * 1, inplace=True),
    "celu alpha 0.5": lambda F, x: F.celu(x, 0.5),
    "celu alpha -1.5": lambda F, x: F.celu(x, -1.5),
    "selu": lambda F, x: F.selu(x),
}


@pytest.mark.parametrize("name", sorted(ELU_FAMILY))
def test_elu_family_second_derivative_is_torchs_at_zero(name):
    """torch's first derivative at x == 0 takes the exponential branch, its second masks x < 0:
    0 at exactly 0 (gt's was the branch's own there). Third order and the derivative in the
    upstream gradient too, and the recorded first derivative at NaN (gt's was NaN, torch's the
    identity's)."""
    torch = torch_or_skip()
    got = []
    for lib in (gt, torch):
        x = lib.tensor([-1.0, -0.0, 0.0, 0.5], dtype=lib.float64, requires_grad=True)
        up = lib.tensor([1.0, 2.0, 3.0, 4.0], dtype=lib.float64, requires_grad=True)
        fn = getattr(lib.nn, "functional")
        g, = lib.autograd.grad(ELU_FAMILY[name](fn, x), x, up, create_graph=True)
        h, g_up = lib.autograd.grad(g.sum(), (x, up), create_graph=True)
        third, = lib.autograd.grad((h * h).sum(), x)
        at_nan = lib.tensor([np.nan, -2.0], dtype=lib.float64, requires_grad=True)    # the recorded first derivative
        g_nan, = lib.autograd.grad(ELU_FAMILY[name](fn, at_nan).sum(), at_nan, create_graph=True)
        got.append([t.detach().numpy() for t in (g, h, g_up, third, g_nan)])
    for ours, theirs in zip(*got):
        np.testing.assert_allclose(ours, theirs, rtol=1e-12, equal_nan=True)
