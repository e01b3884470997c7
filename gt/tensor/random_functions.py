"""torch's random sampling functions (``bernoulli``, ``normal``, ``poisson``, ``binomial``,
``randint_like``); the window functions and numerics are in numerics_functions.py.

Draws come from gt's default generator (``gt.manual_seed``) or the ``gt.Generator`` passed as
``generator=``: they repeat under a seed, but are not torch's values.

Poisson and binomial draws are vectorised over the whole tensor: inversion by a sequential
search of the CDF where the mean is small (one step per possible count, all elements at once),
and Hörmann's transformed rejection (PTRS for Poisson, BTRS for binomial, the algorithms
numpy and torch use) where it is large, with the exact log-probability ratio as the test.
"""

import math

from gt import autograd, dtypes
from gt.backend import B
from gt.ops._shapes import broadcast_shape
from gt.tensor.core import Tensor
from gt.tensor.creation import _float, _like, _new
from gt.tensor.arithmetic import where
from gt.tensor.generator import drawing
from gt.tensor.out_argument import write
from gt.tensor.random_methods import _float_only, _number, check_random_range, random_ints, sampled

_F64 = dtypes.float64
_SMALL_MEAN = 10.0     # below this mean, inversion; from it on, transformed rejection


# ---- random sampling -----------------------------------------------------------------------
def _whole(t):
    """The engine array of ``t`` (gathered when sharded), outside the graph."""
    return t.detach()._data


def bernoulli(input, p=None, *, generator=None, out=None):  # noqa: A002  (torch's name)
    """0/1 draws shaped as ``input`` (float): each element is 1 with the probability ``input``
    holds, or with the number ``p`` when given. Same dtype as ``input``; no gradient (a result of
    an input that requires grad requires grad, with zero gradients, as in torch)."""
    if not isinstance(input, Tensor):
        raise TypeError(f"bernoulli(): argument 'input' must be a Tensor, not {type(input).__name__}")
    return _out(input.bernoulli(p, generator=generator), out, "bernoulli")


def _out(result, out, what):
    """``result``, or ``out`` holding it (torch's ``out=``)."""
    return result if out is None else write(result, out, what)


def normal(mean=0.0, std=1.0, size=None, *, generator=None, out=None, dtype=None, requires_grad=False, **kwargs):
    """Draws from N(``mean``, ``std``**2), torch's four forms:

    - ``normal(mean: Tensor, std: Tensor)``: elementwise, shapes broadcast, ``mean``'s dtype;
    - ``normal(mean: Tensor, std=1.0)`` and ``normal(mean: float, std: Tensor)``;
    - ``normal(mean: float, std: float, size)``: a new tensor of ``size`` (``dtype``,
      ``requires_grad`` as the creation functions).

    ``std`` must be >= 0 (RuntimeError naming it). No gradient: a result of tensors that require
    grad requires grad, with zero gradients, as in torch.
    """
    if out is not None and dtype is None and size is not None:
        dtype = out.dtype if isinstance(out, Tensor) else None        # drawn in out's dtype, as torch's
    with drawing(generator, "normal"):
        return _out(_normal(mean, std, size, dtype, requires_grad, kwargs), out, "normal")


def _normal(mean, std, size, dtype, requires_grad, kwargs):
    for k in kwargs:
        if k not in ("layout", "device", "pin_memory"):
            raise TypeError(f"normal() got an unexpected keyword argument {k!r}")
    mean_t, std_t = isinstance(mean, Tensor), isinstance(std, Tensor)
    if not (mean_t or std_t):
        _number(mean, "normal", "mean")
        _number(std, "normal", "std")
        if size is None:
            raise TypeError("normal(): with a float mean and a float std, size= is needed "
                            "(normal(mean, std, size))")
        if not std >= 0:
            raise RuntimeError(f"normal expects std >= 0.0, but found std {std}")
        shape = (size,) if isinstance(size, int) else tuple(size)
        if any(s < 0 for s in shape):
            raise RuntimeError(f"normal: negative dimension in size {shape}")
        dt = _float(dtype)
        if not dt.is_floating_point:
            raise NotImplementedError(f"normal: not implemented for dtype {dt!r}; it needs a floating point dtype")
        arr = B.astype(B.randn(shape, _F64) * float(std) + float(mean), dt)
        return _new(arr, requires_grad)
    if size is not None:
        raise TypeError("normal(): size= is only taken with a float mean and a float std")
    if dtype is not None or requires_grad:
        raise TypeError("normal(): dtype= and requires_grad= are only taken with normal(mean, std, size)")
    ref = mean if mean_t else std
    _float_only(ref, "normal")
    dt = ref.dtype
    if std_t:
        _float_only(std, "normal")
        s = B.astype(_whole(std), _F64)
        if B.numel(s) and not bool(B.all(s >= 0)):
            raise RuntimeError("normal expects all elements of std >= 0.0")
    else:
        _number(std, "normal", "std")
        if not std >= 0:
            raise RuntimeError(f"normal expects std >= 0.0, but found std {std}")
        s = float(std)
    if mean_t:
        m = B.astype(_whole(mean), _F64)
    else:
        _number(mean, "normal", "mean")
        m = float(mean)
    shape = _broadcast(mean.shape if mean_t else (), std.shape if std_t else ())
    drawn = B.astype(B.randn(shape, _F64) * s + m, dt)
    return _placed_like(ref, sampled(drawn, mean, std))


def _broadcast(a, b):
    """torch's broadcast of shapes ``a`` and ``b`` (RuntimeError naming the sizes that clash)."""
    return broadcast_shape("broadcast", a, b, lambda pa, pb, i: RuntimeError(
        f"The size of tensor a ({pa[i]}) must match the size of tensor b ({pb[i]}) at non-singleton dimension {i}"))


def _placed_like(ref, t):
    """``t`` laid out over the mesh as ``ref`` is, when it has ``ref``'s shape and no graph."""
    if ref._placed is None or t.shape != ref.shape or t.requires_grad:
        return t
    return _like(ref, t._data, False)


def poisson(input, generator=None):  # noqa: A002  (torch's name)
    """Poisson draws with the rates ``input`` holds (float, >= 0), in ``input``'s dtype. A rate
    of 0 gives 0. No gradient (a result of an input that requires grad requires grad, with zero
    gradients, as in torch)."""
    with drawing(generator, "poisson"):
        return _poisson_of(input)


def _poisson_of(input):  # noqa: A002
    if not isinstance(input, Tensor):
        raise TypeError(f"poisson(): argument 'input' must be a Tensor, not {type(input).__name__}")
    _float_only(input, "poisson")
    lam = B.astype(_whole(input), _F64)
    if B.numel(lam) and not bool(B.all(lam >= 0)):
        raise RuntimeError("invalid Poisson rate, expected rate to be non-negative "
                           f"(got rates from {float(B.min(lam))}, or NaN)")
    with autograd.no_grad():
        counts = _poisson(Tensor._wrap(lam))
    return _placed_like(input, sampled(B.astype(counts._data, input.dtype), input))


def _rand(shape):
    return Tensor._wrap(B.rand(shape, _F64))


def _inverse_search(u, p0, step, limit):
    """The smallest k with ``u <= P(0) + ... + P(k)``, for all elements at once: ``p0`` is P(0)
    and ``step(p, k)`` turns P(k - 1) into P(k) (k is the same for every element still
    searching). Stops after ``limit`` steps (where rounding leaves the CDF below ``u``)."""
    count = u * 0.0
    p, cdf = p0, p0
    for k in range(1, limit + 1):
        going = u > cdf
        if not bool(going.any()):
            break
        count = count + going.to(_F64)
        p = step(p, k)
        cdf = cdf + p
    return count


def _poisson(lam):
    """Poisson draws of the float64 rates ``lam`` (>= 0) as a float64 tensor."""
    shape = lam.shape
    out = Tensor._wrap(B.zeros(shape, _F64))
    small = lam < _SMALL_MEAN
    if bool(small.any()):
        ls = lam.clamp(max=_SMALL_MEAN)
        k = _inverse_search(_rand(shape), (-ls).exp(), lambda p, k: p * ls / k, 200)
        out = where(small, k, out)
    big = (~small).logical_and(lam < math.inf)
    if bool(big.any()):
        out = where(big, _ptrs(where(big, lam, _SMALL_MEAN), big), out)
    # an infinite rate gives inf (torch's is an undefined integer cast)
    return where(lam != 0, where(lam < math.inf, out, math.inf), 0.0)


def _ptrs(lam, todo):
    """Hörmann's PTRS (transformed rejection with squeeze) for rates >= 10, at ``todo``."""
    slam, loglam = lam.sqrt(), lam.log()
    b = 0.931 + 2.53 * slam
    a = -0.059 + 0.02483 * b
    inv_alpha = 1.1239 + 1.1328 / (b - 3.4)
    vr = 0.9277 - 3.6224 / (b - 2)
    out = lam * 0.0
    pending = todo
    for _ in range(1000):
        if not bool(pending.any()):
            return out
        u = _rand(lam.shape) - 0.5
        v = _rand(lam.shape)
        us = 0.5 - u.abs()
        k = ((2 * a / us + b) * u + lam + 0.43).floor()
        quick = (us >= 0.07).logical_and(v <= vr)
        possible = (k >= 0).logical_and((us >= 0.013).logical_or(v <= us))
        log_f = -lam + k * loglam - (k + 1).clamp(min=1).lgamma()
        test = (v * inv_alpha / (a / (us * us) + b)).log() <= log_f
        accept = pending.logical_and(quick.logical_or(possible.logical_and(test)))
        out = where(accept, k, out)
        pending = pending.logical_and(~accept)
    raise RuntimeError("poisson: the rejection sampler did not finish (NaN rates?)")


def binomial(count, prob, generator=None):
    """Binomial draws: the number of successes in ``count`` trials of probability ``prob`` (float
    tensors of one dtype; shapes broadcast). Where ``count`` < 0 gives 0; ``prob`` outside [0, 1]
    is clamped into it, NaN gives NaN (torch's results). No gradient (torch has none)."""
    with drawing(generator, "binomial"):
        return _binomial(count, prob)


def _binomial(count, prob):
    for name, v in (("count", count), ("prob", prob)):
        if not isinstance(v, Tensor):
            raise TypeError(f"binomial(): argument '{name}' must be Tensor, not {type(v).__name__}")
    if not count.dtype.is_floating_point:
        raise ValueError(f"binomial only supports floating-point dtypes for count, got: {count.dtype!r}")
    if prob.dtype != count.dtype:
        raise RuntimeError(f"binomial: prob has dtype {prob.dtype!r} but count has {count.dtype!r}; "
                           "they must be the same")
    shape = _broadcast(count.shape, prob.shape)
    with autograd.no_grad():
        n = Tensor._wrap(B.broadcast_to(B.astype(_whole(count), _F64), shape))
        p = Tensor._wrap(B.broadcast_to(B.astype(_whole(prob), _F64), shape))
        nan = p.isnan().logical_or(~(n < math.inf))        # NaN p, and inf or NaN counts: NaN, as torch
        n = where(nan, 0.0, n).clamp(min=0).floor()
        p = where(nan, 0.5, p).clamp(0.0, 1.0)
        flip = p > 0.5
        q = where(flip, 1.0 - p, p)                  # q <= 1/2; the draw is n - X where flipped
        small = n * q < _SMALL_MEAN
        x = n * 0.0
        if bool(small.any()):
            qs = where(small, q, 0.0).clamp(max=0.5)
            ns = where(small, n, 0.0)
            ratio = qs / (1.0 - qs)
            limit = int(min(float(ns.max()), 10 * _SMALL_MEAN + 200))
            k = _inverse_search(_rand(shape), (1.0 - qs) ** ns, lambda pk, k: pk * ratio * (ns - (k - 1)) / k, limit)
            x = where(small, k.minimum(ns), x)
        if bool((~small).any()):
            x = where(small, x, _btrs(where(small, 100.0, n), where(small, 0.5, q), ~small))
        x = where(nan, math.nan, where(flip, n - x, x))
        drawn = B.astype(x._data, count.dtype)
    return sampled(drawn, count, prob)


def _btrs(n, p, todo):
    """Hörmann's BTRS (transformed rejection) for n * p >= 10, p <= 1/2, at ``todo``."""
    spq = (n * p * (1 - p)).sqrt()
    b = 1.15 + 2.53 * spq
    a = -0.0873 + 0.0248 * b + 0.01 * p
    c = n * p + 0.5
    vr = 0.92 - 4.2 / b
    alpha = (2.83 + 5.1 / b) * spq
    lpq = (p / (1 - p)).log()
    m = ((n + 1) * p).floor()
    log_fm = (m + 1).lgamma() + (n - m + 1).lgamma()
    out = n * 0.0
    pending = todo
    for _ in range(1000):
        if not bool(pending.any()):
            return out
        u = _rand(n.shape) - 0.5
        v = _rand(n.shape)
        us = 0.5 - u.abs()
        k = ((2 * a / us + b) * u + c).floor()
        inside = (k >= 0).logical_and(k <= n)
        quick = (us >= 0.07).logical_and(v <= vr)
        kk = k.clamp(0.0).minimum(n)
        log_ratio = log_fm - (kk + 1).lgamma() - (n - kk + 1).lgamma() + (kk - m) * lpq
        test = (v * alpha / (a / (us * us) + b)).log() <= log_ratio
        accept = pending.logical_and(inside).logical_and(quick.logical_or(test))
        out = where(accept, k, out)
        pending = pending.logical_and(~accept)
    raise RuntimeError("binomial: the rejection sampler did not finish")


def randint_like(input, low=0, high=None, *, dtype=None, requires_grad=False,  # noqa: A002
                 memory_format=None, generator=None, **kwargs):
    """Integers drawn uniformly from ``[low, high)`` (``randint_like(input, high)`` from ``[0,
    high)``), shaped as ``input``, in ``input``'s dtype unless ``dtype`` says otherwise."""
    for k in kwargs:
        if k not in ("layout", "device", "pin_memory"):
            raise TypeError(f"randint_like() got an unexpected keyword argument {k!r}")
    if not isinstance(input, Tensor):
        raise TypeError(f"randint_like(): argument 'input' must be a Tensor, not {type(input).__name__}")
    if high is None:
        low, high = 0, low
    for name, v in (("low", low), ("high", high)):
        if isinstance(v, bool) or not isinstance(v, int):
            raise TypeError(f"randint_like(): '{name}' must be an int, got {type(v).__name__} ({v!r})")
    if not low < high:
        raise RuntimeError(f"random_ expects 'from' to be less than 'to', but got from={low} >= to={high}")
    dt = input.dtype if dtype is None else dtypes.to_dtype(dtype)
    check_random_range(low, high - 1, dt)
    with drawing(generator, "randint_like"):
        drawn = random_ints(low, high - 1, input.shape)
    return _like(input, B.astype(drawn, dt), requires_grad)
