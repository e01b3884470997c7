"""torch's TorchScript objects in checkpoints: the packed weights of its dynamically quantized
recurrent layers (``CellParamsBase``, ``LinearPackedParamsBase``), which torch pickles as
``torch.ScriptObject.__new__`` followed by their state, ``((fields...), qualified class name)``.

gt reads one as a ``ScriptObjectState`` (only with ``weights_only=False``, as torch), which answers
``__getstate__()`` as torch's object does; gt's layers read either through it
(gt/ao/nn/quantized/dynamic_rnn_state.py). gt writes a ``ScriptObjectState`` and any object whose class
names ``torch_script_class`` (gt's stand-ins) the same way, so torch rebuilds its own objects.
"""

import pickle


class ScriptObjectState:
    """A TorchScript object read from a checkpoint, as its state."""

    def __setstate__(self, state):
        self._state = state

    def __getstate__(self):
        return self._state

    def __repr__(self):
        return f"<ScriptObjectState of {self._state[1]!r}>"


def is_script_object(obj):
    return isinstance(obj, ScriptObjectState) or isinstance(getattr(type(obj), "torch_script_class", None), str)


def write(pickler, obj, script_object):
    """``obj`` as torch pickles a ScriptObject (``script_object``: the pickler's global for
    ``torch.ScriptObject``): its class made bare, its memo entry, then its state built in."""
    pickler.save(script_object)
    pickler.write(pickle.EMPTY_TUPLE + pickle.NEWOBJ)
    pickler.memoize(obj)
    pickler.save(obj.__getstate__())
    pickler.write(pickle.BUILD)
