"""lpm's public functions under plausible user mistakes (a string where a list is taken, float
token ids, uint8 images, mismatched lengths, a column of labels, sizes as floats): each was a
silent wrong answer or a traceback from deep inside (numpy, range()), and is now either converted
as a PyTorch user would expect or refused up front with an error naming the value. Each test
failed before the change it names."""

import numpy as np
import pytest

import gt
from lpm import PixelTransformer, inference
from lpm.caption import evaluate, figures, metrics
from lpm.caption.decoding import GenerationConfig
from lpm.caption.model import create_pixel_llm
from lpm.caption.vocab import SimpleVocabulary
from lpm.data import DataError, make_moving_blobs, stratified_split, train_eval_split
from lpm.data.digits import moving_digits

VOCAB = SimpleVocabulary(["seven two", "one"])      # ids: 4 one, 5 seven, 6 two


# ---- the vocabulary (pure Python: the same in every pass) -----------------------------------------
@pytest.mark.first_pass
@pytest.mark.parametrize("ids", [[1, 4.7, 2], np.array([1.0, 4.0, 2.0]), [[1, 4.0, 2]]])
def test_decode_refuses_float_ids(ids):
    # 4.7 was read as token 4 ('one'): a float array of scores or probabilities decoded silently
    with pytest.raises(TypeError, match="integer token ids, got float64"):
        VOCAB.decode(ids) if np.ndim(ids) == 1 else VOCAB.batch_decode(ids)


@pytest.mark.first_pass
def test_decode_refuses_text_and_still_reads_ints_and_empty():
    with pytest.raises(TypeError, match="takes token ids .*'seven'"):      # was int('seven')'s ValueError
        VOCAB.decode("seven")
    assert VOCAB.decode([]) == "" and VOCAB.decode(np.array([1, 5, 6, 2], np.int32)) == "seven two"
    assert VOCAB.batch_decode(gt.tensor([[1, 4, 2], [1, 5, 0]])) == ["one", "seven"]


@pytest.mark.first_pass
@pytest.mark.parametrize("call", ["encode_batch", "unknown_words"])
def test_encode_batch_and_unknown_words_refuse_one_string(call):
    # each character was read as a caption: "caption 5: empty caption ' '", far from the cause
    with pytest.raises(ValueError, match=f"{call} takes a list of captions, got one string 'seven two'"):
        getattr(VOCAB, call)("seven two")


@pytest.mark.first_pass
@pytest.mark.parametrize("max_len", [5.9, "5"])
def test_encode_batch_max_len_is_an_int(max_len):
    with pytest.raises(ValueError, match=f"max_len must be an int or None, got {max_len!r}"):
        VOCAB.encode_batch(["one"], max_len=max_len)        # int() made 5.9 a width of 5 silently
    assert VOCAB.encode_batch(["one"], max_len=np.int64(4))[0].tolist() == [[1, 4, 2, 0]]


# ---- the caption metrics ---------------------------------------------------------------------------
@pytest.mark.first_pass
def test_metrics_take_one_caption_as_a_string():
    pytest.importorskip("jiwer")
    # as jiwer takes one sentence; each character was read as a caption
    assert metrics.wer("seven two", "seven too") == 0.5
    assert metrics.exact_match("Seven two", ["one", "seven two"]) == 1.0
    assert metrics.exact_match("seven two", "seven too") == 0.0


@pytest.mark.first_pass
def test_metrics_refuse_a_string_of_references_and_non_strings():
    with pytest.raises(TypeError, match="refs is one string 'abc' but preds is a list"):
        metrics.exact_match(["ab", "c", "d"], "abc")          # was 1.0: one reference per character
    with pytest.raises(TypeError, match=r"item 1 holds None \(NoneType\)"):
        metrics.exact_match(["none", None], ["none", "none"])  # None was scored as the word "none"
    with pytest.raises(TypeError, match="most_frequent_caption takes a list of captions, got one string"):
        metrics.most_frequent_caption("one two")              # was 'o', its most frequent character
    assert metrics.exact_match(np.array(["a", "b"]), np.array(["a", "c"])) == 0.5


# ---- caption_images -----------------------------------------------------------------------------
def _llm():
    gt.manual_seed(0)
    return create_pixel_llm(len(VOCAB), image_size=(4, 8), patch_size=(2, 2), vision_embed_dim=8,
                            vision_num_layers=1, vision_num_heads=2, text_embed_dim=8, text_num_layers=1,
                            text_num_heads=2, max_seq_len=3)


@pytest.mark.parametrize("images, config, batch_size, error, words", [
    # uint8 0-255 was cast to float32 0-255 and captioned silently
    (np.full((2, 4, 8), 200, np.uint8), None, 250, TypeError, "floating-point images .* got uint8"),
    # several captions per image failed in decode after all the captioning was done
    (np.zeros((2, 4, 8), np.float32), GenerationConfig(num_beams=2, num_return_sequences=2, max_length=3), 250,
     ValueError, "one caption per image, got num_return_sequences=2"),
    (np.zeros((2, 4, 8), np.float32), None, 0, ValueError, "batch_size must be an int >= 1, got 0"),  # range()'s
])
def test_caption_images_refuses_before_captioning(monkeypatch, images, config, batch_size, error, words):
    model = _llm()
    monkeypatch.setattr(evaluate, "generate_caption", lambda *a, **k: pytest.fail("captioning started"))
    with pytest.raises(error, match=words):
        evaluate.caption_images(model, images, VOCAB, config, batch_size=batch_size)


# ---- predict_proba -------------------------------------------------------------------------------
def test_predict_proba_takes_float64_arrays_as_the_model_does():
    # numpy's default float64 failed deep in the first matmul ("mat1 and mat2 must have the same
    # dtype"), while model(array) itself casts it
    gt.manual_seed(0)
    model = PixelTransformer(img_size=4, embed_dim=8, num_heads=2, num_layers=1, ff_dim=16, num_classes=3,
                             max_seq_len=4)
    x = np.random.default_rng(0).random((3, 2, 4, 4))
    p = inference.predict_proba(model, x, batch_size=2)
    with gt.no_grad():
        logits = model(x.astype(np.float32)).numpy().astype(np.float64)
    expected = np.exp(logits - logits.max(1, keepdims=True))
    np.testing.assert_allclose(p, expected / expected.sum(1, keepdims=True), rtol=1e-6)


def test_pixel_transformer_names_images_without_a_sequence_axis():
    # was "flattened images must have img_size**2 = 16 values, got input of shape (3, 4, 4)"
    model = PixelTransformer(img_size=4, embed_dim=8, num_heads=2, num_layers=1, ff_dim=16, num_classes=3)
    with pytest.raises(ValueError, match=r"got \(3, 4, 4\): images without a sequence axis .*images\[:, None\]"):
        model(np.zeros((3, 4, 4), np.float32))
    assert tuple(model(np.zeros((3, 4, 4), np.float32)[:, None]).shape) == (3, 3)


# ---- the data --------------------------------------------------------------------------------------
@pytest.mark.first_pass
def test_train_eval_split_refuses_images_and_labels_of_other_lengths():
    x, y = np.zeros((8, 2, 4, 4), np.float32), np.arange(8)
    with pytest.raises(ValueError, match="8 images but 3 labels"):     # split silently, mispaired
        train_eval_split(x, y[:3])


@pytest.mark.first_pass
def test_stratified_split_checks_labels_and_eval_split():
    y = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    with pytest.raises(ValueError, match=r"labels must be 1-D .* got shape \(8, 1\)"):
        stratified_split(y[:, None], 0.25)          # gave (2, 1) index arrays
    with pytest.raises(TypeError, match="eval_split must be a number in \\(0, 1\\), got '0.25'"):
        stratified_split(y, "0.25")                 # was '<' not supported between float and str


@pytest.mark.first_pass
@pytest.mark.parametrize("kw, words", [
    (dict(num_samples=2.5), "must be ints, got 2.5, 2, 8"),            # numpy's "expected a sequence of integers"
    (dict(num_samples="8"), "must be ints, got '8', 2, 8"),           # '<' not supported
    (dict(blob_sigma=0), "blob_sigma must be a finite number > 0"),   # NaN pixels (0 / 0), no blob
])
def test_make_moving_blobs_checks_sizes_and_sigma(kw, words):
    with pytest.raises(ValueError, match=words):
        make_moving_blobs(**{**dict(num_samples=4, seq_len=2, img_size=8), **kw})


@pytest.mark.first_pass
@pytest.mark.parametrize("kw, words", [
    (dict(num_samples=0), "num_samples must be an int >= 2 .* got 0"),    # "... on each side of the split, got -1"
    (dict(num_samples=4, seq_len=0), "seq_len must be an int >= 1, got 0"),   # argmax of an empty sequence
])
def test_moving_digits_checks_counts(kw, words):
    sources = (np.zeros((20, 8, 8), np.float32), np.repeat(np.arange(2), 10))
    with pytest.raises(DataError, match=words):
        moving_digits(**{**dict(img_size=16, sources=sources), **kw})


# ---- the Pixel LLM -------------------------------------------------------------------------------
def test_pixel_llm_refuses_an_additive_attention_mask():
    # torch's additive key mask (0 where attended, -inf at padding) was read as "attend everywhere"
    model, images, ids = _llm(), np.zeros((2, 4, 8), np.float32), np.array([[1, 4, 2], [1, 5, 0]])
    additive = np.array([[0, 0, 0], [0, 0, -np.inf]], np.float32)
    with pytest.raises(ValueError, match="attention_mask must hold 1/True at tokens .* got values from -inf to 0"):
        model(images, ids, attention_mask=additive)
    keep = np.array([[1, 1, 1], [1, 1, 0]])
    with gt.no_grad():
        np.testing.assert_array_equal(model(images, ids, attention_mask=keep.astype(np.float32)).numpy(),
                                      model(images, ids, attention_mask=keep.astype(bool)).numpy())


def test_pixel_llm_generate_refuses_non_finite_images():
    # NaN logits decoded as token 0 (<pad>): an empty caption, silently
    images = np.zeros((2, 4, 8), np.float32)
    images[1, 2, 3] = np.nan
    with pytest.raises(ValueError, match="image features are not finite: NaN or inf pixels"):
        _llm().generate(images, max_length=3)


@pytest.mark.first_pass
@pytest.mark.parametrize("read, shape", [("read_images", (4, 8)), ("read_sequences", (2, 4, 4))])
def test_caption_readers_refuse_one_path_string(tmp_path, read, shape):
    # each character was read as a path: "a: no such file"
    from lpm.caption import dataset
    path = str(tmp_path / "a.npy")
    np.save(path, np.zeros(shape, np.float32))
    with pytest.raises(TypeError, match=f"{read}: paths must be a list of paths, got one str"):
        getattr(dataset, read)(path, shape)
    assert getattr(dataset, read)([path], shape)[0].shape == (1, *shape)


# ---- inference and checkpoints -------------------------------------------------------------------
@pytest.mark.first_pass
def test_top_classes_takes_one_row():
    with pytest.raises(ValueError, match=r"one row of probabilities \(C,\), got shape \(2, 3\)"):
        inference.top_classes(np.array([[0.1, 0.5, 0.4], [0.6, 0.3, 0.1]]), 2)   # gave a (2, 3) mix of rows
    np.testing.assert_array_equal(inference.top_classes([0.1, 0.5, 0.4], 2), [1, 2])  # a list: numpy's TypeError


@pytest.mark.first_pass
@pytest.mark.parametrize("read", ["read_checkpoint", "load_trained"])
def test_reading_a_checkpoint_names_a_misspelt_which(tmp_path, read):
    # "lastest" read as a run with no checkpoint ("expected .../lastest.json")
    from lpm import checkpoint
    model = PixelTransformer(img_size=4, embed_dim=8, num_heads=2, num_layers=1, ff_dim=16, num_classes=3)
    checkpoint.save_checkpoint(str(tmp_path), model, None, {"progress": {"epoch": 1, "step": 1}})
    call = checkpoint.read_checkpoint if read == "read_checkpoint" else evaluate.load_trained
    with pytest.raises(ValueError, match=r"which must be one of \('latest', 'best', 'final', 'previous'\), "
                                         "got 'lastest'"):
        call(str(tmp_path), "lastest")


@pytest.mark.parametrize("call", ["attention_over_image", "save_examples"])
def test_caption_figures_refuse_integer_images(tmp_path, monkeypatch, call):
    # uint8 0-255 was cast to float32 0-255 and captioned and drawn silently
    monkeypatch.setattr(figures, "generate_caption", lambda *a, **k: pytest.fail("captioning started"))
    images = np.full((2, 4, 8), 200, np.uint8)
    args = (_llm(), images, VOCAB) if call == "attention_over_image" else (_llm(), VOCAB, images, str(tmp_path / "e.png"))
    with pytest.raises(TypeError, match=f"{call}: expected floating-point images .* got uint8"):
        getattr(figures, call)(*args)


# ---- numpy numbers as decoding options (a sweep over np.linspace / np.arange) ----------------------
def test_generation_options_take_numpy_numbers_as_python_ones():
    # np.float32(0.5) was "temperature must be a finite number > 0, got np.float32(0.5)"; np.True_ was
    # not True or False; np.int64 top_k not an int (num_beams as np.int64 was taken: inconsistent)
    numpy_kw = dict(do_sample=np.True_, temperature=np.float32(0.5), top_k=np.int64(3), top_p=np.float32(0.5),
                    length_penalty=np.float32(1.0), early_stopping=np.False_, max_length=np.int64(3))
    plain_kw = {k: v.item() for k, v in numpy_kw.items()}
    config = GenerationConfig(**numpy_kw)
    assert config == GenerationConfig(**plain_kw) and all(type(getattr(config, k)) is type(v) for k, v in plain_kw.items())
    model, images = _llm(), np.random.default_rng(0).random((2, 4, 8), np.float32)
    gt.manual_seed(1)
    expected = model.generate(images, **plain_kw)
    gt.manual_seed(1)
    np.testing.assert_array_equal(model.generate(images, **numpy_kw), expected)


def test_ppt_generate_takes_numpy_numbers_as_python_ones():
    from lpm import PixelPredictionTransformer
    gt.manual_seed(0)
    model = PixelPredictionTransformer(num_codes=8, tokens_per_image=4, embed_dim=8, num_layers=1, num_heads=2,
                                       ff_dim=16, num_classes=3, patch_size=2)
    numpy_kw = dict(temperature=np.float32(0.5), top_k=np.int64(3), top_p=np.float32(0.5), guidance=np.float32(2.0))
    expected = model.generate_tokens(4, digit=1, seed=3, **{k: v.item() for k, v in numpy_kw.items()})
    np.testing.assert_array_equal(model.generate_tokens(4, digit=1, seed=np.int64(3), **numpy_kw), expected)


# ---- the last token of a PPT forward, seeds, a gt tensor of another dtype --------------------------
@pytest.mark.parametrize("bad", [8, -1])
def test_ppt_forward_checks_the_token_it_does_not_read(bad):
    # the last token is never embedded (row n - 1 predicts it), so an id out of range there passed
    from lpm import PixelPredictionTransformer
    gt.manual_seed(0)
    model = PixelPredictionTransformer(num_codes=8, tokens_per_image=4, embed_dim=8, num_layers=1, num_heads=2,
                                       ff_dim=16, num_classes=3, patch_size=2)
    classes = np.array([1, 3])
    messages = []
    for column in (0, 3):
        tokens = np.zeros((2, 4), np.int64)
        tokens[1, column] = bad
        with pytest.raises(IndexError) as info:
            model(tokens, classes)
        messages.append(str(info.value))
    assert messages[0] == messages[1] == \
        f"embedding: index {bad} is out of range for an embedding table of 8 rows (valid: 0..7)"
    assert tuple(model(np.full((2, 4), 7), classes).shape) == (2, 4, 8)


def _seeded_calls():
    from lpm.caption import tasks
    from lpm.caption.dataset import held_out_split
    from lpm.ppt.codebook import PatchCodebook
    from lpm.ppt.judge import DigitJudge
    sources = (np.zeros((20, 8, 8), np.float32), np.repeat(np.arange(2), 10))
    digits = np.zeros((4, 28, 28), np.float32)
    return {
        "make_moving_blobs": lambda seed: make_moving_blobs(4, 2, 8, seed=seed),
        "train_eval_split": lambda seed: train_eval_split(np.zeros((8, 1, 2, 2)), np.arange(8), seed=seed),
        "stratified_split": lambda seed: stratified_split(np.arange(8) % 2, 0.25, seed=seed),
        "moving_digits": lambda seed: moving_digits(4, 2, 16, sources=sources, seed=seed),
        "held_out_split": lambda seed: held_out_split(list(range(4)), 0.5, seed=seed),
        "digit_strings": lambda seed: tasks.digit_strings("train", 2, seed=seed),
        "PatchCodebook.fit": lambda seed: PatchCodebook.fit(digits, num_codes=2, seed=seed),
        "DigitJudge.fit": lambda seed: DigitJudge.fit(digits, np.arange(4), seed=seed),
    }


@pytest.mark.first_pass
@pytest.mark.parametrize("seed", [-1, 2.5, "3", True])
@pytest.mark.parametrize("fn", ["make_moving_blobs", "train_eval_split", "stratified_split", "moving_digits",
                                "held_out_split", "digit_strings", "PatchCodebook.fit", "DigitJudge.fit"])
def test_seeds_are_checked_by_name(fn, seed):
    # numpy's "expected non-negative integer" named neither; digit_strings took 2.5 as 2 and "3" as 3,
    # scikit-learn's check came after the patches were counted
    with pytest.raises(ValueError, match=rf"^{fn}: seed must be an int (>= 0|in \[0, 4294967295\]).*, got {seed!r}$"):
        _seeded_calls()[fn](seed)


@pytest.mark.first_pass
def test_seeds_are_checked_before_any_work(monkeypatch):
    from lpm.caption import evaluate as caption_evaluate
    from lpm.ppt import data as ppt_data
    monkeypatch.setattr(ppt_data, "load_images", lambda *a: pytest.fail("the digits were read"))
    with pytest.raises(ValueError, match=r"load_tokens: seed must be an int in \[0, 4294967295\], got 4294967296"):
        ppt_data.load_tokens(seed=2**32)
    # the shuffled-images row drew its order after every row was captioned
    monkeypatch.setattr(caption_evaluate, "held_out_images", lambda *a: pytest.fail("captioning started"))
    with pytest.raises(ValueError, match="evaluate_captions: seed must be an int >= 0 or None, got -1"):
        caption_evaluate.evaluate_captions(None, None, VOCAB, None, [], seed=-1)
    assert np.array_equal(make_moving_blobs(4, 2, 8, seed=np.int64(3))[1], make_moving_blobs(4, 2, 8, seed=3)[1])


def test_pixel_transformer_names_the_fix_for_a_tensor_of_another_dtype():
    # was torch's "mat1 and mat2 must have the same dtype, but got Double and Float" from the first
    # Linear; kept an error (as torch's nn.Linear), now naming both dtypes and the conversions
    gt.manual_seed(0)
    model = PixelTransformer(img_size=4, embed_dim=8, num_heads=2, num_layers=1, ff_dim=16, num_classes=3,
                             max_seq_len=4)
    x = np.random.default_rng(0).random((3, 2, 4, 4))
    with pytest.raises(RuntimeError, match=r"images are gt.float64 but the model's weights are gt.float32 .* "
                                           r"images.float\(\), or the model, model.double\(\)$"):
        model(gt.tensor(x))
    # a numpy array is converted to the weights' dtype, float64 too once the model is (was cast to
    # float32 whatever the model's dtype, and refused by the float64 model)
    model.double()
    with gt.no_grad():
        np.testing.assert_array_equal(model(x.astype(np.float32)).numpy(),
                                      model(gt.tensor(x.astype(np.float32).astype(np.float64))).numpy())
        assert model(x).dtype == gt.float64
    with pytest.raises(RuntimeError, match=r"images are gt.float32 but the model's weights are gt.float64"):
        model(gt.tensor(x, dtype=gt.float32))
