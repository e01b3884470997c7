"""``gt.save`` and ``gt.load``, torch's names: any picklable object holding gt tensors (a state
dict, a checkpoint dict, a list), written to a path or a binary file object.

Each tensor is stored as a numpy array with its dtype's name and ``requires_grad``, so a file needs
neither engine to read and loads on either. ``gt.load`` takes ``weights_only=True`` by default, as
torch 2.13: the file may then hold only tensors, dicts (``OrderedDict`` too), lists, tuples, sets,
numbers, strings, bytes, None and bools; anything else is refused before it runs. Pass
``weights_only=False`` only for files you trust (unpickling can run arbitrary code).

Where gt differs from torch: the file is a pickle, not torch's zip archive (torch cannot read it,
nor gt torch's); tensors that shared storage load as separate copies; a ``gt.nn.Parameter`` loads
as a tensor with ``requires_grad=True`` (``load_state_dict`` copies either into a module alike);
``map_location`` may only be None or "cpu" (tensors load on gt's current engine and device).
"""

import os
import pickle

from gt import dtypes
from gt.tensor import Tensor

# What a weights-only file may name: gt's tensor rebuild, OrderedDict, numpy's array and scalar pickling
_ALLOWED = {("gt.serialization", "_rebuild_tensor"), ("collections", "OrderedDict"), ("_codecs", "encode"),
            ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "_reconstruct"),
            ("numpy._core.multiarray", "_reconstruct"), ("numpy.core.multiarray", "scalar"),
            ("numpy._core.multiarray", "scalar"), ("builtins", "set"), ("builtins", "frozenset"),
            ("builtins", "complex"), ("builtins", "slice")}


def _rebuild_tensor(array, dtype, requires_grad):
    return Tensor(array, dtype=dtypes.to_dtype(dtype), requires_grad=requires_grad)


class _Pickler(pickle.Pickler):
    def reducer_override(self, obj):
        if isinstance(obj, Tensor):
            return _rebuild_tensor, (obj.detach().numpy(), obj.dtype.name, obj.requires_grad)
        return NotImplemented


class _WeightsOnlyUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if (module, name) not in _ALLOWED:
            raise pickle.UnpicklingError(
                f"gt.load(weights_only=True): the file names {module}.{name}, which is not a tensor, a container, a "
                "number or a string; load it with weights_only=False only if you trust its source")
        return super().find_class(module, name)


def save(obj, f, pickle_protocol=pickle.DEFAULT_PROTOCOL):
    """Write ``obj`` (gt tensors inside it stored as numpy arrays) to the path or binary file ``f``.

        >>> gt.save({"w": gt.ones(2)}, "w.pt"); gt.load("w.pt")["w"].tolist()
        [1.0, 1.0]
    """
    if hasattr(f, "write"):
        _Pickler(f, protocol=pickle_protocol).dump(obj)
        return
    if not isinstance(f, (str, bytes, os.PathLike)):
        raise TypeError(f"save: f must be a path or a binary file object, got {type(f).__name__}")
    with open(f, "wb") as out:
        _Pickler(out, protocol=pickle_protocol).dump(obj)


def load(f, map_location=None, *, weights_only=True, **pickle_load_args):
    """The object ``gt.save`` wrote to the path or binary file ``f``, its tensors gt tensors.
    ``weights_only`` (default True) refuses anything but tensors, containers, numbers and strings."""
    if map_location not in (None, "cpu") and str(map_location) != "cpu":
        raise ValueError(f"load: map_location must be None or 'cpu' (gt loads tensors on its current engine and "
                         f"device), got {map_location!r}")
    if not isinstance(weights_only, bool):
        raise TypeError(f"load: weights_only must be True or False, got {weights_only!r}")
    unpickler = _WeightsOnlyUnpickler if weights_only else pickle.Unpickler
    if hasattr(f, "read"):
        return unpickler(f, **pickle_load_args).load()
    if not isinstance(f, (str, bytes, os.PathLike)):
        raise TypeError(f"load: f must be a path or a binary file object, got {type(f).__name__}")
    with open(f, "rb") as src:
        return unpickler(src, **pickle_load_args).load()
