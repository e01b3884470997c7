"""torch's process-wide settings at the top level: the default device, the determinism flags,
the inter-op thread count and ``gt.set_printoptions``. gt's ops are deterministic and its engine
and mesh decide where tensors live, so most of these are recorded and read back (each says so).
"""

import os

from gt.backend import B
from gt.backend import print_options
from gt.devices import as_device

__all__ = ["get_default_device", "set_default_device", "use_deterministic_algorithms",
           "are_deterministic_algorithms_enabled", "is_deterministic_algorithms_warn_only_enabled",
           "set_deterministic_debug_mode", "get_deterministic_debug_mode", "set_printoptions",
           "get_num_interop_threads", "set_num_interop_threads", "set_warn_always", "is_warn_always_enabled",
           "set_flush_denormal", "init_num_threads"]


# ---- devices and global settings ----------------------------------------------------------------
_default_device = [None]


def get_default_device():
    """The device new tensors are made on, a ``gt.device``: the engine's (``cpu``, or ``cuda:i``
    with the torch engine on a GPU)."""
    return as_device(_default_device[0] or B.device)


def _recordable(where, fn):
    """``where`` (None, a name, a ``gt.device`` or torch's) as a ``gt.device``; RuntimeError
    unless it is where gt makes tensors now (a bad name: torch's parse error). The default device
    is recorded only, so no other device may be set as if it were used."""
    if where is None:
        return None
    where = as_device(where if isinstance(where, (str, int)) else str(where), fn)
    here = as_device(B.device)
    if where != here and not (where.index is None and where.type == here.type):
        raise RuntimeError(f"{fn}: device {str(where)!r} is not where gt makes tensors now ({str(here)!r}); gt places "
                           f"tensors through its engine and mesh (GT_BACKEND, GT_DEVICES), not per call")
    return where


def set_default_device(device):
    """Record ``device`` as the default. gt makes tensors where its engine and mesh say
    (``GT_BACKEND``, ``GT_DEVICES``), so only that device (``"cpu"`` on the CPU) or None is
    accepted; any other raises RuntimeError rather than being ignored."""
    where = _recordable(device, "set_default_device")
    _default_device[0] = None if where is None else str(where)


# gt's own ops give the same bits on every run for the same inputs and engine; on CUDA torch's
# kernels decide (index_add_ and scatter_add_, attention's backward, cuBLAS sum with atomics unless
# told otherwise), so there the flag is handed to torch, as gt.backends' switches are
_deterministic = {"mode": False, "warn_only": False}


def use_deterministic_algorithms(mode, *, warn_only=False):
    """torch's determinism flag. On the CPU gt's ops are deterministic already (no atomics, fixed
    reduction orders), so nothing changes there. Where gt computes on CUDA GPUs (torch engine) the
    flag is handed to ``torch.use_deterministic_algorithms``: the scatter-adds (an embedding's
    gradient) and attention's backward then take torch's deterministic kernels, an op that has none
    raises (or warns, with ``warn_only``) as in torch, and ``CUBLAS_WORKSPACE_CONFIG`` is set to
    ``:4096:8`` unless already set (cuBLAS's deterministic workspace, which torch asks for; set it
    before the process's first GPU product to be sure it is the one cuBLAS uses)."""
    if not isinstance(mode, bool):
        raise TypeError(f"use_deterministic_algorithms(): argument 'mode' must be bool, not {type(mode).__name__}")
    if not isinstance(warn_only, bool):
        raise TypeError(f"use_deterministic_algorithms(): argument 'warn_only' must be bool, not "
                        f"{type(warn_only).__name__}")
    _deterministic.update(mode=mode, warn_only=warn_only)
    if B.cuda_device_count() > 0:
        import torch

        if mode:
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(mode, warn_only=warn_only)


def are_deterministic_algorithms_enabled():
    """The flag ``use_deterministic_algorithms`` set (False by default)."""
    return _deterministic["mode"]


def is_deterministic_algorithms_warn_only_enabled():
    """The ``warn_only`` flag ``use_deterministic_algorithms`` set."""
    return _deterministic["warn_only"]


def set_deterministic_debug_mode(debug_mode):
    """torch's other spelling: 0 / ``"default"`` (off), 1 / ``"warn"``, 2 / ``"error"`` (on)."""
    if isinstance(debug_mode, str):
        names = {"default": 0, "warn": 1, "error": 2}
        if debug_mode not in names:
            raise RuntimeError(f"invalid value of debug_mode, expected one of `default`, `warn`, `error`, but got "
                               f"{debug_mode}")
        debug_mode = names[debug_mode]
    elif not isinstance(debug_mode, int) or isinstance(debug_mode, bool):
        raise TypeError(f"debug_mode must be str or int, but got {type(debug_mode)}")
    if debug_mode not in (0, 1, 2):
        raise RuntimeError(f"invalid value of debug_mode, expected 0, 1, or 2, but got {debug_mode}")
    use_deterministic_algorithms(debug_mode > 0, warn_only=debug_mode == 1)


def get_deterministic_debug_mode():
    """0 when off, 1 when warn-only, 2 when on."""
    if not _deterministic["mode"]:
        return 0
    return 1 if _deterministic["warn_only"] else 2


_interop_threads = [None]


def get_num_interop_threads():
    """The number of threads for running independent ops in parallel (recorded; gt runs ops one
    after another, and the engine's intra-op threads are ``gt.get_num_threads``)."""
    return _interop_threads[0] or os.cpu_count() or 1


def set_num_interop_threads(nthreads):
    """Record the inter-op thread count (a positive int)."""
    if isinstance(nthreads, bool) or not isinstance(nthreads, int):
        raise TypeError(f"set_num_interop_threads(): argument must be an int, not {type(nthreads).__name__}")
    if nthreads <= 0:
        raise RuntimeError(f"set_num_interop_threads expects a positive integer, got {nthreads}")
    _interop_threads[0] = nthreads


_warn_always = [False]


def set_warn_always(b):
    """torch's flag that makes its warn-once warnings warn every time. gt's warnings go through
    Python's ``warnings`` (whose filters decide repeats), so the flag is recorded, and handed to
    torch where torch is the engine (its kernels' own warnings follow it)."""
    if not isinstance(b, bool):
        raise TypeError(f"set_warn_always(): argument 'b' must be bool, not {type(b).__name__}")
    _warn_always[0] = b
    B.set_warn_always(b)


def is_warn_always_enabled():
    """The flag ``set_warn_always`` set (False by default)."""
    return _warn_always[0]


def set_flush_denormal(mode):
    """Flush subnormal floats to zero on the CPU (torch's ``set_flush_denormal``); True when the
    mode is now in force. The torch engine hands it to torch (x86 with SSE3); the numpy engine
    cannot set the CPU's flag, so it answers False to ``True`` and keeps subnormals."""
    if not isinstance(mode, bool):
        raise TypeError(f"set_flush_denormal(): argument 'mode' must be bool, not {type(mode).__name__}")
    return B.set_flush_denormal(mode)


def init_num_threads():
    """torch sets up the calling thread's OpenMP pool here; gt's engines size their pools
    themselves (``gt.set_num_threads``), so there is nothing to do."""


# torch's named profiles: (precision, threshold, edgeitems, linewidth).
_PROFILES = {"default": (4, 1000, 3, 80), "short": (2, 1000, 2, 80), "full": (4, float("inf"), 3, 80)}


def set_printoptions(precision=None, threshold=None, edgeitems=None, linewidth=None, profile=None, sci_mode=None):
    """How ``repr(tensor)`` prints values, as torch's: ``precision`` digits after the point,
    arrays of more than ``threshold`` elements summarised to ``edgeitems`` at each end of each
    dim, lines of at most ``linewidth`` characters; ``profile`` (``"default"``, ``"short"``,
    ``"full"``) sets those four first. ``sci_mode`` True forces scientific notation, False
    suppresses it, None lets the values decide."""
    opts = print_options.PRINT_OPTIONS
    if profile is not None:
        if profile not in _PROFILES:
            raise ValueError(f"set_printoptions: profile must be one of {sorted(_PROFILES)}, got {profile!r}")
        opts["precision"], opts["threshold"], opts["edgeitems"], opts["max_line_width"] = _PROFILES[profile]
    for key, value in (("precision", precision), ("threshold", threshold), ("edgeitems", edgeitems),
                       ("max_line_width", linewidth)):
        if value is not None:
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise ValueError(f"set_printoptions: {key} must be a non-negative number, got {value!r}")
            opts[key] = value
    if sci_mode not in (None, True, False):
        raise ValueError(f"set_printoptions: sci_mode must be True, False or None, got {sci_mode!r}")
    opts["sci_mode"] = sci_mode
