"""Resuming from another checkpoint than the latest (``--resume-from PATH``), the previous checkpoint
kept as a second fallback (``previous.json``), the damaged-latest message that names every intact
alternative with its command, and the options a resumed run may change (``--lr`` with the constant
schedule, ``--threads``, ``--val-interval``): each equal to the uninterrupted run it stands for."""

import importlib.util
import json
import os
import shutil

import pytest

import lpm.train as train_mod
from helpers import assert_same_weights, deterministic
from lpm.checkpoint import CheckpointError, find_checkpoint, read_checkpoint, save_checkpoint
from lpm.interrupt import resume_command
from lpm.resume import WrongKind
from lpm.train import TrainConfig, main, train

pytestmark = pytest.mark.skipif(importlib.util.find_spec("safetensors") is None,
                                reason="safetensors is not installed (a dependency: pip install -e .)")

TINY = ["--img-size", "8", "--samples", "40", "--seq-len", "3", "--embed-dim", "8", "--num-heads", "2",
        "--ff-dim", "16", "--batch-size", "8", "--no-progress"]


def quiet(line):
    pass


def damage(folder):
    weights = os.path.join(folder, "model.safetensors")
    data = bytearray(open(weights, "rb").read())
    data[-3] ^= 0xFF
    open(weights, "wb").write(bytes(data))


def with_accuracies(monkeypatch, accuracies):
    """Held-out accuracies as given, epoch by epoch (to choose which epoch is the best)."""
    real, left = train_mod.evaluate, list(accuracies)

    def evaluate(*args, **kwargs):
        return real(*args, **kwargs)[0], left.pop(0)

    monkeypatch.setattr(train_mod, "evaluate", evaluate)


def pointer(run, which):
    return os.path.basename(find_checkpoint(str(run), which))


# ---- the previous checkpoint, kept by a pointer ---------------------------------------------------
def test_the_previous_checkpoint_is_kept_in_place_not_copied(small_run, tmp_path, monkeypatch):
    with_accuracies(monkeypatch, [0.75, 0.5, 0.25])          # epoch 1 is the best
    cfg = dict(small_run, checkpoint_dir=str(tmp_path))
    train(TrainConfig(**cfg, epochs=2), log=quiet)
    assert (pointer(tmp_path, "previous"), pointer(tmp_path, "latest")) == ("epoch0001-step00000004",
                                                                           "epoch0002-step00000008")
    written = os.stat(tmp_path / "epoch0002-step00000008" / "model.safetensors")
    train(TrainConfig(**cfg, epochs=3, resume=True), log=quiet)
    assert json.loads((tmp_path / "previous.json").read_text()) == {"checkpoint": "epoch0002-step00000008",
                                                                     "epoch": 2, "step": 8}
    kept = os.stat(tmp_path / "epoch0002-step00000008" / "model.safetensors")
    assert (kept.st_ino, kept.st_mtime_ns) == (written.st_ino, written.st_mtime_ns)     # the same file
    assert sorted(e for e in os.listdir(tmp_path) if e.startswith("epoch")) == \
        ["epoch0001-step00000004", "epoch0002-step00000008", "epoch0003-step00000012"]    # best, previous, latest
    read_checkpoint(str(tmp_path / "epoch0002-step00000008"))


# ---- --lr changed on resume -------------------------------------------------------------------------
@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_a_new_lr_on_resume_equals_a_run_whose_lr_changes_at_that_step(small_run, tmp_path, monkeypatch, optimizer):
    cfg = dict(small_run, optimizer=optimizer, lr=0.1 if optimizer == "sgd" else 0.01, weight_decay=0.01)
    new_lr = cfg["lr"] / 2
    real_step = train_mod.train_step

    def step_changing_lr(run, batch, where):         # the uninterrupted run: lr changed before step 9
        if run.state.step == 8:
            for group in run.optimizer.param_groups:
                group["lr"] = new_lr
        return real_step(run, batch, where)

    monkeypatch.setattr(train_mod, "train_step", step_changing_lr)
    with deterministic():
        whole = train(TrainConfig(**cfg, epochs=4), log=quiet)
        monkeypatch.setattr(train_mod, "train_step", real_step)
        run = dict(cfg, checkpoint_dir=str(tmp_path))
        train(TrainConfig(**run, epochs=2), log=quiet)
        lines = []
        resumed = train(TrainConfig(**{**run, "lr": new_lr}, epochs=4, resume=True), log=lines.append)
    assert f"lr {cfg['lr']:g} -> {new_lr:g} from step 9" in lines
    assert resumed["losses"] == whole["losses"] and resumed["eval_accs"] == whole["eval_accs"]
    assert_same_weights(resumed["model"], whole["model"])
    saved = read_checkpoint(str(tmp_path))
    assert {g["lr"] for g in saved.optimizer_state["param_groups"]} == {new_lr}
    # resumed again without --lr: the run's lr goes on (nothing to say)
    lines = []
    train(TrainConfig(**{**run, "lr": None}, epochs=5, resume=True), log=lines.append)
    assert not any(line.startswith("lr ") for line in lines)
    assert {g["lr"] for g in read_checkpoint(str(tmp_path)).optimizer_state["param_groups"]} == {new_lr}


def test_a_new_lr_is_refused_with_the_cosine_schedule(small_run, tmp_path):
    run = dict(small_run, checkpoint_dir=str(tmp_path), lr_schedule="cosine", lr=0.1)
    train(TrainConfig(**run, epochs=1), log=quiet)
    with pytest.raises(CheckpointError) as err:
        train(TrainConfig(**{**run, "lr": 0.05}, epochs=1, resume=True), log=quiet)
    assert "--lr: 0.1 in the checkpoint, 0.05 now (may change on resume with --lr-schedule constant only)" \
        in str(err.value)


# ---- --resume-from ------------------------------------------------------------------------------------
@pytest.fixture
def four_epochs(small_run, tmp_path, monkeypatch):
    """A 4-epoch run whose best epoch is 2 (previous: 3, latest: 4): ``(config, folder, result)``."""
    with_accuracies(monkeypatch, [0.5, 0.75, 0.6, 0.55])
    cfg = dict(small_run, optimizer="adam", lr=0.01, checkpoint_dir=str(tmp_path / "run"))
    with deterministic():
        result = train(TrainConfig(**cfg, epochs=4), log=quiet)
    monkeypatch.undo()
    assert [pointer(tmp_path / "run", w) for w in ("best", "previous", "latest")] == \
        ["epoch0002-step00000008", "epoch0003-step00000012", "epoch0004-step00000016"]
    return cfg, tmp_path / "run", result


@pytest.mark.parametrize("which, epoch", [("best", 2), ("previous", 3)])
def test_resume_from_best_or_previous_goes_on_from_there_as_the_uninterrupted_run(four_epochs, tmp_path, which,
                                                                                  epoch):
    cfg, run, whole = four_epochs
    copy = tmp_path / "copy"
    shutil.copytree(run, copy)
    named = str(copy / f"{which}.json") if which == "previous" else str(copy / pointer(copy, which))
    lines = []
    with deterministic():
        resumed = train(TrainConfig(**{**cfg, "checkpoint_dir": None}, epochs=4, resume_from=named),
                        log=lines.append)
    folder = str(copy / pointer(run, which))
    assert f"Resumed from {folder}: epoch {epoch}/4 done, step {4 * epoch}" in lines
    assert f"Note: going back from the latest checkpoint {copy / 'epoch0004-step00000016'}: this run's checkpoints " \
        "replace it" in " ".join(lines)
    assert resumed["losses"] == whole["losses"] and resumed["eval_losses"] == whole["eval_losses"]
    assert_same_weights(resumed["model"], whole["model"])
    # the new line of checkpoints (named beside the old one's until those, no longer named, are removed)
    assert (pointer(copy, "previous"), pointer(copy, "latest")) == \
        (("epoch0003-step00000012-1", "epoch0004-step00000016") if which == "best" else
         ("epoch0003-step00000012", "epoch0004-step00000016-1"))
    assert sorted(e for e in os.listdir(copy) if e.startswith("epoch")) == \
        sorted({pointer(copy, w) for w in ("latest", "previous", "best")})
    assert read_checkpoint(str(copy)).meta["train_config"]["checkpoint_dir"] == str(copy)   # its run folder


def refused(argv, capsys, monkeypatch):
    """``main(argv)``'s exit status and stderr, failing if any data is loaded."""
    def no_data(*args, **kwargs):
        raise AssertionError("data loaded before the refusal")

    monkeypatch.setattr(train_mod, "load_data", no_data)
    capsys.readouterr()
    with pytest.raises(SystemExit) as stop:
        main(argv)
    return stop.value.code, capsys.readouterr().err


def test_resume_from_refusals_come_before_any_work(four_epochs, tmp_path, capsys, monkeypatch):
    cfg, run, _ = four_epochs
    args = [*TINY, "--optimizer", "adam", "--lr", "0.01", "--epochs", "5"]
    best = str(run / pointer(run, "best"))
    expected = "expected a checkpoint folder holding checkpoint.json"
    other = tmp_path / "other"
    other.mkdir()
    (tmp_path / "notes.txt").write_text("mine")
    save_checkpoint(str(tmp_path / "ppt"), train_mod.PixelTransformer(img_size=8, embed_dim=8, num_heads=2,
                                                                       ff_dim=16, num_classes=3), None,
                    {"kind": "ppt", "progress": {"epoch": 1, "step": 1}})
    cases = [([f"--resume-from={tmp_path / 'gone'}"], f"--resume-from {tmp_path / 'gone'}: no such file or folder: "
              + expected),
             (["--resume-from", str(run)], f"--resume-from {run}: a run folder, not one checkpoint: name one of its "
              f"checkpoints (e.g. {run / 'best.json'}), or continue its latest with --checkpoint-dir {run} --resume"),
             (["--resume-from", str(other)], f"--resume-from {other}: not a checkpoint (checkpoint.json is missing): "
              + expected),
             (["--resume-from", str(tmp_path / "notes.txt")], "notes.txt: not a checkpoint pointer: " + expected),
             (["--resume-from", str(tmp_path / "ppt" / "latest.json")], "is a checkpoint of another model (ppt, a "
              "Pixel Prediction Transformer), not of a Pixel Transformer"),
             (["--resume-from", best, "--checkpoint-dir", str(other)], f"--resume-from {best} is a checkpoint of the "
              f"run in {run}, not of --checkpoint-dir {other}"),
             (["--resume-from", best, "--seed", "5"], f"--resume-from {best}: checkpoint {best} is from another "
              "configuration:\n  --seed: 0 in the checkpoint, 5 now")]
    for extra, message in cases:
        status, err = refused([*args, *extra], capsys, monkeypatch)
        assert status == 2 and message in err, (extra, err)
        assert "Traceback" not in err
    assert sorted(os.listdir(other)) == [] and (tmp_path / "notes.txt").read_text() == "mine"
    damage(best)
    status, err = refused([*args, "--resume-from", best], capsys, monkeypatch)
    assert status == 2 and f"--resume-from {best}: checkpoint {best} is damaged:" in err
    assert f"the latest checkpoint {run / 'epoch0004-step00000016'} (epoch 4, step 16) is intact" in err
    assert f"the previous checkpoint {run / 'epoch0003-step00000012'} (epoch 3, step 12) is intact" in err


def test_a_damaged_latest_names_previous_and_best_with_their_commands(four_epochs, capsys, monkeypatch):
    cfg, run, _ = four_epochs
    latest, previous, best = (str(run / pointer(run, w)) for w in ("latest", "previous", "best"))
    damage(latest)
    args = [*TINY, "--optimizer", "adam", "--lr", "0.01", "--epochs", "5", "--checkpoint-dir", str(run), "--resume"]
    capsys.readouterr()
    with pytest.raises(SystemExit) as stop:
        main(args)
    err = capsys.readouterr().err.strip().splitlines()
    assert stop.value.code == 1 and err[0] == f"train.py: error: checkpoint {latest} is damaged:"
    assert err[2:] == [
        f"the previous checkpoint {previous} (epoch 3, step 12) is intact: resume from it with --resume-from {previous}",
        f"the best checkpoint {best} (epoch 2, step 8) is intact: resume from it with --resume-from {best}",
        f"train.py: to resume from the previous checkpoint: {resume_command(args, resume_from=previous)}",
        f"train.py: to resume from the best checkpoint: {resume_command(args, resume_from=best)}"]
    assert resume_command(args, resume_from=previous).endswith(f"--checkpoint-dir {run} --resume-from {previous}")
    main(resume_command(args, resume_from=previous).split()[2:])          # the command, as printed
    assert f"Resumed from {previous}: epoch 3/5 done, step 12" in capsys.readouterr().out
    assert not os.path.exists(latest)        # the damaged one was ours: gone once no pointer names it


def test_the_continue_command_of_a_run_started_with_resume_from():
    assert resume_command(["--epochs", "4", "--resume-from", "r/best.json"], "lpm train",
                          checkpoint="r/epoch0003-step00000012") == "lpm train --epochs 4 --checkpoint-dir r --resume"
    assert resume_command(["--resume-from=r/best.json", "--checkpoint-dir", "r", "--resume"], "lpm ppt train",
                          checkpoint="r/x") == "lpm ppt train --checkpoint-dir r --resume"
    assert resume_command(["--checkpoint-dir", "r", "--resume"], "lpm train", resume_from="r/epoch0001-step00000004") \
        == "lpm train --checkpoint-dir r --resume-from r/epoch0001-step00000004"


def test_a_checkpoint_of_another_kind_is_refused_when_resuming(tmp_path, small_model):
    save_checkpoint(str(tmp_path), small_model(), None,
                    {"kind": "caption", "progress": {"epoch": 1, "step": 1}})
    with pytest.raises(WrongKind, match="another model \\(caption, a Pixel LLM\\), not of a Pixel Transformer"):
        train(TrainConfig(img_size=8, samples=40, seq_len=3, embed_dim=8, num_heads=2, ff_dim=16, progress=False,
                          checkpoint_dir=str(tmp_path), resume=True), log=quiet)


def test_a_checkpoint_dir_holding_a_previous_json_that_is_not_ours_is_refused(tmp_path):
    from lpm.resume import run_folder_problem

    (tmp_path / "previous.json").write_text("my notes")
    assert "previous.json is not a valid checkpoint pointer" in run_folder_problem(str(tmp_path), True)
    assert (tmp_path / "previous.json").read_text() == "my notes"
