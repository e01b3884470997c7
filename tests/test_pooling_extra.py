"""The rest of the pooling family (gt/nn/pooling_functions.py, gt/nn/pooling_extra.py,
gt/ops/pool_indices.py): 3-d max and average pooling, adaptive max pooling, ``return_indices``
and max unpooling, each run beside torch on the same values: outputs, int64 indices, dtypes and
every input's gradient (ties and NaN routed as torch routes them), float32 and float64; errors."""

import numpy as np
import pytest

import gt
from gt import nn
from gt.nn import functional as F
from helpers import check_grad, compare_with_torch, randn, torch_or_skip


def _tf():
    return torch_or_skip().nn.functional


def _both(cases, float32_too):
    """Every case in float64, those at ``float32_too`` in float32 too (the suite's time budget)."""
    return ([pytest.param(*c, "float64") for c in cases]
            + [pytest.param(*cases[i], "float32") for i in float32_too])


# (function, keyword arguments, input shape): with return_indices=True, values and indices
MAX_POOLS = [
    ("max_pool1d", dict(kernel_size=2), (2, 3, 7)),
    ("max_pool1d", dict(kernel_size=3, stride=2, padding=1, ceil_mode=True), (2, 2, 8)),
    ("max_pool1d", dict(kernel_size=2, dilation=2, stride=1), (2, 6)),
    ("max_pool2d", dict(kernel_size=2), (2, 2, 4, 5)),
    ("max_pool2d", dict(kernel_size=3, stride=2, padding=1), (1, 2, 5, 6)),
    ("max_pool2d", dict(kernel_size=(3, 2), stride=(2, 1), padding=(1, 1), ceil_mode=True), (1, 2, 6, 5)),
    ("max_pool2d", dict(kernel_size=2, stride=1, dilation=2, padding=1), (2, 5, 5)),
    ("max_pool3d", dict(kernel_size=2), (1, 2, 4, 4, 5)),
    ("max_pool3d", dict(kernel_size=3, stride=2, padding=1, ceil_mode=True), (1, 2, 5, 4, 6)),
    ("max_pool3d", dict(kernel_size=(2, 3, 2), stride=1, dilation=(1, 1, 2)), (2, 3, 4, 5)),
]


@pytest.mark.parametrize("fn,kwargs,shape,dtype", _both(MAX_POOLS, (5, 8)))
def test_max_pools_with_indices_match_torch(fn, kwargs, shape, dtype):
    tf = _tf()
    (_, idx), (_, tidx) = compare_with_torch(
        lambda x: getattr(F, fn)(x, return_indices=True, **kwargs),
        lambda x: getattr(tf, fn)(x, return_indices=True, **kwargs), randn(*shape, seed=len(shape)), dtype=dtype)
    assert idx.dtype == gt.int64
    np.testing.assert_array_equal(idx.numpy(), tidx.numpy())


@pytest.mark.parametrize("nd", [1, 2, 3])
def test_the_with_indices_names_and_3d_pool_without_indices_match_torch(nd):
    tf, shape = _tf(), (2, 2) + (5,) * nd
    for name in (f"max_pool{nd}d_with_indices", f"adaptive_max_pool{nd}d_with_indices"):
        arg = 3 if name.startswith("max") else 2
        compare_with_torch(lambda x: getattr(F, name)(x, arg), lambda x: getattr(tf, name)(x, arg),
                           randn(*shape, seed=nd))
    if nd == 3:
        compare_with_torch(lambda x: F.max_pool3d(x, 2, 1, 1), lambda x: tf.max_pool3d(x, 2, 1, 1),
                           randn(*shape, seed=4), dtype="float32")


@pytest.mark.filterwarnings("ignore:invalid value encountered")    # the helper's sum of NaN * upstream
def test_ties_nans_and_infs_get_torchs_indices_and_gradients():
    tf, nan, inf = _tf(), float("nan"), float("inf")
    ties = np.array([[[[1.0, 3.0, 3.0, 0.0, 2.0, 2.0], [3.0, 2.0, 1.0, 3.0, 2.0, 2.0],
                       [3.0, 3.0, 0.0, 0.0, 2.0, 2.0]]]])
    nans = np.array([[[[nan, 3.0, 3.0, nan, 1.0, 2.0], [nan, 2.0, 1.0, 3.0, -inf, inf],
                       [1.0, nan, 0.0, 0.0, nan, nan]]]])
    lows = np.array([[[[-inf, -inf, 1.0], [-inf, -inf, 2.0], [-inf, 0.0, -inf]]]])  # ties with the padding
    edge = np.array([[[[5.0, 5.0, 0.0], [0.0, 1.0, 0.0], [5.0, 0.0, 5.0]]]])      # ties beside the padding
    calls = [("max_pool2d", (2,), {}), ("max_pool2d", (2, 1), {}), ("max_pool2d", (3, 2), dict(padding=1)),
             ("max_pool3d", ((1, 2, 2), 1), {}), ("adaptive_max_pool2d", ((2, 4),), {}),
             ("adaptive_max_pool1d", (4,), {})]
    for x in (ties, nans, lows, edge):
        for fn, args, kwargs in calls:
            x_in = x[0] if fn.endswith("1d") else x                  # 3-d: (C, D, H, W); 1-d: (N, C, L)
            (_, idx), (_, tidx) = compare_with_torch(
                lambda t: getattr(F, fn)(t, *args, return_indices=True, **kwargs),
                lambda t: getattr(tf, fn)(t, *args, return_indices=True, **kwargs), x_in)
            np.testing.assert_array_equal(idx.numpy(), tidx.numpy(), err_msg=f"{fn}{args}")


def test_max_pool_with_indices_of_integers_and_of_an_empty_batch():
    torch = torch_or_skip()
    x = np.arange(2 * 5 * 6).reshape(1, 2, 5, 6) * 7 % 11 - 5
    out, idx = F.max_pool2d(gt.tensor(x), 3, 2, padding=1, return_indices=True)
    tout, tidx = _tf().max_pool2d(torch.tensor(x), 3, 2, padding=1, return_indices=True)
    assert out.dtype == gt.int64
    np.testing.assert_array_equal(out.numpy(), tout.numpy())
    np.testing.assert_array_equal(idx.numpy(), tidx.numpy())
    e = gt.zeros(0, 3, 4, 4, 4, requires_grad=True)
    for pool in (lambda t: F.max_pool3d(t, 2, return_indices=True), lambda t: F.adaptive_max_pool3d(t, 3, True)):
        out, idx = pool(e)
        assert out.shape[:2] == idx.shape[:2] == (0, 3) and idx.dtype == gt.int64
        out.sum().backward()
        assert e.grad.shape == (0, 3, 4, 4, 4)


# (function, keyword arguments, input shape)
AVG_AND_ADAPTIVE = [
    ("avg_pool3d", dict(kernel_size=2), (2, 2, 4, 4, 5)),
    ("avg_pool3d", dict(kernel_size=3, stride=2, padding=1, count_include_pad=False), (1, 2, 5, 4, 5)),
    ("avg_pool3d", dict(kernel_size=(3, 2, 3), stride=2, padding=(1, 1, 0), ceil_mode=True), (1, 2, 6, 5, 4)),
    ("avg_pool3d", dict(kernel_size=3, padding=1, divisor_override=5), (2, 4, 4, 3)),
    ("adaptive_avg_pool3d", dict(output_size=1), (2, 2, 3, 4, 5)),
    ("adaptive_avg_pool3d", dict(output_size=(3, 2, 4)), (1, 2, 5, 4, 7)),
    ("adaptive_avg_pool3d", dict(output_size=(None, 3, 2)), (2, 4, 5, 3)),
    ("adaptive_max_pool1d", dict(output_size=3, return_indices=True), (2, 3, 7)),
    ("adaptive_max_pool2d", dict(output_size=(3, 4), return_indices=True), (1, 2, 5, 7)),
    ("adaptive_max_pool2d", dict(output_size=(None, 2), return_indices=True), (2, 4, 5)),
    ("adaptive_max_pool2d", dict(output_size=6), (1, 2, 4, 5)),
    ("adaptive_max_pool3d", dict(output_size=(2, 3, 2), return_indices=True), (1, 2, 3, 5, 4)),
    ("adaptive_max_pool3d", dict(output_size=2), (2, 4, 4, 4)),
]


@pytest.mark.parametrize("fn,kwargs,shape,dtype", _both(AVG_AND_ADAPTIVE, (2, 8, 11)))
def test_3d_average_and_adaptive_pools_match_torch(fn, kwargs, shape, dtype):
    tf = _tf()
    gout, tout = compare_with_torch(lambda x: getattr(F, fn)(x, **kwargs), lambda x: getattr(tf, fn)(x, **kwargs),
                                    randn(*shape, seed=len(shape)), dtype=dtype)
    if kwargs.get("return_indices"):
        np.testing.assert_array_equal(gout[1].numpy(), tout[1].numpy())


# sized: output_size= the input's size (the default may be smaller: then some maxima fall outside)
@pytest.mark.parametrize("nd,kwargs,shape,sized", [
    (1, dict(kernel_size=2), (2, 3, 7), False),
    (1, dict(kernel_size=3, stride=2, padding=1), (2, 8), True),
    (2, dict(kernel_size=2), (2, 2, 4, 4), False),
    (2, dict(kernel_size=3, stride=2, padding=1), (1, 2, 6, 5), True),
    (2, dict(kernel_size=2, stride=1), (1, 2, 3, 4), False),      # overlapping windows: repeated indices
    (3, dict(kernel_size=2), (1, 2, 4, 4, 5), True),
    (3, dict(kernel_size=(2, 3, 2), stride=(2, 1, 2), padding=(1, 1, 0)), (2, 3, 5, 4), True),
])
def test_max_unpool_undoes_max_pool_as_torch(nd, kwargs, shape, sized):
    tf = _tf()
    size = shape[-nd:] if sized else None         # the input's size: where the default would drop some
    unpool = dict(kwargs)

    def both(fns):
        def run(x):
            y, i = getattr(fns, f"max_pool{nd}d")(x, return_indices=True, **kwargs)
            return getattr(fns, f"max_unpool{nd}d")(y, i, output_size=size, **unpool)
        return run

    x = randn(*shape, seed=nd)
    try:
        both(tf)(torch_or_skip().tensor(x))
    except RuntimeError as exc:             # the default size leaves out some maxima: both refuse
        assert "invalid max index" in str(exc)
        with pytest.raises(ValueError, match=f"max_unpool{nd}d: found an invalid max index"):
            both(F)(gt.tensor(x))
        return
    compare_with_torch(both(F), both(tf), x, dtype="float32" if sized else "float64")


def test_gradients_match_finite_differences():
    # the rest are compared with torch's gradients; these two also with finite differences
    x = np.random.default_rng(3).permutation(24).reshape(1, 2, 3, 4) * 0.1   # no ties
    check_grad(lambda t: F.adaptive_max_pool3d(t, (1, 2, 3)), x)
    check_grad(lambda t: F.max_unpool3d(*F.max_pool3d(t, 2, return_indices=True), 2, output_size=(2, 3, 4)), x)


@pytest.mark.parametrize("cls,kwargs,shape", [
    ("MaxPool3d", dict(kernel_size=2, stride=1, padding=1, return_indices=True), (1, 2, 3, 4, 3)),
    ("MaxPool1d", dict(kernel_size=2, return_indices=True), (2, 3, 5)),
    ("AvgPool3d", dict(kernel_size=2, stride=1, padding=1, count_include_pad=False), (1, 2, 3, 4, 3)),
    ("AvgPool3d", dict(kernel_size=3, ceil_mode=True, stride=2, divisor_override=2), (2, 5, 4, 5)),
    ("AdaptiveAvgPool3d", dict(output_size=(2, None, 3)), (1, 2, 3, 4, 5)),
    ("AdaptiveMaxPool1d", dict(output_size=3, return_indices=True), (2, 3, 7)),
    ("AdaptiveMaxPool2d", dict(output_size=(2, 3)), (2, 3, 5, 5)),
    ("AdaptiveMaxPool3d", dict(output_size=2, return_indices=True), (1, 2, 3, 4, 5)),
])
def test_pool_modules_match_torch(cls, kwargs, shape):
    torch = torch_or_skip()
    ref, module = getattr(torch.nn, cls)(**kwargs), getattr(nn, cls)(**kwargs)
    assert repr(module) == repr(ref)
    compare_with_torch(lambda a: module(a), lambda a: ref(a), randn(*shape, seed=2))


@pytest.mark.parametrize("nd,kwargs", [(1, dict(kernel_size=2)), (2, dict(kernel_size=(2, 3), stride=2, padding=1)),
                                       (3, dict(kernel_size=2, stride=(1, 2, 2)))])
def test_max_unpool_modules_match_torch(nd, kwargs):
    torch = torch_or_skip()
    pool_kw = {"return_indices": True, **kwargs}
    ref, module = getattr(torch.nn, f"MaxUnpool{nd}d")(**kwargs), getattr(nn, f"MaxUnpool{nd}d")(**kwargs)
    assert repr(module) == repr(ref)
    assert (module.kernel_size, module.stride, module.padding) == (ref.kernel_size, ref.stride, ref.padding)
    pool, tpool = getattr(nn, f"MaxPool{nd}d")(**pool_kw), getattr(torch.nn, f"MaxPool{nd}d")(**pool_kw)
    shape = (2, 2) + (4, 5, 5)[3 - nd:]
    compare_with_torch(lambda a: module(*pool(a), output_size=shape), lambda a: ref(*tpool(a), output_size=shape),
                       randn(*shape, seed=nd), dtype="float32")


_IDX = gt.tensor([[[[0, 3], [8, 15]]]])
ERRORS = [
    (lambda: F.max_unpool2d(gt.zeros(1, 1, 2, 2), _IDX.to(gt.int32), 2), TypeError,
     r"max_unpool2d: indices must be int64 \(as max_pool returns them\), got gt.int32"),
    (lambda: F.max_unpool2d(_IDX, _IDX, 2), TypeError, r"max_unpool2d: expected a floating point input, got gt.int64"),
    (lambda: F.max_unpool2d(gt.zeros(1, 1, 2, 2), _IDX[..., :1], 2), ValueError,
     r"indices of shape \(1, 1, 2, 1\) must have the input's shape \(1, 1, 2, 2\)"),
    (lambda: F.max_unpool2d(gt.zeros(1, 1, 2, 2), _IDX + 1, 2), ValueError,
     r"max_unpool2d: found an invalid max index 16 \(output planes are of size 4x4: indices must lie in \[0, 16\)\)"),
    (lambda: F.max_unpool2d(gt.zeros(1, 1, 2, 2), _IDX - 1, 2), ValueError, r"invalid max index -1"),
    (lambda: F.max_unpool2d(gt.zeros(1, 1, 2, 2), _IDX, 2, output_size=(6, 4)), ValueError,
     r"max_unpool2d: invalid output_size \(6, 4\) \(dim 0 must be between 3 and 5\)"),
    (lambda: F.max_unpool2d(gt.zeros(1, 1, 2, 2), _IDX, 2, output_size=(4, 4, 4)), ValueError,
     r"output_size must have 2 or 4 ints, got \(4, 4, 4\)"),
    (lambda: F.max_unpool1d(gt.zeros(1, 1, 2), gt.zeros(1, 1, 2, dtype=gt.int64), 1, padding=2), ValueError,
     r"max_unpool1d: the output size \(-2,\) .* must not be negative"),
    (lambda: F.max_unpool3d(gt.zeros(2, 2), gt.zeros(2, 2, dtype=gt.int64), 2), ValueError,
     r"max_unpool3d: expected a 4-D \(unbatched\) or 5-D \(batched\) input, got input of shape \(2, 2\)"),
    (lambda: F.adaptive_max_pool2d(gt.tensor([[[1, 2], [3, 4]]]), 1), TypeError,
     r"adaptive_max_pool2d: expected a floating point input, got gt.int64"),
    (lambda: F.adaptive_max_pool2d(gt.zeros(1, 0, 4), 2), ValueError,
     r"adaptive_max_pool2d: expected input with non-zero spatial sizes, got input of shape \(1, 0, 4\)"),
    (lambda: F.adaptive_max_pool3d(gt.zeros(1, 2, 2, 2), (1, -1, 1)), ValueError,
     r"adaptive_max_pool3d: output_size must be an int or a tuple of 3 ints \(or None\), each at least 0"),
    (lambda: F.max_pool3d(gt.zeros(4, 4), 2), ValueError, r"max_pool3d: expected a 4-D \(unbatched\) or 5-D"),
    (lambda: F.max_pool3d(gt.zeros(1, 2, 2, 2), 2, padding=2, return_indices=True), ValueError,
     r"max_pool3d: padding should be at most half"),
    (lambda: F.avg_pool3d(gt.zeros(1, 2, 2, 2, dtype=gt.bool), 2), NotImplementedError,
     r"avg_pool3d: not implemented for gt.bool"),
    (lambda: F.adaptive_avg_pool3d(gt.zeros(1, 2, 2, 2), (1, 1)), ValueError,
     r"adaptive_avg_pool3d: output_size must be an int or a tuple of 3 ints"),
]


@pytest.mark.parametrize("call,exc,match", ERRORS)
def test_errors_name_the_problem(call, exc, match):
    with pytest.raises(exc, match=match):
        call()
