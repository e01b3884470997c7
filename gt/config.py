"""Environment variables gt reads, in one place, with typed helpers."""

import os


def _flag(name, default=False):
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    return value.strip().lower() not in ("0", "false", "no", "off")


def backend_name():
    """GT_BACKEND: which array engine to use, ``numpy`` or ``torch`` (None when unset: the
    backend picks, see gt.backend)."""
    return os.environ.get("GT_BACKEND", "").strip().lower() or None


def verbose():
    """GT_VERBOSE=1: print what gt detected and chose."""
    return _flag("GT_VERBOSE")


def auto_shard():
    """GT_AUTO_SHARD: True/False when set, None when unset (so that an explicit 0 can win)."""
    value = os.environ.get("GT_AUTO_SHARD")
    if value is None or value.strip() == "":
        return None
    return _flag("GT_AUTO_SHARD")


def devices():
    """GT_DEVICES=N: how many virtual CPU devices to shard over (None when unset)."""
    value = os.environ.get("GT_DEVICES")
    if value is None or value.strip() == "":
        return None
    try:
        n = int(value)
    except ValueError:
        n = 0
    if n < 1:
        raise ValueError(f"GT_DEVICES must be a positive integer (the number of virtual devices), got {value!r}")
    return n
