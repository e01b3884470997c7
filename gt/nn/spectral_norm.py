"""torch's older, hook-based ``torch.nn.utils.spectral_norm`` / ``remove_spectral_norm``: the
weight moves to the Parameter ``<name>_orig``, with the buffers ``<name>_u`` (rows) and
``<name>_v`` (columns of the weight seen as a matrix), and a forward pre-hook sets
``module.<name> = <name>_orig / sigma`` (a plain tensor attribute) before each call, after
``n_power_iterations`` steps of power iteration in training mode.

    >>> m = nn.utils.spectral_norm(nn.Linear(20, 40))
    >>> [k for k in m.state_dict()]
    ['bias', 'weight_orig', 'weight_u', 'weight_v']

Where gt differs from torch: the first ``u`` and ``v`` come from gt's generator; torch's
conversion of a state dict of its format before version 1 (``weight`` saved, ``weight_v``
not; it needs a pseudo-inverse) is not done, and gt's state dicts carry no ``_metadata``.
Prefer ``nn.utils.parametrizations.spectral_norm``.
"""

from gt import autograd
from gt.nn.conv_transpose import ConvTranspose1d, ConvTranspose2d, ConvTranspose3d
from gt.nn.parameter import Parameter
from gt.nn.parametrizations import _normalize
from gt.nn.weight_norm import remove_hook
from gt.tensor import randn

__all__ = ["SpectralNorm", "spectral_norm", "remove_spectral_norm"]


class SpectralNorm:
    """The forward pre-hook of ``spectral_norm`` for one tensor ``name`` of a module."""

    _version = 1

    def __init__(self, name="weight", n_power_iterations=1, dim=0, eps=1e-12):
        if n_power_iterations <= 0:
            raise ValueError("Expected n_power_iterations to be positive, but "
                             f"got n_power_iterations={n_power_iterations}")
        self.name, self.dim, self.n_power_iterations, self.eps = name, dim, n_power_iterations, eps

    def reshape_weight_to_matrix(self, weight):
        if self.dim != 0:
            weight = weight.permute(self.dim, *(d for d in range(weight.ndim) if d != self.dim))
        return weight.reshape(weight.shape[0], -1)                      # (shape[dim], rest)

    def compute_weight(self, module, do_power_iteration):
        weight = getattr(module, self.name + "_orig")
        u, v = getattr(module, self.name + "_u"), getattr(module, self.name + "_v")
        weight_mat = self.reshape_weight_to_matrix(weight)
        if do_power_iteration:
            with autograd.no_grad():   # in place into the buffers, as torch's ``out=``
                for _ in range(self.n_power_iterations):
                    v.copy_(_normalize(weight_mat.mT @ u, self.eps))
                    u.copy_(_normalize(weight_mat @ v, self.eps))
                u, v = u.clone(), v.clone()
        sigma = (u * (weight_mat @ v)).sum()
        return weight / sigma

    def remove(self, module):
        with autograd.no_grad():
            weight = self.compute_weight(module, do_power_iteration=False)
        for suffix in ("", "_u", "_v", "_orig"):
            delattr(module, self.name + suffix)
        module.register_parameter(self.name, Parameter(weight.detach()))

    def __call__(self, module, inputs):
        setattr(module, self.name, self.compute_weight(module, do_power_iteration=module.training))

    @staticmethod
    def apply(module, name, n_power_iterations, dim, eps):
        for hook in module._forward_pre_hooks.values():
            if isinstance(hook, SpectralNorm) and hook.name == name:
                raise RuntimeError(f"Cannot register two spectral_norm hooks on the same parameter {name}")
        fn = SpectralNorm(name, n_power_iterations, dim, eps)
        if name not in module._parameters:
            raise ValueError(f"spectral_norm: module {type(module).__name__} has no parameter {name!r}")
        weight = module._parameters[name]
        if weight is None:
            raise ValueError(f"`SpectralNorm` cannot be applied as parameter `{name}` is None")
        with autograd.no_grad():
            h, w = fn.reshape_weight_to_matrix(weight).shape
            u = _normalize(randn(h, dtype=weight.dtype), fn.eps)
            v = _normalize(randn(w, dtype=weight.dtype), fn.eps)
        delattr(module, fn.name)
        module.register_parameter(fn.name + "_orig", weight)
        setattr(module, fn.name, weight.detach())
        module.register_buffer(fn.name + "_u", u)
        module.register_buffer(fn.name + "_v", v)
        module.register_forward_pre_hook(fn)
        return fn


def spectral_norm(module, name="weight", n_power_iterations=1, eps=1e-12, dim=None):
    """Spectral normalisation of ``module.<name>`` by a forward pre-hook, as torch's
    ``nn.utils.spectral_norm``: ``weight = weight_orig / sigma``, sigma estimated by power iteration
    at each call in training mode (none in eval mode). ``dim``: 1 for ConvTranspose layers, else
    0, by default. Returns ``module``."""
    if dim is None:
        dim = 1 if isinstance(module, (ConvTranspose1d, ConvTranspose2d, ConvTranspose3d)) else 0
    SpectralNorm.apply(module, name, n_power_iterations, dim, eps)
    return module


def remove_spectral_norm(module, name="weight"):
    """Undo ``spectral_norm``: ``module.<name>`` is a Parameter again, holding the current
    normalised weight (no power iteration). Returns ``module``."""
    return remove_hook(module, name, SpectralNorm, "spectral_norm")
