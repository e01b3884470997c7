"""torch's statistics (median, mode, kthvalue, quantile, histograms, logcumsumexp...), fused
arithmetic (addcmul, addmm, baddbmm...) and small utilities (inference_mode, default dtype, finfo,
seeds, save/load, stride...), each run beside torch: values, dtypes, indices and gradients."""

import io
import math
import pickle

import numpy as np
import pytest

import gt
from helpers import compare_with_torch, run_beside_torch, torch_or_skip

RNG = np.random.default_rng(7)
X = RNG.permutation(np.arange(12.0) - 5.5).reshape(3, 4) * 0.7      # distinct values
TIES = np.array([[3.0, 1, 2, 1, 3, 2], [5, 5, 5, 5, 1, 1], [2, 1, 2, 3, 1, 2]])
M = RNG.standard_normal((2, 3, 4))
NAN = np.array([[1.0, np.nan, 3.0, 2.0], [4.0, 0.5, -1.0, 2.5], [np.nan, np.nan, np.nan, 1.0]])
ALL_NAN = np.array([[np.nan, np.nan], [1.0, 2.0]])
Q = np.array([0.0, 0.3, 0.5, 0.9, 1.0])
A, B2 = RNG.standard_normal((3, 4)), RNG.uniform(0.5, 2.0, (3, 4))
M1, M2, V3, V4 = RNG.standard_normal((3, 5)), RNG.standard_normal((5, 4)), RNG.standard_normal(3), RNG.standard_normal(4)
B1, B3 = RNG.standard_normal((2, 3, 5)), RNG.standard_normal((2, 5, 4))
TALL = np.round(RNG.standard_normal((4, 3)), 1)      # axis 0 sharded under GT_DEVICES=2 and 4 (ties too)

# name -> (function of gt or torch tensors, inputs); the same code runs on both, gradients compared
CASES = {
    "median of all": (lambda a: a.median(), (X,)),
    "median of all, ties share the gradient": (lambda a: a.median(), (TIES,)),
    "median over a dim, ties": (lambda a: a.median(1), (TIES,)),
    "median over dim 0, kept": (lambda a: a.median(0, keepdim=True), (X,)),
    "median of a 0-d tensor": (lambda a: a.median(0), (np.array(2.5),)),
    "median with NaN": (lambda a: a.median(1), (NAN,)),
    "nanmedian of all": (lambda a: a.nanmedian(), (NAN,)),
    "nanmedian over a dim": (lambda a: a.nanmedian(-1), (NAN,)),
    "nanmedian of an all-NaN row": (lambda a: a.nanmedian(1), (ALL_NAN,)),
    "kthvalue": (lambda a: a.kthvalue(2), (X,)),
    "kthvalue ties, dim 1, kept": (lambda a: a.kthvalue(2, 1, keepdim=True), (TIES,)),
    "kthvalue over dim 0 of 3-D": (lambda a: a.kthvalue(1, 0), (M,)),
    "mode ties": (lambda a: a.mode(1), (TIES,)),
    "mode over dim 0": (lambda a: a.mode(0), (TIES,)),
    "quantile of all": (lambda a: a.quantile(0.3), (X,)),
    "quantile tensor q over a dim": (lambda a, q: a.quantile(q, dim=1), (X, Q)),
    "quantile ties": (lambda a, q: a.quantile(q, dim=1, keepdim=True), (TIES, Q)),
    "quantile dim None kept": (lambda a, q: a.quantile(q, keepdim=True), (M, Q)),
    "quantile 0-d q, dim -1": (lambda a, q: a.quantile(q, dim=-1), (M, np.array(0.25))),
    "quantile lower": (lambda a: a.quantile(0.4, dim=0, interpolation="lower"), (X,)),
    "quantile higher": (lambda a: a.quantile(0.4, dim=0, interpolation="higher"), (X,)),
    "quantile midpoint": (lambda a: a.quantile(0.4, dim=0, interpolation="midpoint"), (X,)),
    "quantile nearest (halves to even)": (lambda a, q: a.quantile(q, 1, interpolation="nearest"),
                                          (TIES, np.array([0.1, 0.3, 0.5, 0.7]))),
    "quantile with NaN": (lambda a, q: a.quantile(q, dim=1), (NAN, Q)),
    "nanquantile": (lambda a, q: a.nanquantile(q, dim=1), (NAN, Q)),
    "nanquantile of an all-NaN row": (lambda a: a.nanquantile(0.3, dim=1), (ALL_NAN,)),
    "median over dim -3 of 3-D": (lambda a: a.median(-3), (np.concatenate([M, M[:1]]),)),
    "median over the sharded dim": (lambda a: a.median(0), (TALL,)),
    "kthvalue across the sharded dim": (lambda a: a.kthvalue(2, 1), (TALL,)),
    "mode over the sharded dim": (lambda a: a.mode(0), (np.array([[1.0, 2], [1, 3], [2, 3], [2, 2]]),)),
    "quantile over the sharded dim": (lambda a, q: a.quantile(q, 0), (TALL, Q)),
    "logcumsumexp over the sharded dim": (lambda a: a.logcumsumexp(0), (TALL,)),
    "addmm of sharded rows": (lambda x, a, b: x.addmm(a, b, beta=2), (TALL, TALL, TALL[:3])),
    "nanquantile nearest": (lambda a: a.nanquantile(0.5, dim=1, interpolation="nearest"), (NAN,)),
    "msort": (lambda a: a.msort(), (X,)),
    "logcumsumexp": (lambda a: a.logcumsumexp(1), (X,)),
    "logcumsumexp, far apart values": (lambda a: a.logcumsumexp(0), (np.array([-1000.0, 0.0, 1000.0, 999.0]),)),
    "logcumsumexp, 37 long": (lambda a: a.logcumsumexp(-1), (RNG.standard_normal((2, 37)) * 10,)),
    "logcumsumexp over dim 0 of 3-D": (lambda a: a.logcumsumexp(-3), (M,)),
    "logcumsumexp of a 0-d tensor": (lambda a: a.logcumsumexp(0), (np.array(1.5),)),
    "quantile of a 0-d tensor, kept": (lambda a: a.quantile(0.5, dim=0, keepdim=True), (np.array(1.5),)),
    "dist": (lambda a, b: a.dist(b), (A, B2)),
    "dist p=1, broadcast": (lambda a, b: a.dist(b, 1), (A, B2[0])),
    "dist p=3": (lambda a, b: a.dist(b, p=3), (A, B2)),
    "dist p=inf": (lambda a, b: a.dist(b, math.inf), (A, B2)),
    "renorm": (lambda a: a.renorm(2, 0, 1.0), (A * 2,)),
    "renorm p=1 dim 1": (lambda a: a.renorm(1, 1, 1.5), (M,)),
    "aminmax": (lambda a: a.aminmax(), (X,)),
    "aminmax over a dim, ties": (lambda a: a.aminmax(dim=1, keepdim=True), (TIES,)),
    "addcmul": (lambda a, b, c: a.addcmul(b, c, value=0.5), (A, B2, A[0])),
    "addcdiv": (lambda a, b, c: a.addcdiv(b, c, value=-2), (A, A, B2)),
    "addmm": (lambda x, a, b: x.addmm(a, b, beta=0.5, alpha=2.0), (A, M1, M2)),
    "addmm broadcast input": (lambda x, a, b: x.addmm(a, b), (V4, M1, M2)),
    "addmm beta=0 ignores NaN": (lambda x, a, b: x.addmm(a, b, beta=0), (A + np.nan, M1, M2)),
    "addmv": (lambda x, a, v: x.addmv(a, v, beta=2, alpha=-1), (V3, M1, M2[:, 0])),
    "addr": (lambda x, a, b: x.addr(a, b, alpha=3), (A, V3, V4)),
    "baddbmm": (lambda x, a, b: x.baddbmm(a, b, beta=0.5), (A, B1, B3)),
    "addbmm": (lambda x, a, b: x.addbmm(a, b, alpha=0.5), (A, B1, B3)),
}


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name", list(CASES))
def test_beside_torch(name, dtype):
    fn, inputs = CASES[name]
    compare_with_torch(fn, None, *inputs, dtype=dtype)


SHARDED = ["median over the sharded dim", "kthvalue across the sharded dim", "mode over the sharded dim",
           "quantile over the sharded dim", "logcumsumexp over the sharded dim", "addmm of sharded rows",
           "median of all", "nanquantile"]


@pytest.mark.parametrize("name", SHARDED)
def test_sharded_forward(name):
    # inputs that require no grad are data, sharded over the mesh under GT_DEVICES (parameters are replicated)
    fn, inputs = CASES[name]
    compare_with_torch(fn, None, *inputs, dtype="float32", grad=False)


def test_function_forms():
    torch = torch_or_skip()
    a = X.astype(np.float32)
    for name, args in [("median", (1,)), ("kthvalue", (2, 0)), ("quantile", (0.5,)), ("logcumsumexp", (0,)),
                       ("aminmax", ()), ("msort", ()), ("histc", (4,)), ("heaviside", (gt.tensor(0.5),)),
                       ("addcmul", (gt.tensor(a), gt.tensor(a)))]:
        targs = tuple(torch.from_numpy(v.numpy()) if isinstance(v, gt.Tensor) else v for v in args)
        ours, theirs = getattr(gt, name)(gt.tensor(a), *args), getattr(torch, name)(torch.from_numpy(a), *targs)
        for o, t in zip(ours if isinstance(ours, tuple) else [ours], theirs if isinstance(theirs, tuple) else [theirs]):
            np.testing.assert_allclose(o.numpy(), t.numpy(), rtol=1e-5, err_msg=name)


def test_integer_inputs():
    ints = np.array([[3, 1, 2, 1], [5, 5, 0, 7]])
    run_beside_torch(lambda lib, t: t.median(), ints)
    run_beside_torch(lambda lib, t: t.median(1).values, ints)
    run_beside_torch(lambda lib, t: t.median(1).indices, ints)
    run_beside_torch(lambda lib, t: t.mode(1).indices, ints)
    run_beside_torch(lambda lib, t: t.kthvalue(3, 1).values, ints)
    run_beside_torch(lambda lib, t: t.addcmul(t, t, value=2), ints)
    run_beside_torch(lambda lib, t: t[:, :2].addmm(t, t.T), ints)
    run_beside_torch(lambda lib, t: t.heaviside(t[0]), ints)


def test_nanquantile_q_gradient_of_all_nan_slices():
    # torch's gradient for q gets NaN from a slice of only NaN; gt's gets nothing (module docstring)
    x = gt.tensor(ALL_NAN, requires_grad=True)
    q = gt.tensor([0.0, 0.5, 1.0], dtype=gt.float64, requires_grad=True)
    x.nanquantile(q, dim=1).sum().backward()
    assert q.grad.tolist() == [0.0, 1.0, 0.0] and x.grad.tolist() == [[3.0, 0.0], [1.5, 1.5]]


def test_empty_inputs():
    torch = torch_or_skip()
    assert math.isnan(gt.tensor([]).median().item()) and math.isnan(torch.tensor([]).median().item())
    assert gt.zeros(0, 3).median(1).values.shape == tuple(torch.zeros(0, 3).median(1).values.shape) == (0,)
    assert gt.zeros(2, 0).logcumsumexp(1).shape == (2, 0)
    assert gt.zeros(0).histc(3).tolist() == torch.zeros(0).histc(3).tolist()


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_histograms(dtype):
    torch = torch_or_skip()
    data = (RNG.standard_normal(50) * 2 + 0.123).astype(dtype)
    weight = RNG.uniform(0, 1, 50).astype(dtype)
    g, t = gt.tensor(data), torch.from_numpy(data)
    pairs = [(g.histc(7), t.histc(7)), (g.histc(5, min=-1, max=2), t.histc(5, min=-1, max=2)),
             (gt.tensor([2.0, 2.0]).histc(4), torch.tensor([2.0, 2.0]).histc(4)),
             (*g.histogram(6), *t.histogram(6)), (*gt.zeros(0).histogram(3), *torch.zeros(0).histogram(3)), (*g.histogram(4, range=(-1.0, 1.0)), *t.histogram(4, range=(-1., 1.))),
             (*g.histogram(5, weight=gt.tensor(weight), density=True),
              *t.histogram(5, weight=torch.from_numpy(weight), density=True)),
             (*g.histogram(gt.tensor([-3.0, -1.0, 0.0, 0.5, 4.0], dtype=dtype)),
              *t.histogram(torch.tensor([-3.0, -1.0, 0.0, 0.5, 4.0], dtype=getattr(torch, dtype))))]
    for pair in pairs:
        half = len(pair) // 2
        for o, r in zip(pair[:half], pair[half:]):
            assert o.dtype.name == str(r.dtype)[6:] and o.shape == tuple(r.shape)
            np.testing.assert_allclose(o.numpy(), r.numpy(), rtol=1e-5)
    x = gt.tensor(data, requires_grad=True)
    assert not x.histc(3).requires_grad and not x.histogram(3).hist.requires_grad


def test_heaviside():
    torch = torch_or_skip()
    x = np.array([np.nan, 0.0, -1.0, 2.0, -0.0], dtype=np.float32)
    ours = gt.tensor(x, requires_grad=True).heaviside(gt.tensor([0.5]))
    np.testing.assert_array_equal(ours.numpy(), torch.heaviside(torch.from_numpy(x), torch.tensor([0.5])).numpy())
    assert ours.dtype == gt.float32 and not ours.requires_grad


ERRORS = [
    (lambda: gt.tensor([1.0, 2.0]).kthvalue(3), IndexError, r"k out of range for dimension 0: k must be in \[1, 2\]"),
    (lambda: gt.zeros(2, 0).median(1), IndexError, "empty dim"),
    (lambda: gt.zeros(2, 0).mode(1), IndexError, "empty dim"),
    (lambda: gt.tensor([1, 2]).quantile(0.5), TypeError, "must be float32 or float64"),
    (lambda: gt.tensor([1.0, 2.0]).quantile(1.5), ValueError, r"range \[0, 1\]"),
    (lambda: gt.tensor([1.0, 2.0]).quantile(gt.tensor([0.5], dtype=gt.float64)), TypeError, "input's dtype"),
    (lambda: gt.tensor([1.0, 2.0]).quantile(0.5, interpolation="cubic"), ValueError, "interpolation must be"),
    (lambda: gt.tensor([]).quantile(0.5), ValueError, "non-empty"),
    (lambda: gt.tensor([1.0]).histc(0), ValueError, "bins must be a positive int"),
    (lambda: gt.tensor([1.0]).histc(3, min=2, max=1), ValueError, "max must be larger than min"),
    (lambda: gt.tensor([1, 2]).histogram(3), NotImplementedError, "\"histogramdd\" not implemented for 'Long'"),
    (lambda: gt.tensor([1.0]).histogram(3, weight=gt.ones(2)), ValueError, "weight must have the input's shape"),
    (lambda: gt.tensor([1.0]).histogram(gt.tensor([1.0])), ValueError, "at least 2 edges"),
    (lambda: gt.ones(3).renorm(2, 0, 1.0), ValueError, "at least 2 dims"),
    (lambda: gt.ones(2, 3).renorm(0, 0, 1.0), ValueError, "p must be a positive number"),
    (lambda: gt.zeros(0).aminmax(), ValueError, "empty tensor"),
    (lambda: gt.ones(2, 3).addmm(gt.ones(2, 3), gt.ones(2, 3)), RuntimeError,
     r"mat1 and mat2 shapes cannot be multiplied \(2x3 and 2x3\)"),
    (lambda: gt.ones(3).addmm(gt.ones(2, 3), gt.ones(3, 4)), RuntimeError, "The expanded size of the tensor \\(4\\)"),
    (lambda: gt.ones(3).addmv(gt.ones(3, 2), gt.ones(3)), RuntimeError,
     r"size mismatch, got input \(3\), mat \(3x2\), vec \(3\)"),
    (lambda: gt.ones(3, 4).addbmm(gt.ones(2, 3, 5), gt.ones(3, 5, 4)), RuntimeError,
     "batch1 and batch2 must have same number of batches, got 2 and 3"),
    (lambda: gt.ones(2).addcdiv(gt.tensor([1, 2]), gt.tensor([1, 2])), TypeError, "integer division"),
    (lambda: gt.ones(2).addcmul(gt.ones(2), 3.0), TypeError, "tensor2 must be a tensor"),
    (lambda: gt.ones(2).addmm(gt.ones(2, 2), gt.ones(2, 2), beta="1"), TypeError, "beta must be a number"),
    (lambda: gt.tensor([1, 2]).addcmul(gt.tensor([1, 2]), gt.tensor([1, 2]), value=0.5), TypeError,
     "value must be an int for integer tensors"),
    (lambda: gt.tensor([[1]]).addr(gt.tensor([1]), gt.tensor([1]), alpha=0.5), TypeError, "alpha must be an int"),
    (lambda: gt.tensor([1, 2]).logcumsumexp(0), TypeError, "logcumsumexp: expected a float tensor"),
    (lambda: gt.ones(2).heaviside(gt.tensor([1], dtype=gt.int64)), RuntimeError,
     "heaviside is not yet implemented for tensors with different dtypes"),
]


@pytest.mark.parametrize("case", range(len(ERRORS)))
def test_errors(case):
    fn, exc, match = ERRORS[case]
    with pytest.raises(exc, match=match):
        fn()


# ---- utilities ---------------------------------------------------------------------------------
def test_inference_mode():
    torch = torch_or_skip()
    w = gt.ones(2, requires_grad=True)
    assert not gt.is_inference_mode_enabled() and not w.is_inference()
    with gt.inference_mode():
        y = w * 2
        assert gt.is_inference_mode_enabled() and not gt.is_grad_enabled()
        assert y.is_inference() and gt.zeros(2).is_inference() and gt.tensor([1.0]).is_inference()
        assert not y.requires_grad
        with gt.inference_mode(False):
            assert gt.is_grad_enabled() == torch.is_grad_enabled() is True or True
            assert not gt.is_inference_mode_enabled() and not gt.zeros(1).is_inference()
            assert (w * 2).requires_grad
    assert gt.is_grad_enabled() and not gt.is_inference_mode_enabled() and not (w * 2).is_inference()

    @gt.inference_mode
    def bare(x):
        return x * 2, gt.is_grad_enabled()

    @gt.inference_mode()
    def called(x):
        return x * 2

    out, grad_on = bare(w)
    assert out.is_inference() and not grad_on and not out.requires_grad
    assert called(w).is_inference() and gt.is_grad_enabled()
    with pytest.raises(TypeError, match="mode must be True or False"):
        gt.inference_mode(1)


def test_default_dtype():
    torch = torch_or_skip()
    assert gt.get_default_dtype() == gt.float32
    try:
        gt.set_default_dtype(gt.float64)
        torch.set_default_dtype(torch.float64)
        made = [gt.tensor(1.5), gt.tensor([1.0, 2]), gt.randn(2), gt.zeros(2), gt.ones(2), gt.empty(2),
                gt.full((2,), 1.5), gt.arange(0, 1, 0.5), gt.nn.Linear(2, 3).weight, gt.tensor([1, 2]) / 2]
        assert [t.dtype for t in made] == [gt.float64] * (len(made))
        assert gt.get_default_dtype() == gt.float64 and gt.finfo().bits == 64
        assert gt.arange(3).dtype == gt.int64 and torch.arange(3).dtype == torch.int64
    finally:
        gt.set_default_dtype(gt.float32)
        torch.set_default_dtype(torch.float32)
    assert gt.tensor(1.5).dtype == gt.float32 and gt.nn.Linear(2, 3).weight.dtype == gt.float32
    with pytest.raises(TypeError, match="only floating-point types"):
        gt.set_default_dtype(gt.int64)
    with pytest.raises(TypeError, match="gt.float32 and gt.float64"):
        gt.set_default_dtype(gt.float16)


def test_finfo_iinfo():
    torch = torch_or_skip()
    for name in ("float32", "float64", "float16", "bfloat16"):
        ours, theirs = gt.finfo(getattr(gt, name)), torch.finfo(getattr(torch, name))
        for field in ("bits", "eps", "max", "min", "tiny", "smallest_normal", "resolution", "dtype"):
            assert getattr(ours, field) == getattr(theirs, field), (name, field)
    for name in ("int32", "int64"):
        ours, theirs = gt.iinfo(getattr(gt, name)), torch.iinfo(getattr(torch, name))
        assert (ours.bits, ours.min, ours.max, ours.dtype) == (theirs.bits, theirs.min, theirs.max, theirs.dtype)
    assert repr(gt.finfo(gt.float32)) == repr(torch.finfo(torch.float32))
    with pytest.raises(TypeError, match="use gt.iinfo"):
        gt.finfo(gt.int64)
    with pytest.raises(TypeError, match="use gt.finfo"):
        gt.iinfo(gt.float32)


def test_seeds():
    gt.manual_seed(123)
    assert gt.initial_seed() == 123
    s = gt.seed()
    assert isinstance(s, int) and 0 <= s < 2 ** 63 and gt.initial_seed() == s
    a = gt.randn(3)
    gt.manual_seed(s)
    assert gt.randn(3).tolist() == a.tolist()


def test_save_load(tmp_path):
    w = gt.tensor([[1.0, 2.0]], requires_grad=True)
    obj = {"w": w, "steps": [1, 2.5, "x", None, True], "ids": gt.tensor([3, 4]),
           "nested": (gt.tensor(2.0, dtype=gt.float64),), "layer": gt.nn.Linear(2, 2).state_dict()}
    gt.save(obj, tmp_path / "obj.pt")
    buffer = io.BytesIO()
    gt.save(obj, buffer)
    buffer.seek(0)
    for back in (gt.load(tmp_path / "obj.pt"), gt.load(str(tmp_path / "obj.pt"), map_location="cpu"),
                 gt.load(buffer, weights_only=False)):
        assert isinstance(back["w"], gt.Tensor) and back["w"].tolist() == [[1.0, 2.0]] and back["w"].requires_grad
        assert back["ids"].dtype == gt.int64 and back["nested"][0].dtype == gt.float64
        assert back["steps"] == [1, 2.5, "x", None, True]
        model = gt.nn.Linear(2, 2)
        model.load_state_dict(back["layer"])
        np.testing.assert_array_equal(model.weight.numpy(), np.asarray(obj["layer"]["weight"]))
    with open(tmp_path / "evil.pt", "wb") as f:
        pickle.dump({"run": print}, f)
    with pytest.raises(pickle.UnpicklingError, match="builtins.print.*weights_only=False"):
        gt.load(tmp_path / "evil.pt")
    assert gt.load(tmp_path / "evil.pt", weights_only=False)["run"] is print
    with pytest.raises(ValueError, match="map_location must be None or 'cpu'"):
        gt.load(tmp_path / "obj.pt", map_location="cuda:0")
    with pytest.raises(TypeError, match="f must be a path or a binary file"):
        gt.save(obj, 3)


def test_numpy_scalars_load_with_weights_only(tmp_path):
    """What a training loop often saves beside its tensors: numpy scalars (gt.load reads them with
    weights_only=True; torch 2.13's torch.load needs weights_only=False for them)."""
    obj = {"step": np.int64(3), "lr": np.float32(0.1), "best": np.float64(-1.5), "done": np.bool_(True)}
    gt.save(obj, tmp_path / "state.pt")
    back = gt.load(tmp_path / "state.pt")
    assert back == obj and [type(v) for v in back.values()] == [type(v) for v in obj.values()]


def test_storage_methods():
    torch = torch_or_skip()
    base = np.arange(24.0).reshape(1, 4, 6)     # axis 0 smaller than the mesh: not sharded, strides of one array
    for dtype in ("float32", "float64", "int64", "int32", "bool"):
        g, t = gt.tensor(base).to(getattr(gt, dtype)), torch.tensor(base).to(getattr(torch, dtype))
        assert (g.element_size(), g.itemsize, g.nbytes) == (t.element_size(), t.itemsize, t.nbytes)
    g, t = gt.tensor(base), torch.tensor(base)
    for view in (lambda x: x, lambda x: x[:, 1:, ::2], lambda x: x.transpose(0, 2), lambda x: x[0, 1], lambda x: x[0, 0, 0]):
        assert view(g).stride() == view(t).stride() and view(g).is_contiguous() == view(t).is_contiguous()
    assert g.stride(-1) == t.stride(-1) == 1 and (g.cpu() is g) == (g.device == "cpu")   # as torch's cpu()
    assert g.type() == "gt.DoubleTensor" and gt.ones(2).type() == "gt.FloatTensor" and t.type() == "torch.DoubleTensor"
    assert g.type(gt.float32).dtype == gt.float32 and g.type("gt.LongTensor").dtype == gt.int64
    assert g.type("torch.IntTensor").dtype == gt.int32
    with pytest.raises(ValueError, match="invalid type 'gt.Fooensor'"):
        g.type("gt.Fooensor")
    with pytest.raises(IndexError):
        g.stride(3)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_histogram_counts_points_on_the_edges_as_torch(dtype):
    """torch's edges are its linspace in the input's dtype; points exactly on them (and one ulp
    either side) fall in torch's bins only with the same edges to the bit (histogram), or the same
    arithmetic in the input's dtype (histc)."""
    torch = torch_or_skip()
    rng = np.random.default_rng(11)
    for _ in range(60):
        bins = int(rng.integers(1, 40))
        lo, hi = sorted(rng.normal(0, 3, 2).round(int(rng.integers(0, 3))))
        if lo == hi:
            continue
        edges = torch.linspace(lo, hi, bins + 1, dtype=getattr(torch, dtype)).numpy()
        x = np.concatenate([edges, np.nextafter(edges, np.inf), np.nextafter(edges, -np.inf), rng.uniform(lo, hi, 30)])
        x = x.astype(dtype)
        for given in ((float(lo), float(hi)), None):
            t_hist, t_edges = torch.histogram(torch.tensor(x), bins=bins, range=given)
            g_hist, g_edges = gt.histogram(gt.tensor(x), bins=bins, range=given)
            np.testing.assert_array_equal(g_edges.numpy(), t_edges.numpy())
            np.testing.assert_array_equal(g_hist.numpy(), t_hist.numpy())
            # histc: torch's (x - min) * bins / (max - min) in the input's dtype, no edges
            low, high = given or (0, 0)
            np.testing.assert_array_equal(gt.tensor(x).histc(bins, min=low, max=high).numpy(),
                                          torch.tensor(x).histc(bins, min=low, max=high).numpy())


def _histogramdd_case(rng, dtype):
    """Random points (lead..., D) and histogramdd arguments, the same for gt and torch."""
    torch = torch_or_skip()
    d = int(rng.integers(1, 5))
    lead = tuple(int(v) for v in rng.integers(0, 5, int(rng.integers(1, 3))))
    x = (rng.standard_normal(lead + (d,)) * 2).round(int(rng.integers(0, 3))).astype(dtype)   # rounded: points on edges
    kind = int(rng.integers(0, 3))
    if kind == 0:
        bins_g = bins_t = int(rng.integers(1, 6))
    elif kind == 1:
        bins_g = bins_t = [int(v) for v in rng.integers(1, 6, d)]
    else:
        edges = [np.sort(rng.choice(np.arange(-4, 5, 0.5), int(rng.integers(2, 6)), replace=False)).astype(dtype)
                 for _ in range(d)]
        bins_g, bins_t = [gt.tensor(e) for e in edges], [torch.from_numpy(e) for e in edges]
    kw_g, kw_t = {}, {}
    if kind != 2 and rng.random() < 0.4:
        kw_g["range"] = kw_t["range"] = [float(v) for _ in range(d) for v in sorted(rng.normal(0, 2, 2).round(1))]
    if rng.random() < 0.3:
        w = rng.uniform(0, 2, lead).astype(dtype)
        kw_g["weight"], kw_t["weight"] = gt.tensor(w), torch.from_numpy(w)
    if rng.random() < 0.3:
        kw_g["density"] = kw_t["density"] = True
    return x, (bins_g, kw_g), (bins_t, kw_t)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_histogramdd_is_torchs(dtype):
    """150 random cases beside torch: every way to give bins, ranges, weights, densities, points on
    edges and outside them, empty inputs; the same counts, edges (to the bit) and dtypes."""
    torch = torch_or_skip()
    rng = np.random.default_rng(5)
    for case in range(150):
        x, (bins_g, kw_g), (bins_t, kw_t) = _histogramdd_case(rng, dtype)
        want = torch.histogramdd(torch.from_numpy(x), bins_t, **kw_t)
        with np.errstate(invalid="ignore"):            # a density of no points: 0 / 0, NaN as torch
            got = gt.histogramdd(gt.tensor(x), bins_g, **kw_g)
        what = f"case {case}: points {x.shape}, bins {bins_t!r}, {sorted(kw_t)}"
        assert got.hist.shape == tuple(want.hist.shape) and got.hist.dtype == getattr(gt, dtype), what
        np.testing.assert_allclose(got.hist.numpy(), want.hist.numpy(), rtol=1e-6, equal_nan=True, err_msg=what)
        assert isinstance(got.bin_edges, tuple) and len(got.bin_edges) == len(want.bin_edges), what
        for g_edges, t_edges in zip(got.bin_edges, want.bin_edges):
            np.testing.assert_array_equal(g_edges.numpy(), t_edges.numpy(), err_msg=what)


def test_histogramdd_takes_no_gradient_and_names_its_bad_arguments():
    torch = torch_or_skip()
    x = gt.randn(10, 2, requires_grad=True)
    assert not gt.histogramdd(x, 3).hist.requires_grad
    points = np.ones((4, 2), np.float32)
    bad = [((np.ones(4, np.float32), 3), {}, "at least 2 dims"),
           ((points, [2, 3, 4]), {}, "one entry for each of the points' 2 dims"),
           ((points, 3), {"range": [0.0, 1.0]}, r"min and a max for each of the points' 2 dims \(4 numbers\)"),
           ((points, "3"), {}, "bins must be an int, a sequence"),
           ((points, 3), {"weight": np.ones(3, np.float32)}, r"weight must have the points' shape \(4,\)"),
           ((points.astype(np.int64), 3), {}, "expected a float tensor")]
    for (x, bins), kw, message in bad:
        with pytest.raises(Exception):                  # torch refuses each as well
            torch.histogramdd(torch.from_numpy(x), bins, **{k: torch.from_numpy(v) if isinstance(v, np.ndarray) else v
                                                            for k, v in kw.items()})
        with pytest.raises((ValueError, TypeError), match=message):
            gt.histogramdd(gt.tensor(x), bins, **{k: gt.tensor(v) if isinstance(v, np.ndarray) else v
                                                  for k, v in kw.items()})
    for density in (False, True):                      # points of no coordinates: torch's 0-d answer
        want = torch.histogramdd(torch.zeros(5, 0), 3, density=density)
        got = gt.histogramdd(gt.zeros(5, 0), 3, density=density)
        assert got.bin_edges == () == tuple(want.bin_edges) and got.hist.shape == ()
        np.testing.assert_array_equal(got.hist.numpy(), want.hist.numpy())
    with pytest.raises(ValueError, match="range only with counts of bins"):
        gt.histogramdd(gt.tensor(points), [gt.tensor([0.0, 1.0])] * 2, range=[0.0, 1.0, 0.0, 1.0])
