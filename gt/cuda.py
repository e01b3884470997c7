"""``gt.cuda``: torch.cuda's questions, answered for the devices gt computes on.

CUDA GPUs are gt's when its torch engine runs on a machine with NVIDIA GPUs (GT_BACKEND=torch,
or GT_AUTO_SHARD=1, which picks it there); on the numpy engine, or without a GPU, the process has
no CUDA device and these give the answers of torch built without CUDA: ``is_available()`` is
False, ``device_count()`` 0, the memory figures 0, ``manual_seed``/``empty_cache`` do nothing,
and the calls that need a device raise its ``AssertionError`` ("Torch not compiled with CUDA
enabled": ``gt.devices.CudaUnavailableError``, a ``RuntimeError`` too). With GPUs each call is
torch.cuda's own.

The usual line runs unchanged::

    device = "cuda" if gt.cuda.is_available() else "cpu"
    model.to(device); x = x.to(device)
"""

from gt.backend import B
from gt.devices import CudaUnavailableError, as_device


def is_available():
    """Whether this process can put tensors on a CUDA GPU."""
    return device_count() > 0


def device_count():
    """The CUDA GPUs this process can use (0 on the numpy engine and on machines without one)."""
    return B.cuda_device_count()


def is_initialized():
    return is_available() and _torch().cuda.is_initialized()


def _torch():
    import torch

    return torch


def _need(what):
    if not is_available():
        raise CudaUnavailableError(f"gt.cuda.{what}: no CUDA device in this process (torch: 'Torch not compiled with "
                                   "CUDA enabled'); check gt.cuda.is_available() first")
    return _torch().cuda


def _index(dev, what):
    """torch.cuda's device argument (None, an index, a name or a device) as an index or None."""
    if dev is None or (isinstance(dev, int) and not isinstance(dev, bool)):
        return dev
    dev = as_device(dev, f"gt.cuda.{what}(device)")
    if dev.type != "cuda":
        raise ValueError(f"gt.cuda.{what}: expected a CUDA device, got {str(dev)!r}")
    return dev.index


def current_device():
    """The index of the current CUDA device."""
    return _need("current_device").current_device()


def set_device(device):
    """Make ``device`` (an index or a name) the current CUDA device."""
    _need("set_device").set_device(_index(device, "set_device"))


def get_device_name(device=None):
    return _need("get_device_name").get_device_name(_index(device, "get_device_name"))


def get_device_properties(device=None):
    return _need("get_device_properties").get_device_properties(_index(device, "get_device_properties"))


def get_device_capability(device=None):
    return _need("get_device_capability").get_device_capability(_index(device, "get_device_capability"))


def synchronize(device=None):
    """Wait for the queued work of ``device`` (the current one by default) to finish."""
    _need("synchronize").synchronize(_index(device, "synchronize"))


def manual_seed(seed):
    """Seed the current CUDA device's generator (nothing without one, as torch)."""
    if is_available():
        _torch().cuda.manual_seed(seed)


def manual_seed_all(seed):
    """Seed every CUDA device's generator (nothing without one, as torch)."""
    if is_available():
        _torch().cuda.manual_seed_all(seed)


def empty_cache():
    """Hand the CUDA caching allocator's free blocks back (nothing without a device, as torch)."""
    if is_available():
        _torch().cuda.empty_cache()


def _memory(name):
    def figure(device=None):
        if not is_available():
            return 0
        return getattr(_torch().cuda, name)(_index(device, name))
    figure.__name__ = name
    figure.__doc__ = f"torch.cuda.{name}: bytes (0 without a CUDA device, as torch)."
    return figure


memory_allocated = _memory("memory_allocated")
max_memory_allocated = _memory("max_memory_allocated")
memory_reserved = _memory("memory_reserved")
max_memory_reserved = _memory("max_memory_reserved")


def reset_peak_memory_stats(device=None):
    _need("reset_peak_memory_stats").reset_peak_memory_stats(_index(device, "reset_peak_memory_stats"))


def is_bf16_supported():
    return is_available() and _torch().cuda.is_bf16_supported()


from gt import grad_scaler as _grad_scaler  # noqa: E402


class amp:
    """``gt.cuda.amp``: torch.cuda.amp's deprecated ``GradScaler`` (``gt.amp.GradScaler("cuda", ...)``)."""
    GradScaler = _grad_scaler.CudaGradScaler
