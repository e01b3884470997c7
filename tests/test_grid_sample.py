"""F.grid_sample and F.affine_grid beside torch 2.13: values, gradients of input, grid and theta,
every mode x padding x align_corners in 4-D and 5-D, grids partly outside the image, points on
the borders and half-way points, non-finite grids, empty shapes, errors, sharded batches."""

import itertools
import warnings

import numpy as np
import pytest

import gt
from gt.nn import functional as F
from gt.sharding.mesh import use_mesh
from helpers import check_grad, compare_with_torch, randn, torch_or_skip

PADDINGS = ["zeros", "border", "reflection"]
CASES_2D = list(itertools.product(["bilinear", "nearest", "bicubic"], PADDINGS, [False, True]))
CASES_3D = list(itertools.product(["bilinear", "nearest"], PADDINGS, [False, True]))


def _grid(*shape, seed=0, reach=1.3):
    """Points uniform in [-reach, reach]: partly outside the image for reach > 1."""
    return np.random.default_rng(seed).uniform(-reach, reach, shape)


def _pair(mode, padding_mode, align_corners):
    torch = torch_or_skip()
    kw = dict(mode=mode, padding_mode=padding_mode, align_corners=align_corners)
    return (lambda x, g: F.grid_sample(x, g, **kw)), (lambda x, g: torch.nn.functional.grid_sample(x, g, **kw))


# ---- values and both gradients beside torch ------------------------------------------------------
@pytest.mark.parametrize("mode,padding_mode,align_corners", CASES_2D)
def test_4d_beside_torch(mode, padding_mode, align_corners):
    ours, theirs = _pair(mode, padding_mode, align_corners)
    compare_with_torch(ours, theirs, randn(2, 3, 4, 5, seed=1), _grid(2, 3, 4, 2, seed=2))


@pytest.mark.parametrize("mode,padding_mode,align_corners", CASES_3D)
def test_5d_beside_torch(mode, padding_mode, align_corners):
    ours, theirs = _pair(mode, padding_mode, align_corners)
    compare_with_torch(ours, theirs, randn(2, 2, 3, 4, 5, seed=3), _grid(2, 2, 3, 2, 3, seed=4))


@pytest.mark.parametrize("mode", ["bilinear", "nearest", "bicubic"])
@pytest.mark.parametrize("padding_mode", PADDINGS)
def test_float32_beside_torch(mode, padding_mode):
    ours, theirs = _pair(mode, padding_mode, False)
    compare_with_torch(ours, theirs, randn(1, 2, 3, 4, seed=5), _grid(1, 3, 2, 2, seed=6), dtype="float32")
    if mode != "bicubic":
        compare_with_torch(ours, theirs, randn(1, 2, 2, 3, 4, seed=7), _grid(1, 2, 2, 2, 3, seed=8),
                           dtype="float32")


@pytest.mark.parametrize("mode,padding_mode,align_corners", CASES_2D)
def test_borders_and_half_way_points(mode, padding_mode, align_corners):
    """Points on the corner pixels' centres and edges, on pixel centres and half-way between them
    (nearest rounds halves to even) and far outside: torch's values and its slopes at the kinks
    (a border counts as outside: zero slope there)."""
    xs = np.arange(-6, 7) / 4.0                      # W = 4: multiples of 1/8 pixel, exact in binary
    ys = np.array([-1.5, -1.0, -0.5, 0.0, 1 / 3, 1.0, 2.0])
    grid = np.stack(np.meshgrid(xs, ys), -1)[None]   # (1, 7, 13, 2)
    ours, theirs = _pair(mode, padding_mode, align_corners)
    compare_with_torch(ours, theirs, randn(1, 2, 3, 4, seed=9), grid)


@pytest.mark.parametrize("mode,padding_mode,align_corners", CASES_3D)
def test_5d_borders(mode, padding_mode, align_corners):
    vals = np.array([-1.25, -1.0, -0.5, 0.0, 0.5, 1.0, 1.75])
    grid = np.stack(np.meshgrid(vals, vals[::2], vals[1::3], indexing="ij"), -1)[None]   # (1, 7, 4, 2, 3)
    ours, theirs = _pair(mode, padding_mode, align_corners)
    compare_with_torch(ours, theirs, randn(1, 1, 2, 3, 4, seed=10), grid)


@pytest.mark.parametrize("mode,padding_mode,align_corners", CASES_2D)
def test_one_pixel_axes(mode, padding_mode, align_corners):
    """An image one pixel high (and one pixel wide): reflection has no span to reflect in."""
    ours, theirs = _pair(mode, padding_mode, align_corners)
    compare_with_torch(ours, theirs, randn(2, 2, 1, 3, seed=11), _grid(2, 2, 3, 2, seed=12, reach=2.0))
    compare_with_torch(ours, theirs, randn(1, 2, 1, 1, seed=13), _grid(1, 2, 2, 2, seed=14, reach=2.0))


def test_non_contiguous_input_and_grid():
    ours, theirs = _pair("bilinear", "border", False)
    compare_with_torch(lambda x, g: ours(x.transpose(2, 3), g.transpose(1, 2)),
                       lambda x, g: theirs(x.transpose(2, 3), g.transpose(1, 2)),
                       randn(2, 3, 5, 4, seed=15), _grid(2, 4, 3, 2, seed=16))


# ---- finite differences (float64, random points: away from the kinks) ---------------------------
@pytest.mark.parametrize("mode,padding_mode", [("bilinear", "zeros"), ("bilinear", "border"),
                                               ("bilinear", "reflection"), ("bicubic", "zeros"),
                                               ("bicubic", "reflection")])
def test_gradients_finite_differences(mode, padding_mode):
    check_grad(lambda x, g: F.grid_sample(x, g, mode=mode, padding_mode=padding_mode, align_corners=False),
               randn(1, 2, 3, 3, seed=17), _grid(1, 2, 2, 2, seed=18, reach=1.2))


def test_5d_gradients_finite_differences():
    check_grad(lambda x, g: F.grid_sample(x, g, padding_mode="reflection", align_corners=True),
               randn(1, 1, 2, 2, 3, seed=19), _grid(1, 1, 2, 2, 3, seed=20, reach=1.2))


def test_nearest_grid_gradient_is_zero():
    x = gt.tensor(randn(1, 2, 3, 4, seed=21), requires_grad=True)
    g = gt.tensor(_grid(1, 2, 3, 2, seed=22), requires_grad=True)
    F.grid_sample(x, g, mode="nearest", align_corners=False).sum().backward()
    assert g.grad is not None and g.grad.shape == g.shape and not np.any(g.grad.numpy())
    assert np.any(x.grad.numpy())


# ---- non-finite grids: torch's CPU kernels (4-D and 5-D differ) ---------------------------------
NAN, INF = float("nan"), float("inf")


@pytest.mark.parametrize("mode,padding_mode,align_corners", CASES_2D)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_4d_non_finite_grid(mode, padding_mode, align_corners, dtype):
    grid = np.array([[[[NAN, 0.0], [0.0, NAN], [INF, 0.0], [-INF, 0.5], [2.0, NAN], [1e30, 0.0],
                       [-1e30, 0.3], [0.25, 0.5]]]])
    ours, theirs = _pair(mode, padding_mode, align_corners)
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        compare_with_torch(ours, theirs, np.arange(1.0, 13.0).reshape(1, 1, 3, 4), grid, dtype=dtype, grad=False)


@pytest.mark.parametrize("mode,padding_mode,align_corners", CASES_3D)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_5d_non_finite_grid(mode, padding_mode, align_corners, dtype):
    grid = np.array([[[[[NAN, 0.0, 0.0], [0.0, NAN, 0.3], [INF, 0.0, 0.0], [0.0, 0.0, -INF], [1e30, 0.0, 0.0],
                        [0.25, 0.5, 0.5]]]]])
    ours, theirs = _pair(mode, padding_mode, align_corners)
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        compare_with_torch(ours, theirs, np.arange(1.0, 25.0).reshape(1, 1, 2, 3, 4), grid, dtype=dtype,
                           grad=False)


# ---- shapes, defaults, errors ------------------------------------------------------------------
@pytest.mark.parametrize("x_shape,g_shape", [((0, 2, 3, 4), (0, 2, 2, 2)), ((2, 0, 3, 4), (2, 2, 2, 2)),
                                             ((2, 2, 3, 4), (2, 0, 2, 2)), ((1, 1, 2, 3, 4), (1, 0, 2, 2, 3))])
def test_empty_shapes(x_shape, g_shape):
    torch = torch_or_skip()
    want = torch.nn.functional.grid_sample(torch.zeros(x_shape), torch.zeros(g_shape), align_corners=False)
    got = F.grid_sample(gt.zeros(*x_shape), gt.zeros(*g_shape), align_corners=False)
    assert got.shape == tuple(want.shape) and got.dtype == gt.float32


@pytest.mark.first_pass
def test_default_align_corners_is_false_without_warning():
    x, g = gt.tensor(randn(1, 1, 3, 4, seed=23)), gt.tensor(_grid(1, 2, 2, 2, seed=24))
    theta = gt.tensor(randn(1, 2, 3, seed=25))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = F.grid_sample(x, g)
        grid = F.affine_grid(theta, (1, 1, 3, 4))
    np.testing.assert_array_equal(out.numpy(), F.grid_sample(x, g, align_corners=False).numpy())
    np.testing.assert_array_equal(grid.numpy(), F.affine_grid(theta, (1, 1, 3, 4), align_corners=False).numpy())


GRID_ERRORS = [
    ((2, 3, 4, 5), (2, 3, 3, 2), dict(mode="linear"), ValueError, "expected mode to be 'bilinear', 'nearest' or "
                                                                  "'bicubic', but got: 'linear'"),
    ((2, 3, 4, 5), (2, 3, 3, 2), dict(padding_mode="zero"), ValueError, "expected padding_mode .* got: 'zero'"),
    ((2, 3, 4, 5), (3, 3, 3, 2), {}, RuntimeError, "same batch size"),
    ((2, 3, 4, 5), (2, 3, 3, 3), {}, RuntimeError, "size 2 in its last dimension"),
    ((2, 3, 4, 5), (2, 3, 3, 1, 2), {}, RuntimeError, "same number of dims"),
    ((3, 4, 5), (3, 3, 2), {}, RuntimeError, "4-D or 5-D input"),
    ((2, 3, 0, 5), (2, 3, 3, 2), {}, RuntimeError, "non-empty spatial dimensions.*dimension 2 being empty"),
    ((2, 3, 2, 4, 5), (2, 3, 3, 1, 3), dict(mode="bicubic"), RuntimeError, "bicubic interpolation only supports 4-D"),
]


@pytest.mark.first_pass
@pytest.mark.parametrize("x_shape,g_shape,kw,exc,match", GRID_ERRORS)
def test_grid_sample_errors_as_torch(x_shape, g_shape, kw, exc, match):
    torch = torch_or_skip()
    with pytest.raises(exc):
        torch.nn.functional.grid_sample(torch.zeros(x_shape), torch.zeros(g_shape), align_corners=False, **kw)
    with pytest.raises(exc, match=match):
        F.grid_sample(gt.zeros(*x_shape), gt.zeros(*g_shape), align_corners=False, **kw)


@pytest.mark.first_pass
def test_grid_sample_dtype_errors():
    with pytest.raises(RuntimeError, match="same dtype.*float32.*float64"):
        F.grid_sample(gt.zeros(1, 1, 2, 2), gt.zeros(1, 1, 1, 2, dtype=gt.float64), align_corners=False)
    with pytest.raises(NotImplementedError, match="floating point, got gt.int64"):
        F.grid_sample(gt.zeros(1, 1, 2, 2, dtype=gt.int64), gt.zeros(1, 1, 1, 2, dtype=gt.int64))


# ---- affine_grid ---------------------------------------------------------------------------------
@pytest.mark.parametrize("size", [(2, 3, 4, 5), (2, 1, 1, 3), (2, 1, 3, 1), (2, 3, 2, 3, 4), (2, 1, 1, 2, 3)])
@pytest.mark.parametrize("align_corners", [False, True])
def test_affine_grid_beside_torch(size, align_corners):
    torch = torch_or_skip()
    theta = randn(2, 2, 3, seed=26) if len(size) == 4 else randn(2, 3, 4, seed=27)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)     # torch's note on one-pixel axes with align_corners
        for dtype in ("float64", "float32"):
            compare_with_torch(lambda t: F.affine_grid(t, size, align_corners=align_corners),
                               lambda t: torch.nn.functional.affine_grid(t, size, align_corners=align_corners),
                               theta, dtype=dtype)


@pytest.mark.parametrize("mode", ["bilinear", "bicubic"])
def test_affine_grid_then_grid_sample(mode):
    """A spatial transformer: rotate-and-scale a batch; gradients reach theta and the image."""
    torch = torch_or_skip()
    a = 0.3
    theta = np.array([[[np.cos(a) * 1.1, -np.sin(a), 0.1], [np.sin(a), np.cos(a) * 0.9, -0.2]]] * 2)

    def ours(x, t):
        return F.grid_sample(x, F.affine_grid(t, (2, 2, 3, 4), align_corners=False), mode=mode,
                             padding_mode="border", align_corners=False)

    def theirs(x, t):
        tf = torch.nn.functional
        return tf.grid_sample(x, tf.affine_grid(t, (2, 2, 3, 4), align_corners=False), mode=mode,
                              padding_mode="border", align_corners=False)

    compare_with_torch(ours, theirs, randn(2, 2, 4, 5, seed=28), theta)


IDENTITY_CASES = [(dims, mode, padding, align, dtype)
                  for dims, modes in ((2, ("bilinear", "bicubic", "nearest")), (3, ("bilinear", "nearest")))
                  for mode in modes for padding in PADDINGS for align in (False, True)
                  for dtype in ("float64", "float32")]


@pytest.mark.parametrize("dims,mode,padding_mode,align_corners,dtype", IDENTITY_CASES)
def test_identity_transform_gradient_is_torch_s(dims, mode, padding_mode, align_corners, dtype):
    """A spatial transformer at its usual start, the identity: every sampling point lies on a pixel
    centre, where the sampled image has a kink, so the gradient of theta depends on which side of
    the centre rounding puts each point. torch's affine_grid (its linspace) and grid_sample (a fused
    multiply-add in its 4-D kernel) decide that; gt computes the same coordinates to the bit, so
    theta's gradient is torch's (it was up to 0.5x off before)."""
    torch = torch_or_skip()
    size = (2, 2, 7, 9) if dims == 2 else (1, 2, 5, 7, 6)
    eye = np.concatenate([np.eye(dims), np.zeros((dims, 1))], 1)
    theta, x = np.stack([eye, eye * 0.5]) if dims == 2 else eye[None], randn(*size, seed=40)
    grads = []
    for lib, fn in ((gt, F), (torch, torch.nn.functional)):
        t = lib.tensor(theta.astype(dtype), requires_grad=True)
        grid = fn.affine_grid(t, size, align_corners=align_corners)
        y = fn.grid_sample(lib.tensor(x.astype(dtype)), grid, mode=mode, padding_mode=padding_mode,
                           align_corners=align_corners)
        (y * y).sum().backward()
        grads.append((grid.detach().numpy(), t.grad.numpy()))
    (ours_grid, ours), (their_grid, theirs) = grads
    np.testing.assert_array_equal(ours_grid, their_grid)
    tol = 1e-5 if dtype == "float32" else 1e-11
    np.testing.assert_allclose(ours, theirs, rtol=tol, atol=tol * max(1.0, float(np.abs(theirs).max())))


AFFINE_ERRORS = [
    (np.zeros((2, 2, 3), np.int64), (2, 3, 4, 5), ValueError, "floating point type"),
    (np.zeros((2, 3, 3)), (2, 3, 4, 5), ValueError, r"shape Nx2x3 for size \(2, 3, 4, 5\)"),
    (np.zeros((2, 2, 3)), (2, 3, 2, 4, 5), ValueError, "shape Nx3x4"),
    (np.zeros((2, 2, 3)), (2, 3, 4), NotImplementedError, "only supports 4D and 5D sizes"),
    (np.zeros((2, 2, 3)), (2, 3, 0, 5), ValueError, "non-zero, positive output size"),
    (np.zeros((2, 2, 3)), (3, 3, 4, 5), RuntimeError, "holds 2 matrices"),
]


@pytest.mark.first_pass
@pytest.mark.parametrize("theta,size,exc,match", AFFINE_ERRORS)
def test_affine_grid_errors_as_torch(theta, size, exc, match):
    torch = torch_or_skip()
    with pytest.raises(exc), warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        torch.nn.functional.affine_grid(torch.tensor(theta), size, align_corners=False)
    with pytest.raises(exc, match=match):
        F.affine_grid(gt.tensor(theta), size, align_corners=False)


# ---- sharded batches -------------------------------------------------------------------------
@pytest.mark.own_mesh
@pytest.mark.parametrize("n", [2, 4])
@pytest.mark.parametrize("mode", ["bilinear", "bicubic"])
def test_sharded_batch_gives_the_unsharded_answer(n, mode):
    x_np, g_np = randn(4, 2, 3, 4, seed=29), _grid(4, 2, 3, 2, seed=30)

    def run():
        x = gt.tensor(x_np, requires_grad=True)
        g = gt.tensor(g_np, requires_grad=True)
        out = F.grid_sample(x.shard(0), g.shard(0), mode=mode, padding_mode="reflection", align_corners=True)
        (out * out).sum().backward()
        return out.numpy(), x.grad.numpy(), g.grad.numpy()

    with use_mesh(1):
        want = run()
    with use_mesh(n):
        got = run()
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
