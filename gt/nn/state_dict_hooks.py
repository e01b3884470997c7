"""Hooks on ``Module.state_dict()`` and ``Module.load_state_dict()``, with torch's signatures and
order: ``register_state_dict_pre_hook``, ``register_state_dict_post_hook``,
``register_load_state_dict_pre_hook`` and ``register_load_state_dict_post_hook``, each returning a
``RemovableHandle``.

    >>> def renamed(module, state_dict, prefix, local_metadata, strict, missing, unexpected, errors):
    ...     if prefix + "w" in state_dict:                     # an old checkpoint's name
    ...         state_dict[prefix + "weight"] = state_dict.pop(prefix + "w")
    >>> handle = model.fc.register_load_state_dict_pre_hook(renamed)
    >>> model.load_state_dict(old_checkpoint)

Without hooks anywhere in the module tree, saving and loading are gt/nn/state.py's. With one, or
a class overriding torch's ``_save_to_state_dict``/``_load_from_state_dict`` (a checkpoint of an
older ``_version`` migrated in a subclass), they walk the tree as torch does: a module's
pre-hooks, its own entries, its children (each with the part of the dict under its prefix), then
its post-hooks. ``local_metadata`` is the module's
entry of the dict's ``_metadata`` (a torch state dict carries one; a gt one does not: ``{}``) on
load, and ``{"version": module._version}`` on save. As in torch, load pre-hooks get
``strict=True`` whatever ``strict`` is (missing and unexpected keys are always collected), and a
load post-hook gets the ``IncompatibleKeys`` of the keys found so far, which it may change in
place: with ``strict=True`` any key left in them is an error, raised after the values were loaded.

Where gt differs from torch: the values a hook sees in a saved dict are numpy arrays (gt's
``state_dict``); a load checks every value (shapes, readable) before it writes any, as gt's
``load_state_dict`` always does, so a load pre-hook sees the lists of keys that earlier post-hooks
have not changed yet; unexpected keys are listed module by module (torch's order), where a load
without hooks lists them in the dict's order.
"""

import collections
import collections.abc
import threading
import types
import warnings

from gt import autograd
from gt.nn import state
from gt.utils.hooks import RemovableHandle

_NO_HOOKS = types.MappingProxyType({})
_SAVE_HOOKS = ("_state_dict_pre_hooks", "_state_dict_hooks")
_LOAD_HOOKS = ("_load_state_dict_pre_hooks", "_load_state_dict_post_hooks")
# a load in progress: per module, the checked (target, value, where) entries its
# ``_load_from_state_dict`` found, written only once every module's were checked
_PENDING = threading.local()


class StateDictHooks(state.ExtraState):
    """The registration of ``Module``'s state-dict hooks (their dicts, under torch's names, are
    made on the first registration)."""

    _version = 1   # torch's: the version a saved module reports in ``local_metadata``
    _state_dict_pre_hooks = _state_dict_hooks = _NO_HOOKS
    _load_state_dict_pre_hooks = _load_state_dict_post_hooks = _NO_HOOKS

    def register_state_dict_pre_hook(self, hook):
        """Run ``hook(module, prefix, keep_vars) -> None`` before ``state_dict()`` saves this
        module (and its children). Returns a ``RemovableHandle``."""
        return self._add_state_hook("_state_dict_pre_hooks", hook, "register_state_dict_pre_hook")

    def register_state_dict_post_hook(self, hook):
        """Run ``hook(module, state_dict, prefix, local_metadata) -> None`` once this module and its
        children are in ``state_dict`` (the whole dict being built); it may change the dict in
        place, and must return None. Returns a ``RemovableHandle``."""
        return self._add_state_hook("_state_dict_hooks", hook, "register_state_dict_post_hook")

    def register_load_state_dict_pre_hook(self, hook):
        """Run ``hook(module, state_dict, prefix, local_metadata, strict, missing_keys,
        unexpected_keys, error_msgs) -> None`` before ``load_state_dict()`` loads this module:
        it may change ``state_dict`` (a copy: this module's part of the dict) and append to the
        three lists. Returns a ``RemovableHandle``."""
        return self._add_state_hook("_load_state_dict_pre_hooks", hook, "register_load_state_dict_pre_hook")

    def register_load_state_dict_post_hook(self, hook):
        """Run ``hook(module, incompatible_keys) -> None`` once this module and its children are
        loaded; it may change ``incompatible_keys.missing_keys`` / ``.unexpected_keys`` in place
        (with ``strict=True`` a key left there is an error). Returns a ``RemovableHandle``."""
        return self._add_state_hook("_load_state_dict_post_hooks", hook, "register_load_state_dict_post_hook")

    def _save_to_state_dict(self, destination, prefix, keep_vars):
        """torch's: put this module's own entries (parameters, persistent buffers, extra state; not
        its children's) into ``destination`` under ``prefix``. A subclass may override it (calling
        ``super()``) to save more or other entries."""
        for key, t in state.own_entries(self, prefix):
            destination[key] = state.saved_value(t, keep_vars)
        if state.defines(self, "get_extra_state"):
            destination[prefix + state.EXTRA_STATE] = self.get_extra_state()

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                              error_msgs):
        """torch's: run this module's load pre-hooks, then load its own entries from ``state_dict``
        (this module's part of the dict, keys under ``prefix``), appending to the three lists. A
        subclass may override it to read an older layout (``local_metadata.get("version")``: the
        ``_version`` the dict was saved with) and call ``super()``. Inside ``load_state_dict`` the
        values are checked here and written once every module's are (gt's all-or-nothing load)."""
        for hook in tuple(self._load_state_dict_pre_hooks.values()):
            hook(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs)
        values = _own_values(self, state_dict, prefix, local_metadata, strict, (missing_keys, unexpected_keys,
                                                                                  error_msgs))
        queue(values, local_metadata, error_msgs)

    def _add_state_hook(self, name, hook, fn):
        if not callable(hook):
            raise TypeError(f"{fn}: hook must be callable, got {type(hook).__name__}")
        hooks = self.__dict__.get(name)
        if hooks is None:
            hooks = self.__dict__[name] = collections.OrderedDict()
        handle = RemovableHandle(hooks)
        hooks[handle.id] = hook
        return handle


def queue(values, local_metadata, error_msgs):
    """Hand a ``_load_from_state_dict``'s checked ``[(target, value, where)]`` to the load in progress,
    which writes them once every module's were checked; called by hand (no load in progress), write
    them now where no error was found, as torch's."""
    stack = getattr(_PENDING, "stack", None)
    if stack:
        stack[-1].extend(values)
    elif not error_msgs:
        assign = local_metadata.get("assign_to_params_buffers", False)
        with autograd.no_grad():
            for target, value, where in values:
                state.write(target, value, where if assign else None)


def _hooked(module, names, method):
    """Whether a module of the tree has a hook of ``names`` or a class overriding ``method``
    (``_save_to_state_dict``/``_load_from_state_dict``): then torch's module-by-module walk runs."""
    default = getattr(StateDictHooks, method)
    return any(getattr(type(m), method) is not default or any(m.__dict__.get(n) for n in names)
               for m in module.modules())


def state_dict(module, args, destination, prefix, keep_vars):
    """``Module.state_dict``: its arguments read as torch's (``args``: positional ones), the entries
    saved into ``destination`` (a new OrderedDict by default), which also gets torch's
    ``_metadata`` (``{module path: {"version": module._version}}``) where it can hold one."""
    if args:
        if isinstance(args[0], str):       # gt's own positional order: (prefix, keep_vars)
            args = (destination,) + args
        else:
            warnings.warn("Positional args are being deprecated, use kwargs instead. Refer to "
                          "https://pytorch.org/docs/main/generated/torch.nn.Module.html#torch.nn.Module.state_dict"
                          " for details.", FutureWarning, stacklevel=3)
        if len(args) > 3:
            raise TypeError(f"state_dict() takes at most 3 positional arguments, got {len(args)}")
        destination, prefix, keep_vars = args + (destination, prefix, keep_vars)[len(args):]
    saved = save(module, prefix, keep_vars)
    if destination is None:
        destination = saved
        destination._metadata = collections.OrderedDict()
    else:
        destination.update(saved)
    metadata = getattr(destination, "_metadata", None)
    if metadata is not None:
        for path, m in module.named_modules(remove_duplicate=False):
            key = (f"{prefix}{path}." if path else prefix)[:-1]
            metadata[key] = {"version": m._version}
            # torch's submodules that gt folds into m (a dynamic quantized Linear's packed params)
            for inner, version in getattr(m, "_inner_versions", {}).items():
                metadata[f"{key}.{inner}" if key else inner] = {"version": version}
    return destination


def save(module, prefix="", keep_vars=False):
    """``Module.state_dict``: gt/nn/state.py's, or torch's walk when a module has a hook."""
    if not _hooked(module, _SAVE_HOOKS, "_save_to_state_dict"):
        return state.save(module, prefix, keep_vars)
    out = collections.OrderedDict()
    with state.copying(module, prefix):       # tied weights: one copy, as in the walk without hooks
        _save(module, prefix, keep_vars, out)
    return out


def _save(module, prefix, keep_vars, out):
    for hook in tuple(module._state_dict_pre_hooks.values()):
        hook(module, prefix, keep_vars)
    module._save_to_state_dict(out, prefix, keep_vars)
    for name, child in module._modules.items():
        if child is not None:
            _save(child, f"{prefix}{name}.", keep_vars, out)
    for hook in tuple(module._state_dict_hooks.values()):
        if hook(module, out, prefix, {"version": module._version}) is not None:
            raise RuntimeError("state_dict post-hook must return None")


def load(module, state_dict, strict=True, assign=False):
    """``Module.load_state_dict``: gt/nn/state.py's, or torch's walk when a module has a hook.
    Two passes: the first runs the pre-hooks and checks every value (nothing is written if one
    is wrong); the second writes each module's values and runs its post-hooks, in torch's order."""
    if not _hooked(module, _LOAD_HOOKS, "_load_from_state_dict"):
        return state.load(module, state_dict, strict, assign)
    if not isinstance(state_dict, collections.abc.Mapping):
        raise TypeError(f"load_state_dict expects a dict-like mapping, got {type(state_dict).__name__}")
    metadata = getattr(state_dict, "_metadata", None)
    missing, unexpected, errors, steps = [], [], [], []
    _check(module, collections.OrderedDict(state_dict), "", (metadata, assign), (missing, unexpected, errors), steps)
    if errors:
        listed = ([f"Missing key(s) in state_dict: {_quoted(missing)}"] if strict and missing else []) + \
                 ([f"Unexpected key(s) in state_dict: {_quoted(unexpected)}"] if strict and unexpected else [])
        raise RuntimeError(f"Error(s) in loading state_dict for {type(module).__name__} (nothing was loaded):\n\t"
                           + "\n\t".join(listed + errors))
    keys = state.IncompatibleKeys([], [])
    with autograd.no_grad():
        for step in steps:
            if isinstance(step, tuple):   # (module, its missing keys, its unexpected keys, its values)
                _, own_missing, own_unexpected, values = step
                keys.missing_keys.extend(own_missing)
                keys.unexpected_keys.extend(own_unexpected)
                for target, arr, where in values:
                    state.write(target, arr, where if assign else None)
                continue
            for hook in tuple(step._load_state_dict_post_hooks.values()):
                if hook(step, keys) is not None:
                    raise AssertionError("Hooks registered with ``register_load_state_dict_post_hook`` are not "
                                         "expected to return new values, if incompatible_keys need to be modified, "
                                         "it should be done inplace.")
    if strict and (keys.missing_keys or keys.unexpected_keys):
        listed = ([f"Missing key(s) in state_dict: {_quoted(keys.missing_keys)}"] if keys.missing_keys else []) + \
                 ([f"Unexpected key(s) in state_dict: {_quoted(keys.unexpected_keys)}"] if keys.unexpected_keys else [])
        raise RuntimeError(f"Error(s) in loading state_dict for {type(module).__name__} (the values were loaded, "
                           "the keys were left by a load_state_dict post-hook):\n\t" + "\n\t".join(listed))
    return keys


def _quoted(keys):
    return ", ".join(f'"{k}"' for k in keys)


def _check(module, local, prefix, context, lists, steps):
    """torch's walk of ``_load_from_state_dict`` over ``module`` and then its children, without
    writing: appends (module, its missing keys, its unexpected keys, [(target, value, where)]) to
    ``steps``, and the module itself where its post-hooks run. ``context``: (the dict's
    ``_metadata`` or None, ``assign``)."""
    missing, unexpected, errors = lists
    start_m, start_u = len(missing), len(unexpected)
    metadata, assign = context
    local_metadata = {}
    if metadata is not None:
        local_metadata = metadata.get(prefix[:-1], {})
    if assign:                                 # torch's mark, read by ``_load_from_state_dict``
        local_metadata = {**local_metadata, "assign_to_params_buffers": True}
    stack = _PENDING.__dict__.setdefault("stack", [])
    stack.append([])
    try:
        module._load_from_state_dict(local, prefix, local_metadata, True, missing, unexpected, errors)
    finally:
        values = stack.pop()
    steps.append((module, missing[start_m:], unexpected[start_u:], values))
    for name, child in module._modules.items():
        if child is not None:
            child_prefix = f"{prefix}{name}."
            _check(child, {k: v for k, v in local.items() if k.startswith(child_prefix)}, child_prefix,
                   context, lists, steps)
    steps.append(module)


def _own_values(module, local, prefix, local_metadata, strict, lists):
    """The default ``_load_from_state_dict``'s reading of ``module``'s own entries in ``local``:
    [(target, value, where)] of those that can load (``where``: (module, name, the given value),
    for ``assign=True``), the missing, unexpected and wrong ones in ``lists``."""
    missing, unexpected, errors = lists
    own = {key[len(prefix):]: t for key, t in state.own_entries(module, prefix)}
    if state.defines(module, "set_extra_state"):
        own[state.EXTRA_STATE] = module
    values = []
    optional = module._optional_state(local_metadata.get("version")) if hasattr(module, "_optional_state") else ()
    for name, target in own.items():
        key = prefix + name
        if key not in local:
            if name not in optional and strict:
                missing.append(key)
            continue
        if target is module:
            values.append((module, local[key], None))    # extra state: given as it is, in torch's order
            continue
        arr, problem = state.checked_value(key, local[key], target)
        if problem:
            errors.append(problem)
            continue
        values.append((target, arr, (module, name, local[key])))
    for key in local if strict else ():
        if key.startswith(prefix):
            head = key[len(prefix):].split(".", 1)
            if head[0] not in (module._modules if len(head) > 1 else own):
                unexpected.append(key)
    return values
