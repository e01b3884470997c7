"""Python numbers, bools, complex numbers and 0-d tensors as the second argument of gt.Tensor's
binary methods (``x.maximum(2)``, ``x.hypot(t0)``, ``x.bitwise_and(True)``...) and of their in-place
forms (``x.gcd_(2)``, ``x.pow_(1j)``), on float32, int64 and bool tensors, beside torch 2.13's:
where torch computes, gt gives its dtype, shape and values; where it refuses (a number where its
signature takes only a tensor, a dtype it has no kernel for, a complex result for a real tensor
in place), gt raises an error of the same type. ``alpha=`` of ``add``/``sub`` and their in-place
forms: torch's rule for a float or bool alpha by the result's dtype.
"""

import math

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


def _attempt(call):
    try:
        return call()
    except Exception as e:      # noqa: BLE001  (compared by type in _assert_same)
        return e


PRODUCTS = ("dot", "outer", "ger", "matmul", "mm", "mv", "inner", "vdot")
PRODUCT_SHAPES = [((), (3,)), ((3,), ()), ((), ()), ((2, 3), (3,)), ((3,), (2, 3)), ((2, 3), (3, 2)), ((3,), (3,)),
                  ((3,), (4,)), ((2, 3), (4,)), ((2, 3, 3), (3,))]


@pytest.mark.table
@pytest.mark.parametrize("name", PRODUCTS)
def test_products_of_wrong_ranks_raise_torchs_errors(name):
    """A 0-d (or other wrong-rank) operand of a product: torch's RuntimeError (gt's ShapeError is one,
    and a ValueError too) in the method, function and ``@`` forms; the right ranks compute."""
    for a_shape, b_shape in PRODUCT_SHAPES:
        for form in ("method", "function", "@"):
            if form == "@" and name != "matmul":
                continue
            results = []
            for lib in (gt, torch):
                a = lib.arange(float(math.prod(a_shape)), dtype=lib.float64).reshape(a_shape) + 1
                b = lib.arange(float(math.prod(b_shape)), dtype=lib.float64).reshape(b_shape) - 2
                call = {"method": lambda: getattr(a, name)(b), "function": lambda: getattr(lib, name)(a, b),
                        "@": lambda: a @ b}[form]
                results.append(_attempt(call))
            _assert_same(*results, f"{form} {name} of shapes {a_shape} and {b_shape}")
            if isinstance(results[1], RuntimeError):
                named = (str(a_shape), str(list(a_shape)).replace(" ", ""), str(list(a_shape)), f"{len(a_shape)}D")
                assert isinstance(results[0], RuntimeError) and any(n in str(results[0]) for n in named), results[0]


LERP_WEIGHTS = [("float64", ()), ("float16", ()), ("int64", ()), ("bool", ()), ("complex64", ()), ("complex128", ()),
                ("float64", (3,)), ("float64", (1,)), ("float32", (3,)), ("int64", (3,))]


def _lerp(lib, start_dtype, weight_dtype, shape, form, end_dtype=None):
    dt = getattr(lib, start_dtype)
    start = lib.tensor([1.0, 2.0, -3.0], dtype=dt, requires_grad=form != "lerp_")
    end = lib.tensor([4.0, 6.0, 5.0], dtype=getattr(lib, end_dtype or start_dtype), requires_grad=form != "lerp_")
    value = {"bool": True, "int64": 1}.get(weight_dtype, 0.3 + 0.25j if "complex" in weight_dtype else 0.3)
    grads = weight_dtype not in ("bool", "int64") and form != "lerp_"
    weight = lib.full(shape, value, dtype=getattr(lib, weight_dtype), requires_grad=grads)
    x = start.detach().clone() if form == "lerp_" else start
    result = _attempt({"lerp": lambda: x.lerp(end, weight), "function": lambda: lib.lerp(x, end, weight),
                       "lerp_": lambda: x.lerp_(end, weight)}[form])
    if isinstance(result, Exception) or form == "lerp_":
        return result, None
    failed = _attempt(lambda: (result.real if result.is_complex() else result).sum().backward())
    return result, failed or [start.grad, end.grad, weight.grad if grads else None]


@pytest.mark.parametrize("start_dtype", ("float32", "float64"))
def test_lerp_takes_a_0d_weight_of_any_dtype_as_torchs(start_dtype):
    """torch reads a 0-d weight tensor as a number (the result keeps start's dtype; a complex one makes
    it complex) and refuses a weight of dims, or an ``end``, of another dtype."""
    for weight_dtype, shape in LERP_WEIGHTS:
        for form in ("lerp", "function", "lerp_"):
            where = f"{start_dtype} {form} with a {weight_dtype} weight of shape {shape}"
            (ours, our_grads), (theirs, their_grads) = (_lerp(lib, start_dtype, weight_dtype, shape, form)
                                                        for lib in (gt, torch))
            _assert_same(ours, theirs, where)
            # torch's start gradient is (1 - weight) rounded to the weight's dtype; gt's keeps start's (float16: 2e-4)
            if isinstance(their_grads, Exception):
                # torch's backward refuses a bool weight (1 - True) and a complex one for a real start (an
                # internal assert); gt's gradients are d sum(out.real): 1 - w.real, w.real, sum(end - start)
                assert weight_dtype in ("bool", "complex64", "complex128"), (where, their_grads)
                w = 1.0 if weight_dtype == "bool" else 0.3
                assert our_grads[0].tolist() == pytest.approx([1 - w] * 3) and our_grads[1].tolist() == pytest.approx([w] * 3)
                assert our_grads[2] is None or our_grads[2].item() == pytest.approx(15.0)
                continue
            for a, b in zip(our_grads or (), their_grads or ()) if weight_dtype != "float16" else ():
                _assert_same(a, b, where + " (gradient)")
    for end_dtype in ("float16", "float32", "float64"):
        _assert_same(_lerp(gt, start_dtype, start_dtype, (), "lerp", end_dtype)[0],
                     _lerp(torch, start_dtype, start_dtype, (), "lerp", end_dtype)[0], f"a {end_dtype} end")


def test_lerp_the_examples():
    x, y = gt.zeros(2), gt.ones(2)
    out = x.lerp(y, gt.tensor(0.25, dtype=gt.float64))
    assert out.dtype == gt.float32 and out.tolist() == [0.25, 0.25]
    assert x.lerp(y, gt.tensor(0.5j)).dtype == gt.complex64
    with pytest.raises(RuntimeError, match="expected dtype float for `weight` but got dtype double"):
        x.lerp(y, gt.full((2,), 0.5, dtype=gt.float64))
    with pytest.raises(RuntimeError, match="expected dtype float for `end` but got dtype double"):
        x.lerp(y.double(), 0.5)


FILL_VALUES = (1 + 2j, 2j, 0j, 2.5, 0.0, 3, 0, -1, True, False)


@pytest.mark.table
@pytest.mark.parametrize("form", ("masked_fill_", "masked_fill", "fill_"))
def test_fill_values_are_checked_as_torchs(form):
    """torch's checked conversion of the fill value: a complex one only into complex tensors (or with
    no imaginary part), except bool tensors, which take any value (non-zero is True)."""
    for dtype in ("bool", "int64", "uint8", "float32", "complex64"):
        for value in FILL_VALUES:
            results = []
            for lib in (gt, torch):
                x = lib.tensor([1, 0, 1], dtype=getattr(lib, dtype))
                mask = lib.tensor([True, False, False])
                results.append(_attempt(lambda: x.fill_(value) if form == "fill_" else getattr(x, form)(mask, value)))
            _assert_same(*results, f"{dtype} tensor.{form}({value!r})")
    b = gt.tensor([False, False])
    assert b.masked_fill_(gt.tensor([True, False]), 1 + 2j).tolist() == [True, False] and b.fill_(2j).tolist() == [True] * 2
