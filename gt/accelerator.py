"""``gt.accelerator``: torch.accelerator's device-agnostic questions, answered for gt's devices.

gt's one kind of accelerator is CUDA (its torch engine on a machine with NVIDIA GPUs, gt/cuda.py).
Without one (the numpy engine, or no GPU) ``is_available()`` is False, ``current_accelerator()``
None and ``device_count()`` 0, and the calls that need a device raise torch's RuntimeError
("Cannot access accelerator device when none is available."). PyTorch's quickstart line runs
unchanged::

    device = gt.accelerator.current_accelerator().type if gt.accelerator.is_available() else "cpu"

Where gt differs: with ``check_available=False`` torch names the accelerator its build supports
even when no device is present; gt names one only where it can compute on it. No streams, graphs
or ``memory_stats``.
"""

from gt import cuda
from gt.devices import device as _device


def is_available():
    """Whether this process has an accelerator gt can compute on (a CUDA GPU)."""
    return cuda.is_available()


def current_accelerator(check_available=False):
    """``gt.device('cuda')`` where gt has a CUDA GPU, else None (``check_available`` changes nothing
    here: gt has no accelerator it cannot use)."""
    return _device("cuda") if cuda.is_available() else None


def device_count():
    """The number of accelerator devices (0 without one)."""
    return cuda.device_count()


def _need():
    if not cuda.is_available():
        raise RuntimeError("Cannot access accelerator device when none is available.")
    return cuda


def current_device_index():
    """The index of the current accelerator device."""
    return _need().current_device()


def set_device_index(device, /):
    """Make ``device`` (an index, a name or a device) the current accelerator device."""
    _need().set_device(device)


current_device_idx, set_device_idx = current_device_index, set_device_index     # torch's older names


def synchronize(device=None, /):
    """Wait for the queued work of ``device`` (the current one by default) to finish."""
    _need().synchronize(device)


def empty_cache():
    """Hand the accelerator allocator's free blocks back."""
    _need().empty_cache()


def _memory(name):
    def figure(device_index=None, /):
        return getattr(_need(), name)(device_index)
    figure.__name__ = name
    figure.__doc__ = f"torch.accelerator.{name}: bytes on the device (RuntimeError without an accelerator)."
    return figure


memory_allocated = _memory("memory_allocated")
max_memory_allocated = _memory("max_memory_allocated")
memory_reserved = _memory("memory_reserved")
max_memory_reserved = _memory("max_memory_reserved")


def reset_peak_memory_stats(device_index=None, /):
    _need().reset_peak_memory_stats(device_index)


class device_index:
    """Make the accelerator device ``device`` (an index) current inside a ``with`` block and the one
    before current again after it; None changes nothing."""

    def __init__(self, device, /):
        self.idx, self.prev_idx = device, -1

    def __enter__(self):
        if self.idx is not None:
            self.prev_idx = current_device_index()
            set_device_index(self.idx)

    def __exit__(self, *exc_info):
        if self.idx is not None:
            set_device_index(self.prev_idx)
