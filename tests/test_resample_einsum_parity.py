"""Edge cases of the numeric helpers (diff, cov, flip, trapezoid, cdist) and of F.interpolate
beside torch 2.13, found by differential fuzzing: values, dtypes, gradients and errors."""

import warnings

import numpy as np
import pytest

import gt
from gt.nn import functional as F
from helpers import compare_with_torch, randn, torch_or_skip


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("dim, prepend, append", [(-1, (3, 2), None), (0, (1, 5), (2, 5)), (1, None, (3, 1))])
def test_diff_n0_ignores_prepend_and_append(dtype, dim, prepend, append):
    torch = torch_or_skip()
    x = randn(3, 5, seed=1)
    extra = [randn(*s, seed=2 + i) for i, s in enumerate((prepend, append)) if s is not None]

    def call(mod, x, *rest):
        rest = list(rest)
        kw = {"prepend": rest.pop(0) if prepend else None, "append": rest.pop(0) if append else None}
        return mod.diff(x, n=0, dim=dim, **kw)

    compare_with_torch(lambda *a: call(gt, *a), lambda *a: call(torch, *a), x, *extra, dtype=dtype)
    out = gt.diff(gt.tensor(np.arange(4)), n=0, prepend=gt.tensor([1.5]))
    assert out.dtype == gt.int64 and out.tolist() == [0, 1, 2, 3]     # the input's own dtype, as torch
    with pytest.raises(RuntimeError):                                 # still validated, as torch
        gt.diff(gt.zeros(4), n=0, prepend=gt.zeros(2, 2))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_cov_without_degrees_of_freedom_is_torchs_signed_inf(dtype):
    torch = torch_or_skip()
    x = randn(2, 3, seed=3).astype(dtype)
    fw, aw = np.array([1, 0, 1]), np.array([0.5, 0.2, 0.3], dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        want = torch.cov(torch.tensor(x), correction=2, fweights=torch.tensor(fw), aweights=torch.tensor(aw))
        got = gt.cov(gt.tensor(x), correction=2, fweights=gt.tensor(fw), aweights=gt.tensor(aw))
    np.testing.assert_array_equal(got.numpy(), want.numpy())          # +inf / -inf as c's sign, never flipped
    assert str(got.dtype) == "gt." + dtype


@pytest.mark.parametrize("weights", ["fweights", "aweights", "both"])
@pytest.mark.parametrize("correction", [0, 1])
def test_cov_weights_summing_to_zero_raise(weights, correction):
    torch = torch_or_skip()
    x = randn(2, 3, seed=4)
    kw = {"fweights": np.array([0, 0, 0]), "aweights": np.array([0.0, 0.0, 0.0])}
    if weights == "both":
        kw = {"fweights": np.array([0, 1, 0]), "aweights": np.array([1.0, 0.0, 1.0])}
    else:
        kw = {weights: kw[weights]}
    with pytest.raises(RuntimeError, match="weights sum to zero"):
        torch.cov(torch.tensor(x), correction=correction, **{k: torch.tensor(v) for k, v in kw.items()})
    with pytest.raises(RuntimeError, match="weights sum to zero"):
        gt.cov(gt.tensor(x), correction=correction, **{k: gt.tensor(v) for k, v in kw.items()})


@pytest.mark.parametrize("dims", [(0,), (-1,), ()])
def test_flip_of_a_0d_tensor(dims):
    torch = torch_or_skip()
    compare_with_torch(lambda x: gt.flip(x, dims), lambda x: torch.flip(x, dims), np.array(1.5))
    x = gt.tensor(2.0)
    assert gt.flip(x, dims).tolist() == 2.0
    with pytest.raises((IndexError, ValueError)):
        gt.flip(x, (1,))


@pytest.mark.parametrize("fn", ["trapezoid", "trapz", "cumulative_trapezoid"])
def test_trapezoid_refuses_bool(fn):
    torch = torch_or_skip()
    y, x = np.array([True, False, True]), np.array([0.0, 1.0, 3.0])
    with pytest.raises(RuntimeError, match="bool"):
        getattr(torch, fn)(torch.tensor(y))
    with pytest.raises(RuntimeError, match="bool"):
        getattr(gt, fn)(gt.tensor(y))
    with pytest.raises(RuntimeError, match="bool"):
        gt.trapezoid(gt.tensor(x), gt.tensor(y))
    compare_with_torch(lambda a: getattr(gt, fn)(a.to(gt.float64)), lambda a: getattr(torch, fn)(a.double()),
                       y.astype(np.int64))


@pytest.mark.parametrize("dtypes", [("float32", "float64"), ("float64", "float32")])
def test_cdist_refuses_mixed_dtypes(dtypes):
    torch = torch_or_skip()
    a, b = randn(3, 2, seed=5).astype(dtypes[0]), randn(4, 2, seed=6).astype(dtypes[1])
    with pytest.raises(RuntimeError):
        torch.cdist(torch.tensor(a), torch.tensor(b))
    with pytest.raises(RuntimeError, match="expected scalar type"):
        gt.cdist(gt.tensor(a), gt.tensor(b))
    compare_with_torch(gt.cdist, torch.cdist, a, b.astype(dtypes[0]), dtype=dtypes[0])


@pytest.mark.parametrize("mode, shape", [("nearest", (1, 0, 4)), ("linear", (1, 0, 4)),
                                         ("nearest-exact", (2, 0, 3, 3)), ("bilinear", (1, 0, 4, 4)),
                                         ("bicubic", (1, 0, 4, 4)), ("trilinear", (1, 0, 2, 2, 2))])
def test_interpolate_refuses_empty_channels_but_not_an_empty_batch(mode, shape):
    torch = torch_or_skip()
    with pytest.raises(RuntimeError):
        torch.nn.functional.interpolate(torch.zeros(shape), size=5, mode=mode)
    with pytest.raises(ValueError, match="non-empty"):
        F.interpolate(gt.zeros(*shape), size=5, mode=mode)
    empty_batch = (0, 2) + shape[2:]
    want = torch.nn.functional.interpolate(torch.zeros(empty_batch), size=5, mode=mode)
    got = F.interpolate(gt.zeros(*empty_batch), size=5, mode=mode)
    assert tuple(got.shape) == tuple(want.shape)
    assert tuple(F.interpolate(gt.zeros(1, 0, 4), size=2, mode="area").shape) == (1, 0, 2)   # area: as torch's pool


@pytest.mark.parametrize("mode", ["reflect", "replicate", "circular"])
@pytest.mark.parametrize("shape, pad", [((1, 1, 2), (-1, -1)), ((1, 2), (-1, -1)), ((1, 1, 2, 2), (-1, -1, -1, -1)),
                                        ((1, 1, 2, 2), (-1, -1, 0, 0)), ((1, 1, 2, 2), (0, 0, -1, -1)),
                                        ((1, 1, 2, 2, 2), (-1, -1, -1, -1, -1, -1)),
                                        ((1, 1, 2, 2, 2), (-1, -1, -1, -1, 0, 0))])
def test_pad_cropping_every_padded_dim_away_raises_as_torch(mode, shape, pad):
    torch = torch_or_skip()
    try:
        want = tuple(torch.nn.functional.pad(torch.zeros(shape), pad, mode=mode).shape)
    except RuntimeError:
        want = None
    if want is None:
        with pytest.raises(ValueError, match="too small"):
            F.pad(gt.zeros(*shape), pad, mode=mode)
    else:
        assert tuple(F.pad(gt.zeros(*shape), pad, mode=mode).shape) == want


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("sa, sb, dims", [((2, 1), (3, 2), ([1], [0])), ((2, 3), (1, 4), ([1], [0])),
                                          ((2, 1, 3), (3, 5, 4), ([1, 2], [2, 0])), ((2, 4), (1, 3), 1)])
def test_tensordot_broadcasts_size_1_contracted_dims(dtype, sa, sb, dims):
    torch = torch_or_skip()
    compare_with_torch(lambda a, b: gt.tensordot(a, b, dims=dims), lambda a, b: torch.tensordot(a, b, dims=dims),
                       randn(*sa, seed=7), randn(*sb, seed=8), dtype=dtype)


def test_tensordot_refuses_mixed_dtypes_and_mismatched_sizes():
    torch = torch_or_skip()
    a, b = randn(2, 3, seed=9), randn(3, 2, seed=10)
    with pytest.raises(RuntimeError, match="same dtype"):
        torch.tensordot(torch.tensor(a, dtype=torch.float32), torch.tensor(b), 1)
    with pytest.raises(RuntimeError, match="same dtype"):
        gt.tensordot(gt.tensor(a, dtype=gt.float32), gt.tensor(b), 1)
    with pytest.raises(RuntimeError, match="contracted dimensions need to match"):
        gt.tensordot(gt.tensor(a), gt.tensor(randn(2, 2)), ([1], [0]))
    got = gt.tensordot(gt.tensor(np.arange(6).reshape(2, 3)), gt.tensor(np.arange(3).reshape(1, 3)), ([1], [1]))
    want = torch.tensordot(torch.arange(6).reshape(2, 3), torch.arange(3).reshape(1, 3), ([1], [1]))
    assert got.dtype == gt.int64 and got.tolist() == want.tolist()


@pytest.mark.parametrize("fn", ["tril_indices", "triu_indices"])
def test_triangle_indices_take_torchs_device_and_layout_keywords(fn):
    torch = torch_or_skip()
    want = getattr(torch, fn)(4, 3, 1, device="cpu", layout=torch.strided, dtype=torch.int32)
    got = getattr(gt, fn)(4, 3, 1, device="cpu", layout=None, dtype=gt.int32)
    assert got.dtype == gt.int32 and got.tolist() == want.tolist()
    assert getattr(gt, fn)(3, 3, device=gt.device("cpu")).tolist() == getattr(torch, fn)(3, 3).tolist()


@pytest.mark.parametrize("fn", ["cov", "corrcoef"])
def test_cov_refuses_bool_input(fn):
    torch = torch_or_skip()
    x = np.array([[True, False, True], [False, False, True]])
    with pytest.raises(RuntimeError, match="bool"):
        getattr(torch, fn)(torch.tensor(x))
    with pytest.raises(RuntimeError, match="bool"):
        getattr(gt, fn)(gt.tensor(x))
    compare_with_torch(lambda a: getattr(gt, fn)(a), lambda a: getattr(torch, fn)(a), x.astype(np.float64))


# (input size, output size) pairs where a source position lands on a whole number, so float32
# and float64 position arithmetic pick different pixels (torch's 3-D/5-D kernels: the input's type)
_NEAREST_EDGES = [(28, 46), (20, 46), (2, 41), (2, 97), (6, 123), (4, 82), (12, 37), (24, 74)]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("mode", ["nearest", "nearest-exact"])
@pytest.mark.parametrize("rank", [3, 5])
def test_nearest_source_pixels_of_3d_and_5d_inputs_are_torchs(dtype, mode, rank):
    torch = torch_or_skip()
    for n, o in _NEAREST_EDGES:
        shape = (1, 2, n) + (2,) * (rank - 3)
        size = (o,) + (3,) * (rank - 3)
        x = np.arange(np.prod(shape), dtype=dtype).reshape(shape)
        want = torch.nn.functional.interpolate(torch.tensor(x), size=size, mode=mode)
        got = F.interpolate(gt.tensor(x), size=size, mode=mode)
        np.testing.assert_array_equal(got.numpy(), want.numpy(), err_msg=f"{n} -> {o}")
        last = (1, 2) + (2,) * (rank - 3) + (n,)
        x = np.arange(np.prod(last), dtype=dtype).reshape(last)
        want = torch.nn.functional.interpolate(torch.tensor(x), size=size[::-1], mode=mode)
        got = F.interpolate(gt.tensor(x), size=size[::-1], mode=mode)
        np.testing.assert_array_equal(got.numpy(), want.numpy(), err_msg=f"last axis {n} -> {o}")
    # the gradient is that of this output: each source pixel gets as many ones as outputs took it
    # (torch 2.13's backward takes float32 positions for a float64 input, unlike its forward)
    shape, size = (1, 1, 28) + (1,) * (rank - 3), (46,) + (1,) * (rank - 3)
    x = gt.tensor(np.arange(28, dtype=dtype).reshape(shape), requires_grad=True)
    y = F.interpolate(x, size=size, mode=mode)
    y.sum().backward()
    counts = np.bincount(y.detach().numpy().ravel().astype(np.int64), minlength=28)
    np.testing.assert_array_equal(x.grad.numpy().ravel(), counts)
