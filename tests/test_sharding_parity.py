"""User-level programs run twice, on one device and on 4 virtual devices: the same values,
dtypes, shapes, leaf gradients and optimizer steps (float32 to 1e-5; sums may reorder).

Batches of 1, 2, 3 and 5 rows over 4 devices give uneven and empty blocks. Found by a
differential fuzzer (sharded against unsharded): a ``Partial`` value (a sum over the sharded
axis) multiplied by an infinite scalar or divided by zero was scaled share by share, so a share
of 0 gave NaN where the sum gave inf (``var``/``std`` with ``correction`` at least the count
divide by zero: torch gives inf there).
"""

import numpy as np
import pytest

import gt
import gt.nn.functional as F
from gt import nn
from gt.sharding import Partial, Shard, use_mesh
from helpers import randn

pytestmark = pytest.mark.own_mesh   # every mesh chosen with use_mesh (tests/conftest.py)

RTOL, ATOL = 1e-5, 1e-6
BATCHES = (1, 2, 3, 5)


def _data(arr, n):
    """A float32 batch laid out as data: split along axis 0 over all ``n`` devices (empty
    blocks where it has fewer rows)."""
    t = gt.from_numpy(np.ascontiguousarray(arr, dtype=arr.dtype))
    return t.shard(0) if n > 1 else t


def _both(fn):
    """``fn(n)`` on one device and on 4: the two results (lists of numpy arrays or None)."""
    out = []
    for n in (1, 4):
        with use_mesh(n):
            out.append(fn(n))
    return out


def _assert_same(one, four):
    assert len(one) == len(four)
    for i, (a, b) in enumerate(zip(one, four)):
        if a is None or b is None:
            assert a is None and b is None, i
            continue
        assert a.dtype == b.dtype and a.shape == b.shape, (i, a.dtype, a.shape, b.dtype, b.shape)
        if a.dtype.kind == "f":
            np.testing.assert_allclose(b, a, rtol=RTOL, atol=ATOL, err_msg=str(i))
        else:
            np.testing.assert_array_equal(b, a, err_msg=str(i))


# ---- Partial values scaled by inf, or divided by zero (the mended bug) ----------------------
ROWS = np.array([[1.0, 2.0], [0.0, -2.0], [-1.0, 1.0], [3.0, 0.0], [-3.0, 0.0]], np.float32)

NONLINEAR_SCALES = {
    "times_inf": lambda s: s * float("inf"),
    "times_minus_inf": lambda s: s * float("-inf"),
    "inf_times": lambda s: float("inf") * s,
    "over_zero": lambda s: s / 0,
    "over_zero_float": lambda s: s / 0.0,
    "mean_over_zero": lambda s: s.mean() / 0,
    "times_numpy_inf": lambda s: s * np.float32("inf"),
    "times_nan": lambda s: s * float("nan"),
    "twice_over_zero": lambda s: (s * 2) / 0,
}


@pytest.mark.parametrize("name", sorted(NONLINEAR_SCALES))
def test_partial_sum_times_inf_or_over_zero_is_the_one_device_value(name):
    fn = NONLINEAR_SCALES[name]

    def run(n):
        s = _data(ROWS, n).sum(0)
        if n > 1:
            assert s.placement == Partial()
        with np.errstate(all="ignore"):
            return [np.asarray(fn(s).numpy())]

    one, four = _both(run)
    np.testing.assert_array_equal(four[0], one[0])   # NaN and inf where one device has them


def test_partial_sum_times_finite_scalar_stays_partial():
    """The mend keeps a finite scale share by share: no collective added on that path."""
    with use_mesh(4):
        s = _data(ROWS, 4).sum(0)
        assert (s * 2.5).placement == Partial() and (s / 3).placement == Partial()
        np.testing.assert_allclose((s / 4).numpy(), ROWS.sum(0) / 4, rtol=RTOL)


@pytest.mark.filterwarnings("ignore:.*degrees of freedom")   # torch's warning for it
@pytest.mark.parametrize("correction", [5, 6, 12])
@pytest.mark.parametrize("op", ["var", "std"])
def test_var_std_with_correction_past_the_count_over_sharded_axis(op, correction):
    torch = pytest.importorskip("torch")
    a = np.arange(10.0, dtype=np.float32).reshape(5, 2)
    with np.errstate(all="ignore"):
        expected = getattr(torch.tensor(a), op)(0, correction=correction).numpy()
        one, four = _both(lambda n: [getattr(_data(a, n), op)(0, correction=correction).numpy()])
    np.testing.assert_array_equal(one[0], expected)
    np.testing.assert_array_equal(four[0], expected)


# ---- reductions, layout, indexing and joins on uneven batches -------------------------------
def _w(shape, seed):
    return gt.tensor(randn(*shape, seed=seed).astype(np.float32), requires_grad=True)


PROGRAMS = {
    "sum0": lambda x, B: x.sum(0),
    "mean_all": lambda x, B: x.mean(),
    "max0": lambda x, B: x.max(dim=0).values,
    "argmax0": lambda x, B: x.argmax(0),
    "var0": lambda x, B: x.var(0),
    "softmax0": lambda x, B: x.softmax(0),
    "logsumexp0": lambda x, B: x.logsumexp(0),
    "cumsum0": lambda x, B: x.cumsum(0),
    "sort0": lambda x, B: x.sort(0).values,
    "topk0": lambda x, B: x.topk(1, 0).values,
    "topk2_indices": lambda x, B: x.topk(2, 2).indices,
    "reshape_flatten": lambda x, B: x.reshape(B * 3, 4).flatten(),
    "permute": lambda x, B: x.permute(2, 0, 1) * 2,
    "transpose_matmul": lambda x, B: x.reshape(B, -1).T @ x.reshape(B, -1),
    "slice_step": lambda x, B: x[::2, 1:],
    "int_array": lambda x, B: x[gt.tensor([B - 1, 0, B - 1])],
    "bool_mask": lambda x, B: x[x > 0],
    "cat_split": lambda x, B: gt.cat([x, x * 2], 0).split(2, 0)[-1],
    "stack_chunk": lambda x, B: gt.stack([x, x + 1], 1).chunk(2, 2)[1],
    "linear": lambda x, B: F.linear(x, _w((5, 4), 1), _w((5,), 2)),
    "einsum": lambda x, B: gt.einsum("bcd,ecd->be", x, x),
    "layer_norm": lambda x, B: F.layer_norm(x, (4,), _w((4,), 3), _w((4,), 4)),
    "attention": lambda x, B: F.scaled_dot_product_attention(x, x * 2, x, is_causal=True),
    "ce_ignore_smoothing": lambda x, B: F.cross_entropy(
        x.reshape(B, -1), gt.tensor(np.arange(B) % 3), ignore_index=1, label_smoothing=0.2),
    "ce_3d_ignore": lambda x, B: F.cross_entropy(
        x, gt.tensor(np.where(np.arange(B * 4).reshape(B, 4) % 3 == 0, -100, 1)), label_smoothing=0.1),
    "mse": lambda x, B: F.mse_loss(x, x.detach().flip(0)),
    "inplace_setitem": lambda x, B: _setitem(x.clone(), (slice(1, None),), 5.0),
    "inplace_add": lambda x, B: x.clone().add_(_w((3, 4), 5)).mul_(2),
}


def _setitem(t, index, value):
    t[index] = value
    return t


@pytest.mark.parametrize("B", BATCHES)
@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_program_on_uneven_batch_equals_one_device(name, B):
    arr = randn(B, 3, 4, seed=B).astype(np.float32)
    up = None

    def run(n):
        nonlocal up
        x = _data(arr, n).detach().requires_grad_()
        y = PROGRAMS[name](x, B)
        out = [np.asarray(y.numpy())]
        if y.requires_grad:
            up = randn(*y.shape, seed=7).astype(np.float32) if up is None else up
            (y * gt.tensor(up)).sum().backward()
            out.append(np.asarray(x.grad.numpy()))
            if n > 1:
                assert x.grad.placement == Shard(0)
        return out

    one, four = _both(run)
    _assert_same(one, four)


# ---- optimizer steps of a small MLP and of lpm's PixelTransformer ---------------------------
def _train(n, make, optimizer, batches, frozen=()):
    gt.manual_seed(0)
    model = make()
    for name, p in model.named_parameters():
        if name in frozen:
            p.requires_grad_(False)
    opt = optimizer([p for p in model.parameters() if p.requires_grad])
    losses = []
    for x, y in batches:
        loss = F.cross_entropy(model(_data(x, n)), _data(y, n), label_smoothing=0.1, ignore_index=2)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    params = [np.asarray(p.detach().numpy()) for p in model.parameters()]
    return [np.array(losses)] + params


def _mlp():
    return nn.Sequential(nn.Flatten(), nn.Linear(12, 16), nn.GELU(), nn.LayerNorm(16), nn.Linear(16, 5))


@pytest.mark.parametrize("opt", ["sgd", "adam"])
def test_mlp_steps_on_batches_of_1_2_3_5_equal_one_device(opt):
    rng = np.random.default_rng(0)
    batches = [(rng.standard_normal((B, 3, 4)).astype(np.float32), rng.integers(0, 5, B)) for B in BATCHES]
    make_opt = (lambda p: gt.optim.SGD(p, lr=0.1, momentum=0.9)) if opt == "sgd" else \
        (lambda p: gt.optim.Adam(p, lr=1e-2, weight_decay=1e-2))
    one, four = _both(lambda n: _train(n, _mlp, make_opt, batches))
    _assert_same(one, four)


@pytest.mark.parametrize("opt", ["sgd", "adam"])
def test_pixel_transformer_steps_on_batches_of_1_2_3_5_equal_one_device(opt):
    from lpm.model import PixelTransformer

    cfg = dict(img_size=4, embed_dim=16, num_heads=2, num_layers=1, ff_dim=32, num_classes=5,
               max_seq_len=8, pos_encoding="learned")
    rng = np.random.default_rng(1)
    batches = [(rng.standard_normal((B, 3, 4, 4)).astype(np.float32), rng.integers(0, 5, B)) for B in BATCHES]
    make_opt = (lambda p: gt.optim.SGD(p, lr=0.05)) if opt == "sgd" else (lambda p: gt.optim.Adam(p, lr=1e-3))
    # The key projection's bias has a gradient of zero up to rounding (softmax ignores it): Adam's
    # first step, about lr * sign(g), would compare rounding noise.
    frozen = ("blocks.0.attn.k_proj.bias",)
    one, four = _both(lambda n: _train(n, lambda: PixelTransformer(**cfg), make_opt, batches, frozen))
    _assert_same(one, four)


_NO_BROADCAST = {
    "floor_divide": lambda m, a, b: a // b,
    "remainder": lambda m, a, b: a % b,
    "div floor": lambda m, a, b: m.div(a, b, rounding_mode="floor"),
    "div trunc": lambda m, a, b: m.div(a, b, rounding_mode="trunc"),
    "int remainder": lambda m, a, b: a.long() % b.long(),
    "clamp(min=tensor)": lambda m, a, b: a.clamp(min=b),
    "clamp(tensor, tensor)": lambda m, a, b: m.clamp(a, b, b + 1),
    "lerp": lambda m, a, b: m.lerp(a, b, 0.3),
}


@pytest.mark.parametrize("name", list(_NO_BROADCAST))
def test_shapes_that_do_not_broadcast_are_refused_over_the_mesh_as_torch(name):
    """(6,) and (4,) do not broadcast; split over 4 devices their blocks (2, 2, 1, 1) and (1, 1, 1, 1)
    do, and floor division, remainder, div with a rounding mode, clamp with tensor bounds and lerp
    gave a (4,) result from them (found by tests/test_fuzz_torch_parity.py). Refused with torch's
    class on every mesh (on one device some were numpy's ValueError alone)."""
    torch = pytest.importorskip("torch")
    fn = _NO_BROADCAST[name]
    with pytest.raises(RuntimeError):
        fn(torch, torch.arange(1.0, 7.0), torch.arange(1.0, 5.0))
    for n in (1, 4):
        with use_mesh(n):
            a = _data(np.arange(1, 7, dtype=np.float32), n)
            b = _data(np.arange(1, 5, dtype=np.float32), n)
            with pytest.raises(RuntimeError, match="cannot be broadcast"):
                fn(gt, a, b)
