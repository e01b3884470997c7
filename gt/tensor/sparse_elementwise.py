"""Elementwise and selection ops of sparse COO tensors (gt/tensor/sparse_coo.py), torch's: each
result is built from differentiable dense gt ops on the values and int64 indices, so gradients
reach the values (and a dense operand) through the ordinary tape.

- ops that map zero to zero (``abs``, ``sqrt``, ``sin``, ``tanh``, ``pow`` by a nonzero number,
  ...): torch coalesces first (f(a) + f(b) is not f(a + b)) and applies the op to the values;
- ``mul`` by a number, a dense tensor (its entries at the stored positions) or a sparse tensor
  (torch's intersection: the entries of one operand, ``source``, whose position the other holds);
- ``narrow_copy``, ``index_select``, ``gt.sparse.softmax``/``log_softmax`` (over the stored
  entries only, as if every other one were minus infinity).
"""

from gt import autograd, dtypes
from gt.tensor import creation
from gt.tensor.core import Tensor
from gt.tensor.index_methods import searchsorted
from gt.tensor.sparse_autograd import carries, dense_of, derive, entry_leaf, refused
from gt.tensor.sparse_frames import pass_frame
from gt.tensor.sparse_methods import coalesced_parts, linear_positions

# torch's ops on a sparse COO tensor that keep zeros: all coalesce first
ZERO_KEEPING = ("abs", "sqrt", "sin", "sinh", "tan", "tanh", "asin", "asinh", "atan", "atanh", "expm1", "log1p",
                "relu", "sign", "sgn", "square", "floor", "ceil", "round", "trunc", "frac", "erf", "erfinv",
                "deg2rad", "rad2deg", "signbit", "isnan", "isinf", "isposinf", "isneginf", "nan_to_num")


# torch 2.13's backward of these on a sparse tensor raises (this error type, for this reason)
_ADD = "add(sparse, dense) is not supported"
_NO_BACKWARD = {"sqrt": (RuntimeError, "Sparse division requires a scalar or zero-dim dense tensor divisor"),
                "tan": (RuntimeError, _ADD), "asin": (RuntimeError, _ADD),
                "asinh": (RuntimeError, _ADD), "atan": (RuntimeError, _ADD), "expm1": (RuntimeError, _ADD),
                "atanh": (RuntimeError, "memory format option is only supported by strided tensors"),
                **{n: (NotImplementedError, f"no SparseCPU kernel of {k}") for n, k in (
                    ("sin", "cos"), ("sinh", "cosh"), ("tanh", "tanh_backward"), ("sgn", "_efficientzerotensor"),
                    ("erf", "exp"), ("erfinv", "exp"), ("nan_to_num", "ne"))}}
# the ones whose backward passes a dense gradient on dense (the others multiply it by a sparse tensor:
# a gradient on the stored entries only, which the values carry)
_DENSE_BACKWARD = ("log1p", "sign", "floor", "ceil", "round", "trunc", "frac", "deg2rad", "rad2deg")


def _zero_keeping(name):
    def op(self, *args, **kwargs):
        c = self.coalesce()
        values = getattr(c._sp_values, name)(*args, **kwargs)
        if name in _NO_BACKWARD:
            values = refused(values, name, *_NO_BACKWARD[name])
        out = self._new(c._sp_indices, values, self.shape, True)
        pass_frame(out, (c,))       # (its entries are the leaf's: the order a later transpose notes)
        if name in _DENSE_BACKWARD:
            return derive(out, lambda d: getattr(d, name)(*args, **kwargs), c)
        if name == "relu":      # torch's backward takes a sparse gradient only
            return derive(out, lambda d: refused(d.relu(), name, NotImplementedError,
                                                 "no kernel of _nnz for a dense gradient"), c, always=True,
                          sparse_to_values=True)
        return out

    op.__name__ = name
    op.__doc__ = f"``{name}`` of the stored values (coalesced first, as torch's: it keeps zeros)."
    return op


class SparseElementwise:
    """The elementwise and selection ops of a sparse COO tensor."""

    __slots__ = ()

    def pow(self, exponent):
        """Each stored value to a nonzero Python number (coalesced first, torch's)."""
        if isinstance(exponent, Tensor) and exponent.ndim == 0 and not exponent.is_sparse:
            exponent = exponent.item()
        if isinstance(exponent, bool) or not isinstance(exponent, (int, float)):
            raise NotImplementedError(f"pow: gt's sparse tensors take only a Python number as the exponent, got "
                                      f"{type(exponent).__name__}; call .to_dense() first")
        if exponent == 0:
            raise RuntimeError("pow: cannot raise to zeroth power on sparse tensor; it would make the result tensor "
                               "dense")
        c = self.coalesce()
        return self._new(c._sp_indices, c._sp_values ** exponent, self.shape, True)

    __pow__ = pow

    def mul(self, other):
        """``self * other``: by a number or a 0-d tensor (the values scaled), by a dense tensor
        that broadcasts to this shape (sparse: its entries at the stored positions), or by a
        sparse tensor of this shape (torch's intersection)."""
        if isinstance(other, Tensor) and other.is_sparse:
            return _mul_sparse(self, other)
        if isinstance(other, Tensor) and other.ndim:
            return _mul_dense(self, other)
        out = self._new(self._sp_indices, self._sp_values * other, self.shape, self._sp_coalesced)
        return derive(out, lambda d: d * other, self)

    def __mul__(self, other):
        return self.mul(other)

    __rmul__ = __mul__
    multiply = mul

    def narrow_copy(self, dim, start, length):
        """The entries whose index along ``dim`` is in ``[start, start + length)``, shifted (torch's: a
        negative ``dim`` or ``start`` is refused, as torch's sparse kernel refuses it)."""
        nd = self.ndim
        if not isinstance(dim, int) or not 0 <= dim < nd:
            raise RuntimeError(f"narrow_copy: Dimension {dim} out of range. Expecting 0 <= dim < {nd}.")
        d, size = dim, self.shape[dim]
        if length < 0:
            raise RuntimeError(f"narrow_copy: narrow(): length must be non-negative, got {length}.")
        if not 0 <= start <= size or start + length > size:
            raise RuntimeError(f"narrow_copy: Invalid range to narrow. range(start, start+length) must be a subset "
                               f"of range(0, {size}); got start {start} and length {length} (start + length exceeds "
                               "dimension size or start is negative).")
        shape = self.shape[:d] + (length,) + self.shape[d + 1:]
        sd = self.sparse_dim()
        if d >= sd:
            new, values = self._sp_indices, self._sp_values.narrow(d - sd + 1, start, length)
        else:
            idx = self._sp_indices
            with autograd.no_grad():
                keep = ((idx[d] >= start) & (idx[d] < start + length)).nonzero().reshape(-1)
                new = idx[:, keep]
                new[d] -= start
            values = self._sp_values[keep]
        out = self._new(new, refused(values, "narrow_copy", NotImplementedError, _STRIDED), shape, self._sp_coalesced)
        return derive(out, lambda x: x.narrow(d, start, length), self, always=True, sparse_to_values=True)

    def index_select(self, dim, index):
        """The slices ``index`` (int64, 1-D) along ``dim``: torch's order, each entry once per
        position of ``index`` that names it, sorted by that position (uncoalesced)."""
        d = _dim(self, dim, "index_select")
        index = index if isinstance(index, Tensor) else creation.tensor(index)
        if index.ndim > 1 or index.dtype.is_floating_point or index.dtype == dtypes.bool_:
            raise IndexError(f"index_select(): index must be an integer tensor of at most 1 dimension, got "
                             f"{index.dtype} of shape {index.shape}")
        index, size = index.reshape(-1).to(dtypes.int64), self.shape[d]
        if index.numel() and (int(index.min().item()) < 0 or int(index.max().item()) >= size):
            raise IndexError(f"index_select(): index out of range for dimension {d} of size {size}")
        shape = self.shape[:d] + (index.shape[0],) + self.shape[d + 1:]
        sd = self.sparse_dim()
        if d >= sd:      # uncoalesced all the same, as torch's
            new, values = self._sp_indices, self._sp_values.index_select(d - sd + 1, index)
        else:
            with autograd.no_grad():
                at, k = (index.unsqueeze(1) == self._sp_indices[d].unsqueeze(0)).nonzero().t()
                new = self._sp_indices[:, k]
                new[d] = at
            values = self._sp_values[k]
        out = self._new(new, refused(values, "index_select", NotImplementedError, "no SparseCPU kernel of "
                                     "index_add_ for a sparse gradient"), shape, False)
        return derive(out, lambda x: x.index_select(d, index), self, always=True, sparse_to_values=True)


for _name in ZERO_KEEPING:
    setattr(SparseElementwise, _name, _zero_keeping(_name))


_STRIDED = "no SparseCPU kernel of as_strided for a sparse gradient"


def _dim(s, dim, fn):
    nd = s.ndim
    if not isinstance(dim, int) or not -nd <= dim < nd:
        raise IndexError(f"{fn}: Dimension out of range (expected to be in range of [{-nd}, {nd - 1}], but got {dim})")
    return dim % nd


def _mul_dense(s, d):
    """sparse * dense: the dense entries at the stored positions (the dense one broadcast to the
    sparse shape, as torch's), the sparse layout kept."""
    from_shape = tuple(d.shape)
    if len(from_shape) > s.ndim or any(a not in (1, b) for a, b in zip(from_shape[::-1], s.shape[::-1])):
        raise RuntimeError(f"mul: the dense operand of shape {from_shape} does not broadcast to the sparse shape "
                           f"{s.shape}")
    if _sparse_grad_operand(s, d):
        return _mul_leaf(s, d)
    full = d.expand(s.shape)
    picked = full[tuple(s._sp_indices[i] for i in range(s.sparse_dim()))] if s.sparse_dim() else full.unsqueeze(0)
    out = s._new(s._sp_indices, s._sp_values * picked, s.shape, s._sp_coalesced)
    return derive(out, lambda x: x * d, s)


def _sparse_grad_operand(s, d):
    """Whether the dense ``d`` of ``s * d`` gets torch's sparse gradient: a leaf of ``s``'s shape that
    requires grad (a computed one's gradient goes on through gt's dense tape: dense; a broadcast one
    torch cannot sum back)."""
    return (d.requires_grad and d.is_leaf and autograd.is_grad_enabled() and s.is_sparse and s.sparse_dim()
            and tuple(d.shape) == s.shape and d._placed is None)


def _mul_leaf(s, d):
    """``s * d`` for a dense leaf ``d``: its gradient is torch's sparse ``grad * s`` on ``s``'s own entries
    (uncoalesced), carried by stand-ins of its entries at ``s``'s positions, also through a product's dense
    gradient (``derive``)."""
    at = tuple(s._sp_indices[i] for i in range(s.sparse_dim()))
    out = s._new(s._sp_indices, s._sp_values * entry_leaf(d, s, at), s.shape, s._sp_coalesced)

    def rule(x):
        with autograd.no_grad():
            values = s._sp_values.detach()
        dense = s._new(s._sp_indices, values * entry_leaf(d, s, at), s.shape, False).to_dense()
        return x * d.detach() + (dense - dense.detach())     # the value x * d; d's gradient through the entries

    return derive(out, rule, s)


def _mul_sparse(x, y):
    """torch's sparse * sparse: the entries of ``source`` (the uncoalesced operand where only one
    is coalesced, else the one of fewer entries, ``y`` on a tie) times the other's coalesced value
    at their position: all of them (zero where the other holds none) unless both are coalesced,
    when only those whose position the other holds are kept (a coalesced result)."""
    if x.shape != y.shape or x.sparse_dim() != y.sparse_dim():
        raise RuntimeError(f"mul: sparse operands of shapes {x.shape} (sparse_dim {x.sparse_dim()}) and {y.shape} "
                           f"(sparse_dim {y.sparse_dim()}) cannot be multiplied")
    if x._sp_coalesced != y._sp_coalesced:
        other, source = (x, y) if x._sp_coalesced else (y, x)
    else:
        other, source = (x, y) if x._nnz() >= y._nnz() else (y, x)
    c = other.coalesce()
    sizes = x.shape[:x.sparse_dim()]
    with autograd.no_grad():
        theirs, mine = linear_positions(c._sp_indices, sizes), linear_positions(source._sp_indices, sizes)
        slot = searchsorted(theirs, mine).clamp(max=max(theirs.shape[0] - 1, 0))
        found = theirs[slot] == mine if theirs.shape[0] else creation.zeros(mine.shape, dtype=dtypes.bool_)
        keep = found.nonzero().reshape(-1) if source._sp_coalesced else None
    if keep is None:     # every entry of source, times zero where the other holds none
        zero = creation.zeros((), dtype=c.dtype)
        found = found.reshape((-1,) + (1,) * (c._sp_values.ndim - 1))
        theirs_at = c._sp_values[slot].where(found, zero) if theirs.shape[0] else source._sp_values * 0
        if autograd.is_grad_enabled() and carries(other):
            theirs_at = _other_at(other, source)
        mine_at, idx = source._sp_values, source._sp_indices
    else:
        theirs_at, mine_at, idx = c._sp_values[slot[keep]], source._sp_values[keep], source._sp_indices[:, keep]
    vals = mine_at * theirs_at if source is x else theirs_at * mine_at
    return _mul_sparse_source(x._new(idx, vals, x.shape, source._sp_coalesced), x, y)


def _other_at(other, source):
    """``other``'s values at each of ``source``'s entries (zero where it holds none), read from its dense
    source: torch's gradient of ``other`` through a product that lists every entry of ``source`` is
    ``grad * source`` on those positions, also where ``other`` holds nothing (a leaf's arrives sparse there)."""
    def positions():        # source's own order (torch's) where no position repeats
        with autograd.no_grad():
            c = source.coalesce()
            return source._sp_indices if c._nnz() == source._nnz() else c._sp_indices

    at = tuple(source._sp_indices[i] for i in range(source.sparse_dim()))
    return dense_of(other, positions)[at]


def _mul_sparse_source(out, x, y):
    """torch's gradient of either operand of sparse * sparse: the product's times the other, sparse on
    the other's coalesced positions (a leaf's too, through ops that move positions: ``s.t() * b``)."""
    if not (autograd.is_grad_enabled() and (carries(x) or carries(y))):
        return out

    def source(pattern=None):
        def at(s):
            def positions():
                with autograd.no_grad():
                    return s.coalesce()._sp_indices
            return positions
        return dense_of(x, at(y)) * dense_of(y, at(x))

    source.takes_pattern = True
    out._sp_dense = source
    return out


def sparse_softmax(s, dim, dtype=None, log=False):
    """``gt.sparse.softmax``/``log_softmax``: over the stored entries along ``dim`` (the others
    count as minus infinity); a sparse result on the coalesced indices, as torch's."""
    d = _dim(s, dim, "sparse.softmax")
    c = s.coalesce()
    vals = c._sp_values if dtype is None else c._sp_values.to(dtype)
    sd = c.sparse_dim()
    if d >= sd:
        out = vals.log_softmax(d - sd + 1) if log else vals.softmax(d - sd + 1)
        return _softmax_source(c._new(c._sp_indices, out, s.shape, True), c, log)
    rest = [i for i in range(sd) if i != d]
    with autograd.no_grad():
        _, _, group = coalesced_parts(c._sp_indices[rest], vals, tuple(s.shape[i] for i in rest))
        n = int(group.max().item()) + 1 if group.numel() else 0
        lead = (n,) + tuple(vals.shape[1:])
        top = creation.full(lead, float("-inf"), dtype=vals.dtype).index_reduce(0, group, vals, "amax",
                                                                                 include_self=False)
    shifted = vals - top[group]       # softmax is shift-invariant: the max needs no gradient
    total = creation.zeros(lead, dtype=vals.dtype).index_add(0, group, shifted.exp())
    out = shifted - total.log()[group] if log else shifted.exp() / total[group]
    return _softmax_source(c._new(c._sp_indices, out, s.shape, True), c, log)


def _softmax_source(out, c, log):
    """torch's backward of the sparse softmax takes a sparse gradient only (a product's raises)."""
    name = "sparse.log_softmax" if log else "sparse.softmax"
    return derive(out, lambda d: refused(d * 1, name, RuntimeError, "coalesce expected sparse coordinate tensor "
                                         "layout but got Strided"), c, always=True, sparse_to_values=True)
