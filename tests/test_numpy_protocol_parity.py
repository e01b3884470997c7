"""numpy's ufuncs and functions on gt tensors beside the same calls on torch tensors (torch 2.13,
numpy 2): the kind of result (tensor, array, numpy scalar, Python value, error type), its dtype,
shape and values.

torch tensors have ``__array__``, ``__array_wrap__`` and no ``__array_ufunc__``: numpy reads them
(refused for a tensor that requires grad while grad mode is on) and wraps results back as tensors,
bool results as uint8. gt does the same, except where its own behaviour is the public gt's
(README "Code written for the public gt", MISSING.md "numpy ufuncs on tensors"): the ufuncs gt
has an op for (``+ - * / ** @``, exp, log, sqrt, tanh, abs, maximum, minimum, comparisons) run
as gt ops, differentiable, and numpy's reductions (``np.sum(t)``, ``np.mean(t, axis=0)``, ...)
call gt's own methods, which accept numpy's keywords where torch 2.13's refuse them. Those
differences are asserted here too, so a change on either side shows.
"""

import warnings

import numpy as np
import pytest

import gt
from gt.tensor.numpy_interop import _UFUNCS

torch = pytest.importorskip("torch")

F = np.array([[0.5, -1.5, 2.0], [0.25, 3.0, -0.75]], np.float32)
I = np.array([[1, -2, 3], [4, 5, -6]], np.int64)
MASK = np.array([[True, False, True], [False, False, True]])
TALL = np.linspace(-2.0, 2.0, 24, dtype=np.float32).reshape(8, 3)    # sharded on axis 0 on a mesh


def _inputs(lib):
    """The same operands as torch tensors or gt tensors (and plain numpy beside them)."""
    return dict(f=lib.tensor(F), i=lib.tensor(I), i2=lib.tensor(I[::-1].copy()), b=lib.tensor(MASK),
                z=lib.tensor(1.5), nc=lib.tensor(F).t(), g=lib.tensor(F, requires_grad=True),
                d=lib.tensor(F.astype(np.float64)), h=lib.tensor(F).half(), tall=lib.from_numpy(TALL.copy()),
                arr=F.copy(), two=2)


def _kind(r):
    if isinstance(r, tuple):
        return ("tuple",) + tuple(_kind(x) for x in r)
    if isinstance(r, list):
        return ("list",) + tuple(_kind(x) for x in r)
    if isinstance(r, (torch.Tensor, gt.Tensor)):
        return ("tensor", str(r.dtype).split(".")[-1], tuple(r.shape), r.detach().numpy().copy(), r.requires_grad)
    if isinstance(r, np.ndarray):
        return ("ndarray", str(r.dtype), r.shape, r.copy())
    if isinstance(r, np.generic):
        return ("numpy scalar", str(r.dtype), (), np.asarray(r))
    return ("python", type(r).__name__, r)


def _outcome(fn, lib):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")     # torch's __array__/__array_wrap__ deprecations, log(-1)
        try:
            return _kind(fn(_inputs(lib)))
        except Exception as e:              # noqa: BLE001 - the error's type is what is compared
            return ("error", type(e).__name__, str(e).split("\n")[0])


def _assert_same(want, got, label):
    assert want[0] == got[0], f"{label}: torch gives {want[:2]}, gt {got[:2]}"
    if want[0] in ("tuple", "list"):
        assert len(want) == len(got), label
        for w, g in zip(want[1:], got[1:]):
            _assert_same(w, g, label)
        return
    if want[0] == "error":
        assert want[1] == got[1], f"{label}: torch raises {want[1]}: {want[2]}; gt {got[1]}: {got[2]}"
        return
    if want[0] == "python":
        assert (want[1], want[2]) == (got[1], got[2]), label
        return
    assert want[1:3] == got[1:3], f"{label}: torch {want[1:3]}, gt {got[1:3]}"
    np.testing.assert_allclose(got[3].astype(np.float64), want[3].astype(np.float64), rtol=1e-5, atol=1e-7,
                               equal_nan=True, err_msg=label)
    if want[0] == "tensor":
        assert want[4] == got[4], f"{label}: requires_grad"


def _same_as_torch(fn, label):
    _assert_same(_outcome(fn, torch), _outcome(fn, gt), label)


def _no_grad(fn):
    def run(d):
        with torch.no_grad(), gt.no_grad():
            return fn(d)
    return run


_ALL = {}
for _name in dir(np):
    if isinstance(getattr(np, _name), np.ufunc):
        _ALL.setdefault(getattr(np, _name).__name__, getattr(np, _name))   # np.pow is np.power, ...
NUMPY_SIDE = sorted(n for n, u in _ALL.items() if n not in _UFUNCS and u.nin in (1, 2))
GT_OPS = sorted(n for n in _UFUNCS if n in _ALL)      # true_divide is numpy 2's divide

UNARY = ("f", "i", "b", "z", "nc", "d", "h", "tall", "g")
BINARY = (("f", "f"), ("i", "i2"), ("b", "b"), ("arr", "f"), ("f", "arr"), ("f", "two"), ("two", "f"), ("z", "z"),
          ("f", "nc"), ("d", "f"), ("g", "f"), ("f", "g"))


@pytest.mark.parametrize("name", NUMPY_SIDE)
def test_ufunc_gt_has_no_op_for_runs_as_on_torch(name):
    """numpy computes it on the values and hands back a tensor (uint8 for bool; a tuple of tensors
    for modf/frexp/divmod); a tensor that requires grad raises torch's RuntimeError, unless grad
    mode is off; out= takes a numpy array and refuses a tensor with a TypeError."""
    u = _ALL[name]
    calls = [(k,) for k in UNARY] if u.nin == 1 else BINARY
    for keys in calls:
        _same_as_torch(lambda d: u(*(d[k] for k in keys)), f"np.{name}{keys}")
        if "g" in keys:
            _same_as_torch(_no_grad(lambda d: u(*(d[k] for k in keys))), f"np.{name}{keys} under no_grad")
    if u.nin == 1 and u.nout == 1 and name not in ("isnat",):
        _same_as_torch(lambda d: u(d["f"], out=np.zeros((2, 3), np.float32)), f"np.{name}(f, out=array)")
        _same_as_torch(lambda d: u(d["f"], out=d["f"] * 0), f"np.{name}(f, out=tensor)")


@pytest.mark.parametrize("name", GT_OPS)
def test_ufunc_gt_has_an_op_for_runs_on_the_tape(name):
    """The documented difference: a gt op, so a tensor that requires grad is differentiated
    (torch raises), and comparisons give bool (torch's wrap gives uint8); float values as torch's."""
    u = _ALL[name]
    args = ("f",) if u.nin == 1 else ("f", "nc") if name == "matmul" else ("f", "arr")
    want, got = _outcome(lambda d: u(*(d[k] for k in args)), torch), _outcome(lambda d: u(*(d[k] for k in args)), gt)
    if want[1] == "uint8":
        assert got[1] == "bool", name
        want = want[:1] + ("bool",) + want[2:]
    _assert_same(want, got, f"np.{name}{args}")
    grad_args = ("g",) if u.nin == 1 else ("g", "nc") if name == "matmul" else ("g", "arr")
    assert _outcome(lambda d: u(*(d[k] for k in grad_args)), torch)[:2] == ("error", "RuntimeError")
    gi, ti = _inputs(gt), _inputs(torch)
    out = u(*(gi[k] for k in grad_args))
    if out.dtype == gt.bool:
        assert not out.requires_grad
        return
    out.sum().backward()
    tops = {"true_divide": "div", "divide": "div", "power": "pow", "absolute": "abs", "negative": "neg",
            "positive": "positive", "matmul": "matmul", "maximum": "maximum", "minimum": "minimum",
            "add": "add", "subtract": "sub", "multiply": "mul"}
    targs = [ti[k] if k != "arr" else torch.tensor(F) for k in grad_args]
    getattr(torch, tops.get(name, name))(*targs).sum().backward()
    np.testing.assert_allclose(gi["g"].grad.numpy(), ti["g"].grad.numpy(), rtol=1e-5, equal_nan=True, err_msg=name)


UFUNC_METHODS = {
    "add.reduce": lambda d: np.add.reduce(d["f"]),
    "add.reduce(axis=1)": lambda d: np.add.reduce(d["f"], axis=1),
    "maximum.reduce": lambda d: np.maximum.reduce(d["tall"]),
    "add.accumulate": lambda d: np.add.accumulate(d["f"]),
    "add.reduceat": lambda d: np.add.reduceat(d["f"][0], [0, 2]),
    "multiply.outer": lambda d: np.multiply.outer(d["f"][0], d["f"][1]),
    "add.reduce(grad)": lambda d: np.add.reduce(d["g"]),
    "add.at": lambda d: np.add.at(d["f"], ([0], [1]), 5.0),
    "exp(dtype=float64)": lambda d: np.exp(d["f"], dtype=np.float64),
    "add(out=array)": lambda d: np.add(d["f"], d["f"], out=np.zeros((2, 3), np.float32)),
    "add(out=tensor)": lambda d: np.add(d["f"], d["f"], out=d["f"]),
    "modf(out=arrays)": lambda d: np.modf(d["f"], out=(np.zeros((2, 3), np.float32), np.zeros((2, 3), np.float32))),
    "sin(arr, out=tensor)": lambda d: np.sin(d["arr"], out=d["f"]),
    "sin(list of 0-d)": lambda d: np.sin([d["z"], d["z"]]),
    "sin(empty)": lambda d: np.sin(d["f"][:0]),
    "frompyfunc": lambda d: np.frompyfunc(lambda v: v * 2, 1, 1)(d["f"]),
}


@pytest.mark.parametrize("name", sorted(UFUNC_METHODS))
def test_ufunc_methods_and_keywords(name):
    _same_as_torch(UFUNC_METHODS[name], name)


def _sorted_row(d):
    return d["f"][0][np.array([3, 0, 1]) % 3][np.array([1, 0, 2])]


# numpy functions whose result on gt tensors is torch's: an ndarray where numpy converts the
# tensor (np.concatenate, np.where), a tensor where numpy falls back to the values and wraps
# (np.clip, np.round, np.transpose, ...), and torch's RuntimeError for a tensor that requires grad
FUNCTIONS = {
    "cumsum(axis=0)": lambda d: np.cumsum(d["f"], axis=0), "cumsum": lambda d: np.cumsum(d["i"]),
    "cumprod(axis=1)": lambda d: np.cumprod(d["f"], axis=1), "ptp": lambda d: np.ptp(d["f"]),
    "prod": lambda d: np.prod(d["f"]), "prod(axis=0)": lambda d: np.prod(d["f"], axis=0),
    "median": lambda d: np.median(d["f"]), "median(axis=0)": lambda d: np.median(d["f"], axis=0),
    "average": lambda d: np.average(d["f"]), "nanmean": lambda d: np.nanmean(d["f"]),
    "nansum": lambda d: np.nansum(d["f"]), "percentile": lambda d: np.percentile(d["f"], 50),
    "quantile": lambda d: np.quantile(d["f"], 0.3), "argmax": lambda d: np.argmax(d["f"]),
    "argmax(axis=1)": lambda d: np.argmax(d["f"], axis=1), "argmin(axis=0)": lambda d: np.argmin(d["f"], axis=0),
    "argmax(keepdims)": lambda d: np.argmax(d["f"], axis=1, keepdims=True),
    "concatenate": lambda d: np.concatenate([d["f"], d["f"]]),
    "concatenate(array, axis=1)": lambda d: np.concatenate([d["f"], d["arr"]], axis=1),
    "stack": lambda d: np.stack([d["f"], d["nc"].t()]), "vstack": lambda d: np.vstack([d["f"], d["f"]]),
    "hstack": lambda d: np.hstack([d["f"], d["f"]]), "stack(grad)": lambda d: np.stack([d["g"], d["f"]]),
    "where(mask)": lambda d: np.where(d["b"]), "where(mask, f, 0)": lambda d: np.where(d["b"], d["f"], 0),
    "where(grad)": lambda d: np.where(d["g"] > 0, d["g"], 0),
    "clip": lambda d: np.clip(d["f"], 0, 1), "clip(None, 1)": lambda d: np.clip(d["f"], None, 1),
    "clip(int)": lambda d: np.clip(d["i"], 0, 2), "clip(0-d)": lambda d: np.clip(d["z"], 0, 1),
    "clip(grad)": lambda d: np.clip(d["g"], 0, 1), "clip(tall)": lambda d: np.clip(d["tall"], -1, 1),
    "round": lambda d: np.round(d["f"]), "round(1)": lambda d: np.round(d["f"], 1),
    "around(2)": lambda d: np.around(d["d"], 2), "round(0-d)": lambda d: np.round(d["z"]),
    "round(grad)": lambda d: np.round(d["g"]),
    "transpose": lambda d: np.transpose(d["f"]), "transpose(axes)": lambda d: np.transpose(d["f"], (1, 0)),
    "transpose(grad)": lambda d: np.transpose(d["g"]),
    "reshape": lambda d: np.reshape(d["f"], (3, 2)), "reshape(-1)": lambda d: np.reshape(d["f"], -1),
    "reshape(non-contiguous)": lambda d: np.reshape(d["nc"], 6), "reshape(grad)": lambda d: np.reshape(d["g"], (3, 2)),
    "squeeze(0-d)": lambda d: np.squeeze(d["z"]), "squeeze": lambda d: np.squeeze(d["f"][None]),
    "expand_dims": lambda d: np.expand_dims(d["f"], 0), "ravel": lambda d: np.ravel(d["f"]),
    "ravel(non-contiguous)": lambda d: np.ravel(d["nc"]),
    "sort": lambda d: np.sort(d["f"]), "sort(axis=0)": lambda d: np.sort(d["f"], axis=0),
    "argsort": lambda d: np.argsort(d["f"]), "argsort(axis=0)": lambda d: np.argsort(d["f"], axis=0),
    "allclose": lambda d: np.allclose(d["f"], d["f"]), "allclose(array)": lambda d: np.allclose(d["f"], d["arr"]),
    "allclose(grad)": lambda d: np.allclose(d["g"], d["f"]),
    "isclose": lambda d: np.isclose(d["f"], d["arr"]), "array_equal": lambda d: np.array_equal(d["f"], d["f"]),
    "asarray": lambda d: np.asarray(d["f"]), "asarray(grad)": lambda d: np.asarray(d["g"]),
    "asarray(grad) under no_grad": _no_grad(lambda d: np.asarray(d["g"])),
    "asarray(0-d)": lambda d: np.asarray(d["z"]), "asarray(non-contiguous)": lambda d: np.asarray(d["nc"]),
    "asarray(float64)": lambda d: np.asarray(d["f"], dtype=np.float64), "asarray(half)": lambda d: np.asarray(d["h"]),
    "array": lambda d: np.array(d["f"]), "array(grad)": lambda d: np.array(d["g"]),
    "array(list of tensors)": lambda d: np.array([d["f"], d["f"]]),
    "array(list of 0-d)": lambda d: np.array([d["z"]] * 2),
    "asanyarray": lambda d: np.asanyarray(d["f"]), "ascontiguousarray": lambda d: np.ascontiguousarray(d["nc"]),
    "copy": lambda d: np.copy(d["f"]), "asarray(copy=True)": lambda d: np.asarray(d["f"], copy=True),
    "linalg.norm": lambda d: np.linalg.norm(d["f"]), "linalg.norm(axis=1)": lambda d: np.linalg.norm(d["f"], axis=1),
    "linalg.norm(grad)": lambda d: np.linalg.norm(d["g"]), "linalg.norm(0-d)": lambda d: np.linalg.norm(d["z"]),
    "linalg.inv": lambda d: np.linalg.inv(d["f"][:, :2]), "linalg.det": lambda d: np.linalg.det(d["f"][:, :2]),
    "linalg.svd": lambda d: tuple(np.linalg.svd(d["f"])),
    "dot": lambda d: np.dot(d["f"], d["nc"]), "dot(array)": lambda d: np.dot(d["f"], d["arr"].T),
    "dot(grad)": lambda d: np.dot(d["g"], d["nc"]), "dot(vectors)": lambda d: np.dot(d["f"][0], d["f"][1]),
    "inner": lambda d: np.inner(d["f"], d["f"]), "outer": lambda d: np.outer(d["f"][0], d["f"][1]),
    "einsum": lambda d: np.einsum("ij,ij->i", d["f"], d["f"]),
    "tensordot": lambda d: np.tensordot(d["f"], d["f"], axes=([1], [1])),
    "diag": lambda d: np.diag(d["f"][:, :2]), "trace": lambda d: np.trace(d["f"][:, :2]),
    "unique": lambda d: np.unique(d["i"]), "nonzero": lambda d: np.nonzero(d["b"]),
    "count_nonzero": lambda d: np.count_nonzero(d["b"]), "ndim": lambda d: np.ndim(d["f"]),
    "take": lambda d: np.take(d["f"], [0, 2]), "take(axis=1)": lambda d: np.take(d["f"], [0, 2], axis=1),
    "repeat": lambda d: np.repeat(d["f"], 2), "repeat(axis=0)": lambda d: np.repeat(d["f"], 2, axis=0),
    "tile": lambda d: np.tile(d["f"], 2), "flip": lambda d: np.flip(d["f"]), "flip(0)": lambda d: np.flip(d["f"], 0),
    "roll": lambda d: np.roll(d["f"], 1), "zeros_like": lambda d: np.zeros_like(d["f"]),
    "ones_like(int)": lambda d: np.ones_like(d["i"]), "full_like": lambda d: np.full_like(d["f"], 7),
    "diff": lambda d: np.diff(d["f"]), "searchsorted": lambda d: np.searchsorted(_sorted_row(d), 0.3),
    "nan_to_num": lambda d: np.nan_to_num(d["f"]), "histogram": lambda d: np.histogram(d["f"], bins=3),
    "bincount": lambda d: np.bincount(d["i"].abs().flatten()), "argwhere": lambda d: np.argwhere(d["b"]),
    "split": lambda d: np.split(d["f"], 3, axis=1), "array_split": lambda d: np.array_split(d["f"], 2, axis=1),
    "swapaxes": lambda d: np.swapaxes(d["f"], 0, 1), "moveaxis": lambda d: np.moveaxis(d["f"], 0, 1),
    "broadcast_to": lambda d: np.broadcast_to(d["f"], (2, 2, 3)), "atleast_2d": lambda d: np.atleast_2d(d["z"]),
    "triu": lambda d: np.triu(d["f"]), "tril": lambda d: np.tril(d["f"]), "cov": lambda d: np.cov(d["f"]),
    "corrcoef": lambda d: np.corrcoef(d["f"]), "sign": lambda d: np.sign(d["f"]),
    "isfinite": lambda d: np.isfinite(d["f"]),
    "sort(stable)": lambda d: np.sort(d["f"], kind="stable"), "nonzero(float)": lambda d: np.nonzero(d["f"]),
    "squeeze(axis=0)": lambda d: np.squeeze(d["f"][None], axis=0), "cumsum(tall)": lambda d: np.cumsum(d["tall"], 0),
    "mean(tall) of the wrap": lambda d: np.round(d["tall"]) + 1,
    "linalg.solve(array, tensor)": lambda d: np.linalg.solve(d["arr"][:, :2], d["f"][:, :2]),
    "linalg.solve(tensor, array)": lambda d: np.linalg.solve(d["f"][:, :2], d["arr"][:, :2]),
    "linalg.eigh": lambda d: tuple(np.linalg.eigh(d["f"][:, :2] @ d["f"][:, :2].t())),
    "clip(array, tensor, 1)": lambda d: np.clip(d["arr"], d["f"] * 0, 1),
    "take(array, tensor)": lambda d: np.take(d["arr"], d["i"].abs() % 3),
    "transpose(bool)": lambda d: np.transpose(d["b"]), "cumsum(bool)": lambda d: np.cumsum(d["b"]),
}


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_numpy_function_as_on_torch(name):
    _same_as_torch(FUNCTIONS[name], f"np.{name}")


# numpy's reductions call the tensor's own method with numpy's keywords: torch 2.13's refuse
# them (TypeError), gt's take them (the public gt's `np.mean(t.data)`, tests/test_gt_compat.py)
REDUCTIONS = {
    "sum": (lambda x: np.sum(x), None), "sum(axis=0)": (lambda x: np.sum(x, axis=0), None),
    "sum(keepdims)": (lambda x: np.sum(x, axis=1, keepdims=True), None),
    "mean": (lambda x: np.mean(x), None), "mean(axis=(0, 1))": (lambda x: np.mean(x, axis=(0, 1)), None),
    "max": (lambda x: np.max(x), None), "max(axis=0)": (lambda x: np.max(x, axis=0), None),
    "min(axis=1, keepdims)": (lambda x: np.min(x, axis=1, keepdims=True), None),
    "amax": (lambda x: np.amax(x), None), "amin(axis=1)": (lambda x: np.amin(x, axis=1), None),
    "std": (lambda x: np.std(x), None), "std(ddof=1)": (lambda x: np.std(x, ddof=1), None),
    "var(axis=1)": (lambda x: np.var(x, axis=1), None),
    "any": (lambda x: np.any(x > 0), None), "all(axis=1)": (lambda x: np.all(x > 0, axis=1), None),
}


@pytest.mark.parametrize("name", sorted(REDUCTIONS))
def test_numpy_reduction_is_gt_s_own_where_torch_refuses(name):
    fn = REDUCTIONS[name][0]
    assert _outcome(lambda d: fn(d["f"]), torch)[:2] == ("error", "TypeError"), name
    got = fn(gt.tensor(F, requires_grad=True))
    assert isinstance(got, gt.Tensor), name
    np.testing.assert_allclose(got.detach().numpy(), fn(F), rtol=1e-6, err_msg=name)
    assert got.requires_grad == (got.dtype != gt.bool), name          # on the tape, as gt's method


def test_np_array_copies_and_asarray_keeps_views():
    """np.array(t) asks __array__ for a copy: it gave the tensor's own memory, so writing into
    "the copy" changed the tensor (a torch tensor's np.array is a copy)."""
    for lib in (torch, gt):
        t = lib.tensor(F)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")     # torch's __array__ takes no copy= (numpy 2 warns)
            a = np.array(t)
        a[0, 0] = 100.0
        assert float(t[0, 0]) == 0.5, lib.__name__
    t = gt.tensor(F)
    b = np.asarray(t, dtype=np.float64)
    b[0, 0] = 100.0
    assert float(t[0, 0]) == 0.5
    with pytest.raises(ValueError, match="copy=False"):
        np.asarray(t, dtype=np.float64, copy=False)
    assert np.asarray(t, dtype=np.float32).dtype == np.float32


def test_wrapped_results_are_plain_tensors_off_the_graph():
    """np.clip of a Parameter under no_grad is a plain tensor, as torch's __array_wrap__ gives."""
    p = gt.nn.Parameter(gt.tensor(F))
    with gt.no_grad():
        r = np.clip(p, 0, 1)
    assert type(r) is gt.Tensor and not r.requires_grad
    np.testing.assert_array_equal(r.numpy(), np.clip(F, 0, 1))
    with pytest.raises(RuntimeError, match=r"Can't call numpy\(\) on Tensor that requires grad"):
        np.clip(p, 0, 1)


def test_maximum_minimum_with_a_number_keep_the_tensor_s_dtype():
    """``np.maximum(t, 0)`` (the public gt's idiom) runs as gt's maximum with the number as a 0-d
    tensor, so the tensor's dtype stays, as the operators' promotion keeps it."""
    for values, number in ((F.astype(np.float16), 0), (F, 0.5), (I, 2), (MASK, False)):
        t = gt.tensor(values)
        for ufunc in (np.maximum, np.minimum):
            for args in ((t, number), (number, t)):
                got = ufunc(*args)
                want = getattr(torch, ufunc.__name__)(torch.tensor(values), torch.tensor(number))
                assert isinstance(got, gt.Tensor) and str(got.dtype) == str(want.dtype).replace("torch", "gt"), \
                    (ufunc.__name__, values.dtype, number)
                np.testing.assert_array_equal(got.numpy(), want.numpy())
