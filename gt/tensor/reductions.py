"""Reductions of a tensor: ``sum``, ``mean``, ``max``, ``min``, ``var``, ``std``, ``argmax``,
``argmin``, ``all``, ``any``.

They take numpy's names (``axis``, ``keepdims``) and torch's (``dim``, ``keepdim``), and numpy's
``dtype=`` and ``out=None``, which ``np.mean(t)`` / ``np.sum(t)`` pass on (see numpy_interop.py).

Mixed into ``gt.Tensor``; ``Tensor`` below is bound by gt/tensor/core.py once the class exists.
"""

import collections

from gt import dtypes
from gt.backend import B
from gt.errors import IndexShapeError, ShapeError
from gt.ops import reductions as reduction_ops
from gt.ops._shapes import normalize_axes, normalize_axis, numel, reduction_axes
from gt.sharding.layout import Placed
from gt.sharding.placement import Shard
from gt.tensor import axis_rules
from gt.tensor._args import _pick
from gt.tensor.complex_checks import refuse_complex_extremum
from gt.tensor.numpy_interop import no_out
from gt.tensor.shape import _named
from gt.tensor.wide_uints import refuse_target

Tensor = None  # gt.Tensor, bound by gt/tensor/core.py

# torch.return_types.max / .min: tuples that unpack as (values, indices) and name both
ExtremumResult = {name: collections.namedtuple(name, ["values", "indices"]) for name in ("max", "min")}


class ReductionMethods:
    __slots__ = ()

    def _reduce(self, op_cls, name, axis, keepdims, dim, keepdim, dtype=None, out=None):
        no_out(out, name)
        axes = reduction_axes(_pick(axis, dim), self.ndim, name)
        if self.ndim == 0:
            axes = None       # dim 0 or -1 of a 0-d tensor is its one element, as torch takes it
        keep = bool(keepdims or keepdim)
        x = self if dtype is None else self.to(dtype)
        out = op_cls.apply(x, axes, keep)
        # an integer sum is int64 unless ``dtype`` says otherwise (torch's sum(dtype=int32) is int32)
        return out if dtype is None or out.dtype == x.dtype else out.to(x.dtype)

    def sum(self, axis=None, keepdims=False, *, dim=None, keepdim=False, dtype=None, out=None):
        refuse_target("sum_cpu", dtype)
        return self._reduce(reduction_ops.Sum, "sum", axis, keepdims, dim, keepdim, dtype, out)

    def mean(self, axis=None, keepdims=False, *, dim=None, keepdim=False, dtype=None, out=None):
        """Average over ``axis``; integer and bool tensors average in float32 (numpy would give float64),
        but uint8/int8/int16 ones are refused as torch refuses them (``x.float().mean()``)."""
        if dtype is None and self.dtype in dtypes.SMALL_INTS:
            raise RuntimeError("mean(): could not infer output dtype. Input dtype must be either a floating point or "
                               f"complex dtype. Got: {dtypes.torch_type_name(self.dtype.name)}; average x.float() "
                               "(or give dtype=gt.float32)")
        if dtype is not None and not dtypes.to_dtype(dtype).differentiable:
            raise RuntimeError("mean(): could not infer output dtype. Optional dtype must be either a floating "
                               f"point or complex dtype. Got: {dtypes.torch_type_name(dtypes.to_dtype(dtype).name)}")
        x = self if self.dtype.differentiable or dtype is not None else self.to(dtypes.default_float)
        return x._reduce(reduction_ops.Mean, "mean", axis, keepdims, dim, keepdim, dtype, out)

    def max(self, axis=None, keepdims=False, *, dim=None, keepdim=False, out=None, other=None):
        """Largest values over ``axis``: values only, as numpy (``x.max(1)``,
        ``x.max(-1, keepdims=True)``). Spelled with torch's keywords (``x.max(dim=1)``,
        ``x.max(1, keepdim=True)``) it is torch's ``(values, indices)`` named tuple, the index of
        the first largest value, the gradient going to that element alone. ``x.max(other)`` with
        a tensor (or ``other=``) is torch's elementwise ``maximum``."""
        if other is not None:
            return self._extremum(reduction_ops.Max, "max", B.argmax, other, keepdims, dim, keepdim, out)
        return self._extremum(reduction_ops.Max, "max", B.argmax, axis, keepdims, dim, keepdim, out)

    def min(self, axis=None, keepdims=False, *, dim=None, keepdim=False, out=None, other=None):
        """Smallest values over ``axis``: as ``max``."""
        if other is not None:
            return self._extremum(reduction_ops.Min, "min", B.argmin, other, keepdims, dim, keepdim, out)
        return self._extremum(reduction_ops.Min, "min", B.argmin, axis, keepdims, dim, keepdim, out)

    def _extremum(self, op_cls, name, arg, axis, keepdims, dim, keepdim, out):
        if isinstance(axis, Tensor):                  # torch's max(input, other): elementwise
            no_out(out, name)
            return getattr(Tensor, "maximum" if name == "max" else "minimum")(self, axis)
        self._nonempty(name, _pick(axis, dim))
        if self.dtype.is_complex:       # its dims checked first, as torch's
            refuse_complex_extremum(self, name, normalize_axes(_pick(axis, dim), self.ndim, name) is not None)
        if (dim is None and not keepdim) or keepdims:
            return self._reduce(op_cls, name, axis, keepdims, dim, keepdim, out=out)
        no_out(out, name)
        axis = _pick(axis, dim)
        if axis is None:
            raise TypeError(f"{name}(): keepdim= needs a dim, as torch's {name}(dim, keepdim) (or {name}() over "
                            "all elements)")
        axis = normalize_axis(axis, max(self.ndim, 1), name)      # a 0-d tensor: dim 0 or -1, as torch
        src = self.to(dtypes.int32) if self.dtype == dtypes.bool_ else self   # torch's argmax refuses bools
        if self.ndim == 0:
            return ExtremumResult[name](_named(self.clone(), self, name.title() + "Backward0"),
                                        src._arg(arg, name, None, False, None, False))
        index = src._arg(arg, name, axis, False, None, True)       # the first position, dims kept
        values = self.gather(axis, index)                          # the gradient goes there alone
        if not keepdim:
            values, index = values.squeeze(axis), index.squeeze(axis)
        return ExtremumResult[name](_named(values, self, name.title() + "Backward0"), index)

    def _nonempty(self, name, axis, index_error=False):
        """An extremum over no element has no value: say so (numpy's error names its ufunc).
        ``index_error``: torch's IndexError over all elements too (argmax/argmin)."""
        if 0 not in self.shape:
            return
        # an empty dim is refused before a repeated one, as torch's
        axes = None if axis is None else [normalize_axis(a, self.ndim, name) for a in
                                          ((axis,) if hasattr(axis, "__index__") else axis)]
        if axes is None or any(self.shape[a] == 0 for a in axes):
            # gt's ValueError, and torch's class: RuntimeError over all elements, IndexError over a dim
            where = "of all elements" if axes is None else f"over axis {axis}"
            raise (ShapeError if axes is None and not index_error else IndexShapeError)(
                f"{name}: the {name} {where} of a tensor of shape {self.shape} is over no element (an empty "
                "axis); torch raises too")

    def var(self, axis=None, keepdims=False, ddof=0, *, dim=None, keepdim=False, unbiased=None, correction=None,
            dtype=None, out=None):
        """Variance over ``axis``; ``ddof=0`` (biased, numpy's default). torch's ``unbiased``/``correction`` work too."""
        no_out(out, "var")
        if isinstance(axis, bool):      # torch's x.var(unbiased) / x.std(unbiased), positional
            axis, unbiased = None, axis
        if dtype is not None:
            return self.to(dtype).var(axis, keepdims, ddof, dim=dim, keepdim=keepdim, unbiased=unbiased,
                                      correction=correction)
        if self.dtype in dtypes.SMALL_INTS:     # as mean: refused, as torch refuses them
            raise RuntimeError(f"std and var only support floating point and complex dtypes, got {self.dtype!r}: "
                               "use x.float()")
        if self.dtype in dtypes.HALVES:   # torch's CPU kernel computes halves in float32, rounded once
            out = self.float().var(axis, keepdims, ddof, dim=dim, keepdim=keepdim, unbiased=unbiased,
                                   correction=correction)
            return _named(out.to(self.dtype), self, "VarBackward0")
        if self.dtype == dtypes.float32:
            out = self._spread32(axis, keepdims, ddof, dim, keepdim, unbiased, correction, False, False)
        else:
            out = self._var_float(axis, keepdims, ddof, dim, keepdim, unbiased, correction)[0]
        return _named(out, self, "VarBackward0")

    def _spread32(self, axis, keepdims, ddof, dim, keepdim, unbiased, correction, root, welford):
        """float32 var (std where ``root``) as torch's CPU kernel gives it: it accumulates in float64,
        so squares of deviations near 3e38 do not overflow there, nor subnormal ones lose their
        digits. The float64 rerun costs 3-4x var's time (batch norm's statistics use var), so it
        runs only where a look at the (small) float32 result finds such a value."""
        var, axes, keep, ddof = self._var_float(axis, keepdims, ddof, dim, keepdim, unbiased, correction)
        if not _lost_in_float32(var, self, axes, root):
            return reduction_ops.StdFromVar.apply(var) if root else var
        x = self.double()
        if welford or var.numel() != 1:     # Welford's, in float64
            var = x.var(axes, keep, ddof)
        else:   # one result: torch's float32 mean (inf where the float32 sum overflows), float64 squares
            centered = x - self.mean(axes, keepdims=True).double()
            count = self.numel() if axes is None else numel(self.shape[a] for a in axes)
            var = (centered * centered).sum(axes, keepdims=keep) / max(count - ddof, 0)
        return (reduction_ops.StdFromVar.apply(var) if root else var).to(dtypes.float32)

    def _plain_var(self, dim, keepdim=False):
        """The biased variance over ``dim`` in the input's own precision, without var's float64
        rerun: torch's batch, group and layer norm kernels accumulate float32 in float32 (their
        statistics of values near 1e19 overflow, as these)."""
        return self._var_float(None, False, 0, dim, keepdim, None, None)[0]

    def _var_float(self, axis, keepdims, ddof, dim, keepdim, unbiased, correction):
        """``(var, axes, keep, ddof)``: the variance in the input's own precision, and the arguments
        resolved (``axes`` a tuple or None) for a rerun in float64."""
        if correction is not None:
            ddof = correction
        elif unbiased is not None:
            ddof = 1 if unbiased else 0
        axes = reduction_axes(_pick(axis, dim), self.ndim, "var")
        if self.ndim == 0:
            axes = None       # a 0-d tensor's dim 0 or -1 is its one element, as torch takes it
        keep = bool(keepdims or keepdim)
        count = self.numel() if axes is None else numel(self.shape[a] for a in axes)
        centered = self - self.mean(axes, keepdims=True)
        if self.dtype.is_complex:       # torch's: the mean of |x - mean|**2, a real tensor
            square = centered.real * centered.real + centered.imag * centered.imag
        else:
            square = centered * centered
        return square.sum(axes, keepdims=keep) / max(count - ddof, 0), axes, keep, ddof

    def std(self, axis=None, keepdims=False, ddof=0, *, dim=None, keepdim=False, unbiased=None, correction=None,
            dtype=None, out=None):
        if self.dtype in dtypes.HALVES and dtype is None:   # the root taken in float32 too: one rounding
            out = self.float().std(axis, keepdims, ddof, dim=dim, keepdim=keepdim, unbiased=unbiased,
                                   correction=correction, out=out)
            return _named(out.to(self.dtype), self, "StdBackward0")
        if self.dtype == dtypes.float32 and dtype is None:
            no_out(out, "std")
            if isinstance(axis, bool):
                axis, unbiased = None, axis
            return self._spread32(axis, keepdims, ddof, dim, keepdim, unbiased, correction, True, False)
        var = self.var(axis, keepdims, ddof, dim=dim, keepdim=keepdim, unbiased=unbiased, correction=correction,
                       dtype=dtype, out=out)
        return reduction_ops.StdFromVar.apply(var)    # a zero gradient over a constant slice, as torch

    def _arg(self, fn, name, axis, keepdims, dim, keepdim):
        if self.dtype.is_complex:
            raise RuntimeError(f"{name}(): does not support complex input (torch's error): compare .abs() or .real")
        if self.dtype == dtypes.bool_:
            raise RuntimeError(f"{name}(): does not support bool input (torch's error); cast it first, "
                               f"e.g. x.int().{name}()")
        axis = _pick(axis, dim)
        if axis is not None:
            axis = normalize_axis(axis, self.ndim, name)
        if 0 in self.shape:
            self._nonempty(name, axis, index_error=True)
        keep = bool(keepdims or keepdim)
        p = self._placed
        if p is not None and isinstance(p.placement, Shard) and axis is not None and axis != p.placement.axis:
            a = p.placement.axis
            out = [fn(s, axis=axis, keepdims=keep) for s in p.shards]
            kept = a if keep or a < axis else a - 1
            shape = list(out[0].shape)
            shape[kept] = self.shape[a]
            return Tensor._from_value(Placed(out, Shard(kept), tuple(shape)))
        if p is not None and isinstance(p.placement, Shard) and axis is not None:   # along the sharded axis
            index = axis_rules.sharded_arg(fn, p, axis, keep)
            if index is not None:
                return Tensor._wrap(index)
        return Tensor._wrap(fn(self._data, axis=axis, keepdims=keep))

    def argmax(self, axis=None, keepdims=False, *, dim=None, keepdim=False, out=None):
        no_out(out, "argmax")
        return self._arg(B.argmax, "argmax", axis, keepdims, dim, keepdim)

    def argmin(self, axis=None, keepdims=False, *, dim=None, keepdim=False, out=None):
        no_out(out, "argmin")
        return self._arg(B.argmin, "argmin", axis, keepdims, dim, keepdim)

    def all(self, axis=None, keepdims=False, *, dim=None, keepdim=False, out=None):
        """Whether every element is true (non-zero): a 0-d bool tensor (``bool(x.all())`` and
        ``x.all().item()`` give a Python bool, as in torch), or a bool tensor over ``axis``; of a
        uint8 tensor, 0 or 1 in uint8, as torch's."""
        no_out(out, "all")
        axes, keep = normalize_axes(_pick(axis, dim), self.ndim, "all"), bool(keepdims or keepdim)
        if axes == ():
            result = self != 0    # torch's all over no dim: each element's truth (sum would take () as all)
        elif axes is None and not keep:
            result = Tensor._wrap(B.asarray(bool(B.all(self._data)), dtype=dtypes.bool_))
        else:
            result = ((self == 0).to(dtypes.int64).sum(axes, keepdims=keep)) == 0
        return result.to(dtypes.uint8) if self.dtype is dtypes.uint8 else result   # torch's any/all of uint8: uint8

    def any(self, axis=None, keepdims=False, *, dim=None, keepdim=False, out=None):
        """Whether some element is true (non-zero): a 0-d bool tensor, or a bool tensor over ``axis``."""
        no_out(out, "any")
        axes, keep = normalize_axes(_pick(axis, dim), self.ndim, "any"), bool(keepdims or keepdim)
        if axes == ():
            result = self != 0    # torch's any over no dim: each element's truth (sum would take () as all)
        elif axes is None and not keep:
            result = Tensor._wrap(B.asarray(bool(B.any(self._data)), dtype=dtypes.bool_))
        else:
            result = ((self != 0).to(dtypes.int64).sum(axes, keepdims=keep)) > 0
        return result.to(dtypes.uint8) if self.dtype is dtypes.uint8 else result


_TINY, _HUGE = 1.1754943508222875e-38, dtypes.FLOAT_MAX["float32"]     # float32's smallest normal and largest


def _lost_in_float32(var, x, axes, zeros):
    """Whether the float32 variance ``var`` of ``x`` over ``axes`` differs from torch's float64
    accumulation beyond rounding: a value that is not finite (overflowed squares; NaN from inf or
    NaN inputs too, whose rerun gives the same), or below float32's smallest normal (underflowed
    squares). An exact zero is a constant slice's (taken as is for var: torch's is at most a
    subnormal) unless ``zeros`` (std, whose root of a 1e-45 variance is 4e-23) and a slice whose
    variance is 0 holds two different values. Two reductions of the result (a third beside a zero);
    none on a GPU, where torch's kernels accumulate float32 in float32 as here."""
    d = var._data
    lost = False
    for a in (d.shards if type(d) is Placed else (d,)):     # numpy arrays or torch tensors
        if 0 in a.shape or getattr(a, "is_cuda", False):
            continue
        lo, hi = float(a.min()), float(a.max())     # the arrays' own methods: B's wrappers took 10 us more
        if lo >= _TINY and hi <= _HUGE:     # the common case (NaN fails both)
            continue
        if not hi <= _HUGE or lo != lo or lo > 0:
            return True
        if 0 < hi and (hi < _TINY or bool(((a > 0) & (a < _TINY)).any())):
            return True     # a subnormal beside a constant slice's zero
        lost = zeros
    if not lost:
        return False
    spread = (x.amax(axes or ()) - x.amin(axes or ())).reshape(var.shape)
    return bool(((var == 0) & (spread != 0)).any())
