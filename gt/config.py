"""gt's configuration: the environment variables it reads, in one place, with typed helpers;
and the sharding hints of the public gt's signal API (GT_CONFIG, ``gt.load_config``).

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

import dataclasses
import json
import os
import typing

# GT_BACKEND: each accepted spelling and the engine it names (gt.backend's engines).
# "pytorch" is the public gt's name of its torch engine.
# "auto": the faster engine for this machine (gt.backend.choose_automatic says which and why).
BACKENDS = {"numpy": "numpy", "torch": "torch", "pytorch": "torch", "auto": "auto"}
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


def engine_name(name):
    """An engine name as the backend knows it: lower case, aliases resolved ("pytorch" -> "torch");
    a name that is no engine's comes back as it is (the backend's error names it)."""
    name = name.strip().lower()
    return BACKENDS.get(name, name)


def backend_name():
    """GT_BACKEND: which array engine to use, ``numpy`` or ``torch`` (``pytorch`` too, the public
    gt's spelling), or ``auto`` (the faster one here); None when unset: see gt.backend."""
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
    return None if value is None else _positive_int(
        value, "GT_DEVICES must be a positive integer (the number of virtual CPU devices)")


def num_threads(default="auto"):
    """GT_NUM_THREADS: how many threads the engine's math library uses, a positive integer, or
    ``auto`` (every free core, one on a busy machine; see gt.backend.threads); ``default`` when
    unset (``auto``: both engines adapt; None would keep the library's own count fixed)."""
    value = _get("GT_NUM_THREADS")
    if value is None:
        return default
    if value.lower() == "auto":
        return "auto"
    return _positive_int(value, "GT_NUM_THREADS must be a positive integer or 'auto' (the threads of gt's "
                                "math library)")


BLAS_CHOICES = ("numpy", "mkl")


def blas_name():
    """GT_BLAS: whose BLAS runs the numpy engine's products: ``numpy`` (the default: the library
    numpy links) or ``mkl`` (Intel's, from the ``mkl`` package; gt/backend/mkl.py)."""
    value = _get("GT_BLAS")
    if value is None:
        return "numpy"
    if value.lower() not in BLAS_CHOICES:
        raise EnvironmentVariableError(f"GT_BLAS must be one of {', '.join(BLAS_CHOICES)} (whose BLAS runs the "
                                       f"numpy engine's products), got {value!r}")
    return value.lower()


def _positive_int(value, message):
    try:
        n = int(value)
    except ValueError:
        n = 0
    if n < 1:
        raise EnvironmentVariableError(f"{message}, got {value!r}")
    return n


def config_path():
    """GT_CONFIG: a sharding-hint file (YAML or JSON) to load on first use; None when unset."""
    path = _get("GT_CONFIG")
    if path is not None and not os.path.isfile(path):
        raise EnvironmentVariableError(f"GT_CONFIG names {path!r}, which is not a file (a YAML or JSON file of "
                                       "sharding hints is expected)")
    return path


def config_file():
    """GT_CONFIG, read and checked (its signals are loaded on first use): an unreadable file or
    a bad entry is an ``EnvironmentVariableError`` naming the file, so a command line can refuse
    it before any work rather than at the first sharding hint, or never."""
    path = config_path()
    if path is not None:
        try:
            Config().load(path)
        except (OSError, ValueError, ImportError) as exc:
            message = " ".join(str(exc).split())      # YAML's errors span lines: one line
            raise EnvironmentVariableError(f"GT_CONFIG: {message}" if path in message
                                           else f"GT_CONFIG {path!r}: {message}") from None
    return path


READERS = (backend_name, devices, auto_shard, verbose, config_file, num_threads, blas_name)
# The variables gt reads (the readers above), for telling a misspelt one from another program's GT_ name.
NAMES = ("GT_BACKEND", "GT_DEVICES", "GT_AUTO_SHARD", "GT_VERBOSE", "GT_CONFIG", "GT_NUM_THREADS", "GT_BLAS")


def misspelt_names():
    """``[(name, the gt variable it is close to), ...]`` for each GT_* variable set that gt does not read
    but that is spelt nearly as one it does (``GT_DEVICE=4``, ``GT_AUTOSHARD=1``): without a word it
    would change nothing. Other GT_* names (another program's) are left alone."""
    import difflib       # only when a GT_* name gt does not read is set
    found = []
    for name in sorted(os.environ):
        if name.startswith("GT_") and name not in NAMES:
            close = difflib.get_close_matches(name.upper(), NAMES, n=1, cutoff=0.8)
            if close:
                found.append((name, close[0]))
    return found


def warn_misspelt_names():
    """A warning per ``misspelt_names()``, naming the variable gt reads instead."""
    import warnings
    for name, meant in misspelt_names():
        warnings.warn(f"the environment variable {name} is set, but gt reads no variable of that name and it "
                      f"changes nothing: did you mean {meant}?", UserWarning, stacklevel=3)


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
    warn_misspelt_names()


# ---- sharding hints by name: the public gt's signal configuration ----------------------------
# A YAML file maps signal names to hints (``name: {shard: {axis: 1}}``); code names its scopes
# with ``gt.signal.context(name)`` (see gt/signal.py). Here a hint chooses the placement of the
# tensors made in the scope on the mesh; one process drives every device, so the hints that
# steer the public gt's worker processes (``workers``, ``backward``, ``compile``) are read,
# kept, and have no effect.

@dataclasses.dataclass
class ShardConfig:
    """How tensors of a signal lie on the mesh: ``Shard(axis)``, or whole on every device when
    ``replicated``. ``workers`` (which of the public gt's worker processes) has no effect here."""
    axis: int = 0
    workers: typing.Optional[list] = None
    replicated: bool = False


@dataclasses.dataclass
class SignalConfig:
    """The hints of one signal name: ``shard``; ``backward_signal`` and ``compile`` are kept for
    the public gt's API and have no effect here."""
    shard: typing.Optional[ShardConfig] = None
    backward_signal: typing.Optional[str] = None
    compile: bool = False

    def ignored(self):
        """The hints this project cannot act on, by name."""
        names = []
        if self.shard is not None and self.shard.workers is not None:
            names.append("workers")
        if self.backward_signal is not None:
            names.append("backward")
        if self.compile:
            names.append("compile")
        return names


_SIGNAL_KEYS = ("shard", "backward", "compile")
_SHARD_KEYS = ("axis", "workers", "replicated")


def _parse_signal(name, entry, source):
    where = f"{source}: signal {name!r}"
    if entry is None:
        return SignalConfig()
    if not isinstance(entry, dict):
        raise ValueError(f"{where}: expected a mapping with keys {', '.join(_SIGNAL_KEYS)}, got {entry!r}")
    unknown = sorted(set(entry) - set(_SIGNAL_KEYS))
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {', '.join(map(repr, unknown))}; known: {', '.join(_SIGNAL_KEYS)}")
    shard = entry.get("shard")
    if shard is not None:
        if not isinstance(shard, dict) or set(shard) - set(_SHARD_KEYS):
            raise ValueError(f"{where}: shard must be a mapping with keys {', '.join(_SHARD_KEYS)}, got {shard!r}")
        axis = shard.get("axis", 0)
        if isinstance(axis, bool) or not isinstance(axis, int):
            raise ValueError(f"{where}: shard.axis must be an integer axis, got {axis!r}")
        workers = shard.get("workers")
        if workers is not None and not (isinstance(workers, list) and all(isinstance(w, int) for w in workers)):
            raise ValueError(f"{where}: shard.workers must be a list of integers or null, got {workers!r}")
        shard = ShardConfig(axis=axis, workers=workers, replicated=bool(shard.get("replicated", False)))
    backward = entry.get("backward")
    if backward is not None and not isinstance(backward, str):
        raise ValueError(f"{where}: backward must be a signal name, got {backward!r}")
    return SignalConfig(shard=shard, backward_signal=backward, compile=bool(entry.get("compile", False)))


class Config:
    """The signal hints in use: ``signals`` maps names to ``SignalConfig``."""

    def __init__(self):
        self.signals = {}
        self.path = None

    def load(self, path):
        """Add the signals of a YAML (or ``.json``) file; an error names the file and the entry."""
        path = os.fspath(path)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"gt config file {path!r} does not exist (from gt.load_config or GT_CONFIG)")
        with open(path, encoding="utf-8") as f:
            text = f.read()
        if path.lower().endswith(".json"):
            raw = json.loads(text) if text.strip() else None
        else:
            try:
                import yaml
            except ImportError:
                raise ImportError(f"reading the YAML config {path!r} needs PyYAML: pip install pyyaml "
                                  "(or write the config as .json)") from None
            try:
                raw = yaml.safe_load(text)
            except yaml.YAMLError as exc:
                raise ValueError(f"gt config file {path!r} is not valid YAML: {exc}") from None
        if raw is None:
            raw = {}
        if not isinstance(raw, dict):
            raise ValueError(f"gt config file {path!r}: expected a mapping of signal names, got {type(raw).__name__}")
        parsed = {str(name): _parse_signal(name, entry, path) for name, entry in raw.items()}
        self.signals.update(parsed)
        self.path = path

    def get_signal(self, name):
        return self.signals.get(name)

    def has_signal(self, name):
        return name in self.signals

    def register_signal(self, name, config):
        if not isinstance(config, SignalConfig):
            raise TypeError(f"register_signal({name!r}, ...): expected a gt.SignalConfig, got {type(config).__name__}")
        self.signals[name] = config

    def load_from_env(self, env_var="GT_CONFIG"):
        path = os.environ.get(env_var, "").strip()
        if path:
            self.load(path)

    def clear(self):
        self.signals.clear()
        self.path = None


_config = Config()
_env_loaded = False


def get_config():
    """The signal hints in use (GT_CONFIG is read on the first call)."""
    global _env_loaded
    if not _env_loaded:
        _env_loaded = True
        path = config_path()
        if path:
            _config.load(path)
    return _config


def load_config(path):
    """Load signal hints from a YAML or JSON file (``gt.load_config('sharding.yaml')``)."""
    get_config().load(path)


def get_signal_config(name):
    """The ``SignalConfig`` of ``name``, or None when no hint names it."""
    return get_config().get_signal(name)


def register_config(name, config):
    """Add one signal's hints from Python: ``gt.register_config('layer1', SignalConfig(shard=ShardConfig(axis=1)))``."""
    get_config().register_signal(name, config)
