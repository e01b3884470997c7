"""Where a module's parameters and buffers live and in which dtype: ``Module.to`` in torch's
forms, ``cpu``, ``cuda``, ``half``, ``bfloat16``, ``float``, ``double``, ``type``, ``to_empty`` (in place: an
optimizer built before keeps holding the same Parameter objects); and ``compile``, which compiles
nothing (gt.compile)."""

from gt import compiler, dtypes
from gt.backend import B
from gt.tensor import device_methods, empty
from gt.tensor.info_methods import type_dtype


class ModuleDevices:
    """The device and dtype moves of ``Module``."""

    def to(self, *args, **kwargs):
        """Move and/or cast the parameters and buffers in place (the same Parameter objects, so an
        optimizer built before still holds them); returns self. torch's forms: ``to(device)``,
        ``to(dtype)``, ``to(device, dtype)``, ``to(tensor)``, keywords ``device``, ``dtype``,
        ``non_blocking``, ``memory_format``. A dtype casts the floating-point ones only and must
        be floating point; a device where they are already changes nothing (gt places tensors
        itself: tensor/device_methods.py)."""
        dev, dtype = device_methods.module_to_args(args, kwargs)
        if dtype is not None and not dtype.is_floating_point:
            raise TypeError(f"nn.Module.to only accepts floating point dtypes, but got desired dtype={dtype!r}")
        tensors = list(self.parameters()) + list(self.buffers())
        if dev is not None:
            device_methods.check_device(dev, "Module.to")
            for t in tensors:
                device_methods.move_in_place(t, dev, "Module.to")
        if dtype is not None:
            for t in tensors:
                if t.dtype.is_floating_point and t.dtype != dtype:
                    t._data = B.astype(t._data, dtype)
                    if t.grad is not None:
                        t.grad._data = B.astype(t.grad._data, dtype)
        return self

    def type(self, dst_type):
        """Cast every parameter and buffer, integer buffers too (``num_batches_tracked``), to
        ``dst_type`` in place, as torch's ``Module.type``: a dtype or a type name
        (``'torch.DoubleTensor'``). Returns self. Refused before any change (RuntimeError) for a
        dtype that is not floating point where a parameter requires grad."""
        dtype = type_dtype(dst_type)
        tensors = list(self.parameters()) + list(self.buffers())
        if not dtype.is_floating_point and any(t.requires_grad for t in tensors):
            raise RuntimeError(f"Module.type({dst_type!r}): a parameter that requires grad must stay floating "
                               "point; call requires_grad_(False) first")
        for t in tensors:
            if t.dtype != dtype:
                t._data = B.astype(t._data, dtype)
                if t.grad is not None:
                    t.grad._data = B.astype(t.grad._data, dtype)
        return self

    def cpu(self):
        """The parameters and buffers on the CPU (in place); returns self."""
        return self.to("cpu")

    def cuda(self, device=None):
        """The parameters and buffers on a CUDA device (``device``: an index; the first by
        default), in place; returns self. Where this process has no CUDA device, torch's
        ``AssertionError`` (``gt.devices.CudaUnavailableError``)."""
        return self.to("cuda" if device is None else device_methods.as_device(device, "Module.cuda(device)"))

    def half(self):
        return self.to(dtypes.float16)

    def bfloat16(self):
        return self.to(dtypes.bfloat16)

    def float(self):
        return self.to(dtypes.float32)

    def double(self):
        return self.to(dtypes.float64)

    def to_empty(self, *, device, recurse=True):
        """Give every parameter and buffer (of this module only, unless ``recurse``) new, uninitialized
        memory of its shape and dtype on ``device`` (None: where it is), and the same to their
        ``.grad``; the Parameter objects stay (an optimizer built before holds them), as torch's.
        Returns self. Initialize the values afterwards (``reset_parameters``, ``load_state_dict``)."""
        dev = None
        if device is not None:
            dev = device_methods.check_device(device_methods.as_device(device, "Module.to_empty(device)"),
                                              "Module.to_empty")
        for module in (self.modules() if recurse else (self,)):
            for t in (*module._parameters.values(), *module._buffers.values()):
                if t is not None:
                    _fresh_memory(t, dev)
        return self

    def compile(self, *args, **kwargs):
        """torch's ``Module.compile``: ``gt.compile``'s arguments, checked as torch checks them, for
        this module's calls. gt compiles nothing (gt/compiler.py): calls stay eager, hooks included.
        Returns None, as torch's."""
        compiler.compile(self.__call__, *args, **kwargs)

    def share_memory(self):
        """torch's ``Module.share_memory``: every parameter and buffer (and a parameter's
        ``.grad``, where there is one) moved into shared memory in place
        (``Tensor.share_memory_``), so that processes given this module (``gt.multiprocessing``)
        train the same values (Hogwild-style). Returns this module."""
        for module in self.modules():
            for t in (*module._parameters.values(), *module._buffers.values()):
                if t is not None:
                    t.share_memory_()
                    if t._grad_value is not None or t._grad_factors is not None:
                        t.grad.share_memory_()
        return self


def _fresh_memory(t, dev):
    """``t`` (and its grad) on new memory of its shape and dtype on ``dev``: the old memory, which
    other tensors may share, is left to them. A sharded tensor keeps its memory (its values are
    unspecified anyway) and is refused a move, as ``Module.to``."""
    if t._grad_factors is not None:     # a gradient still held as factors (gt/autograd/deferred.py)
        t._grad = empty(tuple(t.shape), dtype=t.dtype)
    if t._placed is None:
        t.data = B.empty(tuple(t.shape), t.dtype)
    if dev is not None:
        device_methods.move_in_place(t, dev, "Module.to_empty")
    if t._grad_value is not None:
        _fresh_memory(t._grad_value, None)
