"""Integer inputs of ``F.gaussian_nll_loss`` and ``F.hinge_embedding_loss`` that wrap in their
dtype, beside torch 2.13:

- uint8 and int8 inputs and targets near the ends of their range (``input - target`` wraps in
  uint8, as torch's), with float, float64, float16 and number variances, tiny and huge ones,
  ``reduction`` none/sum/mean: torch's values and dtypes;
- hinge margins that fit the input's dtype, are truncated into it, or overflow it (torch's overflow
  error, also with ``reduction='mean'``, where torch fills the margin before it refuses the mean of
  integers), uint8/int8/int64/float/bool targets: torch's values, dtypes and errors;
- torch's order of refusals: in ``gaussian_nll_loss`` var's negative entries and its shape
  (ValueError) before an integer var's in-place clamp and a bool operand's subtraction
  (RuntimeError); in ``hinge_embedding_loss`` a wrong ``reduction`` (ValueError) before the
  margin's overflow."""

import itertools

import numpy as np
import pytest

from helpers import beside_torch_or_errors

torch = pytest.importorskip("torch")


def _dt(t):
    return str(t.dtype).split(".")[-1]


def _same(got, want, rtol=1e-6):
    if isinstance(want, Exception):
        assert type(got) is type(want), (got, want)
        return
    assert not isinstance(got, Exception), (got, want)
    assert _dt(got) == _dt(want) and tuple(got.shape) == tuple(want.shape), (got, want)
    g, w = got.detach().float().numpy(), want.detach().float().numpy()
    if _dt(want) in ("uint8", "int8", "int16", "int32", "int64"):
        np.testing.assert_array_equal(got.numpy(), want.numpy())
    else:
        np.testing.assert_allclose(g.astype(np.float64), w.astype(np.float64), rtol=rtol, atol=1e-6)


def _t(m, values, dtype):
    return m.tensor(values, dtype=getattr(m, dtype))


INPUTS = {
    "uint8 near 255": ("uint8", [250, 255, 0, 3]),
    "uint8 near 0": ("uint8", [0, 1, 2, 255]),
    "int8 ends": ("int8", [127, -128, 0, -1]),
}
TARGETS = {
    "uint8": ("uint8", [255, 0, 1, 254]),
    "uint8 of 0 and 1": ("uint8", [1, 1, 0, 1]),
    "int8": ("int8", [-1, 1, -128, 127]),
    "int64 of -1 and 1": ("int64", [-1, 1, 1, -1]),
    "float32": ("float32", [0.5, 255.0, -3.0, 1.0]),
}
VARS = {
    "float32, one tiny": lambda m: m.tensor([1.0, 2.0, 0.5, 1e-9]),
    "float64": lambda m: m.tensor([1.0, 2.0, 0.5, 3.0], dtype=m.float64),
    "float16": lambda m: m.tensor([1.0, 2.0, 0.5, 3.0]).half(),
    "huge": lambda m: m.tensor([1e30, 300.0, 255.0, 70000.0]),
    "number": lambda m: 2.0,
    "one per row": lambda m: m.tensor(0.25).reshape(()),
}


@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
@pytest.mark.parametrize("var", list(VARS))
@pytest.mark.parametrize("pair", [f"{i} - {t}" for i, t in itertools.product(INPUTS, TARGETS)])
def test_gaussian_nll_loss_of_wrapping_integers_is_torch_s(pair, var, reduction):
    i, t = pair.split(" - ")

    def call(m):
        x, y = _t(m, INPUTS[i][1], INPUTS[i][0]), _t(m, TARGETS[t][1], TARGETS[t][0])
        v = VARS[var](m)
        v = v.expand(4, 1).reshape(4, 1) if var == "one per row" else v
        x, y = (x.reshape(4, 1), y.reshape(4, 1)) if var == "one per row" else (x, y)
        return m.nn.functional.gaussian_nll_loss(x, y, v, full=True, reduction=reduction)
    got, want = beside_torch_or_errors(call)
    assert not isinstance(want, Exception), want
    _same(got, want, rtol=2e-3 if _dt(want) == "float16" else 1e-6)


def test_gaussian_nll_loss_subtracts_uint8_in_uint8():
    # 0 - 255 is 1 and 0 - 3 is 253 in uint8, whose square is 9 there (torch's): not 255 ** 2 and 3 ** 2
    got, want = beside_torch_or_errors(lambda m: m.nn.functional.gaussian_nll_loss(
        _t(m, [0, 0], "uint8"), _t(m, [255, 3], "uint8"), m.ones(2), reduction="none"))
    _same(got, want)
    np.testing.assert_allclose(got.numpy(), [0.5, 4.5])


GAUSSIAN_ERRORS = {
    # torch: var < 0 -> ValueError, var's shape -> ValueError, reduction -> ValueError, var.clamp_ of
    # an integer var -> RuntimeError, input - target of a bool -> RuntimeError, in that order
    "int8 var with a negative entry": lambda m: (_t(m, [1, 2], "uint8"), _t(m, [3, 4], "uint8"),
                                                 _t(m, [-1, 2], "int8"), "mean"),
    "negative int8 var, bool input": lambda m: (m.tensor([True, False]), _t(m, [3, 4], "uint8"),
                                                _t(m, [-1, 2], "int8"), "none"),
    "uint8 var of the wrong size": lambda m: (_t(m, [1, 2], "uint8"), _t(m, [3, 4], "uint8"),
                                              _t(m, [1, 2, 3], "uint8"), "sum"),
    "wrong var size, wrong reduction": lambda m: (_t(m, [1, 2], "uint8"), _t(m, [3, 4], "uint8"), m.ones(3), "x"),
    "uint8 var, wrong reduction": lambda m: (_t(m, [1, 2], "uint8"), _t(m, [3, 4], "uint8"),
                                             _t(m, [1, 2], "uint8"), "x"),
    "uint8 var, bool input": lambda m: (m.tensor([True, False]), m.tensor([1.0, 0.0]), _t(m, [1, 2], "uint8"), "sum"),
    "uint8 var, bool input and target": lambda m: (m.tensor([True, False]), m.tensor([True, False]),
                                                   _t(m, [1, 2], "uint8"), "none"),
    "uint8 var, bool target": lambda m: (_t(m, [1, 2], "uint8"), m.tensor([True, False]),
                                         _t(m, [1, 2], "uint8"), "mean"),
    "int8 var, bool target": lambda m: (_t(m, [1, 2], "int8"), m.tensor([True, False]), _t(m, [1, 2], "int8"), "sum"),
}
_WORDS = {ValueError: ("negative entry", "incorrect size", "valid"), RuntimeError: ("can't be cast",)}


@pytest.mark.parametrize("case", list(GAUSSIAN_ERRORS))
def test_gaussian_nll_loss_refuses_in_torch_s_order(case):
    def call(m):
        x, y, v, reduction = GAUSSIAN_ERRORS[case](m)
        return m.nn.functional.gaussian_nll_loss(x, y, v, reduction=reduction)
    got, want = beside_torch_or_errors(call)
    assert isinstance(want, (ValueError, RuntimeError)), want
    assert type(got) is type(want), (got, want)
    # the same refusal: the words of the check torch's came from
    words = [w for w in _WORDS[type(want)] if w in str(want)]
    assert words and words[0] in str(got), (got, want)


HINGE_INPUTS = {**INPUTS, "int64": ("int64", [-3, 0, 3, 1000])}
HINGE_TARGETS = {**TARGETS, "bool": ("bool", [True, False, True, True])}
MARGINS = [1.0, 0.0, -1.5, -0.5, 2.5, 127.9, 128.0, 200.7, 255.0, 256.0, 300.0, -129.0, 1e10, float("inf"),
           float("nan"), 255, 256, True]


@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
@pytest.mark.parametrize("margin", MARGINS, ids=[repr(m) for m in MARGINS])
@pytest.mark.parametrize("pair", [f"{i} - {t}" for i, t in itertools.product(HINGE_INPUTS, HINGE_TARGETS)])
def test_hinge_embedding_loss_of_wrapping_integers_is_torch_s(pair, margin, reduction):
    i, t = pair.split(" - ")

    def call(m):
        x, y = _t(m, HINGE_INPUTS[i][1], HINGE_INPUTS[i][0]), _t(m, HINGE_TARGETS[t][1], HINGE_TARGETS[t][0])
        return m.nn.functional.hinge_embedding_loss(x, y, margin=margin, reduction=reduction)
    got, want = beside_torch_or_errors(call)
    _same(got, want)
    if isinstance(want, RuntimeError):      # the margin's overflow comes before the mean's refusal
        words = "without overflow" if "without overflow" in str(want) else "could not infer output dtype"
        assert words in str(want) and words in str(got), (got, want)


@pytest.mark.parametrize("margin", [1.0, 300.0, float("nan")], ids=["fits", "overflows", "nan"])
def test_hinge_embedding_loss_checks_the_reduction_first(margin):
    got, want = beside_torch_or_errors(lambda m: m.nn.functional.hinge_embedding_loss(
        _t(m, [1, 2], "uint8"), _t(m, [1, -1], "int8"), margin=margin, reduction="x"))
    assert isinstance(want, ValueError) and isinstance(got, ValueError), (got, want)
