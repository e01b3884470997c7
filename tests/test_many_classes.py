"""More classes than lpm once allowed (10,000): a data set of 12,000 classes trains a tiny model,
its checkpoint round-trips, lpm evaluate summarises the confusions instead of printing a
12,000 x 12,000 matrix, lpm predict names the top classes, and the memory check counts the head
that so many classes make, with a one-line refusal when it cannot fit."""

import json

import numpy as np
import pytest

from lpm import cli, memory
from lpm.checkpoint import load_into
from lpm.data.files import open_dataset
from lpm.inference import (MATRIX_CLASSES, confusion_matrix, confusion_report, format_confusion, load_model,
                           predict_proba)
from lpm.train import TrainConfig, main, train

K = 12_000
TINY = dict(img_size=4, seq_len=2, embed_dim=8, num_heads=2, ff_dim=8, epochs=1, batch_size=1000,
            progress=False, optimizer="adam", lr=0.01)


def _npz(path, k, extra=50, seed=0):
    """One sequence of each of ``k`` classes, a second one of the first ``extra`` (held out)."""
    labels = np.concatenate([np.arange(k), np.arange(extra)])
    images = np.random.default_rng(seed).random((len(labels), 2, 4, 4), dtype=np.float32)
    np.savez(path, images=images, labels=labels, class_names=np.array([f"class{c}" for c in range(k)]))
    return path, images, labels


def _array(value):
    return value.numpy() if hasattr(value, "numpy") else np.asarray(value)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("many")
    path, images, labels = _npz(folder / "data.npz", K)
    result = train(TrainConfig(data=str(path), checkpoint_dir=str(folder / "run"), **TINY), log=lambda *a: None)
    return folder, result


def test_a_data_set_of_12000_classes_trains_and_its_checkpoint_round_trips(run):
    folder, result = run
    model, data = result["model"], result["data"]
    assert data.num_classes == K and model.config.num_classes == K
    assert np.isfinite(result["losses"][0]) and len(data.eval_labels) == 50
    loaded, ckpt = load_model(str(folder / "run"))
    assert loaded.config.num_classes == K
    assert ckpt.meta["data"]["class_names"] == [f"class{c}" for c in range(K)]
    want, got = model.state_dict(), loaded.state_dict()
    assert want.keys() == got.keys()
    for name in want:
        np.testing.assert_array_equal(_array(got[name]), _array(want[name]), err_msg=name)
    again = type(loaded).from_config(loaded.config)
    load_into(ckpt, again)
    x = data.eval_images[np.arange(5)]
    np.testing.assert_allclose(predict_proba(again, x), predict_proba(model, x), rtol=1e-6, atol=1e-12)


def test_evaluate_summarises_the_confusions_of_12000_classes(run, capsys):
    folder, result = run
    assert cli.main(["evaluate", "--checkpoint", str(folder / "run")]) == 0
    out = capsys.readouterr().out
    model, data = result["model"], result["data"]
    probs = predict_proba(model, data.eval_images)
    labels = data.eval_labels
    preds = probs.argmax(1)
    loss = float(-np.log(np.maximum(probs[np.arange(len(labels)), labels], 1e-300)).mean())
    correct = int((preds == labels).sum())
    assert f"Accuracy: {100 * correct / len(labels):.2f}% ({correct}/{len(labels)}), cross-entropy {loss:.4f}" in out
    assert f"Confusion matrix: not printed for {K:,} classes (more than {MATRIX_CLASSES})" in out
    assert len(out.splitlines()) < 40                      # no 12,000-column matrix


def test_predict_names_the_top_classes_of_12000(run, capsys):
    folder, result = run
    path, images, _ = _npz(folder / "some.npz", K, extra=0, seed=1)
    few = folder / "few.npz"
    np.savez(few, images=images[:3])
    assert cli.main(["predict", "--checkpoint", str(folder / "run"), str(few), "--top", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    probs = predict_proba(result["model"], images[:3] - np.float32(result["data"].pixel_offset))
    assert len(lines) == 3
    for i, (line, p) in enumerate(zip(lines, probs)):
        top = np.argsort(-p, kind="stable")[:2]
        assert line == f"{few}[{i}]: " + ", ".join(f"class{c} {100 * p[c]:.1f}%" for c in top)
    assert cli.main(["predict", "--checkpoint", str(folder / "run"), str(few), "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(rows) == 3 and all(len(r["probabilities"]) == K for r in rows)
    assert [r["prediction"] for r in rows] == [f"class{int(np.argmax(p))}" for p in probs]


def test_a_head_too_large_for_memory_is_refused_in_one_line(tmp_path, monkeypatch, capsys):
    """The classes are known once the data is read: the model for them is checked then."""
    path, _, _ = _npz(tmp_path / "data.npz", 11_000, extra=10)
    cfg = TrainConfig(data=str(path), **dict(TINY, embed_dim=512, num_heads=8))
    need = memory.model_bytes(memory.model_config(cfg, 11_000), True, "adam")
    assert memory.classes_problem(cfg, 11_000, available=10 * need) is None
    problem = memory.classes_problem(cfg, 11_000, available=need // 2)
    assert problem.startswith("this run of 11,000 classes needs about ") and "--embed-dim" in problem
    assert memory.classes_problem(cfg, 10, available=1) is None         # counted before the data was read
    monkeypatch.setattr(memory, "available_bytes", lambda: need // 2)
    argv = ["--data", str(path), "--img-size", "4", "--seq-len", "2", "--embed-dim", "512", "--num-heads", "8",
            "--ff-dim", "8", "--epochs", "1", "--optimizer", "adam", "--no-progress",
            "--checkpoint-dir", str(tmp_path / "run")]
    monkeypatch.setattr("lpm.train.run_problem", lambda cfg: None)        # the check before the data is read
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    err = capsys.readouterr().err
    assert exit_.value.code == 1 and len(err.strip().splitlines()) == 1, err
    assert "error: this run of 11,000 classes needs about" in err and "use fewer classes" in err
    assert not (tmp_path / "run").exists() or not any((tmp_path / "run").iterdir())


def test_the_confusion_report_beyond_the_matrix_size():
    names = [f"n{c}" for c in range(MATRIX_CLASSES + 1)]
    labels = np.array([0, 0, 0, 1, 1, 2, 2, 3, 5])
    preds = np.array([7, 7, 0, 7, 0, 2, 2, 5, 3])
    report = confusion_report(labels, preds, names, top=3)
    assert report.splitlines() == [
        f"Confusion matrix: not printed for {MATRIX_CLASSES + 1:,} classes (more than {MATRIX_CLASSES}). 5 classes "
        "are in this data, 1 of them with every sequence right.",
        "The most frequent confusions (3 of 5; true -> predicted: sequences):",
        "  n0 -> n7: 2", "  n1 -> n0: 1", "  n1 -> n7: 1"]
    right = confusion_report(labels, labels, names)
    assert right.splitlines()[1] == "No confusions: every sequence was classified right."
    small = names[:10]
    assert confusion_report(labels, preds, small) == (
        "Confusion matrix (rows: true class, columns: predicted class):\n"
        + format_confusion(confusion_matrix(labels, preds, 10), small))


def test_an_npz_of_12000_classes_opens(tmp_path):
    path, _, labels = _npz(tmp_path / "data.npz", K, extra=0)
    data = open_dataset(str(path), seq_len=2, img_size=4)
    assert len(data.class_names) == K and data.labels.tolist() == labels.tolist()
