"""Training with a separate held-out set (``--eval-data``) and checkpoints by the clock
(``--save-every-minutes``): what is trained and held out, classes matched by name, errors that
name the option, resuming (also from checkpoints written before these options existed), and the
steps a fake clock makes the run save at."""

import importlib.util
import json
import os

import numpy as np
import pytest

import lpm.checkpoint as ckpt_mod
import lpm.run as run_mod
import lpm.train as train_mod
from lpm.checkpoint import find_checkpoint, read_checkpoint
from lpm.config import TrainConfig, check_config
from lpm.data import DataError, load_data
from lpm.train import train

pytestmark = pytest.mark.skipif(importlib.util.find_spec("safetensors") is None,
                                reason="safetensors is not installed (a dependency: pip install -e .)")

RUN = dict(img_size=8, seq_len=3, embed_dim=8, num_heads=2, ff_dim=16, batch_size=8, progress=False)


def quiet(*args):
    pass


def write_npz(path, labels, class_names, seed):
    """Sequences whose pixels tell the class (a bright band at a class-specific row), as .npz."""
    rng = np.random.default_rng(seed)
    labels = np.asarray(labels)
    images = rng.random((len(labels), 3, 8, 8), dtype=np.float32) * 0.3
    for i, c in enumerate(labels):
        images[i, :, 2 * (list(class_names).index(class_names[c]) % 4)] += 0.7
    np.savez(path, images=images, labels=labels, class_names=np.array(class_names))
    return images


@pytest.fixture
def two_sets(tmp_path):
    """A training set of classes a, b, c (30 sequences) and a held-out set of c and a only, in that
    order (so its label 0 is the training set's 2)."""
    train_path, held_path = tmp_path / "train.npz", tmp_path / "held.npz"
    write_npz(train_path, np.arange(30) % 3, ["a", "b", "c"], seed=0)
    write_npz(held_path, [0, 1, 1, 0, 1], ["c", "a"], seed=1)
    return str(train_path), str(held_path)


# ---- --eval-data ------------------------------------------------------------------------------
def test_eval_data_holds_out_every_sequence_of_its_own_set(two_sets):
    train_path, held_path = two_sets
    data = load_data(dict(data=train_path, eval_data=held_path, seq_len=3, img_size=8))
    assert len(data.train_labels) == 30 and data.train_labels.tolist() == (np.arange(30) % 3).tolist()
    assert data.class_names == ("a", "b", "c")
    assert data.eval_labels.tolist() == [2, 0, 0, 2, 0]            # c -> 2, a -> 0: matched by name
    assert data.eval_images.class_names == ("a", "b", "c")
    held = np.load(held_path)["images"]
    offset = data.pixel_offset                                   # the training set's, for both sets
    np.testing.assert_allclose(data.eval_images[np.arange(5)], held - np.float32(offset), rtol=1e-6)
    assert "held out: every sequence in" in data.description
    split = load_data(dict(data=train_path, seq_len=3, img_size=8, eval_split=0.2))
    assert len(split.train_labels) == 24 and len(split.eval_labels) == 6      # without it: a split


def test_eval_data_run_evaluates_on_it(two_sets, tmp_path):
    train_path, held_path = two_sets
    lines = []
    out = train(TrainConfig(**RUN, data=train_path, eval_data=held_path, epochs=2,
                            checkpoint_dir=str(tmp_path / "run")), log=lines.append)
    assert any("30 training + 5 held-out sequences" in line for line in lines)
    assert len(out["eval_accs"]) == 2
    assert all(round(acc * 5) == acc * 5 for acc in out["eval_accs"])     # a fraction of the 5 held-out ones
    meta = read_checkpoint(str(tmp_path / "run")).meta
    assert meta["train_config"]["eval_data"] == held_path
    assert meta["data"]["eval_path"] == os.path.realpath(held_path)


def test_eval_data_errors_name_the_option(two_sets, tmp_path):
    train_path, held_path = two_sets
    assert check_config(TrainConfig(**RUN, eval_data=held_path)) == [
        "--eval-data applies to --data only (generated data sets hold out their own sequences)"]
    assert "--eval-data must name a path, got ''" in check_config(TrainConfig(**RUN, data=train_path, eval_data=""))
    with pytest.raises(DataError, match=r"--eval-data .*nowhere: no such file or folder"):
        load_data(dict(data=train_path, eval_data=str(tmp_path / "nowhere"), seq_len=3, img_size=8))
    other = tmp_path / "other.npz"
    write_npz(other, [0, 1, 2], ["a", "zebra", "yak"], seed=2)
    with pytest.raises(DataError, match=r"--eval-data .*other.npz: classes that --data does not have: zebra, yak"):
        load_data(dict(data=train_path, eval_data=str(other), seq_len=3, img_size=8))


def test_resume_takes_the_same_eval_data_however_spelled_and_refuses_another(two_sets, tmp_path, monkeypatch):
    train_path, held_path = two_sets
    folder = str(tmp_path / "run")
    train(TrainConfig(**RUN, data=train_path, eval_data=held_path, epochs=1, checkpoint_dir=folder), log=quiet)
    monkeypatch.chdir(tmp_path)
    out = train(TrainConfig(**RUN, data=train_path, eval_data=os.path.join(".", "held.npz"), epochs=2,
                            checkpoint_dir=folder, resume=True), log=quiet)
    assert len(out["eval_accs"]) == 2
    other = tmp_path / "other.npz"
    write_npz(other, [0, 1, 1, 0, 1], ["c", "a"], seed=3)
    from lpm.checkpoint import CheckpointError
    with pytest.raises(CheckpointError, match="--eval-data"):
        train(TrainConfig(**RUN, data=train_path, eval_data=str(other), epochs=3, checkpoint_dir=folder,
                          resume=True), log=quiet)


def test_lpm_evaluate_uses_the_runs_eval_data_unless_given_other_data(two_sets, tmp_path, capsys):
    from lpm.cli import main

    train_path, held_path = two_sets
    folder = str(tmp_path / "run")
    train(TrainConfig(**RUN, data=train_path, eval_data=held_path, epochs=1, checkpoint_dir=folder), log=quiet)
    assert main(["evaluate", "--checkpoint", folder]) == 0
    assert "Data: 5 held-out sequences" in capsys.readouterr().out
    assert main(["evaluate", "--checkpoint", folder, "--data", train_path]) == 0     # its own split, not held.npz
    assert "Data: 6 held-out sequences" in capsys.readouterr().out


# ---- --save-every-minutes ---------------------------------------------------------------------
class FakeClock:
    """``perf_counter`` for lpm.run and lpm.train: 30 seconds more after each optimizer step."""

    def __init__(self):
        self.now = 1000.0

    def perf_counter(self):
        return self.now


def saved_steps(monkeypatch, **options):
    """The steps at which a run of 2 epochs of 5 steps saves, with ``options``, on the fake clock."""
    clock, steps = FakeClock(), []
    monkeypatch.setattr(run_mod, "time", clock)
    monkeypatch.setattr(train_mod, "time", clock)
    real_step, real_save = train_mod.train_step, run_mod.Run.save

    def ticking_step(run, batch, where):
        clock.now += 30.0
        return real_step(run, batch, where)

    def recording_save(self, order_state, where, best=False):
        steps.append(self.state.step)
        return real_save(self, order_state, where, best)

    monkeypatch.setattr(train_mod, "train_step", ticking_step)
    monkeypatch.setattr(run_mod.Run, "save", recording_save)
    train(TrainConfig(**RUN, samples=50, epochs=2, **options), log=quiet)
    return steps


def test_saves_once_the_minutes_have_passed_since_the_last_save(tmp_path, monkeypatch):
    # 30 s a step, a save due 60 s after the last one (epoch ends save too, at steps 5 and 10)
    steps = saved_steps(monkeypatch, save_every_minutes=1, checkpoint_dir=str(tmp_path / "a"))
    assert steps == [2, 4, 5, 7, 9, 10]
    assert saved_steps(monkeypatch, save_every_minutes=2.5, checkpoint_dir=str(tmp_path / "b")) == [5, 10]
    both = saved_steps(monkeypatch, save_every_minutes=1.5, save_every=4, checkpoint_dir=str(tmp_path / "c"))
    assert both == [3, 4, 5, 8, 10]        # by the clock at 3 (90 s after the start), by count at 4 and 8
    assert saved_steps(monkeypatch, checkpoint_dir=str(tmp_path / "d")) == [5, 10]   # 0: off


def test_save_every_minutes_checks(tmp_path):
    assert check_config(TrainConfig(**RUN, save_every_minutes=5)) == ["--save-every-minutes needs --checkpoint-dir"]
    assert check_config(TrainConfig(**RUN, save_every_minutes=-1, checkpoint_dir=str(tmp_path))) == [
        "--save-every-minutes must be >= 0, got -1"]
    assert check_config(TrainConfig(**RUN, save_every_minutes=float("nan"), checkpoint_dir=str(tmp_path))) == [
        "--save-every-minutes must be >= 0, got nan"]


def test_resume_with_other_minutes_and_from_a_checkpoint_older_than_the_options(tmp_path):
    folder = str(tmp_path / "run")
    train(TrainConfig(**RUN, samples=40, epochs=1, checkpoint_dir=folder), log=quiet)
    # a checkpoint written before --eval-data and --save-every-minutes existed lacks their keys
    meta_path = os.path.join(find_checkpoint(folder), "checkpoint.json")
    meta = json.load(open(meta_path))
    for key in ("eval_data", "save_every_minutes"):
        del meta["train_config"][key]
    meta["checksum"] = ckpt_mod._checksum(meta)        # as its writer would have sealed it
    json.dump(meta, open(meta_path, "w"))
    out = train(TrainConfig(**RUN, samples=40, epochs=2, checkpoint_dir=folder, resume=True,
                            save_every_minutes=3), log=quiet)
    assert len(out["eval_accs"]) == 2


def test_eval_data_of_one_class_is_held_out(two_sets, tmp_path):
    train_path, _ = two_sets
    one = tmp_path / "one.npz"
    write_npz(one, [0, 0, 0], ["b"], seed=4)
    data = load_data(dict(data=train_path, eval_data=str(one), seq_len=3, img_size=8))
    assert data.eval_labels.tolist() == [1, 1, 1] and data.num_classes == 3


def test_eval_data_overlapping_data_or_beside_eval_split_is_refused(two_sets, tmp_path):
    train_path, held_path = two_sets
    for held in (train_path, str(tmp_path), os.path.join(str(tmp_path), ".", "train.npz")):
        assert check_config(TrainConfig(**RUN, data=train_path, eval_data=held)) == [
            f"--eval-data {held} overlaps --data {train_path}: the held-out sequences must not be training ones "
            "(give a separate folder or file)"]
    assert check_config(TrainConfig(**RUN, data=train_path, eval_data=held_path, eval_split=0.5)) == [
        "--eval-split does not apply with --eval-data (every sequence there is held out), got 0.5"]
    assert check_config(TrainConfig(**RUN, data=train_path, eval_data=held_path)) == []


def test_a_bad_eval_data_is_refused_before_data_is_read(two_sets, tmp_path, capsys):
    train_path, _ = two_sets
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / "empty").mkdir()
    for held, why in ((tmp_path / "notes.txt", "expected a folder of class folders or an .npz file"),
                      (tmp_path / "empty", "no class folders")):
        with pytest.raises(SystemExit) as exit_:
            train_mod.main(["--data", train_path, "--eval-data", str(held), "--no-progress"])
        assert exit_.value.code == 2 and f"--eval-data {held}: {why}" in capsys.readouterr().err
