"""torch's random-sampling methods (`bernoulli`, `random_`, `log_normal_`, `cauchy_`...).

Every draw comes from gt's default generator (``gt.manual_seed``) or the ``gt.Generator`` passed
as ``generator=``, so the values repeat under a seed but are not torch's. As in torch the draws
have no gradient: a result computed from a tensor that requires grad requires grad too, and its
backward gives that tensor zeros (``_Sampled``).

Mixed into ``gt.Tensor``; ``Tensor`` below is bound by gt/tensor/core.py once the class exists.
"""

import math
import warnings

from gt import autograd, dtypes
from gt.autograd import Function
from gt.backend import B
from gt.tensor.generator import check as check_generator, drawing
from gt.tensor.complex_checks import cpp_name
from gt.tensor.inplace_math import _fill

Tensor = None  # gt.Tensor, bound by gt/tensor/core.py

# random_()'s default range per dtype, ``[0, high]`` inclusive (floats: every integer up to
# 2**mantissa digits is exact)
_FULL_HIGH = {dtypes.float32: 2 ** 24, dtypes.float64: 2 ** 53, dtypes.float16: 2 ** 11, dtypes.bfloat16: 2 ** 8,
              dtypes.int64: 2 ** 63 - 1, dtypes.int32: 2 ** 31 - 1, dtypes.bool_: 1}
_INT_BOUNDS = {**{dtypes.to_dtype(name): bounds for name, bounds in dtypes.INT_RANGES.items()}, dtypes.bool_: (0, 1)}
_UNSET = object()


class _Sampled(Function):
    """Random draws as an op of the tensors they were drawn from: the values are given, the
    gradient of each input is zero (torch's for ``normal``, ``bernoulli``, ``poisson``)."""

    def forward(self, drawn, *inputs):
        self.meta = [(tuple(a.shape), B.dtype_of(a)) for a in inputs]
        return drawn

    def backward(self, g):
        return (None,) + tuple(B.zeros(shape, dt) if need else None
                               for (shape, dt), need in zip(self.meta, self.needs_input_grad[1:]))


def sampled(drawn, *inputs):
    """A tensor of the engine array ``drawn``; when an input tensor requires grad (and grad is
    enabled), recorded as drawn from the inputs, whose gradients are then zeros (as torch's)."""
    tensors = [t for t in inputs if isinstance(t, Tensor)]
    if autograd.is_grad_enabled() and any(t.requires_grad for t in tensors):
        return _Sampled.apply(drawn, *tensors)
    return Tensor._wrap(drawn)


def _float_only(t, what):
    if not t.dtype.is_floating_point:
        raise NotImplementedError(f"{what}: not implemented for {dtypes.torch_type_name(t.dtype.name)} "
                                  f"tensors (dtype {t.dtype!r}); it needs a floating point dtype")


def _number(value, what, name):
    if isinstance(value, Tensor) and value.ndim == 0 and not value.requires_grad:    # torch takes 0-d tensors
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{what}: {name} must be a number, got {type(value).__name__} ({value!r})")
    return value


def check_probability(p, what):
    """The float ``p``, or RuntimeError naming it when it is not in [0, 1] (NaN included)."""
    p = _number(p, what, "p")
    if not 0.0 <= p <= 1.0:
        raise RuntimeError(f"{what} expects p to be in [0, 1], but got p={p}")
    return float(p)


def check_probabilities(arr, what):
    """RuntimeError when an element of the engine array ``arr`` is outside [0, 1] or NaN."""
    if B.numel(arr) and not bool(B.all((arr >= 0) & (arr <= 1))):
        raise RuntimeError(f"{what}: expects every probability in [0, 1], got values from "
                           f"{float(B.min(arr))} to {float(B.max(arr))} (or NaN)")


def check_random_range(low, top, dt):
    """torch's checks of a draw of the integers ``[low, top]`` into dtype ``dt``: both ends must be
    int64 and values ``dt`` holds (RuntimeError), and a float dtype warns past the integers it
    holds exactly (``2**digits``), as torch's ``random_``/``randint``."""
    for name, v in (("from", low), ("to - 1", top)):
        if not -2 ** 63 <= v < 2 ** 63:
            raise ValueError("Overflow when unpacking long long")
        if dt in _INT_BOUNDS:
            lo, hi = _INT_BOUNDS[dt]
        elif dt.is_floating_point:
            lo, hi = -dtypes.FLOAT_MAX[dt.name], dtypes.FLOAT_MAX[dt.name]
        else:
            continue
        if not lo <= v <= hi:
            raise RuntimeError(f"{name} is out of bounds for {cpp_name(dt)}")
        if dt in _FULL_HIGH and dt.is_floating_point and abs(v) > _FULL_HIGH[dt]:
            digits = _FULL_HIGH[dt].bit_length() - 1
            warnings.warn(f"{name} is out of bounds [-(2^{digits}), 2^{digits}]. Due to precision limitations "
                          f"{cpp_name(dt)} can support discrete uniform distribution only within this range. "
                          "This warning will become an error in version 1.7 release, please fix the code in "
                          "advance", UserWarning, stacklevel=3)


def random_ints(low, high, shape):
    """int64 draws, uniform over the integers in ``[low, high]`` (inclusive, anywhere in int64)."""
    if high < 2 ** 63 - 1:
        return B.randint(low, high + 1, shape)
    if low > -2 ** 63:        # [low - 1, high) moved up by one, as high + 1 is past int64
        return B.randint(low - 1, high, shape) + 1
    # all of int64: a signed 32-bit high part and an unsigned 32-bit low part
    return B.randint(-2 ** 31, 2 ** 31, shape) * (2 ** 32) + B.randint(0, 2 ** 32, shape)


class RandomMethods:
    __slots__ = ()

    def bernoulli(self, p=None, *, generator=None):
        """0/1 draws shaped as this tensor: ``x.bernoulli()`` draws each element with the
        probability it holds (float tensors only); ``x.bernoulli(p)`` with the number ``p`` for
        every element, in this tensor's dtype (any dtype)."""
        check_generator(generator, "bernoulli")
        if p is None:
            _float_only(self, "bernoulli")
            prob = self.detach()._data
            check_probabilities(prob, "bernoulli")
            with drawing(generator, "bernoulli"):
                u = B.rand(self.shape, dtypes.float64)
            return sampled(B.astype(u < B.astype(prob, dtypes.float64), self.dtype), self)
        if isinstance(p, Tensor):
            raise TypeError("bernoulli(): p must be a number (torch's Tensor.bernoulli takes a float p); "
                            "for a tensor of probabilities use gt.bernoulli(p)")
        prob = check_probability(p, "bernoulli_")
        with drawing(generator, "bernoulli"):
            u = B.rand(self.shape, dtypes.float64)
        return sampled(B.astype(u < prob, self.dtype), self)

    def random_(self, *args, generator=None, **kwargs):
        """Fill with integers drawn uniformly: ``random_(to)`` from ``[0, to)``, ``random_(from,
        to)`` from ``[from, to)``, ``random_(from, None)`` from ``from`` to the dtype's largest
        value, and ``random_()`` from ``[0, 2**mantissa]`` for floats (every value exact), ``[0,
        max]`` for integers, {False, True} for bool (torch's ranges)."""
        check_generator(generator, "random_")
        low, high = 0, _UNSET
        if "from" in kwargs:
            low = kwargs.pop("from")
        if "to" in kwargs:
            high = kwargs.pop("to")
        if kwargs:
            raise TypeError(f"random_() got an unexpected keyword argument {next(iter(kwargs))!r}")
        if len(args) > 2:
            raise TypeError(f"random_() takes at most 2 positional arguments (from, to), got {len(args)}")
        if len(args) == 1 and high is _UNSET:
            high = args[0]
        elif len(args) == 2:
            low, high = args
        elif len(args) == 1:
            low = args[0]
        for name, v in (("from", low), ("to", high)):
            if v is not _UNSET and v is not None and (isinstance(v, bool) or not isinstance(v, int)):
                raise TypeError(f"random_(): '{name}' must be an int, got {type(v).__name__} ({v!r})")
        if any(isinstance(v, int) and not -2 ** 63 <= v < 2 ** 63 for v in (low, high)):
            raise ValueError("Overflow when unpacking long long")
        dt = self.dtype
        if dt not in _FULL_HIGH:
            raise NotImplementedError(f"random_: not implemented for dtype {dt!r}")
        if high is _UNSET or high is None:
            top = _FULL_HIGH[dt]
        else:
            if not low < high:
                raise RuntimeError(f"random_ expects 'from' to be less than 'to', but got from={low} >= to={high}")
            top = high - 1
        if high is not _UNSET and high is not None:
            check_random_range(low, top, dt)
        elif dt in _INT_BOUNDS:
            check_random_range(low, _INT_BOUNDS[dt][1], dt)
        if top < low:
            raise RuntimeError(f"random_ expects 'from' to be less than 'to', but got from={low} >= to={top + 1}")
        with drawing(generator, "random_"):
            return _fill(self, "random_", lambda shape, d: B.astype(random_ints(low, top, shape), d),
                         floats_only=False)

    def log_normal_(self, mean=1.0, std=2.0, *, generator=None):
        """Fill with ``exp(N(mean, std**2))`` draws (torch's defaults mean=1, std=2)."""
        check_generator(generator, "log_normal_")
        mean, std = _number(mean, "log_normal_", "mean"), _number(std, "log_normal_", "std")
        if not std > 0:
            raise RuntimeError(f"log_normal_ expects std > 0.0, but found std={std}")
        _float_only(self, "log_normal_")
        with drawing(generator, "log_normal_"):
            return _fill(self, "log_normal_",
                         lambda shape, d: B.astype(B.exp(B.randn(shape, dtypes.float64) * std + mean), d))

    def geometric_(self, p, *, generator=None):
        """Fill with the number of Bernoulli(``p``) trials up to the first success: 1, 2, 3, ...
        (any dtype but bool; ``p`` in (0, 1))."""
        check_generator(generator, "geometric_")
        p = _number(p, "geometric_", "p")
        if not 0 < p < 1:
            raise RuntimeError(f"geometric_ expects p to be in (0, 1), but got p={p}")
        if self.dtype == dtypes.bool_:
            raise NotImplementedError("geometric_: not implemented for Bool tensors (dtype gt.bool)")
        log_q = math.log1p(-p)

        def draw(shape, d):
            u = 1.0 - B.rand(shape, dtypes.float64)          # (0, 1]: log(u) is finite
            return B.astype(B.maximum(B.ceil(B.log(u) / log_q), B.full((), 1.0, dtypes.float64)), d)

        with drawing(generator, "geometric_"):
            return _fill(self, "geometric_", draw, floats_only=False)

    def cauchy_(self, median=0.0, sigma=1.0, *, generator=None):
        """Fill with draws from the Cauchy distribution ``median + sigma * tan(pi * (U - 1/2))``."""
        check_generator(generator, "cauchy_")
        median, sigma = _number(median, "cauchy_", "median"), _number(sigma, "cauchy_", "sigma")
        if not sigma > 0:
            raise RuntimeError(f"cauchy_ expects sigma > 0.0, but found sigma={sigma}")
        if not self.dtype.is_floating_point:
            raise RuntimeError(f"Cauchy distribution is a continuous probability distribution. dtype must be a "
                               f"floating point but you specified {self.dtype!r}")

        def draw(shape, d):
            with autograd.no_grad():
                angle = Tensor._wrap((B.rand(shape, dtypes.float64) - 0.5) * math.pi)
                return B.astype((angle.tan() * sigma + median)._data, d)

        with drawing(generator, "cauchy_"):
            return _fill(self, "cauchy_", draw)
