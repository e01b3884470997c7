"""Generation around the model: completing given digits from their top rows, reading the digits
to complete (``--complete``), writing what was drawn (.npy arrays, .png grids)."""

import numpy as np

from lpm.outputs import write_atomically
from lpm.ppt import figures
from lpm.ppt.codebook import PatchCodebook


def rows_given(model):
    """Pixel rows of a digit a completion keeps: the top half of the grid of patches, rounded down
    (12 of 28 with 4x4 patches)."""
    return (model.config.grid // 2) * model.config.patch_size


def tokens_of_images(model, images):
    """``images`` (N, 28, 28) as the tokens of the model's codebook."""
    return PatchCodebook(model.codebook.numpy(), model.config.patch_size).encode(images)


def complete(model, images, num=1, digit=None, **options):
    """``num`` completions of each digit of ``images`` (N, 28, 28) from its top ``rows_given`` rows:
    ``(completions (N, num, 28, 28) float32, number of tokens given)``. ``options`` go to
    ``model.generate`` (temperature, top_k, top_p, guidance, seed, use_cache)."""
    g = model.config.grid
    prefix = np.repeat(tokens_of_images(model, images)[:, :(g // 2) * g], num, axis=0)         # (N * num, n)
    drawn = model.generate(len(prefix), digit=digit, prefix=prefix, **options)
    return drawn.reshape(len(images), num, *drawn.shape[1:]), prefix.size


def read_digits(path):
    """Digits to complete from an .npy file: (N, 28, 28) float32 in [0, 1] (a single (28, 28) digit
    too); ``ValueError`` saying what is wrong otherwise."""
    try:
        images = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise ValueError(f"cannot read it as a .npy array ({exc})") from None
    shape = images.shape
    images = images[None] if images.ndim == 2 else images
    if images.ndim != 3 or images.shape[1:] != (28, 28) or len(images) == 0:
        raise ValueError(f"expected digits of shape (N, 28, 28) or (28, 28), got {shape}")
    if images.dtype.kind not in "fiu" or not np.isfinite(images).all() or images.min() < 0 or images.max() > 1:
        raise ValueError(f"expected float pixels in [0, 1], got {images.dtype} from {images.min()} to {images.max()}")
    return images.astype(np.float32)


def write_images(path, images, given=None, digit=None, per_row=None, given_rows=None):
    """Write drawn digits to ``path``: .npy (the array, float32), or .png: a completion figure when
    ``given`` (the digits completed) is passed, a grid of ``per_row`` per row (one row per digit),
    or a plain grid."""
    if path.lower().endswith(".npy"):
        write_atomically(path, lambda tmp: np.save(tmp, images.astype(np.float32)), ".npy")
    elif given is not None:
        figures.save_completions(given, images, given_rows, path,
                                 title=f"original, its top {given_rows} rows (given), completions")
    elif per_row:
        figures.save_grid(images, path, per_row, row_labels=range(10))
    else:
        figures.save_grid(images, path, min(len(images), 10 if digit is not None else 8))
