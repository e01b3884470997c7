"""Saving and loading a module's state: ``Module.state_dict()`` / ``Module.load_state_dict()``.

Values are plain numpy arrays on the way out; on the way in, numpy arrays, gt tensors or
torch tensors. A load checks everything before it writes anything.
"""

import collections
import collections.abc

from gt import autograd
from gt.backend import B
from gt.tensor import Tensor


class IncompatibleKeys(collections.namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])):
    """What ``load_state_dict(strict=False)`` skipped: keys the model has but the dict lacks, and the reverse."""

    def __repr__(self):
        if not self.missing_keys and not self.unexpected_keys:
            return "<All keys matched successfully>"
        return super().__repr__()


def entries(module, prefix=""):
    """Every saved tensor under its dotted key: own parameters, own persistent buffers, then each
    child's. A tensor shared by two layers appears under each name (as in torch)."""
    for name, p in module._parameters.items():
        if p is not None:
            yield prefix + name, p
    for name, b in module._buffers.items():
        if b is not None and name not in module._non_persistent_buffers:
            yield prefix + name, b
    for name, child in module._modules.items():
        if child is not None:
            yield from entries(child, f"{prefix}{name}.")


def save(module, prefix="", keep_vars=False):
    out = collections.OrderedDict()
    for key, t in entries(module, prefix):
        out[key] = t if keep_vars else B.to_numpy(B.copy(t._data))
    return out


def load(module, state_dict, strict=True):
    if not isinstance(state_dict, collections.abc.Mapping):
        raise TypeError(f"load_state_dict expects a dict-like mapping, got {type(state_dict).__name__}")
    own = collections.OrderedDict(entries(module))
    missing = [k for k in own if k not in state_dict]
    unexpected = [k for k in state_dict if k not in own]
    problems, values = [], {}
    for key, target in own.items():
        if key not in state_dict:
            continue
        arr, problem = checked_value(key, state_dict[key], target)
        if problem:
            problems.append(problem)
        if arr is not None:
            values[key] = arr
    errors = []
    if strict and missing:
        errors.append("Missing key(s) in state_dict: " + ", ".join(f'"{k}"' for k in missing))
    if strict and unexpected:
        errors.append("Unexpected key(s) in state_dict: " + ", ".join(f'"{k}"' for k in unexpected))
    errors += problems
    if errors:
        raise RuntimeError(f"Error(s) in loading state_dict for {type(module).__name__} (nothing was loaded):\n\t"
                           + "\n\t".join(errors))
    with autograd.no_grad():
        for key, arr in values.items():
            target = own[key]
            target.copy_(B.astype(arr, target.dtype))
    return IncompatibleKeys(missing, unexpected)


def checked_value(key, value, target):
    """``(array, problem)``: the engine array of the state dict's ``value`` for the tensor
    ``target``, and None or what stops it from loading there (unreadable: no array; another shape)."""
    try:
        arr = value._data if isinstance(value, Tensor) else B.asarray(value)
    except (TypeError, ValueError, RuntimeError) as exc:
        return None, f"cannot read {key}: {exc}"
    if tuple(arr.shape) != target.shape:
        return arr, (f"size mismatch for {key}: copying a value of shape {tuple(arr.shape)} from the state dict, "
                     f"the shape in the current model is {target.shape}")
    return arr, None
