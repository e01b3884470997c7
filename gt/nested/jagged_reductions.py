"""A jagged nested tensor's ``max``/``min`` (values, or torch's (values, indices) named tuple as
gt's dense ones), ``argmax``/``argmin`` and ``any``/``all``, as torch 2.13's: over a dim after the
ragged one (a nested tensor on the same offsets), over the ragged dim (dense (B, ...): each
sequence reduced over its length), or over everything (``values``' reduction; an index counts
in ``values``, as torch's). Installed on ``NestedTensor`` by ``install()``."""

from gt.nested.jagged_ops import _dims, _int_dim, _reduce, _whole, empty_extreme
from gt.nested.jagged_tensor import NestedTensor
from gt.tensor import Tensor, cat


def _dim(self, dim, name):
    d = _dims(self, dim, name)[0]
    if d == 0:
        raise RuntimeError(f"{name}(): reducing along the batch dimension but not the ragged dimension is not "
                           "supported for nested tensors")
    return d


def _over_ragged(self, reduce):
    """``reduce(part, axis)`` of each sequence along its ragged axis (keeping it), joined as a dense
    (B, ...) tensor with the ragged dim where it was (kept, length 1)."""
    if self._nt_lengths is not None:
        raise RuntimeError("reducing across the ragged dimension is not supported for non-contiguous nested "
                           "tensors with holes")
    axis = self._nt_ragged - 1
    return cat([reduce(part, axis) for part in self.unbind()], axis).movedim(axis, 0).unsqueeze(self._nt_ragged)


def _extremum(name, part, axis, index=None):
    """``name`` of ``part`` along ``axis`` kept (``index``: 0 values, 1 indices, of torch's tuple;
    None: gt's values-only form); an empty sequence gives torch's answer (``empty_extreme``)."""
    if not part.shape[axis]:
        return empty_extreme(part, axis, name if index != 1 else "arg" + name)
    if index is None:
        return getattr(part, name)(axis, True)
    return getattr(part, name)(dim=axis, keepdim=True)[index]


def _extreme(name):
    def method(self, axis=None, keepdims=False, *, dim=None, keepdim=False, other=None):
        if other is not None or isinstance(axis, Tensor):      # x.max(other): torch's elementwise maximum
            return getattr(self, name + "imum")(axis if other is None else other)
        given = axis if dim is None else dim
        if given is None:
            return _whole(self, name, keepdims or keepdim, getattr(self._nt_values, name)())
        if not isinstance(given, int):
            raise _int_dim(name, given)
        d, keep = _dim(self, given, name), keepdims or keepdim
        values, r = self._nt_values, self._nt_ragged
        if d != r:
            r_out = r if keep or d > r else r - 1
            if dim is None:         # gt's numpy form: the values only
                return self._like(getattr(values, name)(d - 1, keep), r_out, transposed=False)
            out = getattr(values, name)(dim=d - 1, keepdim=keep)
            return type(out)(*(self._like(t, r_out, transposed=False) for t in out))
        if dim is None:
            out = _over_ragged(self, lambda part, a: _extremum(name, part, a))
            return out if keep else out.squeeze(r)
        parts = [_over_ragged(self, lambda part, a: _extremum(name, part, a, i)) for i in (0, 1)]
        return type(getattr(values, name)(dim=0))(*(p if keep else p.squeeze(r) for p in parts))

    method.__name__ = name
    method.__doc__ = (f"``{name}`` over a dim after the ragged one (nested), the ragged dim (dense (B, ...)) or all "
                      "(a 0-d tensor); with ``dim=``, torch's (values, indices) named tuple, as gt's dense ``max``.")
    return method


def _arg(name):
    def method(self, dim=None, keepdim=False):
        if dim is None:
            return _whole(self, name, keepdim, getattr(self._nt_values, name)())
        if not isinstance(dim, int):
            raise _int_dim(name, dim)
        d, r = _dim(self, dim, name), self._nt_ragged
        if d != r:
            return self._like(getattr(self._nt_values, name)(d - 1, keepdim), r if keepdim or d > r else r - 1,
                              transposed=False)
        out = _over_ragged(self, lambda part, a: _extremum(name, part, a))
        return out if keepdim else out.squeeze(r)

    method.__name__ = name
    method.__doc__ = f"``{name}`` over a dim after the ragged one (nested), the ragged dim (dense) or all (0-d)."
    return method


def install():
    """The methods above on ``NestedTensor``."""
    for name in ("max", "min"):
        setattr(NestedTensor, name, _extreme(name))
    for name in ("argmax", "argmin"):
        setattr(NestedTensor, name, _arg(name))
    for name in ("any", "all"):
        setattr(NestedTensor, name, _reduce(name))
