"""Binary ops whose answer depends on how torch's CPU kernel treats a scalar operand, run beside
torch to the bit: float16/bfloat16 tensors times, over or floor-divided by a number or a 0-d tensor
of another dtype (computed in float32 with the scalar's own value, gt/tensor/half_scalars.py), the
truncated quotient of halves, integer operands of float functions (each goes to float from its own
dtype), a Python int divisor of a uint8 tensor, float16 beside complex (torch's complex32), powers
of bools, ``ldexp``'s exponent dtypes, and a complex number over a zero."""

import warnings

import numpy as np
import pytest

import gt
from helpers import torch_or_skip

torch = torch_or_skip()
X = (np.random.default_rng(0).standard_normal(200) * 20).astype(np.float32)
HALVES = ["float16"] + (["bfloat16"] if gt.get_backend() == "torch" else [])    # (numpy has no bfloat16)


def _both(fn):
    """``fn(lib)`` in torch and in gt, as float64 numpy arrays (or the error's class)."""
    out = []
    for lib in (torch, gt):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                r = fn(lib)
            out.append((str(r.dtype).split(".")[-1], r.to(lib.complex128 if r.is_complex() else lib.float64).numpy()))
        except Exception as exc:    # noqa: BLE001 - the class is what is compared
            out.append((type(exc).__name__, None))
    return out


def assert_bitwise_as_torch(fn):
    (tdt, t), (gdt, g) = _both(fn)
    assert gdt == tdt
    if t is not None:
        assert g.shape == t.shape
        np.testing.assert_array_equal(g, t)


SCALARS = {
    "python float": lambda lib, v: v,
    "0-d float32": lambda lib, v: lib.tensor(v),
    "0-d float64": lambda lib, v: lib.tensor(v, dtype=lib.float64),
    "python int": lambda lib, v: int(v * 7) or 3,
}
OPS = {
    "mul": lambda lib, x, s: x * s,
    "div": lambda lib, x, s: x / s,
    "floor_divide": lambda lib, x, s: x // s,
    "div trunc": lambda lib, x, s: lib.div(x, s, rounding_mode="trunc"),
    "mul_": lambda lib, x, s: x.mul_(s),
    "div_": lambda lib, x, s: x.div_(s),
    "number times x": lambda lib, x, s: s * x if isinstance(s, (int, float)) else x * 2.5,
    "number over x": lambda lib, x, s: s / x if isinstance(s, (int, float)) else 2.5 / x,
}


@pytest.mark.parametrize("value", [0.3, -1.4004, 5001.0])
@pytest.mark.parametrize("scalar", sorted(SCALARS))
@pytest.mark.parametrize("op", sorted(OPS))
@pytest.mark.parametrize("dtype", HALVES)
def test_half_tensor_with_a_scalar_is_torchs_to_the_bit(dtype, op, scalar, value):
    """The scalar was rounded to the tensor's dtype first, as the promotion rounds a 0-d operand:
    an ulp away in 2-55% of the elements by the scalar, floor quotients 1 off at the boundaries."""
    assert_bitwise_as_torch(lambda lib: OPS[op](lib, lib.tensor(X).to(getattr(lib, dtype)),
                                                SCALARS[scalar](lib, value)))


def test_half_division_truncates_as_torchs_two_kernels():
    """torch truncates the float32 quotient for a divisor of one element, the float16 one for two
    tensors: 7 / -1.4004 is -4.9986 (-4), and -5.0 in float16 (-5)."""
    x, y = np.array([7.0, 9.0, -6.0], np.float32), np.array([-1.400390625, -0.60009765625, -0.300048828125], np.float32)
    for divisor in (lambda lib: lib.tensor(y).half(), lambda lib: lib.tensor(y[:1]).half(), lambda lib: float(y[0])):
        assert_bitwise_as_torch(lambda lib: lib.div(lib.tensor(x).half(), divisor(lib), rounding_mode="trunc"))


def test_float_function_of_two_integer_tensors_reads_each_from_its_own_dtype():
    """xlogy of a 0-d int64 -2 beside uint8 went through uint8 (254) before float: 352 for -2.77."""
    assert_bitwise_as_torch(lambda lib: lib.xlogy(lib.tensor(-2), lib.tensor(np.array([4, 9, 0], np.uint8))))
    assert_bitwise_as_torch(lambda lib: lib.xlogy(lib.tensor(np.array([4, 9, 0], np.uint8)), lib.tensor(np.int16(-3))))
    assert_bitwise_as_torch(lambda lib: lib.atan2(lib.tensor(np.int8([-3, 5])), lib.tensor(np.int64(-300))))


def test_uint8_truncated_division_by_a_negative_int_wraps_the_int_first():
    """torch casts -3 to uint8 (253): 200 / 253 is 0, not 190."""
    u = np.array([0, 5, 9, 200], np.uint8)
    assert_bitwise_as_torch(lambda lib: lib.div(lib.tensor(u), -3, rounding_mode="trunc"))
    assert_bitwise_as_torch(lambda lib: lib.tensor(u).div_(-3, rounding_mode="trunc"))


@pytest.mark.parametrize("compare", ["eq", "ne"])
def test_float16_compared_with_complex_is_a_tensor_as_torchs(compare):
    """``x == y`` with a complex 0-d y gave Python's False (the promotion's complex32 refusal read
    as an operand it cannot take); a complex number or 0-d tensor beside float16 is rounded to it
    first, as torch's, and a complex tensor with dims is not."""
    half = np.array([0.1, 2.0, 1e5], np.float32)
    other = np.array([0.1 + 0j, 2.0, 1e5], np.complex64)
    assert_bitwise_as_torch(lambda lib: getattr(lib.tensor(half).half(), compare)(lib.tensor(other)))
    assert_bitwise_as_torch(lambda lib: getattr(lib.tensor(other[0]), compare)(lib.tensor(half).half()))
    for number in (0.1 + 0j, 2 + 0j, 1e6 + 0j, 0.1 + 0.1j):
        assert_bitwise_as_torch(lambda lib: getattr(lib.tensor(half).half(), f"__{compare}__")(number))
    assert isinstance(gt.tensor(half).half() == gt.tensor(other), gt.Tensor)


def test_float16_with_a_complex_number_is_refused_as_with_a_complex_tensor():
    """torch's result is complex32, which gt has not: numpy gave complex64 for a number. (A complex
    tensor with dims beside it is no complex32: complex64 or complex128, as torch's.)"""
    x = gt.tensor([0.1, 2.0]).half()
    for fn in (lambda: x * 1j, lambda: x + (0.5 + 1j), lambda: 1j * x, lambda: x * gt.tensor(1j)):
        with pytest.raises(TypeError, match="complex32"):
            fn()
    assert_bitwise_as_torch(lambda lib: lib.tensor(np.float32([0.1, 2.0])).half() * lib.tensor(np.complex64([1j, 2])))


def test_power_of_two_bools_is_refused_with_a_bool_base_number_too():
    b = np.array([True, False])
    for fn in (lambda lib: True ** lib.tensor(b), lambda lib: lib.pow(False, lib.tensor(b)),
               lambda lib: lib.tensor(b) ** lib.tensor(b)):
        (tdt, _), (gdt, _) = _both(fn)
        assert tdt == gdt == "NotImplementedError"
    assert_bitwise_as_torch(lambda lib: lib.tensor(b) ** True)
    assert_bitwise_as_torch(lambda lib: 2 ** lib.tensor(b))


@pytest.mark.parametrize("case", ["complex64 by bool", "complex128 by 0-d float16", "complex64 by float16"])
def test_ldexp_of_complex_by_bools_and_float16_as_torchs(case):
    """A bool exponent of a complex input was refused (torch's refusal for a float input); a float16
    one with dims is torch's complex32 refusal, a 0-d one computes."""
    x, e = np.array([1.1, 2.3, -0.7], np.float32), np.array([0.3, -1.7, 2.0], np.float32)
    make = {
        "complex64 by bool": lambda lib: (lib.tensor(x).to(lib.complex64), lib.tensor(e > 0)),
        "complex128 by 0-d float16": lambda lib: (lib.tensor(x).to(lib.complex128), lib.tensor(e[0]).half()),
        "complex64 by float16": lambda lib: (lib.tensor(x).to(lib.complex64), lib.tensor(e).half()),
    }[case]
    assert_bitwise_as_torch(lambda lib: lib.ldexp(*make(lib)))


def test_complex_number_over_zero_is_torchs_infinity():
    """torch's ``c / x`` is ``x.reciprocal() * c``: an integer x's reciprocal is a float inf, and
    ``1 / z`` of a complex z still multiplies (inf+nanj times 1 is nan+nanj)."""
    z = np.array([0j, 1 + 0j], np.complex64)
    assert_bitwise_as_torch(lambda lib: (0.5 + 1j) / lib.tensor(np.array([0, 1])))
    assert_bitwise_as_torch(lambda lib: 1j / lib.tensor(np.array([True, False])))
    assert_bitwise_as_torch(lambda lib: 1 / lib.tensor(z))
    assert_bitwise_as_torch(lambda lib: lib.tensor(z).reciprocal())


FUSED = {
    "addcmul": lambda lib, x, y, z, v: lib.addcmul(x, y, z, value=v),
    "addcdiv": lambda lib, x, y, z, v: lib.addcdiv(x, y, z, value=v),
    "addcmul_": lambda lib, x, y, z, v: x.addcmul_(y, z, value=v),
    "addcdiv_": lambda lib, x, y, z, v: x.addcdiv_(y, z, value=v),
}


@pytest.mark.parametrize("op", sorted(FUSED))
@pytest.mark.parametrize("dtype", HALVES)
def test_fused_products_of_halves_round_once_as_torchs(dtype, op):
    """torch computes ``x + value * y * z`` (``/ z``) of float16/bfloat16 tensors in float32 and
    rounds once; gt rounded each step (12-40% of the elements an ulp or more away). torch's vector
    loop also fuses the multiply-add (FMA), which plain float32 leaves apart in about one element
    of 1000, by an ulp of the result or, where the sum cancels, of the float32 addends: that much
    is allowed here."""
    rng = np.random.default_rng(1)
    arrays = [(rng.standard_normal(3000) * s).astype(np.float32) for s in (20, 20, 1)]
    arrays[2] += 3.0                # (a divisor away from 0)
    for v in (0.3, -1.4004, 7.1):
        out = []
        for lib in (torch, gt):
            x, y, z = (lib.tensor(a).to(getattr(lib, dtype)) for a in arrays)
            out.append(FUSED[op](lib, x, y, z, v).to(lib.float64).numpy())
        want, got = out
        x, y, z = (np.asarray(gt.tensor(a).to(getattr(gt, dtype)).to(gt.float64).numpy()) for a in arrays)
        term = np.abs(v * y * z) if op.startswith("addcmul") else np.abs(v * y / z)
        bound = np.maximum(np.abs(want) * (2.0 ** -10 if dtype == "float16" else 2.0 ** -7),
                           (np.abs(x) + term) * 2.0 ** -22)
        apart = got != want
        assert apart.sum() <= 10, f"{apart.sum()} of 3000 elements differ (value={v})"
        assert (np.abs(got - want)[apart] <= bound[apart]).all()


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", ["log2", "log10"])
def test_log2_and_log10_are_the_engines_own_functions(name, dtype):
    """``log(x) / log(2)`` rounded twice: a third of the elements an ulp away from torch's. The torch
    engine's are torch's; numpy's own differ from torch's libm in 0.2% (log2) and 13% (log10) of
    the elements, by an ulp."""
    x = np.abs(np.random.default_rng(2).standard_normal(20000)).astype(dtype) * 10 + 1e-3
    want, got = getattr(torch, name)(torch.tensor(x)).numpy(), getattr(gt, name)(gt.tensor(x)).numpy()
    apart = got != want
    limit = 0.0 if gt.get_backend() == "torch" else 0.01 if name == "log2" else 0.2
    assert apart.mean() <= limit
    assert (np.abs(got - want) <= 2 * np.spacing(np.abs(want))).all()      # (an ulp either side)


def test_rsqrt_and_logit_of_float16_are_torchs_kernels():
    """The numpy engine took ``1 / sqrt(x)`` in float16, rounded twice (a quarter of the elements
    an ulp apart; torch's AVX2 kernel still leaves a few), and ``logit`` in float32 where torch's
    float16 kernel rounds ``1 - x`` and the quotient to float16 before its log (a third apart)."""
    x = np.random.default_rng(3).uniform(0.01, 0.99, 3000).astype(np.float16)
    for name, limit in (("rsqrt", 0.01), ("logit", 0.0)):
        want = getattr(torch, name)(torch.tensor(x)).numpy()
        got = getattr(gt, name)(gt.tensor(x.astype(np.float32)).half()).numpy()
        assert (got != want).mean() <= limit, name


def test_cosine_similarity_of_float16_is_torchs_to_the_bit():
    """torch divides each input by its norm, then sums the products; gt divided the sum of the
    products by the norms' product: 26 of 40 rows apart in float16, 5% off for values near 0."""
    x = (np.random.default_rng(4).standard_normal((40, 300)) * 3).astype(np.float32)
    assert_bitwise_as_torch(lambda lib: lib.nn.functional.cosine_similarity(lib.tensor(x).half(),
                                                                            lib.tensor(x).half().flip(0)))
