"""``gt.save`` and ``gt.load``, torch's names: any picklable object holding gt tensors (a state
dict, a checkpoint dict, a list), written to a path or a binary file object.

``gt.save`` writes torch's own format (a zip archive: gt/serialization/torch_format.py), so
``torch.load`` reads a gt file, ``weights_only=True`` included, and ``gt.load`` reads a
``torch.save`` file, its tensors made gt tensors; neither needs torch installed. ``gt.load`` also
reads the files older gt versions wrote (a plain pickle of numpy arrays), and
``gt.save(..., _use_new_zipfile_serialization=False)`` still writes that form. ``gt.load`` takes
``weights_only=True`` by default, as torch 2.13: the file may then hold only tensors, dicts
(``OrderedDict`` too), lists, tuples, sets, numbers, numpy scalars, strings, bytes, None and bools;
anything else is refused before it runs. Pass ``weights_only=False`` only for files you trust
(unpickling can run arbitrary code).

Where gt differs from torch: numpy arrays of a tensor dtype are saved as tensors (gt's
``state_dict()`` holds arrays; torch reads them as its state dicts' tensors), so they load back as
gt tensors (others, of strings say, stay arrays); ``map_location`` may only be None, "cpu", a dict
mapping locations to "cpu" or a callable that keeps each storage on the CPU (tensors load on gt's
current engine and device: gt/serialization/map_location.py); ``pickle_module`` must be ``pickle``. A ``Parameter`` loads as a ``gt.nn.Parameter``,
``torch.device`` and dtypes as gt's, and gt's are written as torch's. torch's legacy files (before
torch 1.6, or ``_use_new_zipfile_serialization=False``) load too. Tensors saved together keep
their shared storages both ways, as torch's (gt/serialization/storages.py), but in gt's older plain
pickle, where each is a copy.
"""

import os
import pickle

from gt import dtypes
from gt.serialization import torch_format
from gt.serialization.map_location import placer
from gt.tensor import Tensor

# What a weights-only file may name: gt's tensor rebuild, OrderedDict, numpy's array and scalar pickling
_ALLOWED = {("gt.serialization", "_rebuild_tensor"), ("collections", "OrderedDict"), ("collections", "Counter"),
            ("gt.devices", "device"), ("_codecs", "encode"),
            ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "_reconstruct"),
            ("numpy._core.multiarray", "_reconstruct"), ("numpy.core.multiarray", "scalar"),
            ("numpy._core.multiarray", "scalar"), ("builtins", "set"), ("builtins", "frozenset"),
            ("builtins", "complex"), ("builtins", "slice"),
            ("builtins", "bytearray")}


def _rebuild_tensor(array, dtype, requires_grad):
    return Tensor(array, dtype=dtypes.to_dtype(dtype), requires_grad=requires_grad)


class _Pickler(pickle.Pickler):
    def reducer_override(self, obj):
        if isinstance(obj, Tensor):
            return _rebuild_tensor, (obj.detach().numpy(), obj.dtype.name, obj.requires_grad)
        return NotImplemented


class _WeightsOnlyUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if torch_format.python3_name(module, name) not in _ALLOWED:
            raise pickle.UnpicklingError(
                f"gt.load(weights_only=True): the file names {module}.{name}, which is not a tensor, a container, a "
                "number or a string; load it with weights_only=False only if you trust its source")
        return super().find_class(module, name)


def save(obj, f, pickle_module=pickle, pickle_protocol=2, _use_new_zipfile_serialization=True):
    """Write ``obj`` (gt tensors and numpy arrays inside it stored as torch's tensors) to the path or
    binary file ``f``, in torch's format; ``_use_new_zipfile_serialization=False``: gt's older
    plain pickle (tensors as numpy arrays, ``pickle_protocol`` its protocol). ``pickle_module``
    stands in torch's place in the signature; only the standard ``pickle`` is taken.

        >>> gt.save({"w": gt.ones(2)}, "w.pt"); gt.load("w.pt")["w"].tolist()
        [1.0, 1.0]
    """
    _check_pickle_module(pickle_module)
    if not hasattr(f, "write") and not isinstance(f, (str, bytes, os.PathLike)):
        raise TypeError(f"save: f must be a path or a binary file object, got {type(f).__name__}")
    if not hasattr(f, "write"):
        parent = os.path.dirname(os.path.abspath(os.fsdecode(f)))
        if not os.path.isdir(parent):
            raise RuntimeError(f"Parent directory {parent} does not exist.")      # torch's error and message
    if _use_new_zipfile_serialization:
        if hasattr(f, "write"):
            torch_format.write(obj, f)
        else:
            with open(f, "wb") as out:
                torch_format.write(obj, out)
        return
    if hasattr(f, "write"):
        _Pickler(f, protocol=pickle_protocol).dump(obj)
        return
    with open(f, "wb") as out:
        _Pickler(out, protocol=pickle_protocol).dump(obj)


def load(f, map_location=None, pickle_module=None, *, weights_only=True, mmap=None, **pickle_load_args):
    """The object ``gt.save`` or ``torch.save`` wrote to the path or binary file ``f``, its tensors gt
    tensors; tensors saved from one storage are views of one storage again. ``weights_only``
    (default True) refuses anything but tensors, containers, numbers and strings. ``map_location``
    may be None, "cpu", a dict mapping locations to "cpu", or a callable ``(storage, location) ->
    storage`` as torch's, called once for each storage (``lambda storage, loc: storage``,
    ``storage.cpu()``, ``storage.clone()``, or None for the storage as read). ``mmap=True`` (``f`` a path to a file in torch's
    zip format): the tensors lie in the file mapped copy-on-write, as torch's (changes stay in
    memory), not read in."""
    _check_pickle_module(pickle_module)
    if mmap and not isinstance(f, (str, os.PathLike)):
        raise ValueError("f must be a file path in order to use the mmap argument")
    place = placer(map_location) if callable(map_location) else None
    targets = map_location.values() if isinstance(map_location, dict) else [] if place else [map_location]
    if any(t is not None and str(t) != "cpu" for t in targets):
        raise ValueError(f"load: map_location must be None or 'cpu', or a dict mapping locations to 'cpu' (gt "
                         f"loads tensors on its current engine and device), got {map_location!r}")
    if weights_only is None:
        weights_only = True           # torch 2.13's default
    if not isinstance(weights_only, bool):
        raise TypeError(f"load: weights_only must be True, False or None, got {weights_only!r}")
    if not hasattr(f, "read") and not isinstance(f, (str, bytes, os.PathLike)):
        raise TypeError(f"load: f must be a path or a binary file object, got {type(f).__name__}")
    if torch_format.is_zip(f):
        return torch_format.read(f, weights_only, _ALLOWED, place, mmap=bool(mmap))
    if mmap:
        raise RuntimeError(f"mmap can only be used with files saved with `torch.save({os.fsdecode(f)}, "
                           "_use_new_zipfile_serialization=True), please torch.save your checkpoint with this option "
                           "in order to use mmap.")
    if hasattr(f, "read"):
        return _load_pickle(f, weights_only, pickle_load_args, place)
    with open(f, "rb") as src:
        return _load_pickle(src, weights_only, pickle_load_args, place)


def _load_pickle(src, weights_only, pickle_load_args, place):
    """gt's older plain pickle, or torch's legacy format, which starts with its magic number."""
    unpickler = _WeightsOnlyUnpickler if weights_only else pickle.Unpickler
    obj = unpickler(src, **pickle_load_args).load()
    if type(obj) is int and obj == torch_format.LEGACY_MAGIC:
        return torch_format.read_legacy(src, weights_only, _ALLOWED, place)
    return obj


def _check_pickle_module(pickle_module):
    if pickle_module is not None and pickle_module is not pickle:
        raise ValueError(f"gt.save/gt.load: pickle_module must be the standard pickle module (gt writes and reads "
                         f"torch's format with it), got {pickle_module!r}")
