"""torch's older, hook-based ``torch.nn.utils.weight_norm`` / ``remove_weight_norm`` (deprecated
there in favour of ``parametrizations.weight_norm``): the weight is replaced by the Parameters
``<name>_g`` (its norms) and ``<name>_v`` (its direction), and a forward pre-hook recomputes
``module.<name> = g * v / ||v||`` (a plain tensor attribute) before each call.

    >>> m = nn.utils.weight_norm(nn.Linear(20, 40), name="weight")
    >>> m.weight_g.shape, m.weight_v.shape
    ((40, 1), (40, 20))

As in torch, ``module.<name>`` is the value computed at the last call (or at registration), so
reading it after an optimizer step and before the next call gives the old weight.
"""

import warnings

from gt import autograd
from gt.nn.parameter import Parameter
from gt.nn.parametrizations import _norm_except_dim

__all__ = ["WeightNorm", "weight_norm", "remove_weight_norm"]


class WeightNorm:
    """The forward pre-hook of ``weight_norm`` for one tensor ``name`` of a module."""

    def __init__(self, name, dim):
        self.name = name
        self.dim = -1 if dim is None else dim

    def compute_weight(self, module):
        g, v = getattr(module, self.name + "_g"), getattr(module, self.name + "_v")
        return v * (g / _norm_except_dim(v, self.dim))

    @staticmethod
    def apply(module, name, dim):
        for hook in module._forward_pre_hooks.values():
            if isinstance(hook, WeightNorm) and hook.name == name:
                raise RuntimeError(f"Cannot register two weight_norm hooks on the same parameter {name}")
        fn = WeightNorm(name, dim)
        weight = getattr(module, name, None)
        if not isinstance(weight, Parameter):
            raise ValueError(f"weight_norm: module {type(module).__name__} has no parameter {name!r}")
        del module._parameters[name]
        with autograd.no_grad():
            g = _norm_except_dim(weight, fn.dim)
        module.register_parameter(name + "_g", Parameter(g))
        module.register_parameter(name + "_v", Parameter(weight))
        setattr(module, name, fn.compute_weight(module))
        module.register_forward_pre_hook(fn)
        return fn

    def remove(self, module):
        with autograd.no_grad():
            weight = self.compute_weight(module)
        delattr(module, self.name)
        del module._parameters[self.name + "_g"]
        del module._parameters[self.name + "_v"]
        setattr(module, self.name, Parameter(weight))

    def __call__(self, module, inputs):
        setattr(module, self.name, self.compute_weight(module))


def weight_norm(module, name="weight", dim=0):
    """Weight normalisation of ``module.<name>`` by a forward pre-hook, as torch's deprecated
    ``nn.utils.weight_norm`` (it warns, as torch's does): Parameters ``<name>_g`` (size 1 on every
    axis but ``dim``; ``dim=None``: one norm of the whole tensor) and ``<name>_v``. Returns
    ``module``. Prefer ``nn.utils.parametrizations.weight_norm``."""
    warnings.warn("`gt.nn.utils.weight_norm` is deprecated in favor of "
                  "`gt.nn.utils.parametrizations.weight_norm`.", FutureWarning, stacklevel=2)
    WeightNorm.apply(module, name, dim)
    return module


def remove_weight_norm(module, name="weight"):
    """Undo ``weight_norm``: ``module.<name>`` is a Parameter again, holding the current
    normalised weight. Returns ``module``."""
    return remove_hook(module, name, WeightNorm, "weight_norm")


def remove_hook(module, name, kind, label):
    """Remove the forward pre-hook of class ``kind`` that reparametrizes ``module.<name>`` (the
    hook versions of weight and spectral norm); ValueError naming ``label`` if there is none."""
    for k, hook in list(module._forward_pre_hooks.items()):
        if isinstance(hook, kind) and hook.name == name:
            hook.remove(module)
            del module._forward_pre_hooks[k]
            return module
    raise ValueError(f"{label} of '{name}' not found in {module}")
