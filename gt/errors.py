"""gt's exception types that are two of Python's at once, so that code written against gt (which
raises ValueError for bad shapes and TypeError for bad dtypes, README "Errors") and code written
against torch (whose checks raise RuntimeError) both catch them. Imports nothing of gt."""


class ShapeError(ValueError, RuntimeError):
    """A shape (or dim) a function refuses: gt's ValueError and torch's RuntimeError."""


class DtypeError(TypeError, RuntimeError):
    """A dtype a function refuses where torch's check raises RuntimeError: gt's TypeError too."""


class IndexShapeError(ShapeError, IndexError):
    """An index of a shape a function refuses where torch raises IndexError (``index_select``'s index
    of 2 or more dims): gt's ShapeError (a ValueError and torch's RuntimeError) too."""


class ArgumentError(ValueError, RuntimeError):
    """An argument a function refuses where torch's check raises RuntimeError (``clamp()`` with
    neither bound): gt's ValueError too."""
