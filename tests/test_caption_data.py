"""lpm.caption's data: the vocabulary, the tasks (digit-strings, moving-digits) and the user's own
image-caption pairs (ImageTextDataset, read_images)."""

import collections
import json

import numpy as np
import pytest

from lpm.caption.dataset import ImageTextDataset, held_out_split, read_images
from lpm.caption.tasks import NUMBER_WORDS, TASKS, describe_motion, digit_strings, paste_digits
from lpm.caption.vocab import SimpleVocabulary
from lpm.data import mnist
from lpm.data.base import DataError

pytestmark = pytest.mark.first_pass      # numpy, scikit-learn and Pillow only: no GT_* setting changes the answers


# --- vocabulary ---------------------------------------------------------------------------------

def test_vocabulary_ids_by_frequency_then_alphabet():
    vocab = SimpleVocabulary(["Seven two", "two nine", "NINE two"])
    # two x3, nine x2, seven x1 after the four specials
    assert vocab.words == ["<pad>", "<bos>", "<eos>", "<unk>", "two", "nine", "seven"]
    assert (vocab.pad_id, vocab.bos_id, vocab.eos_id, vocab.unk_id) == (0, 1, 2, 3)
    assert len(vocab) == 7
    assert vocab.encode("seven  TWO\tnine") == [1, 6, 4, 5, 2]
    assert vocab.encode("seven eight", add_special=False) == [6, 3]


def test_min_freq_drops_rare_words():
    vocab = SimpleVocabulary(["a b", "a c", "a b"], min_freq=2)
    assert vocab.words[4:] == ["a", "b"]
    assert vocab.encode("c a") == [1, 3, 4, 2]


def test_encode_batch_pads_and_masks():
    vocab = SimpleVocabulary(["one two three", "one"])
    ids, mask = vocab.encode_batch(["one", "three two one"])
    assert ids.dtype == np.int64 and mask.dtype == bool
    one, two, three = (vocab.word_to_id[w] for w in ("one", "two", "three"))
    np.testing.assert_array_equal(ids, [[1, one, 2, 0, 0], [1, three, two, one, 2]])
    np.testing.assert_array_equal(mask, [[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]])
    ids, mask = vocab.encode_batch(["one"], max_len=6)
    assert ids.shape == mask.shape == (1, 6) and mask.sum() == 3
    with pytest.raises(ValueError, match=r"caption 1 .* 5 tokens .* max_len is 4"):
        vocab.encode_batch(["one", "one two three"], max_len=4)


def test_decode_stops_at_eos_and_skips_specials():
    vocab = SimpleVocabulary(["one two"])
    one, two = vocab.word_to_id["one"], vocab.word_to_id["two"]
    assert vocab.decode([1, two, one, 2, one, 0]) == "two one"
    assert vocab.decode(np.array([1, two, 3, 2])) == "two <unk>"
    assert vocab.decode([1, one, 0, 2], skip_special=False) == "<bos> one <pad>"
    assert vocab.decode(vocab.encode("one two")) == "one two"
    with pytest.raises(ValueError, match="token id 9 is outside the vocabulary of 6"):
        vocab.decode([9])


def test_decode_refuses_several_captions_and_batch_decode_reads_them():
    vocab = SimpleVocabulary(["one two"])
    one, two = vocab.word_to_id["one"], vocab.word_to_id["two"]
    two_captions = np.array([[1, one, 2], [1, two, 2]])        # beam search's (num_return_sequences, L)
    with pytest.raises(ValueError, match=r"one caption .* shape \(2, 3\): use batch_decode"):
        vocab.decode(two_captions)
    with pytest.raises(ValueError, match="one caption"):
        vocab.decode([[1, one, 2], [1, two, 2]])
    assert vocab.batch_decode(two_captions) == ["one", "two"]
    assert vocab.batch_decode([[1, one, two, 2], [two, 2, one]]) == ["one two", "two"]   # lengths may differ
    assert vocab.batch_decode(np.zeros((0, 4), np.int64)) == []
    with pytest.raises(ValueError, match=r"\(N, L\), got an array of shape \(3,\)"):
        vocab.batch_decode(np.array([1, one, 2]))


def test_unknown_words_are_counted():
    vocab = SimpleVocabulary(["one two"])
    assert vocab.unknown_words(["one six six", "seven"]) == collections.Counter({"six": 2, "seven": 1})
    assert vocab.unknown_words(["two one"]) == collections.Counter()


@pytest.mark.parametrize("texts, message", [(["one", "  "], "caption 1: empty caption"),
                                            (["one", None], "caption 1: a caption must be a string"),
                                            ("one two", "a list of captions, got one string")])
def test_bad_captions_are_one_clear_error(texts, message):
    with pytest.raises(ValueError, match=message):
        SimpleVocabulary(texts)
    with pytest.raises(ValueError, match="empty caption"):
        SimpleVocabulary(["one"]).encode("")


def test_json_round_trip():
    vocab = SimpleVocabulary(["b a", "a c"], min_freq=1)
    back = SimpleVocabulary.from_json(vocab.to_json())
    assert back.words == vocab.words and back.min_freq == 1
    assert back.encode("c b a") == vocab.encode("c b a")
    with pytest.raises(ValueError, match="not a stored vocabulary"):
        SimpleVocabulary.from_json('{"words": ["a"], "min_freq": 1}')
    with pytest.raises(ValueError, match="not a stored vocabulary"):
        SimpleVocabulary.from_json("[1, 2")


# --- digit-strings --------------------------------------------------------------------------------

def paste_by_hand(digits, shifts):
    """The canvas of ``digits`` (28x28 each) at x = 28 * i + shift, one pixel at a time."""
    canvas = np.zeros((28, 112), np.float32)
    for i, (digit, shift) in enumerate(zip(digits, shifts)):
        for x in range(28):
            column = 28 * i + shift + x
            if 0 <= column < 112:
                canvas[:, column] = np.maximum(canvas[:, column], digit[:, x])
    return canvas


def test_paste_digits_against_pasting_by_hand():
    rng = np.random.default_rng(0)
    digits = rng.random((6, 4, 28, 28)).astype(np.float32)
    counts = np.array([1, 2, 3, 4, 4, 4])
    shifts = rng.integers(-4, 5, size=(6, 4))
    shifts[4], shifts[5] = [-4, 4, -4, 4], [4, -4, 4, -4]     # clipped at both ends; overlapping neighbours
    got = paste_digits(digits, counts, shifts)
    assert got.shape == (6, 28, 112) and got.dtype == np.float32
    for k in range(6):
        np.testing.assert_array_equal(got[k], paste_by_hand(digits[k, :counts[k]], shifts[k]))


def test_digit_strings_canvases_show_their_captions_digits_from_their_split():
    data = digit_strings("test", 80, seed=3)
    images, captions = data.batch(np.arange(80))
    assert images.shape == (80, 28, 112) and images.dtype == np.float32 and data.image_shape == (28, 112)
    assert 0.0 <= images.min() and images.max() <= 1.0
    assert {len(c.split()) for c in captions} == {1, 2, 3, 4}
    assert all(w in NUMBER_WORDS for c in captions for w in c.split())
    pool, labels = mnist.load("test")
    singles = [k for k, c in enumerate(captions) if " " not in c]
    assert len(singles) >= 5
    for k in singles:           # one digit: the canvas is a held-out digit of that class at some shift
        candidates = pool[labels == NUMBER_WORDS.index(captions[k])]
        assert any(np.any(np.all(shifted(candidates, s) == images[k], axis=(1, 2))) for s in range(-4, 5))


def shifted(digits, shift):
    """Canvases (n, 28, 112) with each digit at x = shift, cut at the canvas's left edge."""
    out = np.zeros((len(digits), 28, 112), np.float32)
    out[:, :, max(0, shift):28 + shift] = digits[:, :, max(0, -shift):]
    return out


def test_digit_strings_repeat_with_a_seed_and_the_task_splits():
    a, b = digit_strings("train", 40, seed=1), digit_strings("train", 40, seed=1)
    np.testing.assert_array_equal(a.batch(range(40))[0], b.batch(range(40))[0])
    assert a.captions == b.captions
    assert a.captions != digit_strings("train", 40, seed=2).captions
    train, held_out = TASKS["digit-strings"](30, 20, seed=0)
    assert (len(train), len(held_out)) == (30, 20)
    assert train.captions == digit_strings("train", 30, 0).captions
    assert held_out.captions == digit_strings("test", 20, 0).captions


def test_digit_strings_bad_arguments():
    with pytest.raises(ValueError, match="split must be 'train' or 'test'.*'held-out'"):
        digit_strings("held-out", 4)
    with pytest.raises(ValueError, match="num_samples must be a positive integer, got 0"):
        digit_strings("train", 0)


# --- the user's own pairs (ImageTextDataset) and the images to caption (read_images) ---------------

def write_pairs(folder, entries, name="pairs.json"):
    path = folder / name
    path.write_text(json.dumps(entries))
    return path


@pytest.fixture
def image_files(tmp_path):
    """A 4x6 8-bit .png, a 4x6 float .npy and a 4x6 uint16 .npy in tmp_path/images; their expected pixels."""
    from PIL import Image

    folder = tmp_path / "images"
    folder.mkdir()
    png = np.arange(24, dtype=np.uint8).reshape(4, 6) * 10
    Image.fromarray(png).save(folder / "a.png")
    floats = np.linspace(0, 1, 24, dtype=np.float32).reshape(4, 6)
    np.save(folder / "b.npy", floats)
    np.save(folder / "c.npy", np.full((4, 6), 65535, np.uint16))
    return {"a.png": png / np.float32(255), "b.npy": floats, "c.npy": np.ones((4, 6), np.float32)}


def test_image_text_dataset_reads_pngs_and_arrays(tmp_path, image_files):
    path = write_pairs(tmp_path, [{"image": "a.png", "caption": "one two"},
                                  {"image": "b.npy", "caption": "Three"},
                                  {"image": str(tmp_path / "images" / "c.npy"), "caption": "four"}])
    pairs = ImageTextDataset(path, image_root=tmp_path / "images")
    assert len(pairs) == 3 and pairs.image_shape == (4, 6)
    images, captions = pairs.batch([2, 0])
    assert images.dtype == np.float32 and captions == ["four", "one two"]
    np.testing.assert_allclose(images[1], image_files["a.png"], rtol=0, atol=1e-7)
    np.testing.assert_allclose(pairs.batch([1])[0][0], image_files["b.npy"])
    np.testing.assert_array_equal(images[0], image_files["c.npy"])
    train, held_out = held_out_split(pairs, fraction=0.34, seed=0)
    assert (len(train), len(held_out)) == (2, 1)
    assert sorted(train.captions + held_out.captions) == sorted(pairs.captions)
    assert held_out_split(pairs, fraction=0.34, seed=0)[1].captions == held_out.captions


def test_image_root_defaults_to_the_json_files_folder(tmp_path, image_files):
    path = write_pairs(tmp_path / "images", [{"image": "b.npy", "caption": "x"}, {"image": "c.npy", "caption": "y"}])
    assert ImageTextDataset(path, image_size=(4, 6)).captions == ["x", "y"]


@pytest.mark.parametrize("entries, message", [
    ({"image": "a.png", "caption": "x"}, "expected a JSON list .* got dict"),
    ([], "got an empty list"),
    ([{"image": "a.png"}], "entry 0: missing key\\(s\\) 'caption'"),
    ([{"image": "a.png", "caption": "x"}, "b.npy"], "entry 1: a str; each entry is"),
    ([{"image": "a.png", "caption": "x"}, {"image": "gone.png", "caption": "y"}], "entry 1 .*gone.png\\): no such image"),
    ([{"image": "a.png", "caption": "x"}, {"image": "b.npy", "caption": "  "}], "entry 1 .*b.npy\\): empty caption"),
    ([{"image": "a.png", "caption": "x"}, {"image": "wide.npy", "caption": "y"}],
     "entry 1 .*wide.npy\\): image of shape \\(4, 7\\); expected \\(4, 6\\) \\(the size of entry 0's image\\)"),
    ([{"image": "bad.png", "caption": "x"}], "entry 0 .*bad.png\\): cannot read the image"),
    ([{"image": "cut.npy", "caption": "x"}], "entry 0 .*cut.npy\\): cannot read the array"),
    ([{"image": "a.txt", "caption": "x"}], "entry 0 .*a.txt\\): expected an image file"),
    ([{"image": "batch.npy", "caption": "x"}], "must be 2-D \\(H, W\\), got an array of shape \\(2, 4, 6\\)"),
])
def test_bad_pairs_are_one_clear_error(tmp_path, image_files, entries, message):
    folder = tmp_path / "images"
    np.save(folder / "wide.npy", np.zeros((4, 7), np.float32))
    np.save(folder / "batch.npy", np.zeros((2, 4, 6), np.float32))
    (folder / "bad.png").write_bytes(b"not a png")
    (folder / "cut.npy").write_bytes((folder / "b.npy").read_bytes()[:100])
    (folder / "a.txt").write_text("x")
    with pytest.raises(DataError, match=message):
        ImageTextDataset(write_pairs(folder, entries))


def test_bad_json_files_and_sizes(tmp_path, image_files):
    with pytest.raises(DataError, match="no such file"):
        ImageTextDataset(tmp_path / "missing.json")
    (tmp_path / "broken.json").write_text("[{")
    with pytest.raises(DataError, match="broken.json: cannot read the JSON"):
        ImageTextDataset(tmp_path / "broken.json")
    path = write_pairs(tmp_path / "images", [{"image": "b.npy", "caption": "x"}])
    with pytest.raises(DataError, match="image of shape \\(4, 6\\); expected \\(5, 5\\) \\(image_size=\\(5, 5\\)\\)"):
        ImageTextDataset(path, image_size=5)
    with pytest.raises(DataError, match="--image-root .*nowhere: no such folder"):
        ImageTextDataset(path, image_root=tmp_path / "nowhere")
    with pytest.raises(DataError, match="at least 2 pairs"):
        held_out_split(ImageTextDataset(path))


def test_read_images_takes_images_and_batches(tmp_path, image_files):
    folder = tmp_path / "images"
    batch = np.random.default_rng(0).random((3, 4, 6)).astype(np.float32)
    np.save(folder / "batch.npy", batch)
    files = [folder / "a.png", folder / "batch.npy", folder / "b.npy"]
    images, sources = read_images(files, (4, 6))
    assert images.shape == (5, 4, 6) and images.dtype == np.float32
    assert sources == [(str(files[0]), 0), (str(files[1]), 0), (str(files[1]), 1), (str(files[1]), 2),
                       (str(files[2]), 0)]
    np.testing.assert_array_equal(images[1:4], batch)
    np.testing.assert_allclose(images[0], image_files["a.png"], atol=1e-7)
    np.save(folder / "wrong.npy", np.zeros((2, 28, 100), np.float32))
    with pytest.raises(DataError, match=r"wrong.npy: shape \(2, 28, 100\); expected an image \(28, 112\) "
                                        r"or a batch \(N, 28, 112\)"):
        read_images([folder / "wrong.npy"], (28, 112))
    with pytest.raises(DataError, match="gone.npy: no such file"):
        read_images([folder / "gone.npy"], (4, 6))


# --- moving-digits --------------------------------------------------------------------------------

def test_describe_motion_names_the_first_leg_as_drawn():
    path = lambda *rows_cols: np.array(rows_cols)          # (S, 2): (row, column) per frame
    positions = np.stack([
        path((5, 5), (4, 6), (3, 7), (2, 8)),              # rows fall: up; columns rise: right
        path((0, 9), (1, 8), (2, 7), (1, 6)),              # down, left; the bounce back up is the second leg
        path((3, 3), (3, 3), (3, 2), (3, 1)),              # no row change: left only
        path((3, 3), (3, 3), (4, 3), (5, 3)),              # down only, after two still frames
        path((2, 2), (2, 2), (2, 2), (2, 2)),              # never moves
    ])
    assert describe_motion(positions, [7, 8, 0, 3, 2]) == [
        "a seven moving up and right", "an eight moving down and left", "a zero moving left",
        "a three moving down", "a two standing still"]


def test_moving_digits_captions_follow_the_sequences():
    train, held_out = TASKS["moving-digits"](24, 8, seed=1, seq_len=4, img_size=40)
    assert (len(train), len(held_out)) == (24, 8)
    assert train.image_shape == held_out.image_shape == (4, 40, 40)
    frames, captions = held_out.batch([0, 3])
    assert frames.shape == (2, 4, 40, 40) and frames.dtype == np.float32
    assert captions == [held_out.captions[0], held_out.captions[3]]
    for data in (train, held_out):
        for caption, label, pos in zip(data.captions, data.images.labels, data.images.positions):
            words = caption.split()
            assert words[1] == NUMBER_WORDS[label]
            # where a digit moves monotonically by 2+ pixels on both axes, the caption says which way
            steps = np.diff(pos, axis=0)
            if (np.abs(pos[-1] - pos[0]) >= 2).all() and (steps * np.sign(pos[-1] - pos[0]) >= 0).all():
                expected = ("up" if pos[-1, 0] < pos[0, 0] else "down", "left" if pos[-1, 1] < pos[0, 1] else "right")
                assert words[3:] == [expected[0], "and", expected[1]], (caption, pos)
    # the held-out sequences show only held-out scans
    assert not set(train.images.sources.ravel().tolist()) & set(held_out.images.sources.ravel().tolist())
    again = TASKS["moving-digits"](24, 8, seed=1, seq_len=4, img_size=40)
    assert again[1].captions == held_out.captions
    np.testing.assert_array_equal(again[1].batch([0, 1])[0], held_out.batch([0, 1])[0])


@pytest.mark.parametrize("task", ["digit-strings", "moving-digits"])
def test_task_sizes_must_be_positive(task):
    with pytest.raises(ValueError, match="val_samples must be a positive integer, got 0"):
        TASKS[task](4, 0)
    with pytest.raises(ValueError, match="samples must be a positive integer, got -1"):
        TASKS[task](-1, 4)
