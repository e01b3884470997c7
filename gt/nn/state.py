"""Saving and loading a module's state: ``Module.state_dict()`` / ``Module.load_state_dict()``.

Values are plain numpy arrays on the way out; on the way in, numpy arrays, gt tensors or
torch tensors. A load checks everything before it writes anything. A module whose class defines
``get_extra_state``/``set_extra_state`` (torch's protocol) also saves and loads whatever object
they return and take, under ``prefix + "_extra_state"``, after its own tensors and before its
children's, as torch's; ``set_extra_state`` runs in that order too, once every value is checked.
"""

import collections
import collections.abc
import threading

import numpy as np

from gt import autograd
from gt.backend import B
from gt.nn.parameter import Parameter
from gt.nn.uninitialized import UninitializedTensorMixin
from gt.tensor import Tensor


class IncompatibleKeys(collections.namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])):
    """What ``load_state_dict(strict=False)`` skipped: keys the model has but the dict lacks, and the reverse."""

    def __repr__(self):
        if not self.missing_keys and not self.unexpected_keys:
            return "<All keys matched successfully>"
        return super().__repr__()


EXTRA_STATE = "_extra_state"


class ExtraState:
    """torch's extra-state protocol on ``Module``: define both methods in a subclass to keep a
    picklable object (a step count, a vocabulary) in the module's state dict."""

    def get_extra_state(self):
        """The object to save under ``prefix + "_extra_state"`` in ``state_dict()``; called only
        where a subclass defines it."""
        raise RuntimeError(f"{type(self).__name__}.get_extra_state() is called only where a subclass defines it")

    def set_extra_state(self, state):
        """Restore what ``get_extra_state`` returned, from ``load_state_dict()``; called only where a
        subclass defines it."""
        raise RuntimeError(f"{type(self).__name__}.set_extra_state() is called only where a subclass defines it")


def defines(module, method):
    """Whether ``module``'s class defines ``method`` (``"get_extra_state"``/``"set_extra_state"``)."""
    return getattr(type(module), method) is not getattr(ExtraState, method)


def own_entries(module, prefix=""):
    """This module's own saved tensors under their dotted keys: parameters, then persistent buffers."""
    for name, p in module._parameters.items():
        if p is not None:
            yield prefix + name, p
    for name, b in module._buffers.items():
        if b is not None and name not in module._non_persistent_buffers:
            yield prefix + name, b


def _walk(module, prefix, method):
    """(key, tensor) for each saved tensor and (key, module) for each module that ``defines``
    ``method``, in torch's order: own tensors, own extra state, then each child's."""
    yield from own_entries(module, prefix)
    if defines(module, method):
        yield prefix + EXTRA_STATE, module
    for name, child in module._modules.items():
        if child is not None:
            yield from _walk(child, f"{prefix}{name}.", method)


def entries(module, prefix=""):
    """Every saved tensor under its dotted key: own parameters, own persistent buffers, then each
    child's. A tensor shared by two layers appears under each name (as in torch)."""
    return ((k, t) for k, t in _walk(module, prefix, "get_extra_state") if isinstance(t, Tensor))


def saved_value(entry, keep_vars):
    """What ``state_dict`` holds for a tensor (a numpy copy, or the tensor with ``keep_vars``) or for
    a module that saves extra state (its ``get_extra_state()``)."""
    if not isinstance(entry, Tensor):
        return entry.get_extra_state()
    if keep_vars:
        return entry
    copies = getattr(_SAVING, "copies", None)
    return copies.of(entry) if copies is not None else B.to_numpy(B.copy(entry._data))


_SAVING = threading.local()      # the Copies of the state dict being made on this thread


def _owner_key(t):
    """Which memory ``t`` lies in (its owner's address and its dtype), or None where gt does not track it
    (a lazy module's placeholder has no memory: it is saved as itself, as torch's)."""
    if isinstance(t, UninitializedTensorMixin) or t._placed is not None or B.storage_size(t._array) is None:
        return None
    return B.data_address(B.memory_owner(t._array)), t.dtype


class Copies:
    """The numpy copies of one state dict's tensors, sharing memory as the tensors do, so that
    ``gt.save`` writes them as torch writes its state dicts (which hold the tensors themselves):
    a tensor under two names (tied weights) is one copy under both, and tensors lying in one memory
    are views of one copy of it. Each other tensor is a copy of its own elements."""

    def __init__(self, tensors):
        distinct = {id(t): t for t in tensors}.values()
        counts = collections.Counter(_owner_key(t) for t in distinct)
        self._shared = {k for k, n in counts.items() if k is not None and n > 1}
        self._made, self._wholes = {}, {}

    def of(self, t):
        made = self._made.get(id(t))
        if made is None:
            key = _owner_key(t) if self._shared else None
            if key in self._shared:
                arr = t._array
                whole = self._wholes.get(key)
                if whole is None:      # the memory's copy, 1-D from the owner's start
                    whole = self._wholes[key] = B.to_numpy(B.copy(B.strided_view(arr, (B.storage_size(arr),), (1,), 0)))
                step = whole.itemsize
                start = (B.data_address(arr) - B.data_address(B.memory_owner(arr))) // t.element_size()
                value = np.ndarray(tuple(t.shape), whole.dtype, buffer=whole, offset=start * step,
                                   strides=tuple(s * step for s in B.element_strides(arr)))
            else:
                value = B.to_numpy(B.copy(t._data))
            made = self._made[id(t)] = (t, value)       # t kept: its id stays its own meanwhile
        return made[1]


def copying(module, prefix):
    """A context in which ``saved_value`` copies ``module``'s tensors as one ``Copies``."""
    return _Copying(Copies(t for _, t in entries(module, prefix)))


class _Copying:
    def __init__(self, copies):
        self.copies = copies

    def __enter__(self):
        self.outer, _SAVING.copies = getattr(_SAVING, "copies", None), self.copies

    def __exit__(self, *exc):
        _SAVING.copies = self.outer


def write(target, value, assign_to=None):
    """Load one checked value: into a tensor (cast to its dtype), or a module's ``set_extra_state``.
    ``assign_to``: ``(owner, name, given)`` for ``load_state_dict(assign=True)``, where the state
    dict's tensor (``given``, its array ``value``) becomes ``owner.<name>`` instead, as torch's."""
    if not isinstance(target, Tensor):
        target.set_extra_state(value)
    elif assign_to is None:
        target.copy_(B.astype(value, target.dtype))
    else:
        owner, name, given = assign_to
        if not getattr(getattr(value, "flags", None), "writeable", True):
            value = B.copy(value)      # a read-only array (a memory-mapped file) could not be trained in place
        # torch's: the given tensor itself (a 1-element one for a scalar entry: a view), its dtype kept
        new = given if isinstance(given, Tensor) and tuple(given.shape) == tuple(value.shape) else Tensor._wrap(value)
        if isinstance(target, Parameter):      # a parameter stays one, with the module's requires_grad
            if isinstance(new, Parameter):
                new._set_requires_grad(target.requires_grad)
            else:
                new = Parameter(new, requires_grad=target.requires_grad)
        setattr(owner, name, new)


def save(module, prefix="", keep_vars=False):
    with copying(module, prefix):
        return collections.OrderedDict((key, saved_value(entry, keep_vars))
                                       for key, entry in _walk(module, prefix, "get_extra_state"))


def load(module, state_dict, strict=True, assign=False):
    if not isinstance(state_dict, collections.abc.Mapping):
        raise TypeError(f"load_state_dict expects a dict-like mapping, got {type(state_dict).__name__}")
    own = collections.OrderedDict(_walk(module, "", "set_extra_state"))
    optional = optional_keys(module, getattr(state_dict, "_metadata", None))
    missing = [k for k in own if k not in state_dict and k not in optional]
    unexpected = [k for k in state_dict if k not in own]
    problems, values = [], {}
    for key, target in own.items():
        if key not in state_dict or not isinstance(target, Tensor):
            continue                                    # extra state: given as it is, in the walk's order
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
        for key, target in own.items():
            if key in values:
                write(target, values[key], (*module._owner_of(key), state_dict[key]) if assign else None)
            elif key in state_dict and not isinstance(target, Tensor):
                write(target, state_dict[key])
    return IncompatibleKeys(missing, unexpected)


def optional_keys(module, metadata):
    """The keys that may be missing from a state dict with torch's ``_metadata`` (or None): those a
    module's ``_optional_state(version)`` names for the version the dict records for it."""
    keys = set()
    for path, m in module.named_modules(remove_duplicate=False):
        if hasattr(m, "_optional_state"):
            version = (metadata or {}).get(path, {}).get("version")
            keys.update(f"{path}.{name}" if path else name for name in m._optional_state(version))
    return keys


def checked_value(key, value, target):
    """``(array, problem)``: the engine array of the state dict's ``value`` for the tensor
    ``target``, and None or what stops it from loading there (unreadable: no array; another shape)."""
    try:
        arr = value._data if isinstance(value, Tensor) else B.asarray(value)
    except (TypeError, ValueError, RuntimeError) as exc:
        return None, f"cannot read {key}: {exc}"
    if target.shape == () and tuple(arr.shape) == (1,):    # torch's: a scalar saved as 1-D by torch 0.3
        arr = B.reshape(arr, ())
    if tuple(arr.shape) != target.shape:
        return arr, (f"size mismatch for {key}: copying a value of shape {tuple(arr.shape)} from the state dict, "
                     f"the shape in the current model is {target.shape}")
    return arr, None
