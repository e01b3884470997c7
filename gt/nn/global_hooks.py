"""torch's module-level hooks (``torch.nn.modules.module.register_module_*``): hooks common to
every module, each registration returning a ``RemovableHandle``. Also importable as
``gt.nn.modules.module.register_module_forward_hook`` etc., torch's path.

    >>> from gt.nn.modules.module import register_module_forward_hook
    >>> seen = []
    >>> with register_module_forward_hook(lambda m, args, out: seen.append(type(m).__name__)):
    ...     model(x)                              # every module called, innermost first
    >>> seen
    ['Linear', 'ReLU', 'Linear', 'Sequential']

Forward and backward hooks run for every module called, before the module's own hooks of the
same kind (torch's ``_call_impl``). Registration hooks run inside ``register_parameter``,
``register_buffer`` and ``add_module`` (and the attribute assignments that register), before the
value is stored, and may return a new value to store instead. They are meant for debugging and
profiling, as torch says: while any global forward or backward hook is registered, every module
call goes through the hook path (and fused paths run their layers one by one, so the hooks see
each); with none registered, a call pays one check of an empty dict.

Where gt differs from torch: a hook that is not callable is refused at registration; an
``always_call`` forward hook registered ``with_kwargs=True`` gets the kwargs also when
``forward`` raised (torch then calls it without them).
"""

import collections
import sys
import warnings

from gt.nn import hooks as _hooks
from gt.nn.backward_hooks import DEPRECATED_BACKWARD_HOOK, _one_kind
from gt.utils.hooks import RemovableHandle

_global_parameter_registration_hooks = collections.OrderedDict()
_global_buffer_registration_hooks = collections.OrderedDict()
_global_module_registration_hooks = collections.OrderedDict()
_REGISTRATION = {"parameter": _global_parameter_registration_hooks, "buffer": _global_buffer_registration_hooks,
                 "module": _global_module_registration_hooks}
_is_full_backward_hook = None   # which kind of global backward hook is registered (torch refuses mixing)


def _checked(hook, fn):
    if not callable(hook):
        raise TypeError(f"{fn}: hook must be callable, got {type(hook).__name__}")
    return hook


def _add(hook, fn, hooks, *extra, call_hook=True):
    _checked(hook, fn)
    handle = RemovableHandle(hooks, extra_dict=[*extra, _hooks._global_call_hooks] if call_hook else list(extra))
    hooks[handle.id] = hook
    if call_hook:
        _hooks._global_call_hooks[handle.id] = True
    return handle


def registered(kind, module, name, value):
    """``value`` as the global ``kind`` registration hooks leave it (``kind``: ``"parameter"``,
    ``"buffer"`` or ``"module"``); what ``Module`` stores under ``name``. A parameter set to None
    runs no hook, as torch's."""
    hooks = _REGISTRATION[kind]
    if not hooks or (value is None and kind == "parameter"):
        return value
    for hook in tuple(hooks.values()):
        out = hook(module, name, value)
        value = value if out is None else out
    return value


def register_module_forward_pre_hook(hook):
    """Run ``hook(module, args) -> None or new args`` before every module's ``forward``, before
    the module's own pre-hooks (a non-tuple result becomes a 1-tuple). Returns a ``RemovableHandle``."""
    return _add(hook, "register_module_forward_pre_hook", _hooks._global_forward_pre_hooks)


def register_module_forward_hook(hook, *, with_kwargs=False, always_call=False):
    """Run ``hook(module, args, output) -> None or new output`` after every module's ``forward``,
    before the module's own forward hooks. ``with_kwargs=True``: ``hook(module, args, kwargs,
    output)``. ``always_call=True``: it also runs when ``forward`` raised (``output`` None).
    Returns a ``RemovableHandle``."""
    handle = _add(hook, "register_module_forward_hook", _hooks._global_forward_hooks,
                  _hooks._global_forward_hooks_with_kwargs, _hooks._global_forward_hooks_always_called)
    if with_kwargs:
        _hooks._global_forward_hooks_with_kwargs[handle.id] = True
    if always_call:
        _hooks._global_forward_hooks_always_called[handle.id] = True
    return handle


def register_module_full_backward_pre_hook(hook):
    """Run ``hook(module, grad_output) -> None or new grad_output`` for every module's backward,
    before the module's own backward pre-hooks (see ``Module.register_full_backward_pre_hook``).
    Returns a ``RemovableHandle``."""
    return _add(hook, "register_module_full_backward_pre_hook", _hooks._global_backward_pre_hooks)


def register_module_full_backward_hook(hook):
    """Run ``hook(module, grad_input, grad_output) -> None or new grad_input`` for every module's
    backward, before the module's own backward hooks (see ``Module.register_full_backward_hook``).
    Returns a ``RemovableHandle``."""
    _checked(hook, "register_module_full_backward_hook")
    _one_kind(sys.modules[__name__], True, "as a global Module hook")
    return _add(hook, "register_module_full_backward_hook", _hooks._global_backward_hooks)


def register_module_backward_hook(hook):
    """torch's deprecated global backward hook, run here as a full backward hook (with a
    ``FutureWarning``; see ``Module.register_backward_hook``). Returns a ``RemovableHandle``."""
    _checked(hook, "register_module_backward_hook")
    warnings.warn(DEPRECATED_BACKWARD_HOOK.format(where="register_module_full_backward_hook"), FutureWarning,
                  stacklevel=2)
    _one_kind(sys.modules[__name__], False, "as a global Module hook")
    return _add(hook, "register_module_backward_hook", _hooks._global_backward_hooks)


def register_module_parameter_registration_hook(hook):
    """Run ``hook(module, name, param) -> None or new param`` each time any module registers a
    parameter (``register_parameter``, ``module.name = Parameter(...)``). Returns a ``RemovableHandle``."""
    return _add(hook, "register_module_parameter_registration_hook", _global_parameter_registration_hooks,
                call_hook=False)


def register_module_buffer_registration_hook(hook):
    """Run ``hook(module, name, buffer) -> None or new buffer`` each time any module registers a
    buffer (``register_buffer``, or assigning to a registered buffer). Returns a ``RemovableHandle``."""
    return _add(hook, "register_module_buffer_registration_hook", _global_buffer_registration_hooks,
                call_hook=False)


def register_module_module_registration_hook(hook):
    """Run ``hook(module, name, submodule) -> None or new submodule`` each time any module
    registers a child (``add_module``, ``module.name = child``, also None for a registered
    child). Returns a ``RemovableHandle``."""
    return _add(hook, "register_module_module_registration_hook", _global_module_registration_hooks,
                call_hook=False)
