"""Findings of fuzzing the lpm command lines (lpm train, evaluate, predict, ppt, caption): each
bad value is refused up front, in one line naming it, before any data is loaded or any work is
done, and without a traceback."""

import json
import os

import pytest

from gt import config
from lpm import cli
from lpm.options import SEED_MAX
from lpm.ppt.cli import _memory_problem
from lpm.ppt.train import PPTTrainConfig

TINY = ["--img-size", "8", "--samples", "40", "--seq-len", "3", "--embed-dim", "8", "--num-heads", "2",
        "--ff-dim", "16", "--batch-size", "8", "--no-progress", "--epochs", "1"]
HUGE_SEED = str(10 ** 20)


def status(argv, capsys):
    """``(exit status, stderr)`` of ``lpm ARGV``, run in this process."""
    try:
        code = cli.main(argv)
    except SystemExit as exc:
        code = exc.code
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    return code, err


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
