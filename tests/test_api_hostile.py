"""lpm's Python API under a hostile notebook user: bad constructor arguments, inputs, configs and
paths are refused up front with an error naming the value and what was expected, never a
traceback from deep inside, a silent wrong answer, or work started (data read, files written).
Each test failed before the checks it names were added."""

import dataclasses
import json
import os

import numpy as np
import pytest

import gt
from lpm import PixelPredictionTransformer, PixelTransformer, inference
from lpm import train as train_mod
from lpm.caption import train as caption_train
from lpm.caption.model import create_pixel_llm
from lpm.checkpoint import CheckpointError, save_checkpoint
from lpm.config import TrainConfig, check_config, check_start
from lpm.data import DataError
from lpm.outputs import OutputError
from lpm.ppt import train as ppt_train

SMALL = dict(samples=8, seq_len=2, img_size=8, embed_dim=8, num_heads=2, ff_dim=8, epochs=1, batch_size=4)


def tiny(**kw):
    return PixelTransformer(**{**dict(img_size=4, embed_dim=8, num_heads=2, num_layers=1, ff_dim=16, num_classes=3,
                                      max_seq_len=4), **kw})


def tiny_ppt(**kw):
    return PixelPredictionTransformer(**{**dict(num_codes=8, tokens_per_image=4, embed_dim=8, num_layers=1,
                                                num_heads=2, ff_dim=16, num_classes=3, patch_size=2), **kw})


def tiny_llm():
    return create_pixel_llm(10, image_size=(4, 8), patch_size=(2, 2), vision_embed_dim=8, vision_num_layers=1,
                            vision_num_heads=2, text_embed_dim=8, text_num_layers=1, text_num_heads=2, max_seq_len=6)


def images(*shape):
    return np.random.default_rng(0).random(shape).astype(np.float32)


@pytest.fixture
def no_data(monkeypatch):
    """Fail the test if a run reads its data: every refusal must come before."""
    def fail(*a, **k):
        pytest.fail("the data was loaded before the refusal")
    monkeypatch.setattr(train_mod, "load_data", fail)
    monkeypatch.setattr(ppt_train, "load_tokens", fail)
    monkeypatch.setattr(caption_train, "prepare", fail)
    monkeypatch.setattr(caption_train, "missing_packages", lambda: [])


# ---- lpm.train.train: every option checked before any work --------------------------------------
@pytest.mark.parametrize("override, kind, words", [
    (dict(batch_size=0), ValueError, "--batch-size must be >= 1, got 0"),          # was ZeroDivisionError
    (dict(epochs=0), ValueError, "--epochs must be >= 1, got 0"),                   # was a run of no epoch
    (dict(lr=0.0), ValueError, "--lr must be a positive number, got 0.0"),          # was a run that learnt nothing
    (dict(optimizer="lbfgs"), ValueError, "--optimizer must be one of 'sgd', 'adam', 'adamw', got 'lbfgs'"),  # SGD
    (dict(loss="nll"), ValueError, "--loss must be one of 'mse', 'ce', got 'nll'"),  # was mse, silently
    (dict(optimizer="adam", momentum=0.5), ValueError, "--momentum applies to --optimizer sgd only"),  # ignored
    (dict(weight_decay=float("nan")), ValueError, "--weight-decay must be >= 0, got nan"),
    (dict(seed=2**40), ValueError, "--seed must be in [0, 4294967295]"),
    (dict(pool="none"), ValueError, "--pool must be one of 'mean', 'cls', got 'none'"),   # failed in the loss
    (dict(save_every=-1), ValueError, "--save-every must be >= 0, got -1"),
    (dict(resume=True), ValueError, "--resume needs --checkpoint-dir"),                   # was ignored
    (dict(batch_size=True), TypeError, "TrainConfig.batch_size) must be an int, got True"),   # was a batch of 1
    (dict(batch_size="4"), TypeError, "TrainConfig.batch_size) must be an int, got '4'"),
    (dict(lr="0.1"), TypeError, "TrainConfig.lr) must be a number or None, got '0.1'"),
    (dict(shard="no"), TypeError, "TrainConfig.shard) must be True or False, got 'no'"),
    (dict(plot=3), TypeError, "TrainConfig.plot) must be a path (str) or None, got 3"),
])
def test_train_refuses_bad_options_before_any_work(no_data, override, kind, words):
    with pytest.raises(kind) as info:
        train_mod.train(TrainConfig(**{**SMALL, **override}), log=lambda line: pytest.fail(f"logged {line!r}"))
    assert words in str(info.value) and str(info.value).startswith("TrainConfig: ")


def test_check_config_tells_types_first_and_alone():
    assert check_config(TrainConfig(batch_size="4", epochs=0)) == [
        "--batch-size (TrainConfig.batch_size) must be an int, got '4'"]
    assert check_config(TrainConfig(autocast="bfloat16")) == []     # choices default to None stay fine


# numpy's numbers where a Python int or float is taken (torch's modules take np.int64(8) too), made
# Python numbers so that the JSON files a run writes hold plain ones; they were refused as the wrong type
def test_configs_take_numpy_numbers_as_python_numbers():
    cfg = TrainConfig(**{**SMALL, "batch_size": np.int64(4), "lr": np.float32(0.5), "noise": np.float64(0.25),
                         "seed": np.uint32(3), "save_every_minutes": np.int8(0)})
    assert check_config(cfg) == []
    assert [type(v) for v in (cfg.batch_size, cfg.lr, cfg.noise, cfg.seed, cfg.save_every_minutes)] == \
        [int, float, float, int, int]
    assert (cfg.batch_size, cfg.lr, cfg.seed) == (4, float(np.float32(0.5)), 3)
    check_start(cfg)
    json.dumps(dataclasses.asdict(cfg))
    ppt = ppt_train.PPTTrainConfig(limit=np.int64(20), codes=np.int16(8), lr=np.float32(0.01), threads=np.int64(2),
                                   uncond_prob=np.float16(0.5))
    ppt_train.check_start(ppt)
    assert (type(ppt.limit), type(ppt.codes), type(ppt.lr), ppt.threads, type(ppt.uncond_prob)) == \
        (int, int, float, 2, float)
    json.dumps(dataclasses.asdict(ppt))
    cap = caption_train.CaptionTrainConfig(steps=np.int64(3), lr=np.float32(1e-3), blind_fraction=np.float32(0.5),
                                           seed=np.int32(1))
    assert caption_train.option_problems(cap) == []
    assert [type(v) for v in (cap.steps, cap.lr, cap.blind_fraction, cap.seed)] == [int, float, float, int]
    json.dumps(dataclasses.asdict(cap))


def test_type_problems_only_checks_and_plain_numbers_converts():
    from lpm.options import plain_numbers, type_problems

    cfg = TrainConfig(batch_size=np.int64(4), lr=np.float32(0.5), epochs=np.float64(2))
    assert type_problems(cfg) == ["--epochs (TrainConfig.epochs) must be an int or None, got np.float64(2.0)"]
    assert (type(cfg.batch_size), type(cfg.lr)) == (np.int64, np.float32)     # checking leaves cfg as it is
    assert plain_numbers(cfg) is cfg
    assert (type(cfg.batch_size), type(cfg.lr), type(cfg.epochs)) == (int, float, np.float64)


@pytest.mark.parametrize("make, kind, words", [
    (lambda: TrainConfig(**{**SMALL, "batch_size": np.bool_(True)}), TypeError,
     f"TrainConfig: --batch-size (TrainConfig.batch_size) must be an int, got {np.bool_(True)!r}"),
    (lambda: TrainConfig(**{**SMALL, "epochs": np.float32(2)}), TypeError,
     f"(TrainConfig.epochs) must be an int or None, got {np.float32(2)!r}"),
    (lambda: TrainConfig(**{**SMALL, "lr": np.float32("inf")}), ValueError, "--lr must be a positive number, got inf"),
    (lambda: TrainConfig(**{**SMALL, "noise": np.float64("nan")}), ValueError, "--noise must be in [0, 1), got nan"),
    (lambda: ppt_train.PPTTrainConfig(limit=20, epochs=np.bool_(True)), TypeError,
     f"PPTTrainConfig: --epochs (PPTTrainConfig.epochs) must be an int, got {np.bool_(True)!r}"),
    (lambda: ppt_train.PPTTrainConfig(limit=20, lr=np.float32("nan")), ValueError, "--lr must be a positive number"),
    (lambda: caption_train.CaptionTrainConfig(steps=np.float64(3)), TypeError,
     "CaptionTrainConfig: --steps (CaptionTrainConfig.steps) must be an int or None, got np.float64(3.0)"),
    (lambda: caption_train.CaptionTrainConfig(weight_decay=np.float32("inf")), ValueError,
     "--weight-decay must be >= 0, got inf"),
])
def test_configs_refuse_numpy_bools_as_counts_and_non_finite_numbers(no_data, make, kind, words):
    cfg = make()
    train = {TrainConfig: train_mod.train, ppt_train.PPTTrainConfig: ppt_train.train}.get(type(cfg), caption_train.train)
    with pytest.raises(kind) as info:
        train(cfg, log=lambda line: pytest.fail(f"logged {line!r}"))
    assert words in str(info.value)


def test_a_refused_config_has_its_types_checked_once(no_data, monkeypatch):
    import lpm.options as options

    calls = []
    real = options.type_problems
    monkeypatch.setattr(options, "type_problems", lambda cfg, paths=(): calls.append(cfg) or real(cfg, paths))
    for train, cfg, kind in ((train_mod.train, TrainConfig(batch_size="4"), TypeError),
                             (train_mod.train, TrainConfig(batch_size=0), ValueError),
                             (ppt_train.train, ppt_train.PPTTrainConfig(batch_size="4"), TypeError),
                             (ppt_train.train, ppt_train.PPTTrainConfig(batch_size=0), ValueError),
                             (caption_train.train, caption_train.CaptionTrainConfig(steps="4"), TypeError),
                             (caption_train.train, caption_train.CaptionTrainConfig(steps=0), ValueError)):
        calls.clear()
        with pytest.raises(kind, match=f"^{type(cfg).__name__}: --"):
            train(cfg, log=lambda line: None)
        assert calls == [cfg]


def test_the_train_commands_check_once(monkeypatch, tmp_path):
    """``lpm ppt train`` and ``lpm caption train`` check their options and folders, then train
    without ``train()``'s checks of the same (each was made twice)."""
    import lpm.options as options
    from lpm.caption import cli as caption_cli
    from lpm.ppt import cli as ppt_cli

    calls = []

    def count(name, *modules):
        real = getattr(modules[0], name)
        for module in modules:
            monkeypatch.setattr(module, name, lambda *a, **k: calls.append(name) or real(*a, **k))

    count("type_problems", options, ppt_train, caption_train)
    count("start_problems", ppt_train, ppt_cli)
    count("start_problems", caption_train, caption_cli)
    monkeypatch.setattr(ppt_train, "_train", lambda cfg, log: calls.append("run"))
    assert ppt_cli.main(["train", "--limit", "20", "--checkpoint-dir", str(tmp_path / "ppt"), "--no-progress"]) == 0
    assert calls == ["type_problems", "start_problems", "run"]

    def run(cfg, log):
        calls.append("run")
        raise KeyboardInterrupt
    calls.clear()
    monkeypatch.setattr(caption_cli, "missing_packages", lambda: [])
    monkeypatch.setattr(caption_train, "prepare", run)
    assert caption_cli.main(["train", "--steps", "1", "--checkpoint-dir", str(tmp_path / "cap"), "--no-progress"]) == 130
    assert calls == ["type_problems", "start_problems", "run"]


def test_train_refuses_a_config_that_is_not_a_trainconfig(no_data):
    with pytest.raises(TypeError, match="cfg must be an lpm.config.TrainConfig, got dict"):   # was AttributeError
        train_mod.train({"epochs": 1})


def test_train_refuses_a_folder_holding_a_run_before_loading_data(no_data, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "latest.json").write_text(json.dumps({"checkpoint": "epoch0001-step00000002"}))
    (run / "epoch0001-step00000002").mkdir()
    (run / "epoch0001-step00000002" / "checkpoint.json").write_text("{}")
    before = sorted(os.listdir(run))
    with pytest.raises(CheckpointError, match="already holds a run .* pass --resume"):
        train_mod.train(TrainConfig(**SMALL, checkpoint_dir=str(run)), log=lambda line: None)
    assert sorted(os.listdir(run)) == before


def test_train_refuses_user_latest_json_and_keeps_it(no_data, tmp_path):
    (tmp_path / "latest.json").write_text("my notes")
    with pytest.raises(CheckpointError, match="latest.json is not a valid checkpoint pointer"):
        train_mod.train(TrainConfig(**SMALL, checkpoint_dir=str(tmp_path)), log=lambda line: None)
    assert (tmp_path / "latest.json").read_text() == "my notes"


@pytest.mark.parametrize("train_labels, eval_labels, eval_n, words", [
    (np.arange(8) % 4, np.array([0, 9]), 2, "eval_labels must lie in [0, 4) (4 classes), got 0..9"),
    (np.arange(5) % 4, np.array([0, 1]), 2, "train_labels must be 8 integer class indices (one per sequence), got "
                                            "int64 of shape (5,)"),      # was a silent run on 5 of 8 sequences
    (np.arange(8) % 4 * 1.0, np.array([0, 1]), 2, "train_labels must be 8 integer class indices"),
    (np.arange(8) % 4, np.zeros(0, np.int64), 0, "no held-out sequences"),   # was ZeroDivisionError after training
])
def test_train_checks_data_given_before_training(train_labels, eval_labels, eval_n, words):
    data = ((images(8, 2, 8, 8), train_labels), (images(eval_n, 2, 8, 8), eval_labels))
    with pytest.raises(DataError) as info:
        train_mod.train(TrainConfig(**SMALL), log=lambda line: pytest.fail(f"logged {line!r}"), data=data)
    assert words in str(info.value)


def test_train_checks_data_image_size():
    data = ((images(8, 2, 6, 6), np.arange(8) % 4), (images(2, 2, 6, 6), np.array([0, 1])))
    with pytest.raises(DataError, match=r"train_images must have shape \(N, seq_len, 8, 8\), got \(8, 2, 6, 6\)"):
        train_mod.train(TrainConfig(**SMALL), log=lambda line: pytest.fail(f"logged {line!r}"), data=data)


# ---- lpm.ppt.train.train and lpm.caption.train.train --------------------------------------------
@pytest.mark.parametrize("override, kind, words", [
    (dict(uncond_prob=2.0), ValueError, "--uncond-prob must be in [0, 1), got 2.0"),   # trained silently
    (dict(resume=True), ValueError, "--resume needs --checkpoint-dir"),                # ignored
    (dict(batch_size=0), ValueError, "--batch-size must be >= 1, got 0"),              # ZeroDivisionError
    (dict(optimizer="lbfgs"), ValueError, "--optimizer must be one of ('adamw', 'sgd'), got 'lbfgs'"),  # KeyError
    (dict(threads="x"), ValueError, "--threads must be a positive integer or 'auto', got 'x'"),
    (dict(batch_size="4"), TypeError, "PPTTrainConfig: --batch-size (PPTTrainConfig.batch_size) must be an int, got '4'"),
])
def test_ppt_train_refuses_bad_options_before_any_work(no_data, override, kind, words):
    with pytest.raises(kind) as info:
        ppt_train.train(ppt_train.PPTTrainConfig(limit=20, epochs=1, **override), log=lambda line: None)
    assert words in str(info.value)


def test_ppt_train_refuses_a_file_as_checkpoint_dir(no_data, tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("mine")
    with pytest.raises(OutputError, match="is a file, not a folder"):      # was FileExistsError after MNIST
        ppt_train.train(ppt_train.PPTTrainConfig(limit=20, checkpoint_dir=str(path)), log=lambda line: None)
    assert path.read_text() == "mine"


def test_ppt_train_checks_its_codebook_and_resume_from_before_any_work(no_data, tmp_path):
    # as `lpm ppt train` refuses them; the Python API read MNIST (and fitted a codebook) first
    folder = tmp_path / "codebook"
    folder.mkdir()
    with pytest.raises(DataError, match="--codebook .*a folder, not a codebook file"):
        ppt_train.train(ppt_train.PPTTrainConfig(limit=20, codebook=str(folder)), log=lambda line: None)
    with pytest.raises(CheckpointError, match="--resume-from .*no such file or folder"):
        ppt_train.train(ppt_train.PPTTrainConfig(limit=20, resume_from=str(tmp_path / "none")), log=lambda line: None)


@pytest.mark.parametrize("override, words", [
    (dict(task="bogus"), "--task must be one of digit-strings, moving-digits, got 'bogus'"),   # was KeyError
    (dict(num_beams=0), "--num-beams must be >= 1, got 0"),          # failed after the whole training
    (dict(steps=0), "--steps must be >= 1, got 0"),
    (dict(resume=True), "--resume needs --checkpoint-dir"),
])
def test_caption_train_refuses_bad_options_before_any_work(no_data, override, words):
    with pytest.raises(ValueError) as info:
        caption_train.train(caption_train.CaptionTrainConfig(**override), log=lambda line: None)
    assert words in str(info.value)


def test_caption_train_refuses_a_file_as_checkpoint_dir(no_data, tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("mine")
    with pytest.raises(OutputError, match="is a file, not a folder"):    # was found after training
        caption_train.train(caption_train.CaptionTrainConfig(checkpoint_dir=str(path)), log=lambda line: None)
    assert path.read_text() == "mine"


def test_caption_train_checks_resume_from_before_any_work(no_data, tmp_path):
    with pytest.raises(CheckpointError, match="--resume-from .*no such file or folder"):   # was after the data
        caption_train.train(caption_train.CaptionTrainConfig(resume_from=str(tmp_path / "none")), log=lambda line: None)


# ---- lpm.inference -------------------------------------------------------------------------------
def test_predict_proba_refuses_bad_batch_sizes_and_models():
    model = tiny()
    with pytest.raises(ValueError, match="batch_size must be an int >= 1, got -1"):      # was an empty answer
        inference.predict_proba(model, images(3, 2, 4, 4), -1)
    with pytest.raises(ValueError, match="batch_size must be an int >= 1, got 0"):       # was range()'s error
        inference.predict_proba(model, images(3, 2, 4, 4), 0)
    for features in (tiny(head=None), tiny(pool="none")):       # softmax over features: a silent wrong answer
        with pytest.raises(ValueError, match="the model gives features, not class scores"):
            inference.predict_proba(features, images(3, 2, 4, 4))
    with pytest.raises(TypeError, match="expected a PixelTransformer classifier.*got PixelPredictionTransformer"):
        inference.predict_proba(tiny_ppt(), images(3, 2, 4, 4))


def test_predict_proba_takes_a_list_of_sequences():
    model, x = tiny(), images(3, 2, 4, 4)
    np.testing.assert_array_equal(inference.predict_proba(model, list(x)), inference.predict_proba(model, x))


def test_predict_labels_and_confusion_matrix_check_labels():
    model = tiny()
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 3\) \(3 classes\), got -1..1"):   # was wrapped
        inference.predict_labels(model, images(3, 2, 4, 4), [0, 1, -1])
    with pytest.raises(ValueError, match=r"labels must be 3 integer class indices, got int64 of shape \(2,\)"):
        inference.predict_labels(model, images(3, 2, 4, 4), [0, 1])
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 3\)"):        # was counted in row 2, silently
        inference.confusion_matrix([0, -1], [0, 1], 3)
    with pytest.raises(ValueError, match=r"predictions must be 3 integer class indices"):
        inference.confusion_matrix([0, 1, 2], [0, 1], 3)
    assert inference.confusion_matrix([0, 1], [1, 1], 2).tolist() == [[0, 1], [0, 1]]


def test_top_classes_k():
    assert inference.top_classes(np.array([0.2, 0.8]), 0).tolist() == []      # was numpy's kth error
    with pytest.raises(ValueError, match="k must be an int >= 0, got -1"):
        inference.top_classes(np.array([0.2, 0.5, 0.3]), -1)


def test_load_model_and_read_inputs_check_their_arguments(tmp_path):
    with pytest.raises(TypeError, match="load_model: path must be a checkpoint or run folder"):
        inference.load_model(None)
    with pytest.raises(ValueError, match="which must be one of .*got 'bogus'"):
        inference.load_model(str(tmp_path), which="bogus")
    with pytest.raises(TypeError, match="paths must be a list of paths, got one str"):   # read as 'c', 'l', ...
        inference.read_inputs("clip.npy", 2, 4)


def test_save_checkpoint_into_a_file(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("mine")
    with pytest.raises(CheckpointError, match="it is a file, not a folder"):    # was FileExistsError
        save_checkpoint(str(path), tiny(), None, {"progress": {"epoch": 0, "step": 0}})
    assert path.read_text() == "mine"


# ---- the models ----------------------------------------------------------------------------------
def test_numpy_integer_sizes_are_ints():
    model = tiny(img_size=np.int64(4), embed_dim=np.int32(8))       # torch's modules take numpy ints
    assert type(model.config.img_size) is int and type(model.config.embed_dim) is int
    assert model(images(1, 2, 4, 4)).shape == (1, 3)
    ppt = tiny_ppt(num_codes=np.int64(8))
    assert type(ppt.config.num_codes) is int
    json.dumps({"a": model.config.__dict__, "b": ppt.config.__dict__})      # checkpoints store them as JSON
    llm = create_pixel_llm(np.int64(10))
    assert type(llm.config.vocab_size) is int and json.dumps(llm.config.to_dict())


@pytest.mark.parametrize("bad", [None, "images", {"a": 1}, [[[0.0] * 16], [[0.0] * 16, [0.0] * 16]]])
def test_pixel_transformer_names_what_it_takes(bad):
    with pytest.raises(TypeError, match="PixelTransformer: images must be an array or a gt tensor of floating-point pixels"):
        tiny()(bad)


@pytest.mark.parametrize("call, words", [
    (lambda: tiny()("x"), "PixelTransformer: images must be an array or a gt tensor of floating-point pixels (batch, "
                          "seq, H, W), got str"),
    (lambda: tiny_ppt()(np.zeros((2, 4), np.int64), "x"), "PixelPredictionTransformer: classes must be an array or a "
                                                          "gt tensor of integer class ids, got str"),
    (lambda: tiny_llm()([[0.0], [0.0, 0.0]], np.ones((2, 3), np.int64)), "PixelLLM: images must be an array or a gt "
                                                                       "tensor of floating-point pixels, got list"),
    (lambda: tiny_llm()(images(2, 4, 8), np.ones((2, 3), np.int64), attention_mask="x"),
     "PixelLLM: attention_mask must be an array or a gt tensor of 1/0 or True/False per token, got str"),
])
def test_the_models_name_themselves_and_what_an_input_takes(call, words):
    with pytest.raises(TypeError) as info:      # one helper (lpm.model.input_tensor), one wording
        call()
    assert str(info.value).startswith(words), str(info.value)


def test_ppt_forward_checks():
    model = tiny_ppt()
    with pytest.raises(ValueError, match=r"tokens must have shape \(batch, n\) with batch >= 1"):   # was min()'s
        model(np.zeros((0, 4), np.int64), np.zeros(0, np.int64))
    with pytest.raises(ValueError, match="classes must be"):               # was the embedding's TypeError
        model(np.zeros((2, 4), np.int64), np.array([True, False]))
    with pytest.raises(TypeError, match="PixelPredictionTransformer: tokens must be an array or a gt tensor of integer token ids"):
        model(None, None)


def test_ppt_decode_and_codebook_checks():
    model = tiny_ppt(codebook=np.full((8, 4), 0.5))
    with pytest.raises(ValueError, match=r"token ids must lie in \[0, 8\), got -1..-1"):    # numpy wrapped -1
        model.decode(np.full((1, 4), -1))
    with pytest.raises(ValueError, match=r"expected tokens \(N, 4\) of integer ids"):
        model.decode(np.zeros((1, 4)))
    before = model.codebook.numpy().copy()
    with pytest.raises(ValueError, match="non-finite"):                  # NaN pixels, silently
        model.set_codebook(np.full((8, 4), np.nan))
    np.testing.assert_array_equal(model.codebook.numpy(), before)


def test_generate_sampling_messages_fit_the_method():
    with pytest.raises(ValueError) as info:
        tiny_ppt().generate_tokens(2, temperature=0)
    assert str(info.value) == "generate: temperature must be a finite number > 0, got 0"   # no greedy= to pass
    with pytest.raises(ValueError, match="pass do_sample=False"):
        tiny_llm().generate(images(2, 4, 8), do_sample=True, temperature=0)


def test_pixel_llm_input_checks():
    model, ids = tiny_llm(), np.ones((2, 3), np.int64)
    with pytest.raises(ValueError, match=r"expected images of shape .* got \(2, 4, 4\)"):    # was AttributeError
        model(images(2, 4, 4).tolist(), ids)
    with pytest.raises(ValueError, match="input_ids must be"):           # was numpy's zero-size reduction error
        model(images(2, 4, 8), np.ones((2, 0), np.int64))
    with pytest.raises(ValueError, match="input_ids must be"):           # was the embedding's TypeError
        model(images(2, 4, 8), ids.astype(bool))
    with pytest.raises(ValueError, match=r"attention_mask must have shape \(batch, cached \+ L\) = \(2, 3\), got "
                                         r"\(2, 5\)"):          # was MultiHeadAttention's key_padding_mask
        model(images(2, 4, 8), ids, attention_mask=np.ones((2, 5)))
    with pytest.raises(TypeError, match="PixelLLM: input_ids must be an array or a gt tensor"):
        model(images(2, 4, 8), None)
    out = model(images(2, 4, 8), ids, attention_mask=np.ones((2, 3)))
    np.testing.assert_allclose(out.numpy(), model(images(2, 4, 8), ids).numpy(), rtol=1e-5, atol=1e-6)
    assert isinstance(out, gt.Tensor)
