"""torch.nested: batches of tensors that differ in length (nested, or ragged, tensors).

    >>> import gt
    >>> nt = gt.nested.nested_tensor([gt.randn(2, 8), gt.randn(5, 8)], layout=gt.jagged)
    >>> nt.shape                                   # the ragged dim's size is a nested int
    (2, j1, 8)
    >>> gt.nn.Linear(8, 4)(nt).to_padded_tensor(0.0).shape
    (2, 5, 4)

The jagged layout (``layout=gt.jagged``, torch's NJT, gt/nested/jagged_tensor.py) holds one dense
``values`` tensor and ``offsets``; its ops are gt ops on ``values`` (autograd and both engines
as any gt op); ``F.scaled_dot_product_attention`` on (B, H, j, D) is one op over every sequence
(gt/ops/jagged_attention.py). The strided layout (the default of ``nested_tensor``, as torch's)
holds the list of tensors, which may differ in any dims, and supports fewer ops (torch 2.13's
set), each run per tensor. Ops neither supports raise NotImplementedError naming the op.
Gradients with respect to a nested tensor (``gt.autograd.grad(out, nt)``, ``backward(inputs=[nt])``)
are nested tensors of its structure, taken through the dense tensors behind it
(``_autograd_tensors()``), as torch's.
"""

from gt import dtypes
from gt.nested import functional as _functional  # noqa: F401  (nn functions on nested tensors)
from gt.nested import jagged_extra as _jagged_extra
from gt.nested import jagged_ops as _jagged_ops
from gt.nested import jagged_reductions as _jagged_reductions
from gt.nested import jagged_setitem as _jagged_setitem
from gt.nested import jagged_views as _jagged_views
from gt.nested import refuse as _refuse
from gt.nested import strided as _strided
from gt.nested import strided_views as _strided_views
from gt.nested.jagged_tensor import NestedBase, NestedTensor, jagged
from gt.nested.strided import StridedNestedTensor
from gt.tensor import Tensor, arange, cat, creation
from gt.tensor.compat_methods import strided

__all__ = ["nested_tensor", "as_nested_tensor", "nested_tensor_from_jagged", "narrow", "to_padded_tensor",
           "masked_select",
           "jagged", "NestedTensor", "StridedNestedTensor"]

_jagged_ops.install()
_jagged_views.install()
_jagged_reductions.install()
_strided.install()
_strided_views.install()
_jagged_extra.install()
_jagged_setitem.install()
_refuse.refuse_the_rest()


def _layout(layout):
    if layout is None or layout == strided:
        return strided
    if layout == jagged:
        return jagged
    raise RuntimeError(f"Specified layout is unsupported for nested tensors: {layout}")


def _components(tensor_list, dtype, device):
    """The list's tensors (lists of numbers become tensors), checked as torch checks them."""
    if isinstance(tensor_list, Tensor):     # a dense tensor's rows, or a nested tensor's tensors
        tensor_list = tensor_list.unbind(0) if tensor_list.ndim else [tensor_list]
    if not isinstance(tensor_list, (list, tuple)):
        raise TypeError(f"nested_tensor(): expected a list of tensors, got {type(tensor_list).__name__}")
    if not tensor_list:
        raise RuntimeError("Cannot construct a nested tensor from an empty tensor list")
    parts = [t if isinstance(t, Tensor) else creation.tensor(t) for t in tensor_list]
    if any(p.ndim == 0 for p in parts):
        raise RuntimeError("Cannot construct a nested tensor from a list of zero-dim tensors")
    if len({p.ndim for p in parts}) > 1:
        raise RuntimeError("When constructing a nested tensor, all tensors in list must have the same dim")
    if len({p.dtype for p in parts}) > 1:
        raise RuntimeError("When constructing a nested tensor, all tensors in list must have the same dtype")
    if dtype is not None or device is not None:
        parts = [p.to(device=device, dtype=dtype) for p in parts]
    return parts


def _from_parts(parts, leaf):
    """A jagged nested tensor of ``parts`` (one ragged dim, the first); ``leaf``: the values a new
    leaf that requires grad."""
    if len({p.shape[1:] for p in parts}) > 1:
        raise RuntimeError("Cannot represent given tensor list as a nested tensor with the jagged layout. Note "
                           "that the jagged layout only allows for a single ragged dimension. For example: (B, *, "
                           "D_0, D_1, ..., D_N), with ragged * dim.")
    values = cat(parts, 0)
    lengths = [0] + [p.shape[0] for p in parts]
    offsets = creation.tensor(lengths, dtype=dtypes.int64).cumsum(0).to(values.device)
    if leaf:
        values = values.detach()._set_requires_grad(True)
    return _jagged_extra.fill_seqlens(NestedTensor._make(values, offsets, leaf=leaf))


def nested_tensor(tensor_list, *, dtype=None, layout=None, device=None, requires_grad=False, pin_memory=False):
    """A nested tensor holding copies of ``tensor_list``'s tensors (or lists of numbers): a new
    leaf (``requires_grad=True``: its ``.grad`` after backward is a nested tensor), as torch's.
    ``layout=gt.jagged``: the tensors may differ in their first dim only; the default
    (``gt.strided``) in any."""
    layout = _layout(layout)
    parts = [p.detach() for p in _components(tensor_list, dtype, device)]
    if layout == jagged:
        return _from_parts(parts, requires_grad)
    return StridedNestedTensor._make([p.clone() for p in parts])._set_requires_grad(requires_grad)


def as_nested_tensor(ts, dtype=None, device=None, layout=None):
    """A nested tensor made from ``ts`` keeping its autograd history (gradients reach the list's
    tensors): a list of tensors, a dense (B, n, ...) tensor (B sequences of length n, a view of
    it), or a nested tensor (itself where the layout, dtype and device already match)."""
    layout = _layout(layout)
    if isinstance(ts, NestedBase):
        if ts.layout != layout:
            raise RuntimeError(f"as_nested_tensor(): converting a {ts.layout} nested tensor to {layout} is not "
                               "supported in gt")
        return ts if dtype in (None, ts.dtype) and device is None else ts.to(device=device, dtype=dtype)
    if isinstance(ts, Tensor) and layout == jagged:
        if ts.ndim < 2:
            raise RuntimeError(f"as_nested_tensor(): a dense tensor needs a batch and a sequence dim, got shape "
                               f"{tuple(ts.shape)}")
        b, n = ts.shape[0], ts.shape[1]
        values = ts.reshape(b * n, *ts.shape[2:]).to(device=device, dtype=dtype)
        return NestedTensor._make(values, (arange(b + 1) * n).to(values.device),
                                  meta={"max_seqlen": n, "min_seqlen": n})
    parts = _components(ts, dtype, device)
    return _from_parts(parts, False) if layout == jagged else StridedNestedTensor._make(parts)


def nested_tensor_from_jagged(values, offsets=None, lengths=None, jagged_dim=None, min_seqlen=None,
                              max_seqlen=None):
    """A jagged nested tensor that is a view of ``values`` (gradients reach it): sequence i is
    ``values[offsets[i]:offsets[i + 1]]`` along dim ``jagged_dim - 1`` (default 0), or
    ``lengths[i]`` long from ``offsets[i]`` where ``lengths`` is given too (holes between them);
    ``lengths`` alone: packed one after the other. ``min_seqlen``/``max_seqlen``: cached as given
    (torch's hints, unchecked: ``to_padded_tensor`` pads to ``max_seqlen``)."""
    if offsets is None and lengths is None:
        raise RuntimeError("nested_tensor_from_jagged(): At least one of offsets or lengths is required.")
    jagged_dim = 1 if jagged_dim is None else jagged_dim
    if not isinstance(values, Tensor) or not 1 <= jagged_dim <= values.ndim:
        raise RuntimeError(f"nested_tensor_from_jagged(): values must be a tensor with a dim {jagged_dim - 1} to "
                           f"be ragged, got {getattr(values, 'shape', type(values).__name__)}")
    for name, t in (("offsets", offsets), ("lengths", lengths)):
        if t is not None and (not isinstance(t, Tensor) or t.ndim != 1 or t.dtype.is_floating_point):
            raise TypeError(f"nested_tensor_from_jagged(): {name} must be a 1-d integer tensor, got "
                            f"{getattr(t, 'dtype', type(t).__name__)}")
    if offsets is None:
        offsets, lengths = cat([lengths.new_zeros(1), lengths.cumsum(0)]), None
    elif lengths is not None and offsets.shape[0] - 1 != lengths.shape[0]:
        raise RuntimeError(f"nested_tensor_from_jagged(): offsets and lengths batch sizes must match: "
                           f"offsets.shape[0] - 1 = {offsets.shape[0] - 1}, lengths.shape[0] = {lengths.shape[0]}")
    meta = {}
    for name, given in (("min_seqlen", min_seqlen), ("max_seqlen", max_seqlen)):
        if given is not None:
            if int(given) < 0:
                raise RuntimeError(f"nested_tensor_from_jagged(): {name} must be non-negative, got {int(given)}")
            meta[name] = int(given)
    return NestedTensor._make(values, offsets, lengths, jagged_dim, meta=meta)


def narrow(tensor, dim, start, length, layout=strided):
    """Sequence i of the dense (B, T, ...) ``tensor`` is ``length`` (or ``length[i]``) long from
    ``start`` (or ``start[i]``) along ``dim`` 1: with ``layout=gt.jagged`` a view of ``tensor``
    without copies (a nested tensor with holes, ``lengths()`` set), as torch's."""
    layout = _layout(layout)
    if layout == strided:
        if dim != 0:
            raise RuntimeError(f"narrow(): only dim=0 supported for nested tensors, but got: {dim}")
        return StridedNestedTensor._make(tensor.narrow(0, start, length).unbind(0))
    if dim != 1:
        raise RuntimeError("jagged layout only supports dim=1")
    b, t = tensor.shape[0], tensor.shape[1]
    start = start if isinstance(start, Tensor) else creation.full((b,), start, dtype=dtypes.int64)
    length = length if isinstance(length, Tensor) else creation.full((b,), length, dtype=dtypes.int64)
    starts = arange(b) * t + start.long()
    offsets = cat([starts, starts[-1:] + length[-1:].long()])
    return _jagged_extra.fill_seqlens(NestedTensor._make(tensor.reshape(b * t, *tensor.shape[2:]), offsets,
                                                         length.long()))


def to_padded_tensor(input, padding, output_size=None):
    """``input.to_padded_tensor(padding, output_size)``: a dense tensor of the nested tensor's
    sequences padded with ``padding`` to the longest (or to ``output_size``)."""
    if not isinstance(input, NestedBase):
        raise RuntimeError(f"to_padded_tensor(): expected a nested tensor, got {type(input).__name__}")
    return input.to_padded_tensor(padding, output_size)



def masked_select(tensor, mask):
    """A jagged nested tensor of the elements of the dense ``tensor`` where ``mask`` (broadcast to
    it) is True: one sequence per row of the last dim (``tensor.shape[:-1]`` flattened is the batch),
    its length the row's count of True, as torch's; differentiable (``tensor.masked_select``)."""
    for name, t in (("tensor", tensor), ("mask", mask)):
        if not isinstance(t, Tensor) or isinstance(t, NestedBase):
            raise RuntimeError(f"torch.nested.masked_select requires a strided {name}, given "
                               f"{getattr(t, 'layout', type(t).__name__)}")
    values = tensor.masked_select(mask)
    lengths = mask.expand(tensor.shape).sum(dim=tensor.ndim - 1).reshape(-1)
    offsets = cat([lengths.new_zeros(1), lengths.cumsum(0)]).to(values.device)
    return NestedTensor._make(values, offsets)
