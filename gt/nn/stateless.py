"""``functional_call``: run a module with other tensors in place of its parameters and buffers
(torch's ``torch.func.functional_call`` and its older path ``torch.nn.utils.stateless``).

The given tensors are put into the module's registries for the one call and the module's own
are put back afterwards, also when the call raises. Nothing is copied: gradients flow to the
given tensors, and the module's own parameters are not part of the call's graph.

    >>> params = {k: v.detach().requires_grad_() for k, v in model.named_parameters()}
    >>> loss = gt.func.functional_call(model, params, (x,)).sum()
"""

import contextlib
import warnings

from gt.tensor import Tensor, from_numpy
from gt.nn.module import Module

__all__ = ["functional_call"]

_MISSING = object()


def _untie(module, values):
    """``values`` with every name tied to a given one (the same tensor under two names in the
    module) added, mapped to the given value; two different values for one tied tensor raise."""
    named = dict(module.named_parameters(remove_duplicate=False))
    named.update(module.named_buffers(remove_duplicate=False))
    by_tensor = {}
    for name, t in named.items():
        by_tensor.setdefault(id(t), set()).add(name)
    tied = {name: names for names in by_tensor.values() if len(names) > 1 for name in names}
    given = [name for name in values if name in tied]
    for name in given:
        names = tied[name]
        if len({id(values[n]) for n in names if n in values}) > 1:
            raise ValueError(f"functional_call got multiple values for keys {sorted(names)}, which are tied. "
                             "Consider using tie_weights=False")
    out = dict(values)
    for name in given:
        for other in tied[name]:
            out[other] = values[name]
    return out


def _swap(module, name, value):
    """Put ``value`` (a tensor, None or ``_MISSING``: remove) at the dotted ``name``; return what
    was there (``_MISSING`` when nothing was)."""
    prefix, _, attr = name.rpartition(".")
    owner = module.get_submodule(prefix) if prefix else module
    if value is not _MISSING and value is not None and not isinstance(value, Tensor):
        raise TypeError(f"functional_call: the value for {name!r} must be a gt.Tensor (or a numpy array, as "
                        f"state_dict() gives), got {type(value).__name__}")
    for kind in ("_parameters", "_buffers"):
        registry = owner.__dict__[kind]
        if attr in registry:
            old = registry[attr]
            if value is _MISSING:
                del registry[attr]
            else:
                registry[attr] = value      # the registry itself: no Parameter type check, as torch's
            return old
    old = getattr(owner, attr, _MISSING)
    if old is not _MISSING and old is not None and not isinstance(old, Tensor):
        raise TypeError(f"attribute `{attr}`: {old} is not an instance of gt.Tensor")
    if value is _MISSING:
        if old is not _MISSING:
            delattr(owner, attr)
    else:
        object.__setattr__(owner, attr, value)
    return old


@contextlib.contextmanager
def _reparametrize(module, values, tie_weights, strict):
    if tie_weights:
        values = _untie(module, values)
    if strict:
        valid = {n for n, _ in module.named_parameters(remove_duplicate=False)}
        valid |= {n for n, _ in module.named_buffers(remove_duplicate=False)}
        missing, unexpected = sorted(valid - set(values)), sorted(set(values) - valid)
        msgs = []
        if unexpected:
            msgs.append(f"Unexpected key(s): {', '.join(map(repr, unexpected))}.")
        if missing:
            msgs.append(f"Missing key(s): {', '.join(map(repr, missing))}.")
        if msgs:
            raise RuntimeError(f"Error(s) in reparametrizing for {type(module).__name__}:\n\t" + "\n\t".join(msgs))
    originals, converted = {}, {}
    try:
        for name, value in values.items():
            if type(value).__name__ == "ndarray" and type(value).__module__ == "numpy":
                # gt's state_dict() gives numpy arrays: functional_call(m, m.state_dict(), x) runs
                # as torch's, on tensors sharing their memory (buffers updated in place write there)
                value = converted[name] = from_numpy(value)
            originals[name] = _swap(module, name, value)
        yield
    finally:
        now = {name: _swap(module, name, old) for name, old in originals.items()}
        for name in values:
            # a module that reassigned a given tensor in its forward (self.n = self.n + 1): the
            # caller's dict sees the new value, as in torch
            if name in now and now[name] is not _MISSING and now[name] is not converted.get(name):
                values[name] = now[name]


def _functional_call(module, parameters_and_buffers, args=None, kwargs=None, *, tie_weights=True, strict=False):
    if not isinstance(module, Module):
        raise TypeError(f"functional_call: expected a gt.nn.Module, got {type(module).__name__}")
    kwargs = {} if kwargs is None else kwargs
    args = () if args is None else args if isinstance(args, tuple) else (args,)
    with _reparametrize(module, parameters_and_buffers, tie_weights, strict):
        return module(*args, **kwargs)


def functional_call(module, parameters_and_buffers, args=None, kwargs=None, *, tie_weights=True, strict=False):
    """``torch.nn.utils.stateless.functional_call`` (deprecated in torch for
    ``gt.func.functional_call``, which also takes a tuple of dicts): call ``module(*args,
    **kwargs)`` with the tensors of ``parameters_and_buffers`` (``{dotted name: tensor}``) in place
    of its own. Warns ``FutureWarning`` as torch does."""
    warnings.warn("`gt.nn.utils.stateless.functional_call` is deprecated (as torch's); use "
                  "`gt.func.functional_call`, a drop-in replacement.", FutureWarning, stacklevel=2)
    return _functional_call(module, parameters_and_buffers, args, kwargs, tie_weights=tie_weights, strict=strict)
