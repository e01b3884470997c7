"""torch's state-dict hooks of an optimizer (``register_state_dict_pre_hook`` and friends), which
checkpointing code (sharded or distributed saves, state renaming) uses to adjust what is saved or
loaded. ``Optimizer`` takes the registering methods from ``StateDictHooks`` and wraps every
``state_dict``/``load_state_dict`` (its own and a subclass's) with ``hooked_state_dict`` /
``hooked_load_state_dict``; the hooks run once, at the outermost call."""

import contextlib
import functools

from gt.autograd.node_hooks import RemovableHandle


class StateDictHooks:
    """The four registering methods; each returns a handle whose ``remove()`` takes the hook off."""

    def register_state_dict_pre_hook(self, hook, prepend=False):
        """Run ``hook(optimizer)`` before every ``state_dict()`` (first if ``prepend``)."""
        return _add(self, "_state_dict_pre_hooks", hook, prepend)

    def register_state_dict_post_hook(self, hook, prepend=False):
        """Run ``hook(optimizer, state_dict)`` after every ``state_dict()``; a returned dict
        replaces the state dict given back."""
        return _add(self, "_state_dict_post_hooks", hook, prepend)

    def register_load_state_dict_pre_hook(self, hook, prepend=False):
        """Run ``hook(optimizer, state_dict)`` before every ``load_state_dict()`` (given a shallow
        copy of the caller's dict); a returned dict is loaded instead."""
        return _add(self, "_load_state_dict_pre_hooks", hook, prepend)

    def register_load_state_dict_post_hook(self, hook, prepend=False):
        """Run ``hook(optimizer)`` after every ``load_state_dict()``."""
        return _add(self, "_load_state_dict_post_hooks", hook, prepend)


def _add(optimizer, name, hook, prepend):
    if not callable(hook):
        raise TypeError(f"{name.strip('_')}: a hook must be callable, got {type(hook).__name__}")
    hooks = optimizer.__dict__.setdefault(name, [])
    hooks.insert(0 if prepend else len(hooks), hook)
    return RemovableHandle(hooks, hook)


@contextlib.contextmanager
def _outermost(optimizer, flag):
    """Whether this is the outermost call (a subclass's method calling its base's is not)."""
    outer = not optimizer.__dict__.get(flag)
    optimizer.__dict__[flag] = True
    try:
        yield outer
    finally:
        if outer:
            optimizer.__dict__[flag] = False


def hooked_state_dict(state_dict):
    """``state_dict`` running the state-dict pre- and post-hooks around it."""

    @functools.wraps(state_dict)
    def hooked(self):
        pre, post = self.__dict__.get("_state_dict_pre_hooks"), self.__dict__.get("_state_dict_post_hooks")
        if not (pre or post):
            return state_dict(self)
        with _outermost(self, "_in_hooked_state_dict") as outer:
            for hook in list(pre or ()) if outer else ():
                hook(self)
            out = state_dict(self)
            for hook in list(post or ()) if outer else ():
                result = hook(self, out)
                out = out if result is None else result
            return out

    return hooked


def hooked_load_state_dict(load_state_dict):
    """``load_state_dict`` running the load pre- and post-hooks around it."""

    @functools.wraps(load_state_dict)
    def hooked(self, state_dict):
        pre, post = self.__dict__.get("_load_state_dict_pre_hooks"), self.__dict__.get("_load_state_dict_post_hooks")
        if not (pre or post):
            return load_state_dict(self, state_dict)
        with _outermost(self, "_in_hooked_load_state_dict") as outer:
            if outer and pre:
                state_dict = dict(state_dict)
                for hook in list(pre):
                    result = hook(self, state_dict)
                    state_dict = state_dict if result is None else result
            load_state_dict(self, state_dict)
            for hook in list(post or ()) if outer else ():
                hook(self)

    return hooked
