"""torch.utils.hooks at torch's path: ``RemovableHandle``, what registering a hook returns.

Every ``Module`` hook registration (forward, backward, state-dict and global module hooks)
returns this class, as torch's do. The handles of hooks on tensors (``Tensor.register_hook``,
``register_post_accumulate_grad_hook``), on graph nodes (``grad_fn.register_hook``) and on
optimizers are gt's own small classes (gt/autograd: a layer below this one), with the same
``remove()`` and ``with`` use but no ``id`` and no pickling.
"""

import collections
import weakref

__all__ = ["RemovableHandle", "unserializable_hook"]


class RemovableHandle:
    """What a ``register_*_hook`` returns: ``remove()`` takes the hook off again (a second call
    does nothing); as a context manager it removes the hook on leaving the ``with`` block.

    ``hooks_dict`` is the dict the hook was put in under the handle's ``id`` (a number unique
    in the process); ``extra_dict`` (a dict or several) holds the same key elsewhere, removed
    with it. Pickled, a handle keeps its dicts and ``id`` (``__getstate__``/``__setstate__``, as
    torch's); a handle whose dict has gone refers to an empty one and removes nothing."""

    next_id = 0

    def __init__(self, hooks_dict, *, extra_dict=None):
        self.hooks_dict_ref = weakref.ref(hooks_dict)
        self.id = RemovableHandle.next_id
        RemovableHandle.next_id += 1
        extras = [extra_dict] if isinstance(extra_dict, dict) else list(extra_dict or ())
        self.extra_dict_ref = tuple(weakref.ref(d) for d in extras)

    def remove(self):
        for ref in (self.hooks_dict_ref,) + self.extra_dict_ref:
            d = ref()
            if d is not None:
                d.pop(self.id, None)

    def __getstate__(self):
        return self.hooks_dict_ref(), self.id, tuple(ref() for ref in self.extra_dict_ref)

    def __setstate__(self, state):
        hooks, self.id = state[0], state[1]
        extras = state[2] if len(state) > 2 and state[2] is not None else ()
        # a handle copied without its dict (it was gone) refers to a dead one, as torch's
        self.hooks_dict_ref = weakref.ref(collections.OrderedDict() if hooks is None else hooks)
        self.extra_dict_ref = tuple(weakref.ref(d) for d in extras if d is not None)
        RemovableHandle.next_id = max(RemovableHandle.next_id, self.id + 1)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()


def unserializable_hook(f):
    """Mark ``f`` as a hook that is not expected to survive pickling (torch's decorator: it sets
    ``f.__torch_unserializable__``)."""
    f.__torch_unserializable__ = True
    return f
