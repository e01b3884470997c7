"""``gt.backends``: torch.backends' switches, so that code setting them runs unchanged.

``gt.backends.cudnn.benchmark = True`` and the other flags are kept and read back. They change
nothing in gt's numpy engine (it has no cuDNN, TF32 or MPS); on the torch engine with CUDA GPUs
the cuDNN and TF32 flags are handed to torch.backends as they are set, so they take effect there.
The availability questions answer for this process: ``cudnn.is_available()`` is True only where
gt computes on CUDA GPUs, ``mps.is_available()`` is always False (gt has no MPS device).
"""

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
