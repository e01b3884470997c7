"""Where a module's parameters and buffers live and in which dtype: ``Module.to`` in torch's
forms, ``cpu``, ``cuda``, ``half``, ``bfloat16``, ``float``, ``double``, ``type`` (in place: an
optimizer built before keeps holding the same Parameter objects)."""

from gt import dtypes
from gt.backend import B
from gt.tensor import device_methods
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
