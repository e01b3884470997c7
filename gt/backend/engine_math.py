"""The engine primitives of torch's elementwise math functions, products and quiet float errors
(declared here, inherited by ``Engine``; gt/backend/engine.py's conventions hold).

One primitive, ``elementwise_math(name, x, y=None)``, covers the whole fixed set of functions
below instead of one primitive per function: the functions differ only in which library
function they call, both engines implement them in a few lines (a name -> function table; the
torch engine calls torch's function of that name), and a new engine sees the whole set in one
place. The names are torch's. Each function computes in its input's dtype, gives NaN outside
its domain (``asin(2)``, ``log1p(-2)``), and never warns.
"""

import abc

UNARY = ("sin", "cos", "tan", "asin", "acos", "atan", "sinh", "cosh", "asinh", "acosh", "atanh",
         "log1p", "expm1", "exp2", "log2", "log10", "erf", "erfc", "erfinv", "sinc", "logit")
"""The unary functions of ``elementwise_math``: torch's of these names (``torch.special``'s for
``erf``, ``erfc``, ``erfinv``). ``sinc(x)`` is ``sin(pi x) / (pi x)`` and 1 at 0; ``logit(x)``
is ``log(x / (1 - x))`` (no clamp: callers clamp for torch's ``eps``); ``erf`` is ``B.erf``."""

BINARY = ("atan2", "hypot", "logaddexp", "xlogy")
"""The binary functions of ``elementwise_math`` (inputs broadcast): ``atan2(y, x)`` the angle of
the point (x, y); ``hypot(a, b)`` ``sqrt(a**2 + b**2)`` without overflow; ``logaddexp(a, b)``
``log(exp(a) + exp(b))`` without overflow; ``xlogy(x, y)`` ``x * log(y)``, 0 where x is 0 unless
y is NaN (torch's rule)."""


class MathPrimitives(abc.ABC):
    @abc.abstractmethod
    def elementwise_math(self, name, x, y=None):
        """The function ``name`` of ``UNARY`` on the float array ``x``, or of ``BINARY`` on the
        float arrays ``x`` and ``y`` (same dtype; they broadcast), in that dtype: NaN outside the
        function's domain, inf at its poles, never a warning. ValueError naming an unknown ``name``."""
        raise NotImplementedError

    @abc.abstractmethod
    def prod(self, x, axis=None, keepdims=False):
        """The product of ``x`` over ``axis`` (1 over no element); floats keep their dtype, bools
        and integers multiply in int64 (torch's rule)."""
        raise NotImplementedError

    @abc.abstractmethod
    def cumprod(self, x, axis):
        """Running products of ``x`` along the int ``axis``; floats keep their dtype, bools and
        integers multiply in int64 (torch's rule)."""
        raise NotImplementedError

    @abc.abstractmethod
    def qr(self, x, complete=False):
        """The reduced QR decomposition ``(q, r)`` of the float array ``x`` (..., m, n) (leading
        batch axes): q (..., m, k) with orthonormal columns, r (..., k, n) upper triangular,
        k = min(m, n); with ``complete``, q (..., m, m) and r (..., m, n); ``x``'s dtype."""
        raise NotImplementedError

    @abc.abstractmethod
    def power(self, a, b):
        """``a ** b`` with torch's rules (either may be a Python number, they broadcast): integers
        raised to negative integer exponents in an array give 1 for a base of 1, +-1 for -1 and
        0 otherwise (integer division of 1 by the power); a negative integer *number* as the
        exponent of an integer array is refused with torch's RuntimeError."""
        raise NotImplementedError

    def iterator_layout(self, out, *operands):
        """``out``, an elementwise op's result of ``operands`` (arrays and numbers), in the memory
        layout torch's TensorIterator gives it (gt/backend/dim_order.py ``iterator_strides``): the
        operands' strides where they share them and are dense, else dense in the order of dims
        the first operand that orders them gives. ``out`` itself where it has it (always where
        every operand is row-major), else a copy. The default, for an engine without strides: ``out``."""
        return out

    @abc.abstractmethod
    def quiet_float_errors(self):
        """Context manager: arithmetic on arrays inside the block gives inf and NaN silently, as
        torch does, where numpy warns (division by zero, overflow, invalid values). For ops whose
        results and gradients are inf or NaN by definition at some inputs (``asin(2)``)."""
        raise NotImplementedError


def unknown(name):
    """The error of ``elementwise_math`` for a name outside ``UNARY`` and ``BINARY``."""
    return ValueError(f"elementwise_math: unknown function {name!r}; expected one of {UNARY + BINARY}")
