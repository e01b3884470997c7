"""Where a training run writes (``--checkpoint-dir``, ``--plot``), checked before any work starts;
and what it shows on the terminal (``progress_bar``).

A folder that cannot be written (a path under a regular file, no permission, a read-only file
system) would otherwise surface as an ``OSError`` after the first epoch, or after the whole run.
Each folder is probed by creating, and at once removing, a small file in it (or in the nearest
folder that exists, where it would be created): permission bits, ACLs, read-only mounts and
root-squashed network folders all answer that test truthfully, where ``os.access`` does not.

    >>> writable_problem("/etc/passwd/runs")
    '/etc/passwd is a file, not a folder'
"""

import fnmatch
import os
import sys
import tempfile

OUTPUTS = (("checkpoint_dir", "--checkpoint-dir"), ("plot", "--plot"))
# Every picture lpm writes carries this PNG text chunk (lpm.plots.save_png), so that a run replaces
# its own pictures in a --plot folder, and never the user's file of the same name.
PNG_SOFTWARE = "lpm"
PLOTS = ("curves.png", "attention.png")       # what lpm train writes in --plot


class OutputError(ValueError):
    """An output folder that cannot be written."""


def writable_problem(path):
    """Why the folder ``path`` (existing or to be created) cannot be written, or None."""
    probe = os.path.abspath(path)
    while not os.path.exists(probe):            # the nearest existing folder, where it would be made
        if os.path.islink(probe):
            return f"{probe} is a broken link"
        parent = os.path.dirname(probe)
        if parent == probe:
            break
        probe = parent
    if not os.path.isdir(probe):
        return f"{probe} is a file, not a folder"
    try:
        fd, tmp = tempfile.mkstemp(dir=probe, prefix=".lpm-write-check-")
    except OSError as exc:
        return f"cannot write in {probe} ({exc.strerror or exc})"
    os.close(fd)
    os.remove(tmp)
    return None


def output_problems(cfg, pictures=PLOTS, more=()):
    """One message per output folder of ``cfg`` (a ``TrainConfig``, or a model's config with the
    same ``checkpoint_dir`` and ``plot``) that cannot be written, then of the ``(flag, folder)``
    pairs ``more``; then the refusal where ``--plot`` holds a file named as one of ``pictures``
    (``foreign_pictures``' patterns: what the command draws there) that lpm did not write."""
    problems = []
    outputs = [(flag, getattr(cfg, field, None)) for field, flag in OUTPUTS] + list(more)
    for flag, path in outputs:
        problem = writable_problem(path) if path else None
        if problem:
            problems.append(f"{flag} {path}: {problem}")
    if getattr(cfg, "plot", None):
        problems.append(foreign_pictures("--plot", cfg.plot, pictures))
    return [p for p in problems if p]


def foreign_pictures(flag, folder, patterns):
    """The refusal when ``folder`` holds a file named as a picture a run writes there (``patterns``,
    shell-style: ``samples_epoch*.png``) that lpm did not write (no ``PNG_SOFTWARE`` chunk); None if
    none does."""
    try:
        names = sorted(n for n in os.listdir(folder) if any(fnmatch.fnmatchcase(n, p) for p in patterns))
    except OSError:                                # not there yet, or not a folder: writable_problem says
        return None
    for name in names:
        if not written_by_lpm(os.path.join(folder, name)):
            return (f"{flag} {folder}: {name} there was not written by lpm and would be replaced: move it, or "
                    "name another folder")
    return None


def written_by_lpm(path):
    """Whether ``path`` is a PNG that lpm wrote: a ``Software: lpm`` text chunk before the pixels
    (within the first 4 KiB, where matplotlib writes it)."""
    try:
        with open(path, "rb") as f:
            head = f.read(4096)
    except OSError:
        return False
    at, wanted = 8, b"Software\x00" + PNG_SOFTWARE.encode()
    while head.startswith(b"\x89PNG\r\n\x1a\n") and at + 8 <= len(head):
        size, kind = int.from_bytes(head[at:at + 4], "big"), head[at + 4:at + 8]
        if kind == b"IDAT":
            break
        if kind == b"tEXt" and head[at + 8:at + 8 + size] == wanted:
            return True
        at += 12 + size                            # length, type, data, CRC
    return False


def write_atomically(path, write, suffix=""):
    """Write ``path`` whole or not at all: ``write(tmp)`` fills a temporary file beside it
    (``<path>.tmp-<pid><suffix>``; ``suffix`` for writers that choose the format by the name),
    which is then renamed into place. On any failure (a full disk, Ctrl-C) that temporary file,
    never the user's, is removed and the error raised. A missing folder on the way is made, as the
    commands' up-front check (``writable_problem``) allows for."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f"{path}.tmp-{os.getpid()}{suffix}"
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def silence_stdout():
    """Point stdout at /dev/null once its reader has gone (``python train.py | head``), so the
    interpreter's flush at exit raises no second ``BrokenPipeError`` (the recipe of Python's
    documentation for SIGPIPE). The caller then exits with status 1, quietly, as ``head``
    asked for no more."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def progress_bar(total, desc, enabled, unit="batch"):
    """A tqdm bar when asked for, stdout is a terminal and tqdm is installed; else None."""
    if not (enabled and sys.stdout.isatty()):
        return None
    try:
        from tqdm import tqdm     # optional (the progress extra): absent, there is no bar
    except ImportError:
        return None
    return tqdm(total=total, desc=desc, leave=False, unit=unit, dynamic_ncols=True)
