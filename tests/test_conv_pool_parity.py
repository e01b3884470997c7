"""Convolution, pooling and resizing beside torch 2.13, from a differential fuzzing pass:
one-element tuples for the convolutions' and pools' geometry (torch repeats them), torch's
padding rule for dilated max pools, avg_pool3d's input-size check, max pooling windows that
read only padding on the torch engine (torch's kernel corrupts memory there), and
``interpolate(antialias=True)`` ('bilinear', 'bicubic', 'lanczos')."""

import os
import subprocess
import sys

import numpy as np
import pytest

import gt
from gt.nn import functional as F
from helpers import compare_with_torch, randn, torch_or_skip


def _tf():
    return torch_or_skip().nn.functional


ONE_TUPLES = [
    ("conv2d", (randn(2, 4, 6, 5, seed=1), randn(4, 2, 3, 2, seed=2), randn(4, seed=3)),
     dict(stride=(2,), padding=(1,), dilation=(1,), groups=2)),
    ("conv3d", (randn(1, 2, 4, 5, 4, seed=1), randn(3, 2, 2, 2, 2, seed=2)), dict(dilation=(2,), padding=(1,))),
    ("conv_transpose2d", (randn(2, 2, 3, 4, seed=1), randn(2, 3, 3, 2, seed=2), randn(3, seed=3)),
     dict(stride=(2,), padding=(1,), output_padding=(1,), dilation=(1,))),
    ("conv_transpose3d", (randn(1, 2, 3, 2, 3, seed=1), randn(2, 1, 2, 3, 2, seed=2)), dict(stride=(3,), dilation=(2,))),
    ("max_pool2d", (randn(2, 3, 7, 6, seed=4),), dict(kernel_size=(3,), stride=(2,), padding=(1,), dilation=(2,))),
    ("max_pool3d", (randn(1, 2, 5, 6, 4, seed=4),), dict(kernel_size=(2,), ceil_mode=True)),
    ("avg_pool2d", (randn(2, 3, 7, 6, seed=4),), dict(kernel_size=(3,), stride=(2,), padding=(1,))),
    ("avg_pool3d", (randn(1, 2, 5, 6, 4, seed=4),), dict(kernel_size=(2,), stride=(1,), count_include_pad=False)),
]


@pytest.mark.parametrize("fn,arrays,kwargs", ONE_TUPLES)
def test_one_element_tuples_stand_for_every_axis(fn, arrays, kwargs):
    """torch repeats a 1-tuple stride/padding/dilation/kernel_size/output_padding over the axes."""
    tf = _tf()
    compare_with_torch(lambda *t: getattr(F, fn)(*t, **kwargs), lambda *t: getattr(tf, fn)(*t, **kwargs), *arrays)


def test_lp_pool_refuses_a_kernel_of_the_wrong_length():
    """lp_pool scales by the kernel's size: a 1-tuple for two axes is torch's error, not a wrong scale."""
    x = gt.tensor(np.abs(randn(1, 2, 6, 6)) + 0.1)
    with pytest.raises(ValueError, match="kernel_size"):
        F.lp_pool2d(x, 2.0, (2,))
    with pytest.raises(ValueError):
        _tf().lp_pool2d(torch_or_skip().tensor(x.numpy()), 2.0, (2,))
    assert F.avg_pool2d(x, (2,)).shape == (1, 2, 3, 3)      # the pools themselves take it


@pytest.mark.parametrize("fn,shape,kwargs", [
    ("max_pool1d", (1, 2, 7), dict(kernel_size=3, stride=1, padding=2, dilation=2)),
    ("max_pool2d", (1, 3, 6), dict(kernel_size=3, stride=2, padding=(2, 1), dilation=(2, 1))),
    ("max_pool3d", (1, 1, 6, 6, 6), dict(kernel_size=2, padding=(0, 2, 0), dilation=3)),
])
def test_max_pool_padding_is_checked_against_the_undilated_kernel(fn, shape, kwargs):
    """torch refuses padding above half the kernel size, whatever the dilation (gt took half the
    dilated kernel)."""
    tf, torch = _tf(), torch_or_skip()
    x = randn(*shape)
    with pytest.raises(RuntimeError):
        getattr(tf, fn)(torch.tensor(x), **kwargs)
    with pytest.raises(ValueError, match="half of the kernel"):
        getattr(F, fn)(gt.tensor(x), **kwargs)


@pytest.mark.parametrize("fn,shape,args", [
    ("avg_pool3d", (1, 2, 3, 1, 2), dict(kernel_size=2, padding=1)),
    ("avg_pool3d", (2, 1, 1, 3, 1), dict(kernel_size=(1, 4, 1), padding=(0, 2, 0), ceil_mode=True)),
    ("lp_pool3d", (1, 4, 2, 2, 1), dict(norm_type=2.0, kernel_size=(1, 1, 2), ceil_mode=True)),
])
def test_avg_pool3d_refuses_an_input_smaller_than_its_kernel(fn, shape, args):
    """torch's 3-d average pooling checks the unpadded input against the kernel (the 1-d and 2-d
    ones do not)."""
    tf, torch = _tf(), torch_or_skip()
    x = np.abs(randn(*shape)) + 0.1
    with pytest.raises(RuntimeError, match="smaller than kernel size"):
        getattr(tf, fn)(torch.tensor(x), **args)
    with pytest.raises(ValueError, match="smaller than kernel_size"):
        getattr(F, fn)(gt.tensor(x), **args)


_PADDING_ONLY = """
import gt
from gt.nn import functional as F
for _ in range(20):
    for shape, kw in (((2, 3, 1, 5), dict(kernel_size=2, stride=1, padding=1, dilation=2)),
                      ((2, 3, 1), dict(kernel_size=2, stride=1, padding=1, dilation=2))):
        x = gt.randn(*shape, dtype=gt.float64, requires_grad=True)
        fn = F.max_pool2d if len(shape) == 4 else F.max_pool1d
        y = fn(x, **kw)
        y.sum().backward()
        assert float(y.max().item()) == float("-inf") and float(x.grad.abs().sum().item()) == 0.0
print("ok")
"""


@pytest.mark.first_pass
def test_max_pool_windows_of_padding_only_do_not_corrupt_memory_on_the_torch_engine():
    """A dilated window straddling a one-pixel axis reads only padding: torch's kernel gives -inf
    and its backward writes outside the input (heap corruption, a crash). The torch engine takes
    the composed path there; -inf values and zero gradients, as the numpy engine."""
    torch_or_skip()
    env = dict(os.environ, GT_BACKEND="torch")
    done = subprocess.run([sys.executable, "-c", _PADDING_ONLY], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and "ok" in done.stdout, done.stderr[-2000:]
    x = gt.tensor(randn(1, 1, 1, 3), requires_grad=True)
    y = F.max_pool2d(x, 2, stride=1, padding=1, dilation=2)
    y.sum().backward()
    assert (y.numpy() == -np.inf).all() and (x.grad.numpy() == 0).all()



@pytest.mark.parametrize("fn,shape,kwargs", [
    ("max_pool2d", (2, 2, 1, 7), dict(kernel_size=2, padding=1, dilation=2, ceil_mode=True)),
    ("max_pool1d", (2, 2), dict(kernel_size=2, stride=1, padding=1, dilation=3)),
    ("max_pool3d", (1, 1, 1, 3, 3), dict(kernel_size=2, stride=1, padding=1, dilation=2)),
])
def test_max_pool_with_indices_of_padding_only_windows(fn, shape, kwargs):
    """Values with ``return_indices=True`` are those without it: -inf where a window reads only
    padding (they were input values read at a clipped position), and no gradient there."""
    tf, torch = _tf(), torch_or_skip()
    x = randn(*shape, seed=3)
    want = getattr(tf, fn)(torch.tensor(x), **kwargs).numpy()
    t = gt.tensor(x, requires_grad=True)
    values, _ = getattr(F, fn)(t, return_indices=True, **kwargs)
    np.testing.assert_array_equal(values.numpy(), want)
    np.testing.assert_array_equal(values.numpy(), getattr(F, fn)(gt.tensor(x), **kwargs).numpy())
    values.sum().backward()
    assert (t.grad.numpy() == 0).all()


ANTIALIAS = [
    ((2, 3, 9, 11), dict(size=(4, 5), mode="bilinear")),
    ((1, 2, 8, 8), dict(scale_factor=0.5, mode="bilinear", align_corners=True)),
    ((1, 2, 5, 7), dict(size=(9, 3), mode="bilinear")),
    ((2, 1, 10, 9), dict(scale_factor=(1 / 3, 0.7), mode="bicubic")),
    ((1, 2, 6, 5), dict(size=(4, 8), mode="bicubic", align_corners=True)),
    ((1, 2, 12, 7), dict(scale_factor=(0.25, 2.0), mode="bicubic", recompute_scale_factor=True)),
    ((2, 2, 9, 8), dict(size=(4, 3), mode="lanczos")),
    ((1, 1, 4, 5), dict(size=(7, 9), mode="lanczos")),
    ((1, 2, 6, 6), dict(size=(6, 3), mode="lanczos")),
]


@pytest.mark.parametrize("shape,kwargs", ANTIALIAS)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_interpolate_antialias(shape, kwargs, dtype):
    """torch's anti-aliased resizing (as Pillow): values and gradients (gt raised NotImplementedError)."""
    tf = _tf()
    compare_with_torch(lambda t: F.interpolate(t, antialias=True, **kwargs),
                       lambda t: tf.interpolate(t, antialias=True, **kwargs), randn(*shape, seed=5), dtype=dtype)


@pytest.mark.parametrize("shape,kwargs", [
    ((1, 2, 8), dict(size=4, mode="linear", antialias=True)),
    ((1, 2, 8, 8), dict(size=4, mode="nearest", antialias=True)),
    ((1, 2, 4, 4, 4), dict(size=2, mode="trilinear", antialias=True)),
])
def test_interpolate_antialias_errors(shape, kwargs):
    tf, torch = _tf(), torch_or_skip()
    x = randn(*shape)
    with pytest.raises(ValueError):
        tf.interpolate(torch.tensor(x), **kwargs)
    with pytest.raises(ValueError):
        F.interpolate(gt.tensor(x), **kwargs)


def test_interpolate_lanczos_needs_antialias():
    """torch 2.13's 'lanczos' mode: anti-aliased only, without align_corners."""
    tf, torch = _tf(), torch_or_skip()
    x = randn(1, 2, 8, 8)
    want = tf.interpolate(torch.tensor(x), size=5, mode="lanczos", antialias=True).numpy()
    np.testing.assert_allclose(F.interpolate(gt.tensor(x), size=5, mode="lanczos", antialias=True).numpy(), want,
                               rtol=1e-10, atol=1e-12)
    for kwargs in (dict(), dict(antialias=True, align_corners=True)):
        with pytest.raises(ValueError):
            tf.interpolate(torch.tensor(x), size=4, mode="lanczos", **kwargs)
        with pytest.raises(ValueError, match="lanczos"):
            F.interpolate(gt.tensor(x), size=4, mode="lanczos", **kwargs)


@pytest.mark.parametrize("fn,shape,out", [
    ("adaptive_avg_pool1d", (2, 2, 7), 3),
    ("adaptive_avg_pool2d", (1, 2, 5, 7), (3, 2)),
    ("adaptive_avg_pool3d", (1, 2, 3, 5, 4), (2, 3, 3)),
])
# the numpy engine shows numpy's warning for 0 * inf in its first products (MISSING.md, "NaN and inf")
@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
def test_adaptive_avg_pool_keeps_inf_and_nan_in_their_windows(fn, shape, out):
    """Windows of unequal sizes: an inf or NaN made every window NaN (products with an averaging
    matrix's zeros); torch's windows without one stay finite. Gradients too."""
    x = randn(*shape, seed=7)
    flat = x.reshape(-1)
    flat[1], flat[-1], flat[x.size // 2] = np.inf, -np.inf, np.nan
    tf = _tf()
    compare_with_torch(lambda t: getattr(F, fn)(t, out), lambda t: getattr(tf, fn)(t, out), x)
    compare_with_torch(lambda t: F.interpolate(t, size=out, mode="area"),
                       lambda t: tf.interpolate(t, size=out, mode="area"), x)


TOO_SMALL = [
    ("conv1d", (randn(1, 1, 2, seed=1), randn(1, 1, 3, seed=2)), {}),
    ("max_pool2d", (randn(1, 1, 2, 2, seed=1),), dict(kernel_size=3)),
    ("avg_pool2d", (randn(1, 1, 2, 2, seed=1),), dict(kernel_size=3)),
    ("max_pool2d", (randn(1, 1, 4, 4, seed=1),), dict(kernel_size=2, padding=2)),
    ("conv_transpose2d", (randn(1, 1, 2, 3, seed=1), randn(1, 1, 1, 1, seed=2)), dict(padding=1)),
]


@pytest.mark.parametrize("fn,arrays,kwargs", TOO_SMALL)
def test_too_small_or_overpadded_input_raises_runtime_error(fn, arrays, kwargs):
    """torch refuses an input too small for the kernel (an output size below 1) and a padding over
    half the kernel with RuntimeError; gt's ShapeError is one (and still the ValueError it was)."""
    tf = _tf()
    torch = torch_or_skip()
    with pytest.raises(RuntimeError):
        getattr(tf, fn)(*[torch.tensor(a) for a in arrays], **kwargs)
    with pytest.raises(RuntimeError):
        getattr(F, fn)(*[gt.tensor(a) for a in arrays], **kwargs)
