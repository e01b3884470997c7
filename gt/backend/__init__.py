"""Array engines behind one narrow interface (``Engine``, gt/backend/engine.py).

Everything above this package does tensor math through ``B`` (the current
engine) or through Python operators on engine arrays, never by importing numpy
or torch itself. The engine is chosen once, before the first tensor exists:
``GT_BACKEND=numpy|torch`` or ``gt.set_backend("torch")``. When neither names one, the
engine is numpy, except that ``GT_AUTO_SHARD=1`` on a machine with CUDA GPUs picks torch (the
only engine that can use them).
"""

import importlib.util
import os
import sys

from gt import config

ENGINES = ("numpy", "torch")   # and "auto": the faster of the two here (choose_automatic)
TORCH_INSTALL = "pip install 'lpm[torch]'  (or: pip install torch)"


class _EngineProxy:
    """Forwards attribute access to the engine in use, so ``from gt.backend import B`` never goes stale.

    An engine method, once looked up, is kept in the proxy's own ``__dict__``: later reads of
    ``B.matmul`` are plain attribute reads that never reach ``__getattr__`` (a Python call per
    engine primitive was a fifth of the interpreter calls of a small model's step). The cache
    holds callables and the engine's fixed facts (``_FIXED``); other plain values such as
    ``B.device`` change and are always forwarded. It is emptied when ``set_backend`` swaps the engine, and forgets a name set or deleted through
    the proxy (``monkeypatch.setattr(B, ...)`` in tests)."""

    __slots__ = ("_engine", "__dict__")

    def __init__(self):
        object.__setattr__(self, "_engine", None)

    def __getattr__(self, name):
        engine = object.__getattribute__(self, "_engine")
        if engine is None:
            config.check_environment()   # gt starts here: every GT_* variable is checked, once
            engine = _load(config.backend_name() or _automatic())
            object.__setattr__(self, "_engine", engine)
            self.__dict__.clear()
        value = getattr(engine, name)
        if (callable(value) and not name.startswith("__")) or name in _FIXED:
            self.__dict__[name] = value
        return value

    def __setattr__(self, name, value):
        self.name  # noqa: B018  (loads the engine, like any read)
        self.__dict__.pop(name, None)
        setattr(object.__getattribute__(self, "_engine"), name, value)

    def __delattr__(self, name):
        self.__dict__.pop(name, None)
        delattr(object.__getattribute__(self, "_engine"), name)


# plain values that an engine never changes, read on hot paths (every in-place update asks)
_FIXED = frozenset({"counts_inplace_ops"})
B = _EngineProxy()
_tensors_created = False

# Set by the layer above (the device mesh, gt/sharding/mesh.py) when it is imported, so that the
# backend never imports it: ``_home_device()`` names the device new arrays go to before any op
# share chose one (asking fixes the mesh), and every function in ``_engine_changed`` runs after
# ``set_backend`` replaced the engine (a mesh fixed for the old engine's devices is dropped).
_home_device = None
_engine_changed = []


def set_device_hooks(home_device, engine_changed):
    """Register the mesh's two hooks (see above); called once, by gt/sharding/mesh.py."""
    global _home_device
    _home_device = home_device
    if engine_changed not in _engine_changed:
        _engine_changed.append(engine_changed)


def _home():
    return "cpu" if _home_device is None else _home_device()


def _load(name):
    # Each engine module is imported only when it is chosen: it imports its array library, and
    # `import gt` imports neither numpy nor torch (start-up time; torch is optional).
    name = _resolve_auto(name)
    if name == "numpy":
        from gt.backend.numpy_engine import NumpyEngine

        return NumpyEngine()
    if name == "torch":
        if importlib.util.find_spec("torch") is None:
            raise ImportError(f"gt's torch engine needs PyTorch, which is not installed: {TORCH_INSTALL}")
        from gt.backend.torch_engine import TorchEngine

        return TorchEngine(home=_home)
    raise ValueError(f"unknown gt backend {name!r}: expected one of {', '.join(map(repr, ENGINES + ('auto',)))} "
                     "(GT_BACKEND or gt.set_backend)")


def _automatic():
    """numpy, unless GT_AUTO_SHARD=1 and CUDA GPUs are present (then torch). torch is imported
    only where an NVIDIA driver is installed, so CPU machines start as fast as before."""
    if config.auto_shard() and _cuda_usable():
        return "torch"
    return "numpy"


def choose_automatic():
    """``GT_BACKEND=auto`` (or ``gt.set_backend("auto")``): the faster engine for this machine,
    and why. torch where it can run: on CUDA GPUs, and on CPUs with AVX-512 (PyTorch's MKL and
    oneDNN kernels there beat the OpenBLAS that numpy's wheels carry: a training step of the
    default model measured 16.7 ms on the torch engine against 24.7 ms on numpy, on a 2-core
    Xeon). numpy elsewhere (on AMD EPYC the numpy engine measured faster), and wherever torch
    is not installed. Returns ``(name, reason)``."""
    if importlib.util.find_spec("torch") is None:
        return "numpy", "torch is not installed"
    if _cuda_usable():
        return "torch", "CUDA GPUs are present"
    flags, vendor = _cpu_flags()
    if "avx512f" in flags and vendor == "GenuineIntel":
        return "torch", "an Intel CPU with AVX-512, where PyTorch's MKL kernels beat numpy's OpenBLAS"
    return "numpy", f"no GPU, and {'no AVX-512' if 'avx512f' not in flags else 'not an Intel CPU'}: numpy's OpenBLAS is the faster here"


def _resolve_auto(name):
    if name != "auto":
        return name
    name, reason = choose_automatic()
    if config.verbose():
        print(f"gt backend auto: engine {name} ({reason})", file=sys.stderr)
    return name


def _cuda_usable():
    if not _nvidia_driver() or importlib.util.find_spec("torch") is None:
        return False
    import torch

    return torch.cuda.is_available()


def _cpu_flags():
    """The CPU's feature flags and vendor from /proc/cpuinfo (empty where there is none)."""
    flags, vendor = set(), ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key == "flags" and not flags:
                    flags = set(value.split())
                elif key == "vendor_id" and not vendor:
                    vendor = value.strip()
                if flags and vendor:
                    break
    except OSError:
        pass
    return flags, vendor


def _nvidia_driver():
    return os.path.exists("/proc/driver/nvidia/gpus") or os.path.exists("/dev/nvidia0")


def set_backend(name):
    """Select the array engine: ``"numpy"``, ``"torch"``, or ``"auto"`` (the faster one on this
    machine: ``choose_automatic``). Must be called before the first tensor is created (the same
    name again later is allowed and changes nothing)."""
    if not isinstance(name, str):
        raise TypeError(f"gt.set_backend(name): expected a name, one of {ENGINES + ('auto',)}, got {name!r}")
    name = _resolve_auto(config.engine_name(name))
    current = object.__getattribute__(B, "_engine")
    if current is not None and current.name == name:
        return
    if _tensors_created and current is not None:
        raise RuntimeError(
            f"gt.set_backend({name!r}) called after tensors were created with the "
            f"{current.name!r} engine; call it before the first tensor"
        )
    object.__setattr__(B, "_engine", _load(name))
    B.__dict__.clear()  # methods cached from the old engine
    for fn in _engine_changed:
        fn()


def set_num_threads(n):
    """Fix how many threads the engine's math library uses (``torch.set_num_threads``'s name),
    or pass ``"auto"`` for the default: every free core, one on a busy machine
    (gt/backend/threads.py). ``GT_NUM_THREADS`` sets the same from the environment."""
    if n != "auto" and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
        raise ValueError(f"gt.set_num_threads(n): expected a positive int or 'auto', got {n!r}")
    B.set_num_threads(n)


def get_num_threads():
    """How many threads the engine's math library uses now."""
    return B.get_num_threads()


def threads_adapting():
    """Whether the thread count follows the machine's load (``"auto"``) rather than a fixed
    count: what a change made for a while (gt.utils.benchmark's Timer) must restore."""
    policy = getattr(object.__getattribute__(B, "_engine"), "_threads", None)
    return policy is not None and policy.fixed is None


def get_backend():
    """The name of the engine in use, e.g. ``"numpy"``."""
    return B.name


def mark_tensor_created():
    global _tensors_created
    _tensors_created = True
