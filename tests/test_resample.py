"""Resampling and rearranging images beside torch: F.interpolate (every mode, align_corners,
size and scale factors), F.upsample*, nn.Upsample*, pixel (un)shuffle, fold/unfold: values,
dtypes and gradients, and the errors for bad arguments."""

import warnings

import numpy as np
import pytest

import gt
from gt.nn import functional as F
from helpers import check_grad, compare_with_torch, randn, torch_or_skip

SHAPES = {3: (4, 2, 5), 4: (4, 2, 3, 5), 5: (4, 1, 3, 2, 4)}      # batch 4: sharded over GT_DEVICES
MODES = [(3, "nearest", None), (3, "nearest-exact", None), (3, "linear", False), (3, "linear", True), (3, "area", None),
         (4, "nearest", None), (4, "nearest-exact", None), (4, "bilinear", False), (4, "bilinear", True),
         (4, "area", None), (4, "bicubic", False), (4, "bicubic", True), (5, "nearest", None),
         (5, "nearest-exact", None), (5, "trilinear", False),
         (5, "trilinear", True), (5, "area", None)]
# an explicit size, an integer scale, a non-integer one (down and up per axis), and a recomputed one
RESIZES = {"size": lambda nd: dict(size=(7, 2, 6)[:nd]), "x2": lambda nd: dict(scale_factor=2),
           "mixed": lambda nd: dict(scale_factor=(1.7, 0.6, 2.5)[:nd]),
           "recompute": lambda nd: dict(scale_factor=1.3, recompute_scale_factor=True)}


def _torch_f():
    return torch_or_skip().nn.functional


# every mode with the non-integer scales in float32 (where torch's float32 index arithmetic
# matters) and, in float64, in turn with each of the other resizes (the CI time budget)
CASES = [case + ("mixed", "float32") for case in MODES] + [
    case + (("size", "x2", "recompute")[i % 3], "float64") for i, case in enumerate(MODES)]


@pytest.mark.parametrize("rank, mode, align_corners, resize, dtype", CASES,
                         ids=[f"{r}d-{m}-{a}-{s}-{d}" for r, m, a, s, d in CASES])
def test_interpolate_is_torchs(rank, mode, align_corners, resize, dtype):
    tf = _torch_f()
    kw = dict(RESIZES[resize](rank - 2), mode=mode, align_corners=align_corners)
    ours, theirs = compare_with_torch(lambda x: F.interpolate(x, **kw), lambda x: tf.interpolate(x, **kw),
                                      randn(*SHAPES[rank], seed=rank), dtype=dtype)
    assert ours[0].shape == tuple(theirs[0].shape) and ours[0].dtype == getattr(gt, dtype)


@pytest.mark.parametrize("mode, align_corners", [("nearest", None), ("bilinear", False), ("bilinear", True),
                                                 ("bicubic", False), ("area", None)])
@pytest.mark.parametrize("size", [(1, 1), (3, 5), (2, 9)], ids=["to-1x1", "same", "odd"])
def test_interpolate_edge_sizes(mode, align_corners, size):
    tf = _torch_f()
    kw = dict(size=size, mode=mode, align_corners=align_corners)
    compare_with_torch(lambda x: F.interpolate(x, **kw), lambda x: tf.interpolate(x, **kw), randn(1, 2, 3, 5))
    compare_with_torch(lambda x: F.interpolate(x, **kw), lambda x: tf.interpolate(x, **kw), randn(1, 1, 1, 1))


@pytest.mark.parametrize("mode, align_corners", [("nearest", None), ("nearest-exact", None), ("bilinear", True),
                                                 ("area", None)])
def test_interpolate_of_an_empty_batch_is_torchs(mode, align_corners):
    tf = _torch_f()
    kw = dict(scale_factor=1.5, mode=mode, align_corners=align_corners)
    compare_with_torch(lambda x: F.interpolate(x, **kw), lambda x: tf.interpolate(x, **kw), randn(0, 2, 3, 4))


KEEPS = [("nearest", (1, 2, 3, 20)), ("nearest", (1, 1, 20)), ("nearest", (1, 1, 2, 1, 20)),
         ("nearest-exact", (1, 1, 20)), ("nearest-exact", (1, 2, 3, 20)), ("linear", (1, 1, 20)),
         ("bilinear", (1, 2, 3, 20)), ("trilinear", (1, 1, 2, 3, 20)), ("bicubic", (1, 2, 3, 20))]


@pytest.mark.parametrize("mode, shape", KEEPS, ids=[f"{m}-{len(s)}d" for m, s in KEEPS])
def test_interpolate_with_scales_that_keep_or_double_a_size(mode, shape):
    # floor(20 * 1.04) = 20, floor(20 * 2.001) = 40: torch 2.13's CPU kernels leave such an axis
    # alone (linear modes), copy it / take i // 2 (4-D 'nearest'), or read at i / scale (the
    # others). Its backward takes the shortcuts where its forward does not (3-D and 5-D 'nearest',
    # bicubic keeping every size): there gt's gradient is checked by finite differences instead.
    tf = _torch_f()
    for scale in (1.04, 2.001, (1.04, 1.5, 2.001)[3 - (len(shape) - 2):]):
        kw = dict(scale_factor=scale, mode=mode)
        kept_all = all(int(n * s) == n for n, s in zip(shape[2:], np.broadcast_to(scale, len(shape) - 2)))
        torch_grad_differs = (mode == "nearest" and len(shape) != 4) or (mode == "bicubic" and kept_all)
        compare_with_torch(lambda x: F.interpolate(x, **kw), lambda x: tf.interpolate(x, **kw), randn(*shape),
                           grad=not torch_grad_differs)
        if torch_grad_differs:
            check_grad(lambda x: F.interpolate(x, **kw), randn(*shape[:-1], 8))


def test_interpolate_keeps_inf_and_nan_where_torch_does():
    tf = _torch_f()
    x = randn(1, 1, 2, 3)
    x[0, 0, 0, 1], x[0, 0, 1, 2] = np.inf, np.nan
    for kw in (dict(scale_factor=2), dict(size=(3, 4), mode="nearest-exact")):
        compare_with_torch(lambda t: F.interpolate(t, **kw), lambda t: tf.interpolate(t, **kw), x, grad=False)


def test_interpolate_gradients_match_finite_differences():
    check_grad(lambda x: F.interpolate(x, scale_factor=1.5, mode="bilinear"), randn(1, 1, 2, 3))
    check_grad(lambda x: F.interpolate(x, size=(3, 2, 2), mode="trilinear", align_corners=True), randn(1, 1, 2, 2, 2))
    check_grad(lambda x: F.interpolate(x, size=4, mode="area"), randn(1, 1, 6))
    check_grad(lambda x: F.interpolate(x, size=(3, 4), mode="bicubic"), randn(1, 1, 2, 3))


def test_upsample_functions_and_modules_are_torchs():
    torch = torch_or_skip()
    tf, x = torch.nn.functional, randn(2, 3, 4, 5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")                       # torch's deprecation warnings
        compare_with_torch(lambda t: F.upsample(t, scale_factor=1.5, mode="bilinear"),
                           lambda t: tf.upsample(t, scale_factor=1.5, mode="bilinear"), x)
        compare_with_torch(lambda t: F.upsample_nearest(t, size=(5, 7)),
                           lambda t: tf.upsample_nearest(t, size=(5, 7)), x)
        compare_with_torch(lambda t: F.upsample_bilinear(t, scale_factor=2),
                           lambda t: tf.upsample_bilinear(t, scale_factor=2), x)
    for make in (lambda L: L.nn.Upsample(scale_factor=2.5, mode="bilinear", align_corners=False),
                 lambda L: L.nn.Upsample(size=(6, 3)), lambda L: L.nn.UpsamplingNearest2d(scale_factor=2),
                 lambda L: L.nn.UpsamplingBilinear2d(size=(7, 9))):
        compare_with_torch(make(gt), make(torch), x, dtype="float32")
        assert repr(make(gt)) == repr(make(torch))


@pytest.mark.parametrize("kernel, dilation, padding, stride, dtype", [
    (2, 1, 0, 1, "float32"), ((2, 3), (1, 2), 1, (2, 1), "float64"), (3, 2, (2, 0), 3, "float64"),
    ((1, 2), 1, 0, (1, 2), "float32")])
def test_unfold_and_fold_are_torchs(kernel, dilation, padding, stride, dtype):
    tf = _torch_f()
    kw = dict(kernel_size=kernel, dilation=dilation, padding=padding, stride=stride)
    x = randn(4, 2, 5, 6)
    compare_with_torch(lambda t: F.unfold(t, **kw), lambda t: tf.unfold(t, **kw), x[:0], dtype=dtype)    # empty
    _, cols = compare_with_torch(lambda t: F.unfold(t, **kw), lambda t: tf.unfold(t, **kw), x, dtype=dtype)
    cols = cols[0].detach().numpy()
    compare_with_torch(lambda t: F.fold(t, (5, 6), **kw), lambda t: tf.fold(t, (5, 6), **kw), cols, dtype=dtype)
    compare_with_torch(lambda t: F.unfold(t, **kw), lambda t: tf.unfold(t, **kw), x[0], dtype=dtype)   # unbatched
    compare_with_torch(lambda t: F.fold(t, (5, 6), **kw), lambda t: tf.fold(t, (5, 6), **kw), cols[0], dtype=dtype)


def test_fold_gradients_match_finite_differences_and_modules_are_torchs():
    torch = torch_or_skip()
    check_grad(lambda t: F.fold(t, (3, 3), 2, padding=1, stride=2), randn(1, 8, 4))
    check_grad(lambda t: F.unfold(t, 2, dilation=(1, 2)), randn(1, 1, 3, 4))
    x = randn(2, 3, 4, 4)
    for make, arr in ((lambda L: L.nn.Unfold(2, stride=2), x),
                      (lambda L: L.nn.Fold((4, 4), 2, stride=2), randn(2, 12, 4)),
                      (lambda L: L.nn.PixelShuffle(2), randn(2, 8, 2, 3)), (lambda L: L.nn.PixelUnshuffle(2), x)):
        compare_with_torch(make(gt), make(torch), arr, dtype="float32")
        assert repr(make(gt)) == repr(make(torch))


@pytest.mark.parametrize("shape, r", [((2, 12, 2, 3), 2), ((9, 1, 2), 3), ((2, 2, 4, 1, 2), 2)],
                         ids=["4d", "unbatched", "5d"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_pixel_shuffle_is_torchs(shape, r, dtype):
    tf = _torch_f()
    x = randn(*shape)
    compare_with_torch(lambda t: F.pixel_shuffle(t, r), lambda t: tf.pixel_shuffle(t, r), x, dtype=dtype)
    y = randn(*shape[:-3], shape[-3] // (r * r), shape[-2] * r, shape[-1] * r)
    compare_with_torch(lambda t: F.pixel_unshuffle(t, r), lambda t: tf.pixel_unshuffle(t, r), y, dtype=dtype)


def test_pixel_shuffle_of_an_empty_batch_has_the_documented_shape():
    # torch 2.13's CPU kernels return an empty input's shape unchanged (and fail in the backward)
    assert F.pixel_shuffle(gt.zeros(0, 4, 2, 2), 2).shape == (0, 1, 4, 4)
    assert F.pixel_unshuffle(gt.zeros(0, 1, 4, 4), 2).shape == (0, 4, 2, 2)


def test_pixel_shuffle_of_ints_is_torchs():
    torch = torch_or_skip()
    x = np.arange(2 * 8 * 2 * 2).reshape(2, 8, 2, 2)
    np.testing.assert_array_equal(F.pixel_shuffle(gt.tensor(x), 2).numpy(),
                                  torch.nn.functional.pixel_shuffle(torch.tensor(x), 2).numpy())


@pytest.mark.parametrize("call, exc, match", [
    (lambda x: F.interpolate(x, size=4, scale_factor=2), ValueError, "exactly one of size or scale_factor, got both"),
    (lambda x: F.interpolate(x), ValueError, "exactly one of size or scale_factor, got neither"),
    (lambda x: F.interpolate(x[0, 0], size=4), ValueError, r"3-D, 4-D or 5-D input .*got input of shape \(3, 5\)"),
    (lambda x: F.interpolate(x, size=4, mode="linear"), NotImplementedError, "got 4-D input, but mode 'linear' needs"),
    (lambda x: F.interpolate(x[0], size=4, mode="bilinear"), NotImplementedError, "mode 'bilinear' needs 4-D"),
    (lambda x: F.interpolate(x, size=4, mode="trilinear"), NotImplementedError, "mode 'trilinear' needs 5-D"),
    (lambda x: F.interpolate(x, size=4, mode="cubic"), ValueError, "mode must be one of .*got 'cubic'"),
    (lambda x: F.interpolate(x[0], size=4, mode="bicubic"), NotImplementedError, "mode 'bicubic' needs 4-D"),
    (lambda x: F.interpolate(x, size=4, mode="nearest", antialias=True), ValueError, "antialias=True is restricted"),
    (lambda x: F.interpolate(x, size=4, align_corners=True), ValueError, "align_corners can only be set .*'nearest'"),
    (lambda x: F.interpolate(x, size=4, recompute_scale_factor=True), ValueError, "not meaningful with an explicit"),
    (lambda x: F.interpolate(x, size=(4, 4, 4)), ValueError, r"needs size with 2 values, got \(4, 4, 4\)"),
    (lambda x: F.interpolate(x, size=(4, 2.5)), TypeError, r"size must be an int or a tuple of 2 ints, got \(4, 2.5\)"),
    (lambda x: F.interpolate(x, scale_factor=-1.0), ValueError, "scale_factor must be a positive number.*-1.0"),
    (lambda x: F.interpolate(x, scale_factor=0.1), ValueError, r"greater than 0.*output size \(0, 0\)"),
    (lambda x: F.interpolate(x.to(gt.int64), size=4), TypeError, "floating point input, got .*int64"),
    (lambda x: F.unfold(x[0, 0], 2), ValueError, r"unfold: expected a 3-D .* or 4-D .*got input of shape \(3, 5\)"),
    (lambda x: F.unfold(x, 4), ValueError, r"unfold: spatial size \(3, 5\) .* too small for kernel_size=\(4, 4\)"),
    (lambda x: F.unfold(x, (2, 2, 2)), ValueError, r"kernel_size must be an int or a tuple of 2 ints.*\(2, 2, 2\)"),
    (lambda x: F.unfold(x, 2, stride=0), ValueError, "stride must be .* at least 1, got 0"),
    (lambda x: F.fold(x, (3, 3), 2), ValueError, "fold: expected a 2-D .* or 3-D .*got input of shape"),
    (lambda x: F.fold(x[0, 0], (3, 3), 2), ValueError, "divisible by the product of kernel_size .*4, but got 3"),
    (lambda x: F.fold(gt.zeros(1, 4, 5), (3, 3), 2), ValueError, "sliding blocks 2 \\* 2 = 4, but got 5"),
    (lambda x: F.pixel_shuffle(x, 2), ValueError, r"divide by upscale_factor \*\* 2 = 4, got input of shape"),
    (lambda x: F.pixel_shuffle(x, 0), ValueError, "upscale_factor must be a positive int, got 0"),
    (lambda x: F.pixel_unshuffle(x, 2), ValueError, r"divide by downscale_factor = 2, got input of shape \(2, 2, 3"),
    (lambda x: F.pixel_unshuffle(x[0, 0], 1), ValueError, "at least 3 dims"),
])
def test_bad_arguments_name_the_problem(call, exc, match):
    with pytest.raises(exc, match=match):
        call(gt.tensor(randn(2, 2, 3, 5)))


@pytest.mark.parametrize("op", [
    lambda F_, x: F_.interpolate(x, scale_factor=1.5, mode="bilinear"),
    lambda F_, x: F_.interpolate(x, size=(2, 7), mode="nearest-exact"),
    lambda F_, x: F_.interpolate(x, size=(5, 3), mode="bicubic", align_corners=True),
    lambda F_, x: F_.interpolate(x, size=(2, 3), mode="area"),
    lambda F_, x: F_.unfold(x, 2, padding=1),
    lambda F_, x: F_.fold(F_.unfold(x, 2, stride=1), (3, 4), 2),
    lambda F_, x: F_.pixel_unshuffle(F_.pixel_shuffle(x, 2)[..., :2, :4], 2),
], ids=["bilinear", "nearest-exact", "bicubic", "area", "unfold", "fold", "pixel_shuffle"])
def test_batches_sharded_over_devices_give_torchs_values_and_gradients(op):
    # data made without requires_grad is split over GT_DEVICES along the batch; the gradient
    # reaches a replicated per-channel weight (a Partial sum over the shards, all-reduced)
    torch = torch_or_skip()
    x, w = randn(8, 4, 3, 4), randn(1, 4, 1, 1, seed=1)
    gx, gw = gt.tensor(x), gt.tensor(w, requires_grad=True)
    tx, tw = torch.tensor(x), torch.tensor(w, requires_grad=True)
    g_out, t_out = op(F, gx * gw), op(torch.nn.functional, tx * tw)
    up = randn(*t_out.shape, seed=2)
    (g_out * gt.tensor(up)).sum().backward()
    (t_out * torch.tensor(up)).sum().backward()
    np.testing.assert_allclose(g_out.numpy(), t_out.detach().numpy(), rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(gw.grad.numpy(), tw.grad.numpy(), rtol=1e-6, atol=1e-9)
