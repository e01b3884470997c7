"""torch's diagonal, flip and index methods that gt composes from its own differentiable ops:
``diag``, ``diag_embed``, ``diagflat``, ``trace``, ``take``, ``take_along_dim``, ``index_select``,
``gather``, ``fliplr``, ``flipud``, ``rot90`` and ``isclose`` (their ``gt.`` function forms are in
construct_functions.py).
Values, dtypes and gradients are torch's (tests/test_construct_functions.py runs each beside torch).

Mixed into ``gt.Tensor``; ``Tensor`` below is bound by gt/tensor/core.py once the class exists.
"""

from gt import amp, dtypes
from gt.autograd import inference_saved
from gt.backend import B
from gt.errors import DtypeError, IndexShapeError, ShapeError
from gt.tensor import checks, inplace_grad, overlap_writes
from gt.ops._shapes import normalize_axis
from gt.tensor.arithmetic import _operand, where
from gt.tensor.construct_methods import _arange, _own_memory
from gt.tensor.nested_operands import is_nested
from gt.tensor.shape import _named

Tensor = None  # gt.Tensor, bound by gt/tensor/core.py


def _index(index, name):
    index = _operand(index, name)
    if not isinstance(index, Tensor) or index.dtype not in (dtypes.int64, dtypes.int32):
        raise RuntimeError(f"{name}(): Expected a long tensor for index, but got {getattr(index, 'dtype', index)!r}")
    return index


class DiagonalMethods:
    __slots__ = ()

    def take(self, index):
        """The elements of this tensor read as 1-D at the positions ``index`` (any shape; the result has
        its shape). Differentiable; repeated positions add up in the backward."""
        return _named(self.reshape(-1)[_flat_positions(_index(index, "take"), self.numel())], self, "TakeBackward0")

    def put_(self, index, source, accumulate=False):
        """``take``'s partner: the elements at the positions ``index`` of this tensor read as 1-D
        are set to ``source`` (as many values as ``index`` has), or have it added with
        ``accumulate=True`` (repeated positions then add up); in place, differentiable."""
        index = _index(index, "put_")
        positions = _flat_positions(index, self.numel())
        if isinstance(source, Tensor) and source.dtype != self.dtype:     # a list (gt's) is cast
            raise RuntimeError(f"put_(): self and source expected to have the same dtype, but got self.dtype = "
                               f"{dtypes.torch_type_name(self.dtype.name)} and source.dtype = "
                               f"{dtypes.torch_type_name(source.dtype.name)}")
        source = source if isinstance(source, Tensor) else Tensor._wrap(B.asarray(source))
        if source.numel() != index.numel():
            raise RuntimeError(f"put_(): Expected source and index to have the same number of elements, but got "
                               f"source.numel() = {source.numel()}, index.numel() = {index.numel()}")
        inplace_grad.refuse_shared_input(self, (source,), any_overlap=True)     # torch's, as index_put_'s
        if overlap_writes.overlapping(self):       # as_strided/unfold windows: the writes go to the memory
            return overlap_writes.in_memory(self, lambda mem, pos: mem.index_put_(
                (pos.reshape(-1)[positions.reshape(-1)],), source.reshape(-1).to(self.dtype), accumulate=accumulate))
        flat = self.reshape(-1).clone()       # written whole and copied back: no view of self needed
        flat.index_put_((positions.reshape(-1),), source.reshape(-1).to(self.dtype), accumulate=accumulate)
        return self.copy_(flat.reshape(self.shape))

    def put(self, index, source, accumulate=False):
        """``put_`` on a copy of this tensor."""
        return self.clone().put_(index, source, accumulate)

    def take_along_dim(self, indices, dim=None):
        """This tensor gathered at ``indices`` along ``dim`` (the two broadcast against each other off
        ``dim``), or over the flattened tensor when ``dim`` is None: the partner of ``argsort`` and
        ``argmax(keepdim=True)``."""
        indices = _index(indices, "take_along_dim")
        if dim is None:
            return self.reshape(-1).gather(0, indices.reshape(-1))
        if self.ndim != indices.ndim:
            raise RuntimeError(f"torch.take_along_dim(): input and indices should have the same number of dimensions, "
                               f"but got {self.ndim} dimensions for input, and {indices.ndim} dimensions for indices")
        dim = normalize_axis(dim, self.ndim, "take_along_dim")
        shape = [b if a == 1 else a for a, b in zip(self.shape, indices.shape)]     # broadcast: 0 against 1 is 0
        x = self.expand(*[n if i != dim else -1 for i, n in enumerate(shape)])
        indices = indices.expand(*[n if i != dim else -1 for i, n in enumerate(shape)])
        return _named(x._gathered(dim, indices), self, "GatherBackward0")    # negative positions count from the end

    def index_select(self, dim, index):
        """The entries of axis ``dim`` at the integer positions ``index`` (1-D, or 0-d read as 1-D,
        as torch); differentiable, repeated positions adding up in the backward. A position outside
        ``[0, size)`` is an IndexError that is also a RuntimeError (torch raises either, by dim):
        torch counts none from the end here, unlike ``x[index]``."""
        index = _operand(index, "index_select")
        if inference_saved.made[0]:
            inference_saved.refuse_index(self, index)
        if not isinstance(index, Tensor):
            raise TypeError(f"index_select(): argument 'index' must be a 1-D integer tensor, not {type(index).__name__}")
        if index.ndim > 1:
            raise IndexShapeError(f"index_select(): Index is supposed to be a vector (a 1-D integer tensor), got "
                                  f"shape {index.shape}")
        if index.dtype.is_floating_point or index.dtype.is_complex or index.dtype is dtypes.bool_:   # (not a mask)
            raise DtypeError(f"index_select(): Expected dtype int32 or int64 for index, got {index.dtype!r}")
        if index.dtype in dtypes.SMALL_INTS:     # x[index] takes uint8 as a mask; torch's index_select refuses it
            raise RuntimeError(f"index_select(): Expected dtype int32 or int64 for index, got {index.dtype!r}")
        dim = normalize_axis(dim, self.ndim, "index_select")
        if self.ndim == 0:                      # torch: a scalar is read as one element along dim 0 or -1
            if index.numel() != 1:
                raise RuntimeError(f"index_select(): Index to scalar can have only 1 value, got {index.numel()} value(s)")
            return self.reshape(1).index_select(0, index).reshape(())
        n = self.shape[dim]
        index = checks.require_within(index.reshape(-1), 0, n - 1, checks.IndexOutOfRangeError, lambda bad: (
            f"index_select(): index {bad} is out of bounds for dimension {dim} with size {n}"))
        out = self[(slice(None),) * dim + (index,)].contiguous()     # torch's result is row-major, numpy's not
        return _named(out, self, "IndexSelectBackward0")

    def gather(self, dim, index, *, sparse_grad=False):
        """``out[i][j][k] = self[i][index[i][j][k]][k]`` for ``dim=1`` (torch's ``gather``): ``index``
        has this tensor's number of dims and, off ``dim``, sizes no larger than its own;
        differentiable, repeated positions adding up in the backward. A position outside
        ``[0, size)`` is torch's RuntimeError (none counts from the end). ``sparse_grad=True`` is
        refused: gt has no sparse gradients."""
        if sparse_grad:
            raise NotImplementedError("gather: sparse_grad=True is not supported (gt has no sparse gradients); "
                                      "leave it False for the same gradient, dense")
        index = _operand(index, "gather")
        if inference_saved.made[0]:
            inference_saved.refuse_index(self, index)
        # torch reads a 0-d tensor or index as 1-D of one element
        if isinstance(index, Tensor) and index.dtype in dtypes.SMALL_INTS:
            raise RuntimeError(f"gather(): Expected dtype int32/int64 for index, got {index.dtype!r}")
        if not isinstance(index, Tensor) or max(index.ndim, 1) != max(self.ndim, 1) \
                or index.dtype not in (dtypes.int64, dtypes.int32):
            raise ShapeError(f"gather: index must be an integer tensor of {self.ndim} dims, got "
                             f"{getattr(index, 'shape', index)!r}")
        dim = normalize_axis(dim, self.ndim, "gather")
        if self.ndim == 0 or index.ndim == 0:
            return self.reshape(-1).gather(0, index.reshape(-1)).reshape(index.shape)
        n = self.shape[dim]
        index = checks.require_within(index, 0, n - 1, RuntimeError,
                                      lambda bad: f"index {bad} is out of bounds for dimension {dim} with size {n}")
        return _named(self._gathered(dim, index), self, "GatherBackward0")

    def _gathered(self, dim, index):
        """``gather`` without its range check: negative positions count from the end."""
        if any(i > n for a, (i, n) in enumerate(zip(index.shape, self.shape)) if a != dim):
            raise ShapeError(f"gather: index of shape {index.shape} is larger than the input {self.shape} off dim {dim}")
        parts = []
        for a in range(self.ndim):
            if a == dim:
                parts.append(index)
            else:
                shape = [1] * self.ndim
                shape[a] = index.shape[a]
                parts.append(Tensor._wrap(B.arange(0, index.shape[a], 1, dtypes.int64)).reshape(*shape))
        return self[tuple(parts)]

    # ---- diagonals -----------------------------------------------------------------------------------
    def diag_embed(self, offset=0, dim1=-2, dim2=-1):
        """A tensor whose planes ``(dim1, dim2)`` hold the last dim of this tensor on their ``offset``
        diagonal and zeros elsewhere (torch's ``diag_embed``). The zeros stay zeros where it
        has inf or NaN; the gradient is the diagonal of the upstream one."""
        if self.ndim == 0:
            raise RuntimeError("diag_embed(): expected a tensor of at least 1 dim, got a 0-d tensor")
        nd = self.ndim + 1
        d1, d2 = normalize_axis(dim1, nd, "diag_embed"), normalize_axis(dim2, nd, "diag_embed")
        if d1 == d2:
            raise RuntimeError(f"diagonal dimensions cannot be identical {dim1}, {dim2}")
        n = self.shape[-1]
        m = n + abs(offset)
        if n == 0:
            return self.new_zeros(*self.shape[:-1], m, m).movedim((-2, -1), (d1, d2))      # (nothing to name)
        row = _arange(m).reshape(m, 1)
        on = (_arange(m).reshape(1, m) - row) == offset     # m, m: the chosen diagonal
        # the element on the diagonal is self[..., i] in row i (offset >= 0), or in column i (offset < 0)
        spread = self[..., _arange(m).clamp(max=n - 1)]     # ..., m
        values = spread.unsqueeze(-1) if offset >= 0 else spread.unsqueeze(-2)
        out = where(on, values, Tensor._wrap(B.zeros((), self.dtype)))     # ..., m, m
        return _named(out.movedim((-2, -1), (d1, d2)), self, "DiagEmbedBackward0")

    def diag(self, diagonal=0):
        """A 1-D tensor's values on the ``diagonal`` of a square matrix (zeros elsewhere), or a 2-D
        tensor's ``diagonal`` as a 1-D tensor."""
        if self.ndim == 1:
            return self.diag_embed(diagonal)
        if self.ndim == 2:      # torch's diag copies (its node named so); diagonal is a view
            return _named(_own_memory(self.diagonal(diagonal)), self, "DiagonalBackward0_copy")
        raise RuntimeError(f"diag(): Supports 1D or 2D tensors. Got {self.ndim}D")

    def diagflat(self, offset=0):
        """The flattened tensor on the ``offset`` diagonal of a square matrix."""
        return self.reshape(-1).diag_embed(offset)

    @amp.runs_in_float32      # torch.autocast's fp32 list
    def trace(self):
        """The sum of a matrix's main diagonal (integers sum to int64, as torch)."""
        if self.ndim != 2:
            raise RuntimeError(f"trace: expected a matrix, but got tensor with dim {self.ndim}")
        return _named(self.diagonal().sum(), self, "TraceBackward0")

    # ---- flips -----------------------------------------------------------------------------------------
    def fliplr(self):
        """Columns in reverse order (dim 1 flipped); the tensor must be at least 2-D."""
        if self.ndim < 2:
            raise RuntimeError("Input must be >= 2-d.")
        return self.flip(1)

    def flipud(self):
        """Rows in reverse order (dim 0 flipped); the tensor must be at least 1-D."""
        if self.ndim < 1:
            raise RuntimeError("Input must be >= 1-d.")
        return self.flip(0)

    def rot90(self, k=1, dims=(0, 1)):
        """The plane ``dims`` rotated by 90 degrees ``k`` times, from the first axis towards the second."""
        dims = list(dims)
        if len(dims) != 2:
            raise RuntimeError(f"expected total rotation dims == 2, but got dims = {len(dims)}")
        if self.ndim < 2:
            raise RuntimeError(f"expected total dims >= 2, but got total dims = {self.ndim}")
        a, b = normalize_axis(dims[0], self.ndim, "rot90"), normalize_axis(dims[1], self.ndim, "rot90")
        if a == b:
            raise RuntimeError(f"expected rotation dims to be different, but got dim0 = {a} and dim1 = {b}")
        k = k % 4
        if k == 1:
            out = self.flip(b).transpose(a, b)
        elif k == 2:
            out = self.flip((a, b))
        else:
            out = self.flip(a).transpose(a, b) if k == 3 else self.clone()
        return _named(out, self, "Rot90Backward0")

    def isclose(self, other, rtol=1e-05, atol=1e-08, equal_nan=False):
        """Where ``|self - other| <= atol + rtol * |other|`` (or equal, which covers infinities of one
        sign; NaN equals NaN only with ``equal_nan``): a bool tensor, broadcast. Both must have one dtype."""
        if is_nested(other):
            return other._reflected("isclose", self, rtol, atol, equal_nan)
        other = _operand(other, "isclose")
        if not isinstance(other, Tensor):
            raise TypeError(f"isclose(): argument 'other' must be a tensor, not {type(other).__name__}")
        if self.dtype != other.dtype:
            raise RuntimeError(f"isclose(): {self.dtype!r} did not match {other.dtype!r}: both must have one dtype")
        if rtol < 0 or atol < 0:
            raise RuntimeError(f"isclose(): rtol and atol must be non-negative, got rtol={rtol}, atol={atol}")
        close = self == other
        if equal_nan and self.dtype.differentiable:
            close = close | (self.isnan() & other.isnan())
        if self.dtype == dtypes.bool_ or (rtol == 0 and atol == 0):
            return close
        a, b = (self, other) if self.dtype.differentiable else (self.double(), other.double())
        with B.quiet_float_errors():        # inf - inf is NaN, not close, silently as in torch
            error = (a - b).abs()
            return close | (error.isfinite() & (error <= atol + rtol * b.abs()))


def _flat_positions(index, n):
    """``index`` (an integer tensor) as positions in [0, n) of a tensor of ``n`` elements read as
    1-D, negative ones counted from the end: torch's IndexError for one outside [-n, n), at once
    on the CPU and at the next host read on a GPU (``checks.require_within``)."""
    index = checks.require_within(index, -n, n - 1, IndexError,
                                  lambda bad: f"out of range: tried to access index {bad} on a tensor of {n} elements.")
    return index % n if n else index
