"""What every LPM data set shares: the ``SequenceDataset`` interface, ``Data`` (what a run
trains on), ``DataError`` and the stratified train/held-out split.

Every data set holds ``N`` sequences of ``seq_len`` grayscale ``img_size x img_size``
frames with one class label each, and behaves like the array ``images`` of shape
``(N, seq_len, img_size, img_size)``: ``dataset[indices]`` returns float32 frames for the
given sequences, so the training loop indexes a lazy data set and an in-memory array the
same way. Frames are read, converted and resized only when indexed, so a data set larger
than memory can train.
"""

from dataclasses import dataclass, field

import numpy as np

DATASETS = ("blobs", "digits", "digits-majority")


class DataError(ValueError):
    """The data cannot be used as it is; the message names the file or value and what was expected."""


def has_extension(path, extension):
    """Whether the file name ``path`` ends with ``extension`` (".npz"), in any case: ``GOOD.NPZ`` is an .npz."""
    return str(path).lower().endswith(extension)


# scikit-learn's random_state (k-means, SVC) takes no more (lpm.options.SEED_MAX, the commands' bound, is the same)
SKLEARN_SEED_MAX = 2**32 - 1


def require_seed(fn, seed, high=None, none=False):
    """Refuse a ``seed`` of ``fn`` that is not an int >= 0 (a numpy int is one; a bool, a float, a
    string are not), or above ``high`` (scikit-learn's generators take at most 2**32 - 1), before
    ``fn`` does any work: numpy's own error ("expected non-negative integer") names neither, and
    ``int(seed)`` would take 2.5 as 2. ``none``: None is taken (a fresh draw, numpy's default_rng(None))."""
    if seed is None and none:
        return
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)) or seed < 0 or \
            (high is not None and seed > high):
        raise ValueError(f"{fn}: seed must be an int in [0, {high}], got {seed!r}" if high is not None else
                         f"{fn}: seed must be an int >= 0{' or None' if none else ''}, got {seed!r}")


def short_list(items, limit=5):
    """``items`` as text for a one-line message: the first ``limit`` and how many more.

        >>> short_list(range(100))
        '0, 1, 2, 3, 4 and 95 more'
    """
    items = [str(item) for item in items]
    more = len(items) - limit
    return ", ".join(items[:limit]) + (f" and {more} more" if more > 0 else "")


class SequenceDataset:
    """Base of the lazy data sets: ``len``, ``labels`` (N,) int64, ``class_names`` and indexing.

    ``dataset[i]`` is one sequence (seq_len, H, W); ``dataset[indices]`` (a list or int array)
    is (len(indices), seq_len, H, W); both float32 with ``offset`` subtracted (the training
    set's mean pixel: centring keeps plain gradient descent stable). Subclasses implement
    ``_load(i) -> (seq_len, H, W) float32`` for one sequence (read-only for the caller: it may
    be a view of a cache).
    """

    dtype = np.dtype(np.float32)
    ndim = 4

    def __init__(self, labels, class_names, seq_len, img_size):
        self.labels = np.asarray(labels, dtype=np.int64)
        self.class_names = tuple(class_names)
        self.seq_len, self.img_size = int(seq_len), int(img_size)
        self.offset = 0.0

    def __len__(self):
        return len(self.labels)

    @property
    def shape(self):
        """``(N, seq_len, img_size, img_size)``, as the equivalent array would have."""
        return (len(self), self.seq_len, self.img_size, self.img_size)

    def __getitem__(self, index):
        if isinstance(index, (int, np.integer)):
            return self[[index]][0]
        if isinstance(index, slice):
            index = np.arange(len(self))[index]
        index = np.asarray(index)
        if index.ndim != 1 or index.dtype.kind not in "iu":
            raise TypeError(f"{type(self).__name__}: index with an int, a slice or a 1-D int array, "
                            f"got {index.dtype} array of shape {index.shape}")
        n = len(self)
        out = np.empty((len(index), self.seq_len, self.img_size, self.img_size), np.float32)
        for row, i in enumerate(index):
            if not -n <= i < n:
                raise IndexError(f"{type(self).__name__}: sequence {i} out of range for {n} sequences")
            out[row] = self._load(int(i) % n)
        if self.offset:
            out -= np.float32(self.offset)
        return out

    def _load(self, i):
        raise NotImplementedError

    def subset(self, indices):
        """The sequences at ``indices`` as a data set (no data is copied)."""
        return Subset(self, indices)

    def mean_pixel(self, max_sequences=64):
        """The mean pixel of (at most) the first ``max_sequences`` sequences, before ``offset``:
        deterministic, so a resumed run centres exactly as the original did."""
        n = min(len(self), max_sequences)
        saved, self.offset = self.offset, 0.0
        try:
            return float(self[np.arange(n)].mean(dtype=np.float64))
        finally:
            self.offset = saved


class Subset(SequenceDataset):
    """Some sequences of another data set, by index; the labels follow."""

    def __init__(self, parent, indices):
        self.parent, self.indices = parent, np.asarray(indices, dtype=np.int64)
        super().__init__(parent.labels[self.indices], parent.class_names, parent.seq_len, parent.img_size)

    def _load(self, i):
        return self.parent._load(int(self.indices[i]))

    def describe(self, i):
        return self.parent.describe(int(self.indices[i])) if hasattr(self.parent, "describe") else f"sequence {i}"


def match_classes(labels, data_names, model_names, unknown="classes the model was not trained on", known="it knows"):
    """``labels`` renumbered from the data's classes (``data_names``) to the model's, by name;
    DataError naming the classes ``model_names`` lacks (``unknown``: how the message says so,
    ``known``: how it introduces the names there are).

        >>> match_classes([0, 1, 1], ["b", "c"], ["a", "b", "c"]).tolist()
        [1, 2, 2]
    """
    data_names, model_names = [str(n) for n in data_names], [str(n) for n in model_names]
    if data_names == model_names:
        return np.asarray(labels)
    position = {}
    for i, n in enumerate(model_names):     # by dict, not list.index: tens of thousands of classes
        position.setdefault(n, i)
    missing = [n for n in data_names if n not in position]
    if missing:
        raise DataError(f"{unknown}: {short_list(missing)} ({known}: {short_list(model_names, 20)})")
    mapping = np.array([position[n] for n in data_names])
    return mapping[np.asarray(labels)]


@dataclass
class Data:
    """What a run trains and evaluates on. ``*_images`` are arrays or ``SequenceDataset``s of
    shape (N, seq_len, H, W), ``*_labels`` int64 (N,). ``pixel_offset`` was subtracted from every
    pixel (``predict`` must do the same); ``notes`` are lines worth printing (skipped files, ...)."""

    train_images: object
    train_labels: np.ndarray
    eval_images: object
    eval_labels: np.ndarray
    class_names: tuple
    description: str                  # what the label means, for the log
    pixel_offset: float = 0.0
    notes: list = field(default_factory=list)

    @property
    def num_classes(self):
        return len(self.class_names)

    def problem(self, img_size):
        """Why a run of ``img_size`` pixel frames cannot train on this data, or None: images of shape
        (N, S, img_size, img_size) as many as their labels, integer labels (N,) in [0, num_classes),
        and at least one held-out sequence (the held-out figures are means over them)."""
        for part in ("train", "eval"):
            images, labels = getattr(self, f"{part}_images"), np.asarray(getattr(self, f"{part}_labels"))
            shape = tuple(getattr(images, "shape", ()))
            if len(shape) != 4 or shape[2:] != (img_size, img_size):
                return f"{part}_images must have shape (N, seq_len, {img_size}, {img_size}), got {shape}"
            if labels.ndim != 1 or labels.dtype.kind not in "iu" or len(labels) != shape[0]:
                return (f"{part}_labels must be {shape[0]} integer class indices (one per sequence), got "
                        f"{labels.dtype} of shape {labels.shape}")
            if len(labels) and not 0 <= labels.min() <= labels.max() < self.num_classes:
                return (f"{part}_labels must lie in [0, {self.num_classes}) ({self.num_classes} classes), got "
                        f"{labels.min()}..{labels.max()}")
        if not len(self.eval_labels):
            return "no held-out sequences (eval_labels is empty)"
        return None


def stratified_split(labels, eval_split, seed=0):
    """``(train_indices, eval_indices)``: ``eval_split`` of each class held out (at least one
    sequence of every class with two or more, so each class is seen on both sides when it
    can be), chosen with a seeded generator. Both index arrays are sorted.

        >>> tr, ev = stratified_split(np.array([0, 0, 0, 0, 1, 1, 1, 1]), 0.25)
        >>> len(tr), len(ev), sorted(set(np.array([0, 0, 0, 0, 1, 1, 1, 1])[ev].tolist()))
        (6, 2, [0, 1])
    """
    require_seed("stratified_split", seed, none=True)
    labels = np.asarray(labels)
    if isinstance(eval_split, (bool, str)) or not isinstance(eval_split, (int, float, np.number)):
        raise TypeError(f"stratified_split: eval_split must be a number in (0, 1), got {eval_split!r}")
    if not 0.0 < eval_split < 1.0:
        raise ValueError(f"stratified_split: eval_split must be in (0, 1), got {eval_split}")
    if labels.ndim != 1:        # a column of labels would give index arrays of its shape
        raise ValueError(f"stratified_split: labels must be 1-D (one per sequence), got shape {labels.shape}")
    rng = np.random.default_rng(seed)
    held = []
    # each class's members in increasing order, found by one stable sort (not a pass per class)
    order = np.argsort(labels, kind="stable")
    _, starts = np.unique(labels[order], return_index=True)
    for members in np.split(order, starts[1:]) if len(labels) else ():
        k = int(round(len(members) * eval_split))
        k = min(max(k, 1 if len(members) >= 2 else 0), len(members) - 1)
        held.append(rng.permutation(members)[:k])
    held = np.sort(np.concatenate(held)) if held else np.zeros(0, np.int64)
    if len(held) == 0:
        raise DataError(f"cannot hold out {eval_split:.0%} of {len(labels)} sequences: every class has only one; "
                        f"add sequences or use a larger --eval-split")
    train = np.setdiff1d(np.arange(len(labels)), held)
    return train, held
