"""The digits the Pixel Prediction Transformer learns from, as codebook tokens.

MNIST's offline split (``lpm.data.mnist``: 4,000 training and 1,000 held-out digits), each
image tokenised by a ``PatchCodebook`` fitted on the training split only. ``load_tokens`` builds
the codebook when there is none at the path given (and saves it there), or reads it.

    >>> data = load_tokens(codebook_path="runs/ppt/codebook.safetensors", log=print)
    >>> data.train_tokens.shape, data.heldout_tokens.shape
    ((4000, 49), (1000, 49))
"""

import os
from dataclasses import dataclass

import numpy as np

from lpm.data import mnist
from lpm.data.base import SKLEARN_SEED_MAX, DataError, require_seed
from lpm.ppt.codebook import PatchCodebook


@dataclass
class TokenData:
    """Images (N, 28, 28) float32 in [0, 1], labels (N,) int64 and tokens (N, T) int64 of both splits."""

    codebook: PatchCodebook
    train_images: np.ndarray
    train_labels: np.ndarray
    train_tokens: np.ndarray
    heldout_images: np.ndarray
    heldout_labels: np.ndarray
    heldout_tokens: np.ndarray


def spread(n, limit):
    """Row indices of ``limit`` images spread evenly over ``n`` (all of them when ``limit`` is None):
    the splits are sorted by class, so every class keeps its share."""
    if limit is None or limit >= n:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, limit).round().astype(np.int64))


def load_images(limit=None):
    """``(train_images, train_labels, heldout_images, heldout_labels)`` of MNIST, each split cut to
    ``limit`` images spread over the classes when given (small runs and tests)."""
    train_x, train_y = mnist.load("train")
    heldout_x, heldout_y = mnist.load("test")
    tr, he = spread(len(train_y), limit), spread(len(heldout_y), limit)
    return train_x[tr], train_y[tr], heldout_x[he], heldout_y[he]


def load_codebook(path, patch_size, num_codes):
    """The codebook at ``path``; a ``DataError`` when it is not one of ``patch_size`` and ``num_codes``."""
    try:
        codebook = PatchCodebook.load(path)
    except (OSError, ValueError) as exc:
        raise DataError(str(exc)) from None
    if (codebook.patch_size, codebook.num_codes) != (patch_size, num_codes):
        raise DataError(f"{path} is a codebook of {codebook.num_codes} codes of {codebook.patch_size}x"
                        f"{codebook.patch_size} patches; this run asks for {num_codes} of {patch_size}x{patch_size}")
    return codebook


def load_tokens(codebook_path=None, patch_size=4, num_codes=256, limit=None, seed=0, log=print, n_init=1):
    """The MNIST split as ``TokenData``. The codebook is read from ``codebook_path`` when that file
    exists, else fitted on the training images (k-means, ``seed``, the best of ``n_init``
    initialisations) and saved there (when a path is given); ``log`` receives a line on what was
    done, with the held-out reconstruction PSNR."""
    require_seed("load_tokens", seed, high=SKLEARN_SEED_MAX)     # before the digits are read
    train_x, train_y, heldout_x, heldout_y = load_images(limit)
    if codebook_path and os.path.exists(codebook_path):
        codebook = load_codebook(codebook_path, patch_size, num_codes)
        log(f"Codebook: {codebook_path} ({num_codes} codes of {patch_size}x{patch_size} patches"
            + (f", k-means best of {codebook.n_init} initialisations" if codebook.n_init > 1 else "") + "); "
            f"held-out PSNR {codebook.psnr(heldout_x):.2f} dB")
    else:
        try:
            codebook = PatchCodebook.fit(train_x, patch_size=patch_size, num_codes=num_codes, seed=seed,
                                         n_init=n_init)
        except ValueError as exc:           # e.g. fewer distinct patches than codes in a small --limit
            raise DataError(f"{exc} (ask for fewer --codes" + (", or more digits: a larger --limit)" if limit else ")")
                            ) from None
        if codebook_path:
            os.makedirs(os.path.dirname(os.path.abspath(codebook_path)), exist_ok=True)
            codebook.save(codebook_path)
        log(f"Codebook: fitted {num_codes} codes of {patch_size}x{patch_size} patches on {len(train_y)} training "
            f"digits" + (f" (k-means best of {n_init} initialisations)" if n_init > 1 else "")
            + (f", saved to {codebook_path}" if codebook_path else "")
            + f"; held-out PSNR {codebook.psnr(heldout_x):.2f} dB")
    return TokenData(codebook, train_x, train_y, codebook.encode(train_x), heldout_x, heldout_y,
                     codebook.encode(heldout_x))


def tokens_of(model, limit=None):
    """The MNIST split (cut to ``limit`` as in training) as ``TokenData``, tokenised with the codebook
    a trained ``model`` holds (so evaluation needs no codebook file)."""
    if not model.has_codebook:
        raise DataError("the model holds no codebook (not a trained Pixel Prediction Transformer)")
    codebook = PatchCodebook(model.codebook.numpy(), model.config.patch_size)
    train_x, train_y, heldout_x, heldout_y = load_images(limit)
    return TokenData(codebook, train_x, train_y, codebook.encode(train_x), heldout_x, heldout_y,
                     codebook.encode(heldout_x))
