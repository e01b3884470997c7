"""Pruning of module tensors: torch's ``nn.utils.prune``, reachable as ``gt.nn.utils.prune``.

Pruning ``module.<name>`` moves the parameter to ``<name>_orig`` (still a ``Parameter``, so it is
what optimizers train), adds the 0/1 buffer ``<name>_mask`` of the same shape, and turns ``<name>``
into a plain attribute ``mask * orig`` that a forward pre-hook (the pruning method object itself,
kept in ``module._forward_pre_hooks``) recomputes before every forward. Gradients therefore reach
``<name>_orig`` multiplied by the mask. Pruning the same tensor again composes the masks through a
``PruningContainer``; ``remove`` makes the pruning permanent. State dict keys are torch's
(``weight_orig``, ``weight_mask``), so pruned state dicts move between torch and gt.

    >>> m = gt.nn.Linear(4, 3)
    >>> gt.nn.utils.prune.l1_unstructured(m, "weight", amount=0.5)   # the 6 smallest |w| are zeroed
    >>> sorted(n for n, _ in m.named_buffers())
    ['weight_mask']
    >>> gt.nn.utils.prune.remove(m, "weight")                        # m.weight is a Parameter again

Random methods draw from gt's generator (``gt.manual_seed``), not torch's bits, so their masks
differ from torch's for the same seed; their counts and shapes are the same. Ties in the L1 / Ln
orderings are broken by ``topk``'s order, which for exactly equal magnitudes may differ from torch's.
"""

import numbers
from collections.abc import Iterable

from gt.nn.convert_parameters import parameters_to_vector
from gt.tensor.creation import ones_like, rand, rand_like, zeros_like
from gt.nn.prune_base import BasePruningMethod, Identity, PruningContainer

__all__ = ["BasePruningMethod", "PruningContainer", "Identity", "RandomUnstructured", "L1Unstructured",
           "RandomStructured", "LnStructured", "CustomFromMask", "identity", "random_unstructured",
           "l1_unstructured", "random_structured", "ln_structured", "global_unstructured",
           "custom_from_mask", "remove", "is_pruned"]


def _check_amount_init(amount):
    if not isinstance(amount, numbers.Real):
        raise TypeError(f"Invalid type for amount: {amount}. Must be int or float.")
    if (isinstance(amount, numbers.Integral) and amount < 0) or (
            not isinstance(amount, numbers.Integral) and (float(amount) > 1.0 or float(amount) < 0.0)):
        raise ValueError(f"amount={amount} should either be a float in the range [0, 1] or a non-negative integer")


def _check_amount(amount, tensor_size):
    if isinstance(amount, numbers.Integral) and amount > tensor_size:
        raise ValueError(f"amount={amount} should be smaller than the number of parameters to prune={tensor_size}")


def _n_to_prune(amount, tensor_size):
    # a float is a fraction, rounded half to even as Python's round() (torch does the same)
    return amount if isinstance(amount, numbers.Integral) else round(amount * tensor_size)


def _check_structured(t, dim):
    shape = tuple(t.shape)
    if len(shape) <= 1:
        raise ValueError("Structured pruning can only be applied to multidimensional tensors. Found tensor of "
                         f"shape {shape} with {len(shape)} dims")
    if dim >= t.dim():
        raise IndexError(f"Invalid index {dim} for tensor of size {shape}")


def _zero_flat(mask, index):
    # through a flat copy rather than torch's `mask.view(-1)[index] = 0`: a sharded mask's
    # flat view is not guaranteed to alias it
    flat = mask.reshape(-1).clone()
    flat[index] = 0
    return flat.reshape(tuple(mask.shape))


class RandomUnstructured(BasePruningMethod):
    """Zero ``amount`` (int: a count; float in [0, 1]: a fraction) randomly chosen entries."""

    PRUNING_TYPE = "unstructured"

    def __init__(self, amount):
        _check_amount_init(amount)
        self.amount = amount

    def compute_mask(self, t, default_mask):
        size = t.nelement()
        k = _n_to_prune(self.amount, size)
        _check_amount(k, size)
        mask = default_mask.clone()
        if k != 0:
            prob = rand_like(t)
            mask = _zero_flat(mask, prob.reshape(-1).topk(k).indices)
        return mask

    @classmethod
    def apply(cls, module, name, amount):
        return super().apply(module, name, amount=amount)


class L1Unstructured(BasePruningMethod):
    """Zero the ``amount`` entries of smallest absolute value."""

    PRUNING_TYPE = "unstructured"

    def __init__(self, amount):
        _check_amount_init(amount)
        self.amount = amount

    def compute_mask(self, t, default_mask):
        size = t.nelement()
        k = _n_to_prune(self.amount, size)
        _check_amount(k, size)
        mask = default_mask.clone()
        if k != 0:
            mask = _zero_flat(mask, t.abs().reshape(-1).topk(k, largest=False).indices)
        return mask

    @classmethod
    def apply(cls, module, name, amount, importance_scores=None):
        return super().apply(module, name, amount=amount, importance_scores=importance_scores)


def _channel_mask(t, dim, index):
    mask = zeros_like(t)
    slc = [slice(None)] * len(t.shape)
    slc[dim] = index
    mask[tuple(slc)] = 1
    return mask


class RandomStructured(BasePruningMethod):
    """Zero ``amount`` randomly chosen channels (whole slices along ``dim``)."""

    PRUNING_TYPE = "structured"

    def __init__(self, amount, dim=-1):
        _check_amount_init(amount)
        self.amount = amount
        self.dim = dim

    def compute_mask(self, t, default_mask):
        _check_structured(t, self.dim)
        size = t.shape[self.dim]
        k = _n_to_prune(self.amount, size)
        _check_amount(k, size)
        if k == 0:
            return default_mask
        prob = rand(size)
        threshold = prob.kthvalue(k).values
        mask = _channel_mask(t, self.dim, prob > threshold)
        mask *= default_mask.to(dtype=mask.dtype)
        return mask

    @classmethod
    def apply(cls, module, name, amount, dim=-1):
        return super().apply(module, name, amount=amount, dim=dim)


class LnStructured(BasePruningMethod):
    """Zero the ``amount`` channels along ``dim`` of smallest ``n``-norm (``n`` as ``gt.norm``'s ``p``:
    a number, ``float('inf')``, ``'fro'``...)."""

    PRUNING_TYPE = "structured"

    def __init__(self, amount, n, dim=-1):
        _check_amount_init(amount)
        self.amount = amount
        self.n = n
        self.dim = dim

    def compute_mask(self, t, default_mask):
        _check_structured(t, self.dim)
        size = t.shape[self.dim]
        k = _n_to_prune(self.amount, size)
        _check_amount(k, size)
        dims = list(range(t.dim()))
        dims.remove(dims[self.dim])
        norm = t.norm(p=self.n, dim=dims)
        keep = norm.topk(size - k, largest=True).indices
        if k == 0:
            return default_mask
        mask = _channel_mask(t, self.dim, keep)
        mask *= default_mask.to(dtype=mask.dtype)
        return mask

    @classmethod
    def apply(cls, module, name, amount, n, dim, importance_scores=None):
        return super().apply(module, name, amount=amount, n=n, dim=dim, importance_scores=importance_scores)


class CustomFromMask(BasePruningMethod):
    """Prune with a given 0/1 ``mask`` (combined with any mask already present)."""

    PRUNING_TYPE = "global"

    def __init__(self, mask):
        self.mask = mask

    def compute_mask(self, t, default_mask):
        if tuple(default_mask.shape) != tuple(self.mask.shape):
            raise AssertionError(f"default_mask shape {tuple(default_mask.shape)} must match self.mask shape "
                                 f"{tuple(self.mask.shape)}")
        return default_mask * self.mask.to(dtype=default_mask.dtype)

    @classmethod
    def apply(cls, module, name, mask):
        return super().apply(module, name, mask=mask)


def identity(module, name):
    """Install pruning on ``module.<name>`` with an all-ones mask. Returns ``module``."""
    Identity.apply(module, name)
    return module


def random_unstructured(module, name, amount):
    """Zero ``amount`` random entries of ``module.<name>``. Returns ``module``."""
    RandomUnstructured.apply(module, name, amount)
    return module


def l1_unstructured(module, name, amount, importance_scores=None):
    """Zero the ``amount`` entries of ``module.<name>`` of smallest ``|importance_scores|``
    (default: the tensor itself). Returns ``module``."""
    L1Unstructured.apply(module, name, amount=amount, importance_scores=importance_scores)
    return module


def random_structured(module, name, amount, dim):
    """Zero ``amount`` random channels of ``module.<name>`` along ``dim``. Returns ``module``."""
    RandomStructured.apply(module, name, amount, dim)
    return module


def ln_structured(module, name, amount, n, dim, importance_scores=None):
    """Zero the ``amount`` channels along ``dim`` of smallest ``n``-norm. Returns ``module``."""
    LnStructured.apply(module, name, amount, n, dim, importance_scores=importance_scores)
    return module


def global_unstructured(parameters, pruning_method, importance_scores=None, **kwargs):
    """Prune the ``(module, name)`` pairs of ``parameters`` together, as if one flat tensor:
    e.g. ``pruning_method=L1Unstructured, amount=20`` zeroes the 20 smallest entries over all of
    them. ``importance_scores``: a dict ``{(module, name): tensor}`` ranking instead of the tensors.
    Each tensor then carries a ``CustomFromMask`` pruning (in a container if it was pruned before)."""
    if not isinstance(parameters, Iterable):
        raise TypeError("global_unstructured(): parameters is not an Iterable")
    parameters = list(parameters)   # walked three times below; a generator would be spent after one
    importance_scores = importance_scores if importance_scores is not None else {}
    if not isinstance(importance_scores, dict):
        raise TypeError("global_unstructured(): importance_scores must be of type dict")
    scores = parameters_to_vector([importance_scores.get((m, n), getattr(m, n)) for m, n in parameters])
    default_mask = parameters_to_vector([getattr(m, n + "_mask", None) if hasattr(m, n + "_mask")
                                         else ones_like(getattr(m, n)) for m, n in parameters])
    container = PruningContainer()
    container._tensor_name = "temp"
    method = pruning_method(**kwargs)
    method._tensor_name = "temp"
    if method.PRUNING_TYPE != "unstructured":
        raise TypeError('Only "unstructured" PRUNING_TYPE supported for the `pruning_method`. Found method '
                        f"{pruning_method} of type {method.PRUNING_TYPE}")
    container.add_pruning_method(method)
    final_mask = container.compute_mask(scores, default_mask)
    pointer = 0
    for module, name in parameters:
        param = getattr(module, name)
        n = param.numel()
        custom_from_mask(module, name, mask=final_mask[pointer:pointer + n].view_as(param))
        pointer += n


def custom_from_mask(module, name, mask):
    """Prune ``module.<name>`` with the 0/1 tensor ``mask`` (its shape). Returns ``module``."""
    CustomFromMask.apply(module, name, mask)
    return module


def remove(module, name):
    """Make the pruning of ``module.<name>`` permanent and drop its hook, ``_orig`` and ``_mask``.
    Raises ValueError when that tensor is not pruned. Returns ``module``."""
    for k, hook in module._forward_pre_hooks.items():
        if isinstance(hook, BasePruningMethod) and hook._tensor_name == name:
            hook.remove(module)
            del module._forward_pre_hooks[k]
            return module
    raise ValueError(f"Parameter '{name}' of module {module} has to be pruned before pruning can be removed")


def is_pruned(module):
    """True when ``module`` or any submodule carries a pruning hook."""
    for _, submodule in module.named_modules():
        for hook in submodule._forward_pre_hooks.values():
            if isinstance(hook, BasePruningMethod):
                return True
    return False
