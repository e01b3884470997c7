"""torch's remaining tensor methods: questions, forms of existing ops and the nan-reductions.

- questions: ``is_floating_point``, ``is_complex``, ``is_signed``, ``is_nonzero``, ``is_same_size``,
  ``storage_offset``;
- forms of existing ops: ``where`` (``x.where(cond, y)``), ``positive``, ``ravel``, ``unflatten``,
  ``hsplit``/``vsplit``/``dsplit``, ``split_with_sizes``, the ``unsafe_`` splits, ``narrow_copy``,
  ``mH``/``H``/``adjoint``, ``ger``, ``vdot``, ``cross``;
- ``nansum``/``nanmean`` (NaN counted as absent; their gradient is 0 at NaN positions, as torch's);
- the writes, the in-place shape changes and ``apply_``/``map_``/``resize_``...: write_methods.py.

Everything is composed from gt's differentiable ops (indexing, ``index_copy``, ``index_add``,
``scatter_reduce``, ``where``, ``sum``), so gradients, sharding and both engines come from them.

Mixed into ``gt.Tensor``; ``Tensor`` below is bound by gt/tensor/core.py once the class exists.
"""

import warnings

from gt import autograd, dtypes
from gt.backend import B
from gt.ops import shape as shape_ops
from gt.ops._shapes import broadcast_shape, normalize_axis, numel
from gt.tensor._args import _alias
from gt.tensor.arithmetic import _operand, where
from gt.tensor.construct_methods import _arange
from gt.tensor.shape import _named, torch_node_name

Tensor = None  # gt.Tensor, bound by gt/tensor/core.py



def _tensor_operand(value, op, name):
    value = _operand(value, op)
    if not isinstance(value, Tensor):
        raise TypeError(f"{op}(): argument '{name}' must be Tensor, not {type(value).__name__}")
    return value


def _int(value, op, name):
    if isinstance(value, bool) or not hasattr(value, "__index__"):
        raise TypeError(f"{op}(): argument '{name}' must be int, not {type(value).__name__} ({value!r})")
    return value.__index__()


def _split_sizes(sizes, total, dim, op):
    sizes = [_int(s, op, "split_sizes") for s in sizes]
    if any(s < 0 for s in sizes):
        raise RuntimeError(f"{op}: split_sizes must be non-negative, got {sizes}")
    if sum(sizes) != total:
        raise RuntimeError(f"{op} expects split_sizes to sum exactly to {total} (input tensor's size at dimension "
                           f"{dim}), but got split_sizes={sizes}")
    return sizes


def _slices(x, dim, sizes):
    return x._pieces(sizes, dim, "SplitWithSizesBackward0")


def _unsafe(pieces):
    """``pieces`` named as torch's ``unsafe_`` form of the op names them (``UnsafeSplitBackward0``)."""
    return tuple(_named(p, None, "Unsafe" + p.grad_fn.name()) if p.grad_fn is not None else p for p in pieces)


def _cross_dim(x, dim):
    """torch's dim of ``cross``: given, or (deprecated) the first of size 3 of ``x``, with torch's warning."""
    if dim is not None:
        return dim
    warnings.warn("Using gt.cross without specifying the dim arg is deprecated (as torch.cross).\nPlease either "
                  "pass the dim explicitly or simply use gt.linalg.cross.\nThe default value of dim will change to "
                  "agree with that of linalg.cross in a future release.", UserWarning, stacklevel=3)
    for axis, n in enumerate(x.shape):
        if n == 3:
            return axis
    raise RuntimeError("no dimension of size 3 in input")


def _positions(x):
    """The flat positions of ``x`` (shape ``x.shape``) as an int64 tensor."""
    return _arange(numel(x.shape)).reshape(x.shape)


class RemainingMethods:
    __slots__ = ()

    # ---- questions -----------------------------------------------------------------------
    def is_floating_point(self):
        """Whether the dtype is a floating point one (float16, bfloat16, float32, float64)."""
        return self.dtype.is_floating_point

    def is_complex(self):
        """Whether the dtype is complex (``gt.complex64``, ``gt.complex128``)."""
        return self.dtype.is_complex

    def is_signed(self):
        """Whether the dtype is signed: every gt dtype but bool and uint8."""
        return self.dtype.is_signed

    def is_nonzero(self):
        """Whether the one element is non-zero (NaN counts as non-zero); RuntimeError for a
        tensor of zero or several elements, as torch's."""
        n = self.numel()
        if n == 0:
            raise RuntimeError("Boolean value of Tensor with no values is ambiguous")
        if n > 1:
            raise RuntimeError("Boolean value of Tensor with more than one value is ambiguous")
        value = self.item()
        return value != 0 or value != value

    def is_same_size(self, other):
        """Whether ``other`` has this tensor's shape."""
        return self.shape == _tensor_operand(other, "is_same_size", "other").shape

    def storage_offset(self):
        """Where this tensor's first element lies in the memory it shares with the tensors it
        is a view of, in elements (``x[2:].storage_offset()`` is 2). 0 for a tensor that owns its
        memory and for a sharded tensor (where gt does not track it); an empty slice's is where
        it starts, as torch's (past the memory's end too: ``zeros(4, 6)[5:5, 2]``'s is 26)."""
        offset = B.element_offset(self._array) if self._placed is None else None
        return 0 if offset is None else max(offset, 0)

    # ---- forms of existing ops ---------------------------------------------------------------
    def where(self, condition, other=None, *, y=None):
        """``gt.where(condition, self, other)``: this tensor where ``condition`` holds, else ``other``
        (``y=``: the public gt's name)."""
        return where(condition, self, _alias(other, y, "where", "other", "y", required=True))

    def positive(self):
        """This tensor itself (``+x``); bool tensors are refused, as torch's."""
        if self.dtype == dtypes.bool_:
            raise RuntimeError("The `+` operator, on a bool tensor is not supported.")
        return self

    def ravel(self):
        """The elements as a 1-D tensor (``reshape(-1)``: a view where possible)."""
        return self.reshape(-1)

    def unflatten(self, dim, sizes):
        """Axis ``dim`` split into the axes ``sizes`` (one may be -1), their product its size:
        ``(2, 12).unflatten(1, (3, -1))`` is ``(2, 3, 4)``."""
        dim = normalize_axis(dim, self.ndim, "unflatten")
        sizes = [_int(s, "unflatten", "sizes") for s in sizes]
        if not sizes:
            raise RuntimeError("unflatten: sizes must be non-empty")
        n = self.shape[dim]
        if sizes.count(-1) > 1:
            raise RuntimeError("unflatten: only one dimension can be inferred")
        if -1 in sizes:
            known = numel(s for s in sizes if s != -1)
            if known == 0 or n % known:
                raise RuntimeError(f"unflatten: Provided sizes {sizes} don't multiply up to the size of dim {dim} "
                                   f"({n}) in the input tensor")
            sizes = [n // known if s == -1 else s for s in sizes]
        if numel(sizes) != n:
            raise RuntimeError(f"unflatten: Provided sizes {sizes} don't multiply up to the size of dim {dim} ({n}) "
                               "in the input tensor")
        return self.reshape(self.shape[:dim] + tuple(sizes) + self.shape[dim + 1:])

    def _split_at(self, sections, dim, least, op):
        if self.ndim < least:
            raise RuntimeError(f"torch.{op} requires a tensor with at least {least} dimension"
                               f"{'' if least == 1 else 's'}, but got a tensor with {self.ndim} dimensions!")
        if isinstance(sections, Tensor):
            sections = sections.tolist()
        if hasattr(sections, "__index__"):
            sections = sections.__index__()
            n = self.shape[dim]
            if sections <= 0 or n % sections:
                raise RuntimeError(f"torch.{op} attempted to split along dimension {dim}, but the size of the "
                                   f"dimension {n} is not divisible by the split_size {sections}!")
        return self.tensor_split(sections, dim)

    def hsplit(self, *args, sections=None, indices=None):
        """``tensor_split`` along dim 1 (dim 0 of a 1-D tensor); an int must divide that dim."""
        return self._split_at(_sections(args, "hsplit", sections, indices), 1 if self.ndim > 1 else 0, 1, "hsplit")

    def vsplit(self, *args, sections=None, indices=None):
        """``tensor_split`` along dim 0 of a tensor of at least 2 dims; an int must divide it."""
        return self._split_at(_sections(args, "vsplit", sections, indices), 0, 2, "vsplit")

    def dsplit(self, *args, sections=None, indices=None):
        """``tensor_split`` along dim 2 of a tensor of at least 3 dims; an int must divide it."""
        return self._split_at(_sections(args, "dsplit", sections, indices), 2, 3, "dsplit")

    def split_with_sizes(self, split_sizes, dim=0):
        """Pieces of the sizes ``split_sizes`` (which add up to the size of ``dim``) along ``dim``."""
        dim = normalize_axis(dim, self.ndim, "split_with_sizes")
        return _slices(self, dim, _split_sizes(split_sizes, self.shape[dim], dim, "split_with_sizes"))

    def unsafe_split_with_sizes(self, split_sizes, dim=0):
        """``split_with_sizes`` (torch's form that skips view tracking; gt's pieces are the same)."""
        return _unsafe(self.split_with_sizes(split_sizes, dim))

    def unsafe_split(self, split_size, dim=0):
        """``split`` (torch's form that skips view tracking; gt's pieces are the same)."""
        return _unsafe(self.split(split_size, dim))

    def unsafe_chunk(self, chunks, dim=0):
        """``chunk`` (torch's form that skips view tracking; gt's pieces are the same)."""
        return _unsafe(self.chunk(chunks, dim))

    def narrow_copy(self, dim, start, length):
        """``narrow(dim, start, length)`` as a new tensor (no memory shared)."""
        return _named(self.narrow(dim, start, length).clone(), self, "NarrowCopyBackward0")

    @property
    def mH(self):
        """The conjugate transpose of the last two dims (a view for a real tensor; complex: a copy,
        gt's ``conj()`` being eager)."""
        if self.ndim < 2:
            raise RuntimeError(f"tensor.mH is only supported on matrices or batches of matrices. Got {self.ndim}-D "
                               "tensor.")
        return self.transpose(-2, -1).conj()

    @property
    def H(self):
        """The (conjugate) transpose of a matrix; a 0-d tensor is itself (deprecated in torch)."""
        if self.ndim == 0:
            warnings.warn("Tensor.H is deprecated on 0-D tensors. Consider using x.conj().", UserWarning, stacklevel=2)
            return self
        if self.ndim != 2:
            hint = ". For batches of matrices, consider using tensor.mH" if self.ndim > 2 else ""
            raise RuntimeError(f"tensor.H is only supported on matrices (2-D tensors). Got {self.ndim}-D tensor{hint}")
        return self.transpose(0, 1).conj()

    def adjoint(self):
        """The conjugate transpose of the last two dims: ``mH``."""
        if self.ndim < 2:
            raise RuntimeError(f"tensor.adjoint() is only supported on matrices or batches of matrices. Got "
                               f"{self.ndim}-D tensor.")
        return self.transpose(-2, -1).conj()

    def ger(self, vec2):
        """``outer(vec2)``: the ``(n, m)`` products of two 1-D tensors (torch's older name)."""
        return self.outer(vec2)

    def vdot(self, other):
        """The dot product of two 1-D tensors of one length and dtype, ``x.conj() @ y``."""
        other = _tensor_operand(other, "vdot", "other")
        if self.ndim != 1 or other.ndim != 1:
            raise RuntimeError(f"1D tensors expected, but got {self.ndim}D and {other.ndim}D tensors")
        if self.dtype != other.dtype:
            raise RuntimeError(f"dot : expected both vectors to have same dtype, but found "
                               f"{dtypes.torch_type_name(self.dtype.name)} and "
                               f"{dtypes.torch_type_name(other.dtype.name)}")
        if self.shape != other.shape:
            raise RuntimeError(f"inconsistent tensor size, expected tensor [{self.shape[0]}] and src "
                               f"[{other.shape[0]}] to have the same number of elements, but got {self.shape[0]} "
                               f"and {other.shape[0]} elements respectively")
        if self.dtype == dtypes.bool_:
            raise NotImplementedError("\"dot\" not implemented for 'Bool'")
        product = self.conj() * other
        return product.sum() if product.dtype.differentiable else product.sum(dtype=product.dtype)

    @torch_node_name("LinalgCrossBackward0")
    def cross(self, other, dim=None):
        """The cross products of the 3-vectors along ``dim`` of this tensor and ``other`` (broadcast
        to one shape; one dtype). ``dim=None`` is torch's deprecated default: the first dim of
        size 3 of this tensor, with torch's warning (``gt.linalg.cross`` takes the last)."""
        other = _tensor_operand(other, "cross", "other")
        if self.dtype != other.dtype:
            raise RuntimeError(f"expected scalar type {dtypes.torch_type_name(self.dtype.name)} but found "
                               f"{dtypes.torch_type_name(other.dtype.name)}")
        if self.ndim != other.ndim:
            raise RuntimeError(f"linalg.cross: inputs must have the same number of dimensions, got {self.ndim} and "
                               f"{other.ndim}")
        dim = normalize_axis(_cross_dim(self, dim), self.ndim, "cross")
        if self.shape[dim] != 3 or other.shape[dim] != 3:
            raise RuntimeError(f"linalg.cross: inputs dimension {dim} must have length 3. Got {self.shape[dim]} and "
                               f"{other.shape[dim]}")
        a = [self.select(dim, i).unsqueeze(dim) for i in range(3)]
        b = [other.select(dim, i).unsqueeze(dim) for i in range(3)]
        parts = [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]]
        shape = parts[0].shape
        return _cat([p.expand(*shape) for p in parts], dim)

    # ---- nan-reductions --------------------------------------------------------------------------
    def nansum(self, dim=None, keepdim=False, *, dtype=None):
        """The sum over ``dim`` (all dims by default) with NaN counted as zero; the gradient is 0
        at NaN positions. Integer and bool tensors sum to int64, as ``sum``; complex ones are refused (torch's)."""
        if self.dtype.is_complex:
            raise RuntimeError("nansum does not support complex inputs (torch's CPU kernel refuses them); sum the "
                               "parts, or use sum() where no value is NaN")
        x = where(self.isnan(), 0.0, self) if self.dtype.is_floating_point else self
        return _named(x.sum(dim=dim, keepdim=keepdim, dtype=dtype), self, "NansumBackward0")

    @torch_node_name("DivBackward0")
    def nanmean(self, dim=None, keepdim=False, *, dtype=None):
        """The mean over ``dim`` of the values that are not NaN (NaN where all are); floating
        point tensors only, as torch's. The gradient is ``1 / count`` at the counted positions, 0
        at NaN positions, and NaN over a slice that is all NaN (as torch's)."""
        if not self.dtype.is_floating_point:
            raise RuntimeError(f"nanmean(): expected input to have floating point or complex dtype but got "
                               f"{dtypes.torch_type_name(self.dtype.name)}")
        if dtype is not None and not dtypes.to_dtype(dtype).is_floating_point:
            raise RuntimeError("nanmean(): could not infer output dtype. Optional dtype must be either a floating "
                               f"point or complex dtype. Got: {dtypes.torch_type_name(dtypes.to_dtype(dtype).name)}")
        count = (~self.isnan()).sum(dim=dim, keepdim=True)
        total = self.nansum(dim, keepdim, dtype=dtype)
        counted = count if keepdim else count.sum(dim=dim, keepdim=False)
        nan = Tensor._wrap(B.full((), float("nan"), total.dtype))
        # NaN where nothing is counted, without dividing 0 by 0 (which numpy would warn about)
        out = where(counted == 0, nan, total / where(counted == 0, 1, counted).to(total.dtype))
        if self.requires_grad and autograd.is_grad_enabled():
            # torch's gradient is (g / count) * (not NaN): NaN over a slice of NaN alone (count 0),
            # where masking with ``where`` gives 0; this term is 0 (NaN there) and carries that NaN
            empty = count == 0
            extra = (where(empty, self, 0.0) * where(empty, nan.to(self.dtype), 0.0)).sum(dim=dim, keepdim=keepdim)
            out = out + extra.to(out.dtype)
        return out


def _assign(a, v):
    a[...] = v


def _broadcast(a, b, op, error=IndexError):
    """torch's broadcast of index shapes ``a`` and ``b`` (``error``, IndexError by default, with
    torch's message where they clash)."""
    return broadcast_shape(op, a, b, lambda pa, pb, i: error(
        f"shape mismatch: indexing tensors could not be broadcast together with shapes {list(pa)}, {list(pb)}"))


def _cat(tensors, dim):
    return shape_ops.Cat.apply(*tensors, axis=dim)




def _sections(args, op, sections=None, indices=None):
    """hsplit/vsplit/dsplit's argument: a count, a list of indices, or the indices one by one
    (positional, or torch's keywords ``sections=``/``indices=``)."""
    named = [x for x in (sections, indices) if x is not None]
    if named:
        if args or len(named) > 1:
            raise TypeError(f"{op}() takes one count or one list of indices")
        return named[0]
    if not args:
        raise TypeError(f"{op}() missing required argument 'sections' (a count, or indices)")
    return args[0] if len(args) == 1 else list(args)
