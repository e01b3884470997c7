"""Python numbers, bools, complex numbers and 0-d tensors as the second argument of gt.Tensor's
binary methods (``x.maximum(2)``, ``x.hypot(t0)``, ``x.bitwise_and(True)``...) and of their in-place
forms (``x.gcd_(2)``, ``x.pow_(1j)``), on float32, int64 and bool tensors, beside torch 2.13's:
where torch computes, gt gives its dtype, shape and values; where it refuses (a number where its
signature takes only a tensor, a dtype it has no kernel for, a complex result for a real tensor
in place), gt raises an error of the same type. ``alpha=`` of ``add``/``sub`` and their in-place
forms: torch's rule for a float or bool alpha by the result's dtype.
"""

import pytest

import gt
from helpers import torch_or_skip
from test_number_first_parity import _assert_same

torch = torch_or_skip()

# the methods whose second argument torch's signature takes only as a tensor (gt/tensor/number_first.py
# TENSOR_ARGUMENT), and the ones that take a number there, as torch's, for the in-place and bool rules
NAMES = ("maximum", "minimum", "fmax", "fmin", "atan2", "arctan2", "hypot", "logaddexp", "logaddexp2", "igamma",
         "igammac", "ldexp", "nextafter", "gcd", "lcm", "logical_and", "logical_or", "logical_xor", "dist", "allclose",
         "isclose", "equal", "inner", "vdot", "kron", "matmul", "expand_as", "type_as", "view_as", "reshape_as",
         "heaviside", "dot", "outer", "ger", "copysign", "xlogy", "bitwise_and", "bitwise_or", "bitwise_xor",
         "bitwise_left_shift", "bitwise_right_shift", "fmod", "remainder", "pow", "float_power", "floor_divide",
         "true_divide", "divide", "multiply", "subtract", "mul", "div", "add", "sub", "rsub", "eq", "ne", "lt", "le",
         "gt", "ge", "clamp_min", "clamp_max")
VALUES = {"float32": [0.5, 1.5, -2.5, 3.0], "int64": [1, 2, -3, 4], "bool": [True, False, True, True]}
ZERO_D = {"float64": 0.25, "int64": 3, "bool": True, "complex64": 1j}
OTHERS = (2, 2.5, True, 1 + 2j, -3, *ZERO_D)       # a str: a 0-d tensor of that dtype
# a 0-d tensor where a product wants a 1-D one: gt's shape errors are ValueError, torch's RuntimeError
_SHAPE_ERRORS = frozenset(("dot", "outer", "ger", "matmul"))


def _call(lib, form, dtype, other):
    x = lib.tensor(VALUES[dtype], dtype=getattr(lib, dtype))
    if isinstance(other, str):
        other = lib.tensor(ZERO_D[other], dtype=getattr(lib, other))
    try:
        return getattr(x, form)(other)
    except Exception as e:      # noqa: BLE001  (compared by type in _assert_same)
        return e


@pytest.mark.table
@pytest.mark.filterwarnings("ignore::UserWarning")      # torch's float_power_ and the resize warnings
@pytest.mark.filterwarnings("ignore::RuntimeWarning")   # numpy's division by a False
@pytest.mark.parametrize("name", NAMES)
def test_a_number_as_a_methods_second_argument_is_torchs(name):
    for form in (name, name + "_"):
        if not hasattr(torch.Tensor, form):
            continue
        for dtype in VALUES:
            for other in OTHERS:
                if name in _SHAPE_ERRORS and isinstance(other, str):
                    continue
                _assert_same(_call(gt, form, dtype, other), _call(torch, form, dtype, other),
                             f"{dtype} tensor.{form}({other!r})")


def test_the_examples():
    x = gt.tensor([0.5, -2.0])
    for refused in (lambda: x.maximum(2), lambda: x.logical_and(True), lambda: x.hypot_(2.0), lambda: x.dist(0)):
        with pytest.raises(TypeError, match="must be Tensor, not"):
            refused()
    assert x.maximum(gt.tensor(0.0)).tolist() == [0.5, 0.0]       # a 0-d tensor is a tensor
    for refused in (lambda: x.pow_(1j), lambda: x.mul_(gt.tensor(1j)), lambda: gt.tensor([2]).true_divide_(1j)):
        with pytest.raises(RuntimeError, match="result type Complex.* can't be cast to the desired output type"):
            refused()
    with pytest.raises(NotImplementedError, match="\"hypot_cpu\" not implemented for 'Long'"):
        gt.tensor([3]).hypot(gt.tensor([4]))


ALPHA_VALUES = {**VALUES, "complex64": [1j, 2.0, -3.0, 0.5]}
# (form, whether it is gt's/torch's top-level function rather than the tensor's method)
ALPHA_FORMS = [(f, False) for f in ("add", "sub", "subtract", "add_", "sub_", "subtract_")] + \
    [(f, True) for f in ("add", "sub", "subtract", "rsub")]


def _alpha_call(lib, form, function, dtype, other, alpha):
    x = lib.tensor(ALPHA_VALUES[dtype], dtype=getattr(lib, dtype))
    if isinstance(other, str):
        other = lib.tensor(ALPHA_VALUES[other], dtype=getattr(lib, other))
    try:
        return getattr(lib, form)(x, other, alpha=alpha) if function else getattr(x, form)(other, alpha=alpha)
    except Exception as e:      # noqa: BLE001  (compared by type in _assert_same)
        return e


@pytest.mark.table
@pytest.mark.parametrize("form, function", ALPHA_FORMS)
def test_alpha_is_checked_by_the_results_dtype_as_torchs(form, function):
    """torch's rule (its alpha_check, on the result's dtype): a bool alpha only for a bool result, a
    float one not for an integer result, a complex one only for a complex result; in place, the
    tensor's dtype must also hold the result."""
    for dtype in ALPHA_VALUES:
        for other in ("float32", "int64", "bool", 2, 2.5, True, 1j):
            for alpha in (2, -1, 2.5, True, False, 1 + 2j):
                _assert_same(_alpha_call(gt, form, function, dtype, other, alpha),
                             _alpha_call(torch, form, function, dtype, other, alpha),
                             f"{'gt.' if function else 'x.'}{form}({dtype} x, {other!r}, alpha={alpha!r})")


def test_an_integer_tensors_float_alpha_is_refused_as_torchs():
    x, y = gt.tensor([1, 2, 3]), gt.tensor([1, 1, 1])
    for refused in (lambda: x.add_(y, alpha=2.5), lambda: x.sub_(y, alpha=0.5), lambda: gt.add(x, 2, alpha=2.5),
                    lambda: x.add(y, alpha=1.0), lambda: gt.sub(x, y, alpha=2.5)):
        with pytest.raises(RuntimeError, match="(?i)for integral input tensors, argument alpha must not be a floating"):
            refused()
    assert x.tolist() == [1, 2, 3]
    b = gt.tensor([True, False])
    assert b.add(True, alpha=False).dtype == gt.bool and b.add_(b, alpha=False).tolist() == [True, False]


@pytest.mark.parametrize("name", ("maximum", "logical_and", "allclose", "dot", "outer", "mm", "mv", "bmm", "kron",
                                  "inner", "isclose", "vdot", "heaviside", "ger", "fmax", "gcd", "hypot", "atan2", "dist"))
def test_a_function_names_the_number_at_torchs_position(name):
    """``gt.kron(t, 3)``: torch's TypeError names the argument and its position in the function's
    signature (2), not in the method's (1)."""
    messages = []
    for lib in (gt, torch):
        with pytest.raises(TypeError) as caught:
            getattr(lib, name)(lib.ones(2, dtype=lib.int64), 3)
        messages.append(str(caught.value).split(", not")[0])
    assert messages[0] == messages[1]
