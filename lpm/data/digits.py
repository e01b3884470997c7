"""Moving handwritten digits: real handwriting, fully offline.

The source images are scikit-learn's bundled handwritten digits (``load_digits``: 1,797
grayscale 8x8 scans of digits written by 43 people, shipped inside the scikit-learn wheel,
so nothing is downloaded). Each sample is a sequence of ``seq_len`` frames of
``img_size x img_size`` pixels: light uniform noise, and on it one upscaled digit moving in a
straight line across the frame at constant speed, bouncing off the edges.

Two tasks on the same kind of frames:

- ``digit``: every frame shows the same handwritten digit; the class is the digit.
- ``majority``: the moving digit changes between two different handwritten digits of
  different classes from frame to frame; the class is the digit shown in most frames. One
  frame shows the answer only in 5 of 8 frames or 6 of 8 (for ``seq_len`` 8), so a model
  that looks at a single frame cannot do better than about 69%: the label needs several frames.

Train and held-out sequences are drawn from disjoint sets of source images (a stratified
split of the 1,797 scans), so no handwriting sample appears on both sides.

Frames are rendered when indexed (``dataset[indices]``), from a few numbers per sequence
kept in memory: any number of sequences costs almost no memory.

    >>> train, held_out = moving_digits(10, seq_len=4, img_size=32, seed=0)
    >>> train[[0, 1]].shape, held_out.labels.shape
    ((2, 4, 32, 32), (2,))
    >>> set(train.sources.ravel().tolist()) & set(held_out.sources.ravel().tolist())
    set()
"""

import numpy as np

from lpm.data.base import DataError, SequenceDataset, require_seed, stratified_split

TASKS = ("digit", "majority")
CLASS_NAMES = tuple(str(d) for d in range(10))
DEFAULT_NOISE = 0.3       # the pixel noise is uniform in [0, noise): light next to a digit's strokes
DIGIT_FRACTION = 0.8      # the digit's side as a fraction of the frame's (160 pixels in a 200 frame)
NOISE_BANK = 64           # noise frames drawn once and reused: drawing fresh noise would cost more
                          # than the training step on a 200x200 frame


def load_source_digits():
    """scikit-learn's handwritten digits: ``(images (1797, 8, 8) float32 in [0, 1], labels (1797,) int64)``."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise DataError("--dataset digits needs scikit-learn (it ships the digit scans): "
                        "pip install 'lpm[data]' or pip install scikit-learn") from None
    bunch = load_digits()
    return (bunch.images / 16.0).astype(np.float32), bunch.target.astype(np.int64)


def describe_task(task, seq_len):
    if task == "digit":
        return "the handwritten digit"
    lo, hi = _majority_counts(seq_len)
    return (f"the digit shown in most frames: {lo}-{hi} of {seq_len}, so one frame alone allows at most "
            f"{np.mean([k / seq_len for k in range(lo, hi + 1)]):.0%}")


def moving_digits(num_samples, seq_len=8, img_size=200, task="digit", eval_split=0.2, seed=0,
                  noise=DEFAULT_NOISE, sources=None):
    """``(train, held_out)`` ``MovingDigits`` data sets with ``num_samples`` sequences in all.

    ``eval_split`` of the sequences are held out; they use only the held-out ``eval_split`` of
    the source scans (a stratified split by digit). ``sources`` (images, labels) replaces the
    scikit-learn scans (tests). Deterministic for a given seed.
    """
    require_seed("moving_digits", seed)
    if task not in TASKS:
        raise DataError(f"moving digits: task must be one of {TASKS}, got {task!r}")
    for name, value, least in (("num_samples", num_samples, 2), ("seq_len", seq_len, 1)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < least:
            raise DataError(f"moving digits: {name} must be an int >= {least}"
                            f"{' (one sequence on each side of the split)' if least == 2 else ''}, got {value!r}")
    if task == "majority" and seq_len < 3:
        raise DataError(f"the majority task needs --seq-len >= 3 (a majority and a minority digit), got {seq_len}")
    if img_size < 8:
        raise DataError(f"moving digits need --img-size >= 8, got {img_size}")
    if not 0.0 <= noise < 1.0:
        raise DataError(f"moving digits: noise must be in [0, 1), got {noise}")
    images, labels = load_source_digits() if sources is None else sources
    train_src, eval_src = stratified_split(labels, eval_split, seed)
    n_eval = min(max(int(round(num_samples * eval_split)), 1), num_samples - 1)
    rng = np.random.default_rng([seed, 7])               # the data's own stream, apart from gt's
    bank = _noise_bank(rng, img_size, noise)
    digits = _upscale(images, max(4, int(round(img_size * DIGIT_FRACTION))))
    make = dict(seq_len=seq_len, img_size=img_size, task=task, noise=noise, bank=bank, digits=digits,
                digit_labels=labels)
    train = MovingDigits(_plan(rng, num_samples - n_eval, seq_len, img_size, digits.shape[1], train_src, labels,
                               task), **make)
    held_out = MovingDigits(_plan(rng, n_eval, seq_len, img_size, digits.shape[1], eval_src, labels, task), **make)
    return train, held_out


def memory_bytes(img_size, scans=1797):
    """Bytes the moving digits keep, whatever the number of sequences: the ``scans`` upscaled
    digits and the noise bank (float32); the frames are drawn when a batch needs them.

        >>> round(memory_bytes(200) / 2**20)       # MiB at 200x200
        185
    """
    d = max(4, int(round(img_size * DIGIT_FRACTION)))
    return (scans * d * d + NOISE_BANK * img_size * img_size) * 4


class MovingDigits(SequenceDataset):
    """Moving-digit sequences rendered on access. Attributes (N sequences, S frames):
    ``sources`` (N, S) index of the scan shown in each frame, ``positions`` (N, S, 2) top-left
    corner (row, column) of the digit, ``noise_frames`` (N, S) index into the noise bank."""

    def __init__(self, plan, seq_len, img_size, task, noise, bank, digits, digit_labels):
        self.sources, self.positions, self.noise_frames, labels = plan
        super().__init__(labels, CLASS_NAMES, seq_len, img_size)
        self.task, self.noise = task, noise
        self._bank, self._digits, self._digit_labels = bank, digits, digit_labels

    def _load(self, i):
        d = self._digits.shape[1]
        out = self._bank[self.noise_frames[i]]                      # (S, H, W): a copy (fancy index)
        for t in range(self.seq_len):
            y, x = self.positions[i, t]
            region = out[t, y:y + d, x:x + d]
            region += (1.0 - np.float32(self.noise)) * self._digits[self.sources[i, t]]   # stays in [0, 1]
        return out

    def describe(self, i):
        return f"moving digits sequence {i} (scans {sorted(set(self.sources[i].tolist()))})"


def _noise_bank(rng, img_size, noise):
    # uint8 draws are ~10x cheaper than float ones, and 256 levels are plenty for noise
    raw = rng.integers(0, 256, size=(NOISE_BANK, img_size, img_size), dtype=np.uint8)
    return raw.astype(np.float32) * np.float32(noise / 256)


def _upscale(images, size):
    """(M, 8, 8) -> (M, size, size) by bilinear interpolation: two small matrix products."""
    n = images.shape[1]
    centres = (np.arange(size) + 0.5) * n / size - 0.5             # each output pixel's centre, in source pixels
    lo = np.clip(np.floor(centres).astype(int), 0, n - 1)
    hi = np.clip(lo + 1, 0, n - 1)
    w = np.clip(centres - lo, 0.0, 1.0)
    A = np.zeros((size, n), np.float32)
    A[np.arange(size), lo] += 1 - w
    A[np.arange(size), hi] += w
    return np.einsum("ij,mjk,lk->mil", A, images, A).astype(np.float32)


def _majority_counts(seq_len):
    """The range of frames showing the majority digit: more than half, at most three quarters."""
    lo = seq_len // 2 + 1
    return lo, max(lo, seq_len - max(1, seq_len // 4))


def _plan(rng, n, seq_len, img_size, d, pool, labels, task):
    """Per-sequence draws: sources (n, S), positions (n, S, 2), noise frames (n, S), labels (n,)."""
    if n < 1:
        raise DataError(f"moving digits: need at least one sequence on each side of the split, got {n}")
    # Cycle through the pool in shuffled order, so every scan is used about equally often.
    reps = -(-n // len(pool))
    first = np.concatenate([rng.permutation(pool) for _ in range(reps)])[:n]
    sources = np.repeat(first[:, None], seq_len, axis=1)
    labels_out = labels[first]
    if task == "majority":
        lo, hi = _majority_counts(seq_len)
        for i in range(n):
            others = pool[labels[pool] != labels_out[i]]
            if len(others) == 0:
                raise DataError("the majority task needs source digits of at least two classes")
            minority = rng.permutation(seq_len)[:seq_len - rng.integers(lo, hi + 1)]
            sources[i, minority] = rng.choice(others)
    # A straight line at constant speed, bouncing off the edges, over about half the free room.
    room = img_size - d
    angle = rng.uniform(0, 2 * np.pi, size=n)
    speed = rng.uniform(0.25, 0.5, size=n) * room / max(seq_len - 1, 1)
    start = rng.uniform(0, room, size=(n, 2))
    t = np.arange(seq_len)
    velocity = speed[:, None] * np.stack([np.sin(angle), np.cos(angle)], 1)            # (n, 2) pixels per frame
    path = start[:, None, :] + t[None, :, None] * velocity[:, None, :]                # (n, S, 2)
    path = room - np.abs(np.mod(path, 2 * room) - room) if room > 0 else np.zeros_like(path)   # reflect at the edges
    positions = np.rint(path).astype(np.int64)
    noise_frames = rng.integers(0, NOISE_BANK, size=(n, seq_len))
    return sources, positions, noise_frames, labels_out
