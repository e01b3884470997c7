"""Which checkpoint a run resumes from when not its latest: ``--resume-from PATH`` (a checkpoint
folder or a pointer file such as ``DIR/best.json``), and the intact checkpoints a damaged latest
leaves (``previous``, ``best``, ``final``, the latest), each named with the ``--resume-from`` that uses it.

    >>> named_checkpoint("runs/a/best.json")          # the folder best.json names
    'runs/a/epoch0002-step00000010'
    >>> run_folder_of("runs/a/epoch0002-step00000010")
    'runs/a'
"""

import os

from lpm.checkpoint import META_FILE, POINTERS, CheckpointError, find_checkpoint, read_checkpoint

# The pointers a damaged checkpoint may fall back on (the latest: when another one is damaged).
FALLBACKS = ("latest", "previous", "best", "final")


class DamagedLatest(CheckpointError):
    """The checkpoint a run would resume from is damaged; ``alternatives``: ``(label, folder)`` of
    each intact checkpoint of the run folder, newest first, so a command line can print the
    ``--resume-from`` line of each."""

    def __init__(self, message, alternatives=()):
        super().__init__(message)
        self.alternatives = list(alternatives)


def named_checkpoint(path):
    """The checkpoint folder ``path`` names, for ``--resume-from PATH``: a checkpoint folder itself
    (``DIR/epoch0003-step00000012``) or a pointer file (``DIR/best.json``, ``DIR/previous.json``).
    ``CheckpointError`` says what ``path`` is instead and what was expected (the caller names ``path``)."""
    expected = (f"expected a checkpoint folder holding {META_FILE} (e.g. DIR/epoch0003-step00000012) or a "
                "pointer file (DIR/best.json, DIR/previous.json, DIR/latest.json)")
    if os.path.isdir(path):
        if os.path.isfile(os.path.join(path, META_FILE)):
            return path
        if any(os.path.exists(os.path.join(path, w + ".json")) for w in POINTERS):
            raise CheckpointError(f"a run folder, not one checkpoint: name one of its checkpoints (e.g. "
                                  f"{os.path.join(path, 'best.json')}), or continue its latest with "
                                  f"--checkpoint-dir {path} --resume")
        raise CheckpointError(f"not a checkpoint ({META_FILE} is missing): {expected}")
    if not os.path.exists(path):
        raise CheckpointError(f"no such file or folder: {expected}")
    root, base = os.path.split(path)
    which = base[:-len(".json")] if base.endswith(".json") else None
    try:
        folder = find_checkpoint(root or ".", which) if which in POINTERS else None
    except CheckpointError:
        folder = None
    if folder is None:
        raise CheckpointError(f"not a checkpoint pointer: {expected}")
    return folder


def run_folder_of(path):
    """The run folder (``--checkpoint-dir``) holding the checkpoint ``path`` names (a checkpoint
    folder or a pointer file in the run folder); path arithmetic only.

        >>> run_folder_of("runs/a/epoch0002-step00000010/"), run_folder_of("runs/a/best.json")
        ('runs/a', 'runs/a')
    """
    return os.path.dirname(os.path.normpath(path)) or "."


def intact_alternatives(checkpoint_dir, damaged=None):
    """``(label, folder, epoch, step)`` of each intact checkpoint ``checkpoint_dir``'s pointers
    name besides ``damaged`` (and besides its latest, when ``damaged`` is None), newest first;
    ``label`` says which pointers name it (``"previous and best"``). Each is read and verified in
    full: only for an error message."""
    if damaged is None:
        try:
            damaged = find_checkpoint(checkpoint_dir)
        except CheckpointError:
            damaged = None
    skip, found = os.path.realpath(damaged) if damaged else None, {}
    for label in FALLBACKS:
        try:
            folder = find_checkpoint(checkpoint_dir, label)
        except CheckpointError:
            continue
        key = os.path.realpath(folder) if folder is not None else None
        if key is None or key == skip:
            continue
        if key in found:
            if found[key] is not None:
                found[key][0] += f" and {label}"
            continue
        try:
            progress = read_checkpoint(folder).meta.get("progress") or {}
        except CheckpointError:
            found[key] = None           # damaged too: no line names it
            continue
        found[key] = [label, folder, progress.get("epoch"), progress.get("step")]
    alternatives = [tuple(alt) for alt in found.values() if alt is not None]
    return sorted(alternatives, key=lambda alt: -(alt[3] if isinstance(alt[3], int) else -1))


def alternatives_text(checkpoint_dir, damaged=None):
    """``(lines, alternatives)``: a line per intact alternative with the ``--resume-from`` that
    uses it, or one line saying that none is left; ``alternatives``: ``(label, folder)``."""
    found = intact_alternatives(checkpoint_dir, damaged)
    if not found:
        return (f"no other intact checkpoint in {checkpoint_dir}: start a new run (without --resume, or in "
                f"another --checkpoint-dir)"), []
    lines = [f"the {label} checkpoint {folder} (epoch {epoch}, step {step}) is intact: resume from it with "
             f"--resume-from {folder}" for label, folder, epoch, step in found]
    return "\n".join(lines), [(label, folder) for label, folder, _, _ in found]


def damaged_error(exc, checkpoint_dir, damaged=None, prefix=""):
    """The ``DamagedLatest`` for ``exc`` (the damage found): its message, then the alternatives."""
    text, alternatives = alternatives_text(checkpoint_dir, damaged)
    return DamagedLatest(f"{prefix}{exc}\n{text}", alternatives)
