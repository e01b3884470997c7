"""``gt.device``: torch's device object, for code that writes ``x.to(device)``.

gt places tensors itself (one process drives every local device: unsharded tensors live on the
home device, sharded ones over the mesh; DESIGN.md), so a device here mostly names where a
tensor already is. ``torch.device``'s parsing and attributes are kept (``type``, ``index``,
``str``, ``repr``, equality, hashing), and one convenience is added: a ``gt.device`` is also
the string it prints (``x.device == "cpu"`` holds; torch's is not a string and compares unequal
to one), because gt's own code and the public gt's examples compare devices with strings.

This module imports nothing of gt.
"""

# torch's list, in its order, for the error message; gt computes on the first two only
_TORCH_TYPES = ("cpu", "cuda", "ipu", "xpu", "mkldnn", "opengl", "opencl", "ideep", "hip", "ve", "fpga", "maia", "xla",
                "lazy", "vulkan", "mps", "meta", "hpu", "mtia", "privateuseone")
GT_TYPES = ("cpu", "cuda")


class CudaUnavailableError(AssertionError, RuntimeError):
    """A CUDA device asked of a process that has none. torch raises an ``AssertionError`` ("Torch
    not compiled with CUDA enabled") there; this is one, and a ``RuntimeError`` too."""


class device(str):
    """Where a tensor's values live: ``gt.device("cpu")``, ``gt.device("cuda:1")``,
    ``gt.device("cuda", 1)``, or another device. ``type`` is ``"cpu"`` or ``"cuda"`` (torch's
    other names parse, and are refused where a tensor would go there); ``index`` is the device's
    number or None."""

    __slots__ = ("type", "index")

    def __new__(cls, type_or_name, index=None):
        if isinstance(type_or_name, device) and index is None:
            return type_or_name
        if type(type_or_name).__module__ == "torch" and type(type_or_name).__name__ == "device":
            type_or_name = str(type_or_name)          # torch's device: code that mixes the two passes it
        if isinstance(type_or_name, bool) or not isinstance(type_or_name, (str, int)):
            raise TypeError(f"gt.device(): expected a device string such as 'cpu' or 'cuda:0', a device or a CUDA "
                            f"index, got {type_or_name!r}")
        if isinstance(type_or_name, int):
            if type_or_name < 0:
                raise RuntimeError("Device index must not be negative")
            kind, number = "cuda", type_or_name       # torch.device(1) is the accelerator's device 1
        else:
            kind, number = _parse(type_or_name)
        if index is not None:
            if number is not None:
                raise RuntimeError(f"type (string) must not include an index because index was passed explicitly: "
                                   f"{type_or_name}")
            if isinstance(index, bool) or not isinstance(index, int):
                raise TypeError(f"gt.device(): expected an int device index, got {index!r}")
            if index < 0:
                raise RuntimeError("Device index must not be negative")
            number = index
        self = super().__new__(cls, kind if number is None else f"{kind}:{number}")
        self.type, self.index = kind, number
        return self

    def __repr__(self):
        if self.index is None:
            return f"device(type='{self.type}')"
        return f"device(type='{self.type}', index={self.index})"

    def __reduce__(self):
        return (device, (str(self),))

    __hash__ = str.__hash__
    __eq__ = str.__eq__


def _parse(name):
    kind, sep, number = name.partition(":")
    if kind not in _TORCH_TYPES:
        raise RuntimeError(f"Expected one of {', '.join(_TORCH_TYPES)} device type at start of device string: {name}")
    if not sep:
        return kind, None
    if not number.isdigit() or (len(number) > 1 and number[0] == "0"):
        raise RuntimeError(f"Invalid device string: '{name}'")
    return kind, int(number)


def as_device(value, what="device"):
    """``value`` (a string, an int or a device) as a ``device``; None stays None."""
    if value is None:
        return None
    try:
        return device(value)
    except TypeError:
        raise TypeError(f"{what}: expected a device (a string such as 'cpu' or 'cuda:0', a gt.device or a CUDA "
                        f"index), got {value!r}") from None
