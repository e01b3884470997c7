"""The captioning tasks: images (or image sequences) with their captions, offline.

- ``digit-strings``: 1 to 4 real MNIST digits pasted left to right on a 28x112 black canvas,
  captioned with the digits in words (``"seven two nine"``). Training sets draw only from MNIST's
  training split, held-out sets only from its held-out split (``lpm.data.mnist``).
- ``moving-digits``: the sequences of ``--dataset digits`` (task ``digit``), captioned from their
  generation plan: ``"a seven moving up and left"``.

``TASKS[name](samples, val_samples, seed=0) -> (train, held_out)``, two ``CaptionData`` sets
(``moving-digits`` also takes ``seq_len`` and ``img_size``).

    >>> train, held_out = TASKS["digit-strings"](8, 4, seed=0)
    >>> train.batch([0, 1])[0].shape, len(held_out), train.image_shape
    ((2, 28, 112), 4, (28, 112))
"""

import functools
from dataclasses import dataclass

import numpy as np

from lpm.data import mnist
from lpm.data.base import require_seed
from lpm.data.digits import moving_digits

NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
MAX_DIGITS = 4             # digits on one canvas: 1 to 4
MAX_SHIFT = 4              # each digit moves by a random shift in [-4, 4] pixels from x = 28 * i
SIDE = mnist.SIDE          # 28
CANVAS = (SIDE, SIDE * MAX_DIGITS)   # (28, 112)
SPLIT_CODES = {"train": 0, "test": 1}     # the two splits draw their own random streams
MOVING_FRAME = 32          # moving-digits frames: 32x32 (the digit 26 pixels wide, 6 pixels of room to move)


@dataclass
class CaptionData:
    """Images and their captions. ``images`` is an array (N, *image_shape) or any object whose
    ``images[indices]`` gives float32 images for a 1-D int array; ``captions`` one string per image."""

    images: object
    captions: list
    image_shape: tuple
    name: str

    def __len__(self):
        return len(self.captions)

    def batch(self, indices):
        """``(images (B, *image_shape) float32, captions list[str])`` of the rows ``indices``."""
        indices = np.asarray(indices, dtype=np.int64)
        return np.asarray(self.images[indices], dtype=np.float32), [self.captions[i] for i in indices.tolist()]


class DigitCanvases:
    """Rendered canvases kept as uint8 (a quarter of float32's memory), served as float32 in [0, 1]
    exactly as ``mnist.load`` gives the digits: ``canvases[indices] -> (B, 28, 112)``."""

    def __init__(self, pixels):
        self.pixels = pixels

    def __len__(self):
        return len(self.pixels)

    @property
    def shape(self):
        return self.pixels.shape

    def __getitem__(self, indices):
        return self.pixels[indices].astype(np.float32) / np.float32(255)

    def __array__(self, dtype=None, copy=None):
        return self[slice(None)] if dtype is None else self[slice(None)].astype(dtype)


def digit_strings(split, num_samples, seed=0):
    """``num_samples`` canvases of 1 to 4 MNIST digits of ``split`` ("train" or "test", as
    ``lpm.data.mnist.load`` names them) with their captions; deterministic for a seed.

    Digit i sits at x = 28 * i + a shift drawn in [-4, 4] (the part past the canvas is cut),
    overlapping strokes take the maximum; the caption names the digits left to right in words.
    """
    if split not in ("train", "test"):
        raise ValueError(f"digit_strings: split must be 'train' or 'test' (MNIST's held-out split), got {split!r}")
    _check_count("digit_strings: num_samples", num_samples)
    require_seed("digit_strings", seed)
    pixels, captions = _render(split, int(num_samples), int(seed))
    return CaptionData(DigitCanvases(pixels), list(captions), CANVAS, f"digit-strings ({split} split of MNIST)")


@functools.lru_cache(maxsize=4)
def _render(split, n, seed):
    """(pixels (n, 28, 112) uint8 read-only, captions tuple): the cached canvases of ``digit_strings``."""
    images, labels = mnist.load(split)
    digits = np.rint(images * 255).astype(np.uint8)                   # exact: load() divided uint8 by 255
    rng = np.random.default_rng([seed, 18, SPLIT_CODES[split]])
    counts = rng.integers(1, MAX_DIGITS + 1, size=n)
    picks = rng.integers(0, len(digits), size=(n, MAX_DIGITS))
    shifts = rng.integers(-MAX_SHIFT, MAX_SHIFT + 1, size=(n, MAX_DIGITS))
    pixels = paste_digits(digits[picks], counts, shifts)
    pixels.flags.writeable = False
    names = np.array(NUMBER_WORDS)[labels[picks]]
    captions = tuple(" ".join(names[i, :counts[i]]) for i in range(n))
    return pixels, captions


def paste_digits(digits, counts, shifts):
    """Canvases (n, 28, 112) of the first ``counts[k]`` of ``digits[k]`` (n, 4, 28, 28), digit i at
    x = 28 * i + ``shifts[k, i]`` (the part past the canvas cut off), overlaps taking the maximum."""
    n = len(digits)
    # A margin of MAX_SHIFT on both sides takes the digits that stick out; it is cut off at the end.
    canvas = np.zeros((n, SIDE, CANVAS[1] + 2 * MAX_SHIFT), digits.dtype)
    # One slice paste per (slot, shift) for all the canvases that share it: 36 vectorised pastes
    # (7x faster than one gather-scatter with per-canvas column indices).
    for slot in range(MAX_DIGITS):
        for shift in range(-MAX_SHIFT, MAX_SHIFT + 1):
            rows = np.flatnonzero((shifts[:, slot] == shift) & (slot < counts))
            x = MAX_SHIFT + SIDE * slot + shift
            canvas[rows, :, x:x + SIDE] = np.maximum(canvas[rows, :, x:x + SIDE], digits[rows, slot])
    return np.ascontiguousarray(canvas[:, :, MAX_SHIFT:MAX_SHIFT + CANVAS[1]])


def _check_count(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


def digit_strings_task(samples, val_samples, seed=0):
    """``(train, held_out)``: ``samples`` canvases from MNIST's training split and ``val_samples``
    from its held-out split."""
    _check_count("digit-strings: samples", samples)
    _check_count("digit-strings: val_samples", val_samples)
    require_seed("digit-strings", seed)
    return digit_strings("train", samples, seed), digit_strings("test", val_samples, seed)


def moving_digits_captions(num_samples, seq_len=8, img_size=MOVING_FRAME, seed=0, eval_split=0.2):
    """``(train, held_out)``: the sequences of ``lpm.data.digits.moving_digits`` (task "digit"),
    ``num_samples`` in all, ``eval_split`` of them held out (drawn from held-out scans only, as
    ``moving_digits`` does), each captioned from its plan by ``describe_motion``.
    ``images[indices]`` renders the frames: (B, seq_len, img_size, img_size) float32."""
    parts = moving_digits(num_samples, seq_len=seq_len, img_size=img_size, task="digit", eval_split=eval_split,
                          seed=seed)
    shape = (seq_len, img_size, img_size)
    return tuple(CaptionData(part, describe_motion(part.positions, part.labels), shape, f"moving-digits ({side})")
                 for part, side in zip(parts, ("training scans", "held-out scans")))


def describe_motion(positions, labels):
    """Captions of moving digits from their plan: positions (N, S, 2) (row, column of the digit's
    corner in each frame, as drawn) and digit labels (N,) -> ``"a seven moving up and left"``.

    Along each axis the caption names the direction of the digit's first move of at least one
    pixel: the first leg, before any bounce off an edge, as the frames show it (so the caption is
    a function of what is drawn). An axis along which the digit never moves a whole pixel is not
    named (``"an eight moving left"``); a digit that does not move at all is ``"a two standing still"``.
    """
    steps = np.diff(np.asarray(positions), axis=1)                               # (N, S-1, 2)
    moved = steps != 0
    first = np.take_along_axis(steps, moved.argmax(axis=1)[:, None, :], axis=1)[:, 0, :]   # (N, 2)
    sign = np.sign(first) * moved.any(axis=1)
    vertical = np.array(["up", "", "down"])[sign[:, 0] + 1]
    horizontal = np.array(["left", "", "right"])[sign[:, 1] + 1]
    captions = []
    for label, v, h in zip(np.asarray(labels).tolist(), vertical.tolist(), horizontal.tolist()):
        digit = NUMBER_WORDS[label]
        motion = " and ".join(w for w in (v, h) if w)
        captions.append(f"{'an' if digit == 'eight' else 'a'} {digit} "
                        + (f"moving {motion}" if motion else "standing still"))
    return captions


def moving_digits_task(samples, val_samples, seed=0, seq_len=8, img_size=MOVING_FRAME):
    """``(train, held_out)`` of ``samples`` and ``val_samples`` captioned moving-digit sequences; the
    scans are split in the same proportion (``moving_digits``'s ``eval_split``)."""
    _check_count("moving-digits: samples", samples)
    _check_count("moving-digits: val_samples", val_samples)
    require_seed("moving-digits", seed)
    total = samples + val_samples
    return moving_digits_captions(total, seq_len=seq_len, img_size=img_size, seed=seed,
                                  eval_split=val_samples / total)


TASKS = {"digit-strings": digit_strings_task, "moving-digits": moving_digits_task}
