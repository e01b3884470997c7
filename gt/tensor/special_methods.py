"""torch's gamma-family and Bessel tensor methods (``x.lgamma()``, ``x.digamma()``,
``x.polygamma(n)``, ``x.mvlgamma(p)``, ``x.i0()``, ``x.igamma(y)``, ``x.igammac(y)``),
``logaddexp2``, ``cummax``/``cummin``, their in-place forms (``lgamma_``, ``digamma_``, ``polygamma_``, ``mvlgamma_``,
``i0_``, ``igamma_``, ``igammac_``) and the function forms that gt.special (gt/special.py) and ``gt.``
export, with the orthogonal polynomials' entry (``special_polynomial``: gt/ops/special_polynomials.py).
The ops and their gradients are in gt/ops/special_functions.py; the values come from the engine (scipy.special on the numpy
engine, imported at the first call; torch.special on the torch engine).

Integer and bool tensors become float32 first, as in torch; outside a function's domain the
value is NaN, at its poles inf, as in torch, without warnings.

Where gt differs from torch: gt.special's ``gammainc`` and ``gammaincc`` take a Python number on
either side (torch's want two tensors; ``gt.igamma``, ``gt.igammac`` and ``gt.logaddexp2`` refuse
a number, as torch's), and ``logaddexp2`` takes integer tensors (torch refuses them), which gt
turns into float32; ``polygamma(1, x)`` is inf at the poles 0, -1, -2, ... on the numpy engine (torch's
is finite there, about 1e32, from its reflection formula); float16 and bfloat16 compute in float32 and round once, where
torch has no CPU kernel of ``erfcx``, ``log_ndtr``, ``ndtri`` and the Bessel functions in them.

Mixed into ``gt.Tensor``; ``Tensor`` below is bound by gt/tensor/core.py once the class exists.
"""

import collections
import math

from gt import autograd
from gt.backend import B
from gt.ops import elementwise as ew
from gt.ops import special_functions as sf
from gt.ops import special_polynomials as sp
from gt.ops._shapes import normalize_axis
from gt.tensor import axis_scans
from gt.tensor.shape import torch_node_name
from gt.tensor.arithmetic import _floating, _operand
from gt.tensor.complex_checks import refuse_complex
from gt.tensor.inplace_math import _inplace_method
from gt.tensor.math_methods import float_pair, refuse_integer_pair
from gt.tensor.nested_operands import is_nested
from gt.tensor.number_first import tensors_only
from gt.tensor.rules import RULES, elementwise

Tensor = None  # gt.Tensor, bound by gt/tensor/core.py

# torch.return_types.cummax / .cummin: tuples that unpack as (values, indices) and name both
CummaxResult = collections.namedtuple("cummax", ["values", "indices"])
CumminResult = collections.namedtuple("cummin", ["values", "indices"])

# the special functions keep each element's place: sharded inputs stay sharded (gt/tensor/rules.py)
RULES.update({cls: elementwise for cls in (sf.SpecialFunction, sf.SpecialBinary, sf.Polygamma,
                                           sp.OrthogonalPolynomial)})

_INV_LN2 = 1.0 / math.log(2.0)


def tensor_input(x, name):
    """``x`` as a tensor (an array becomes one); a Python number is refused, as torch does."""
    if not isinstance(x, Tensor):
        x = _operand(x, name)
        if not isinstance(x, Tensor):
            raise TypeError(f"{name}(): argument 'input' must be a tensor or an array, not "
                            f"{type(x).__name__} ({x!r}); use gt.tensor({x!r})")
    return x


def special_unary(name, x):
    """The function ``name`` of the engine's ``SPECIAL_UNARY`` on the tensor ``x`` (ints: float32);
    the functions torch does not differentiate (the Bessel functions) are computed outside the graph."""
    if is_nested(x):        # gt.nested's: of its values
        return x._pointwise(lambda v: special_unary(name, v), f"special_{name}", x)
    x = _floating(tensor_input(x, name))
    if name in sf.DIFFERENTIABLE:
        return sf.SpecialFunction.apply(x, name)
    with autograd.no_grad():
        return sf.SpecialFunction.apply(x, name)


def special_binary(name, a, b):
    """The function ``name`` of the engine's ``SPECIAL_BINARY`` of ``a`` and ``b`` (broadcast)."""
    if is_nested(a) or is_nested(b):        # gt.nested's: of the values, the other as its operand
        return (a if is_nested(a) else b)._pointwise(lambda x, y: special_binary(name, x, y), f"special_{name}", a, b)
    return sf.SpecialBinary.apply(*float_pair(name, a, b), name)


def special_polynomial(name, x, n):
    """The orthogonal polynomial ``name`` (gt/ops/special_polynomials.py) of degree ``n`` at ``x``:
    either may be a number (not both, as torch), shapes broadcast, the dtype is torch's promotion
    of the two (integers and bools: float32). Outside the graph, as torch gives them no gradient."""
    if is_nested(x) or is_nested(n):
        nested = x if is_nested(x) else n
        return nested._pointwise(lambda a, b: special_polynomial(name, a, b), f"special_{name}", x, n)
    x, n = float_pair(name, x, n)
    with autograd.no_grad():
        return sp.OrthogonalPolynomial.apply(x, n, name)


def igamma(input, other):
    """The regularized lower incomplete gamma function ``P(input, other)`` (``torch.igamma``, the
    same as ``gt.special.gammainc``): input > 0, other >= 0. Its gradient in ``other`` is
    ``other**(input - 1) exp(-other) / Gamma(input)``; in ``input`` there is none (the backward
    raises NotImplementedError, as torch's). Shapes broadcast.

        >>> round(gt.igamma(gt.tensor([1.0]), gt.tensor([1.0])).item(), 4)     # 1 - exp(-1)
        0.6321
    """
    tensors_only("igamma", ("input", input), ("other", other))
    refuse_integer_pair("igamma", input, other)
    return special_binary("gammainc", input, other)


def igammac(input, other):
    """The regularized upper incomplete gamma function ``Q(input, other) = 1 - P(input, other)``
    (``torch.igammac``, ``gt.special.gammaincc``); gradients as ``igamma``'s with the sign flipped."""
    tensors_only("igammac", ("input", input), ("other", other))
    refuse_integer_pair("igammac", input, other)
    return special_binary("gammaincc", input, other)


def logaddexp2(input, other):
    """``log2(2**input + 2**other)`` without overflow (``torch.logaddexp2``): two tensors (a Python
    number is refused, as torch's). Shapes broadcast.

        >>> gt.logaddexp2(gt.tensor([1.0]), gt.tensor([1.0])).tolist()
        [2.0]
    """
    if is_nested(input) or is_nested(other):        # gt.nested's: two tensors (a number: torch's TypeError)
        if not isinstance(input, Tensor) or not isinstance(other, Tensor):
            raise TypeError(f"logaddexp2(): expected two tensors, got {type(input).__name__} and "
                            f"{type(other).__name__}")
        return input.logaddexp2(other) if is_nested(input) else other._reflected(logaddexp2, input)
    tensors_only("logaddexp2", ("input", input), ("other", other))
    refuse_integer_pair("logaddexp2", input, other)
    a, b = float_pair("logaddexp2", input, other)
    # max + log2(1 + 2**-|a - b|): the tie splits the gradient evenly, as torch's 1 / (1 + 2**(b - a))
    with B.quiet_float_errors():                # -inf - -inf is NaN, replaced below
        out = a.maximum(b) + (-(a - b).abs()).exp2().log1p() * _INV_LN2
    with autograd.no_grad():
        same_inf = (a == b) & a.isinf()         # inf - inf would be NaN: the result is that infinity
    return ew.Where.apply(same_inf, a, out)


def polygamma(n, input):
    """The ``n``-th derivative of digamma (``torch.polygamma(n, input)``; n = 0: digamma), an int
    n >= 0. Its gradient is ``polygamma(n + 1, input)``.

        >>> round(gt.polygamma(1, gt.tensor([1.0])).item(), 4)      # pi**2 / 6
        1.6449
    """
    if isinstance(n, bool) or not hasattr(n, "__index__"):
        raise TypeError(f"polygamma: n must be an int, got {n!r}")
    if n < 0:
        raise ValueError(f"polygamma(n, x) does not support negative n, got n={n}")
    return sf.Polygamma.apply(_floating(tensor_input(input, "polygamma")), int(n))


def _cumulative_extreme(x, dim, largest):
    name = "cummax" if largest else "cummin"
    refuse_complex(x, f"{name}_cpu")
    result = CummaxResult if largest else CumminResult
    if x.ndim == 0:
        normalize_axis(dim, 0, name)
        values, indices = _cumulative_extreme(x.reshape(1), 0, largest)
        return result(values.reshape(()), indices.reshape(()))
    axis = normalize_axis(dim, x.ndim, name)
    found = x._placed is not None and axis_scans.cumulative_extreme(x, axis, largest)   # sharded: block by block
    if found:
        return result(*found)
    with autograd.no_grad():
        indices = sf.CumulativeExtremeIndex.apply(x, axis, largest)
    # the values gathered at their indices: the gradient of each goes to the element it came from
    return result(x.gather(axis, indices), indices)


class SpecialMethods:
    __slots__ = ()

    def lgamma(self):
        """``log |Gamma(x)|`` elementwise: inf at 0, -1, -2, ...; its gradient is digamma."""
        return special_unary("lgamma", self)

    def digamma(self):
        """The derivative of ``lgamma``: -inf at 0 (torch's choice), NaN at -1, -2, ...; its
        gradient is ``polygamma(1, x)``."""
        return special_unary("digamma", self)

    def polygamma(self, n):
        """``polygamma(n, self)``: see ``gt.polygamma``."""
        return polygamma(n, self)

    def i0(self):
        """The modified Bessel function of the first kind of order 0; its gradient is ``i1``."""
        return special_unary("i0", self)

    def mvlgamma(self, p):
        """The log of the multivariate gamma function of dimension ``p`` (an int >= 1):
        ``sum over i < p of lgamma(x - i / 2) + p (p - 1) / 4 log(pi)`` (``torch.mvlgamma``), at every
        element: torch 2.13 no longer checks that they lie above ``(p - 1) / 2`` (below, lgamma's
        values: inf at its poles).

            >>> gt.tensor([2.5]).mvlgamma(1).tolist() == gt.tensor([2.5]).lgamma().tolist()
            True
        """
        if isinstance(p, bool) or not hasattr(p, "__index__"):
            raise TypeError(f"mvlgamma(): argument 'p' must be int, not {type(p).__name__} ({p!r})")
        if p < 1:
            raise RuntimeError(f"mvlgamma: p has to be greater than or equal to 1, got {p!r}")
        x = _floating(self)
        # 0.0 - 0.0 is +0.0 (-0.5 * 0 is -0.0): at x = -0.0, lgamma's gradient at +0.0, -inf, as torch's
        offsets = Tensor._wrap(B.astype(B.asarray([0.0 - 0.5 * i for i in range(p)]), x.dtype))   # (p,)
        return (x.unsqueeze(-1) + offsets).lgamma().sum(-1) + p * (p - 1) / 4 * math.log(math.pi)

    def igamma(self, other):
        """``igamma(self, other)``: the regularized lower incomplete gamma function (see ``gt.igamma``)."""
        return igamma(self, other)

    def igammac(self, other):
        """``igammac(self, other)``: the regularized upper incomplete gamma function (see ``gt.igammac``)."""
        return igammac(self, other)

    def logaddexp2(self, other):
        """``log2(2**self + 2**other)`` without overflow: see ``gt.logaddexp2``. Shapes broadcast."""
        return logaddexp2(self, other)

    @torch_node_name("CummaxBackward0")
    def cummax(self, dim):
        """``(values, indices)``, both of this tensor's shape: the running maximum along ``dim``
        (values in this tensor's dtype) and the int64 index along ``dim`` where each was taken, the
        LAST index of equal values (torch's rule); a NaN stays once met, at its latest index. The
        gradient of each value goes to the element at its index.

            >>> gt.tensor([1.0, 3.0, 2.0, 3.0]).cummax(0).indices.tolist()
            [0, 1, 1, 3]
        """
        return _cumulative_extreme(self, dim, True)

    @torch_node_name("CumminBackward0")
    def cummin(self, dim):
        """``(values, indices)``, both of this tensor's shape: the running minimum along ``dim``
        and where each was taken, with ``cummax``'s rules."""
        return _cumulative_extreme(self, dim, False)


for _name in ("lgamma", "digamma", "polygamma", "i0", "mvlgamma", "igamma", "igammac"):
    setattr(SpecialMethods, f"{_name}_", _inplace_method(_name, False))
