"""The ops of a jagged nested tensor (gt/nested/jagged_tensor.py), each applied to its ``values`` as gt
ops: elementwise ops, binary ops with a number, a dense tensor or a nested tensor of the same
structure, the reductions torch 2.13 allows (``sum``/``mean``/``amax``/``amin``), ``softmax``/
``log_softmax``, ``transpose``, ``view``/``reshape``, ``chunk``, ``unsqueeze``/``squeeze``, ``to``.
Installed on ``NestedTensor`` by ``install()``; everything else of ``Tensor`` raises
NotImplementedError naming the op (``refuse_the_rest``)."""

from gt.nested.jagged_tensor import NestedBase, NestedTensor, shape_text
from gt import dtypes
from gt.tensor import Tensor, arange, cat, where
from gt.tensor.runtime import finfo, iinfo

UNARY = ("exp", "exp2", "expm1", "log", "log2", "log10", "log1p", "sin", "cos", "tan", "asin", "acos", "atan",
         "sinh", "cosh", "tanh", "asinh", "acosh", "atanh", "sigmoid", "relu", "gelu", "neg", "negative", "abs",
         "absolute", "sqrt", "rsqrt", "square", "sign", "sgn", "floor", "ceil", "round", "trunc", "frac",
         "reciprocal", "erf", "erfc", "erfinv", "logit", "nan_to_num", "clamp", "clip", "clamp_min", "clamp_max",
         "isnan", "isinf", "isfinite", "logical_not", "float", "double", "half", "bfloat16", "long", "int", "bool",
         "sinc", "deg2rad", "rad2deg", "positive", "__neg__", "__abs__", "__invert__", "cpu", "lgamma", "digamma",
         "signbit")
BINARY = ("add", "sub", "subtract", "mul", "multiply", "div", "divide", "true_divide", "pow", "maximum", "minimum",
          "eq", "ne", "lt", "le", "gt", "ge", "atan2", "fmod", "remainder", "logical_and", "logical_or",
          "__add__", "__sub__", "__mul__", "__truediv__", "__pow__", "__eq__", "__ne__", "__lt__", "__le__",
          "__gt__", "__ge__", "__and__", "__or__", "__mod__")
REFLECTED = ("__radd__", "__rsub__", "__rmul__", "__rtruediv__", "__rpow__", "__rand__", "__ror__", "__rmod__")
# (floor division is refused, as torch 2.13's: jagged_extra.py REFUSED)


def _unary(name):
    def method(self, *args, **kwargs):
        if any(isinstance(a, Tensor) for a in (*args, *kwargs.values())):
            raise NotImplementedError(f"aten.{name}.Tensor: a tensor argument is not supported with a jagged "
                                      "NestedTensor in gt (numbers only)")
        values = getattr(self._nt_values, name)(*args, **kwargs)
        return self if values is self._nt_values else self._like(values)     # float() of float32: itself

    method.__name__ = name
    method.__doc__ = f"``{name}`` of every element (of ``values``), a nested tensor of the same structure."
    return method


# the binary methods that take only a tensor (a number: torch's TypeError), with the argument's name
TENSOR_OTHER = {**dict.fromkeys(("maximum", "minimum", "logical_and", "logical_or", "logical_xor", "atan2", "arctan2",
                                 "hypot", "fmax", "fmin", "nextafter", "logaddexp", "logaddexp2", "ldexp", "igamma",
                                 "igammac", "gcd", "lcm", "isclose", "allclose", "equal"), "other"), "heaviside": "values"}


def tensor_other(name, args):
    """torch's TypeError where ``name`` takes only a tensor and ``args[0]`` is a number."""
    if name in TENSOR_OTHER and args and not isinstance(args[0], Tensor):
        raise TypeError(f"{name}(): argument '{TENSOR_OTHER[name]}' (position 1) must be Tensor, not "
                        f"{type(args[0]).__name__}")


def _binary(name):
    def method(self, other, *args, **kwargs):
        tensor_other(name, (other,))
        return self._like(getattr(self._nt_values, name)(_operand(self, other, name.strip("_")), *args, **kwargs))

    method.__name__ = name
    method.__doc__ = (f"``{name}`` with a number, a dense tensor (broadcast over the trailing dims, or with the "
                      "batch dim and 1 at the ragged dim) or a nested tensor of the same structure.")
    return method


def _mismatch(self, other, name):
    return RuntimeError(f"cannot call binary pointwise function {name} with inputs of shapes "
                        f"{shape_text(self)} and {shape_text(other)}")


def _operand(self, other, name):
    """What ``values`` combine with: a number, a dense tensor broadcast against ``values`` (one with
    the batch dim: each sequence's row gathered over its length), or the values of a nested
    tensor of the same structure; torch's error otherwise."""
    if isinstance(other, NestedBase):
        if (other.layout != self.layout or other._nt_jint is not self._nt_jint
                or other._nt_ragged != self._nt_ragged or other.dim() != self.dim()):
            raise _mismatch(self, other, f"{name}.Tensor")
        return other._nt_values
    if not isinstance(other, Tensor):
        return other
    r, nd = self._nt_ragged, self.dim()
    if other.ndim < nd:          # aligned on the trailing dims: the ragged dim must be 1 if covered
        if other.ndim >= nd - r and other.shape[other.ndim - (nd - r)] != 1:
            raise _mismatch(self, other, f"{name}.Tensor")
        return other
    if other.ndim > nd or other.shape[r] != 1 or other.shape[0] not in (1, self.shape[0]):
        raise _mismatch(self, other, f"{name}.Tensor")
    if other.shape[0] == 1:
        return other.squeeze(0)
    # each sequence's row of the dense tensor, repeated over its length: one gather, no loop
    return other.squeeze(r).index_select(0, self._batch_ids()).movedim(0, r - 1)


def _dims(self, dim, name):
    nd = self.dim()
    dims = (dim,) if isinstance(dim, int) else tuple(dim)
    out = []
    for d in dims:
        if not -nd <= d < nd:
            raise IndexError(f"{name}(): Dimension out of range (expected to be in range of [{-nd}, {nd - 1}], "
                             f"but got {d})")
        out.append(d % nd)
    return sorted(set(out))


def _reduce(name):
    def method(self, dim=None, keepdim=False, *, dtype=None):
        kwargs = {} if dtype is None else {"dtype": dtype}
        values, r = self._nt_values, self._nt_ragged
        if dim is None:
            return _whole(self, name, keepdim, getattr(values, name)(**kwargs))
        if name == "prod" and not isinstance(dim, int):
            raise _int_dim(name, dim)
        dims = _dims(self, dim, name)
        inner = [d - 1 for d in dims if d not in (0, r)]
        if 0 in dims and r not in dims:
            raise RuntimeError(f"{name}(): reducing along the batch dimension but not the ragged dimension is "
                               "not supported for nested tensors")
        if 0 in dims:           # batch and ragged: the values reduced over the ragged dim too
            if self._nt_lengths is not None:        # the holes are rows of values too
                raise RuntimeError(f"{name}(): reducing across the ragged dimension is not supported for "
                                   "non-contiguous nested tensors with holes")
            out = getattr(values, name)(dim=tuple(inner + [r - 1]), keepdim=keepdim, **kwargs)
            return out.unsqueeze(0) if keepdim else out
        if r in dims:
            if inner and name == "mean":
                raise AssertionError("Cannot reduce on both ragged and non-batch dimensions without also reducing "
                                     "on batch")
            if inner:
                raise RuntimeError(f"{name}(): reducing along a ragged and non-batch dimension is not supported "
                                   "for nested tensors")
            return _over_ragged(self, name, keepdim, kwargs)
        return self._like(getattr(values, name)(dim=tuple(inner), keepdim=keepdim, **kwargs),
                          r if keepdim else r - sum(1 for d in dims if d < r))

    method.__name__ = name
    method.__doc__ = (f"``{name}`` over dims that are not the batch or ragged dim (a nested tensor), over the "
                      "ragged dim (a dense (B, ...) tensor), or over both the batch and ragged dims (dense), "
                      "as torch 2.13.")
    return method


def _int_dim(name, dim):
    return TypeError(f"{name}(): argument 'dim' (position 1) must be int, not {type(dim).__name__}")


def _whole(self, name, keepdim, out):
    """The reduction ``out`` of every element: with ``keepdim`` (1, ..., 1) as torch's ``amax``/
    ``any``/``argmax``/...; torch's ``sum``/``mean``/``prod``/``max``/``min`` take no ``keepdim``
    without ``dim``."""
    if not keepdim:
        return out
    if name in ("sum", "mean", "prod", "max", "min"):
        raise TypeError(f"{name}() received an invalid combination of arguments - got (keepdim=bool, ), but "
                        "expected dim= with keepdim=")
    return out.reshape((1,) * self.dim())


EXTREMES = ("amax", "amin", "max", "min", "argmax", "argmin")


def empty_extreme(part, axis, name):
    """torch's extremum over an empty sequence (its segment reduction's start): the dtype's lowest
    value for a max, its highest for a min, index 0 for an arg; ``axis`` kept, of length 1."""
    shape = list(part.shape)
    shape[axis] = 1
    if name.startswith("arg"):
        return part.new_zeros(shape, dtype=dtypes.int64)
    info = finfo(part.dtype) if part.dtype.is_floating_point else iinfo(part.dtype)
    return part.new_full(shape, info.min if name.endswith("max") else info.max)


def _over_ragged(self, name, keepdim, kwargs):
    """A dense (B, ...) tensor: each sequence reduced over its length."""
    if self._nt_lengths is not None:
        raise RuntimeError(f"{name}(): reducing across the ragged dimension is not supported for non-contiguous "
                           "nested tensors with holes")
    axis = self._nt_ragged - 1
    if name not in ("sum", "mean"):
        parts = [getattr(part, name)(dim=axis, keepdim=True, **kwargs) if part.shape[axis] or name not in EXTREMES
                 else empty_extreme(part, axis, name) for part in self.unbind()]
        out = cat(parts, axis).movedim(axis, 0)
        return out.unsqueeze(self._nt_ragged) if keepdim else out
    values = self._nt_values.movedim(axis, 0)          # (total, other dims): one index_add, no loop
    if "dtype" in kwargs:
        values = values.to(kwargs["dtype"])
    elif not values.dtype.is_floating_point and not values.dtype.is_complex:
        values = values.long()      # torch's sum of ints and bools: int64 (mean of ints raises below)
    if name == "mean" and not (values.dtype.is_floating_point or values.dtype.is_complex):
        raise RuntimeError(f"mean(): could not infer output dtype. Input dtype must be either a floating point "
                           f"or complex dtype. Got: {self.dtype}")
    out = values.new_zeros((self.shape[0], *values.shape[1:])).index_add(0, self._batch_ids(), values)
    if name == "mean":
        out = out / self._seq_lengths().to(out.dtype).reshape(-1, *([1] * (out.ndim - 1)))
    return out.unsqueeze(self._nt_ragged) if keepdim else out


def _softmax(name):
    def method(self, axis=None, dtype=None, *, dim=None):
        dim = axis if dim is None else dim
        if dim is None:
            raise TypeError(f"{name}(): a nested tensor needs dim=")
        d = _dims(self, dim, name)[0]
        if d == 0:
            raise RuntimeError(f"{name}(): not supported when reducing across the batch dimension for NestedTensor")
        if d != self._nt_ragged:
            return self._like(getattr(self._nt_values, name)(d - 1, dtype), transposed=False)
        if self._nt_lengths is not None:
            raise RuntimeError(f"{name}(): not supported where lengths is not None if reducing across the ragged "
                               "dimension for NestedTensor")
        self._require_packed()      # the result is packed: on offsets that cover values from row 0
        return self._like(cat([getattr(part, name)(d - 1, dtype) for part in self.unbind()], d - 1), transposed=False)

    method.__name__ = name
    method.__doc__ = f"``{name}`` along ``dim`` (not the batch dim); a nested tensor of the same structure."
    return method


def transpose(self, dim0, dim1):
    """Two dims swapped; the ragged dim may move (not the batch dim), as torch's."""
    d0, d1 = (_dims(self, d, "transpose")[0] for d in (dim0, dim1))
    if 0 in (d0, d1):
        if self._nt_ragged in (d0, d1):
            raise ValueError("Transpose is not supported on the batch dimension for jagged NT")
        raise RuntimeError("transpose(): not supported for NestedTensor on dim=0")
    if d0 == d1:
        return self._like(self._nt_values)
    r = self._nt_ragged
    r = d1 if r == d0 else d0 if r == d1 else r
    values = self._nt_values.transpose(d0 - 1, d1 - 1)
    return self._like(values, r, view_transposed(self, values, flip=True))


def view_transposed(self, values, flip=False):
    """``_nt_transposed`` of a view ``values`` of this one's values: torch's contiguity rule (a
    dense tensor's: dims of size 1 do not count) read off ``values`` where gt lays them out as
    torch (this one's flag says what its values say), else this one's flag (``flip``: negated,
    a transpose of values gt made in another layout than torch, as attention's output)."""
    if self._nt_transposed == (not self._nt_values.is_contiguous()):
        return not values.is_contiguous()
    return self._nt_transposed != flip


def _view(name):
    def method(self, *shape):
        shape = tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
        r, size = self._nt_ragged, self.shape
        keeps = (len(shape) > r and shape[0] in (-1, size[0]) and shape[r] in (-1, size[r]))
        if r != 1:
            if tuple(shape) != size:
                raise RuntimeError(f"{name}(): does not support ragged_idx != 1 except when inp._size == size. "
                                   f"inp._size is ({shape_text(self)}) and size is ({list(shape)}).")
            return self._like(self._nt_values)
        if not keeps or any(s is size[r] for s in shape[r + 1:]) or -1 in shape[r + 1:]:
            raise RuntimeError(f"{name}(): cannot view shape {shape_text(self)} as {list(shape)}: the batch and "
                               "ragged dims must stay in place (-1 or their sizes)")
        # reshape packs the values (torch's copy of a transposed view); view keeps them
        values = getattr(self._nt_values, name)(-1, *shape[r + 1:])
        return self._like(values, transposed=None if name == "view" else False)

    method.__name__ = name
    method.__doc__ = (f"``{name}`` that keeps the batch and ragged dims (pass -1 or their sizes there) and "
                      "reshapes the dims after them.")
    return method


def chunk(self, chunks, dim=0):
    """``chunks`` pieces along a dim after the ragged one (nested tensors sharing its offsets), or
    along the batch dim (nested tensors of their own offsets), as torch's."""
    d = _dims(self, dim, "chunk")[0]
    if self._nt_lengths is not None or self._nt_ragged != 1:       # torch's "jt": a transposed view is fine
        raise ValueError("NestedTensor chunk_default(self: jt, chunks: any, dim: any?): expected self to be a "
                         "contiguous jagged layout NestedTensor")
    if d == self._nt_ragged:
        raise RuntimeError("chunk(): not supported for NestedTensor on ragged dim")
    if d:
        return tuple(self._like(v) for v in self._nt_values.chunk(chunks, d - 1))
    b = self.shape[0]
    step = -(-b // chunks)
    offsets = self._host()[0]
    out = []
    for start in range(0, b, step):
        stop = min(start + step, b)
        part = self._nt_offsets[start:stop + 1]
        values = self._nt_values.narrow(self._nt_ragged - 1, offsets[start], offsets[stop] - offsets[start])
        out.append(NestedTensor._make(values, part - part[0], None, self._nt_ragged))
    return tuple(out)


def unsqueeze(self, dim):
    """A dim of size 1 inserted after the batch dim (not before it)."""
    nd = self.dim() + 1
    d = dim % nd if -nd <= dim < nd else _dims(self, dim, "unsqueeze")[0]
    if d == 0:
        raise RuntimeError("unsqueeze(): not supported for NestedTensor on dim=0")
    r = self._nt_ragged + (1 if d <= self._nt_ragged else 0)
    return self._like(self._nt_values.unsqueeze(d - 1), r)


def squeeze(self, dim=None):
    """The dim ``dim`` (of size 1; not the batch or ragged dim) removed."""
    if dim is None or not isinstance(dim, int):
        raise NotImplementedError("aten.squeeze.default" if dim is None else "aten.squeeze.dims")
    d = _dims(self, dim, "squeeze")[0]
    if d in (0, self._nt_ragged):
        raise RuntimeError("squeeze(): not supported for NestedTensor on the batch or ragged dim")
    return self._like(self._nt_values.squeeze(d - 1), self._nt_ragged - (1 if d < self._nt_ragged else 0))


def to(self, *args, **kwargs):
    """``values`` (and the offsets, for a device) moved or cast: ``Tensor.to``'s arguments."""
    values = self._nt_values.to(*args, **kwargs)
    if values is self._nt_values:
        return self
    if values.device == self._nt_values.device:
        return self._like(values)
    lengths = None if self._nt_lengths is None else self._nt_lengths.to(values.device)
    return NestedTensor._make(values, self._nt_offsets.to(values.device), lengths, self._nt_ragged, self._nt_jint,
                              meta=self._nt_meta or None)


def install():
    """The methods above on ``NestedTensor``."""
    methods = {name: _unary(name) for name in UNARY}
    methods.update({name: _binary(name) for name in (*BINARY, *REFLECTED)})
    methods.update({name: _reduce(name) for name in ("sum", "mean", "amax", "amin", "prod")})
    methods.update({name: _softmax(name) for name in ("softmax", "log_softmax")})
    methods.update(transpose=transpose, view=_view("view"), reshape=_view("reshape"), chunk=chunk,
                   unsqueeze=unsqueeze, squeeze=squeeze, to=to)
    methods["__matmul__"] = methods["matmul"] = _matmul
    methods["__rmatmul__"] = _rmatmul
    # what a dense tensor's binary op calls where a nested tensor is its right operand (gt/tensor/arithmetic.py)
    methods.update(__rdiv__=methods["__rtruediv__"], __rmaximum__=methods["maximum"], __rminimum__=methods["minimum"])
    methods["to_padded_tensor"] = to_padded_tensor
    for name, method in methods.items():
        setattr(NestedTensor, name, method)


def _matmul(self, other):
    """``self @ other`` with one of them nested, as torch 2.13's: (B, j, ..., D) @ (D, E) on the values;
    (B, j, D) @ (B, D, E) and (B, D, E) @ (B, E, j) through the padded form (each sequence's rows
    padded with zeros, multiplied, the padding dropped); two nested tensors of the same raggedness
    with more than 3 dims on the values; (B, D, j) @ (B, j, E) over each sequence's rows (a dense
    (B, D, E) result)."""
    if not isinstance(self, NestedBase):
        return _rmatmul(other, self)
    r, nd = self._nt_ragged, self.dim()
    if not isinstance(other, Tensor):
        pass
    elif not isinstance(other, NestedBase) and r < nd - 1:
        if other.ndim == 2 and nd > 2:
            return self._like(self._nt_values @ other)
        if other.ndim == nd >= 3:
            return _from_padded(self, to_padded_tensor(self, 0.0) @ other)
    elif isinstance(other, NestedTensor) and other._nt_jint is self._nt_jint:
        if nd > 3 and other.dim() > 3 and other._nt_ragged == r:
            return self._like(self._nt_values @ other._nt_values)
        if nd == other.dim() == 3 and r == 2 and other._nt_ragged == 1:     # the ragged dim contracted: dense
            return to_padded_tensor(self, 0.0) @ to_padded_tensor(other, 0.0)
    raise RuntimeError(f"matmul(): not supported between inputs of shapes {shape_text(self)} and "
                       f"{shape_text(other) if isinstance(other, NestedBase) else getattr(other, 'shape', other)}")


def _rmatmul(self, other):
    """``other @ self``: a dense (B, D, E) times a nested (B, E, j) (the ragged dim last)."""
    if isinstance(other, Tensor) and other.ndim == self.dim() >= 3 and self._nt_ragged == self.dim() - 1:
        return _from_padded(self, other @ to_padded_tensor(self, 0.0))
    raise RuntimeError(f"matmul(): not supported between inputs of shapes "
                       f"{getattr(other, 'shape', type(other).__name__)} and {shape_text(self)}")


def _from_padded(self, padded):
    """A nested tensor of ``self``'s structure from a dense (B, ..., max length, ...) one (the
    ragged dim where ``self``'s is): each sequence's rows gathered, the padding dropped."""
    r, b = self._nt_ragged, self.shape[0]
    rows = padded.movedim(r, 1)
    longest = rows.shape[1]
    ids = self._batch_ids()
    index = ids * longest + arange(ids.shape[0]).to(ids.device) - self._nt_offsets.index_select(0, ids)
    values = rows.reshape(b * longest, *rows.shape[2:]).index_select(0, index)
    return self._like(values.movedim(0, r - 1), transposed=False)


def to_padded_tensor(self, padding, output_size=None):
    """A dense (B, ..., max length, ...) tensor: each sequence, then ``padding``. ``output_size``
    (all dims) sets the length: longer, or shorter (the sequences are cut); torch 2.13 takes only
    its ragged dim, so does gt. One gather of ``values`` with a padding row: differentiable, no
    per-element loop."""
    if self._nt_lengths is not None:
        raise RuntimeError("to_padded_tensor(): not supported for nested tensors with holes")
    r, b = self._nt_ragged, self.shape[0]
    lengths = self._host()[1]
    values = self._nt_values.movedim(r - 1, 0)                     # (total, other dims)
    longest = max(lengths, default=0)
    if output_size is not None:
        output_size = tuple(output_size)
        if len(output_size) != self.dim():
            raise RuntimeError(f"to_padded_tensor(): output_size {list(output_size)} must have {self.dim()} dims")
        longest = output_size[r]
    steps = arange(longest).to(values.device).unsqueeze(0)
    index = where(steps < self._seq_lengths().unsqueeze(1), self._nt_offsets[:-1].unsqueeze(1) + steps, values.shape[0])
    fill = values.new_full((1, *values.shape[1:]), padding)
    out = cat([values, fill], 0).index_select(0, index.reshape(-1))
    out = out.reshape(b, longest, *values.shape[1:]).movedim(1, r)
    return out
