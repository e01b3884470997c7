"""torch's refusals of complex input that gt's kernels would compute: the ops with no complex
kernel in torch (``unique``, ``cummax``, ``mse_loss``...), and the products and comparisons that
keep one dtype (``matmul``, ``dot``, ``linear``, ``lerp``, ``allclose``), where a real operand is
not promoted to complex as in elementwise arithmetic. Checked before any work, on dtypes only."""

from gt import dtypes
from gt.autograd import function


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
    """``refuse_complex`` for the operands ``a`` (a tensor) and ``b`` (a tensor or a number) of a
    binary kernel that has no complex form (``remainder``, ``floor_divide``), as torch's."""
    if isinstance(b, complex) and not a.dtype.is_complex:       # the pair's dtype: a's width, complex
        name = dtypes.COMPLEX_OF.get(a.dtype.name, dtypes.to_dtype(complex)).name
        raise NotImplementedError(f"\"{kernel}\" not implemented for '{dtypes.torch_type_name(name)}': torch has no "
                                  f"complex kernel for it")
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


def check_lerp(start, end, weight):
    """torch's refusals in ``lerp``: ``end`` and a tensor ``weight`` of ``start``'s kind (real or
    complex), and a complex number ``weight`` of a real ``start`` only with a zero imaginary part (its
    real part returned: the result stays real, as torch's). Returns the weight to use."""
    refuse_mixed(start, end, "lerp", "start and end")
    refuse_mixed(start, weight, "lerp", "start and weight")
    if not start.dtype.differentiable and getattr(end, "dtype", None) is start.dtype:     # integers, bools
        kernel = "lerp_kernel_tensor" if isinstance(weight, function.Tensor) else "lerp_kernel_scalar"
        raise NotImplementedError(f"\"{kernel}\" not implemented for '{dtypes.torch_type_name(start.dtype.name)}'")
    if isinstance(weight, complex) and not start.dtype.is_complex and weight.imag != 0:
        raise RuntimeError(f"value cannot be converted to type {cpp_name(start.dtype)} without overflow "
                           f"(lerp: the complex weight {weight!r} for a real tensor)")
    return weight.real if isinstance(weight, complex) and not start.dtype.is_complex else weight
