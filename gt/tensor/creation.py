"""Tensor creation: from data, constants, ranges and random draws (float32 unless told otherwise)."""

import functools
import math
import operator

import numpy as np

from gt import backend, dtypes
from gt.autograd import function
from gt.backend import B, torch_ranges
from gt.sharding import layout
from gt.sharding.mesh import get_mesh
from gt.sharding.placement import Shard
from gt.tensor import hints
from gt.tensor.core import Tensor
from gt.tensor.device_methods import accepts_device
from gt.tensor.dtype_functions import promote_types
from gt.tensor.generator import accepts_generator, seed_of, with_seed
from gt.tensor.random_methods import check_random_range
from gt.tensor._args import _alias, _fill
from gt.tensor.inplace_math import complex_parts
from gt.tensor.int_scalars import checked_scalar
from gt.tensor.number_first import tensors_only
from gt.tensor.shape import _shape_args
from gt.tensor.wide_uints import refuse_dtype


def _new(arr, requires_grad, data=True):
    """A tensor of ``arr``. On a mesh of several devices, data (``data=True``, not requiring grad,
    axis 0 at least as long as the mesh) is sharded along axis 0; the rest is replicated. Inside
    a ``gt.signal.context`` whose hint names a layout, data takes that layout (hints.py)."""
    backend.mark_tensor_created()
    mesh = get_mesh()
    hint = hints.placement_hint() if data and not requires_grad else None
    if hint is not None and -arr.ndim <= hint.axis < arr.ndim:
        if hint.replicated or mesh.size == 1:
            return Tensor._wrap(arr)
        return Tensor._from_value(layout.shard(arr, hint.axis % arr.ndim))
    if data and mesh.size > 1 and not requires_grad and arr.ndim >= 1 and arr.shape[0] >= mesh.size:
        return Tensor._from_value(layout.shard(arr, 0))
    t = Tensor._wrap(arr)
    if requires_grad:
        t._set_requires_grad(True)
    return t


def _dims(shape):
    shape = _shape_args(shape)
    if any(s < 0 for s in shape):
        raise ValueError(f"negative dimension in shape {shape}")
    return shape


def _float(dtype):
    return dtypes.default_float if dtype is None else dtypes.to_dtype(dtype)


@accepts_device
def tensor(data, dtype=None, requires_grad=False):
    """A new tensor holding a copy of ``data`` (nested lists, numbers, numpy arrays, tensors).

    Python floats give float32; numpy arrays keep their dtype unless ``dtype`` says otherwise.
    """
    src = data._data if isinstance(data, Tensor) else data
    if type(src) in (list, tuple) and _holds_tensor(src):
        kinds = set()
        src = _as_scalars(src, kinds)
        if dtype is None:                  # torch's: the elements' dtypes promoted (a number's own kind)
            dtype = functools.reduce(promote_types, kinds)
    return _new(B.asarray(src, dtype=dtype, copy=True), requires_grad)


def _holds_tensor(seq):
    """Whether a (nested) list or tuple holds a tensor: one pass over each level's types."""
    kinds = set(map(type, seq))
    if any(issubclass(k, Tensor) for k in kinds):
        return True
    return (list in kinds or tuple in kinds) and any(_holds_tensor(x) for x in seq if type(x) in (list, tuple))


def _as_scalars(seq, kinds):
    """``seq`` with each tensor in it replaced by its one value, as torch reads tensors in a list
    (``gt.tensor([loss_a, loss_b])`` has shape (2,) whether the losses are 0-d or (1,)); the
    dtypes met go into ``kinds`` (a number's: bool, int64 or the default float)."""
    out = []
    for x in seq:
        if type(x) in (list, tuple):
            out.append(_as_scalars(x, kinds))
            continue
        if isinstance(x, Tensor):
            if x.numel() != 1:
                raise ValueError(f"only one element tensors can be converted to Python scalars: a tensor of shape "
                                 f"{tuple(x.shape)} in the data of gt.tensor (stack tensors with gt.stack)")
            kinds.add(x.dtype)
            x = x.item()
        else:
            kinds.add(dtypes.bool_ if isinstance(x, (bool, np.bool_)) else dtypes.int64 if isinstance(x, (int, np.integer))
                      else dtypes.default_float)
        out.append(x)
    return out


def from_dlpack(ext_tensor):
    """A tensor sharing memory with ``ext_tensor``, any CPU array with ``__dlpack__`` (numpy's, torch's,
    JAX's), as ``torch.from_dlpack``; read through numpy's DLPack import, so its dtype must be one
    gt holds (a GPU array is refused by numpy with its own error)."""
    if not hasattr(ext_tensor, "__dlpack__"):
        raise TypeError(f"from_dlpack expects an object with __dlpack__ (a numpy, torch or JAX array), got "
                        f"{type(ext_tensor).__name__}")
    return from_numpy(np.from_dlpack(ext_tensor))


def from_numpy(array, requires_grad=False):
    """A tensor sharing memory with the numpy array ``array`` (its dtype is kept)."""
    if type(array).__module__ != "numpy" or not hasattr(array, "dtype") or not hasattr(array, "shape"):
        raise TypeError(f"from_numpy expects a numpy.ndarray, got {type(array).__name__}")
    rec = function.profiling
    if rec is not None and rec.records_call():      # torch's event; the memory is the array's, not new
        return rec.call("aten::lift_fresh", False, from_numpy, (array, requires_grad), {})
    return _new(B.asarray(array), requires_grad)


@accepts_device
def zeros(*shape, dtype=None, requires_grad=False):
    return _new(B.zeros(_dims(shape), _float(dtype)), requires_grad)


@accepts_device
def ones(*shape, dtype=None, requires_grad=False):
    return _new(B.ones(_dims(shape), _float(dtype)), requires_grad)


@accepts_device
def empty(*shape, dtype=None, requires_grad=False):
    return _new(B.empty(_dims(shape), _float(dtype)), requires_grad)


@accepts_device
def full(size=None, fill_value=None, dtype=None, requires_grad=False, *, shape=None):
    """A tensor of ``size`` (``shape=``, the public gt's name) filled with ``fill_value``."""
    shape = _alias(size, shape, "full", "size", "shape")
    if shape is None or fill_value is None:
        raise TypeError("full() missing required arguments: size and fill_value")
    shape = (shape,) if isinstance(shape, int) else shape
    fill_value = _fill(fill_value)
    if dtype is None and isinstance(fill_value, bool):
        dtype = dtypes.bool_
    elif dtype is None and isinstance(fill_value, int):
        dtype = dtypes.int64
    elif dtype is None and isinstance(fill_value, complex):     # torch: the default float's complex kind
        dtype = dtypes.COMPLEX_OF[dtypes.default_float.name]
    dtype = _float(dtype)
    return _new(B.full(_dims(shape), checked_scalar(fill_value, dtype, "the fill value"), dtype), requires_grad)


def _like(t, arr, requires_grad):
    """A new tensor laid out over the mesh as ``t`` is (optimizer state follows its parameter)."""
    backend.mark_tensor_created()
    p = t._placed
    if p is not None and isinstance(p.placement, Shard):
        out = Tensor._from_value(layout.shard(arr, p.placement.axis, p.sizes))
    else:
        out = Tensor._wrap(arr)
    return out._set_requires_grad(True) if requires_grad else out


@accepts_device
def zeros_like(t, dtype=None, requires_grad=False):
    tensors_only("zeros_like", ("input", t))
    return _like(t, B.zeros(t.shape, _float(dtype or t.dtype)), requires_grad)


@accepts_device
def ones_like(t, dtype=None, requires_grad=False):
    tensors_only("ones_like", ("input", t))
    return _like(t, B.ones(t.shape, _float(dtype or t.dtype)), requires_grad)


@accepts_device
def full_like(t, fill_value, dtype=None, requires_grad=False):
    return _like(t, full(t.shape, fill_value, dtype=dtype or t.dtype).replicate()._array, requires_grad)


@accepts_device
def empty_like(t, dtype=None, requires_grad=False):
    return _like(t, B.empty(t.shape, _float(dtype or t.dtype)), requires_grad)


@accepts_device
@accepts_generator
def randn_like(t, dtype=None, requires_grad=False):
    """Standard normal samples shaped as ``t``, in ``t``'s float or complex dtype (torch refuses integer ones)."""
    if _float(dtype or t.dtype).is_complex:
        return _like(t, complex_parts(B.randn, t.shape, _float(dtype or t.dtype), math.sqrt(0.5)), requires_grad)
    return _like(t, B.randn(t.shape, _sampled_float(dtype or t.dtype, "normal_kernel_cpu")), requires_grad)


@accepts_device
@accepts_generator
def rand_like(t, dtype=None, requires_grad=False):
    """Uniform samples in [0, 1) shaped as ``t``, in ``t``'s float dtype (complex: both parts so)."""
    if _float(dtype or t.dtype).is_complex:
        return _like(t, complex_parts(B.rand, t.shape, _float(dtype or t.dtype), 1.0), requires_grad)
    return _like(t, B.rand(t.shape, _sampled_float(dtype or t.dtype, "check_uniform_bounds")), requires_grad)


@accepts_device
def arange(start=0, end=None, step=1, dtype=None, requires_grad=False, *, stop=None):
    """``[start, end)`` in steps of ``step``; int64 for int arguments, float32 otherwise. Each
    may be a number, a numpy scalar or a one-element tensor, as torch takes them (``stop=`` is
    the public gt's name of ``end``)."""
    stop = _alias(end, stop, "arange", "end", "stop")
    if stop is None:
        start, stop = 0, start
    start, stop, step = (_number(v, "arange") for v in (start, stop, step))
    if step == 0:
        raise ValueError("arange: step must not be zero")
    if not math.isfinite(float(step)):
        raise ValueError(f"arange: step must be a finite number, got {step}")
    if not all(math.isfinite(float(v)) for v in (start, stop)):
        raise RuntimeError(f"unsupported range: {start} -> {stop}")
    if (stop - start) * step < 0:
        raise RuntimeError("upper bound and lower bound inconsistent with step sign")
    if dtype is None:
        dtype = dtypes.int64 if all(isinstance(v, int) for v in (start, stop, step)) else dtypes.default_float
    dtype = dtypes.to_dtype(dtype)
    refuse_dtype("arange_cpu", dtype)
    return _new(B.arange(start, stop, step, dtype), requires_grad, data=False)


def _number(value, fn):
    """A Python number from a number, a numpy scalar or a one-element tensor (its item)."""
    if isinstance(value, (Tensor, np.generic)):
        value = value.item()
    if isinstance(value, bool):
        value = int(value)
    if not isinstance(value, (int, float)):
        raise TypeError(f"{fn}(): expected numbers (or one-element tensors), got {type(value).__name__} {value!r}")
    return value


@accepts_device
def linspace(start, end=None, steps=None, dtype=None, requires_grad=False, *, stop=None):
    """``steps`` values from ``start`` to ``stop`` (both included), evenly spaced, float32 unless
    ``dtype`` says otherwise: torch's CPU values to the bit (gt/backend/torch_ranges.py)."""
    stop = _alias(end, stop, "linspace", "end", "stop")
    if stop is None or steps is None:
        raise TypeError("linspace() missing required arguments: end and steps (linspace(start, end, steps))")
    if isinstance(steps, bool) or not hasattr(steps, "__index__") or int(steps) < 0:
        raise ValueError(f"linspace: steps must be a non-negative int, got {steps!r}")
    dtype = range_dtype(dtype, (start, stop), "linspace")
    refuse_dtype("linspace_cpu", dtype)
    values = torch_ranges.linspace(start, stop, int(steps), dtype.name)
    return _new(B.astype(B.asarray(values), dtype), requires_grad, data=False)


def range_dtype(dtype, ends, fn):
    """``linspace``/``logspace``'s dtype: the default float's, its complex counterpart for a complex
    end, and torch's error for a complex end with a real ``dtype``."""
    complex_end = any(isinstance(v, complex) or (isinstance(v, Tensor) and v.dtype.is_complex) for v in ends)
    if dtype is None:
        return dtypes.COMPLEX_OF[dtypes.default_float.name] if complex_end else dtypes.default_float
    dtype = dtypes.to_dtype(dtype)
    if complex_end and not dtype.is_complex:
        raise RuntimeError(f"torch.{fn}(): inferred dtype complex can't be safely cast to passed dtype {dtype}")
    return dtype


@accepts_device
def eye(n, m=None, dtype=None, requires_grad=False):
    m = n if m is None else m
    arr = B.zeros((n, m), _float(dtype))
    idx = B.arange(0, min(n, m), 1, dtypes.int64)
    arr[idx, idx] = 1
    return _new(arr, requires_grad, data=False)


last_seed = None   # the seed of the last manual_seed call (gt.initial_seed)


def manual_seed(seed):
    """Seed gt's random generator: the same seed gives the same ``randn``/``rand``/dropout draws."""
    global last_seed
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"manual_seed: seed must be a non-negative int, got {seed!r}")
    B.manual_seed(seed)
    last_seed = seed


def get_rng_state():
    """The state of gt's random generator as a JSON-serialisable dict (torch's name).

    Save it with a checkpoint; ``set_rng_state`` on it makes the following ``randn``/``rand``/
    dropout/init draws the same as they would have been.

        >>> state = gt.get_rng_state(); a = gt.randn(3)
        >>> gt.set_rng_state(state); bool((gt.randn(3) == a).all())
        True
    """
    return with_seed(B.get_rng_state(), last_seed)


def set_rng_state(state):
    """Restore gt's random generator from a ``get_rng_state()`` dict; ValueError if it is not one.
    ``gt.initial_seed()`` then gives the seed the state was drawn from, as torch's."""
    global last_seed
    B.set_rng_state(state)
    last_seed = seed_of(state, last_seed)


@accepts_device
@accepts_generator
def randn(*shape, size=None, dtype=None, requires_grad=False):
    """Standard normal samples of the given shape (float32 by default; ``size=`` as torch's). A
    complex dtype draws each part with variance 1/2 (torch's: ``E|z|**2`` is 1)."""
    dims, dt = _dims(_sized(shape, size, "randn")), _float(dtype)
    if dt.is_complex:
        return _new(complex_parts(B.randn, dims, dt, math.sqrt(0.5)), requires_grad)
    return _new(B.randn(dims, _sampled_float(dtype, "normal_kernel_cpu")), requires_grad)


@accepts_device
@accepts_generator
def rand(*shape, size=None, dtype=None, requires_grad=False):
    """Uniform samples in [0, 1) of the given shape (float32 by default; ``size=`` as torch's); a
    complex dtype draws both parts so."""
    dt = _float(dtype)
    if dt.is_complex:
        return _new(complex_parts(B.rand, _dims(_sized(shape, size, "rand")), dt, 1.0), requires_grad)
    return _new(B.rand(_dims(_sized(shape, size, "rand")), _sampled_float(dtype, "check_uniform_bounds")), requires_grad)


def _sized(shape, size, who):
    """The shape given as positional sizes or as torch's ``size=`` keyword (not both)."""
    if size is None:
        return shape
    if shape:
        raise TypeError(f"{who}() got multiple values for argument 'size'")
    return (size,) if isinstance(size, int) else tuple(size)


def _sampled_float(dtype, kernel):
    """The float dtype to draw in; torch's NotImplementedError (naming its ``kernel``) for others."""
    dt = _float(dtype)
    if not dt.is_floating_point:
        raise NotImplementedError(f'"{kernel}" not implemented for \'{dtypes.torch_type_name(dt.name)}\'')
    return dt


@accepts_device
@accepts_generator
def randint(low=0, high=None, size=None, dtype=None, requires_grad=False):
    """Random integers in ``[low, high)`` (int64 unless ``dtype`` says otherwise);
    ``randint(high, size)`` draws from ``[0, high)``, as torch's. ``low``/``high`` must fit
    ``dtype`` (torch's "out of bounds" RuntimeError)."""
    if isinstance(high, (tuple, list)) and size is None:      # torch's randint(high, size)
        low, high, size = 0, low, high
    elif high is None and size is not None:                    # randint(high, size=...)
        low, high = 0, low
    if high is None or size is None:
        raise TypeError("randint() received an invalid combination of arguments: expected (high, size) "
                        "or (low, high, size)")
    low, high = _int_arg(low, "randint", "low"), _int_arg(high, "randint", "high")
    for v in (low, high):
        if not -2 ** 63 <= v < 2 ** 63:
            raise ValueError("Overflow when unpacking long long")
    if high <= low:
        raise RuntimeError(f"random_ expects 'from' to be less than 'to', but got from={low} >= to={high}")
    dt = dtypes.int64 if dtype is None else dtypes.to_dtype(dtype)
    check_random_range(low, high - 1, dt)
    if requires_grad and not dt.differentiable:
        raise RuntimeError("Only Tensors of floating point and complex dtype can require gradients")
    arr = B.randint(low, high, _dims(size))
    return _new(arr if dt == dtypes.int64 else B.astype(arr, dt), requires_grad)


@accepts_device
@accepts_generator
def randperm(n, dtype=None, requires_grad=False):
    """A random permutation of ``0 .. n-1`` (int64 unless ``dtype`` says otherwise)."""
    n = _int_arg(n, "randperm", "n")
    if n < 0:
        raise RuntimeError(f"Trying to create tensor with negative dimension {n}: [{n}]")
    dt = dtypes.int64 if dtype is None else dtypes.to_dtype(dtype)
    if dt == dtypes.bool_:
        raise NotImplementedError("\"randperm\" not implemented for 'Bool'")
    if dt == dtypes.float16 and n > 2049:
        raise RuntimeError("n cannot be greater than 2049 for Half type.")
    if requires_grad and not dt.differentiable:
        raise RuntimeError("Only Tensors of floating point and complex dtype can require gradients")
    return _new(B.astype(B.permutation(n), dt), requires_grad)


def _int_arg(v, who, name):
    """``v`` as a Python int (ints, numpy ints, one-element int tensors); torch's TypeError otherwise."""
    if isinstance(v, (bool, float)):
        raise TypeError(f"{who}(): argument '{name}' must be int, not {type(v).__name__}")
    try:
        return operator.index(v)
    except TypeError:
        raise TypeError(f"{who}(): argument '{name}' must be int, not {type(v).__name__}") from None
