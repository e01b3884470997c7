"""The recorded slopes (``create_graph=True``) of two ops on complex tensors that are no plain
holomorphic formula: complex ``abs`` (``z / |z|``) and the exponent of a complex power
(``a ** b log(a)``), in torch's conventions at 0."""

from gt.backend import B
from gt.ops._graph import const
from gt.ops.where import Where


def _number(value):
    return isinstance(value, (int, float, complex))


def sgn_graph(z, values):
    """``z / |z|`` (0 at 0) recorded for the complex tensor ``z`` (``values``: its array): the
    slope of complex ``abs``, whose own derivative (torch's sgn_backward) is 0 at 0 too."""
    zero = const(B.abs(values) == 0)
    return Where.apply(zero, 0.0, z / Where.apply(zero, 1.0, z.abs()))


def exponent_slope(a, b, a_arr, out):
    """d(a ** b)/db = a ** b log(a), recorded for complex tensors (no order: no mask of the sign),
    0 at a == 0 for Re(b) >= 0 as torch's; elsewhere at a == 0 the value alone (inf or NaN)."""
    zero = a_arr == 0
    base = const(B.where(zero, 1, a_arr)) if _number(a) else Where.apply(const(zero), 1.0, a)
    with B.quiet_float_errors():
        at_zero = out._array * B.log(a_arr)
    b_arr = b._array if not _number(b) else B.full((), b, B.dtype_of(out._array))
    b_real = B.real(b_arr) if B.dtype_of(b_arr).is_complex else b_arr
    return Where.apply(const(zero & (b_real >= 0)), 0.0, Where.apply(const(zero), const(at_zero), out * base.log()))
