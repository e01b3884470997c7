"""Environment variables gt reads, in one place, with typed helpers."""

import os


def _flag(name, default=False):
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    return value.strip().lower() not in ("0", "false", "no", "off")


def backend_name():
    """GT_BACKEND: which array engine to use (default ``numpy``)."""
    return os.environ.get("GT_BACKEND", "numpy").strip().lower() or "numpy"


def verbose():
    """GT_VERBOSE=1: print what gt detected and chose."""
    return _flag("GT_VERBOSE")
