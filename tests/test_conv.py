"""Convolution and pooling (gt/ops/conv.py, gt/nn/conv_functions.py, gt/nn/conv.py,
gt/nn/pooling.py), each run beside torch on the same values: outputs, dtypes, shapes and every
input's gradient, in float32 and float64; the errors; and one SGD step of a tiny CNN."""

import math

import numpy as np
import pytest

import gt
from gt import nn
from gt.backend import B
from gt.backend.engine_defaults import FastPaths
from gt.nn import functional as F
from helpers import check_grad, compare_with_torch, randn, torch_or_skip, torch_twin

DTYPES = ["float32", "float64"]


def _in_both_dtypes(cases, float32_too):
    """Every case in float64; the cases at the positions ``float32_too`` in float32 as well (the
    suite's time budget: float32 takes the same code paths)."""
    return ([pytest.param(*c, "float64") for c in cases]
            + [pytest.param(*cases[i], "float32") for i in float32_too])


def _tf():
    return torch_or_skip().nn.functional


# name -> (keyword arguments, input shape, weight shape); conv2d unless the shapes say otherwise
CONVS = {
    "plain": (dict(), (2, 3, 6, 5), (4, 3, 3, 3)),
    "padding 1, bias": (dict(padding=1, bias=True), (4, 3, 5, 5), (2, 3, 3, 3)),
    "stride 2, padding pair": (dict(stride=2, padding=(1, 0), bias=True), (2, 2, 7, 6), (3, 2, 3, 2)),
    "dilation 2": (dict(dilation=2, padding=2), (2, 2, 7, 7), (3, 2, 3, 3)),
    "groups 2": (dict(groups=2, bias=True), (2, 4, 5, 5), (6, 2, 3, 3)),
    "depthwise, stride pair": (dict(groups=4, stride=(2, 1), padding=1), (2, 4, 6, 5), (4, 1, 3, 3)),
    "same, even kernel": (dict(padding="same", bias=True), (2, 2, 5, 6), (3, 2, 2, 4)),
    "same, dilated": (dict(padding="same", dilation=(2, 1)), (2, 2, 6, 5), (2, 2, 3, 3)),
    "valid": (dict(padding="valid"), (2, 2, 4, 4), (2, 2, 4, 4)),
    "1x1": (dict(bias=True), (3, 5, 2, 3), (4, 5, 1, 1)),
    "unbatched": (dict(padding=1, bias=True), (3, 4, 5), (2, 3, 3, 3)),
    "conv1d": (dict(stride=2, padding=2, bias=True), (2, 3, 9), (4, 3, 3)),
    "conv1d same, groups": (dict(padding="same", groups=3), (2, 3, 8), (6, 1, 4)),
    "conv1d unbatched": (dict(dilation=3), (2, 10), (3, 2, 3)),
    "conv3d": (dict(padding=(1, 0, 1), stride=(1, 2, 1), bias=True), (2, 2, 4, 5, 3), (3, 2, 2, 3, 3)),
}


def _conv_fn(weight_shape):
    return {3: "conv1d", 4: "conv2d", 5: "conv3d"}[len(weight_shape)]


@pytest.mark.filterwarnings("ignore:Using padding='same'")     # torch's, about its own padded copy
@pytest.mark.parametrize("name,dtype", _in_both_dtypes([(n,) for n in CONVS], (0, 2, 4, 6, 10, 11, 14)))
def test_conv_matches_torch(name, dtype):
    kwargs, xs, ws = CONVS[name]
    kwargs, fn = dict(kwargs), _conv_fn(ws)
    arrays = [randn(*xs, seed=1), randn(*ws, seed=2)]
    if kwargs.pop("bias", False):
        arrays.append(randn(ws[0], seed=3))
    tf = _tf()
    g_out, _ = compare_with_torch(lambda *a: getattr(F, fn)(*a, **kwargs), lambda *a: getattr(tf, fn)(*a, **kwargs),
                                  *arrays, dtype=dtype)
    assert g_out[0].dtype == getattr(gt, dtype)


def test_conv_gradients_match_finite_differences():
    check_grad(lambda x, w, b: F.conv2d(x, w, b, stride=(2, 1), padding=(1, 2), groups=2),
               randn(1, 2, 4, 3, seed=4), randn(4, 1, 2, 3, seed=5), randn(4, seed=6))


def test_conv_of_integers_and_of_an_empty_batch_match_torch():
    torch = torch_or_skip()
    x, w = np.arange(2 * 3 * 4 * 4).reshape(2, 3, 4, 4) % 7 - 3, np.arange(2 * 3 * 2 * 2).reshape(2, 3, 2, 2) % 5 - 2
    out = F.conv2d(gt.tensor(x), gt.tensor(w), stride=2)
    assert out.dtype == gt.int64
    np.testing.assert_array_equal(out.numpy(), _tf().conv2d(torch.tensor(x), torch.tensor(w), stride=2).numpy())
    empty = F.conv2d(gt.zeros(0, 3, 5, 5), gt.zeros(4, 3, 3, 3), padding=1)
    assert empty.shape == (0, 4, 5, 5)


def test_the_composed_paths_match_torch_without_the_engine_kernels(monkeypatch):
    # the torch engine runs torch's kernels: here its composed im2col and window paths run too
    monkeypatch.setattr(B, "conv_fused", lambda *a, **k: None)
    monkeypatch.setattr(B, "max_pool_fused", lambda *a, **k: None)
    tf = _tf()
    compare_with_torch(lambda x, w, b: F.conv2d(x, w, b, stride=2, padding=1, groups=2),
                       lambda x, w, b: tf.conv2d(x, w, b, stride=2, padding=1, groups=2),
                       randn(2, 4, 5, 6, seed=7), randn(4, 2, 3, 3, seed=8), randn(4, seed=9))
    compare_with_torch(lambda x: F.max_pool2d(x, 3, 2, 1), lambda x: tf.max_pool2d(x, 3, 2, 1), randn(2, 3, 6, 7))


def test_the_window_and_kernel_primitives_are_optional_fast_paths_with_docstrings():
    from gt.backend.engine import Engine

    for name in ("windows", "fold_windows", "conv_fused", "conv_fused_backward", "max_pool_fused",
                 "max_pool_fused_backward"):
        assert name not in Engine.__abstractmethods__ and name in vars(FastPaths), name
        assert getattr(Engine, name).__doc__, name


def test_the_default_windows_and_fold_equal_the_engines():
    rng = np.random.default_rng(0)
    x = B.asarray(rng.standard_normal((2, 3, 7, 6)))
    plain, args = FastPaths(), ((3, 2), (2, 1), (1, 2))
    plain.getitem, plain.stack, plain.reshape = B.getitem, B.stack, B.reshape
    plain.zeros, plain.dtype_of, plain.index_add = B.zeros, B.dtype_of, B.index_add
    win = B.windows(x, *args)
    assert tuple(win.shape) == (2, 3, 3, 4, 3, 2)
    np.testing.assert_array_equal(B.to_numpy(plain.windows(x, *args)), B.to_numpy(win))
    # element [o, k] is x[o * stride + k * dilation]
    assert B.to_numpy(win)[1, 2, 2, 3, 1, 1] == B.to_numpy(x)[1, 2, 2 * 2 + 1, 3 + 2]
    cols = B.asarray(rng.standard_normal((2, 3, 3, 4, 3, 2)))
    folded = B.to_numpy(plain.fold_windows(cols, (7, 6), (2, 1), (1, 2)))
    # the adjoint of windows: <windows(x), cols> == <x, fold(cols)>
    assert np.isclose(np.sum(B.to_numpy(win) * B.to_numpy(cols)), np.sum(B.to_numpy(x) * folded))


CONV_ERRORS = [
    (dict(x=(2, 4, 5, 5), w=(3, 3, 3, 3)), ValueError, r"expects an input with 3 channels, but the input of shape "
                                                       r"\(2, 4, 5, 5\) has 4 channels"),
    (dict(x=(2, 3, 2, 2), w=(3, 3, 3, 3)), ValueError, r"can't be larger than the padded input \(size \(2, 2\)"),
    (dict(x=(1, 3, 4, 4), w=(3, 3, 3, 3), dilation=2), ValueError, r"it spans \(5, 5\)"),
    (dict(x=(2, 4, 5, 5), w=(3, 2, 3, 3), groups=2), ValueError, r"3 output channels, not divisible by groups=2"),
    (dict(x=(2, 3, 5, 5), w=(4, 1, 3, 3), groups=2), ValueError, r"given groups=2.*expects an input with 2 channels"),
    (dict(x=(2, 3, 5, 5), w=(3, 3, 3, 3), groups=0), ValueError, r"groups must be a positive int, got 0"),
    (dict(x=(2, 3, 5, 5), w=(3, 3, 3, 3), padding="full"), ValueError, r"invalid padding string 'full'"),
    (dict(x=(2, 3, 5, 5), w=(3, 3, 3, 3), padding="same", stride=2), ValueError, r"not supported for strided"),
    (dict(x=(2, 3, 5, 5), w=(3, 3, 3, 3), padding=-1), ValueError, r"padding must be an int or a tuple of 2 ints, each "
                                                                   r"at least 0, got -1"),
    (dict(x=(2, 3, 5, 5), w=(3, 3, 3, 3), stride=(1, 0)), ValueError, r"stride must be .* at least 1, got \(1, 0\)"),
    (dict(x=(2, 3, 5, 5), w=(3, 3, 3, 3), stride=(1, 1, 1)), ValueError, r"stride must be an int or a tuple of 2"),
    (dict(x=(3, 5, 5), w=(3, 3, 3)), ValueError,
     r"weight must be 4-D \(out_channels, in_channels / groups, \*kernel\)"),
    (dict(x=(5, 5), w=(3, 3, 3, 3)), ValueError, r"expected a 3-D \(unbatched\) or 4-D \(batched\) input, got input "
                                                 r"of shape \(5, 5\)"),
    (dict(x=(2, 3, 5, 5), w=(3, 3, 3, 3), b=(4,)), ValueError, r"bias must have shape \(3,\), got \(4,\)"),
]


@pytest.mark.parametrize("case,exc,match", CONV_ERRORS)
def test_conv_errors_name_the_problem(case, exc, match):
    case = dict(case)
    x, w, b = gt.zeros(*case.pop("x")), gt.zeros(*case.pop("w")), case.pop("b", None)
    with pytest.raises(exc, match=match):
        F.conv2d(x, w, None if b is None else gt.zeros(*b), **case)


def test_conv_refuses_mixed_dtypes_and_bool():
    with pytest.raises(RuntimeError, match=r"^expected scalar type Float but found Double$"):     # torch's words
        F.conv2d(gt.zeros(1, 1, 3, 3), gt.zeros(1, 1, 2, 2, dtype=gt.float64))
    with pytest.raises(NotImplementedError, match="\"slow_conv2d_cpu\" not implemented for 'Bool'"):
        F.conv1d(gt.zeros(1, 1, 3, dtype=gt.bool), gt.zeros(1, 1, 2, dtype=gt.bool))


# ---- modules ----------------------------------------------------------------------------------
def _copy_weights(torch_module, module):
    module.load_state_dict({k: v.detach().numpy() for k, v in torch_module.state_dict().items()})


@pytest.mark.parametrize("cls,kwargs,shape", [
    ("Conv2d", dict(in_channels=4, out_channels=6, kernel_size=3, stride=2, padding=1, groups=2), (2, 4, 7, 6)),
    ("Conv2d", dict(in_channels=2, out_channels=3, kernel_size=(2, 3), padding="same", bias=False), (2, 2, 5, 5)),
    ("Conv2d", dict(in_channels=2, out_channels=3, kernel_size=3, padding=(1, 2), padding_mode="reflect"),
     (2, 2, 5, 5)),
    ("Conv2d", dict(in_channels=2, out_channels=3, kernel_size=2, padding="same", padding_mode="replicate"), (2, 5, 5)),
    ("Conv1d", dict(in_channels=3, out_channels=2, kernel_size=3, padding=2, padding_mode="circular"), (2, 3, 6)),
    ("Conv1d", dict(in_channels=3, out_channels=4, kernel_size=2, dilation=2), (2, 3, 6)),
])
def test_conv_modules_match_torch_with_torchs_weights(cls, kwargs, shape):
    ref, module = torch_twin(cls, kwargs)
    _copy_weights(ref, module)
    x = randn(*shape, seed=3)
    compare_with_torch(lambda a: module(a), lambda a: ref(a), x)
    for (name, p), (_, q) in zip(module.named_parameters(), ref.named_parameters()):
        np.testing.assert_allclose(p.grad.numpy(), q.grad.numpy(), rtol=1e-5, atol=1e-8, err_msg=name)


def test_conv_module_initialisation_follows_torch():
    gt.manual_seed(0)
    conv = nn.Conv2d(4, 8, kernel_size=(3, 2), groups=2)
    assert conv.weight.shape == (8, 2, 3, 2) and conv.bias.shape == (8,) and conv.weight.dtype == gt.float32
    bound = 1 / math.sqrt(2 * 3 * 2)          # fan_in = in_channels / groups * kernel elements
    for p in (conv.weight, conv.bias):
        values = p.numpy()
        assert values.min() >= -bound and values.max() <= bound and values.std() > bound / 3
    assert conv.stride == (1, 1) and conv.padding == (0, 0) and conv.dilation == (1, 1)
    assert nn.Conv1d(2, 3, 3, bias=False).bias is None


@pytest.mark.parametrize("kwargs,match", [
    (dict(groups=3), r"in_channels \(4\) and out_channels \(6\) must be divisible by groups \(3\)"),
    (dict(padding="half"), r"invalid padding string 'half'"),
    (dict(padding="same", stride=2), r"not supported for strided convolutions"),
    (dict(padding_mode="mirror"), r"padding_mode must be one of \['zeros', 'reflect', 'replicate', 'circular'\], "
                                  r"but got padding_mode='mirror'"),
    (dict(kernel_size=0), r"kernel_size must be an int or a tuple of 2 ints, each at least 1, got 0"),
])
def test_conv_module_errors(kwargs, match):
    args = dict(in_channels=4, out_channels=6, kernel_size=3)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        nn.Conv2d(**args)


# ---- pooling ----------------------------------------------------------------------------------
MAX_POOLS = [
    ("max_pool2d", dict(kernel_size=2), (2, 3, 6, 7)),
    ("max_pool2d", dict(kernel_size=3, stride=2, padding=1), (4, 2, 7, 6)),
    ("max_pool2d", dict(kernel_size=(3, 2), stride=(2, 1), padding=(1, 0), ceil_mode=True), (2, 2, 6, 5)),
    ("max_pool2d", dict(kernel_size=2, stride=2, ceil_mode=True), (2, 2, 5, 7)),
    ("max_pool2d", dict(kernel_size=2, dilation=2, padding=1), (2, 2, 6, 6)),
    ("max_pool2d", dict(kernel_size=2), (3, 4, 4)),
    ("max_pool1d", dict(kernel_size=3, stride=2, padding=1, ceil_mode=True), (2, 3, 8)),
    ("max_pool1d", dict(kernel_size=2), (3, 7)),
]


@pytest.mark.parametrize("fn,kwargs,shape,dtype", _in_both_dtypes(MAX_POOLS, (1, 2, 6)))
def test_max_pool_matches_torch(fn, kwargs, shape, dtype):
    tf = _tf()
    compare_with_torch(lambda x: getattr(F, fn)(x, **kwargs), lambda x: getattr(tf, fn)(x, **kwargs),
                       randn(*shape, seed=len(shape)), dtype=dtype)


def test_max_pool_ties_and_nans_send_the_gradient_where_torch_does():
    # ties: the first largest value of the window (row-major); NaN: the window's last NaN
    ties = np.array([[[[1.0, 3.0, 3.0, 0.0, 2.0, 2.0], [3.0, 2.0, 1.0, 3.0, 2.0, 2.0]]]])
    tf = _tf()
    compare_with_torch(lambda x: F.max_pool2d(x, 2), lambda x: tf.max_pool2d(x, 2), ties)
    compare_with_torch(lambda x: F.max_pool2d(x, 2, 1), lambda x: tf.max_pool2d(x, 2, 1), ties, dtype="float32")
    nan = float("nan")
    nans = np.array([[[[nan, 3.0, 3.0, nan, 1.0, 2.0], [nan, 2.0, 1.0, 3.0, -np.inf, np.inf]]]])
    torch = torch_or_skip()
    x, tx = gt.tensor(nans, requires_grad=True), torch.tensor(nans, requires_grad=True)
    out, tout = F.max_pool2d(x, 2), tf.max_pool2d(tx, 2)
    np.testing.assert_array_equal(out.numpy(), tout.detach().numpy())
    out.sum().backward()
    tout.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), tx.grad.numpy())
    # a window of nothing but -inf inside the input ties with its padding: the input's first wins
    inf = np.array([[[[-np.inf, -np.inf, 1.0], [-np.inf, -np.inf, 2.0], [0.0, 0.0, 0.0]]]])
    compare_with_torch(lambda x: F.max_pool2d(x, 2, 2, padding=1), lambda x: tf.max_pool2d(x, 2, 2, padding=1),
                       inf)


def test_max_pool_of_integers_matches_torch():
    torch = torch_or_skip()
    x = np.arange(2 * 5 * 6).reshape(1, 2, 5, 6) * 7 % 11 - 5
    out = F.max_pool2d(gt.tensor(x), 3, 2, padding=1)
    assert out.dtype == gt.int64
    np.testing.assert_array_equal(out.numpy(), _tf().max_pool2d(torch.tensor(x), 3, 2, padding=1).numpy())


AVG_POOLS = [
    ("avg_pool2d", dict(kernel_size=2), (2, 3, 6, 7)),
    ("avg_pool2d", dict(kernel_size=3, stride=2, padding=1), (4, 2, 7, 6)),
    ("avg_pool2d", dict(kernel_size=3, stride=2, padding=1, count_include_pad=False), (2, 2, 7, 6)),
    ("avg_pool2d", dict(kernel_size=(3, 2), stride=2, padding=(1, 1), ceil_mode=True), (2, 2, 6, 5)),
    ("avg_pool2d", dict(kernel_size=3, stride=2, padding=1, ceil_mode=True, count_include_pad=False), (2, 1, 6, 6)),
    ("avg_pool2d", dict(kernel_size=3, stride=2, ceil_mode=True), (2, 2, 6, 8)),
    ("avg_pool2d", dict(kernel_size=3, padding=1, divisor_override=4), (2, 2, 5, 5)),
    ("avg_pool2d", dict(kernel_size=2, stride=1), (3, 4, 4)),
    ("avg_pool1d", dict(kernel_size=3, stride=2, padding=1, ceil_mode=True, count_include_pad=False), (2, 3, 8)),
    ("adaptive_avg_pool2d", dict(output_size=1), (2, 3, 5, 4)),
    ("adaptive_avg_pool2d", dict(output_size=(2, 3)), (2, 3, 4, 6)),
    ("adaptive_avg_pool2d", dict(output_size=(3, 4)), (2, 3, 5, 7)),
    ("adaptive_avg_pool2d", dict(output_size=(None, 3)), (3, 5, 7)),
    ("adaptive_avg_pool2d", dict(output_size=6), (1, 2, 4, 5)),
    ("adaptive_avg_pool1d", dict(output_size=3), (2, 3, 7)),
]


@pytest.mark.parametrize("fn,kwargs,shape,dtype", _in_both_dtypes(AVG_POOLS, (1, 4, 6, 8, 11, 14)))
def test_avg_pools_match_torch(fn, kwargs, shape, dtype):
    tf = _tf()
    compare_with_torch(lambda x: getattr(F, fn)(x, **kwargs), lambda x: getattr(tf, fn)(x, **kwargs),
                       randn(*shape, seed=len(shape)), dtype=dtype)


def test_pools_of_an_empty_batch_have_empty_gradients():
    x = gt.zeros(0, 3, 6, 6, requires_grad=True)
    for pool, shape in [(lambda t: F.max_pool2d(t, 2), (0, 3, 3, 3)), (lambda t: F.avg_pool2d(t, 3, 2, 1), (0, 3, 3, 3)),
                        (lambda t: F.adaptive_avg_pool2d(t, (4, 5)), (0, 3, 4, 5))]:
        out = pool(x)
        assert out.shape == shape
        out.sum().backward()
        assert x.grad.shape == (0, 3, 6, 6)


def test_pool_gradients_match_finite_differences():
    x = np.random.default_rng(3).permutation(36).reshape(1, 1, 6, 6) * 0.1   # no ties
    check_grad(lambda t: F.max_pool2d(t, 3, 2, padding=1, ceil_mode=True), x)
    check_grad(lambda t: F.avg_pool2d(t, 3, 2, padding=1, count_include_pad=False, ceil_mode=True), x)
    check_grad(lambda t: F.adaptive_avg_pool2d(t, (4, 5)), x)


@pytest.mark.parametrize("cls,kwargs,shape", [
    ("MaxPool2d", dict(kernel_size=3, stride=2, padding=1, ceil_mode=True), (2, 3, 6, 7)),
    ("MaxPool1d", dict(kernel_size=2), (2, 3, 6)),
    ("AvgPool2d", dict(kernel_size=2, stride=1, padding=1, count_include_pad=False), (2, 3, 5, 4)),
    ("AvgPool1d", dict(kernel_size=3, padding=1), (2, 3, 6)),
    ("AdaptiveAvgPool2d", dict(output_size=(3, 2)), (2, 3, 7, 5)),
    ("AdaptiveAvgPool1d", dict(output_size=4), (2, 3, 6)),
])
def test_pool_modules_match_torch(cls, kwargs, shape):
    torch = torch_or_skip()
    ref, module = getattr(torch.nn, cls)(**kwargs), getattr(nn, cls)(**kwargs)
    assert repr(module) == repr(ref)
    compare_with_torch(lambda a: module(a), lambda a: ref(a), randn(*shape, seed=2))


POOL_ERRORS = [
    (lambda: F.max_pool2d(gt.zeros(1, 1, 6, 6), 2, padding=2), ValueError,
     r"max_pool2d: padding should be at most half of the kernel size, got padding=\(2, 2\)"),
    (lambda: F.avg_pool2d(gt.zeros(1, 1, 6, 6), 3, padding=2), ValueError, r"avg_pool2d: padding should be at most"),
    (lambda: F.max_pool2d(gt.zeros(1, 1, 2, 2), 3), ValueError,
     r"input of shape \(1, 1, 2, 2\) is too small for kernel_size=\(3, 3\).* output size would be 0"),
    (lambda: F.max_pool2d(gt.zeros(1, 1, 1, 4, 4), 2), ValueError,
     r"expected a 3-D \(unbatched\) or 4-D \(batched\) input, got input of shape \(1, 1, 1, 4, 4\)"),
    (lambda: F.max_pool2d(gt.zeros(1, 1, 4, 4), (2, 2, 2)), ValueError,
     r"kernel_size must be an int or a tuple of 2 ints"),
    (lambda: F.avg_pool2d(gt.tensor([[[True, False], [True, True]]]), 2), NotImplementedError,
     r"not implemented for gt.bool"),
    (lambda: F.avg_pool2d(gt.zeros(1, 4, 4), 2, divisor_override=0), ValueError,
     r"divisor_override must be a non-zero"),
    (lambda: F.adaptive_avg_pool2d(gt.zeros(1, 4, 4), (2, -1)), ValueError,
     r"output_size must be an int or a tuple of 2"),
    (lambda: F.max_pool1d(gt.zeros(2, 3, dtype=gt.bool), 2), TypeError, r"bool input is not supported"),
]


@pytest.mark.parametrize("call,exc,match", POOL_ERRORS)
def test_pool_errors_name_the_problem(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


# ---- sharded over a mesh -----------------------------------------------------------------------
@pytest.mark.own_mesh
@pytest.mark.parametrize("copies", [False, True], ids=["shared", "copies"])
def test_a_batch_sharded_over_devices_stays_sharded_and_gives_the_same_values(copies):
    from gt.sharding.collectives import count_collectives
    from gt.sharding.mesh import use_mesh
    from gt.sharding.placement import Shard

    x, w, b = randn(5, 2, 6, 6, seed=1), randn(4, 1, 3, 3, seed=2), randn(4, seed=3)

    def run():
        weight, bias = gt.tensor(w, requires_grad=True), gt.tensor(b, requires_grad=True)
        xs = gt.tensor(x)                                      # data: sharded along the batch on a mesh
        with count_collectives() as counts:
            h = F.conv2d(xs, weight, bias, padding=1, groups=2)
            h = F.avg_pool2d(F.max_pool2d(h, 2, ceil_mode=True), 2, padding=1)
        placement = h.placement
        h.sum().backward()
        return placement, counts, [t.numpy() for t in (h, weight.grad, bias.grad)]

    _, _, want = run()
    with use_mesh(3, copies=copies):
        placement, counts, got = run()
    assert placement == Shard(0) and counts["all_gather"] == 0     # no gather on the way (replicas broadcast)
    for a, e in zip(got, want):
        np.testing.assert_allclose(a, e, rtol=1e-10, atol=1e-12)


# ---- a tiny CNN ---------------------------------------------------------------------------------
def _tiny_cnn(lib):
    return lib.Sequential(lib.Conv2d(2, 4, 3, padding=1), lib.BatchNorm2d(4), lib.ReLU(), lib.MaxPool2d(2),
                          lib.Conv2d(4, 6, 3, stride=2, padding="valid", groups=2),
                          lib.ReLU(), lib.AvgPool2d(2, ceil_mode=True), lib.AdaptiveAvgPool2d(1), lib.Flatten(),
                          lib.Linear(6, 3))


@pytest.mark.parametrize("dtype", DTYPES)
def test_one_sgd_step_of_a_tiny_cnn_equals_torchs(dtype):
    torch = torch_or_skip()
    torch.manual_seed(0)
    ref, model = _tiny_cnn(torch.nn).to(getattr(torch, dtype)), _tiny_cnn(nn).to(getattr(gt, dtype))
    _copy_weights(ref, model)
    tol = dict(rtol=1e-9, atol=1e-12) if dtype == "float64" else dict(rtol=2e-4, atol=1e-5)
    x, y = randn(4, 2, 10, 10, seed=5).astype(dtype), np.array([0, 2, 1, 2])
    loss = F.cross_entropy(model(gt.tensor(x)), gt.tensor(y))
    tloss = torch.nn.functional.cross_entropy(ref(torch.tensor(x)), torch.tensor(y))
    np.testing.assert_allclose(loss.item(), tloss.item(), **tol)
    loss.backward()
    tloss.backward()
    gt.optim.SGD(model.parameters(), lr=0.5).step()
    with torch.no_grad():            # torch.optim.SGD's plain step (importing torch.optim takes seconds)
        for p in ref.parameters():
            p -= 0.5 * p.grad
    want = ref.state_dict()
    for name, value in model.state_dict().items():
        assert value.dtype == want[name].numpy().dtype, name
        np.testing.assert_allclose(value, want[name].numpy(), err_msg=name, **tol)
