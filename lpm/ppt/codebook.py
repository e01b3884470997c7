"""A k-means codebook of image patches: a 28x28 digit becomes ceil(28/p)^2 tokens, one per patch.

Patches are non-overlapping p x p squares taken in row-major order (left to right, then top to
bottom); any p from 1 to 28 works: where p does not divide 28 the digit is padded with zeros (the
MNIST background) on the bottom and right to the next multiple of p, and decoding crops the
padding off again. Overlapping patches are not offered: tokens are generated to tile an image.
The codes are the k-means centres of every training patch (scikit-learn's ``KMeans``, ``n_init``
seeded initialisations, the best by inertia kept, one by default; run on the distinct patches
weighted by their counts), and every code is used on the training patches: a code left
without patches is moved onto the worst-fitted patch and k-means refit, until none is empty.
The codebook is stored as safetensors (never a pickle), written atomically.

    >>> book = PatchCodebook.fit(train_images, patch_size=4, num_codes=256)
    >>> tokens = book.encode(test_images)            # (N, 49) int64 in [0, 256)
    >>> book.decode(tokens).shape                     # (N, 28, 28) float32
    >>> book.psnr(test_images)                        # dB through the codebook, peak 1.0
    >>> book.save("runs/ppt/codebook.safetensors"); PatchCodebook.load("runs/ppt/codebook.safetensors")
"""

import os

import numpy as np

from lpm.data.base import SKLEARN_SEED_MAX, require_seed
from lpm.data.mnist import SIDE, check_digit_images
from lpm.outputs import write_atomically

FORMAT = "lpm-ppt-codebook"
_MAX_REFITS = 20          # rounds of moving empty codes and refitting before giving up
_CHUNK = 16384            # patches per block of the nearest-code search (bounds its memory)


class CodebookError(ValueError):
    """A codebook file that cannot be used: missing, unreadable or not a patch codebook."""


class PatchCodebook:
    """``num_codes`` patch vectors of ``patch_size`` x ``patch_size`` pixels.

    ``vectors`` is (num_codes, patch_size**2) float32; ``grid`` = ceil(28 / patch_size) patches
    per side; ``tokens_per_image`` = grid**2; ``n_init``: the k-means initialisations it was
    fitted with (1 when unknown). Build one with ``fit`` (or ``load``); the constructor takes
    vectors that already exist (e.g. kept in a model checkpoint).
    """

    def __init__(self, vectors, patch_size, n_init=1):
        _check_patch_size(patch_size)
        vectors = np.asarray(vectors)
        if vectors.ndim != 2 or vectors.shape[1] != patch_size * patch_size or vectors.shape[0] < 2:
            raise ValueError(f"PatchCodebook: vectors must be (num_codes >= 2, {patch_size * patch_size}) "
                             f"for patch_size {patch_size}, got shape {vectors.shape}")
        if not (np.all(np.isfinite(vectors)) and vectors.min() >= 0 and vectors.max() <= 1):
            raise ValueError(f"PatchCodebook: vectors must be in [0, 1] (so decoded images are), got values "
                             f"from {np.nanmin(vectors)} to {np.nanmax(vectors)}")
        self.patch_size = int(patch_size)
        self.vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        self.num_codes = self.vectors.shape[0]
        self.n_init = _check_n_init(n_init, "PatchCodebook")
        self.grid = grid_side(self.patch_size)
        self.tokens_per_image = self.grid * self.grid

    def __repr__(self):
        return f"PatchCodebook(patch_size={self.patch_size}, num_codes={self.num_codes})"

    @classmethod
    def fit(cls, images, patch_size=4, num_codes=256, seed=0, n_init=1):
        """k-means of every p x p patch of ``images`` (N, 28, 28) in [0, 1], the training split only.

        ``n_init``: k-means runs from that many seeded k-means++ initialisations and keeps the one
        of the lowest inertia (scikit-learn's ``KMeans(n_init=...)``; 1, the default, gives the
        codebooks of earlier versions bit for bit). Every code ends up used on these patches
        (empty codes are re-seeded from the worst-fitted patches and k-means refit); ``ValueError``
        when the images hold fewer distinct patches than ``num_codes``.
        """
        _check_patch_size(patch_size)
        require_seed("PatchCodebook.fit", seed, high=SKLEARN_SEED_MAX)
        if isinstance(num_codes, bool) or not isinstance(num_codes, (int, np.integer)) or num_codes < 2:
            raise ValueError(f"PatchCodebook.fit: num_codes must be an integer >= 2, got {num_codes!r}")
        n_init = _check_n_init(n_init, "PatchCodebook.fit")
        patches = to_patches(check_digit_images(images, "PatchCodebook.fit"), patch_size)
        # k-means of the distinct patches weighted by their counts has the same objective as k-means
        # of every patch, at a third of the work: 62% of the 196,000 MNIST training patches are blank
        unique, counts = np.unique(patches, axis=0, return_counts=True)
        if len(unique) < num_codes:
            raise ValueError(f"PatchCodebook.fit: the images hold {len(unique)} distinct {patch_size}x{patch_size} "
                             f"patches, fewer than num_codes={num_codes}")
        return cls(_kmeans_no_dead_codes(unique, counts, int(num_codes), seed, n_init), patch_size, n_init)

    def encode(self, images):
        """Tokens (N, tokens_per_image) int64: the nearest code of each patch, row-major order."""
        patches = to_patches(check_digit_images(images, "PatchCodebook.encode"), self.patch_size)
        return nearest_code(patches, self.vectors).reshape(-1, self.tokens_per_image)

    def decode(self, tokens):
        """Images (N, 28, 28) float32 in [0, 1]: each token replaced by its code's patch."""
        tokens = np.asarray(tokens)
        if tokens.ndim != 2 or tokens.shape[1] != self.tokens_per_image or not np.issubdtype(tokens.dtype, np.integer):
            raise ValueError(f"PatchCodebook.decode: tokens must be integers of shape (N, {self.tokens_per_image}), "
                             f"got {tokens.dtype} {tokens.shape}")
        if tokens.size and (tokens.min() < 0 or tokens.max() >= self.num_codes):
            raise ValueError(f"PatchCodebook.decode: tokens must be in [0, {self.num_codes}), "
                             f"got values from {tokens.min()} to {tokens.max()}")
        n, g, p = tokens.shape[0], self.grid, self.patch_size
        blocks = self.vectors[tokens].reshape(n, g, g, p, p)          # (N, row, col, y, x)
        return np.ascontiguousarray(blocks.transpose(0, 1, 3, 2, 4).reshape(n, g * p, g * p)[:, :SIDE, :SIDE])

    def inertia(self, images):
        """The k-means objective on ``images`` (N, 28, 28): the sum over every patch (padding
        included) of its squared distance to its nearest code, float64."""
        patches = to_patches(check_digit_images(images, "PatchCodebook.inertia"), self.patch_size)
        nearest = self.vectors[nearest_code(patches, self.vectors)]
        return float(np.sum((patches - nearest) ** 2, dtype=np.float64))

    def psnr(self, images):
        """Reconstruction PSNR in dB of ``images`` through the codebook, peak 1.0:
        10 log10(1 / MSE), the mean squared error over every pixel of every image."""
        images = check_digit_images(images, "PatchCodebook.psnr")
        if len(images) == 0:
            raise ValueError("PatchCodebook.psnr: images must hold at least one image, got none")
        mse = float(np.mean((self.decode(self.encode(images)) - images) ** 2, dtype=np.float64))
        return float("inf") if mse == 0 else 10.0 * np.log10(1.0 / mse)

    def save(self, path):
        """Write the codebook to ``path`` (safetensors: ``vectors`` and ``patch_size``; metadata
        ``n_init`` when above 1, so a default codebook's file is that of earlier versions), atomically."""
        from safetensors.numpy import save      # as lpm.checkpoint: only saving and loading need it
        metadata = {"format": FORMAT, **({"n_init": str(self.n_init)} if self.n_init > 1 else {})}
        data = save({"vectors": self.vectors, "patch_size": np.array([self.patch_size], dtype=np.int64)},
                    metadata=metadata)

        def write(tmp):
            with open(tmp, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())     # on disk before the rename makes it visible
        write_atomically(os.fspath(path), write)

    @classmethod
    def load(cls, path):
        """The codebook saved at ``path``; ``CodebookError`` (one line) if it is missing or not a codebook."""
        from safetensors import safe_open       # as lpm.checkpoint: only saving and loading need it
        path = os.fspath(path)
        if not os.path.isfile(path):
            raise CodebookError(f"codebook {path}: " + ("a folder, not a codebook file" if os.path.isdir(path)
                                                         else "no such file"))
        try:
            with safe_open(path, framework="numpy") as f:
                metadata, keys = f.metadata() or {}, set(f.keys())
                if metadata.get("format") != FORMAT or keys != {"vectors", "patch_size"}:
                    raise CodebookError(f"codebook {path}: not a patch codebook (tensors {sorted(keys)})")
                vectors, patch_size = f.get_tensor("vectors"), f.get_tensor("patch_size")
        except CodebookError:
            raise
        except Exception as e:        # safetensors raises several types for a file that is not its own
            raise CodebookError(f"codebook {path}: not a safetensors file ({type(e).__name__})") from None
        if vectors.dtype != np.float32 or patch_size.shape != (1,):
            raise CodebookError(f"codebook {path}: not a patch codebook (vectors {vectors.dtype}, "
                                f"patch_size {patch_size.shape})")
        n_init = metadata.get("n_init", "1")
        try:
            return cls(vectors, int(patch_size[0]), int(n_init) if n_init.isdigit() else n_init)
        except ValueError as e:
            raise CodebookError(f"codebook {path}: {e}") from None


def grid_side(patch_size):
    """Patches per side of a 28x28 digit: ceil(28 / patch_size) (the last row and column padded)."""
    return -(-SIDE // patch_size)


def to_patches(images, patch_size):
    """(N, 28, 28) -> (N * ceil(28/p)^2, p*p): every image's patches in row-major order, the
    image padded with zeros on the bottom and right where p does not divide 28."""
    n, g, p = images.shape[0], grid_side(patch_size), patch_size
    if g * p != SIDE:
        images = np.pad(images, ((0, 0), (0, g * p - SIDE), (0, g * p - SIDE)))
    blocks = images.reshape(n, g, p, g, p).transpose(0, 1, 3, 2, 4)     # (N, row, col, y, x)
    return np.ascontiguousarray(blocks.reshape(n * g * g, p * p))


def nearest_code(patches, vectors):
    """(P,) int64: the index of each patch's nearest vector (squared L2), in blocks of rows."""
    out = np.empty(len(patches), dtype=np.int64)
    norms = np.einsum("kd,kd->k", vectors, vectors)
    for start in range(0, len(patches), _CHUNK):
        block = patches[start:start + _CHUNK]
        # |x - c|^2 = |x|^2 - 2 x.c + |c|^2; |x|^2 is the same for every code of a row
        out[start:start + _CHUNK] = np.argmin(norms - 2.0 * block @ vectors.T, axis=1)
    return out


def _kmeans_no_dead_codes(unique, counts, num_codes, seed, n_init=1):
    """k-means centres (K, d) float32 of the distinct patches ``unique`` weighted by ``counts``,
    with every centre the nearest of some patch; the first fit the best of ``n_init``."""
    from sklearn.cluster import KMeans      # here, not at the top: importing sklearn costs seconds
    init, weights, runs = "k-means++", counts.astype(np.float32), n_init
    for _ in range(_MAX_REFITS):
        kmeans = KMeans(num_codes, init=init, n_init=runs, random_state=seed).fit(unique, sample_weight=weights)
        runs = 1                            # a refit starts from the given centres: one run
        # means of pixels in [0, 1] lie in [0, 1], but not always after rounding (-3e-6 seen on MNIST)
        centres = np.clip(kmeans.cluster_centers_, 0.0, 1.0).astype(np.float32)
        init = _reseed_empty(unique, centres)
        if init is None:
            return centres
    raise ValueError(f"PatchCodebook.fit: {num_codes} codes still left some unused after {_MAX_REFITS} refits")


def _reseed_empty(unique, centres):
    """None when every centre is the nearest of some patch; otherwise the centres with each unused
    one moved onto a distinct worst-fitted patch (``unique``: the distinct patches)."""
    labels = nearest_code(unique, centres)
    used = np.bincount(labels, minlength=len(centres)) > 0
    if used.all():
        return None
    error = np.sum((unique - centres[labels]) ** 2, axis=1)
    worst = np.argsort(-error, kind="stable")[:np.count_nonzero(~used)]
    centres = centres.copy()
    centres[~used] = unique[worst]
    return centres


def _check_patch_size(patch_size):
    if isinstance(patch_size, bool) or not isinstance(patch_size, (int, np.integer)) \
            or not 1 <= patch_size <= SIDE:
        raise ValueError(f"PatchCodebook: patch_size must be an integer from 1 to {SIDE}, got {patch_size!r}")


def _check_n_init(n_init, where):
    if isinstance(n_init, bool) or not isinstance(n_init, (int, np.integer)) or n_init < 1:
        raise ValueError(f"{where}: n_init (k-means initialisations) must be an integer >= 1, got {n_init!r}")
    return int(n_init)
