"""gt.uint8, gt.int8 and gt.int16 (gt.short) beside torch's: dtype facts, creation, memory shared
with numpy, torch's type promotion, wraparound arithmetic, reductions, indexing, errors, files.
The data of (8, 5) shards over the mesh in the GT_DEVICES passes, as any data does."""

import io
import itertools
import re
import warnings

import numpy as np
import pytest

import gt
from helpers import torch_or_skip

torch = torch_or_skip()

SMALL = ["uint8", "int8", "int16"]
ALL = ["bool", "uint8", "int8", "int16", "int32", "int64", "float16", "bfloat16", "float32", "float64",
       "complex64", "complex128"]


def _name(dtype):
    return str(dtype).split(".")[-1]


def same(g, t):
    """``g`` (gt) equals ``t`` (torch) in dtype, shape and exact values (or both are the same plain value)."""
    if isinstance(t, torch.Tensor):
        assert isinstance(g, gt.Tensor), type(g)
        assert _name(g.dtype) == _name(t.dtype) and tuple(g.shape) == tuple(t.shape), (g, t)
        np.testing.assert_array_equal(g.detach().numpy(), t.detach().numpy())
    elif isinstance(t, (tuple, list)):
        assert len(g) == len(t)
        for a, b in zip(g, t):
            same(a, b)
    else:
        assert g == t, (g, t)


def both(expr, dt, **data):
    """``expr`` evaluated with ``X`` = torch and gt and ``D`` = the dtype named ``dt``; the arrays of
    ``data`` made tensors (gt's with ``gt.from_numpy``: sharded data under GT_DEVICES)."""
    out = []
    for X in (torch, gt):
        names = {"X": X, "D": getattr(X, dt), "np": np, "dt": dt}
        names.update({k: X.from_numpy(v.copy()) for k, v in data.items()})
        out.append(eval(expr, names))
    same(out[1], out[0])
    return out[1]


def sample(dt, shape=(8, 5), seed=0):
    info = np.iinfo(dt)
    return np.random.default_rng(seed).integers(info.min, info.max, size=shape, endpoint=True).astype(dt)


# ---- the dtypes ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("dt", SMALL)
def test_dtype_facts_are_torch_s(dt):
    g, t = getattr(gt, dt), getattr(torch, dt)
    assert (g.is_floating_point, g.is_complex, g.is_signed, g.itemsize) == \
           (t.is_floating_point, t.is_complex, t.is_signed, t.itemsize)
    i, ti = gt.iinfo(g), torch.iinfo(t)
    assert (i.bits, i.min, i.max, i.dtype) == (ti.bits, ti.min, ti.max, ti.dtype)
    assert repr(g) == f"gt.{dt}" and gt.tensor([1], dtype=dt).dtype is g and g == t and g == np.dtype(dt)
    x, tx = gt.ones(3, dtype=g), torch.ones(3, dtype=t)
    assert (x.is_signed(), x.element_size(), x.nbytes, x.is_floating_point()) == \
           (tx.is_signed(), tx.element_size(), tx.nbytes, tx.is_floating_point())
    assert x.type() == tx.type().replace("torch.", "gt.") and x.numpy().dtype == np.dtype(dt)
    with pytest.raises(TypeError, match="finfo"):
        gt.finfo(g)


def test_short_is_int16_and_the_reprs_are_torch_s():
    assert gt.short is gt.int16 and gt.tensor([1], dtype=gt.short).dtype is gt.int16
    for dt in SMALL:
        for data in ([1, 2], [], 5, [[1, 2], [3, 4]]):
            mine, theirs = gt.tensor(data, dtype=getattr(gt, dt)), torch.tensor(data, dtype=getattr(torch, dt))
            text = re.sub(r", placement=[^)]*\)", "", repr(mine))        # data is sharded on a mesh
            assert text == repr(theirs).replace("torch.", "gt."), (repr(mine), repr(theirs))
    assert str(gt.tensor([0, 255, 7], dtype=gt.uint8)).startswith("tensor([  0, 255,   7], dtype=gt.uint8")


@pytest.mark.parametrize("dt", SMALL)
def test_casts_and_their_method_names(dt):
    a = np.array([[1.9, -1.9, 127.0], [0.0, 100.5, -0.5]], dtype=np.float32)
    both("x.byte()", dt, x=np.abs(a))
    both("x.char()", dt, x=a)
    both("x.short()", dt, x=a * 200)
    both("x.to(D)", dt, x=np.abs(a))
    both("x.to(D).float() / 255", dt, x=np.abs(a))
    both("x.to(D).double()", dt, x=np.abs(a))
    both("x.to(D).long()", dt, x=np.abs(a))
    both("x.to(D).half()", dt, x=np.abs(a))
    both("x.to(D).bool()", dt, x=a)
    both("x.type(X.ByteTensor)", dt, x=a)
    both("x.type('torch.CharTensor')", dt, x=a)
    both("(x != 0).to(D)", dt, x=a)
    both("x.to(D)", dt, x=np.array([300, -1, 70000], dtype=np.int64))          # wraps as torch's CPU cast


@pytest.mark.parametrize("name", ["ByteTensor", "CharTensor", "ShortTensor"])
def test_legacy_constructors(name):
    for args in (([1, 0, 3],), (2, 3), ()):
        g, t = getattr(gt, name)(*args), getattr(torch, name)(*args)
        assert _name(g.dtype) == _name(t.dtype) and tuple(g.shape) == tuple(t.shape)
        assert isinstance(g, getattr(gt, name)) and not isinstance(g, gt.LongTensor)
    assert gt.ByteTensor([1, 255]).tolist() == torch.ByteTensor([1, 255]).tolist()
    with pytest.raises(TypeError, match="expected a tensor of dtype"):
        getattr(gt, name)(gt.ones(2))


# ---- creation --------------------------------------------------------------------------------------
@pytest.mark.parametrize("dt", SMALL)
def test_creation_with_dtype(dt):
    for expr in ("X.zeros(2, 3, dtype=D)", "X.ones(4, dtype=D)", "X.full((2,), 7, dtype=D)", "X.arange(5, dtype=D)",
                 "X.arange(0, 100, 30, dtype=D)", "X.tensor([[1, 2], [3, 4]], dtype=D)", "X.zeros_like(X.ones(2), dtype=D)",
                 "X.ones_like(X.ones(3, dtype=D))", "X.full_like(X.ones(2, dtype=D), 5)", "X.empty(2, 3, dtype=D).shape",
                 "X.empty_like(X.ones(2, dtype=D)).dtype", "X.ones(2, dtype=D).new_zeros(3)", "X.ones(2, dtype=D).new_full((2,), 9)",
                 "X.ones(2, dtype=D).new_tensor([1, 2])", "X.eye(2, dtype=D)", "X.randint(0, 5, (3,), dtype=D).dtype",
                 "X.tensor(np.array([1, 2], dtype=dt))", "X.as_tensor(np.array([1, 2], dtype=dt))", "X.tensor(np.dtype(dt).type(5))"):
        got = both(expr, dt)
        if isinstance(got, gt.Tensor) and "dtype=D" in expr and "like" not in expr:
            assert got.dtype is getattr(gt, dt)


def test_creation_wraps_and_refuses_as_torch():
    # torch lets negative ints wrap into uint8 (down to -255); anything else out of range is refused
    for expr in ("X.tensor([-1, -255], dtype=X.uint8)", "X.full((2,), -1, dtype=X.uint8)", "X.full_like(X.ones(2, dtype=X.uint8), -3)",
                 "X.ones(2, dtype=X.uint8).fill_(-1)", "X.ones(2, dtype=X.uint8).masked_fill(X.tensor([True, False]), -2)",
                 "X.tensor([-128, 127], dtype=X.int8)", "X.full((1,), -32768, dtype=X.int16)"):
        both(expr, "uint8")
    for expr in ("X.tensor([300], dtype=X.uint8)", "X.tensor([-256], dtype=X.uint8)", "X.tensor([128], dtype=X.int8)",
                 "X.tensor([-1.0], dtype=X.uint8)", "X.full((2,), 300, dtype=X.uint8)", "X.full((1,), 128, dtype=X.int8)",
                 "X.full((1,), -1.0, dtype=X.uint8)", "X.ones(2, dtype=X.uint8).fill_(256)", "X.tensor([2.0 ** 15], dtype=X.int16)"):
        with pytest.raises(RuntimeError):
            eval(expr, {"X": torch})
        with pytest.raises(RuntimeError, match="without overflow"):
            eval(expr, {"X": gt})
    for low, high, dt in ((0, 257, "uint8"), (-1, 5, "uint8"), (-129, 0, "int8"), (0, 2 ** 15 + 1, "int16")):
        with pytest.raises(RuntimeError, match="out of bounds"):
            torch.randint(low, high, (2,), dtype=getattr(torch, dt))
        with pytest.raises(RuntimeError, match="out of bounds for " + {"uint8": "unsigned char", "int8": "signed char",
                                                                       "int16": "short"}[dt]):
            gt.randint(low, high, (2,), dtype=getattr(gt, dt))
    x = gt.randint(-128, 128, (1000,), dtype=gt.int8)
    assert x.dtype is gt.int8 and int(x.min()) >= -128 and int(x.max()) <= 127


@pytest.mark.parametrize("dt", SMALL)
def test_from_numpy_keeps_the_dtype_and_shares_memory(dt):
    a = sample(dt)
    x, t = gt.from_numpy(a), torch.from_numpy(a)
    assert x.dtype is getattr(gt, dt) and x.tolist() == t.tolist()
    a[0, 0] = 7                       # torch's from_numpy shares memory: so does gt's
    assert x[0, 0].item() == t[0, 0].item() == 7
    if gt.get_mesh().size == 1 and gt.backend.B.name == "numpy":
        assert np.shares_memory(x.numpy(), a)
        x[1, 1] = 3                   # and writes through
        assert a[1, 1] == 3
    wide = gt.from_numpy(np.array([1, 60000], np.uint16))     # kept, as torch's (gt widened it to int64 before)
    assert wide.dtype is gt.uint16 and wide.tolist() == torch.from_numpy(np.array([1, 60000], np.uint16)).tolist()


# ---- promotion -------------------------------------------------------------------------------------
def test_promote_types_for_every_pair():
    for a, b in itertools.product(ALL, ALL):
        assert _name(gt.promote_types(getattr(gt, a), getattr(gt, b))) == \
               _name(torch.promote_types(getattr(torch, a), getattr(torch, b))), (a, b)


def test_result_type_with_numbers_and_0d_tensors():
    numbers = [True, 3, -1, 300, 2.5, 1j]
    for a in SMALL + ["bool", "int32", "int64", "float16", "float32", "float64"]:
        for n in numbers:
            if a == "float16" and isinstance(n, complex):
                continue                                    # torch's complex32, which gt has not
            assert _name(gt.result_type(gt.ones(2, dtype=getattr(gt, a)), n)) == \
                   _name(torch.result_type(torch.ones(2, dtype=getattr(torch, a)), n)), (a, n)
        for b in SMALL + ["bool", "int32", "int64", "float32", "float64"]:
            for shapes in (((2,), ()), ((), (2,)), ((), ())):
                ga, gb = gt.ones(shapes[0], dtype=getattr(gt, a)), gt.ones(shapes[1], dtype=getattr(gt, b))
                ta, tb = torch.ones(shapes[0], dtype=getattr(torch, a)), torch.ones(shapes[1], dtype=getattr(torch, b))
                assert _name(gt.result_type(ga, gb)) == _name(torch.result_type(ta, tb)), (a, b, shapes)
                if a in SMALL or b in SMALL:
                    same(ga + gb, ta + tb)


# ---- arithmetic ------------------------------------------------------------------------------------
@pytest.mark.parametrize("dt", SMALL)
def test_arithmetic_wraps_as_torch(dt):
    x, y = sample(dt, seed=1), sample(dt, seed=2)
    for expr in ("x + y", "x - y", "x * y", "-x", "x.neg()", "x.abs()", "x + 300", "x - 5", "x * 2 ** 40", "300 - x",
                 "x + True", "x * 1.5", "x / 2", "x / y.clamp(min=1)", "x ** 2", "2 ** x.clamp(0, 10)", "x.pow(3)",
                 "x.square()", "x.sign()", "x + y.to(X.int8)", "x * y.to(X.uint8)", "x - X.tensor(3)", "x + X.tensor(3, dtype=X.int8)",
                 "x * X.tensor(2.0)", "x.to(X.int64) + x", "X.maximum(x, y)", "X.minimum(x, y.to(X.int8))",
                 "x.float().lerp(y.float(), 0.5)"):
        both(expr, dt, x=x, y=y)


@pytest.mark.parametrize("dt", SMALL)
def test_integer_division_and_remainder(dt):
    x, y = sample(dt, seed=3), sample(dt, seed=4)
    y[y == 0] = 3
    for expr in ("x // y", "x % y", "x // 3", "x % 7", "x.div(y, rounding_mode='floor')", "x.div(y, rounding_mode='trunc')",
                 "x.fmod(y)", "x.remainder(y)", "x.floor_divide(y)", "X.tensor([-7, 7], dtype=D) // 2"
                 if dt != "uint8" else "X.tensor([249, 7], dtype=D) // 2"):
        both(expr, dt, x=x, y=y)
    if dt == "int8":
        both("X.tensor([-128], dtype=D).abs()", dt)                                  # wraps: itself
        both("X.tensor([-128], dtype=D) // -1", dt)
    for expr in ("x // 0", "x % 0", "x // (y * 0)", "x.fmod(0)", "x.remainder(0)"):
        with pytest.raises(RuntimeError, match="ZeroDivisionError"):
            eval(expr, {"x": torch.from_numpy(x), "y": torch.from_numpy(y)})
        with pytest.raises(RuntimeError, match="ZeroDivisionError"):
            eval(expr, {"x": gt.from_numpy(x), "y": gt.from_numpy(y)})


@pytest.mark.parametrize("dt", SMALL)
def test_powers_refused_as_torch(dt):
    x = gt.ones(3, dtype=getattr(gt, dt))
    with pytest.raises(RuntimeError, match="negative integer powers"):
        x ** -1
    with pytest.raises(RuntimeError, match="without overflow"):
        x ** 70000
    both("X.tensor([1, 2, 3], dtype=D).pow(X.tensor(-1))", dt)         # a tensor exponent: torch's wrapped 1/x


@pytest.mark.parametrize("dt", SMALL)
def test_bitwise_ops_and_shifts(dt):
    x, y = sample(dt, seed=5), sample(dt, seed=6)
    for expr in ("x & y", "x | y", "x ^ y", "~x", "x & 7", "x | -1", "x ^ 300", "x << 1", "x >> 1", "x << 3", "x >> 20",
                 "x << y.clamp(0, 20)", "x.bitwise_left_shift(9)", "x.bitwise_right_shift(15)", "x & True",
                 "X.gcd(x, y)", "X.lcm(x, y)"):
        both(expr, dt, x=x, y=y)


@pytest.mark.parametrize("dt", SMALL)
def test_comparisons_with_numbers_cast_as_torch(dt):
    x, y = sample(dt, seed=7), sample(dt, seed=8)
    for expr in ("x == y", "x < y", "x >= 3", "x < -1", "x == 300", "x > 200", "x < 2 ** 40", "x <= 1.5", "x != y.to(X.int8)",
                 "x.eq(y).all()", "x.lt(5)", "X.where(x > y, x, y)", "X.where(x > 0, x, X.tensor(0, dtype=X.int8))"):
        both(expr, dt, x=x, y=y)


@pytest.mark.parametrize("dt", SMALL)
def test_in_place_ops(dt):
    x = sample(dt, seed=9)
    for expr in ("x.add_(300)", "x.sub_(-1)", "x.mul_(3)", "x.floor_divide_(3)", "x.clamp_(0, 50)", "x.neg_()", "x.abs_()",
                 "x.bitwise_and_(-2)", "x.copy_(X.tensor([1.7]))", "x.add_(X.tensor([2], dtype=X.int8))", "x.fill_(5)",
                 "x.sub_(y)", "x.sub_(y, alpha=2)", "x.add_(y, alpha=-1)", "x.mul_(y)", "x.__iadd__(y)", "x.__isub__(y)"):
        both(expr, dt, x=x, y=sample(dt, seed=23))
    for expr in ("x.add_(1.5)", "x.div_(2)"):
        with pytest.raises(RuntimeError):
            eval(expr, {"x": torch.from_numpy(x.copy())})
        with pytest.raises(RuntimeError, match="can't be cast"):
            eval(expr, {"x": gt.from_numpy(x.copy())})


# ---- reductions and other ops ------------------------------------------------------------------------
@pytest.mark.parametrize("dt", SMALL)
def test_reductions(dt):
    x = sample(dt, seed=10)
    for expr in ("x.sum()", "x.sum(0)", "x.sum(1, keepdim=True)", "x.prod(1)", "x.cumsum(0)", "x.cumsum(1)", "x.cumprod(1)",
                 "x.sum(dtype=D)", "x.sum(dtype=X.float32)", "x.max()",
                 "x.min(dim=1)", "x.max(dim=0)", "x.amax(1)", "x.aminmax()", "x.argmax()", "x.argmin(1)", "x.any()", "x.all(1)",
                 "x.any(0, keepdim=True)", "x.count_nonzero(0)", "x.median()", "x.nansum()", "x[0].dot(x[1])"):
        both(expr, dt, x=x)
    for expr in ("x.mean(dtype=X.float64)", "x.float().mean(0)"):        # a mesh adds its blocks in another order
        np.testing.assert_allclose(eval(expr, {"X": gt, "x": gt.from_numpy(x)}).numpy(),
                                   eval(expr, {"X": torch, "x": torch.from_numpy(x)}).numpy(), rtol=1e-6)
    with pytest.raises(RuntimeError, match="mean"):
        torch.from_numpy(x).mean()
    with pytest.raises(RuntimeError, match=r"mean\(\): could not infer output dtype"):
        gt.from_numpy(x).mean()
    for fn in (lambda t: t.var(), lambda t: t.std(0)):
        with pytest.raises(RuntimeError, match="std and var only support floating point"):
            fn(torch.from_numpy(x))
        with pytest.raises(RuntimeError, match="std and var only support floating point"):
            fn(gt.from_numpy(x))


@pytest.mark.parametrize("dt", SMALL)
def test_sort_select_and_join(dt):
    x, y = sample(dt, seed=11), sample(dt, seed=12)
    for expr in ("x.sort(1)[0]", "x.sort(0, descending=True)[0]", "x.flatten().sort(stable=True)[1]", "x.topk(2, 1)[0]",
                 "x.unique()", "x.unique(return_counts=True)", "x.flatten().to(X.int64).abs().to(D).bincount()"
                 if dt != "int8" else "x.flatten().abs().bincount()", "x.clamp(0, 100)", "x.clamp(max=5)", "x.clamp(1.5)",
                 "X.cat([x, y])", "X.cat([x, y.to(X.int8)])", "X.stack([x, y])", "x.t()", "x.reshape(10, 4)", "x[2:6]",
                 "x[:, 1]", "x.flip(0)", "x.roll(1, 0)", "x.repeat(2, 1)", "x.expand(2, 8, 5)", "x[x > 3]",
                 "x.masked_fill(x > 3, 9)", "x.kthvalue(2, 1)[0]", "x.diff(dim=1)", "x.nonzero()", "x[0].outer(x[1])"):
        both(expr, dt, x=x, y=y)
    with pytest.raises(RuntimeError, match="without overflow"):
        gt.from_numpy(x).clamp(0, 70000)


@pytest.mark.parametrize("dt", SMALL)
def test_floating_functions_give_float32(dt):
    x = np.abs(sample(dt, seed=13).astype(np.int64)).clip(0, np.iinfo(dt).max).astype(dt)
    for expr in ("x.float() / 255", "x / 255", "x * 0.5"):
        assert both(expr, dt, x=x).dtype in (gt.float32, gt.float64, gt.bool)
    # torch's float64 log1p is not one function of the input: its vectorized CPU kernel is Sleef's
    # log1pd4_u10 on AVX2 (an AMD EPYC) and log1pd8_u10 on AVX-512 (an Intel Xeon), good to 1 ulp, and
    # the tail that does not fill two vectors (8 doubles on AVX2, 16 on AVX-512) goes to std::log1p:
    # on AVX2 log1p(73.0) is 4.30406509320417 (rounded correctly) where std::log1p and numpy give
    # 4.304065093204169. Both are within 1 ulp of the true value, so they are at most 1 ulp apart: the
    # values are held to 1 ulp, the dtype and the NaN positions exactly.
    mine, theirs = gt.from_numpy(x).to(gt.float64).log1p(), torch.from_numpy(x).to(torch.float64).log1p()
    assert mine.dtype is gt.float64 and theirs.dtype == torch.float64
    mine, theirs = mine.numpy(), theirs.numpy()
    np.testing.assert_array_equal(np.isnan(mine), np.isnan(theirs))
    np.testing.assert_array_max_ulp(mine[~np.isnan(mine)], theirs[~np.isnan(theirs)], maxulp=1)
    for expr in ("x.sqrt()", "x.sigmoid()", "x.tanh()"):       # float32 math: within rounding
        mine, theirs = eval(expr, {"x": gt.from_numpy(x)}), eval(expr, {"x": torch.from_numpy(x)})
        assert mine.dtype is gt.float32 and theirs.dtype == torch.float32
        np.testing.assert_allclose(mine.numpy(), theirs.numpy(), rtol=2e-7)


@pytest.mark.parametrize("dt", SMALL)
def test_indexing(dt):
    data = np.arange(12, dtype=np.int64).reshape(4, 3)
    mask = np.array([1, 0, 2, 0], dtype=np.uint8)
    positions = np.array([2, 0], dtype=dt)
    x = sample(dt, (4, 3), seed=14)
    for X in (torch, gt):
        with pytest.warns(UserWarning, match="indexing with dtype .*uint8 is now deprecated"):
            got = X.from_numpy(data)[X.from_numpy(mask)]
        assert got.tolist() == [[0, 1, 2], [6, 7, 8]]          # a uint8 index is a mask
        t = X.from_numpy(data.copy())
        with pytest.warns(UserWarning, match="deprecated"):
            t[X.from_numpy(mask)] = X.zeros(2, 3, dtype=X.int64)      # index_put_: the mask, with the warning
        assert t.tolist() == [[0, 0, 0], [3, 4, 5], [0, 0, 0], [9, 10, 11]]
        with pytest.raises(RuntimeError, match="masked_fill_ only supports boolean masks"):
            t[X.from_numpy(mask)] = 0                                   # a number: masked_fill_, which refuses it
        if dt != "uint8":
            with pytest.raises(IndexError, match="tensors used as indices must be long, int, byte or bool"):
                X.from_numpy(data)[X.from_numpy(positions)]
        with pytest.raises((RuntimeError, IndexError)):
            X.from_numpy(data).index_select(0, X.from_numpy(positions))
        with pytest.raises(RuntimeError, match="gather"):
            X.from_numpy(data).gather(0, X.from_numpy(positions).reshape(2, 1))
    both("x[X.tensor([0, 2])]", dt, x=x)
    both("x[1:, ::2]", dt, x=x)
    both("x[x > 0]", dt, x=x)


# ---- gradients, files, mesh ----------------------------------------------------------------------
@pytest.mark.parametrize("dt", SMALL)
def test_integer_tensors_cannot_require_grad(dt):
    for make in (lambda X: X.ones(2, dtype=getattr(X, dt)).requires_grad_(),
                 lambda X: X.ones(2, dtype=getattr(X, dt), requires_grad=True),
                 lambda X: X.tensor([1], dtype=getattr(X, dt), requires_grad=True),
                 lambda X: X.nn.Parameter(X.ones(2, dtype=getattr(X, dt)))):
        with pytest.raises(RuntimeError, match="floating point"):
            make(torch)
        with pytest.raises(RuntimeError, match="floating point"):
            make(gt)
    w = gt.ones(3, requires_grad=True)
    (gt.tensor([1, 2, 3], dtype=getattr(gt, dt)).float() * w).sum().backward()
    assert w.grad.tolist() == [1.0, 2.0, 3.0]


@pytest.mark.parametrize("dt", SMALL)
def test_files_keep_the_dtype_both_ways(dt):
    x = gt.from_numpy(sample(dt, seed=15))
    buf = io.BytesIO()
    gt.save({"x": x, "a": np.array([1, 2], dtype=dt)}, buf)
    theirs = torch.load(io.BytesIO(buf.getvalue()), weights_only=True)
    assert theirs["x"].dtype == getattr(torch, dt) and theirs["x"].tolist() == x.tolist()
    back = gt.load(io.BytesIO(buf.getvalue()))
    same(back["x"], theirs["x"])
    same(back["a"], theirs["a"])
    buf = io.BytesIO()
    torch.save({"t": torch.from_numpy(sample(dt, seed=16))[1:, ::2], "p": torch.nn.Parameter(
        torch.ones(2, dtype=getattr(torch, dt)), requires_grad=False)}, buf)
    back, theirs = gt.load(io.BytesIO(buf.getvalue())), torch.load(io.BytesIO(buf.getvalue()))
    same(back["t"], theirs["t"])
    same(back["p"], theirs["p"])
    assert isinstance(back["p"], gt.nn.Parameter)


@pytest.mark.own_mesh
@pytest.mark.parametrize("dt", SMALL)
def test_a_sharded_small_int_tensor_gives_the_unsharded_values(dt, mesh4):
    a, b = sample(dt, seed=17), sample(dt, seed=18)
    x, y = gt.from_numpy(a.copy()), gt.from_numpy(b.copy())
    assert x._placed is not None and x.dtype is getattr(gt, dt)          # Shard(0) over the 4 devices
    tx, ty = torch.from_numpy(a), torch.from_numpy(b)
    for fn in (lambda m, p, q: p + q, lambda m, p, q: p * 300, lambda m, p, q: p.sum(0), lambda m, p, q: p.sum(),
               lambda m, p, q: p.cumsum(0), lambda m, p, q: p.max(dim=0)[0], lambda m, p, q: p.argmax(0),
               lambda m, p, q: p.sort(0)[0], lambda m, p, q: p < q, lambda m, p, q: p.float() / 255,
               lambda m, p, q: m.cat([p, q]), lambda m, p, q: p[p > 3], lambda m, p, q: p.any(0),
               lambda m, p, q: p.t().reshape(5, 8)[:, 2:7], lambda m, p, q: p // q.clamp(min=1)):
        same(fn(gt, x, y), fn(torch, tx, ty))


def test_data_loader_batches_of_uint8_images_keep_uint8():
    images = np.random.default_rng(19).integers(0, 256, (6, 4, 4), dtype=np.uint8)
    labels = np.arange(6, dtype=np.int16)
    data = list(zip(images, labels))
    batches = list(gt.utils.data.DataLoader(data, batch_size=4))
    theirs = list(torch.utils.data.DataLoader(data, batch_size=4))
    for (x, y), (tx, ty) in zip(batches, theirs):
        same(x, tx)
        same(y, ty)
        same(x.float() / 255, tx.float() / 255)


def test_no_warning_where_torch_gives_none():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        x = gt.tensor([1, 2, 3], dtype=gt.uint8)
        assert x[gt.tensor([True, False, True])].tolist() == [1, 3] and x[gt.tensor([2])].tolist() == [3]


@pytest.mark.parametrize("dt", SMALL)
def test_testing_helpers_take_the_small_ints(dt):
    for X in (torch, gt):
        t = X.testing.make_tensor((200,), dtype=getattr(X, dt), device="cpu")
        assert t.dtype == getattr(X, dt) and int(t.min()) >= (0 if dt == "uint8" else -9) and int(t.max()) < 10
        X.testing.assert_close(X.tensor([1, 2], dtype=getattr(X, dt)), X.tensor([1, 2]), check_dtype=False)
        with pytest.raises(AssertionError, match="dtype"):
            X.testing.assert_close(X.tensor([1], dtype=getattr(X, dt)), X.tensor([1]))


def test_index_consumers_check_small_int_indices_as_numbers():
    """The class losses take uint8 targets as torch's do; their range checks must not cast the
    bounds into the indices' dtype (300 into uint8 is 44, ignore_index=-100 is 156)."""
    ids = np.array([50, 255, 156], dtype=np.uint8)
    logits = np.random.default_rng(20).standard_normal((3, 300)).astype(np.float32)
    for kwargs in ({}, {"ignore_index": 156}, {"reduction": "none"}):
        mine = gt.nn.functional.cross_entropy(gt.from_numpy(logits), gt.from_numpy(ids), **kwargs)
        theirs = torch.nn.functional.cross_entropy(torch.from_numpy(logits), torch.from_numpy(ids), **kwargs)
        np.testing.assert_allclose(mine.numpy(), theirs.numpy(), rtol=1e-6)


@pytest.mark.parametrize("dt", SMALL)
def test_numbers_out_of_the_dtype_beside_it(dt):
    """torch casts a Python int into the tensor's dtype: wrapping it in arithmetic (``x // 300``
    divides a uint8 tensor by 44), checking it where it is a value to write (``where``, fills)."""
    x = sample(dt, (12,), seed=21)
    x[x == 0] = 1
    for s in (-1, -3, 255, 256, 300, -129, -256, 70000, 2 ** 40):
        for expr in ("x // s", "x % s", "s // x", "s % x", "x.floor_divide(s)", "x.remainder(s)", "x + s", "x * s",
                     "s - x", "x < s", "x == s", "x & s", "X.where(x > 3, x, s)", "X.where(x > 3, s, x)",
                     "x.masked_fill(x > 3, s)", "X.full_like(x, s)", "x.clamp(min=s)"):
            outs = []
            for X in (torch, gt):
                try:
                    outs.append(eval(expr, {"X": X, "x": X.from_numpy(x.copy()), "s": s}))
                except (RuntimeError, OverflowError) as exc:
                    outs.append(type(exc))
            if isinstance(outs[0], type):
                assert outs[1] in (RuntimeError, OverflowError), (expr, s, outs)
            else:
                same(outs[1], outs[0])


@pytest.mark.parametrize("dt", SMALL)
def test_image_ops_on_small_ints(dt):
    x = sample(dt, (2, 3, 6, 6), seed=22)
    with warnings.catch_warnings():
        warnings.simplefilter("error")      # a padded max-pool fills with the dtype's lowest value, not -inf cast
        for expr in ("X.nn.functional.max_pool2d(x, 3, stride=2, padding=1)", "X.nn.functional.max_pool2d(x, 2)",
                     "X.nn.functional.pad(x, (1, 2, 0, 1), value=3)", "x.permute(0, 2, 3, 1).reshape(2, -1)",
                     "x.flip(-1).float() / 255", "x.unfold(2, 2, 2).sum((-1, -2))"):
            both(expr, dt, x=x)
    if dt == "uint8":         # torch resizes uint8 images in the nearest modes (and the filtering ones, below)
        for expr in ("X.nn.functional.interpolate(x, scale_factor=2)", "X.nn.functional.interpolate(x, size=(4, 9))",
                     "X.nn.functional.interpolate(x, size=(9, 5), mode='nearest-exact')"):
            both(expr, dt, x=x)
    for X in (torch, gt):       # torch averages int32/int64 windows only
        with pytest.raises(NotImplementedError, match="avg_pool2d"):
            X.nn.functional.avg_pool2d(X.from_numpy(x), 2)


@pytest.mark.parametrize("dt", SMALL)
def test_written_ints_and_alpha_are_checked_casts(dt):
    """An int written by item assignment or ``scatter``, and ``add``/``sub``'s ``alpha``, go through
    torch's checked cast into the dtype: uint8 takes -1 as 255 (numpy's engine raised
    OverflowError), and a value out of range raises torch's RuntimeError."""
    x = sample(dt, (3, 4), seed=23)
    idx = np.zeros((3, 1), dtype=np.int64)
    for s in (-1, -5, 100, 300, -300):
        for expr in ("x.__setitem__(0, s) or x", "x.__setitem__((1, 2), s) or x", "x.scatter(1, X.from_numpy(i), s)",
                     "x.scatter_(1, X.from_numpy(i), s)", "x.scatter(1, X.from_numpy(i), value=s)",
                     "x.add(x, alpha=s)", "x.sub(x, alpha=s)", "X.sub(x, 1, alpha=s)", "x.add(x.float(), alpha=s)"):
            outs = []
            for X in (torch, gt):
                try:
                    outs.append(eval(expr, {"X": X, "x": X.from_numpy(x.copy()), "s": s, "i": idx}))
                except (RuntimeError, OverflowError) as exc:
                    outs.append(type(exc))
            if isinstance(outs[0], type):
                assert outs[1] is RuntimeError, (expr, s, outs)
            else:
                same(outs[1], outs[0])


def _outcome(expr, X, **names):
    """``expr``'s value with ``X`` (torch or gt), or the type of the exception it raised."""
    try:
        return eval(expr, {"X": X, "F": X.nn.functional, **{k: X.from_numpy(v.copy()) if isinstance(v, np.ndarray)
                                                               else v for k, v in names.items()}})
    except (RuntimeError, OverflowError, ValueError, IndexError) as exc:
        return type(exc)


@pytest.mark.parametrize("dt", SMALL)
def test_numbers_written_into_small_ints_go_through_one_checked_cast(dt):
    """``addcmul``'s value, ``scatter``'s float value, ``F.pad``'s value (a float to torch: uint8
    refuses -1), item assignment of floats, ``fill_diagonal_``, ``threshold``'s value and
    ``hardtanh``'s bounds are torch's checked casts on both engines: a value the dtype cannot hold
    raises RuntimeError (gt wrapped some, or raised numpy's OverflowError)."""
    x = sample(dt, (3, 4), seed=24)
    idx = np.zeros((3, 1), dtype=np.int64)
    for s in (-1, 2, 100, 300, -300, -1.5, 2.5, 255.5, 1e5, float("nan"), float("inf")):
        for expr in ("X.addcmul(x, x, x, value=s)", "x.addcmul(x, x, value=s)", "x.addcmul_(x, x, value=s)",
                     "x.scatter(1, i, s)", "x.scatter(1, i, value=s)", "F.pad(x, (1, 2), value=s)",
                     "x.__setitem__((1, 2), s) or x", "x.clone().fill_(s)", "x.masked_fill(x > 3, s)",
                     "x.clone().fill_diagonal_(s)", "F.threshold(x, 2, s)", "F.hardtanh(x, min(s, 0), 100)"):
            if isinstance(s, float) and "addcmul" in expr:
                continue        # torch refuses float values for integer tensors (TypeError in gt)
            theirs, mine = (_outcome(expr, X, x=x, i=X.from_numpy(idx), s=s) for X in (torch, gt))
            if isinstance(theirs, type):
                assert mine is theirs, (expr, s, theirs, mine)
            else:
                same(mine, theirs)


@pytest.mark.parametrize("dt", ["float16", "float32"])
def test_addcmul_int_value_of_a_float_tensor_is_not_checked_against_its_dtype(dt):
    """torch's ``addcmul``/``addcmul_`` check an int value in the op's computing dtype (float32 for
    float16), not the tensor's: a float16 tensor takes ``value=2**31`` (its result inf), as torch's."""
    for v in (2 ** 31, -2 ** 31 - 1, 2 ** 63 - 1, 70000):
        t, g = (X.ones(3, dtype=getattr(X, dt)) for X in (torch, gt))
        same(g.addcmul(g, g, value=v), t.addcmul(t, t, value=v))
        same(g.addcmul_(g.clone(), g.clone(), value=v), t.addcmul_(t.clone(), t.clone(), value=v))


def test_python_ints_beside_integer_tensors_wrap_through_64_bits():
    """The bitwise ops read a Python int as the arithmetic does: wrapped into the tensor's dtype from
    anywhere in [-2**63, 2**64) (``x & 2**63`` is ``x & 0``; gt raised OverflowError there),
    OverflowError beyond; int64 wraps too (``x + 2**63`` adds -2**63)."""
    for dt in SMALL + ["int32", "int64"]:
        x = np.array([3, 100, 7], dtype=dt)
        for expr in ("x & 2**63", "x & (2**64 - 1)", "x | -2**63", "x ^ 2**63", "x << 2**63", "x + 2**63",
                     "x + (2**64 - 1)", "x & 2**64", "x + 2**64"):
            theirs, mine = (_outcome(expr, X, x=x) for X in (torch, gt))
            if isinstance(theirs, type):
                assert mine is theirs, (dt, expr, theirs, mine)
            else:
                same(mine, theirs)


@pytest.mark.parametrize("dt", SMALL)
def test_index_dtypes_of_embedding_one_hot_and_class_losses_are_torch_s(dt):
    """torch's embedding takes int64/int32 indices, one_hot int64, the class losses int64 or uint8
    targets of (N, C) inputs and int64 of (N, C, d1, ...): uint8/int8/int16 elsewhere raise its
    RuntimeError (gt took them all)."""
    ids = np.array([1, 4, 2], dtype=dt)
    table = np.arange(20.0, dtype=np.float32).reshape(10, 2)
    logits = np.random.default_rng(25).standard_normal((3, 5)).astype(np.float32)
    maps = np.random.default_rng(26).standard_normal((3, 5, 2)).astype(np.float32)
    for expr in ("F.embedding(i, w)", "X.nn.Embedding(10, 2)(i).shape", "F.one_hot(i, 5)", "F.cross_entropy(z, i)",
                 "F.nll_loss(z.log_softmax(1), i, reduction='none')", "F.cross_entropy(z, i, label_smoothing=0.1)",
                 "F.cross_entropy(m, i[:, None].expand(3, 2))", "F.nll_loss(m, i[:, None].expand(3, 2))",
                 "F.cross_entropy(z[0], i[0])"):
        theirs, mine = (_outcome(expr, X, i=ids, w=table, z=logits, m=maps) for X in (torch, gt))
        if isinstance(theirs, type):
            assert mine is theirs, (expr, theirs, mine)
        elif isinstance(theirs, torch.Tensor):
            np.testing.assert_allclose(mine.numpy(), theirs.numpy(), rtol=1e-6)
        else:
            assert tuple(mine) == tuple(theirs)


def test_uint8_images_resize_bilinear_bicubic_lanczos_as_torch_rounds():
    """torch's CPU kernels resize uint8 images in the 'bilinear' and 'bicubic' modes (antialias or
    not, align_corners either way) and 'lanczos' through int16 fixed-point weights, the last axis
    first, each pass rounded to uint8: gt gives its values to the bit (it refused uint8 there)."""
    rng = np.random.default_rng(27)
    cases = [("bilinear", False, False), ("bilinear", False, True), ("bilinear", True, False),
             ("bicubic", False, False), ("bicubic", False, True), ("bicubic", True, False), ("lanczos", True, False)]
    for (mode, antialias, corners), channels in itertools.product(cases, (1, 3, 5)):
        x = rng.integers(0, 256, (2, channels, 13, 17)).astype(np.uint8)
        for kwargs in ({"size": (29, 8)}, {"size": (5, 40)}, {"scale_factor": (1.5, 0.5)}, {"size": (13, 31)},
                       {"scale_factor": 2.7}):
            both(f"X.nn.functional.interpolate(x, mode={mode!r}, antialias={antialias}, align_corners={corners}, "
                 f"**{kwargs!r})", "uint8", x=x)
    for X in (torch, gt):          # the linear modes of other ranks and the integer types besides uint8 stay refused
        with pytest.raises((NotImplementedError, TypeError)):
            X.nn.functional.interpolate(X.zeros(1, 1, 4, dtype=X.uint8), size=8, mode="linear")
        with pytest.raises((NotImplementedError, TypeError)):
            X.nn.functional.interpolate(X.zeros(1, 1, 4, 4, dtype=X.int16), size=8, mode="bilinear")


def test_tensor_of_floats_beyond_the_largest_int_is_refused_as_torch():
    """``gt.tensor`` checks a float against the dtype's largest value itself, as torch's: 255.5 does
    not fit uint8, 127.9 not int8 (gt truncated them to 255 and 127)."""
    for values, dt in (([255.5], "uint8"), ([127.9], "int8"), ([32767.5], "int16"), ([255.0, 0.5], "uint8"),
                       ([127.0], "int8"), ([-128.0], "int8")):
        theirs, mine = (_outcome(f"X.tensor({values!r}, dtype=X.{dt})", X) for X in (torch, gt))
        if isinstance(theirs, type):
            assert mine is theirs, (values, dt, theirs, mine)
        else:
            same(mine, theirs)


@pytest.mark.parametrize("op", ["__add__", "__radd__", "__mul__", "__floordiv__", "__and__", "__or__", "__xor__"])
def test_bool_tensor_beside_an_int_beyond_int64_is_refused_as_torch(op):
    """torch reads an int from 2**63 up as uint64, which it does not promote beside a bool tensor;
    gt wrapped it into the int64 result (True + 2**63 gave -2**63 + 1). Smaller ints compute."""
    for v in (2 ** 63, 2 ** 64 - 1):
        with pytest.raises(RuntimeError, match="uint64"):
            getattr(torch.ones(2, dtype=torch.bool), op)(v)
        with pytest.raises(RuntimeError, match="uint64"):
            getattr(gt.ones(2, dtype=gt.bool), op)(v)
    for v in (2 ** 62, 300, -3):
        want = getattr(torch.ones(2, dtype=torch.bool), op)(v)
        got = getattr(gt.ones(2, dtype=gt.bool), op)(v)
        assert got.dtype == gt.int64 and got.tolist() == want.tolist()
