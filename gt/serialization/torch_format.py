"""torch's checkpoint format, read and written without torch: a zip archive of ``data.pkl`` (the
object, each tensor a ``torch._utils._rebuild_tensor_v2`` call on a storage named by a persistent
id) and ``data/<key>`` (each storage's bytes, little-endian), as ``torch.save`` writes since torch
1.6. ``torch.load`` (``weights_only=True`` too) reads what ``write`` makes, and ``read`` reads what
``torch.save`` made, tensors becoming gt tensors.

Where gt differs: numpy arrays of a tensor dtype are written as tensors (torch's format has no
arrays, and gt's ``state_dict()`` holds arrays: torch reads them as its state dicts), so they load
back as gt tensors (other arrays, of strings say, stay numpy arrays); sparse COO tensors are written
and read (gt/serialization/sparse_format.py); torch's other sparse layouts, nested
tensors and untyped storages (but the bytes of a uint16/32/64 tensor, which
``_rebuild_tensor_v3`` names with its dtype) are refused by name; quantized tensors are written
and read (gt/serialization/quantized_format.py). A ``Parameter`` loads as ``gt.nn.Parameter``
(the class ``gt.nn`` registers here).
Tensors of one storage stay views of one storage both ways (gt/serialization/storages.py).
"""

import _compat_pickle
import collections
import io
import pickle
import struct
import sys

import numpy as np

from gt import dtypes
from gt.devices import device
from gt.serialization import quantized_format, script_objects, sparse_format, storages
from gt.tensor import Tensor

# torch's storage class of each dtype (the persistent id names it), and numpy's dtype of its bytes
_STORAGES = {"float32": "FloatStorage", "float64": "DoubleStorage", "float16": "HalfStorage",
             "bfloat16": "BFloat16Storage", "int64": "LongStorage", "int32": "IntStorage",
             "int16": "ShortStorage", "int8": "CharStorage", "uint8": "ByteStorage", "bool": "BoolStorage",
             "complex64": "ComplexFloatStorage", "complex128": "ComplexDoubleStorage"}
_DTYPE_OF_STORAGE = {v: k for k, v in {**_STORAGES, **quantized_format.STORAGES}.items()}
# numpy has no bfloat16: its 16 bits, widened to float32 on reading; an untyped storage's bytes
_BYTES_DTYPE = {"bfloat16": "<u2", "untyped": "u1", **quantized_format.BYTES}
_ALIGNMENT = 64                         # torch aligns each record's bytes (for mmap=True)
_TORCH_DTYPES = {"float32": "float32", "float": "float32", "float64": "float64", "double": "float64",
                 "float16": "float16", "half": "float16", "bfloat16": "bfloat16", "int64": "int64",
                 "long": "int64", "int32": "int32", "int": "int32", "int16": "int16", "int8": "int8",
                 "uint8": "uint8", "bool": "bool", "complex64": "complex64", "complex128": "complex128",
                 "uint16": "uint16", "uint32": "uint32", "uint64": "uint64"}
# the dtypes torch has no typed storage class of: written as ``_rebuild_tensor_v3`` of an untyped
# storage (its bytes) and the dtype, as torch.save writes them
_UNTYPED = frozenset(("uint16", "uint32", "uint64"))


LEGACY_MAGIC = 0x1950a86a20f9469cfc6c     # the first object of torch's files before its zip format


def python3_name(module, name):
    """The Python 3 name of a global a pickle of protocol 2 or less names in Python 2's terms
    (``__builtin__.set``), as pickle itself maps it when it imports one."""
    if (module, name) in _compat_pickle.NAME_MAPPING:
        return _compat_pickle.NAME_MAPPING[(module, name)]
    return _compat_pickle.IMPORT_MAPPING.get(module, module), name


def is_zip(f):
    """Whether the path or binary file ``f`` (left where it was) starts as a zip archive does."""
    if hasattr(f, "read"):
        start = f.tell()
        head = f.read(4)
        f.seek(start)
        return head == b"PK\x03\x04"
    with open(f, "rb") as src:          # the magic alone, as torch: a truncated archive is a damaged one
        return src.read(4) == b"PK\x03\x04"


# ---- writing ----------------------------------------------------------------------------------------
class _Global:
    """A name in another module, written as pickle's GLOBAL without importing that module (torch
    need not be installed to write torch's format)."""

    def __init__(self, module, name):
        self.module, self.name = module, name

    def __call__(self, *args):
        raise TypeError(f"{self.module}.{self.name} is a name to write, not to call")


class _Plain:
    """A tensor to rebuild without ``requires_grad`` (a Parameter's data)."""

    def __init__(self, tensor):
        self.tensor = tensor


class _TorchPickler(pickle._Pickler):
    """pickle's Python pickler (its C one checks that every global can be imported) with tensors
    and numpy arrays written as torch's rebuild calls and their bytes put aside in ``records``."""

    dispatch = dict(pickle._Pickler.dispatch)

    def __init__(self, file, records):
        super().__init__(file, protocol=2)
        self.records, self._globals, self._keys, self.written = records, {}, {}, storages.Written()

    def _global(self, module, name):
        return self._globals.setdefault((module, name), _Global(module, name))

    def _write_global(self, obj):
        self.write(pickle.GLOBAL + f"{obj.module}\n{obj.name}\n".encode("utf-8"))
        self.memoize(obj)

    dispatch[_Global] = _write_global

    def _write_dtype(self, obj):              # a gt dtype is torch's of its name (torch.float32)
        self.save(self._global("torch", obj.name))

    dispatch[dtypes.DType] = _write_dtype

    def save(self, obj, save_persistent_id=True):
        if script_objects.is_script_object(obj) and id(obj) not in self.memo:
            return script_objects.write(self, obj, self._global("torch", "ScriptObject"))
        return super().save(obj, save_persistent_id)

    def persistent_id(self, obj):
        if not isinstance(obj, storages.Storage):
            return None
        key = self._keys.get(id(obj))
        if key is None:                       # a storage's first tensor: its record
            key = self._keys[id(obj)] = str(len(self.records))
            self.records.append(obj.data)
        module = "torch.storage" if obj.storage == "UntypedStorage" else "torch"
        return "storage", self._global(module, obj.storage), key, "cpu", obj.numel

    def reducer_override(self, obj):
        if isinstance(obj, quantized_format.QuantizedTensor):
            return quantized_format.reduce(obj, self._global,
                                           lambda a, kind: storages.Storage(a.reshape(-1), kind, a.size))
        if getattr(obj, "_is_sparse_layout", False) or isinstance(obj, sparse_format.LayoutName):
            return sparse_format.reduce(obj, self._global)
        if isinstance(obj, Tensor):
            if getattr(type(obj), "_is_param", False):
                return self._global("torch._utils", "_rebuild_parameter"), \
                    (_Plain(obj), obj.requires_grad, collections.OrderedDict())
            return self._rebuild(obj, obj.dtype.name, obj.requires_grad)
        if isinstance(obj, _Plain):
            return self._rebuild(obj.tensor, obj.tensor.dtype.name, False)
        if isinstance(obj, np.ndarray) and (obj.dtype.name in _STORAGES or obj.dtype.name in _UNTYPED):
            return self._rebuild(obj, obj.dtype.name, False)
        if isinstance(obj, device):       # as torch.device, which torch.load (weights_only too) reads
            return self._global("torch", "device"), (obj.type,) if obj.index is None else (obj.type, obj.index)
        return NotImplemented            # anything else (an array of strings too) is pickled as it is

    def _rebuild(self, obj, dtype, requires_grad):
        """torch's rebuild call of the gt tensor or numpy array ``obj``: a view of its storage (written
        once, whole), or of a copy of its own where gt cannot place it in one."""
        if dtype not in _STORAGES and dtype not in _UNTYPED:
            raise TypeError(f"gt.save: torch's format has no {dtype} tensors; cast to one of "
                            f"{sorted(_STORAGES.keys() | _UNTYPED)}")
        untyped = dtype in _UNTYPED

        def make(whole):
            if untyped:
                return storages.Storage(whole, "UntypedStorage", whole.nbytes)
            return storages.Storage(whole, _STORAGES[dtype], whole.size)

        placed = self.written.place(obj, dtype, make)
        if placed is None:
            array = _values(obj) if isinstance(obj, Tensor) else obj
            array = np.asarray(array, dtype=np.dtype(_BYTES_DTYPE.get(dtype, dtype)).newbyteorder("<"))
            if not array.flags.c_contiguous:
                array = array.copy(order="C")         # (np.ascontiguousarray would make a 0-d array 1-d)
            stride = tuple(s // array.itemsize for s in array.strides) if array.size else (1,) * array.ndim
            placed = make(array.reshape(-1)), 0, stride
        storage, offset, stride = placed
        size = tuple(obj.shape)
        if untyped:
            return self._global("torch._utils", "_rebuild_tensor_v3"), (storage, offset, size, stride, requires_grad,
                                                                       collections.OrderedDict(),
                                                                       dtypes.to_dtype(dtype))
        return self._global("torch._utils", "_rebuild_tensor_v2"), \
            (storage, offset, size, stride, requires_grad, collections.OrderedDict())


def _values(t):
    """A gt tensor's values as a numpy array; bfloat16 as the top 16 bits of its float32 values
    (exact: each is a bfloat16 value)."""
    if t.dtype.name == "bfloat16":
        wide = np.array(t.detach().to(dtypes.float32).numpy(), dtype=np.float32, order="C")
        return (wide.view(np.uint32) >> 16).astype(np.uint16)
    return t.detach().numpy()


class _FromHere:
    """A binary file seen from where it is now: torch reads an archive's offsets from where the
    archive starts, zipfile writes them from the file's start."""

    def __init__(self, f):
        self.f, self.start = f, f.tell()

    def tell(self):
        return self.f.tell() - self.start

    def seek(self, offset, whence=0):
        return self.f.seek(offset + self.start if whence == 0 else offset, whence) - self.start

    def write(self, data):
        return self.f.write(data)

    def flush(self):
        return self.f.flush()


def write(obj, f):
    """Write ``obj`` to the binary file ``f`` in torch's zip format (records under ``archive/``)."""
    pickled, records = io.BytesIO(), []
    _TorchPickler(pickled, records).dump(obj)
    entries = [("data.pkl", pickled.getvalue()), (".format_version", b"1"), (".storage_alignment", b"64"),
               ("byteorder", b"little")]
    # each storage's bytes as they lie in memory (a numpy array): no copy of all of them at once
    entries += [(f"data/{key}", memoryview(np.ascontiguousarray(data)).cast("B")) for key, data in enumerate(records)]
    entries += [("version", b"3"), (".data/serialization_id", b"0" * 40)]
    import zipfile      # here, not with gt: zipfile (and the shutil, bz2, lzma it loads) is a few ms of `import gt`
    try:
        start = f.tell()
    except (AttributeError, OSError):
        start = 0                           # a stream that cannot tell: zipfile writes it from its start
    with zipfile.ZipFile(_FromHere(f) if start else f, "w", zipfile.ZIP_STORED) as zf:
        for name, data in entries:
            info = zipfile.ZipInfo(f"archive/{name}", date_time=(1980, 1, 1, 0, 0, 0))
            start = zf.fp.tell() + 30 + len(info.filename.encode("utf-8")) + 4   # where the bytes begin
            pad = -start % _ALIGNMENT
            info.extra = struct.pack("<HH", 0x4246, pad) + b"\0" * pad           # torch's "FB" padding field
            zf.writestr(info, data)


# ---- reading ----------------------------------------------------------------------------------------
class _StorageType:
    def __init__(self, dtype):
        self.dtype = dtype


class _TorchUnpickler(pickle.Unpickler):
    """Reads ``data.pkl``: torch's rebuild calls make gt tensors from the archive's storages."""

    def __init__(self, file, archive, prefix, weights_only, allowed, place=None):
        super().__init__(file)
        self.archive, self.prefix, self.weights_only, self.allowed = archive, prefix, weights_only, allowed
        self.storages, self.place, self.placed = {}, place, set()

    def find_class(self, module, name):
        if module == "torch._utils" and name in ("_rebuild_tensor_v2", "_rebuild_tensor"):
            return _rebuild_tensor
        if (module, name) == ("torch._utils", "_rebuild_tensor_v3"):
            return _rebuild_tensor_v3
        if quantized_format.find(module, name) is not None:       # _rebuild_qtensor, torch.per_tensor_affine...
            return quantized_format.find(module, name)
        if sparse_format.find(module, name) is not None:          # _rebuild_sparse_tensor, _get_layout
            return sparse_format.find(module, name)
        if (module, name) == ("torch.storage", "UntypedStorage"):
            return _StorageType("untyped")    # its bytes; _rebuild_tensor_v3 reads them as its dtype
        if module == "torch._utils" and name in ("_rebuild_parameter", "_rebuild_parameter_with_state"):
            return _rebuild_parameter
        if (module, name) == ("torch._tensor", "_rebuild_from_type_v2"):
            return _rebuild_from_type      # a tensor with attributes of its own (t.note = ...)
        if (module, name) == ("torch", "Tensor"):
            return Tensor
        if module == "torch" and name in _DTYPE_OF_STORAGE:
            return _StorageType(_DTYPE_OF_STORAGE[name])
        if module == "torch" and name in _TORCH_DTYPES:
            return dtypes.to_dtype(_TORCH_DTYPES[name])
        if (module, name) == ("torch", "Size"):
            return tuple
        if (module, name) == ("torch", "device"):
            return device
        if (module, name) == ("torch", "ScriptObject") and not self.weights_only:
            return script_objects.ScriptObjectState      # read as its state (torch's own class would need TorchScript)
        if self.weights_only and python3_name(module, name) not in self.allowed:
            raise pickle.UnpicklingError(
                f"gt.load(weights_only=True): the file names {module}.{name}, which is not a tensor, a container, a "
                "number or a string gt can read; load it with weights_only=False only if you trust its source")
        return super().find_class(module, name)

    def persistent_load(self, pid):
        kind, storage_type, key = pid[0], pid[1], pid[2]
        if kind != "storage" or not isinstance(storage_type, _StorageType):
            raise pickle.UnpicklingError(f"gt.load: torch storage {pid[:2]!r} is not one gt reads (typed storages "
                                         f"of {sorted(_STORAGES)})")
        if key not in self.storages:
            dtype = storage_type.dtype
            kind = np.dtype(_BYTES_DTYPE.get(dtype, dtype)).newbyteorder("<")
            self.storages[key] = storages.Loaded(self.archive.read_record(f"{self.prefix}data/{key}", kind), dtype)
        if self.place is not None and key not in self.placed:
            self.placed.add(key)
            # a callable map_location, once a storage, given it and its recorded location (map_location.py)
            self.storages[key] = self.place(self.storages[key], pid[3])
        return self.storages[key]


def _rebuild_tensor(storage, offset, size, stride, requires_grad=False, backward_hooks=None, metadata=None):
    """A view of the storage (gt/serialization/storages.py): tensors of one storage share memory."""
    return storage.tensor(offset, size, stride, requires_grad)


def _rebuild_tensor_v3(storage, offset, size, stride, requires_grad, backward_hooks, dtype, metadata=None):
    """A tensor torch wrote with its dtype beside an untyped storage (uint16/32/64); ``offset`` and
    ``stride`` count its elements."""
    name = dtype.name
    if name not in _UNTYPED or storage.dtype != "untyped":
        raise pickle.UnpicklingError(f"gt.load: a {storage.dtype} storage read as {dtype!r}, which gt does not read "
                                     "this way")
    return storage.retyped(name, np.dtype(name).newbyteorder("<")).tensor(offset, size, stride, requires_grad)


_PARAMETER = []      # gt.nn.Parameter, which gt.nn (a layer above this one) registers


def register_parameter_type(cls):
    """Make ``cls`` (``gt.nn.Parameter``) the class torch's Parameters load as."""
    _PARAMETER[:] = [cls]


def _rebuild_parameter(data, requires_grad, backward_hooks=None, state=None):
    param = _PARAMETER[0](data, requires_grad) if _PARAMETER else data._set_requires_grad(requires_grad)
    return _set_state(param, state)


def _rebuild_from_type(func, new_type, args, state):
    return _set_state(func(*args), state)


def _set_state(tensor, state):
    """The attributes torch pickled with a tensor (its ``__dict__``, or that and its slots)."""
    for part in (state if isinstance(state, tuple) else (state,)):
        for name, value in (part or {}).items():
            setattr(tensor, name, value)
    return tensor


class _Records:
    """The records of an archive as numpy arrays: read into writable memory of their own, or with
    ``mmap`` mapped from the file at ``mmap`` (a path) copy-on-write, as torch's ``mmap=True``."""

    def __init__(self, archive, mmap=None):
        self.archive, self.mmap = archive, mmap

    def read_record(self, name, dtype):
        info = self.archive.getinfo(name)
        if self.mmap is not None and info.compress_type == 0 and info.file_size % dtype.itemsize == 0:
            with open(self.mmap, "rb") as src:       # where the bytes start: past the local header's name and extra
                src.seek(info.header_offset)
                head = src.read(30)
            start = info.header_offset + 30 + sum(struct.unpack("<HH", head[26:30]))
            if start % dtype.itemsize == 0:
                if not info.file_size:
                    return np.zeros(0, dtype)
                return np.memmap(self.mmap, dtype=dtype, mode="c", offset=start,
                                 shape=(info.file_size // dtype.itemsize,))
        flat = np.empty(info.file_size // dtype.itemsize, dtype)
        with self.archive.open(info) as src:
            src.readinto(memoryview(flat).cast("B"))
        return flat


def read(f, weights_only, allowed, place=None, mmap=False):
    """The object in the torch zip archive at the path or binary file ``f`` (``mmap``: a path, its
    storages mapped from the file)."""
    import zipfile      # as in write
    try:
        archive = zipfile.ZipFile(f)
    except zipfile.BadZipFile as e:      # torch's error type for a damaged archive
        raise RuntimeError(f"gt.load: the file is not a complete zip archive ({e}); it may be truncated or "
                           "corrupted") from e
    with archive:
        pickles = [n for n in archive.namelist() if n.endswith("data.pkl")]
        if not pickles:
            raise pickle.UnpicklingError("gt.load: this zip archive has no data.pkl: it is not a torch.save file")
        prefix = pickles[0][:-len("data.pkl")]
        records = _Records(archive, f if mmap and sys.byteorder == "little" else None)
        with archive.open(pickles[0]) as data:
            obj = _TorchUnpickler(io.BytesIO(data.read()), records, prefix, weights_only, allowed, place).load()
    if isinstance(obj, storages.Loaded):
        raise pickle.UnpicklingError("gt.load: the file holds a torch storage, which gt reads only as the memory of "
                                     "the tensors saved with it")
    return obj


# ---- torch's legacy format (before torch 1.6, or _use_new_zipfile_serialization=False) ----------------
class _Inert:
    """What the first reading of a legacy file makes of every object: built and filled, nothing run."""

    def __init__(self, *args, **kwargs):
        pass

    def __setstate__(self, state):
        pass

    def __setitem__(self, key, value):
        pass

    def append(self, value):
        pass

    def extend(self, values):
        pass


class _StorageTypes(pickle.Unpickler):
    """Reads a legacy file's object only to learn each storage's dtype (they come before its bytes)."""

    def __init__(self, file):
        super().__init__(file)
        self.dtypes = {}

    def find_class(self, module, name):
        if module == "torch" and name in _DTYPE_OF_STORAGE:
            return _StorageType(_DTYPE_OF_STORAGE[name])
        return _Inert

    def persistent_load(self, pid):
        if pid[0] == "storage" and isinstance(pid[1], _StorageType):
            self.dtypes[pid[2]] = pid[1].dtype
        return _Inert()


def read_legacy(f, weights_only, allowed, place=None):
    """The object of a legacy ``torch.save`` file ``f`` (seekable), read past its magic number:
    the protocol number, the system's facts, the object, its storages' keys, then each storage as
    its length (8 bytes) and its bytes."""
    plain = _TorchUnpickler(f, None, "", True, set())
    if plain.load() != 1001 or not plain.load().get("little_endian", True):
        raise pickle.UnpicklingError("gt.load: this legacy torch file is of another protocol or byte order")
    start = f.tell()
    dtypes = _StorageTypes(f)
    dtypes.load()
    reader = _TorchUnpickler(f, None, "", weights_only, allowed, place)
    for key in _TorchUnpickler(f, None, "", True, set()).load():
        dtype = dtypes.dtypes[key]
        kind = np.dtype(_BYTES_DTYPE.get(dtype, dtype)).newbyteorder("<")
        numel = struct.unpack("<q", f.read(8))[0]
        flat = np.empty(numel, kind)
        f.readinto(memoryview(flat).cast("B"))
        reader.storages[key] = storages.Loaded(flat, dtype)
    f.seek(start)
    return reader.load()
