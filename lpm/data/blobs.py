"""Synthetic image sequences for LPM: a bright blob moving across noisy frames.

Each sample is a sequence of ``seq_len`` grayscale ``img_size x img_size`` frames. A
Gaussian blob starts at a random place and moves in a straight line at a random speed;
the class is the direction it moves in (``DIRECTIONS``). Every frame also carries fresh
uniform noise.

The task is about the sequence, not one frame: the frames of a blob moving right from
``x0`` are exactly the frames of a blob moving left from the far end, in reverse order.
A model that looks at the frames as an unordered set (or at one frame) cannot do better
than chance between opposite directions; it needs the frame order (positional
encodings) and a comparison across frames.

    >>> images, labels = make_moving_blobs(8, seq_len=4, img_size=32, seed=0)
    >>> images.shape, images.dtype, labels.shape
    ((8, 4, 32, 32), dtype('float32'), (8,))
    >>> (x_train, y_train), (x_eval, y_eval) = train_eval_split(images, labels, eval_split=0.25)
    >>> x_train.shape[0], x_eval.shape[0]
    (6, 2)
"""

import math

import numpy as np

from lpm.data.base import require_seed

DIRECTIONS = ("right", "left", "down", "up")
NUM_CLASSES = len(DIRECTIONS)

# Unit steps (dy, dx) per class, in DIRECTIONS order; y grows downwards, as in an image.
_STEPS = np.array([[0, 1], [0, -1], [1, 0], [-1, 0]], dtype=np.float64)


def make_moving_blobs(num_samples, seq_len=8, img_size=200, seed=0, noise=0.3, blob_sigma=None,
                      speed=None, chunk=32):
    """Return ``(images, labels)``: float32 ``(N, seq_len, img_size, img_size)``, int64 ``(N,)``.

    Deterministic for a given seed. Pixels lie in ``[0, 1]``: a blob of peak ``1 - noise``
    plus uniform noise in ``[0, noise)``. ``blob_sigma`` (pixels) defaults to
    ``img_size / 16``; ``speed=(lo, hi)`` is the range of the per-sample speed in pixels per
    frame, by default chosen so that the blob crosses about half of the image over the
    sequence. Classes are balanced (round robin over ``DIRECTIONS``, then shuffled).

        >>> x, y = make_moving_blobs(4, seq_len=3, img_size=16, seed=1)
        >>> float(x.min()) >= 0.0 and float(x.max()) <= 1.0
        True
    """
    _check_sizes(num_samples, seq_len, img_size, noise)
    require_seed("make_moving_blobs", seed, none=True)
    rng = np.random.default_rng(seed)
    sigma = img_size / 16 if blob_sigma is None else float(blob_sigma)
    if not 0.0 < sigma < math.inf:         # 0 divides by zero: NaN pixels, no blob
        raise ValueError(f"make_moving_blobs: blob_sigma must be a finite number > 0 (pixels), got {blob_sigma!r}")
    margin = min(2 * sigma, img_size / 4)
    span = img_size - 2 * margin                      # the room the blob centre may use
    if speed is None:
        hi = 0.5 * span / max(seq_len - 1, 1)
        speed = (0.5 * hi, hi)
    lo_v, hi_v = speed

    labels = rng.permutation(np.arange(num_samples) % NUM_CLASSES).astype(np.int64)
    v = rng.uniform(lo_v, hi_v, size=num_samples)                     # (N,) pixels per frame
    travel = v * (seq_len - 1)                                        # (N,) total distance
    # Along the motion the start leaves room for the whole path; across it, anywhere.
    along = margin + rng.uniform(0, 1, size=num_samples) * np.maximum(span - travel, 0)
    across = margin + rng.uniform(0, 1, size=num_samples) * span
    step = _STEPS[labels]                                             # (N, 2) as (dy, dx)
    horizontal = step[:, 1] != 0
    start = np.where(horizontal[:, None], np.stack([across, along], 1), np.stack([along, across], 1))
    # A negative step starts from the far end so the path stays inside the frame.
    start = np.where(step < 0, img_size - 1 - start, start)           # (N, 2)
    t = np.arange(seq_len, dtype=np.float64)
    centres = start[:, None, :] + t[None, :, None] * (v[:, None, None] * step[:, None, :])  # (N, S, 2)

    images = np.empty((num_samples, seq_len, img_size, img_size), dtype=np.float32)
    grid = np.arange(img_size, dtype=np.float32)
    peak = np.float32(1.0 - noise)
    for lo in range(0, num_samples, chunk):           # chunks bound the temporaries' memory
        c = centres[lo:lo + chunk].astype(np.float32)                  # (n, S, 2)
        gy = np.exp(-(grid - c[..., 0:1]) ** 2 / np.float32(2 * sigma ** 2))  # (n, S, H)
        gx = np.exp(-(grid - c[..., 1:2]) ** 2 / np.float32(2 * sigma ** 2))  # (n, S, W)
        block = images[lo:lo + chunk]                                  # (n, S, H, W) view
        np.multiply(gy[..., :, None], gx[..., None, :], out=block)     # separable Gaussian
        block *= peak
        if noise > 0:
            # uint8 noise is ~10x cheaper to draw than float noise and just as good here.
            block += rng.integers(0, 256, size=block.shape, dtype=np.uint8) * np.float32(noise / 256)
    return images, labels


def _check_sizes(num_samples, seq_len, img_size, noise):
    if not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in (num_samples, seq_len, img_size)):
        raise ValueError(f"make_moving_blobs: num_samples, seq_len and img_size must be ints, got "
                         f"{num_samples!r}, {seq_len!r}, {img_size!r}")
    if num_samples < 1 or seq_len < 1 or img_size < 4:
        raise ValueError(f"make_moving_blobs: need num_samples >= 1, seq_len >= 1, img_size >= 4; "
                         f"got {num_samples}, {seq_len}, {img_size}")
    if not 0.0 <= noise < 1.0:
        raise ValueError(f"make_moving_blobs: noise must be in [0, 1), got {noise}")


def memory_bytes(num_samples, seq_len=8, img_size=200, chunk=32):
    """Bytes ``make_moving_blobs`` allocates: every frame (float32), and per chunk of sequences
    the uint8 noise draw and its float32 product.

        >>> memory_bytes(600, 8, 200) / 2**20      # the default data set, in MiB
        781.25
    """
    frame = img_size * img_size
    return num_samples * seq_len * frame * 4 + min(chunk, num_samples) * seq_len * frame * 5


def train_eval_split(images, labels, eval_split=0.2, seed=0, shuffle=True):
    """Split into ``(train_images, train_labels), (eval_images, eval_labels)``.

    ``eval_split`` is the held-out fraction, in (0, 1); both parts keep at least one sample.
    With ``shuffle=True`` the samples are shuffled first (copies); with ``shuffle=False`` the
    last samples are held out and both parts are views of the inputs (no copy: for data
    already in random order, such as ``make_moving_blobs``'s).

        >>> x, y = np.zeros((10, 2, 4, 4), np.float32), np.arange(10)
        >>> (xt, yt), (xe, ye) = train_eval_split(x, y, eval_split=0.3)
        >>> len(yt), len(ye), sorted(np.concatenate([yt, ye]).tolist()) == list(range(10))
        (7, 3, True)
        >>> train_eval_split(x, y, eval_split=0.3, shuffle=False)[1][1].tolist()
        [7, 8, 9]
    """
    require_seed("train_eval_split", seed, none=True)
    n = len(labels)
    if not 0.0 < eval_split < 1.0:
        raise ValueError(f"train_eval_split: eval_split must be in (0, 1), got {eval_split}")
    if len(images) != n:        # indexing both by one order would pair images with other labels
        raise ValueError(f"train_eval_split: {len(images)} images but {n} labels; one label per image")
    if n < 2:
        raise ValueError(f"train_eval_split: need at least 2 samples, got {n}")
    n_train = n - min(max(int(round(n * eval_split)), 1), n - 1)
    if not shuffle:
        return (images[:n_train], labels[:n_train]), (images[n_train:], labels[n_train:])
    order = np.random.default_rng(seed).permutation(n)
    tr, ev = order[:n_train], order[n_train:]
    return (images[tr], labels[tr]), (images[ev], labels[ev])
