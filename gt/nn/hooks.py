"""Forward hooks on modules, with torch's semantics: ``register_forward_pre_hook`` and
``register_forward_hook`` on every ``Module``, each returning a ``RemovableHandle``.

    >>> seen = []
    >>> with model.fc1.register_forward_hook(lambda m, args, out: seen.append(out.shape)):
    ...     model(x)                                  # the hook runs while the handle is open
    >>> seen
    [(8, 32)]

A module without hooks pays a few dict tests per call for them (``__call__`` tests the dict of
global hooks, gt/nn/global_hooks.py, and its own four, all empty, and calls ``forward``). The
dicts are instance attributes under torch's names (``_forward_pre_hooks``, ``_forward_hooks``,
...), made by ``Module.__init__``: a shallow copy shares them with its original,
``copy.deepcopy`` copies them (the copy keeps its hooks; a handle removes a hook from the module
it came from only), and ``state_dict()`` never sees them.
"""

import collections
import inspect
import types
import warnings

from gt.utils.hooks import RemovableHandle

_NO_HOOKS = types.MappingProxyType({})
# torch's module-level hooks (torch.nn.modules.module), registered by gt/nn/global_hooks.py, run for
# every module before its own. _global_call_hooks holds the id of every global forward and backward
# hook: a call checks that one dict (empty unless some global hook is registered).
_global_call_hooks = collections.OrderedDict()
_global_forward_pre_hooks = collections.OrderedDict()
_global_forward_hooks = collections.OrderedDict()
_global_forward_hooks_with_kwargs = collections.OrderedDict()
_global_forward_hooks_always_called = collections.OrderedDict()
_global_backward_pre_hooks = collections.OrderedDict()
_global_backward_hooks = collections.OrderedDict()
_HOOK_DICTS = ("_forward_pre_hooks", "_forward_pre_hooks_with_kwargs", "_forward_hooks",
               "_forward_hooks_with_kwargs", "_forward_hooks_always_called",
               "_backward_pre_hooks", "_backward_hooks")   # the last two: gt/nn/backward_hooks.py


class ModuleHooks:
    """The hook half of ``Module``: ``__call__``, and the registration of forward hooks."""

    # Read where an instance has no dicts of its own (a module unpickled from before they existed):
    _forward_pre_hooks = _forward_pre_hooks_with_kwargs = _NO_HOOKS
    _forward_hooks = _forward_hooks_with_kwargs = _forward_hooks_always_called = _NO_HOOKS
    _backward_pre_hooks = _backward_hooks = _NO_HOOKS

    def __call__(self, *args, **kwargs):
        if kwargs and "input" in kwargs and not args:     # torch's name of a layer's input: layer(input=x)
            args = _input_as_positional(type(self), kwargs)
        if (_global_call_hooks or self._forward_pre_hooks or self._forward_hooks or self._backward_hooks
                or self._backward_pre_hooks):
            return self._call_with_hooks(args, kwargs)
        return self.forward(*args, **kwargs)

    def register_forward_pre_hook(self, hook, *, prepend=False, with_kwargs=False):
        """Run ``hook(module, args)`` before every ``forward``; a value it returns other than None
        replaces ``args`` (a non-tuple becomes a 1-tuple). With ``with_kwargs=True`` it is
        ``hook(module, args, kwargs)`` and may return ``(args, kwargs)``. ``prepend=True`` runs it
        before the hooks already registered. Returns a ``RemovableHandle``."""
        hooks = self._hook_dicts(hook, "register_forward_pre_hook")
        handle = RemovableHandle(hooks["_forward_pre_hooks"], extra_dict=hooks["_forward_pre_hooks_with_kwargs"])
        hooks["_forward_pre_hooks"][handle.id] = hook
        if with_kwargs:
            hooks["_forward_pre_hooks_with_kwargs"][handle.id] = True
        if prepend:
            hooks["_forward_pre_hooks"].move_to_end(handle.id, last=False)
        return handle

    def register_forward_hook(self, hook, *, prepend=False, with_kwargs=False, always_call=False):
        """Run ``hook(module, args, output)`` after every ``forward`` (``args`` as the pre-hooks left
        them); a value it returns other than None replaces the output. With ``with_kwargs=True`` it
        is ``hook(module, args, kwargs, output)``. ``always_call=True`` runs it even when
        ``forward`` (or a hook) raised, with ``output`` None, before the error propagates (an
        error of the hook itself is then only warned about). ``prepend=True`` runs it first.
        Returns a ``RemovableHandle``."""
        hooks = self._hook_dicts(hook, "register_forward_hook")
        handle = RemovableHandle(hooks["_forward_hooks"], extra_dict=[hooks["_forward_hooks_with_kwargs"],
                                                                      hooks["_forward_hooks_always_called"]])
        hooks["_forward_hooks"][handle.id] = hook
        if with_kwargs:
            hooks["_forward_hooks_with_kwargs"][handle.id] = True
        if always_call:
            hooks["_forward_hooks_always_called"][handle.id] = True
        if prepend:
            hooks["_forward_hooks"].move_to_end(handle.id, last=False)
        return handle

    @staticmethod
    def _new_hook_dicts():
        """Fresh (empty) hook dicts under torch's names, for ``Module.__init__``: instance attributes
        from the start, so a shallow copy shares them with its original, as torch's."""
        return {name: collections.OrderedDict() for name in _HOOK_DICTS}

    def _hook_dicts(self, hook, fn):
        if not callable(hook):
            raise TypeError(f"{fn}: hook must be callable, got {type(hook).__name__}")
        d = self.__dict__
        for name in _HOOK_DICTS:
            if name not in d:
                d[name] = collections.OrderedDict()
        return {name: d[name] for name in _HOOK_DICTS}

    def _call_with_hooks(self, args, kwargs):
        """torch's ``Module._call_impl`` for forward hooks: pre-hooks, ``forward``, hooks, and the
        ``always_call`` hooks that have not run yet when any of them raises. The global hooks of
        each kind (gt/nn/global_hooks.py) run before the module's own, as torch's."""
        ran, result = set(), None
        try:
            args, kwargs = self._run_pre_hooks(args, kwargs)
            backward = None   # the call's backward hooks (gt/nn/backward_hooks.py): inputs wrapped now
            if self._backward_hooks or self._backward_pre_hooks or _global_backward_hooks or _global_backward_pre_hooks:
                args, backward = self._backward_hook_call(args)
            result = self.forward(*args, **kwargs)
            for hook_id, hook in (*_global_forward_hooks.items(), *self._forward_hooks.items()):
                if hook_id in self._forward_hooks_always_called or hook_id in _global_forward_hooks_always_called:
                    ran.add(hook_id)
                out = self._run_hook(hook_id, hook, args, kwargs, result)
                result = result if out is None else out
            return result if backward is None else backward.wrap_outputs(result)
        except Exception:
            for hook_id, hook in (*_global_forward_hooks.items(), *self._forward_hooks.items()):
                if hook_id not in ran and (hook_id in self._forward_hooks_always_called
                                           or hook_id in _global_forward_hooks_always_called):
                    try:
                        out = self._run_hook(hook_id, hook, args, kwargs, result)
                        result = result if out is None else out
                    except Exception as e:
                        scope = "global module" if hook_id in _global_forward_hooks else "module"
                        warnings.warn(f"{scope} forward hook with ``always_call=True`` raised an exception that was "
                                      f"silenced as another error was raised in forward: {e}", stacklevel=2)
            raise

    def _run_pre_hooks(self, args, kwargs):
        with_kwargs = self._forward_pre_hooks_with_kwargs
        for hook_id, hook in (*_global_forward_pre_hooks.items(), *self._forward_pre_hooks.items()):
            if hook_id in with_kwargs:
                out = hook(self, args, kwargs)
                if out is not None:
                    if not (isinstance(out, tuple) and len(out) == 2):
                        raise RuntimeError("forward pre-hook must return None or a tuple of (new_args, new_kwargs), "
                                           f"but got {out!r}.")
                    args, kwargs = out
            else:
                out = hook(self, args)
                if out is not None:
                    args = out if isinstance(out, tuple) else (out,)
        return args, kwargs

    def _run_hook(self, hook_id, hook, args, kwargs, result):
        if hook_id in self._forward_hooks_with_kwargs or hook_id in _global_forward_hooks_with_kwargs:
            return hook(self, args, kwargs, result)
        return hook(self, args, result)


def has_hooks(*modules):
    """True when any of ``modules`` has a forward or backward hook: a fused path that computes
    several layers in one op (skipping their ``__call__``) must then run them one by one, so the
    hooks see each (a global hook: gt/nn/global_hooks.py, counts for every module)."""
    return bool(_global_call_hooks) or any(
        m._forward_pre_hooks or m._forward_hooks or m._backward_hooks or m._backward_pre_hooks for m in modules)


_FIRST_PARAMETER = {}     # module class -> the name of its forward's first argument


def _input_as_positional(cls, kwargs):
    """``(input,)`` taken out of ``kwargs`` where ``cls.forward`` names its first argument
    otherwise (gt's layers call it ``x``; torch's ``input``); else ``()``, kwargs unchanged."""
    name = _FIRST_PARAMETER.get(cls)
    if name is None:
        params = [p for p in inspect.signature(cls.forward).parameters.values() if p.name != "self"]
        first = params[0] if params and params[0].kind in (params[0].POSITIONAL_ONLY, params[0].POSITIONAL_OR_KEYWORD) else None
        name = _FIRST_PARAMETER[cls] = first.name if first is not None else ""
    if name in ("", "input") or name in kwargs:
        return ()
    return (kwargs.pop("input"),)
