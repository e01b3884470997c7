"""``gt.backends``: torch.backends' switches, so that code setting them runs unchanged.

``gt.backends.cudnn.benchmark = True`` and the other flags are kept and read back. They change
nothing in gt's numpy engine (it has no cuDNN, TF32 or MPS); on the torch engine with CUDA GPUs
the cuDNN and TF32 flags are handed to torch.backends as they are set, so they take effect there.
The availability questions answer for this process: ``cudnn.is_available()`` is True only where
gt computes on CUDA GPUs, ``mps.is_available()`` is always False (gt has no MPS device).
``opt_einsum`` (also importable as ``gt.backends.opt_einsum``) is described at its class.
"""

import contextlib
import importlib.util
import sys

from gt.backend import B


def _on_cuda():
    return B.cuda_device_count() > 0


class _Flags:
    """A namespace of flags that are also set on ``torch.backends.<path>`` where gt runs on CUDA."""

    def __init__(self, path, **flags):
        object.__setattr__(self, "_path", path)
        object.__setattr__(self, "_flags", dict(flags))

    def __getattr__(self, name):
        flags = object.__getattribute__(self, "_flags")
        if name in flags:
            return flags[name]
        raise AttributeError(f"gt.backends.{self._path} has no attribute {name!r}")

    def __setattr__(self, name, value):
        if name not in self._flags:
            raise AttributeError(f"gt.backends.{self._path} has no flag {name!r}: expected one of "
                                 f"{', '.join(sorted(self._flags))}")
        if not isinstance(value, bool):
            raise TypeError(f"gt.backends.{self._path}.{name}: expected True or False, got {value!r}")
        self._flags[name] = value
        if _on_cuda():
            import torch.backends

            target = torch.backends
            for part in self._path.split("."):
                target = getattr(target, part)
            setattr(target, name, value)

    def __repr__(self):
        return f"gt.backends.{self._path}({', '.join(f'{k}={v}' for k, v in self._flags.items())})"


class _Cudnn(_Flags):
    def is_available(self):
        """Whether cuDNN runs gt's convolutions: only on the torch engine with CUDA GPUs."""
        if not _on_cuda():
            return False
        import torch.backends.cudnn

        return torch.backends.cudnn.is_available()

    def version(self):
        if not self.is_available():
            return None
        import torch.backends.cudnn

        return torch.backends.cudnn.version()


class _Mps:
    @staticmethod
    def is_available():
        return False

    @staticmethod
    def is_built():
        return False


class _Matmul(_Flags):
    pass


class _Cuda:
    def __init__(self):
        self.matmul = _Matmul("cuda.matmul", allow_tf32=False, allow_fp16_reduced_precision_reduction=True,
                              allow_bf16_reduced_precision_reduction=True)

    @staticmethod
    def is_built():
        return _on_cuda()


# torch's defaults (2.13): cuDNN on, benchmark and deterministic off, TF32 convolutions allowed
cudnn = _Cudnn("cudnn", enabled=True, benchmark=False, deterministic=False, allow_tf32=True)
cuda = _Cuda()
mps = _Mps()


# ---- torch.set_float32_matmul_precision: the same switch as cuda.matmul.allow_tf32 --------------
_PRECISIONS = ("highest", "high", "medium")
_matmul_precision = ["highest"]


def set_float32_matmul_precision(precision):
    """torch's ``set_float32_matmul_precision``: ``"highest"`` keeps float32 products in float32;
    ``"high"`` and ``"medium"`` allow TF32 products on CUDA GPUs (``cuda.matmul.allow_tf32``, set
    here too). On gt's CPU engines every product stays float32, as torch's do on a CPU."""
    if precision not in _PRECISIONS:
        raise RuntimeError(f"set_float32_matmul_precision: expected one of {', '.join(map(repr, _PRECISIONS))}, "
                           f"got {precision!r}")
    _matmul_precision[0] = precision
    cuda.matmul.allow_tf32 = precision != "highest"
    if _on_cuda():
        import torch

        torch.set_float32_matmul_precision(precision)


def get_float32_matmul_precision():
    """The precision last set by ``set_float32_matmul_precision`` (``"highest"`` by default)."""
    return _matmul_precision[0]


# ---- torch.backends.opt_einsum ------------------------------------------------------------------
_STRATEGIES = ("auto", "greedy", "optimal")


class _OptEinsum:
    """torch.backends.opt_einsum: whether einsum asks the opt-einsum package for the order in which
    to contract three or more operands (``enabled``, ``strategy``: "auto", "greedy", "optimal").
    Both start as torch's: on (``"auto"``) where opt-einsum is installed, else False and None.

    What they change in gt: on the torch engine, set here, they are set on torch.backends.opt_einsum
    too, and torch.einsum follows them (the result is the same; the time may differ). On the numpy
    engine nothing: numpy chooses the order itself (its own greedy search, for loops of 2**17 steps
    and more; gt/backend/numpy_scatter.py) whatever the flags say. As torch's, setting the
    attributes stores what is given; ``set_flags`` and ``flags`` check it (torch's ValueErrors)."""

    def __init__(self):
        available = importlib.util.find_spec("opt_einsum") is not None
        object.__setattr__(self, "_available", available)
        object.__setattr__(self, "enabled", available)
        object.__setattr__(self, "strategy", "auto" if available else None)

    def __setattr__(self, name, value):
        if name not in ("enabled", "strategy"):
            raise AttributeError(f"gt.backends.opt_einsum has no flag {name!r}: expected enabled or strategy")
        object.__setattr__(self, name, value)
        if B.name == "torch":   # torch.einsum reads torch's flags
            setattr(importlib.import_module("torch.backends.opt_einsum"), name, value)

    def is_available(self):
        """Whether the opt-einsum package is installed."""
        return self._available

    def get_opt_einsum(self):
        """The opt_einsum package where it is installed, else None."""
        return importlib.import_module("opt_einsum") if self._available else None

    def set_flags(self, _enabled=None, _strategy=None):
        """Set the flags given (checked as torch's); returns the previous ``(enabled, strategy)``."""
        orig = (self.enabled, self.strategy if self._available else None)
        if _enabled is not None:
            if _enabled and not self._available:
                raise ValueError(f"opt_einsum is not available, so setting `enabled` to {_enabled} will not reap the "
                                 "benefits of calculating an optimal path for einsum. gt.einsum will fall back to "
                                 "contracting from left to right. To enable this optimal path calculation, please "
                                 "install opt-einsum.")
            self.enabled = _enabled
        if _strategy is not None:
            self._check_strategy(_strategy)
            self.strategy = _strategy
        return orig

    def _check_strategy(self, strategy):
        if not self._available:
            raise ValueError(f"opt_einsum is not available, so setting `strategy` to {strategy} will not be "
                             "meaningful. gt.einsum will bypass path calculation and simply contract from left to "
                             "right. Please install opt_einsum or unset `strategy`.")
        if not self.enabled:
            raise ValueError(f"opt_einsum is not enabled, so setting a `strategy` to {strategy} will not be "
                             "meaningful. gt.einsum will bypass path calculation and simply contract from left to "
                             "right. Please set `enabled` to `True` as well or unset `strategy`.")
        if strategy not in _STRATEGIES:
            raise ValueError(f"`strategy` must be one of the following: [auto, greedy, optimal] but is {strategy}")

    @contextlib.contextmanager
    def flags(self, enabled=None, strategy=None):
        """Set the flags given for the ``with`` block, then restore them."""
        orig = self.set_flags(enabled, strategy)
        try:
            yield
        finally:
            self.set_flags(*orig)

    def __repr__(self):
        return f"gt.backends.opt_einsum(enabled={self.enabled!r}, strategy={self.strategy!r})"


opt_einsum = _OptEinsum()
sys.modules[__name__ + ".opt_einsum"] = opt_einsum   # `import gt.backends.opt_einsum`, as torch's path
