"""What every lpm command line checks before any work, with the same helpers and messages:
``python train.py`` and ``lpm train`` (``lpm.train``), ``lpm evaluate`` and ``lpm predict``
(``lpm.cli``).

A bad option or environment variable is one line on stderr, ``PROG: error: ...``, naming the
value and what was expected, and exit status 2 (argparse's convention). Each check returns a
message, or None when the value is fine, so a command can list every problem:

    >>> [m for m in (at_least("--batch-size", 0, 1), within("--eval-split", 0.5, 0, 1)) if m]
    ['--batch-size must be >= 1, got 0']
"""

import argparse
import dataclasses
import importlib.util
import math
import os
import typing

import numpy as np

from gt import config


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line on stderr (no usage block), status 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")

    def refuse(self, message):
        """Exit 2 with ``message`` as one line, for problems ``--help`` does not explain (the
        environment, the machine's memory)."""
        self.exit(2, f"{self.prog}: error: {message}\n")


def at_least(flag, value, low):
    """``flag`` must be an int >= ``low`` (None: not given, fine)."""
    if value is not None and value < low:
        return f"{flag} must be >= {low}, got {value}"
    return None


def within(flag, value, low, high, closed_low=False):
    """``flag`` must lie in (low, high), or [low, high) with ``closed_low``; NaN never does."""
    if value is None:
        return None
    if not ((low <= value if closed_low else low < value) and value < high):
        return f"{flag} must be in {'[' if closed_low else '('}{low:g}, {high:g}), got {value}"
    return None


def positive(flag, value):
    """``flag`` must be a finite number > 0 (None: not given, fine)."""
    if value is not None and not (math.isfinite(value) and value > 0):
        return f"{flag} must be a positive number, got {value}"
    return None


def non_negative(flag, value):
    """``flag`` must be a finite number >= 0."""
    if value is not None and not (math.isfinite(value) and value >= 0):
        return f"{flag} must be >= 0, got {value}"
    return None


def type_problems(cfg, paths=()):
    """A message for each field of the dataclass config ``cfg`` whose value is not of its annotated
    type (``int``, ``float``, ``bool``, ``str``, ``int | None``...), the flag first: ``--batch-size
    (PPTTrainConfig.batch_size) must be an int, got '4'``. The command line's parser rules these
    out; a config built in Python may hold anything, and a string or a float where a count belongs
    would fail deep inside a run, or pass unnoticed. A field's metadata may name its ``flag`` and
    its ``choices`` (then a str must be one of them); ``paths`` names the fields that are files or
    folders (a str or an ``os.PathLike``). A numpy integer or floating scalar is taken where an
    int or a float is (as torch's modules take ``np.int64(8)``; ``plain_numbers`` makes it a
    Python number); bool is never a count. ``cfg`` is left as it is."""
    out = []
    for f in dataclasses.fields(cfg):
        kinds = _kinds(f)
        value = _python_number(getattr(cfg, f.name), kinds)
        choices = f.metadata.get("choices")
        if not any(_of_kind(value, kind, choices, f.name in paths) for kind in kinds):
            want = " or ".join(_kind_words(kind, choices, f.name in paths) for kind in kinds)
            flag = f.metadata.get("flag") or "--" + f.name.replace("_", "-")
            out.append(f"{flag} ({type(cfg).__name__}.{f.name}) must be {want}, got {value!r}")
    return out


def plain_numbers(cfg):
    """Make each numpy integer or floating scalar of the dataclass config ``cfg`` that its field
    takes (where ``type_problems`` takes it as an int or a float) a Python number, in place, so
    that the JSON files a run writes hold plain numbers; returns ``cfg``. Every check of a config
    (``check_config``, ``option_problems``, ``refuse_config``) calls it first."""
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        plain = _python_number(value, _kinds(f))
        if plain is not value:
            setattr(cfg, f.name, plain)
    return cfg


def refuse_config(cfg, cls, value_problems, paths=()):
    """Raise for the problems of the dataclass config ``cfg`` (the ``train()`` of lpm, lpm ppt and
    lpm caption), the message naming the class and how many more there are: ``TypeError`` when
    ``cfg`` is not a ``cls`` or a field has the wrong type (``type_problems(cfg, paths)``),
    ``ValueError`` for ``value_problems(cfg)``, asked only once every type is right. Numpy
    numbers are made Python ones first (``plain_numbers``)."""
    name = cls.__name__
    if not isinstance(cfg, cls):
        raise TypeError(f"train: cfg must be an {cls.__module__}.{name}, got {type(cfg).__name__}")
    bad = type_problems(plain_numbers(cfg), paths)
    kind = TypeError if bad else ValueError
    bad = bad or value_problems(cfg)
    if bad:
        raise kind(f"{name}: {bad[0]}" + (f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""))


def _kinds(field):
    """The types a dataclass field's annotation takes: ``(int, NoneType)`` for ``int | None``."""
    return typing.get_args(field.type) or (field.type,)


def plain(value):
    """A numpy scalar (``np.float32(0.8)`` from a sweep over ``np.linspace``, ``np.True_``) as the
    Python number or bool it holds, as lpm's options and decoding arguments take them; anything
    else as it is. (``plain_numbers`` does this for a config's fields, by the kinds they take.)"""
    return value.item() if isinstance(value, np.generic) else value


def _python_number(value, kinds):
    """``value`` as a Python int or float where it is a numpy scalar of a kind ``kinds`` take."""
    if isinstance(value, np.integer) and (int in kinds or float in kinds):
        return int(value)
    if isinstance(value, np.floating) and float in kinds:
        return float(value)         # np.float64 is a float already: plain here, for the JSON files
    return value


def _of_kind(value, kind, choices, path):
    if kind is type(None):
        return value is None
    if kind is int:                     # not bool, a subclass of int that no one means as a count
        return isinstance(value, int) and not isinstance(value, bool)
    if kind is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind is str:
        return isinstance(value, (str, os.PathLike) if path and not choices else str)
    return not isinstance(kind, type) or isinstance(value, kind)


def _kind_words(kind, choices, path):
    if kind is str and choices:
        return f"one of {', '.join(map(repr, choices))}"
    words = {type(None): "None", int: "an int", float: "a number", bool: "True or False",
             str: "a path (str)" if path else "a str"}
    return words.get(kind, getattr(kind, "__name__", str(kind)))


def missing_package(module, package, extra, why):
    """The install hint for an optional package that ``why`` (an option, a feature) needs and
    that cannot be imported, or None when it can: one wording for every command.

        >>> missing_package("math", "math", None, "--x") is None
        True
        >>> missing_package("no_such_module_here", "matplotlib", "plot", "--plot")
        "--plot needs matplotlib: pip install 'lpm[plot]' or pip install matplotlib"
    """
    if importlib.util.find_spec(module) is not None:
        return None
    return f"{why} needs {package}: pip install " + (f"'lpm[{extra}]' or pip install {package}" if extra else package)


# The largest seed every generator a command seeds accepts (numpy's legacy RandomState and
# scikit-learn's k-means take no more); gt.manual_seed would take up to 2**64 - 1.
SEED_MAX = 2**32 - 1


def seed_problem(flag, value):
    """``flag`` must be a seed in [0, ``SEED_MAX``] (None: not given, fine)."""
    if value is not None and not 0 <= value <= SEED_MAX:
        return f"{flag} must be in [0, {SEED_MAX}], got {value}"
    return None


def blank(flag, value):
    """``flag`` was given an empty path (``--plot ""``, often an unset shell variable), which
    would otherwise read as not given at all."""
    if value is not None and not str(value).strip():
        return f"{flag} must name a path, got {value!r}"
    return None


def folder_given(flag, path):
    """``flag`` names a file to write, but ``path`` is a folder (None: not given, fine)."""
    if path and os.path.isdir(path):
        return f"{flag} {path} is a folder: name the file to write in it"
    return None


def existing_output(flag, path, overwrite):
    """``flag`` names a file to write where a file is already (None: fine). A command cannot tell
    its own earlier output from the user's file of the same name, so neither is replaced unless
    ``overwrite`` (``--overwrite``) says so."""
    if path and not overwrite and os.path.lexists(path) and not os.path.isdir(path):
        return f"{flag} {path} exists already: name a new file, or pass --overwrite to replace it"
    return None


def problems(*messages):
    """The messages that are not None, in order."""
    return [m for m in messages if m]


def parse_only_with(parser, argv, names, switch, why):
    """``(parser.parse_args(argv), problem)``: ``problem`` is ``--name applies to --switch only
    (why)`` for an option of ``names`` given without the switch ``switch`` that alone reads them,
    which would otherwise be ignored silently (given at its default value too), else None; an
    option not given takes its default as usual."""
    defaults = {name: parser.get_default(name) for name in names}
    parser.set_defaults(**dict.fromkeys(names))         # None: not given
    args = parser.parse_args(argv)
    given = [name for name in names if getattr(args, name) is not None]
    for name in names:
        if getattr(args, name) is None:
            setattr(args, name, defaults[name])
    if given and not getattr(args, switch):
        return args, f"--{given[0].replace('_', '-')} applies to --{switch} only ({why})"
    return args, None


def check_environment(parser, one_process=False):
    """Refuse (exit 2, one line) a GT_* environment variable gt cannot use (``gt.config``),
    before anything is imported or loaded that would read it. ``one_process``: the command runs
    in one process only (only ``train.py``/``lpm train`` train across torchrun's processes), so
    torchrun's WORLD_SIZE above 1 is refused too: each process would do the whole work and write
    the same files at once."""
    bad = config.environment_problems()
    if bad:
        parser.refuse(bad[0] + " (in the environment)")
    world = (os.environ.get("WORLD_SIZE") or "").strip()
    if one_process and world not in ("", "1"):
        parser.refuse(f"WORLD_SIZE={world!r} is set (torchrun's, in the environment), but this command runs in one "
                      "process: each process would run it whole and write the same files; run it without torchrun "
                      "(python train.py / lpm train is the command that trains across processes)")


def checkpoint_parser(prog, description, best):
    """A parser with the options every command that reads a trained run takes: ``--checkpoint
    DIR`` and ``--best`` (``best``: what the run's best checkpoint is best by, for the help)."""
    p = OneLineParser(prog=prog, description=description)
    p.add_argument("--checkpoint", required=True, metavar="DIR",
                   help="a run's --checkpoint-dir (its latest checkpoint) or one checkpoint folder")
    p.add_argument("--best", action="store_true", help=best)
    return p
