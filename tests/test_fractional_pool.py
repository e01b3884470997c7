"""Fractional max pooling (gt/nn/fractional_pool.py): ``F.fractional_max_pool2d/3d``, their
``*_with_indices`` forms and ``nn.FractionalMaxPool2d/3d``, run beside torch on the same inputs
and the same ``_random_samples``: outputs, int64 indices (ties and NaN as torch's kernel picks
them), dtypes and input gradients, float32 and float64 (float16 forward), with MaxUnpool, the
module's state and repr, gt's own sampling (shape, window maxima, gt.manual_seed), and errors."""

import numpy as np
import pytest

import gt
from gt import nn
from gt.nn import functional as F
from helpers import check_grad, compare_with_torch, distinct, randn, torch_or_skip


def _torch():
    return torch_or_skip()


def _samples(n, c, nd, seed, dtype="float64"):
    return np.random.default_rng(seed + 100).random((n, c, nd)).astype(dtype)


def _beside_torch(nd, shape, kwargs, dtype, seed=0, values=None):
    """Pool the same input with the same samples in gt and torch: compare values, indices (exactly)
    and input gradients. Returns gt's (values, indices)."""
    torch = _torch()
    batch = shape[0] if len(shape) == nd + 2 else 1
    u = _samples(batch, shape[-nd - 1], nd, seed, dtype)
    name = f"fractional_max_pool{nd}d"
    x = distinct(*shape, seed=seed) if values is None else values
    theirs = dict(kwargs)
    if isinstance(kwargs.get("output_ratio"), float):    # torch's F.fractional_max_pool2d takes len() of it
        theirs["output_ratio"] = (kwargs["output_ratio"],) * nd
    ours = lambda t: getattr(F, name)(t, _random_samples=gt.tensor(u, dtype=t.dtype), **kwargs)  # noqa: E731
    tf = getattr(torch.nn.functional, name)
    (out,), (tout,) = compare_with_torch(ours, lambda t: tf(t, _random_samples=torch.from_numpy(u), **theirs),
                                         x, dtype=dtype)
    idx = getattr(F, name)(gt.tensor(x, dtype=out.dtype), return_indices=True, _random_samples=gt.tensor(u),
                           **kwargs)[1]
    tidx = tf(torch.from_numpy(x.astype(dtype)), return_indices=True, _random_samples=torch.from_numpy(u),
              **theirs)[1]
    assert idx.dtype == gt.int64
    np.testing.assert_array_equal(idx.numpy(), tidx.numpy())
    np.testing.assert_array_equal(out.numpy(), tout.detach().numpy())      # a max is exact
    return out, idx


CASES_2D = [
    ((2, 3, 7, 8), dict(kernel_size=2, output_size=(4, 5))),
    ((3, 9, 10), dict(kernel_size=(3, 2), output_size=5)),
    ((2, 2, 9, 7), dict(kernel_size=(2, 3), output_ratio=(0.5, 0.6))),
    ((2, 8, 8), dict(kernel_size=3, output_ratio=0.5)),
    ((1, 2, 5, 6), dict(kernel_size=(5, 1), output_size=(1, 6))),          # one output row, kernel = input
    ((4, 2, 6, 5), dict(kernel_size=2, output_size=(3, 4))),               # a batch GT_DEVICES shards
]
CASES_3D = [
    ((2, 2, 5, 6, 7), dict(kernel_size=2, output_size=(3, 4, 4))),
    ((2, 6, 5, 7), dict(kernel_size=(1, 2, 3), output_size=3)),
    ((1, 3, 6, 6, 5), dict(kernel_size=(2, 2, 1), output_ratio=0.5)),
    ((2, 7, 6, 8), dict(kernel_size=2, output_ratio=(0.3, 0.5, 0.7))),
    ((4, 1, 4, 5, 4), dict(kernel_size=2, output_size=2)),
]


def _both(cases, float32_too):
    """Every case in float64, those at ``float32_too`` in float32 too (the suite's time budget)."""
    return ([pytest.param(*c, "float64") for c in cases]
            + [pytest.param(*cases[i], "float32") for i in float32_too])


@pytest.mark.parametrize("shape,kwargs,dtype", _both(CASES_2D, (0, 3)))
def test_2d_matches_torch(shape, kwargs, dtype):
    _beside_torch(2, shape, kwargs, dtype, seed=len(shape))


@pytest.mark.parametrize("shape,kwargs,dtype", _both(CASES_3D, (1, 2)))
def test_3d_matches_torch(shape, kwargs, dtype):
    _beside_torch(3, shape, kwargs, dtype, seed=len(shape))


@pytest.mark.parametrize("nd", [2, 3])
def test_ties_nans_and_infs_get_torchs_indices_and_gradients(nd):
    x = np.round(randn(2, 2, *(6,) * nd, seed=nd))                       # many ties
    x.reshape(-1)[[3, 40, 41, 100]] = np.nan
    x.reshape(-1)[[7, 60]] = -np.inf
    x.reshape(-1)[[8, 9]] = np.inf
    _beside_torch(nd, x.shape, dict(kernel_size=2, output_size=3 if nd == 3 else 4), "float64", values=x)
    _beside_torch(nd, x.shape, dict(kernel_size=3, output_size=2), "float32", values=np.full(x.shape, -np.inf))


@pytest.mark.parametrize("nd", [2, 3])
def test_float16_and_larger_sample_batches_and_edge_samples_match_torch(nd):
    torch = _torch()
    name, shape = f"fractional_max_pool{nd}d", (2, 2) + (9, 8, 7)[:nd]
    x = randn(*shape, seed=nd)
    for dtype, u in (("float16", _samples(2, 2, nd, 0)),                 # torch's half arithmetic
                     ("float32", _samples(5, 2, nd, 1)),                 # only the first 2 rows are used
                     ("float64", np.array([1.5, -0.5, 7.25])[:nd] * np.ones((2, 2, 1)))):  # torch accepts these
        ours = getattr(F, name)(gt.tensor(x, dtype=getattr(gt, dtype)), 2, 3, return_indices=True,
                                _random_samples=gt.tensor(u, dtype=getattr(gt, dtype)))
        theirs = getattr(torch.nn.functional, name)(torch.tensor(x, dtype=getattr(torch, dtype)), 2, 3,
                                                     return_indices=True,
                                                     _random_samples=torch.tensor(u, dtype=getattr(torch, dtype)))
        assert ours[0].dtype == getattr(gt, dtype)
        for a, b in zip(ours, theirs):
            np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_float16_windows_follow_torchs_half_arithmetic():
    # samples for which float32 arithmetic would move a window: torch computes in the input's dtype
    torch = _torch()
    x, u = distinct(1, 1, 10, 10, seed=4), np.array([[[0.4443359375, 0.33251953125]]])
    ours = F.fractional_max_pool2d(gt.tensor(x, dtype=gt.float16), 1, (9, 6), return_indices=True,
                                   _random_samples=gt.tensor(u, dtype=gt.float16))[1]
    theirs = torch.nn.functional.fractional_max_pool2d(torch.tensor(x).half(), 1, (9, 6), return_indices=True,
                                                       _random_samples=torch.tensor(u).half())[1]
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())


@pytest.mark.parametrize("nd", [2, 3])
def test_a_batch_of_data_sharded_by_gt_devices_gives_torchs_answer(nd):
    torch = _torch()
    x, u = gt.randn(4, 2, *(6, 5, 5)[:nd]), gt.rand(4, 2, nd)             # Shard(0) under GT_DEVICES
    ours = getattr(F, f"fractional_max_pool{nd}d")(x, 2, 3, return_indices=True, _random_samples=u)
    theirs = getattr(torch.nn.functional, f"fractional_max_pool{nd}d")(
        torch.from_numpy(x.numpy()), 2, 3, return_indices=True, _random_samples=torch.from_numpy(u.numpy()))
    for a, b in zip(ours, theirs):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_gradients_match_finite_differences():
    u2, u3 = gt.tensor(_samples(1, 1, 2, 0)), gt.tensor(_samples(1, 1, 3, 0))
    check_grad(lambda x: F.fractional_max_pool2d(x, 2, (2, 2), _random_samples=u2), distinct(1, 1, 3, 4))
    check_grad(lambda x: F.fractional_max_pool3d(x, (1, 1, 2), (2, 1, 1), _random_samples=u3),
               distinct(1, 1, 3, 2, 3))


def test_empty_batch_empty_output_and_the_with_indices_names():
    torch = _torch()
    x = distinct(2, 3, 6, 5)
    for name, kwargs in (("fractional_max_pool2d_with_indices", dict(output_size=(0, 2))),
                         ("fractional_max_pool3d_with_indices", dict(output_ratio=0.1))):
        t = x if name.startswith("fractional_max_pool3d") else x[0]
        values, indices = getattr(F, name)(gt.tensor(t), 2, **kwargs)
        tv, ti = getattr(torch.nn.functional, name)(torch.tensor(t), 2, **kwargs)
        assert values.shape == tuple(tv.shape) and indices.shape == tuple(ti.shape) and values.numel() == 0
    y = F.fractional_max_pool2d(gt.zeros(0, 3, 6, 5), 2, 3)
    assert y.shape == tuple(torch.nn.functional.fractional_max_pool2d(torch.zeros(0, 3, 6, 5), 2, 3).shape)


@pytest.mark.parametrize("nd", [2, 3])
def test_indices_feed_max_unpool_as_torchs(nd):
    torch = _torch()
    shape = (2, 2) + (7, 6, 8)[:nd]
    u, x = _samples(2, 2, nd, 3), distinct(*shape, seed=5)
    kwargs = dict(kernel_size=2, output_size=3, return_indices=True)
    ours = getattr(nn, f"FractionalMaxPool{nd}d")(**kwargs, _random_samples=gt.tensor(u))(gt.tensor(x))
    theirs = getattr(torch.nn, f"FractionalMaxPool{nd}d")(**kwargs, _random_samples=torch.tensor(u))(
        torch.tensor(x))
    size = shape[-nd:]
    unpooled = getattr(nn, f"MaxUnpool{nd}d")(3, 2)(*ours, output_size=size)
    expected = getattr(torch.nn, f"MaxUnpool{nd}d")(3, 2)(*theirs, output_size=size)
    np.testing.assert_array_equal(unpooled.numpy(), expected.numpy())


@pytest.mark.parametrize("nd,kwargs", [(2, dict(kernel_size=3, output_size=(4, 3))),
                                       (2, dict(kernel_size=(2, 3), output_ratio=0.5, return_indices=True)),
                                       (3, dict(kernel_size=2, output_ratio=(0.5, 0.4, 0.6))),
                                       (3, dict(kernel_size=(1, 2, 2), output_size=3))])
def test_modules_state_repr_and_outputs_match_torch(nd, kwargs):
    torch = _torch()
    name, shape = f"FractionalMaxPool{nd}d", (2, 3) + (8, 7, 9)[:nd]
    u, x = _samples(2, 3, nd, 7), distinct(*shape, seed=8)
    ref = getattr(torch.nn, name)(**kwargs, _random_samples=torch.tensor(u))
    module = getattr(nn, name)(**kwargs)
    assert repr(module) == repr(ref)
    assert module.state_dict() == {} and module._random_samples is None
    for attr in ("kernel_size", "output_size", "output_ratio", "return_indices"):
        assert getattr(module, attr) == getattr(ref, attr), attr
    module = getattr(nn, name)(**kwargs, _random_samples=gt.zeros(2, 3, nd, dtype=gt.float64))
    module.load_state_dict({k: gt.tensor(v.numpy()) for k, v in ref.state_dict().items()})
    assert list(module.state_dict()) == ["_random_samples"]
    ours, theirs = module(gt.tensor(x)), ref(torch.tensor(x))
    for a, b in zip(ours if isinstance(ours, tuple) else (ours,), theirs if isinstance(theirs, tuple) else (theirs,)):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


@pytest.mark.parametrize("nd", [2, 3])
def test_without_samples_torchs_shape_window_maxima_and_the_seed_repeats(nd):
    torch = _torch()
    shape, k = (2, 3) + (9, 8, 7)[:nd], (2, 3, 2)[:nd]
    x = distinct(*shape, seed=9)
    pool = getattr(F, f"fractional_max_pool{nd}d")
    gt.manual_seed(11)
    values, indices = pool(gt.tensor(x, dtype=gt.float32), k, output_ratio=0.5, return_indices=True)
    theirs = getattr(torch.nn.functional, f"fractional_max_pool{nd}d")(torch.tensor(x, dtype=torch.float32), k,
                                                                          output_ratio=(0.5,) * nd)
    assert values.shape == tuple(theirs.shape) and values.dtype == gt.float32
    # each value is the input at its index and the largest of some (k) window holding that index
    flat, idx, vals = x.reshape(6, -1).astype(np.float32), indices.numpy().reshape(6, -1), values.numpy()
    np.testing.assert_array_equal(np.take_along_axis(flat, idx, 1), vals.reshape(6, -1))
    planes = x.astype(np.float32)
    window_max = np.lib.stride_tricks.sliding_window_view(planes, k, axis=tuple(range(2, 2 + nd)))
    window_max = window_max.max(axis=tuple(range(2 + nd, 2 + 2 * nd)))            # (2, 3, *starts)
    coords = np.unravel_index(indices.numpy(), shape[-nd:])                        # nd x (2, 3, *out)
    lead = np.ix_(range(2), range(3))
    lead = tuple(a.reshape(a.shape + (1,) * nd) for a in lead)
    found = np.zeros(values.shape, bool)
    for offset in np.ndindex(*k):
        start = [c - o for c, o in zip(coords, offset)]
        valid = np.all([(s >= 0) & (s <= n - kk) for s, n, kk in zip(start, shape[-nd:], k)], axis=0)
        clipped = tuple(np.clip(s, 0, n - kk) for s, n, kk in zip(start, shape[-nd:], k))
        found |= valid & (window_max[lead + clipped] == vals)
    assert found.all()
    planes = gt.tensor(planes)
    gt.manual_seed(11)
    u = gt.rand(2, 3, nd)
    again = pool(planes, k, output_ratio=0.5, return_indices=True, _random_samples=u)
    np.testing.assert_array_equal(again[1].numpy(), indices.numpy())
    gt.manual_seed(11)
    np.testing.assert_array_equal(pool(planes, k, output_ratio=0.5).numpy(), values.numpy())


X2, X3 = gt.zeros(2, 3, 7, 8), gt.zeros(2, 3, 5, 6, 7)
U2 = gt.zeros(2, 3, 2)


@pytest.mark.parametrize("call,exc,match", [
    (lambda: F.fractional_max_pool2d(X2, 2), ValueError, "requires specifying either an output_size or an "
                                                          "output_ratio"),
    (lambda: F.fractional_max_pool2d(X2, 2, output_size=(7, 3)), ValueError,
     r"pool height 2 too large relative to input height 7"),
    (lambda: F.fractional_max_pool2d(X2, 2, output_ratio=(0.5, 1.0)), ValueError,
     r"pool width 2 too large relative to input width 8"),
    (lambda: F.fractional_max_pool3d(X3, 2, output_size=(4, 3, 3)), ValueError,
     r"pool time 2 too large relative to input time 5 \(output time 4 needs output \+ kernel <= input\)"),
    (lambda: F.fractional_max_pool2d(X2, 0, 3), ValueError, r"kernel_size must be an int or a tuple of 2 ints, each at "
                                                            r"least 1, got 0"),
    (lambda: F.fractional_max_pool2d(X2, (2, 2, 2), 3), ValueError, r"kernel_size must be .* got \(2, 2, 2\)"),
    (lambda: F.fractional_max_pool2d(X2, 2.0, 3), ValueError, r"kernel_size .* got 2\.0"),
    (lambda: F.fractional_max_pool2d(X2, 2, (-1, 3)), ValueError, r"output_size must be .* at least 0, got \(-1, 3\)"),
    (lambda: F.fractional_max_pool3d(X3, 2, (3, 3)), ValueError, r"output_size must be .* 3 ints"),
    (lambda: F.fractional_max_pool2d(X2, 2, output_ratio=(0.5, 0.5, 0.5)), ValueError,
     r"output_ratio must be a number or a tuple of 2 numbers in \(0, 1\), got \(0.5, 0.5, 0.5\)"),
    (lambda: F.fractional_max_pool2d(X2, 2, output_ratio="half"), ValueError, "output_ratio must be"),
    (lambda: F.fractional_max_pool2d(X2[0, 0], 2, 3), ValueError, r"expected a 3-D \(unbatched\) or 4-D \(batched\) "
                                                                  r"input, got input of shape \(7, 8\)"),
    (lambda: F.fractional_max_pool3d(X2[0], 2, 3), ValueError, r"expected a 4-D \(unbatched\) or 5-D"),
    (lambda: F.fractional_max_pool2d(gt.zeros(2, 0, 7, 8), 2, 3), ValueError,
     r"non-zero size for non-batch dimensions, got input of shape \(2, 0, 7, 8\)"),
    (lambda: F.fractional_max_pool2d(gt.zeros(2, 3, 7, 8, dtype=gt.int64), 2, 3), TypeError,
     "expected a floating point input, got gt.int64"),
    (lambda: F.fractional_max_pool2d(X2, 2, 3, _random_samples=gt.zeros(2, 3, 2, dtype=gt.float64)), TypeError,
     r"_random_samples to have the same dtype as input \(gt.float32\), got gt.float64"),
    (lambda: F.fractional_max_pool2d(X2, 2, 3, _random_samples=gt.zeros(2, 3)), ValueError,
     r"_random_samples to have 3 dimensions \(N, C, 2\), got shape \(2, 3\)"),
    (lambda: F.fractional_max_pool2d(X2, 2, 3, _random_samples=gt.zeros(1, 3, 2)), ValueError,
     r"_random_samples.size\(0\) no less than the input batch size 2, got shape \(1, 3, 2\)"),
    (lambda: F.fractional_max_pool2d(X2, 2, 3, _random_samples=gt.zeros(2, 2, 2)), ValueError,
     r"_random_samples.size\(1\) equal to the input channel size 3"),
    (lambda: F.fractional_max_pool3d(X3, 2, 3, _random_samples=U2), ValueError,
     r"_random_samples.size\(2\) equal to 3, got 2"),
    (lambda: F.fractional_max_pool2d(X2, 2, 3, _random_samples="u"), TypeError, "_random_samples must be a gt.Tensor"),
    (lambda: nn.FractionalMaxPool2d(2), ValueError,
     "FractionalMaxPool2d requires specifying either an output size, or a pooling ratio"),
    (lambda: nn.FractionalMaxPool3d(2, 3, 0.5), ValueError, "only one of output_size and output_ratio may be "
                                                             "specified"),
    (lambda: F.fractional_max_pool2d(gt.zeros(1, 1, 17, 17), 1, 10, _random_samples=gt.full((1, 1, 2), 239753232.0)),
     ValueError, r"_random_samples put a pooling window outside the input \(expected samples in \[0, 1\), got window "
                 r"starts from 0 to 32, valid: 0 to 16\)"),
    (lambda: nn.FractionalMaxPool2d(2, output_ratio=(0.5, 1.0)), ValueError,
     r"output_ratio must be between 0 and 1 \(got \(0.5, 1.0\)\)"),
    (lambda: nn.FractionalMaxPool3d(0, 3), ValueError, "kernel_size must be greater than 0, but got 0"),
    (lambda: nn.FractionalMaxPool2d((2, -1), 3), ValueError, r"kernel_size must be greater than 0, but got \(2, -1\)"),
])
def test_errors_name_the_problem(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


@pytest.mark.parametrize("nd,shape,size,match", [
    (2, (2, 3, 7, 8), (7, 3), "pool height 2 too large relative to input height 7"),
    (2, (2, 3, 7, 8), (3, 8), "pool width 2 too large relative to input width 8"),
    (3, (2, 3, 5, 6, 7), (4, 3, 3), "pool time 2 too large relative to input time 5"),
    (3, (3, 5, 6, 7), (3, 5, 3), "pool height 2 too large relative to input height 6"),
])
def test_torch_refuses_the_same_sizes_with_the_same_words(nd, shape, size, match):
    torch = _torch()
    with pytest.raises(RuntimeError, match=match):
        getattr(torch.nn.functional, f"fractional_max_pool{nd}d")(torch.zeros(shape), 2, size)
    with pytest.raises(ValueError, match=match):
        getattr(F, f"fractional_max_pool{nd}d")(gt.zeros(*shape), 2, size)
    just_fits = tuple(n - 2 + (nd == 2) for n in shape[-nd:])                  # the largest size each accepts
    theirs = getattr(torch.nn.functional, f"fractional_max_pool{nd}d")(torch.zeros(shape), 2, just_fits)
    assert getattr(F, f"fractional_max_pool{nd}d")(gt.zeros(*shape), 2, just_fits).shape == tuple(theirs.shape)
