"""LPM's data: labelled image sequences, and ``load_data``, the one entry point training uses.

``load_data(config)`` picks the data a run asked for (``config.dataset`` / ``config.data``):

- ``blobs`` (the default): synthetic moving blobs, in memory (``lpm.data.blobs``);
- ``digits`` / ``digits-majority``: moving handwritten digits (``lpm.data.digits``);
- ``--data PATH``: the user's own files (``lpm.data.files``, one sequence: ``lpm.data.frames``).

``lpm.data.mnist.load(split)`` gives 5,000 real MNIST digits (offline) and their fixed held-out split.

What they share lives in ``lpm.data.base``. The blob task's names are also here, where the
README's examples import them (``from lpm.data import make_moving_blobs``).

    >>> data = load_data(dict(dataset="blobs", samples=8, seq_len=3, img_size=16, eval_split=0.25))
    >>> data.train_images.shape, data.eval_images.shape, data.class_names
    ((6, 3, 16, 16), (2, 3, 16, 16), ('right', 'left', 'down', 'up'))
"""

import numpy as np

from lpm.data import digits, files, mnist  # noqa: F401  (lpm.data.mnist.load)
from lpm.data.base import DATASETS, Data, DataError, has_extension, match_classes, stratified_split
from lpm.data.blobs import DIRECTIONS, NUM_CLASSES, make_moving_blobs, train_eval_split

__all__ = ["load_data", "Data", "DataError", "DATASETS", "DIRECTIONS", "NUM_CLASSES",
           "make_moving_blobs", "match_classes", "train_eval_split"]


def _get(config, name, default=None):
    return config.get(name, default) if isinstance(config, dict) else getattr(config, name, default)


def load_data(config, progress=None):
    """The ``Data`` a run asks for. ``config`` is a ``TrainConfig`` or a dict with its field names
    (``dataset``, ``data``, ``eval_data``, ``samples``, ``seq_len``, ``img_size``, ``noise``,
    ``eval_split``, ``seed``, ``skip_bad``). ``progress(total, desc)`` may return a progress bar for
    the pass that checks the user's files. Raises ``DataError`` for bad data, naming the file.

    With ``data`` and ``eval_data`` (two paths): training on every sequence of the first, held out
    every sequence of the second, whose classes are matched to the first's by name."""
    path, name = _get(config, "data"), _get(config, "dataset", "blobs")
    seq_len, img_size, seed = _get(config, "seq_len", 8), _get(config, "img_size", 200), _get(config, "seed", 0)
    eval_split = _get(config, "eval_split", 0.2)
    if path:
        skip_bad, eval_path = _get(config, "skip_bad", False), _get(config, "eval_data")
        dataset = files.open_dataset(path, seq_len=seq_len, img_size=img_size, skip_bad=skip_bad, progress=progress)
        description = (f"class = folder name under {path}" if not has_extension(path, ".npz")
                       else f"labels from {path}")
        if eval_path:
            return _held_out_apart(dataset, eval_path, description, skip_bad, progress)
        train_idx, eval_idx = stratified_split(dataset.labels, eval_split, seed)
        return _centred(dataset.subset(train_idx), dataset.subset(eval_idx), dataset.class_names,
                        description, dataset.notes)
    if name in ("digits", "digits-majority"):
        train, held_out = digits.moving_digits(_get(config, "samples", 600), seq_len=seq_len, img_size=img_size,
                                               task="majority" if name == "digits-majority" else "digit",
                                               eval_split=eval_split, seed=seed,
                                               noise=_get(config, "noise", digits.DEFAULT_NOISE))
        return _centred(train, held_out, train.class_names, digits.describe_task(train.task, seq_len))
    if name != "blobs":
        raise DataError(f"unknown dataset {name!r}: expected one of {DATASETS} (or --data PATH)")
    images, labels = make_moving_blobs(_get(config, "samples", 600), seq_len=seq_len, img_size=img_size,
                                       seed=seed, noise=_get(config, "noise", 0.3))
    # The samples come in random order: hold out the last ones, as views (the default data
    # set is 768 MB; a shuffled copy would double that).
    (x_train, y_train), (x_eval, y_eval) = train_eval_split(images, labels, eval_split, shuffle=False)
    offset = float(np.float32(x_train.mean(dtype=np.float64)))
    images -= np.float32(offset)                   # in place, through both views
    return Data(x_train, y_train, x_eval, y_eval, DIRECTIONS, "direction of motion", offset)


def _held_out_apart(dataset, eval_path, description, skip_bad, progress):
    """All of ``dataset`` to train on, all of the files at ``eval_path`` held out (``--eval-data``)."""
    held = files.open_dataset(eval_path, seq_len=dataset.seq_len, img_size=dataset.img_size, skip_bad=skip_bad,
                              progress=progress, flag="--eval-data", min_classes=1)   # some classes may do
    labels = match_classes(held.labels, held.class_names, dataset.class_names,
                           f"--eval-data {eval_path}: classes that --data does not have", "it has")
    held_out = held.subset(np.arange(len(held)))
    held_out.labels, held_out.class_names = labels, dataset.class_names
    train = dataset.subset(np.arange(len(dataset)))
    notes = list(dataset.notes) + [f"held out: {note}" for note in held.notes]
    return _centred(train, held_out, dataset.class_names, f"{description}; held out: every sequence in {eval_path}",
                    notes)


def _centred(train, held_out, class_names, description, notes=()):
    offset = train.mean_pixel()
    train.offset = held_out.offset = offset
    return Data(train, train.labels, held_out, held_out.labels, tuple(class_names), description, offset,
                list(notes))
