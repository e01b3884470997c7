"""torch's refusals of complex input that gt's kernels would compute: the ops with no complex
kernel in torch (``unique``, ``cummax``, ``mse_loss``...), and the products and comparisons that
keep one dtype (``matmul``, ``dot``, ``linear``, ``lerp``, ``allclose``), where a real operand is
not promoted to complex as in elementwise arithmetic. Checked before any work, on dtypes only."""

from gt import dtypes
from gt.autograd import function
from gt.ops._shapes import broadcast_shapes
from gt.tensor.promotion import result_dtype


_CPP_NAMES = {"float16": "c10::Half", "bfloat16": "c10::BFloat16", "float32": "float", "float64": "double",
              "complex64": "c10::complex<float>", "complex128": "c10::complex<double>", "int64": "long int",
              "int32": "int", "int16": "short", "int8": "signed char", "uint8": "unsigned char", "bool": "bool"}


def cpp_name(dtype):
    """torch's C++ scalar type name (``float``, ``c10::complex<float>``) in its dtype messages."""
    return _CPP_NAMES.get(dtype.name, dtype.name)


def is_complex_operand(x):
    """Whether ``x`` is a Python complex number or a complex tensor."""
    return isinstance(x, complex) or (isinstance(x, function.Tensor) and x.dtype.is_complex)


def refuse_complex(x, kernel, message=None):
    """torch's NotImplementedError (``"kernel" not implemented for 'ComplexFloat'``, or ``message``)
    where ``x`` is a complex tensor."""
    if isinstance(x, function.Tensor) and x.dtype.is_complex:
        raise NotImplementedError(message or f"\"{kernel}\" not implemented for "
                                  f"'{dtypes.torch_type_name(x.dtype.name)}': torch has no complex kernel for it")


def refuse_complex_pair(a, b, kernel):
    """``refuse_complex`` for the operands ``a`` and ``b`` (tensors or numbers, one a tensor) of a
    binary kernel that has no complex form (``remainder``, ``floor_divide``, ``xlogy``), as torch's."""
    for x, y in ((a, b), (b, a)):
        if isinstance(y, complex) and isinstance(x, function.Tensor) and not x.dtype.is_complex:
            # the pair's dtype: the tensor's float width, complex
            name = dtypes.COMPLEX_OF.get(x.dtype.name, dtypes.to_dtype(complex)).name
            raise NotImplementedError(f"\"{kernel}\" not implemented for '{dtypes.torch_type_name(name)}': torch "
                                      f"has no complex kernel for it")
    refuse_complex(a, kernel)
    refuse_complex(b, kernel)


def is_mixed(a, b):
    """Whether one of the tensors ``a``, ``b`` is complex and the other is not."""
    return isinstance(a, function.Tensor) and isinstance(b, function.Tensor) and \
        a.dtype.is_complex != b.dtype.is_complex


def refuse_mixed(a, b, name, what="m1 and m2", message=None):
    """torch's RuntimeError where one of the tensors ``a`` and ``b`` is complex and the other real:
    its products keep one dtype (cast the real one with ``.to(other.dtype)``). ``message``, where
    given, is torch's own wording, formatted with the two dtypes' torch names (``Float``)."""
    if not is_mixed(a, b):
        return
    if message is not None:
        raise RuntimeError(message.format(*(dtypes.torch_type_name(t.dtype.name) for t in (a, b))) +
                           " (a real and a complex tensor: cast the real one with .to(the complex dtype))")
    raise RuntimeError(f"{name}: expected {what} to have the same dtype, but got: {cpp_name(a.dtype)} != "
                       f"{cpp_name(b.dtype)} (torch does not promote a real operand to complex in a product; "
                       "cast it with .to())")


def refuse_complex_parameter(dtype, parameter, name):
    """torch's RuntimeError where a normalisation's ``parameter`` (weight, bias, running statistics;
    a tensor or None) is complex and its input, of ``dtype``, real: its kernels take real parameters."""
    if parameter is not None and parameter.dtype.is_complex and not dtype.is_complex:
        raise RuntimeError(f"mixed dtype (CPU): expect parameter to have scalar type of "
                           f"{dtypes.torch_type_name(dtype.name)} ({name} is {parameter.dtype.name}, the input real)")


_FLOATS = (dtypes.float32, dtypes.float64)


def check_lerp(start, end, weight):
    """torch's refusals in ``lerp``: ``end``, and a ``weight`` tensor of dims, of ``start``'s dtype (a
    0-d weight tensor is a number to torch: any dtype, a complex one making a float32/float64 result
    complex), and a complex number ``weight`` of a real ``start`` only with a zero imaginary part (its
    real part returned: the result stays real, as torch's). Returns the weight to use."""
    for name, t in (("end", end), ("weight", weight)):
        if isinstance(t, function.Tensor) and t.dtype is not start.dtype and (name == "end" or t.ndim):
            raise RuntimeError(f"expected dtype {cpp_name(start.dtype)} for `{name}` but got dtype {cpp_name(t.dtype)}")
    if not (isinstance(weight, function.Tensor) and weight.ndim == 0 and start.dtype in _FLOATS):
        refuse_mixed(start, weight, "lerp", "start and weight")
    if not start.dtype.differentiable and getattr(end, "dtype", None) is start.dtype:     # integers, bools
        kernel = "lerp_kernel_tensor" if isinstance(weight, function.Tensor) else "lerp_kernel_scalar"
        raise NotImplementedError(f"\"{kernel}\" not implemented for '{dtypes.torch_type_name(start.dtype.name)}'")
    _broadcast("lerp", start, end, weight)
    if isinstance(weight, complex) and not start.dtype.is_complex and weight.imag != 0:
        raise RuntimeError(f"value cannot be converted to type {cpp_name(start.dtype)} without overflow "
                           f"(lerp: the complex weight {weight!r} for a real tensor)")
    return weight.real if isinstance(weight, complex) and not start.dtype.is_complex else weight


def _broadcast(op, *args):
    """torch's RuntimeError class (a ShapeError) where the tensors among ``args`` do not broadcast:
    numpy's error would be a ValueError alone."""
    shapes = [a.shape for a in args if isinstance(a, function.Tensor)]
    if len(shapes) > 1:
        broadcast_shapes(shapes, op)


# bounds of ``clamp`` that need no check_clamp (complex numbers, bools and tensors do)
PLAIN_BOUNDS = frozenset((int, float, type(None)))


def check_clamp(t, low, high):
    """torch's refusals in ``t.clamp(low, high)`` (bounds: numbers, tensors or None), and the bounds
    to use. A complex ``t`` or complex tensor bound: NotImplementedError (no order). Complex number
    bounds: a float ``t`` takes their real parts where they have no imaginary part (else torch's
    RuntimeError); other dtypes refuse them. A bool ``t`` with bool numbers: torch has no kernel."""
    if t.dtype.is_complex:
        raise NotImplementedError("clamp is not supported for complex types")
    bounds = [b for b in (low, high) if b is not None]
    if any(isinstance(b, function.Tensor) and b.dtype.is_complex for b in bounds):
        kernel = "clamp_cpu" if len(bounds) == 2 else "maximum_cpu" if low is not None else "minimum_cpu"
        name = result_dtype(t, *bounds).name
        raise NotImplementedError(f"\"{kernel}\" not implemented for '{dtypes.torch_type_name(name)}'")
    if t.dtype == dtypes.bool_ and bounds and all(type(b) is bool for b in bounds):
        kernel = "clamp_scalar_cpu" if len(bounds) == 2 else "clamp_min_scalar_cpu" if low is not None else \
            "clamp_max_scalar_cpu"
        raise NotImplementedError(f"\"{kernel}\" not implemented for 'Bool' (cast the tensor with .long() first)")
    _broadcast("clamp", t, *bounds)
    if not any(type(b) is complex for b in bounds):
        return low, high
    if not t.dtype.is_floating_point:
        raise NotImplementedError("clamp is not supported for complex types (a complex bound of a "
                                  f"{t.dtype.name} tensor)")
    for b in bounds:
        if type(b) is complex and b.imag != 0:
            raise RuntimeError(f"value cannot be converted to type double without overflow (clamp's bound {b!r} "
                               f"of a real tensor)")
    return tuple(b.real if type(b) is complex else b for b in (low, high))


def refuse_complex_bound(bound, name):
    """``bound`` of ``clamp_min``/``clamp_max``, or torch's NotImplementedError for a complex number
    (these refuse even one with no imaginary part, where ``clamp`` takes it)."""
    if isinstance(bound, complex):
        raise NotImplementedError(f"clamp is not supported for complex types ({name}'s bound {bound!r})")
    return bound


def refuse_complex_extremum(t, name, over_dim):
    """torch's refusal of a complex ``t`` in the extremum ``name`` (``max``, ``min``, ``amax``,
    ``amin``, ``aminmax``): complex numbers have no order. ``over_dim``: ``max``/``min`` with a dim
    (values and indices) give torch's RuntimeError; over every element and ``amax``/``amin``/
    ``aminmax``, its kernel's NotImplementedError."""
    if not t.dtype.is_complex:
        return
    if over_dim and name in ("max", "min"):
        raise RuntimeError(f"{name}(): does not support complex input")
    kernel = {"max": "max_all", "min": "min_all", "amax": "max_values_cpu", "amin": "min_values_cpu"}.get(
        name, f"{name}_cpu")
    raise NotImplementedError(f"\"{kernel}\" not implemented for '{dtypes.torch_type_name(t.dtype.name)}'")
