"""A sweep of the lpm command lines under plausible mistakes (an output in a folder not made yet,
a user's file where a run writes, options that another option alone reads, torchrun's
environment around a one-process command): each was a traceback after the work, a failure after
training, or an option ignored silently, and is now done or refused up front in one line. Each
test failed on the code before."""

import json
import os

import numpy as np
import pytest

from helpers import lpm_status as status, save_tiny_ppt

pytestmark = pytest.mark.first_pass     # command lines on the default engine and mesh: the same in every pass

CAPTION_TINY = ["--samples", "8", "--val-samples", "4", "--batch-size", "4", "--steps", "1", "--patch-size", "28",
                "--vision-embed-dim", "8", "--vision-num-layers", "1", "--text-embed-dim", "8",
                "--text-num-layers", "1", "--num-heads", "2", "--num-beams", "1", "--no-progress"]
PPT_TINY = ["--limit", "20", "--epochs", "1", "--codes", "4", "--embed-dim", "8", "--num-heads", "2", "--ff-dim", "8",
            "--num-layers", "1", "--no-progress"]


@pytest.fixture(autouse=True)
def no_work(monkeypatch):
    """Training or a codebook's k-means, reached, fails the test (on the code before, a refused
    command ran the whole default run)."""
    from lpm.caption import cli as caption_cli
    from lpm.ppt import cli as ppt_cli
    for module, name in ((caption_cli, "train_checked"), (ppt_cli, "train_checked"), (ppt_cli, "load_tokens")):
        monkeypatch.setattr(module, name, lambda *a, **k: pytest.fail("the work started"))


def assert_refused(argv, capsys, fragment):
    code, err = status(argv, capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and fragment in err, (code, err)


@pytest.fixture(scope="module")
def ppt_run(tmp_path_factory):
    """An untrained Pixel Prediction Transformer's checkpoint with a codebook."""
    pytest.importorskip("safetensors")
    return save_tiny_ppt(str(tmp_path_factory.mktemp("ppt") / "run"))


# ---- outputs -----------------------------------------------------------------------------------
def test_ppt_generate_writes_into_a_folder_not_made_yet(ppt_run, tmp_path, capsys):
    # the up-front check allows a folder to be made, but the write did not make it: a
    # FileNotFoundError traceback once every digit was drawn (.png grids too: the same writer)
    out = tmp_path / "new" / "deeper" / "digits.npy"
    assert status(["ppt", "generate", "--checkpoint", ppt_run, "--out", str(out), "--num", "2"], capsys)[0] == 0
    assert sorted(os.listdir(out.parent)) == ["digits.npy"]      # no temporary file left
    assert np.load(out).shape == (2, 28, 28)


def test_a_codebook_is_saved_into_a_folder_not_made_yet(tmp_path):
    pytest.importorskip("safetensors")
    from lpm.ppt.codebook import PatchCodebook
    codebook = PatchCodebook(np.linspace(0, 1, 32, dtype=np.float32).reshape(2, 16), 4)
    path = tmp_path / "new" / "codebook.safetensors"
    codebook.save(str(path))          # lpm ppt codebook --out new/codebook.safetensors: after the k-means
    np.testing.assert_array_equal(PatchCodebook.load(str(path)).vectors, codebook.vectors)


@pytest.mark.parametrize("command, place, content", [
    # a file where the blind baseline's folder goes: "cannot save a checkpoint in ck/blind" after training
    ("caption", "blind", "my notes"),
    # final.json, which only the run's last save writes, was checked then, after all the training
    ("caption", "final.json", "my notes"),
    ("caption", os.path.join("blind", "final.json"), "{}"),
    ("ppt", "final.json", "my notes"),
])
def test_a_users_file_where_a_run_writes_is_refused_before_training(command, place, content, tmp_path, monkeypatch,
                                                                    capsys):
    pytest.importorskip("safetensors")
    folder = tmp_path / "ck"
    (folder / place).parent.mkdir(parents=True, exist_ok=True)
    (folder / place).write_text(content)
    tiny = CAPTION_TINY if command == "caption" else PPT_TINY
    code, err = status([command, "train", "--checkpoint-dir", str(folder), *tiny], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1, (code, err)
    assert ("is a file, not a folder" if place == "blind" else "not replacing it") in err
    assert (folder / place).read_text() == content


def test_a_codebook_too_large_for_its_digits_names_the_options(tmp_path, monkeypatch, capsys):
    # was PatchCodebook.fit's words only (num_codes=256), not the flags that change it
    pytest.importorskip("sklearn")
    from lpm.ppt import cli as ppt_cli
    from lpm.ppt.data import load_tokens
    monkeypatch.setattr(ppt_cli, "load_tokens", load_tokens)
    code, err = status(["ppt", "codebook", "--out", str(tmp_path / "c.safetensors"), "--limit", "2"], capsys)
    assert code == 1 and err.strip().endswith("fewer than num_codes=256 (ask for fewer --codes, or more digits: a "
                                              "larger --limit)"), err
    assert not os.listdir(tmp_path)


# ---- options that another option alone reads ------------------------------------------------------
@pytest.mark.parametrize("argv, words", [
    # the sampling options without --samples: the held-out figures draw nothing, they were ignored
    (["ppt", "evaluate", "--checkpoint", "no-run", "--temperature", "0.5"], "--temperature applies to --samples only"),
    (["ppt", "evaluate", "--checkpoint", "no-run", "--per-class", "5"], "--per-class applies to --samples only"),
    (["ppt", "evaluate", "--checkpoint", "no-run", "--guidance", "3"], "--guidance applies to --samples only"),
    # greedy or beam search read no temperature, top-k, top-p or seed: ignored without --sample
    (["caption", "predict", "--checkpoint", "no-run", "a.npy", "--top-k", "3"], "--top-k applies to --sample only"),
    (["caption", "predict", "--checkpoint", "no-run", "a.npy", "--num-beams", "2", "--temperature", "0.7"],
     "--temperature applies to --sample only"),
])
def test_an_option_read_only_with_another_is_refused_without_it(argv, words, capsys):
    assert_refused(argv, capsys, words)


def test_ppt_momentum_goes_with_sgd_only(monkeypatch, capsys):
    # AdamW has no momentum: --momentum 0.5 was ignored silently (lpm train refuses it so)
    assert_refused(["ppt", "train", "--momentum", "0.5"], capsys,
                   "--momentum applies to --optimizer sgd only (got --optimizer adamw)")
    from lpm.ppt import cli as ppt_cli
    seen = []
    monkeypatch.setattr(ppt_cli, "train_checked", lambda cfg, log: seen.append(cfg))
    assert status(["ppt", "train", "--optimizer", "sgd", "--momentum", "0.5"], capsys)[0] == 0
    assert status(["ppt", "train"], capsys)[0] == 0
    assert [(c.optimizer, c.momentum) for c in seen] == [("sgd", 0.5), ("adamw", 0.9)]
    # a bad value is still told first; with the switch the options are read as before
    assert_refused(["ppt", "evaluate", "--checkpoint", "no-run", "--per-class", "1"], capsys,
                   "--per-class must be >= 2, got 1")
    code, err = status(["caption", "predict", "--checkpoint", "no-run", "a.npy", "--sample", "--top-k", "3"], capsys)
    assert code == 2 and "a.npy: no such file or folder" in err


# ---- torchrun's environment -------------------------------------------------------------------------
@pytest.mark.parametrize("argv", [
    ["ppt", "train"], ["ppt", "codebook", "--out", "c.safetensors"], ["ppt", "generate", "--checkpoint", "no-run",
                                                                      "--out", "x.npy"],
    ["caption", "train"],
])
def test_one_process_commands_refuse_torchruns_world(argv, tmp_path, monkeypatch, capsys):
    # each process trained (or drew) the whole run alone and wrote the same files at once
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert_refused(argv, capsys, "WORLD_SIZE='2' is set (torchrun's, in the environment), but this command runs in "
                                 "one process")
    assert os.listdir(tmp_path) == []
    monkeypatch.setenv("WORLD_SIZE", "1")           # torchrun --nproc_per_node 1: one process, fine
    code, err = status(argv[:2] + ["--seed", "-1"] + argv[2:], capsys)
    assert code == 2 and "--seed must be in" in err, err


def test_final_json_is_checked_only_in_runs_that_write_it(tmp_path):
    from lpm.resume import run_folder_problem
    (tmp_path / "final.json").write_text(json.dumps({"checkpoint": "nothing-here"}))
    assert run_folder_problem(str(tmp_path), False) is None          # lpm train writes no final.json
    assert "final.json" in run_folder_problem(str(tmp_path), False, ("best", "previous", "final"))
