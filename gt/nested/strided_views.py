"""A strided nested tensor's view ops (``select``, ``narrow``, ``squeeze``, ``unsqueeze``,
``transpose``, ``unbind``) and its contiguity, as torch 2.13's. torch keeps the tensors in one
buffer, each with its strides and offset, and calls the nested tensor contiguous only where each
is row-major (no size-1 dim skipped) and they follow one another from offset 0; its pointwise
ops refuse a non-contiguous one ("NestedTensor must be contiguous to get buffer."). gt keeps the
list of tensors and, beside it, the strides and offsets torch's would have (``_nt_layout``;
None: packed, as a new one), so ``is_contiguous`` and those refusals answer as torch's.
Installed on ``StridedNestedTensor`` by ``install()``."""

from gt.nested.strided import StridedNestedTensor

_UNSUPPORTED = ("{}(): For nested tensors, {} is not supported at the moment if you need this feature, please open "
                "an issue on github describing your use case.")


def _packed(parts):
    """Row-major strides and back-to-back offsets of ``parts`` (a new nested tensor's buffer)."""
    strides, offsets, at = [], [], 0
    for p in parts:
        stride, step = [], 1
        for n in reversed(p.shape):
            stride.insert(0, step)
            step *= n
        strides.append(tuple(stride))
        offsets.append(at)
        at += p.numel()
    return tuple(strides), tuple(offsets)


def layout(self):
    """(strides, offsets) of each tensor in torch's buffer."""
    return self._nt_layout or _packed(self._nt_parts)


def is_contiguous(self, memory_format=None):
    """torch's rule: each tensor row-major (strides checked even for dims of size 1) and the
    tensors one after the other from offset 0."""
    if self._nt_layout is None:
        return True
    strides, offsets = self._nt_layout
    for p, stride in zip(self._nt_parts, strides):
        step = 1
        for n, s in zip(reversed(p.shape), reversed(stride)):
            if s != step:
                return False
            step *= n
    if offsets[0] != 0:
        return False
    return all(offsets[i] == offsets[i - 1] + (self._nt_parts[i - 1].shape[0] * strides[i - 1][0]
                                               if self._nt_parts[i - 1].ndim else 1)
               for i in range(1, len(offsets)))


def _remake(self, parts, strides, offsets):
    out = StridedNestedTensor._make(parts)
    out._nt_layout = (tuple(strides), tuple(offsets))
    return out


def _dim(self, dim, nd=None):
    nd = self.dim() if nd is None else nd
    if not -nd <= dim < nd:
        raise IndexError(f"Dimension out of range (expected to be in range of [{-nd}, {nd - 1}], but got {dim})")
    return dim % nd


def select(self, dim, index):
    """The ``index``-th tensor (``dim=0``, a dense tensor), or each tensor's entry ``index`` (not
    negative, as torch's) of dim ``dim - 1``. A negative ``dim`` other than ``-ndim`` is refused:
    torch 2.13 reads it unwrapped and fails (or reads outside the tensors)."""
    d = _dim(self, dim)
    if d == 0:
        b = len(self._nt_parts)
        if not -b <= index < b:
            raise IndexError(f"index {index} is out of bounds for dimension 0 with size {b}")
        return self._nt_parts[index]
    if dim < 0:
        raise RuntimeError(f"select(): a negative dim ({dim}) of a strided nested tensor is not supported (torch "
                           f"2.13 does not wrap it); pass dim={d}")
    for i, p in enumerate(self._nt_parts):
        if not 0 <= index < p.shape[d - 1]:
            raise IndexError(f"index {index} is out of bounds for dimension {d - 1} of the {i}th constituent tensor "
                             f"with size {p.shape[d - 1]}")
    strides, offsets = layout(self)
    return _remake(self, [p.select(d - 1, index) for p in self._nt_parts],
                   [s[:d - 1] + s[d:] for s in strides], [o + index * s[d - 1] for o, s in zip(offsets, strides)])


def narrow(self, dim, start, length):
    """``length`` of its tensors from ``start`` (dim 0 only, on a contiguous one, as torch's)."""
    if dim != 0:
        raise RuntimeError(f"narrow(): only dim=0 supported for nested tensors, but got: {dim}")
    if not is_contiguous(self):
        raise RuntimeError("narrow(): only contiguous nested tensors supported")
    b = len(self._nt_parts)
    if not -b <= start <= b:
        raise IndexError(f"start out of range (expected to be in range of [{-b}, {b}], but got {start})")
    if length < 0:
        raise RuntimeError("narrow(): length must be non-negative")
    if length == 0:
        raise IndexError("narrow(): a strided nested tensor of no tensors is not supported (length=0)")
    start = start % b if start < 0 else start
    if start + length > b:
        raise RuntimeError(f"start ({start}) + length ({length}) exceeds dimension size ({b}).")
    strides, offsets = layout(self)
    keep = slice(start, start + length)
    return _remake(self, self._nt_parts[keep], strides[keep], offsets[keep])


def squeeze(self, dim=None):
    """The dims ``dim`` (an int or a tuple; not 0) removed where each tensor has size 1 there;
    ``squeeze()`` without a dim is refused, as torch's."""
    if dim is None:
        raise RuntimeError("squeeze(): For nested tensors, squeeze without the dim argument is not supported at the "
                           "moment, however you can use squeeze(Tensor self, int dim) instead if you need this "
                           "feature, please open an issue on github describing your use case.")
    dims = [_dim(self, d) for d in ((dim,) if isinstance(dim, int) else dim)]
    for i, d in enumerate(dims):
        if d in dims[:i]:
            raise RuntimeError(f"dim {d} appears multiple times in the list of dims")
    if 0 in dims:
        raise RuntimeError(_UNSUPPORTED.format("squeeze", "squeezing dimension 0"))
    drop = sorted(d - 1 for d in dims if all(p.shape[d - 1] == 1 for p in self._nt_parts))
    strides, offsets = layout(self)
    parts = [p.squeeze(tuple(drop)) if drop else p for p in self._nt_parts]
    return _remake(self, parts, [tuple(x for k, x in enumerate(s) if k not in drop) for s in strides], offsets)


def unsqueeze(self, dim):
    """A dim of size 1 inserted in each tensor (not at 0), torch's stride for it."""
    d = _dim(self, dim, self.dim() + 1)
    if d == 0:
        raise RuntimeError(_UNSUPPORTED.format("unsqueeze", "unsqueezing dimension 0"))
    k = d - 1
    strides, offsets = layout(self)
    new = [s[:k] + ((p.shape[k] * s[k]) if k < p.ndim else 1,) + s[k:] for p, s in zip(self._nt_parts, strides)]
    return _remake(self, [p.unsqueeze(k) for p in self._nt_parts], new, offsets)


def transpose(self, dim0, dim1):
    """Each tensor's dims ``dim0 - 1`` and ``dim1 - 1`` swapped; dim 0, or one dim with itself,
    refused as torch's."""
    d0, d1 = _dim(self, dim0), _dim(self, dim1)
    if d0 == d1:
        raise RuntimeError("View operation returned a tensor that is the same as the input base tensor.  This is no "
                           "longer allowed; you must explicitly create a new tensor (e.g., using .detach()).")
    if 0 in (d0, d1):
        raise RuntimeError("Nested tensor dimension 0 cannot be transposed")
    a, b = d0 - 1, d1 - 1
    strides, offsets = layout(self)
    new = []
    for s in strides:
        s = list(s)
        s[a], s[b] = s[b], s[a]
        new.append(tuple(s))
    return _remake(self, [p.transpose(a, b) for p in self._nt_parts], new, offsets)


def unbind(self, dim=0):
    """Its tensors (``dim`` 0 only, as given: torch refuses ``-ndim`` too)."""
    if dim != 0:
        raise RuntimeError(f"NestedTensor can only be unbound along dimension 0 got dimension {dim} instead.")
    return self._nt_parts


def contiguous(self, memory_format=None):
    """Itself where contiguous, else its tensors copied into a packed one."""
    return self if is_contiguous(self) else StridedNestedTensor._make([p.contiguous() for p in self._nt_parts])


def install():
    """The methods above on ``StridedNestedTensor``."""
    for fn in (select, narrow, squeeze, unsqueeze, transpose, unbind, contiguous, is_contiguous):
        setattr(StridedNestedTensor, fn.__name__, fn)
    StridedNestedTensor._layout = layout
