"""Array engines behind one narrow interface.

Everything above this package does tensor math through ``B`` (the current
engine) or through Python operators on engine arrays, never by importing numpy
or torch itself. The engine is chosen once, before the first tensor exists:
``GT_BACKEND=numpy`` (default) or ``gt.set_backend("numpy")``.
"""

from gt import config


class _EngineProxy:
    """Forwards attribute access to the engine in use, so ``from gt.backend import B`` never goes stale."""

    __slots__ = ("_engine",)

    def __init__(self):
        object.__setattr__(self, "_engine", None)

    def __getattr__(self, name):
        engine = object.__getattribute__(self, "_engine")
        if engine is None:
            engine = _load(config.backend_name())
            object.__setattr__(self, "_engine", engine)
        return getattr(engine, name)


B = _EngineProxy()
_tensors_created = False


def _load(name):
    if name == "numpy":
        from gt.backend.numpy_engine import NumpyEngine

        return NumpyEngine()
    raise ValueError(f"unknown backend {name!r}: expected 'numpy' (the torch engine is not built yet)")


def set_backend(name):
    """Select the array engine by name. Must be called before the first tensor is created."""
    if _tensors_created and object.__getattribute__(B, "_engine") is not None \
            and object.__getattribute__(B, "_engine").name != name:
        raise RuntimeError(
            f"gt.set_backend({name!r}) called after tensors were created with the "
            f"{object.__getattribute__(B, '_engine').name!r} engine; call it before the first tensor"
        )
    object.__setattr__(B, "_engine", _load(name))


def get_backend():
    """The name of the engine in use, e.g. ``"numpy"``."""
    return B.name


def mark_tensor_created():
    global _tensors_created
    _tensors_created = True
