"""Data sets: moving digits (split by source scan, the majority task), the user's files in all three
layouts (frame folders, .npy, .npz), and the errors bad data gets."""

import importlib.util
import zipfile

import numpy as np
import pytest

from lpm.data import digits, files, frames
from lpm.data import DataError, load_data, stratified_split

needs_sklearn = pytest.mark.skipif(importlib.util.find_spec("sklearn") is None,
                                   reason="scikit-learn is not installed (the data extra: pip install 'lpm[data]')")
needs_pillow = pytest.mark.skipif(importlib.util.find_spec("PIL") is None,
                                  reason="Pillow is not installed (the data extra: pip install 'lpm[data]')")


def fake_sources(n=60, seed=0):
    """Stand-in scans (n, 8, 8) with labels 0..9, for tests that need no scikit-learn."""
    rng = np.random.default_rng(seed)
    return rng.random((n, 8, 8), dtype=np.float32), np.arange(n) % 10


# ---- moving digits ------------------------------------------------------------------------------
@needs_sklearn
def test_digits_split_shares_no_source_scan():
    train, held_out = digits.moving_digits(400, seq_len=4, img_size=16, eval_split=0.25, seed=3)
    assert len(train) == 300 and len(held_out) == 100
    assert set(train.sources.ravel()).isdisjoint(held_out.sources.ravel())
    images, labels = digits.load_source_digits()
    assert images.shape == (1797, 8, 8) and 0 <= images.min() and images.max() <= 1
    # the label is the digit of the scan shown; every frame shows the same scan
    assert (labels[train.sources[:, 0]] == train.labels).all() and (train.sources == train.sources[:, :1]).all()
    assert set(held_out.labels.tolist()) == set(range(10))


@needs_sklearn
def test_load_data_digits_is_centred_and_lazy():
    data = load_data(dict(dataset="digits", samples=50, seq_len=3, img_size=24, eval_split=0.2, seed=0))
    assert data.class_names == tuple("0123456789") and data.train_images.shape == (40, 3, 24, 24)
    batch = data.train_images[np.arange(40)]
    assert batch.dtype == np.float32 and abs(float(batch.mean())) < 0.02      # centred by the train mean
    assert data.pixel_offset > 0 and data.eval_images.offset == data.pixel_offset


def test_digits_frames_are_deterministic_and_show_a_moving_digit():
    train, _ = digits.moving_digits(20, seq_len=5, img_size=40, seed=1, sources=fake_sources())
    a, b = train[[3, 4]], train[np.array([3, 4])]
    np.testing.assert_array_equal(a, b)
    assert a.shape == (2, 5, 40, 40) and 0 <= a.min() and a.max() <= 1
    again, _ = digits.moving_digits(20, seq_len=5, img_size=40, seed=1, sources=fake_sources())
    np.testing.assert_array_equal(again[[3, 4]], a)
    moves = np.abs(np.diff(train.positions, axis=1)).sum(axis=(1, 2))
    assert (moves > 0).all()                                  # the digit moves in every sequence
    assert (train.positions >= 0).all() and (train.positions <= 40 - train._digits.shape[1]).all()


def test_majority_task_needs_more_than_one_frame():
    train, held_out = digits.moving_digits(200, seq_len=8, img_size=16, task="majority", seed=0,
                                           sources=fake_sources())
    images, labels = fake_sources()
    shown = labels[train.sources]                                # (N, S) digit shown in each frame
    counts = (shown == train.labels[:, None]).sum(axis=1)
    assert set(counts.tolist()) <= {5, 6}                        # the majority, never all frames
    # the other frames show one other digit
    assert all(len(set(row.tolist())) == 2 for row in shown)
    assert set(train.sources.ravel()).isdisjoint(held_out.sources.ravel())
    assert "most frames" in digits.describe_task("majority", 8)
    with pytest.raises(DataError, match="seq-len >= 3"):
        digits.moving_digits(10, seq_len=2, task="majority", sources=fake_sources())


def test_stratified_split_keeps_every_class_on_both_sides():
    labels = np.repeat(np.arange(4), [2, 5, 9, 1])
    train, held = stratified_split(labels, 0.3, seed=0)
    assert sorted(np.concatenate([train, held]).tolist()) == list(range(len(labels)))
    assert set(labels[held].tolist()) == {0, 1, 2} and set(labels[train].tolist()) == {0, 1, 2, 3}
    with pytest.raises(DataError, match="only one"):
        stratified_split(np.arange(3), 0.5)


# ---- the user's files ---------------------------------------------------------------------------
def write_png_sequences(root, classes, per_class=3, frames=4, size=12, seed=0):
    from PIL import Image

    rng = np.random.default_rng(seed)
    for name in classes:
        for s in range(per_class):
            folder = root / name / f"seq{s}"
            folder.mkdir(parents=True)
            for t in range(frames):
                pixels = rng.integers(0, 256, size=(size, size + 2), dtype=np.uint8)   # not square: resized
                Image.fromarray(pixels).convert("RGB").save(folder / f"frame{t}.png")


@needs_pillow
def test_frame_folders_grayscale_resized_in_name_order(tmp_path):
    from PIL import Image

    write_png_sequences(tmp_path, ["cat", "dog"], per_class=2, frames=3)
    # frame10 sorts after frame2 (numbers compared as numbers); its pixels are all white
    Image.fromarray(np.full((12, 14), 255, np.uint8)).save(tmp_path / "cat" / "seq0" / "frame10.png")
    ds = files.open_dataset(tmp_path, seq_len=4, img_size=8)
    assert ds.class_names == ("cat", "dog") and ds.labels.tolist() == [0, 0, 1, 1]
    x = ds[np.arange(4)]
    assert x.shape == (4, 4, 8, 8) and x.dtype == np.float32 and 0 <= x.min() and x.max() <= 1
    np.testing.assert_allclose(x[0, 3], 1.0)                     # frame10 is the 4th frame
    np.testing.assert_array_equal(x[1, 3], x[1, 2])              # 3 frames padded by repeating the last
    assert any("padded" in note for note in ds.notes)


@needs_pillow
def test_npy_sequences_and_mixed_layouts(tmp_path):
    write_png_sequences(tmp_path, ["a"], per_class=2, frames=4, size=8)
    (tmp_path / "b").mkdir()
    rng = np.random.default_rng(1)
    np.save(tmp_path / "b" / "s1.npy", rng.integers(0, 256, (6, 8, 8), dtype=np.uint8))     # longer: cut
    np.save(tmp_path / "b" / "s2.npy", rng.random((4, 16, 16, 3), dtype=np.float32))       # colour, resized
    ds = files.open_dataset(tmp_path, seq_len=4, img_size=8)
    assert ds.labels.tolist() == [0, 0, 1, 1]
    x = ds[[2, 3]]
    np.testing.assert_allclose(x[0], np.load(tmp_path / "b" / "s1.npy")[:4] / 255, rtol=1e-6)
    assert x.shape == (2, 4, 8, 8) and any("cut" in note for note in ds.notes)


def test_npz_memory_mapped_and_compressed(tmp_path):
    rng = np.random.default_rng(2)
    images = rng.random((10, 3, 8, 8), dtype=np.float32)
    labels = np.arange(10) % 3
    np.savez(tmp_path / "plain.npz", images=images, labels=labels, class_names=np.array(["x", "y", "z"]))
    np.savez_compressed(tmp_path / "small.npz", images=images, labels=labels)
    plain = files.open_dataset(tmp_path / "plain.npz", seq_len=3, img_size=8)
    assert isinstance(plain._images, np.memmap)                  # read lazily from disk
    assert plain.class_names == ("x", "y", "z")
    np.testing.assert_array_equal(plain[np.arange(10)], images)
    small = files.open_dataset(tmp_path / "small.npz", seq_len=3, img_size=8)
    assert small.class_names == ("0", "1", "2")
    np.testing.assert_array_equal(small[[4]], images[[4]])
    data = load_data(dict(data=str(tmp_path / "plain.npz"), seq_len=3, img_size=8, eval_split=0.3))
    assert len(data.train_labels) + len(data.eval_labels) == 10 and set(data.eval_labels.tolist()) == {0, 1, 2}


def test_large_data_sets_are_read_from_disk_not_kept(tmp_path):
    np.savez(tmp_path / "d.npz", images=np.zeros((6, 2, 8, 8), np.float32), labels=np.arange(6) % 2)
    ds = files.open_dataset(tmp_path / "d.npz", seq_len=2, img_size=8, cache_bytes=100)
    assert ds._cache is None and ds[[5]].shape == (1, 2, 8, 8)
    kept = files.open_dataset(tmp_path / "d.npz", seq_len=2, img_size=8)
    assert kept._cached


# ---- bad data -----------------------------------------------------------------------------------
@needs_pillow
def test_corrupt_image_names_the_file_and_skip_bad_counts_it(tmp_path):
    write_png_sequences(tmp_path, ["a", "b"], per_class=3, frames=2)
    bad = tmp_path / "b" / "seq1" / "frame1.png"
    bad.write_bytes(bad.read_bytes()[:40])                       # truncated PNG
    with pytest.raises(DataError, match=r"seq1/frame1\.png: cannot read the image.*--skip-bad"):
        files.open_dataset(tmp_path, seq_len=2, img_size=8)
    ds = files.open_dataset(tmp_path, seq_len=2, img_size=8, skip_bad=True)
    assert len(ds) == 5 and ds.labels.tolist() == [0, 0, 0, 1, 1]
    assert any("skipped 1 bad sequence" in note and "frame1.png" in note for note in ds.notes)
    assert ds[np.arange(5)].shape == (5, 2, 8, 8)


def test_truncated_npy_and_non_finite_pixels(tmp_path):
    for c in ("a", "b"):
        (tmp_path / c).mkdir()
        np.save(tmp_path / c / "ok.npy", np.zeros((2, 4, 4), np.float32))
    np.save(tmp_path / "a" / "nan.npy", np.full((2, 4, 4), np.nan, np.float32))
    with pytest.raises(DataError, match=r"nan\.npy: non-finite"):
        files.open_dataset(tmp_path, seq_len=2, img_size=4)
    (tmp_path / "a" / "nan.npy").unlink()
    whole = (tmp_path / "b" / "ok.npy").read_bytes()
    (tmp_path / "b" / "cut.npy").write_bytes(whole[:-20])
    with pytest.raises(DataError, match=r"cut\.npy: cannot read the array"):
        files.open_dataset(tmp_path, seq_len=2, img_size=4)
    ds = files.open_dataset(tmp_path, seq_len=2, img_size=4, skip_bad=True)
    assert len(ds) == 2


def test_empty_class_and_single_class_are_errors(tmp_path):
    for c in ("a", "b"):
        (tmp_path / c).mkdir()
    np.save(tmp_path / "a" / "s.npy", np.zeros((2, 4, 4), np.float32))
    with pytest.raises(DataError, match=r"b: empty class folder"):
        files.open_dataset(tmp_path, seq_len=2, img_size=4)
    (tmp_path / "b").rmdir()
    with pytest.raises(DataError, match="only one class"):
        files.open_dataset(tmp_path, seq_len=2, img_size=4)
    with pytest.raises(DataError, match="no such file"):
        files.open_dataset(tmp_path / "missing", seq_len=2, img_size=4)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match="no class folders"):
        files.open_dataset(empty, seq_len=2, img_size=4)


def test_npz_label_errors(tmp_path):
    x = np.zeros((4, 2, 4, 4), np.float32)
    cases = {
        "negative": (dict(labels=np.array([0, 1, -1, 0])), r"out of range: -1 at position 2"),
        "beyond": (dict(labels=np.array([0, 1, 3, 0]), class_names=np.array(["a", "b"])),
                   r"out of range: 3 at position 2.*expected 0\.\.1"),
        "float": (dict(labels=np.array([0.0, 1.0, 0.0, 1.0])), "must be integers"),
        "short": (dict(labels=np.array([0, 1])), r"shape \(4,\)"),
        "gap": (dict(labels=np.array([0, 2, 0, 2])), r"class\(es\) without any sequence: 1"),
        "one": (dict(labels=np.array([0, 0, 0, 0])), "only one class"),
        "nolabels": (dict(), "missing array"),
    }
    for name, (arrays, message) in cases.items():
        np.savez(tmp_path / f"{name}.npz", images=x, **arrays)
        with pytest.raises(DataError, match=message):
            files.open_dataset(tmp_path / f"{name}.npz", seq_len=2, img_size=4)


def test_npz_never_unpickles(tmp_path):
    np.savez(tmp_path / "obj.npz", images=np.array([object()] * 2, dtype=object), labels=np.array([0, 1]))
    with pytest.raises(DataError, match=r"obj\.npz: cannot read 'images'.*allow_pickle"):
        files.open_dataset(tmp_path / "obj.npz", seq_len=2, img_size=4)
    (tmp_path / "broken.npz").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(DataError, match=r"broken\.npz: cannot read"):
        files.open_dataset(tmp_path / "broken.npz", seq_len=2, img_size=4)
    with zipfile.ZipFile(tmp_path / "other.zip", "w") as zf:
        zf.writestr("x.txt", "hello")
    with pytest.raises(DataError, match="expected a folder of class folders or an .npz"):
        files.open_dataset(tmp_path / "other.zip", seq_len=2, img_size=4)


def test_natural_frame_order():
    names = ["f10.png", "f2.png", "f1.png", "g.png"]
    assert sorted(names, key=frames.natural_key) == ["f1.png", "f2.png", "f10.png", "g.png"]
    assert frames.fit_length(np.arange(3), 5).tolist() == [0, 1, 2, 2, 2]
    assert frames.fit_length(np.arange(6), 4).tolist() == [0, 1, 2, 3]
