"""Environment variables gt reads, in one place, with typed helpers.

Each helper checks its variable and raises ``EnvironmentVariableError`` (a ``ValueError``)
naming the variable, the value and what is expected; ``environment_problems()`` runs every
helper, so a command line can refuse a bad environment in one line before doing any work.
An unset or blank variable means "not set".

    >>> import os
    >>> os.environ["GT_DEVICES"] = "abc"
    >>> environment_problems()
    ["GT_DEVICES must be a positive integer (the number of virtual CPU devices), got 'abc'"]
    >>> del os.environ["GT_DEVICES"]
"""

import os

# GT_BACKEND: each accepted spelling and the engine it names (gt.backend's engines).
BACKENDS = {"numpy": "numpy", "torch": "torch"}
# The spellings of a yes/no variable (GT_AUTO_SHARD, GT_VERBOSE), compared lower-case.
TRUE = ("1", "true", "yes", "on")
FALSE = ("0", "false", "no", "off")


class EnvironmentVariableError(ValueError):
    """An environment variable gt reads holds a value gt cannot use."""


def _get(name):
    value = os.environ.get(name)
    return None if value is None or value.strip() == "" else value.strip()


def _flag(name):
    value = _get(name)
    if value is None:
        return None
    if value.lower() in TRUE:
        return True
    if value.lower() in FALSE:
        return False
    raise EnvironmentVariableError(f"{name} must be 1 or 0 (or true/false, yes/no, on/off), got {value!r}")


def backend_name():
    """GT_BACKEND: which array engine to use, ``numpy`` or ``torch`` (None when unset: the
    backend picks, see gt.backend)."""
    value = _get("GT_BACKEND")
    if value is None:
        return None
    if value.lower() not in BACKENDS:
        raise EnvironmentVariableError(f"unknown gt backend {value!r}: expected one of "
                                       f"{', '.join(map(repr, BACKENDS))} (GT_BACKEND, gt's array engine)")
    return BACKENDS[value.lower()]


def verbose():
    """GT_VERBOSE=1: print what gt detected and chose."""
    return bool(_flag("GT_VERBOSE"))


def auto_shard():
    """GT_AUTO_SHARD: True/False when set, None when unset (so that an explicit 0 can win)."""
    return _flag("GT_AUTO_SHARD")


def devices():
    """GT_DEVICES=N: how many virtual CPU devices to shard over (None when unset)."""
    value = _get("GT_DEVICES")
    if value is None:
        return None
    try:
        n = int(value)
    except ValueError:
        n = 0
    if n < 1:
        raise EnvironmentVariableError(f"GT_DEVICES must be a positive integer (the number of virtual CPU "
                                       f"devices), got {value!r}")
    return n


READERS = (backend_name, devices, auto_shard, verbose)


def environment_problems():
    """One message per GT_* variable that holds a value gt cannot use (an empty list if none)."""
    problems = []
    for read in READERS:
        try:
            read()
        except EnvironmentVariableError as exc:
            problems.append(str(exc))
    return problems


def check_environment():
    """Raise ``EnvironmentVariableError`` for the first GT_* variable gt cannot use. gt calls it
    when it starts (the first tensor), so a bad value is reported there, whatever reads it later."""
    problems = environment_problems()
    if problems:
        raise EnvironmentVariableError(problems[0])
