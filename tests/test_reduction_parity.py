"""Reductions and statistics beside torch 2.13: gradients where the extremum is NaN, bool inputs
of max/min/argmax/median, ``linalg.vector_norm(dtype=)``, norms of 0-d tensors, zero-order norms
on the tape, and torch's refusals (integer ``dtype=`` of ``mean``, half ``quantile``)."""

import math

import numpy as np
import pytest

import gt

torch = pytest.importorskip("torch")

NAN = math.nan


def _grads(fn_gt, fn_torch, values, upstream_seed=0):
    """Forward values and the input's gradient under a random upstream gradient, in gt and torch."""
    x = gt.tensor(values, requires_grad=True)
    t = torch.tensor(values, requires_grad=True)
    yg, yt = fn_gt(x), fn_torch(t)
    up = np.random.default_rng(upstream_seed).standard_normal(tuple(yt.shape)).astype(np.float32)
    (yg * gt.tensor(up)).sum().backward()
    (yt * torch.tensor(up)).sum().backward()
    return yg, yt, x.grad.numpy(), None if t.grad is None else t.grad.numpy()


def _same(a, b):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


ROWS = [[1.0, NAN, 2.0], [3.0, 3.0, 0.0]]


@pytest.mark.parametrize("name", ["amax", "amin"])
@pytest.mark.parametrize("kwargs", [{"dim": 1}, {"dim": 1, "keepdim": True}, {"dim": (0, 1)}, {}])
def test_amax_amin_gradient_is_nan_over_a_nan_slice_as_torch(name, kwargs):
    yg, yt, gg, gtorch = _grads(lambda x: getattr(gt, name)(x, **kwargs), lambda t: getattr(torch, name)(t, **kwargs),
                                ROWS)
    _same(yg.detach().numpy(), yt.detach().numpy())
    _same(gg, gtorch)          # NaN over the first row, split between the tied 3s (amax) in the second


def test_aminmax_gradient_over_a_nan_slice_as_torch():
    x = gt.tensor(ROWS, requires_grad=True)
    t = torch.tensor(ROWS, requires_grad=True)
    lo, hi = gt.aminmax(x, dim=1)
    tlo, thi = torch.aminmax(t, dim=1)
    (lo * 2 + hi).sum().backward()
    (tlo * 2 + thi).sum().backward()
    _same(x.grad.numpy(), t.grad.numpy())
    for ord in (math.inf, -math.inf):          # the inf-norms keep torch's zero gradient there
        yg, yt, gg, gtorch = _grads(lambda x: gt.linalg.vector_norm(x, ord, dim=1),
                                    lambda t: torch.linalg.vector_norm(t, ord, dim=1), [[1.0, NAN], [-3.0, 2.0]])
        _same(yg.detach().numpy(), yt.detach().numpy())
        _same(gg, gtorch)
    values = [[1.0, 3.0, 3.0], [2.0, -1.0, 0.5]]  # the training paths keep their values and gradients
    for fg, ft in ((lambda x: x.sum(dim=1), lambda t: t.sum(dim=1)), (lambda x: x.mean(), lambda t: t.mean()),
                   (lambda x: x.amax(dim=-1), lambda t: t.amax(dim=-1)), (lambda x: x.max(), lambda t: t.max()),
                   (lambda x: x.max(dim=1).values, lambda t: t.max(dim=1).values)):
        yg, yt, gg, gtorch = _grads(fg, ft, values)
        np.testing.assert_allclose(yg.detach().numpy(), yt.detach().numpy(), rtol=1e-6)
        np.testing.assert_allclose(gg, gtorch, rtol=1e-6)


@pytest.mark.parametrize("name", ["max", "min"])
@pytest.mark.parametrize("values", [[1.0, NAN, 2.0, NAN], [[1.0, NAN], [3.0, 3.0]], NAN])
def test_max_min_of_every_element_send_the_gradient_to_the_nans_as_torch(name, values):
    yg, yt, gg, gtorch = _grads(lambda x: getattr(x, name)(), lambda t: getattr(t, name)(), values)
    assert math.isnan(yg.item()) and math.isnan(yt.item())
    _same(gg, gtorch)


@pytest.mark.parametrize("name", ["max", "min"])
@pytest.mark.parametrize("shape", [(), (3,), (2, 3)])
def test_max_min_over_a_dim_of_a_bool_tensor_as_torch(name, shape):
    values = (np.arange(int(np.prod(shape))).reshape(shape) % 3 == 1)
    for kwargs in ({"dim": 0}, {"dim": -1, "keepdim": True}):
        g = getattr(gt.tensor(values), name)(**kwargs)
        t = getattr(torch.tensor(values), name)(**kwargs)
        assert g.values.dtype == gt.bool and g.indices.dtype == gt.int64
        _same(g.values.numpy(), t.values.numpy())
        _same(g.indices.numpy(), t.indices.numpy())
    if shape == ():                            # torch's 0-d kthvalue takes a bool
        g, t = gt.kthvalue(gt.tensor(values), 1, 0), torch.kthvalue(torch.tensor(values), 1, 0)
        assert g.values.item() is t.values.item() and g.indices.item() == t.indices.item()


@pytest.mark.parametrize("call", [lambda m, x: m.argmax(x), lambda m, x: m.argmin(x, dim=0),
                                  lambda m, x: x.argmax(dim=-1, keepdim=True), lambda m, x: m.median(x),
                                  lambda m, x: m.nanmedian(x, 0), lambda m, x: m.kthvalue(x, 1, 0)])
def test_bool_inputs_refused_as_torch(call):
    with pytest.raises(RuntimeError) as torch_error:        # NotImplementedError is one
        call(torch, torch.tensor([True, False]))
    with pytest.raises(RuntimeError, match="(?i)bool") as gt_error:
        call(gt, gt.tensor([True, False]))
    assert type(gt_error.value) is type(torch_error.value)     # what an `except` of torch's catches


def test_max_of_every_element_fills_the_gradient_off_the_maximum_as_torch():
    # torch's max()/min() over every element fill the gradient (0 off the extremum, whatever it
    # is); amax/amin over a dim multiply it by the mask
    for name in ("max", "min"):
        g, t = gt.tensor([3.0, 1.0, 2.0], requires_grad=True), torch.tensor([3.0, 1.0, 2.0], requires_grad=True)
        (getattr(g, name)() * math.inf).backward()
        (getattr(t, name)() * math.inf).backward()
        _same(g.grad.numpy(), t.grad.numpy())


@pytest.mark.parametrize("kwargs", [{"dtype": "float64"}, {"ord": 1, "dim": 0, "dtype": "float64"},
                                    {"ord": math.inf, "dtype": "float32"}, {"ord": 3, "dim": -1, "dtype": "float64"}])
def test_vector_norm_dtype_as_torch(kwargs):
    values = np.array([[1.5, -2.0, 0.25], [3.0, 0.0, -1.0]], dtype=np.float32)
    gkw = {k: (getattr(gt, v) if k == "dtype" else v) for k, v in kwargs.items()}
    tkw = {k: (getattr(torch, v) if k == "dtype" else v) for k, v in kwargs.items()}
    g = gt.linalg.vector_norm(gt.tensor(values), **gkw)
    t = torch.linalg.vector_norm(torch.tensor(values), **tkw)
    assert str(g.dtype).split(".")[-1] == str(t.dtype).split(".")[-1]
    np.testing.assert_allclose(g.numpy(), t.numpy(), rtol=1e-6)


@pytest.mark.parametrize("p", [3.0, 2.0, 0.5])
@pytest.mark.parametrize("dim", [0, -1, (0,)])
def test_norms_of_a_0d_tensor_over_dim_0_as_torch(p, dim):
    yg, yt, gg, gtorch = _grads(lambda x: x.norm(p, dim=dim), lambda t: t.norm(p, dim=dim), -1.5)
    assert yg.shape == tuple(yt.shape)
    np.testing.assert_allclose(yg.detach().numpy(), yt.detach().numpy(), rtol=1e-6)
    g = gt.linalg.vector_norm(gt.tensor(-1.5), p, dim=dim)
    np.testing.assert_allclose(g.numpy(), torch.linalg.vector_norm(torch.tensor(-1.5), p, dim=dim).numpy())
    np.testing.assert_allclose(gg, gtorch, rtol=1e-6)


@pytest.mark.parametrize("call", [lambda m, x, y: m.dist(x, y, 0), lambda m, x, y: m.linalg.vector_norm(x - y, 0),
                                  lambda m, x, y: m.linalg.vector_norm(x, 0, dim=1)])
def test_zero_order_norms_are_on_the_tape_as_torch(call):
    values = [[1.0, 0.0, 2.0], [0.0, 0.0, NAN]]
    x, t = gt.tensor(values, requires_grad=True), torch.tensor(values, requires_grad=True)
    g, r = call(gt, x, gt.ones(3)), call(torch, t, torch.ones(3))
    assert g.requires_grad and r.requires_grad
    _same(g.detach().numpy(), r.detach().numpy())
    g.sum().backward()                         # torch's backward runs too (its gradient is zero, None)
    assert x.grad is None or not np.asarray(x.grad.numpy()).any()


def test_median_of_an_empty_tensor_is_nan_on_the_tape_as_torch():
    x, t = gt.zeros(0, 3, requires_grad=True), torch.zeros(0, 3, requires_grad=True)
    for name in ("median", "nanmedian"):
        g, r = getattr(gt, name)(x), getattr(torch, name)(t)
        assert math.isnan(g.item()) and math.isnan(r.item()) and g.requires_grad and r.requires_grad
        g.backward()
        assert x.grad.shape == (0, 3)
    for dtype in ("int64", "int32"):           # an integer tensor's lowest value (the torch engine raised)
        for name in ("median", "nanmedian"):
            g = getattr(gt, name)(gt.zeros(0, dtype=getattr(gt, dtype)))
            r = getattr(torch, name)(torch.zeros(0, dtype=getattr(torch, dtype)))
            assert g.item() == r.item() and g.dtype == getattr(gt, dtype)


@pytest.mark.parametrize("name", ["mean", "nanmean"])
@pytest.mark.parametrize("dtype", ["int64", "int32", "bool"])
def test_mean_with_an_integer_dtype_refused_as_torch(name, dtype):
    with pytest.raises(RuntimeError, match="could not infer output dtype"):
        getattr(torch, name)(torch.tensor([1.0, 2.0]), dtype=getattr(torch, dtype))
    with pytest.raises(RuntimeError, match="could not infer output dtype"):
        getattr(gt, name)(gt.tensor([1.0, 2.0]), dtype=getattr(gt, dtype))
    with pytest.raises(RuntimeError, match="could not infer output dtype"):
        getattr(gt.tensor([1.0, 2.0]), name)(dim=0, dtype=getattr(gt, dtype))


@pytest.mark.parametrize("name", ["quantile", "nanquantile"])
def test_quantile_of_halves_refused_as_torch(name):
    with pytest.raises(RuntimeError):
        getattr(torch, name)(torch.tensor([1.0, 2.0], dtype=torch.float16), 0.5)
    with pytest.raises(TypeError, match="float32 or float64"):
        getattr(gt, name)(gt.tensor([1.0, 2.0], dtype=gt.float16), 0.5)


@pytest.mark.parametrize("name", ["median", "nanmedian"])
@pytest.mark.parametrize("values", [[-math.inf], [1.0, math.inf, math.inf], [math.inf, math.inf, -math.inf, NAN]])
def test_an_infinite_median_of_every_element_keeps_its_value_and_gradient_as_torch(name, values):
    yg, yt, gg, gtorch = _grads(lambda x: getattr(x, name)(), lambda t: getattr(t, name)(), values)
    _same(yg.detach().numpy(), yt.detach().numpy())
    _same(gg, gtorch)


@pytest.mark.parametrize("values, q, how", [([0.0, -math.inf], 0.6, "linear"), ([1.0, math.inf], 0.3, "linear"),
                                            ([-math.inf], 0.0, "midpoint"), ([1.0, math.inf], 0.5, "midpoint"),
                                            ([[2.0, -math.inf, 1.0], [0.5, 3.0, math.inf]], 0.75, "linear")])
def test_quantile_between_infinities_as_torch(values, q, how):
    for name in ("quantile", "nanquantile"):
        yg, yt, gg, gtorch = _grads(lambda x: getattr(gt, name)(x, q, dim=-1, interpolation=how),
                                    lambda t: getattr(torch, name)(t, q, dim=-1, interpolation=how), values)
        _same(yg.detach().numpy(), yt.detach().numpy())
        np.testing.assert_allclose(gg, gtorch, rtol=1e-6)


@pytest.mark.parametrize("name", ["cumsum", "cumprod"])
@pytest.mark.parametrize("shape, dim", [((20000,), 0), ((8, 3000), 1), ((3000, 8), 0)])
def test_float32_running_sums_and_products_to_torch_bits(name, shape, dim):
    """torch's CPU kernels accumulate float32 in float64 (float32 running sums drift: 2e-5 here)."""
    rng = np.random.default_rng(3)
    values = rng.standard_normal(shape).astype(np.float32)
    if name == "cumprod":
        values = 1 + values * np.float32(0.01)
    yg, yt, gg, gtorch = _grads(lambda x: getattr(x, name)(dim), lambda t: getattr(t, name)(dim), values)
    _same(yg.detach().numpy(), yt.detach().numpy())
    if name == "cumsum":                       # its gradient is a reversed running sum
        _same(gg, gtorch)


@pytest.mark.parametrize("seed", range(6))
def test_mode_reports_torch_index_among_ties_past_16_elements_and_with_nan(seed):
    """torch's CPU mode sorts with std::sort (unstable past 16 elements): gt replays it."""
    rng = np.random.default_rng(seed)
    shape = (3, int(rng.integers(17, 90)), 4)
    values = rng.integers(0, 5, shape).astype(np.float32)
    if seed % 2:
        values.flat[rng.integers(0, values.size, 6)] = NAN
    for dim in (0, 1, -1):
        g = gt.mode(gt.tensor(values, requires_grad=True), dim)
        t = torch.mode(torch.tensor(values, requires_grad=True), dim)
        _same(g.indices.numpy(), t.indices.numpy())
        _same(g.values.detach().numpy(), t.values.detach().numpy())
    ints = values.astype(np.int64) if not seed % 2 else np.nan_to_num(values, nan=7).astype(np.int64)
    _same(gt.tensor(ints).mode(1).indices.numpy(), torch.tensor(ints).mode(1).indices.numpy())


@pytest.mark.parametrize("name", ["quantile", "nanquantile"])
@pytest.mark.parametrize("seed", range(4))
def test_float32_quantiles_to_torch_bits(name, seed):
    """torch's lerp is one fused multiply-add from the nearer end: its last bits, here in float32."""
    rng = np.random.default_rng(seed)
    values = rng.standard_normal((4, int(rng.integers(2, 40)))).astype(np.float32)
    if name == "nanquantile":
        values[1, ::3] = NAN
    q = rng.random(6).astype(np.float32)
    for dim in (1, None):
        yg, yt, gg, gtorch = _grads(lambda x: getattr(gt, name)(x, gt.tensor(q), dim=dim),
                                    lambda t: getattr(torch, name)(t, torch.tensor(q), dim=dim), values)
        _same(yg.detach().numpy(), yt.detach().numpy())
        np.testing.assert_allclose(gg, gtorch, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("have, want", [("float32", "float16"), ("float64", "float32"), ("float16", "bfloat16")])
def test_norm_dtype_that_narrows_refused_as_torch(have, want):
    for call in (lambda m, x, d: x.norm(dtype=d), lambda m, x, d: m.linalg.vector_norm(x, 2, 0, dtype=d),
                 lambda m, x, d: m.norm(x, p=1, dim=0, dtype=d)):
        with pytest.raises(RuntimeError, match="without narrowing"):
            call(torch, torch.ones(3, dtype=getattr(torch, have)), getattr(torch, want))
        with pytest.raises(RuntimeError, match="without narrowing"):
            call(gt, gt.ones(3, dtype=getattr(gt, have)), getattr(gt, want))


# torch's exception classes where a dim list repeats a dim or an extremum has no element (found by
# tests/test_fuzz_torch_parity.py): gt raised ValueError alone; its errors are now both classes
_REFUSED = {
    "sum((0, 0))": lambda m: m.ones(2, 3).sum((0, 0)),
    "mean((1, -1))": lambda m: m.ones(2, 3).mean(dim=(1, -1), keepdim=True),
    "amax((0, -2))": lambda m: m.ones(2, 3).amax((0, -2)),
    "logsumexp((0, 0))": lambda m: m.ones(2, 3).logsumexp((0, 0)),
    "std((0, -1))": lambda m: m.ones(3).std((0, -1), correction=0),
    "flip((1, 1))": lambda m: m.ones(2, 3).flip((1, 1)),
    "squeeze((0, -2))": lambda m: m.ones(1, 3).squeeze((0, -2)),
    "max() of nothing": lambda m: m.ones(0, 3).max(),
    "amin() of nothing": lambda m: m.ones(0, 3).amin(),
    "amax(0) over an empty dim": lambda m: m.ones(0, 3).amax(0),
    "max(dim=0) over an empty dim": lambda m: m.ones(0, 3).max(dim=0),
    "min(dim=-1) over an empty dim": lambda m: m.ones(3, 0).min(dim=-1, keepdim=True),
    "argmax() of nothing": lambda m: m.ones(0, 3).argmax(),
    "argmin(0) over an empty dim": lambda m: m.ones(0, 3).argmin(0),
    "amin((0, -1)) of nothing: the empty dim first": lambda m: m.ones(0).amin((0, -1)),
    "amax((0, 0)) over an empty dim first": lambda m: m.ones(0, 2).amax((0, 0), keepdim=True),
}


@pytest.mark.parametrize("name", list(_REFUSED))
def test_repeated_dims_and_empty_extrema_raise_torch_exception_class(name):
    with pytest.raises(Exception) as want:
        _REFUSED[name](torch)
    with pytest.raises(type(want.value)) as got:
        _REFUSED[name](gt)
    assert isinstance(got.value, ValueError)     # gt's own class for them, kept
