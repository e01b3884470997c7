"""gt.testing (assert_close, make_tensor), gt.random and gt.compile beside torch 2.13: the same
verdicts and messages from assert_close on the same values, make_tensor's ranges and options,
the generator functions and fork_rng, and compile's argument checks."""

import numpy as np
import pytest

import gt
from gt.sharding.mesh import use_mesh
from helpers import torch_or_skip


def _outcome(fn, *args, **kwargs):
    try:
        fn(*args, **kwargs)
        return "ok"
    except Exception as err:          # the type and message are what is compared
        return type(err).__name__, str(err)


def _build(lib, spec):
    """A nested structure of ("t", values, dtype) leaves as tensors of ``lib``; other leaves as given."""
    if isinstance(spec, tuple) and len(spec) == 3 and spec[0] == "t":
        return lib.tensor(np.asarray(spec[1]), dtype=getattr(lib, spec[2]))
    if isinstance(spec, list):
        return [_build(lib, s) for s in spec]
    if isinstance(spec, dict):
        return {k: _build(lib, v) for k, v in spec.items()}
    return spec


INF, NAN = float("inf"), float("nan")
# (actual, expected, keyword arguments): gt must give torch's verdict and message word for word
CASES = [
    (("t", [1.0, 2.0, 3.0], "float32"), ("t", [1.0, 2.5, 3.1], "float32"), {}),
    (("t", [1.0, 2.0, 3.0], "float32"), ("t", [1.0, 2.0000001, 3.0], "float32"), {}),
    (("t", [[1.0, 2.0], [3.0, 4.0]], "float64"), ("t", [[1.0, 2.0], [3.0, 5.0]], "float64"), {}),
    (("t", [1, 2, 3], "int64"), ("t", [1, 5, 4], "int64"), {}),
    (("t", [1, 2, 3], "int32"), ("t", [1, 5, 4], "int32"), {"rtol": 0.5, "atol": 0}),
    (("t", [True, False], "bool"), ("t", [True, True], "bool"), {}),
    (("t", [1, 2], "int32"), ("t", [1.0, 2.5], "float32"), {"check_dtype": False}),
    (("t", [1.0, 2.0], "float16"), ("t", [1.0, 2.001], "float16"), {}),
    (("t", [1.0, 2.0], "float16"), ("t", [1.0, 2.001], "float32"), {"check_dtype": False}),
    (("t", [1.0, 2.0], "float32"), ("t", [1.0, 2.0], "float64"), {"check_dtype": False}),
    (("t", 1.0, "float32"), ("t", 2.0, "float32"), {}),
    (("t", [1.0, INF], "float32"), ("t", [1.0, INF], "float32"), {}),
    (("t", [1.0, INF], "float32"), ("t", [1.0, -INF], "float32"), {}),
    (("t", [1.0, 2.0], "float32"), ("t", [1.0, 0.0], "float32"), {}),
    (("t", [NAN, 1.0], "float64"), ("t", [NAN, 1.0], "float64"), {}),
    (("t", [NAN, 1.0], "float64"), ("t", [NAN, 1.0], "float64"), {"equal_nan": True}),
    (("t", np.zeros((0, 3)), "float32"), ("t", np.zeros((0, 3)), "float32"), {}),
    (("t", [1.0, 2.0], "float32"), ("t", [1.0, 2.1], "float32"), {"rtol": 0, "atol": 0}),
    (("t", [1.0, 2.0], "float32"), ("t", [1.0, 2.1], "float32"), {"rtol": 0.1, "atol": 0.0}),
    (("t", [1.0, 2.0], "float32"), ("t", [1.0, 2.1], "float32"), {"msg": "custom message"}),
    (1.0, 1.1, {}), (1, 2, {}), (1.0, 1.0 + 1e-8, {}), (1.0, 0.0, {}), (INF, INF, {}), (NAN, NAN, {}),
    (NAN, NAN, {"equal_nan": True}), (1, 1.0, {}), (1, 1.0, {"check_dtype": False}), (2 + 1j, 2 + 1j, {}),
    (np.float32(1.0), 1.0, {}), (True, False, {}), (None, None, {}), (None, 1, {}),
    ([("t", 1.0, "float32"), ("t", 2.0, "float32")], [("t", 1.0, "float32"), ("t", 3.0, "float32")], {}),
    ([("t", 1.0, "float32")], [("t", 3.0, "float32")], {"msg": "m"}),
    ({"a": [1, ("t", [1.0, 2.0], "float64")]}, {"a": [1, ("t", [1.0, 2.5], "float64")]}, {}),
    ({"a": 1.0, "c": 2}, {"b": 1.0, "c": 2}, {}),
    ({"b": 2.0, "a": 1.0}, {"a": 1.5, "b": 2.0}, {}),
    ([1, 2], [1, 2, 3], {}), ([1], (1,), {}), ("a", "a", {}),
    (("t", [1.0], "float32"), 1.0, {}), (("t", [1.0, 2.0], "float32"), [1.0, 2.0], {}),
]


@pytest.mark.parametrize("actual,expected,kwargs", CASES)
def test_assert_close_verdicts_and_messages_match_torch(actual, expected, kwargs):
    torch = torch_or_skip()
    got = _outcome(gt.testing.assert_close, _build(gt, actual), _build(gt, expected), **kwargs)
    want = _outcome(torch.testing.assert_close, _build(torch, actual), _build(torch, expected), **kwargs)
    if want != "ok" and want[0] == "TypeError":      # the message names the library's own classes
        assert got[0] == "TypeError" and "No comparison pair was able to handle inputs" in got[1], got
    else:
        assert got == want


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64", "int32", "int64"])
def test_default_tolerances_beside_torch(dtype):
    """Offsets just inside and just outside torch's default tolerance: the same verdicts."""
    torch = torch_or_skip()
    rtol, atol = {"float16": (1e-3, 1e-5), "float32": (1.3e-6, 1e-5), "float64": (1e-7, 1e-7)}.get(dtype, (0, 1))
    expected = np.array([0.0, 1.0, 4.0, -3.0, 100.0])
    for k in (0.5, 0.9, 1.2, 3.0):
        actual = expected + k * (atol + rtol * np.abs(expected)) * np.array([1, -1, 1, -1, 1])
        if dtype.startswith("int"):
            actual = np.round(actual)
        verdicts = [_outcome(lib.testing.assert_close, lib.tensor(actual, dtype=getattr(lib, dtype)),
                             lib.tensor(expected, dtype=getattr(lib, dtype))) for lib in (gt, torch)]
        assert verdicts[0] == verdicts[1], (k, verdicts)


@pytest.mark.first_pass
def test_attribute_checks_and_argument_errors():
    a32, a64 = gt.tensor([1.0, 2.0]), gt.tensor([1.0, 2.0], dtype=gt.float64)
    with pytest.raises(AssertionError, match=r"The values for attribute 'dtype' do not match: gt.float32 != gt.float64."):
        gt.testing.assert_close(a32, a64)
    with pytest.raises(AssertionError, match=r"The values for attribute 'shape' do not match: \(1, 2\) != \(2,\)."):
        gt.testing.assert_close(a32.reshape(1, 2), a32)
    with pytest.raises(ValueError, match="Both 'rtol' and 'atol' must be either specified or omitted, but got no atol."):
        gt.testing.assert_close(a32, a32, rtol=0.1)
    with pytest.raises(ValueError, match="but got no rtol."):
        gt.testing.assert_close(a32, a32, atol=0.1)
    strided = gt.tensor([1.0, 0.0, 2.0, 0.0])[::2]
    gt.testing.assert_close(strided, a32)
    with pytest.raises(AssertionError, match=r"attribute 'stride\(\)' do not match: \(2,\) != \(1,\)."):
        gt.testing.assert_close(strided, a32, check_stride=True)
    param = gt.nn.Parameter(gt.tensor([1.0, 2.0]))
    gt.testing.assert_close(param, a32)
    with pytest.raises(TypeError, match="No comparison pair was able to handle inputs"):
        gt.testing.assert_close(param, a32, allow_subclasses=False)
    with pytest.raises(AssertionError, match="^Xtensor-likes are not close!"):
        gt.testing.assert_close(a32, a32 + 1, msg=lambda m: "X" + m[0].lower() + m[1:])
    gt.testing.assert_close(gt.tensor([1.0, 2.0], requires_grad=True) * 1, a32, check_layout=False)


def test_assert_close_numpy_arrays_beside_torch():
    torch = torch_or_skip()
    pairs = [(np.array([1.0, 2.0]), np.array([1.0, 3.0])), (np.array([1, 2], np.int32), np.array([1, 2], np.int32)),
             (np.array([1.0, 2.0], np.float32), np.array([1.0, 2.0])), (np.array([1.0]), [1.0])]
    for a, e in pairs:
        got, want = _outcome(gt.testing.assert_close, a, e), _outcome(torch.testing.assert_close, a, e)
        if want != "ok":                                 # the messages name each library's classes
            want = (want[0], want[1].replace("torch.", "gt."))
        assert got == want or (got[0] == want[0] == "TypeError"), (got, want)
    assert _outcome(gt.testing.assert_close, np.array([1.0]), np.array([1.0])) == "ok"
    assert _outcome(gt.testing.assert_close, gt.tensor([1.0]), np.array([1.0], np.float32))[0] == "TypeError"


@pytest.mark.parametrize("n", [2, 4])
def test_assert_close_sharded_gives_the_unsharded_verdict(n):
    data = np.arange(8.0).reshape(4, 2)
    other = data.copy()
    other[3, 1] += 0.5
    with use_mesh(1):
        plain = _outcome(gt.testing.assert_close, gt.tensor(data), gt.tensor(other))
    with use_mesh(n):
        x, y = gt.tensor(data).shard(0), gt.tensor(other).shard(0)
        assert _outcome(gt.testing.assert_close, x, y) == plain
        assert _outcome(gt.testing.assert_close, x, gt.tensor(data)) == "ok"
    assert "Greatest absolute difference: 0.5 at index (3, 1)" in plain[1]


@pytest.mark.parametrize("dtype,low,high", [("float32", -9, 9), ("float64", -9, 9), ("float16", -9, 9),
                                            ("int32", -9, 9), ("int64", -9, 9), ("bool", 0, 1)])
def test_make_tensor_default_ranges(dtype, low, high):
    gt.manual_seed(0)
    x = gt.testing.make_tensor(40, 50, dtype=getattr(gt, dtype), device="cpu")
    assert x.shape == (40, 50) and x.dtype == getattr(gt, dtype) and not x.requires_grad
    v = x.numpy().astype(np.float64)
    assert v.min() >= low and v.max() <= high
    assert v.min() < low + 1 and v.max() > high - 1        # the whole range is drawn
    if dtype.startswith("float"):
        assert v.max() < high
    else:
        assert set(np.unique(v)) == set(range(low, high + 1))


def test_make_tensor_options():
    gt.manual_seed(1)
    assert gt.testing.make_tensor((2, 3), dtype=gt.float32, device="cpu").shape == (2, 3)
    assert gt.testing.make_tensor([4], dtype=gt.int64, device="cpu").shape == (4,)
    assert gt.testing.make_tensor(dtype=gt.float32, device="cpu").shape == ()
    assert gt.testing.make_tensor(0, 3, dtype=gt.float32, device="cpu").shape == (0, 3)
    x = gt.testing.make_tensor(3, 4, dtype=gt.float64, device="cpu", low=-1, high=1, requires_grad=True)
    v = x.detach().numpy()
    assert x.requires_grad and x.is_leaf and v.min() >= -1 and v.max() < 1
    nc = gt.testing.make_tensor(3, 4, dtype=gt.float32, device="cpu", noncontiguous=True, requires_grad=True)
    assert nc.shape == (3, 4) and not nc.is_contiguous() and nc.requires_grad
    if nc.placement == gt.Replicate():          # a sharded tensor reports its shards' strides
        assert nc.stride() == (8, 2)
    (nc * 2).sum().backward()
    np.testing.assert_array_equal(nc.grad.numpy(), np.full((3, 4), 2.0))
    assert gt.testing.make_tensor(1, dtype=gt.float32, device="cpu", noncontiguous=True).is_contiguous()
    ints = gt.testing.make_tensor(200, dtype=gt.int32, device="cpu", low=0, high=2, exclude_zero=True)
    assert set(np.unique(ints.numpy())) == {1}
    flags = gt.testing.make_tensor(50, dtype=gt.bool, device="cpu", exclude_zero=True)
    assert flags.numpy().all()
    ceil = gt.testing.make_tensor(300, dtype=gt.int64, device="cpu", low=0.5, high=2.5)
    assert set(np.unique(ceil.numpy())) == {1, 2}                    # low and high rounded up, as torch
    wide = gt.testing.make_tensor(100, dtype=gt.float32, device="cpu", low=-1e40, high=1e40)
    assert np.isfinite(wide.numpy()).all() and np.abs(wide.numpy()).max() > 1e37
    big = gt.testing.make_tensor(100, dtype=gt.int32, device="cpu", low=-10 ** 12, high=10 ** 12)
    assert big.dtype == gt.int32 and np.abs(big.numpy().astype(np.int64)).max() > 10 ** 8


@pytest.mark.first_pass
def test_make_tensor_errors_beside_torch():
    torch = torch_or_skip()
    cases = [dict(dtype="int64", requires_grad=True), dict(dtype="float32", low=2, high=1),
             dict(dtype="float32", low=NAN), dict(dtype="int32", low=2 ** 40, high=2 ** 41),
             dict(dtype="bool", low=3, high=5), dict(dtype="float32", noncontiguous=True, memory_format="x")]
    for case in cases:
        for lib in (gt, torch):
            kw = dict(case, dtype=getattr(lib, case["dtype"]))
            if lib is torch and "memory_format" in kw:
                kw["memory_format"] = torch.contiguous_format
            with pytest.raises(ValueError) as err:
                lib.testing.make_tensor(2, device="cpu", **kw)
            first = str(err.value).split(",")[0].split("[")[0]
            assert first.replace("torch.", "gt.").replace("dtype=gt.", "") in \
                str(err.value).replace("torch.", "gt.").replace("dtype=gt.", "") and first
    with pytest.warns(FutureWarning, match="low==high"):
        x = gt.testing.make_tensor(3, dtype=gt.float32, device="cpu", low=2.0, high=2.0)
    np.testing.assert_array_equal(x.numpy(), [2.0, 2.0, 2.0])


def test_make_tensor_error_messages():
    with pytest.raises(ValueError, match="`requires_grad=True` is not supported for boolean and integral dtypes"):
        gt.testing.make_tensor(2, dtype=gt.int64, device="cpu", requires_grad=True)
    with pytest.raises(ValueError, match="`low` must be less than `high`, but got 2 >= 1"):
        gt.testing.make_tensor(2, dtype=gt.float32, device="cpu", low=2, high=1)
    with pytest.raises(ValueError, match="`low` and `high` cannot be NaN"):
        gt.testing.make_tensor(2, dtype=gt.float32, device="cpu", low=NAN)
    with pytest.raises(ValueError, match=r"but gt.int32 only supports \[-2147483648, 2147483648\)"):
        gt.testing.make_tensor(2, dtype=gt.int32, device="cpu", low=2 ** 40, high=2 ** 41)


# ---- gt.random -------------------------------------------------------------------------------
@pytest.mark.first_pass
def test_random_seeding_beside_torch():
    torch = torch_or_skip()
    assert gt.random.default_generator is gt.default_generator
    for lib in (gt, torch):
        assert lib.random.manual_seed(5) is lib.random.default_generator
        assert lib.random.initial_seed() == 5
        lib.random.manual_seed(-1)
        assert lib.random.initial_seed() == 2 ** 64 - 1
        lib.random.manual_seed(2.7)
        assert lib.random.initial_seed() == 2
        for bad in (2 ** 64, -2 ** 63 - 1):
            with pytest.raises(ValueError):
                lib.random.manual_seed(bad)
        with pytest.raises(ValueError, match="invalid literal for int"):
            lib.random.manual_seed("a")
        s = lib.random.seed()
        assert isinstance(s, int) and 0 <= s < 2 ** 64 and lib.random.initial_seed() == s


def test_random_state_and_fork_rng():
    gt.random.manual_seed(11)
    first = gt.randn(5).numpy()
    gt.random.manual_seed(11)
    np.testing.assert_array_equal(gt.randn(5).numpy(), first)
    state = gt.random.get_rng_state()
    a = gt.rand(4).numpy()
    gt.random.set_rng_state(state)
    np.testing.assert_array_equal(gt.rand(4).numpy(), a)
    # fork_rng: draws inside leave the following draws as they were
    gt.random.set_rng_state(state)
    with gt.random.fork_rng():
        inside = gt.rand(4).numpy()
        gt.manual_seed(99)
        gt.randn(10)
    np.testing.assert_array_equal(inside, a)
    np.testing.assert_array_equal(gt.rand(4).numpy(), a)
    gt.random.set_rng_state(state)
    with pytest.raises(KeyError):
        with gt.random.fork_rng(devices=[]):
            gt.rand(3)
            raise KeyError("inside")
    np.testing.assert_array_equal(gt.rand(4).numpy(), a)
    gt.random.set_rng_state(state)
    with gt.random.fork_rng(enabled=False):
        gt.rand(4)
    assert not np.array_equal(gt.rand(4).numpy(), a)


# ---- gt.compile --------------------------------------------------------------------------------
@pytest.mark.first_pass
def test_compile_returns_the_same_callable():
    def f(x):
        return x * 2 + 1

    model = gt.nn.Linear(2, 3)
    assert gt.compile(f) is f and gt.compile(model) is model
    assert gt.compile(f, mode="max-autotune", fullgraph=True, dynamic=True, backend="eager") is f
    assert gt.compile(f, options={"triton.cudagraphs": False}) is f

    @gt.compile
    def g(x):
        return x + 1

    @gt.compile(mode="reduce-overhead")
    def h(x):
        return x - 1

    x = gt.tensor([1.0, 2.0])
    np.testing.assert_array_equal(g(x).numpy(), [2.0, 3.0])
    np.testing.assert_array_equal(h(x).numpy(), [0.0, 1.0])
    assert g.__name__ == "g" and h.__name__ == "h"
    assert gt.compiler.is_compiling() is False
    for mode in (None, "default", "lite", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs"):
        assert gt.compile(f, mode=mode) is f


@pytest.mark.first_pass
def test_compile_errors_beside_torch():
    torch = torch_or_skip()

    def f(x):
        return x

    for lib in (gt, torch):
        with pytest.raises(RuntimeError, match="Unrecognized mode=fast, should be one of: default, lite"):
            lib.compile(f, mode="fast")
        with pytest.raises(RuntimeError, match="Either mode or options can be specified"):
            lib.compile(f, mode="default", options={})
        with pytest.raises(AssertionError, match="A callable function is expected, but <class 'int'> is provided."):
            lib.compile(3)
        with pytest.raises(RuntimeError, match="Model can't be None"):
            lib.compile()(None)
        assert lib.compiler.is_compiling() is False
    with pytest.raises(TypeError, match="options must be a dict"):
        gt.compile(f, options=3)
