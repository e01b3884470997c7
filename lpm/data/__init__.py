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
from lpm.data.base import DATASETS, MAX_CLASSES, Data, DataError, has_extension, stratified_split
from lpm.data.blobs import DIRECTIONS, NUM_CLASSES, make_moving_blobs, train_eval_split

__all__ = ["load_data", "Data", "DataError", "DATASETS", "MAX_CLASSES", "DIRECTIONS", "NUM_CLASSES",
           "make_moving_blobs", "train_eval_split"]


def _get(config, name, default=None):
    return config.get(name, default) if isinstance(config, dict) else getattr(config, name, default)


def load_data(config, progress=None):
    """The ``Data`` a run asks for. ``config`` is a ``TrainConfig`` or a dict with its field names
    (``dataset``, ``data``, ``samples``, ``seq_len``, ``img_size``, ``noise``, ``eval_split``,
    ``seed``, ``skip_bad``). ``progress(total, desc)`` may return a progress bar for the pass that
    checks the user's files. Raises ``DataError`` for bad data, naming the file."""
    path, name = _get(config, "data"), _get(config, "dataset", "blobs")
    seq_len, img_size, seed = _get(config, "seq_len", 8), _get(config, "img_size", 200), _get(config, "seed", 0)
    eval_split = _get(config, "eval_split", 0.2)
    if path:
        dataset = files.open_dataset(path, seq_len=seq_len, img_size=img_size,
                                     skip_bad=_get(config, "skip_bad", False), progress=progress)
        train_idx, eval_idx = stratified_split(dataset.labels, eval_split, seed)
        return _centred(dataset.subset(train_idx), dataset.subset(eval_idx), dataset.class_names,
                        f"class = folder name under {path}" if not has_extension(path, ".npz")
                        else f"labels from {path}", dataset.notes)
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


def _centred(train, held_out, class_names, description, notes=()):
    offset = train.mean_pixel()
    train.offset = held_out.offset = offset
    return Data(train, train.labels, held_out, held_out.labels, tuple(class_names), description, offset,
                list(notes))
