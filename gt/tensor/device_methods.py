"""Devices on tensors: torch's ``Tensor.to`` in all its forms (a dtype, a device, both, another
tensor; ``copy=``, ``non_blocking=``), ``cpu()``, ``cuda()``, and the ``device=`` argument of the
creation functions (``accepts_device``).

gt places tensors itself (DESIGN.md): unsharded tensors live on the home device and sharded ones
over the mesh, so ``x.to(device)`` is most often ``x`` itself, as torch's is for a tensor
already there. A move is a recorded op (gradients go back), made for an unsharded tensor on an
engine with that device; a sharded tensor is not gathered onto one device by ``to`` (gt's
placement API does that), and a device this process does not have is refused by name (on a
machine without CUDA, torch's ``AssertionError``, which ``gt.devices.CudaUnavailableError`` is).
``memory_format`` is accepted and changes nothing: gt has no strided layouts, so values and
gradients are the same in every format.

Mixed into ``gt.Tensor``; ``Tensor`` below is bound by gt/tensor/core.py once the class exists.
"""

import functools

from gt import dtypes
from gt.autograd import function
from gt.backend import B
from gt.devices import GT_TYPES, CudaUnavailableError, as_device, device
from gt.ops import elementwise as ew

Tensor = None  # gt.Tensor, bound by gt/tensor/core.py


def check_device(dev, what):
    """``dev`` (already a ``device``) if this process can put a tensor there, else torch's error."""
    if dev.type not in GT_TYPES:
        raise RuntimeError(f"{what}: gt computes on 'cpu' and 'cuda' devices, not on {dev.type!r} ({dev!r})")
    if dev.type == "cuda":
        count = B.cuda_device_count()
        if count == 0:
            raise CudaUnavailableError(
                f"{what}: no CUDA device in this process (torch: 'Torch not compiled with CUDA enabled'); gt "
                "uses GPUs with its torch engine on a machine with NVIDIA GPUs (GT_BACKEND=torch or GT_AUTO_SHARD=1). "
                "Write device = 'cuda' if gt.cuda.is_available() else 'cpu'")
        if dev.index is not None and dev.index >= count:
            raise RuntimeError(f"{what}: CUDA error: invalid device ordinal (device {dev.index}; this process has "
                               f"{count} CUDA device{'s' if count != 1 else ''})")
    return dev


def _there(t, dev):
    """Whether every block of ``t`` is on ``dev`` (a device without an index: any of its type)."""
    p = t._placed
    places = [B.device_of(t._array)] if p is None else [B.device_of(s) for s in p.shards]
    for name in places:
        here = device(name)
        if here.type != dev.type:
            return False
        if dev.index is not None and (here.index or 0) != dev.index:
            return False
    return True


def moved(t, dev, what="Tensor.to"):
    """``t`` on ``dev`` (a ``device`` or None): itself when it is there already."""
    if dev is None:
        return t
    check_device(dev, what)
    if _there(t, dev):
        return t
    if t._placed is not None:
        raise RuntimeError(f"{what}({str(dev)!r}): this tensor is sharded over the mesh ({t.placement}); gt places "
                           "sharded tensors itself and does not gather them onto one device here (gather it with "
                           "x.redistribute(gt.Replicate()) or x.full_tensor() first)")
    return ew.ToDevice.apply(t, _target(dev))


def _target(dev):
    """The engine's name of ``dev`` (a CUDA device without an index: the first)."""
    return str(dev) if dev.index is not None or dev.type == "cpu" else f"{dev.type}:0"


def move_in_place(t, dev, what):
    """Put ``t``'s values, and its ``.grad``'s, on ``dev``, keeping the tensor object (a module's
    parameters, which an optimizer holds), as torch's ``Module.to`` does."""
    if _there(t, dev):
        return
    if t._placed is not None:
        raise RuntimeError(f"{what}({str(dev)!r}): a parameter is sharded over the mesh ({t.placement}); gt places "
                           "sharded tensors itself")
    t._data = B.to_device(t._data, _target(dev))
    if t._grad_value is not None:
        move_in_place(t._grad_value, dev, what)


def _to_args(args, kwargs):
    """torch's three forms of ``to``: (dtype, non_blocking, copy), (device, dtype, non_blocking,
    copy), (tensor, non_blocking, copy); keywords ``device``, ``dtype``, ``non_blocking``,
    ``copy``, ``memory_format``. Returns (device or None, dtype or None, copy)."""
    kwargs = dict(kwargs)
    unknown = set(kwargs) - {"device", "dtype", "non_blocking", "copy", "memory_format"}
    if unknown:
        raise TypeError(f"to() got an unexpected keyword argument {sorted(unknown)[0]!r}")
    args = list(args)
    dev = dtype = None
    if args:
        first = args[0]
        if isinstance(first, Tensor):
            if "device" in kwargs or "dtype" in kwargs:
                raise TypeError("to(other): device and dtype come from the other tensor; pass neither")
            dev, dtype = device(first.device), first.dtype
            names = ("non_blocking", "copy")
            args = args[1:]
        elif _is_device(first):
            if "device" in kwargs:
                raise TypeError("to() got multiple values for argument 'device'")
            dev = first
            names = ("dtype", "non_blocking", "copy", "memory_format")
            args = args[1:]
        else:
            names = ("dtype", "non_blocking", "copy", "memory_format")
        if len(args) > len(names):
            raise TypeError(f"to() takes at most {len(names) + 1} positional arguments ({len(args) + 1} given)")
        for name, value in zip(names, args):
            if name in kwargs:
                raise TypeError(f"to() got multiple values for argument {name!r}")
            kwargs[name] = value
    dev = as_device(kwargs.get("device", dev), "to(device)")
    if kwargs.get("dtype") is not None:
        dtype = dtypes.to_dtype(kwargs["dtype"])
    copy = kwargs.get("copy", False)
    if not isinstance(copy, bool):
        raise TypeError(f"to(copy=...): expected True or False, got {copy!r}")
    return dev, dtype, copy


def _is_device(value):
    if isinstance(value, device) or (isinstance(value, int) and not isinstance(value, bool)):
        return True
    if isinstance(value, str):
        try:
            device(value)
        except RuntimeError:
            return False          # a dtype name ("float32"), as gt's to() takes too
        return True
    return type(value).__name__ == "device"     # a torch.device


def module_to_args(args, kwargs):
    """``Module.to``'s forms (those of ``Tensor.to``; ``copy`` is not one): (device, dtype)."""
    if "copy" in kwargs:
        raise RuntimeError(".to() does not accept copy argument")
    dev, dtype, _ = _to_args(args, kwargs)
    return dev, dtype


def parse_device(device, what):
    """A creation function's ``device=`` (None, a name, an index, a ``gt.device`` or torch's) as
    a ``device`` this process can put a tensor on, or None; torch's errors otherwise. Called
    before any work, so a bad device loses nothing."""
    dev = as_device(device, f"{what}(device)")
    return None if dev is None else check_device(dev, f"{what}(device={str(dev)!r})")


# torch's event of a creation function where it is not ``aten::`` and its name (torch.tensor's
# last step; aten::empty and aten::to come before it there)
_CREATION_EVENTS = {"tensor": "aten::lift_fresh", "new_tensor": "aten::lift_fresh"}


def accepts_device(fn):
    """Give a creation function torch's ``device=`` (and ``pin_memory=``, ``layout=``) keywords:
    the new tensor is placed as gt places it, then moved to ``device`` where that is elsewhere.
    While profiling, each call is one event, torch's op (``aten::zeros``; ``tensor``: ``aten::lift_fresh``)."""
    event = _CREATION_EVENTS.get(fn.__name__, "aten::" + fn.__name__)
    like = fn.__name__.endswith("_like")

    @functools.wraps(fn)
    def create(*args, device=None, pin_memory=False, layout=None, **kwargs):
        if like and args and getattr(args[0], "is_nested", False):     # gt.nested's: made on each values tensor
            return args[0]._map_values(lambda v: create(v, *args[1:], device=device, pin_memory=pin_memory,
                                                        layout=layout, **kwargs))
        rec = function.profiling
        if rec is not None and rec.records_call():
            return rec.call(event, True, create, args, dict(kwargs, device=device, pin_memory=pin_memory,
                                                            layout=layout))
        dev = parse_device(device, fn.__name__)
        if pin_memory and B.cuda_device_count() == 0:
            raise RuntimeError(f"{fn.__name__}(pin_memory=True): pinned memory needs a CUDA device, and this process "
                               "has none")
        if layout is not None and "strided" not in str(layout):
            raise RuntimeError(f"{fn.__name__}(layout={layout!r}): gt tensors are dense (torch.strided)")
        return moved(fn(*args, **kwargs), dev, f"{fn.__name__}(device)")
    return create


class DeviceMethods:
    __slots__ = ()

    def to(self, *args, **kwargs):
        """This tensor with another dtype and/or on another device (torch's forms:
        ``to(dtype)``, ``to(device, dtype=None)``, ``to(other)``, keywords ``device``,
        ``dtype``, ``non_blocking``, ``copy``, ``memory_format``): itself when nothing changes,
        unless ``copy=True``. Differentiable: between float dtypes, and across devices."""
        if len(args) == 1 and not kwargs and isinstance(args[0], dtypes.DType):    # x.to(gt.float64): no parsing
            return self if args[0] == self.dtype else ew.Cast.apply(self, args[0])
        dev, dtype, copy = _to_args(args, kwargs)
        out = moved(self, dev)
        if dtype is not None and dtype != out.dtype:
            out = ew.Cast.apply(out, dtype)
        if copy and out is self:
            out = self.clone()
        return out

    astype = to

    def cpu(self, memory_format=None):
        """This tensor on the CPU: itself when it is there already (a recorded copy otherwise)."""
        return moved(self, device("cpu"), "Tensor.cpu")

    def cuda(self, device=None, non_blocking=False, memory_format=None):
        """This tensor on a CUDA device (``device``: an index or a name; the first by default).
        Where this process has none, torch's ``AssertionError`` (``gt.devices.CudaUnavailableError``)."""
        dev = as_device("cuda" if device is None else device, "Tensor.cuda(device)")
        if dev.type != "cuda":
            raise RuntimeError(f"Tensor.cuda(device={str(dev)!r}): expected a CUDA device")
        return moved(self, dev, "Tensor.cuda")

    @property
    def is_cuda(self):
        """Whether the values live on a CUDA device."""
        return device(self.device).type == "cuda"

    @property
    def is_cpu(self):
        """Whether the values live on the CPU."""
        return device(self.device).type == "cpu"

    def get_device(self):
        """The CUDA device index of the values, -1 on the CPU (torch's)."""
        dev = device(self.device)
        return -1 if dev.type == "cpu" else (dev.index or 0)
