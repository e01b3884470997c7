"""Per-data-set defaults of train.py: the options a user leaves out take the values tuned for the
chosen --dataset (DATASET_DEFAULTS, ADAPTIVE_LR), and an option given always wins, even when its
value equals another data set's default."""

import pytest

from lpm.config import ADAPTIVE_LR, DATASET_DEFAULTS
from lpm.model import PixelTransformer
from lpm.train import TrainConfig, build_parser, main, make_optimizer, parse_args

TUNED = ("samples", "epochs", "lr_schedule")


def lr_of(cfg):
    """The learning rate the run's optimizer starts with."""
    model = PixelTransformer(img_size=4, embed_dim=4, num_heads=1, num_layers=0, ff_dim=4, num_classes=2)
    return make_optimizer(model, cfg).param_groups[0]["lr"]


def test_every_dataset_has_defaults_and_the_bare_command_is_unchanged():
    from lpm.data import DATASETS

    assert set(DATASET_DEFAULTS) == set(DATASETS)
    cfg = parse_args([])
    assert (cfg.samples, cfg.epochs, cfg.lr_schedule, cfg.lr) == (600, 10, "constant", None)
    assert lr_of(cfg) == 0.1 and cfg == TrainConfig()


@pytest.mark.parametrize("dataset", ["digits", "digits-majority"])
def test_digits_get_the_readme_recipe(dataset):
    # the README's digits command, which reaches 92.9% held-out (88.4% for the majority task)
    cfg = parse_args(["--dataset", dataset])
    assert (cfg.samples, cfg.epochs, cfg.lr_schedule) == (15000, 6, "cosine")
    assert lr_of(cfg) == pytest.approx(0.3)
    assert cfg == TrainConfig(dataset=dataset)        # the Python API resolves the same way
    assert lr_of(parse_args(["--dataset", dataset, "--batch-size", "32"])) == pytest.approx(0.6)  # linear scaling


@pytest.mark.parametrize("dataset", sorted(DATASET_DEFAULTS))
def test_flags_given_win_over_the_dataset_defaults(dataset):
    other = {name: DATASET_DEFAULTS["blobs" if dataset != "blobs" else "digits"][name] for name in TUNED}
    argv = ["--dataset", dataset, "--samples", str(other["samples"]), "--epochs", str(other["epochs"]),
            "--lr-schedule", other["lr_schedule"], "--lr", "0.05"]
    cfg = parse_args(argv)
    assert {name: getattr(cfg, name) for name in TUNED} == other
    assert lr_of(cfg) == 0.05
    # one flag given, the others still the data set's
    cfg = parse_args(["--dataset", dataset, "--epochs", "2"])
    assert cfg.epochs == 2
    assert (cfg.samples, cfg.lr_schedule) == (DATASET_DEFAULTS[dataset]["samples"],
                                             DATASET_DEFAULTS[dataset]["lr_schedule"])
    assert TrainConfig(dataset=dataset, samples=7).samples == 7


@pytest.mark.parametrize("optimizer", ["adam", "adamw"])
def test_adaptive_optimizers_default_to_their_own_lr(optimizer):
    for dataset in DATASET_DEFAULTS:
        assert lr_of(parse_args(["--dataset", dataset, "--optimizer", optimizer])) == ADAPTIVE_LR
        assert lr_of(parse_args(["--dataset", dataset, "--optimizer", optimizer, "--batch-size", "64"])) == ADAPTIVE_LR
    assert lr_of(parse_args(["--optimizer", optimizer, "--lr", "0.003"])) == 0.003
    assert ADAPTIVE_LR < 1e-3      # torch's usual 1e-3 overshoots on the 40,000-wide embedding


def test_data_runs_take_the_blob_defaults(tmp_path):
    cfg = parse_args(["--data", str(tmp_path)])
    assert (cfg.epochs, cfg.lr_schedule, lr_of(cfg)) == (10, "constant", 0.1)


def test_help_states_each_datasets_defaults(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "2000")                   # argparse wraps help at the terminal's width
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "(default: 600 for blobs, 15000 for digits and digits-majority)" in text
    assert "(default: 10 for blobs and --data, 6 for digits and digits-majority)" in text
    assert "(default: constant for blobs and --data, cosine for digits and digits-majority)" in text
    assert (f"for sgd, 0.1 for blobs and --data, 0.3 for digits and digits-majority, times batch size / 16; "
            f"for adam and adamw, {ADAPTIVE_LR:g})") in text
    assert "a flag given always wins" in text


def test_unset_flags_parse_to_none_so_that_the_dataset_decides():
    args = build_parser().parse_args(["--dataset", "digits"])
    assert (args.samples, args.epochs, args.lr_schedule, args.lr) == (None, None, None, None)
