"""``default_collate`` (a list of samples -> one batch) and ``default_convert`` (one sample's
numpy arrays -> tensors), with torch's rules for each kind of element."""

import collections.abc
import copy
import functools

from gt import dtypes
from gt.sharding.mesh import get_mesh
from gt.tensor import Tensor, from_numpy, stack, tensor
from gt.tensor.promotion import promote_types

_ERROR = "default_collate: batch must contain tensors, numpy arrays, numbers, dicts or lists; found {}"


def _numpy_kind(x):
    """'array' for a numpy array, 'scalar' for a numpy scalar, None otherwise; by class name, so
    this layer needs no numpy import."""
    for cls in type(x).__mro__:
        if cls.__module__ == "numpy" and cls.__name__ in ("ndarray", "generic"):
            return "array" if cls.__name__ == "ndarray" else "scalar"
    return None


def _is_text(dtype):
    """numpy's string, bytes and object dtypes: no tensor holds them."""
    return dtype.kind in "SaUO"


def rebuild(elem, values):
    """``values`` in a container of ``elem``'s type (torch's rule: mutable containers are copied
    and filled, others rebuilt, a plain dict or list where the type cannot be rebuilt)."""
    if isinstance(elem, collections.abc.Mapping):
        try:
            if isinstance(elem, collections.abc.MutableMapping):
                clone = copy.copy(elem)
                clone.update(values)
                return clone
            return type(elem)(values)
        except TypeError:
            return dict(values)
    try:
        if isinstance(elem, collections.abc.MutableSequence):
            clone = copy.copy(elem)
            for i, value in enumerate(values):     # item by item, as torch: a deque takes no slice
                clone[i] = value
            return clone
        return type(elem)(values)
    except TypeError:
        return list(values)


def _as_data(batch):
    """A stacked batch placed as gt places data (DESIGN.md): split along the batch axis over a
    mesh of several devices when that axis spans it, so a training step runs data parallel.
    Samples are replicated slices, and stacking them alone would leave the batch replicated."""
    size = get_mesh().size
    if size > 1 and batch.ndim >= 1 and batch.shape[0] >= size and not batch.requires_grad:
        return batch.shard(0)
    return batch


def default_collate(batch):
    """Join a list of samples into one batch, element kind by element kind, as torch does:

    - gt tensors: ``gt.stack(batch, 0)`` (same shapes required); on a mesh of several devices
      the batch is ``Shard(0)`` like other data (when it has at least one row per device);
    - numpy arrays: ``gt.from_numpy`` each, then stacked (string/object arrays are a TypeError);
      numpy scalars: one 1-D tensor. Their dtype is kept (uint8, uint16/32/64, int8, int16 and
      float16 too, as torch's);
    - Python ``float``: a float64 tensor (torch's rule, although gt's default float is float32);
      ``int``: int64; ``bool``: bool; ``str``/``bytes``: the list unchanged;
    - dicts, namedtuples, tuples and lists: collated field by field (a tuple gives a list, as in
      torch); sequences must all have the same length.

        >>> default_collate([{"x": 1.0, "y": [1, 2]}, {"x": 2.0, "y": [3, 4]}])["y"][0].tolist()
        [1, 3]
    """
    if not batch:
        raise ValueError("default_collate: batch is empty (expected a list of at least one sample)")
    elem = batch[0]
    kind = _numpy_kind(elem)
    if isinstance(elem, Tensor):
        return _as_data(stack(list(batch), 0))
    if kind == "array":
        if _is_text(elem.dtype):
            raise TypeError(_ERROR.format(elem.dtype))
        return _as_data(stack([from_numpy(b) if type(b) is type(elem) else _as_tensor(b) for b in batch], 0))
    if kind == "scalar" and not _is_text(elem.dtype):
        return tensor(list(batch), dtype=_scalars_dtype(batch))
    if isinstance(elem, float):
        return tensor(list(batch), dtype=dtypes.float64)
    if isinstance(elem, int):
        return tensor(list(batch))
    if isinstance(elem, (str, bytes)):
        return batch
    if isinstance(elem, collections.abc.Mapping):
        return rebuild(elem, {key: default_collate([d[key] for d in batch]) for key in elem})
    if isinstance(elem, tuple) and hasattr(elem, "_fields"):  # a namedtuple
        return type(elem)(*(default_collate(s) for s in zip(*batch)))
    if isinstance(elem, collections.abc.Sequence):
        if any(len(b) != len(elem) for b in batch):
            raise RuntimeError("each element in list of batch should be of equal size")
        columns = [default_collate(s) for s in zip(*batch)]
        return columns if isinstance(elem, tuple) else rebuild(elem, columns)
    raise TypeError(_ERROR.format(type(elem)))


def _as_tensor(sample):
    """``torch.as_tensor`` of a sample of a batch of arrays that is not of the first's class."""
    if isinstance(sample, Tensor):
        return sample
    return from_numpy(sample) if _numpy_kind(sample) == "array" else tensor(sample)


def _scalars_dtype(batch):
    """torch's dtype for a list of numpy scalars: its elements' dtypes promoted (a list alone
    would lose the scalars' dtypes); one element of each kind is enough to look at."""
    firsts = {}
    for b in batch:
        firsts.setdefault(getattr(b, "dtype", type(b)), b)
    return functools.reduce(promote_types, (tensor(b).dtype for b in firsts.values()))


def default_convert(data):
    """One sample with its numpy arrays and numpy scalars turned into gt tensors (arrays share
    memory, as ``torch.as_tensor`` does), recursing into dicts, namedtuples, tuples and lists (a
    tuple gives a list, as in torch); Python numbers, strings and the rest are left as they are.
    ``DataLoader(batch_size=None)`` applies it to each sample."""
    kind = _numpy_kind(data)
    if kind is not None:
        if _is_text(data.dtype):
            return data
        return from_numpy(data) if kind == "array" else tensor(data)
    if isinstance(data, (Tensor, str, bytes)):
        return data
    if isinstance(data, collections.abc.Mapping):
        return rebuild(data, {key: default_convert(data[key]) for key in data})
    if isinstance(data, tuple) and hasattr(data, "_fields"):
        return type(data)(*(default_convert(d) for d in data))
    if isinstance(data, tuple):
        return [default_convert(d) for d in data]
    if isinstance(data, collections.abc.Sequence):
        return rebuild(data, [default_convert(d) for d in data])
    return data
