"""What a user types is checked before any work: GT_* environment variables, sizes that cannot fit
in memory, .npz labels, data files that would train on wrong pixels, the options of lpm evaluate and
lpm predict, and integer images given to PixelTransformer. Each refusal is a few lines at most on
stderr, without a traceback, and leaves the user's files where they were."""

import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import gt
from gt import config
from lpm import cli, memory, options
from lpm.data import files
from lpm.checkpoint import _checksum
from lpm.data import make_moving_blobs
from lpm.data.base import DataError, short_list
from lpm.model import PixelTransformer
from lpm.train import TrainConfig, main, parse_args, train

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = ["--img-size", "8", "--seq-len", "2", "--embed-dim", "8", "--num-heads", "2", "--ff-dim", "8",
        "--epochs", "1", "--batch-size", "4", "--no-progress"]
GiB = 1 << 30
# A subprocess's exit status and stderr do not depend on the engine or on sharding: those run once,
# in the plain pass of the suite (tests/conftest.py).
plain_pass_only = pytest.mark.first_pass
gt.get_backend()   # gt's engine is fixed before any test below changes GT_* in this process


def quiet(*args):
    pass


def assert_short_error(err, *fragments, lines=1):
    """stderr holds at most ``lines`` lines, no traceback, each fragment, and no giant line."""
    assert "Traceback" not in err, err
    assert 1 <= len(err.strip().splitlines()) <= lines, err
    assert max(len(line) for line in err.splitlines()) < 600, err[:600]
    for fragment in fragments:
        assert fragment in err, (fragment, err)


def exits(argv, capsys, run=main):
    """``(exit status, stderr)`` of ``run(argv)``, which ends in SystemExit."""
    with pytest.raises(SystemExit) as exit_:
        run(argv)
    return exit_.value.code, capsys.readouterr().err


def clean_env(**extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("GT_")}
    return dict(env, OMP_NUM_THREADS="1", **extra)


# ---- 4. environment variables ----------------------------------------------------------------------
@plain_pass_only
@pytest.mark.parametrize("name, value, expected", [
    ("GT_BACKEND", "jax", "expected one of 'numpy', 'torch'"),
    ("GT_DEVICES", "0", "must be a positive integer"),
    ("GT_DEVICES", "abc", "must be a positive integer"),
    ("GT_AUTO_SHARD", "maybe", "must be 1 or 0"),
])
def test_train_py_refuses_a_bad_variable_before_the_data(tmp_path, name, value, expected):
    keep = tmp_path / "keep.txt"
    keep.write_text("mine")
    # --data names nothing: the variable must be refused before the data is looked at
    done = subprocess.run([sys.executable, "train.py", "--data", str(tmp_path / "absent"), "--checkpoint-dir",
                           str(tmp_path), *TINY], cwd=ROOT, env=clean_env(**{name: value}), capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 2 and done.stdout == ""
    assert_short_error(done.stderr, "train.py: error: ", name, repr(value), expected, "(in the environment)")
    assert keep.read_text() == "mine" and sorted(os.listdir(tmp_path)) == ["keep.txt"]


@plain_pass_only
def test_gt_from_python_raises_one_clear_error():
    code = ("import gt\ntry:\n    gt.zeros(1)\nexcept gt.config.EnvironmentVariableError as exc:\n"
            "    print(type(exc).__mro__[1].__name__, exc)")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=clean_env(GT_AUTO_SHARD="maybe"),
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "ValueError GT_AUTO_SHARD must be 1 or 0 (or true/false, yes/no, on/off), got 'maybe'\n"


@plain_pass_only
def test_a_misspelt_variable_is_named_when_gt_starts():
    """GT_DEVICE=4 (for GT_DEVICES) changed nothing, silently: gt warns, naming the variable it reads;
    another program's GT_* name is left alone."""
    code = "import warnings\nwarnings.simplefilter('always')\nimport gt\ngt.zeros(1)\nprint(gt.zeros(4)._placed)"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60,
                          env=clean_env(GT_DEVICE="4", GT_NUMTHREADS="2", GT_PIPELINE_ID="7"))
    assert done.returncode == 0, done.stderr
    assert done.stdout == "None\n"
    warned = [line for line in done.stderr.splitlines() if "UserWarning" in line]
    assert len(warned) == 2, done.stderr
    assert "GT_DEVICE is set, but gt reads no variable of that name" in warned[0] and "GT_DEVICES?" in warned[0]
    assert "GT_NUMTHREADS" in warned[1] and "did you mean GT_NUM_THREADS?" in warned[1]


def test_misspelt_names_are_told_from_other_programs_names(monkeypatch):
    for name in [n for n in os.environ if n.startswith("GT_")]:
        monkeypatch.delenv(name)
    for name in ("GT_BACKENDS", "GT_AUTOSHARD", "GT_CONFIGS", "GT_VERBOS", "GT_BLAS", "GT_JOB", "GT_FUZZ_LOG"):
        monkeypatch.setenv(name, "1")
    assert config.misspelt_names() == [("GT_AUTOSHARD", "GT_AUTO_SHARD"), ("GT_BACKENDS", "GT_BACKEND"),
                                       ("GT_CONFIGS", "GT_CONFIG"), ("GT_VERBOS", "GT_VERBOSE")]


@pytest.mark.parametrize("command", [["train", *TINY], ["evaluate", "--checkpoint", "nowhere"],
                                     ["predict", "--checkpoint", "nowhere", "x.npy"]])
def test_every_lpm_command_checks_the_environment_first(command, monkeypatch, capsys):
    monkeypatch.setenv("GT_DEVICES", "abc")
    status, err = exits(command, capsys, run=cli.main)
    assert status == 2
    assert_short_error(err, f"lpm {command[0]}: error: GT_DEVICES must be a positive integer", "got 'abc'")


def test_environment_problems_lists_each_variable(monkeypatch):
    for name in ("GT_BACKEND", "GT_DEVICES", "GT_AUTO_SHARD", "GT_VERBOSE"):
        monkeypatch.delenv(name, raising=False)
    assert config.environment_problems() == []
    monkeypatch.setenv("GT_BACKEND", " Torch ")
    monkeypatch.setenv("GT_AUTO_SHARD", "off")
    monkeypatch.setenv("GT_VERBOSE", "")                  # blank: not set
    assert (config.backend_name(), config.auto_shard(), config.verbose()) == ("torch", False, False)
    monkeypatch.setenv("GT_BACKEND", "jax")
    monkeypatch.setenv("GT_DEVICES", "-3")
    monkeypatch.setenv("GT_VERBOSE", "2")
    problems = config.environment_problems()
    assert [p.split()[0] for p in problems] == ["unknown", "GT_DEVICES", "GT_VERBOSE"]
    assert "'jax'" in problems[0] and "'-3'" in problems[1] and "'2'" in problems[2]
    with pytest.raises(config.EnvironmentVariableError, match="unknown gt backend 'jax'"):
        config.check_environment()


def test_torch_engine_without_torch_is_an_install_hint(monkeypatch, capsys):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "torch" else real(name, *a))
    monkeypatch.setenv("GT_BACKEND", "torch")
    status, err = exits(TINY, capsys)
    assert status == 2
    assert_short_error(err, "GT_BACKEND=torch needs torch: pip install 'lpm[torch]'")


# ---- 5. sizes --------------------------------------------------------------------------------------
# Each needs terabytes or more, so no machine the suite runs on has that much available.
@pytest.mark.parametrize("argv, biggest", [
    (["--samples", "100000000", "--img-size", "200"], "data"),
    (["--img-size", "30000"], "data"),
    pytest.param(["--img-size", "30000", "--dataset", "digits"], "data", marks=pytest.mark.skipif(
        importlib.util.find_spec("sklearn") is None, reason="scikit-learn is not installed (pip install 'lpm[data]')")),
    (["--batch-size", "10000000", "--samples", "10000000"], "a batch"),
])
def test_runs_that_cannot_fit_are_refused_before_allocating(argv, biggest, capsys, tmp_path):
    status, err = exits(argv + ["--checkpoint-dir", str(tmp_path / "ck")], capsys)
    assert status == 2
    assert_short_error(err, "train.py: error: this run needs about ", f"{biggest} ", "is available: use")
    assert not (tmp_path / "ck").exists()


def test_estimates_match_what_is_allocated():
    for kw in (dict(), dict(pos_encoding="learned", num_layers=2, num_classes=7, ff_dim=24)):
        cfg = dict(dict(img_size=6, embed_dim=8, num_heads=2, num_layers=1, ff_dim=16, num_classes=3), **kw)
        assert memory.parameter_count(**cfg) == PixelTransformer(**cfg).num_parameters()
    images, _ = make_moving_blobs(40, seq_len=3, img_size=12)
    assert images.nbytes <= memory.data_bytes(dict(samples=40, seq_len=3, img_size=12)) <= 2 * images.nbytes
    model = dict(img_size=200, embed_dim=128, num_heads=4, num_layers=1, ff_dim=256, num_classes=4)
    params = 5_253_380 * 4
    assert memory.model_bytes(model) == params
    assert memory.model_bytes(model, training=True) == 2 * params                      # + gradients
    assert memory.model_bytes(model, training=True, optimizer="sgd", momentum=0.9) == 3 * params
    assert memory.model_bytes(model, training=True, optimizer="adam") == 6 * params    # + state, temporaries
    assert memory.batch_bytes(model, 16, 8) > 16 * 2 * 8 * 40_000 * 4                  # the frames, twice


def test_the_documented_runs_fit_in_a_few_gigabytes():
    for argv in ([], ["--samples", "20", "--epochs", "5", "--batch-size", "2", "--loss", "mse"],
                 ["--dataset", "digits", "--samples", "15000", "--epochs", "6", "--lr", "0.3"],
                 ["--dataset", "digits-majority", "--samples", "15000", "--optimizer", "adam"]):
        assert memory.run_problem(parse_args(argv), available=2 * GiB) is None, argv
    data = 600 * 8 * 40_000 * 4 + 32 * 8 * 40_000 * 5      # every frame, and one chunk's noise draw
    model = 2 * 5_253_380 * 4                                # parameters and their gradients (plain SGD)
    batch = memory.batch_bytes(memory.model_config(TrainConfig(), 4), 16, 8, eval_batch=32)
    h = memory.human
    assert memory.run_problem(parse_args([]), available=GiB // 2) == (
        f"this run needs about {h(data + model + batch)} of memory (data {h(data)}, model {h(model)}, a batch "
        f"{h(batch)}) but 512.0 MiB is available: use fewer --samples, a smaller --img-size or --seq-len")


def test_frames_read_with_data_are_counted_before_the_run(tmp_path):
    """--data and --eval-data: the decoded frames each set keeps (when they fit the cache) and a
    compressed .npz's images, read whole, are counted from listings and headers alone."""
    images, labels = make_moving_blobs(12, seq_len=3, img_size=8)
    np.savez(tmp_path / "a.npz", images=images, labels=labels)
    np.savez_compressed(tmp_path / "c.npz", images=images, labels=labels)
    for c in ("x", "y"):
        (tmp_path / "seqs" / c).mkdir(parents=True)
        for i in range(3):
            np.save(tmp_path / "seqs" / c / f"{i}.npy", images[i])
    (tmp_path / "seqs" / "y" / "notes.txt").write_text("not a sequence")
    folder, npz = str(tmp_path / "seqs"), str(tmp_path / "a.npz")

    def frames(n, seq_len, img_size):
        return n * seq_len * img_size ** 2 * 4

    assert files.memory_bytes(npz, 4, 10) == frames(12, 4, 10)               # padded and resized as read
    assert files.memory_bytes(str(tmp_path / "c.npz"), 3, 8) == images.nbytes + frames(12, 3, 8)
    assert files.memory_bytes(folder, 3, 8) == frames(6, 3, 8) == files.open_dataset(folder, 3, 8)._cache.nbytes
    assert files.memory_bytes(npz, 3, 8, cache_bytes=100) == 0                # read from disk batch by batch
    assert files.memory_bytes(str(tmp_path / "none"), 3, 8) == 0              # open_dataset names the problem
    cfg = TrainConfig(data=folder, eval_data=npz, seq_len=3, img_size=8, embed_dim=8, num_heads=2, ff_dim=8)
    assert memory.data_bytes(cfg) == frames(18, 3, 8)
    refusal = memory.run_problem(cfg, available=frames(18, 3, 8))             # the frames alone fill it
    assert refusal.startswith("this run needs about ") and f"(data {memory.human(frames(18, 3, 8))}, " in refusal


def test_available_memory_and_platforms_without_it(monkeypatch):
    available = memory.available_bytes()
    assert available is None or available > 0
    assert memory.human(3 * GiB) == "3.0 GiB" and memory.human(512) == "512 B"
    assert memory.too_large({"data": 10, "model": 0}, "this run", "less", available=5) == (
        "this run needs about 10 B of memory (data 10 B) but 5 B is available: less")
    assert memory.too_large({"data": 5}, "this run", "less", available=5) is None
    monkeypatch.setattr(memory, "available_bytes", lambda: None)      # the platform does not say: no refusal
    assert memory.too_large({"data": 1 << 60}, "this run", "less") is None


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A tiny run's checkpoint folder (blobs, img_size 8)."""
    if importlib.util.find_spec("safetensors") is None:
        pytest.skip("safetensors is not installed")
    root = tmp_path_factory.mktemp("run") / "ck"
    train(TrainConfig(samples=16, seq_len=2, img_size=8, embed_dim=8, num_heads=2, ff_dim=8, epochs=1,
                      batch_size=8, checkpoint_dir=str(root), progress=False), log=quiet)
    return root


def test_an_edited_checkpoint_too_large_to_build_is_refused(checkpoint, tmp_path, capsys):
    source = next(p for p in checkpoint.iterdir() if p.is_dir())
    edited = tmp_path / source.name
    edited.mkdir()
    for f in source.iterdir():
        (edited / f.name).write_bytes(f.read_bytes())
    meta = json.loads((edited / "checkpoint.json").read_text())
    meta["model_config"]["img_size"] = 1_000_000      # 8 trillion embedding weights
    meta["checksum"] = _checksum(meta)                # edited with care: only the size is wrong
    (edited / "checkpoint.json").write_text(json.dumps(meta))
    before = sorted(os.listdir(edited))
    (tmp_path / "x.npy").write_bytes(b"")             # an input there: the checkpoint is what is refused
    for command in (["evaluate"], ["predict", str(tmp_path / "x.npy")]):
        assert cli.main([*command, "--checkpoint", str(edited)]) == 1
        assert_short_error(capsys.readouterr().err, f"lpm {command[0]}: error: checkpoint {edited}: its model "
                           "(8,000,000,000,", "img_size 1000000", "needs about 29.1 TiB of memory", "is available")
    assert sorted(os.listdir(edited)) == before


# ---- 8. lpm evaluate / lpm predict options ---------------------------------------------------------------
@pytest.mark.parametrize("argv, message", [
    (["evaluate", "--batch-size", "0"], "--batch-size must be >= 1, got 0"),
    (["evaluate", "--batch-size", "-1"], "--batch-size must be >= 1, got -1"),
    (["evaluate", "--samples", "1"], "--samples must be >= 2, got 1"),
    (["evaluate", "--samples", "-5"], "--samples must be >= 2, got -5"),
    (["evaluate", "--samples", "many"], "argument --samples: invalid int value: 'many'"),
    (["evaluate", "--samples", "1000000000000"], "this evaluation needs about "),     # 512 TB of frames
    (["predict", "--batch-size", "0", "x.npy"], "--batch-size must be >= 1, got 0"),
    (["predict", "--batch-size", "-1", "x.npy"], "--batch-size must be >= 1, got -1"),
    (["predict", "--top", "-2", "x.npy"], "--top must be >= 0, got -2"),
])
def test_evaluate_and_predict_options_are_checked_like_train_py(checkpoint, argv, message, capsys):
    status, err = exits([argv[0], "--checkpoint", str(checkpoint), *argv[1:]], capsys, run=cli.main)
    assert status == 2
    assert_short_error(err, f"lpm {argv[0]}: error: {message}")


def test_option_helpers_say_what_is_expected():
    assert options.at_least("--top", -1, 0) == "--top must be >= 0, got -1"
    assert options.at_least("--samples", None, 2) is None                 # not given
    assert options.within("--eval-split", 1.0, 0, 1) == "--eval-split must be in (0, 1), got 1.0"
    assert options.within("--momentum", 0.0, 0, 1, closed_low=True) is None
    assert options.within("--noise", float("nan"), 0, 1, closed_low=True) == "--noise must be in [0, 1), got nan"
    assert options.positive("--lr", float("inf")) == "--lr must be a positive number, got inf"
    assert options.non_negative("--weight-decay", -1e-3) == "--weight-decay must be >= 0, got -0.001"
    assert options.problems(None, "a", None, "b") == ["a", "b"]


# ---- 6. .npz labels ----------------------------------------------------------------------------------------
def write_npz(path, labels, **extra):
    images = np.random.default_rng(0).random((len(labels), 2, 4, 4), dtype=np.float32)
    np.savez(path, images=images, labels=np.asarray(labels), **extra)
    return path


@pytest.mark.parametrize("labels, fragments", [
    ([0, 1, 0, 1, 0, 10 ** 9], ["out of range: 1000000000 at position 5", "at most as many classes as sequences, 6"]),
    ([0, 1, 0, 1, 10 ** 5, 10 ** 5], ["out of range: 100000 at position 4 and 1 more"]),
    ([0, 1, -1, 0, 1, -7], ["out of range: -1 at position 2 and 1 more", "class indices 0..5"]),
])
def test_npz_labels_are_bounded_and_one_line(tmp_path, labels, fragments, capsys):
    npz = write_npz(tmp_path / "data.npz", labels)
    status, err = exits(["--data", str(npz), *TINY], capsys)
    assert status == 1
    assert_short_error(err, f"train.py: error: {npz}: label(s) ", *fragments)
    assert npz.exists()


def test_class_limits_and_long_lists_are_summarised(tmp_path):
    labels = np.arange(20_001)                        # more than the 10,000 classes once allowed: fine
    assert files.check_labels(labels, len(labels), None, "x.npz").tolist() == labels.tolist()
    labels[1] = len(labels)                           # without class_names, a class for each sequence at most
    with pytest.raises(DataError, match="class indices 0..20000 .*as many classes as sequences, 20001\\)$"):
        files.check_labels(labels, len(labels), None, "x.npz")
    with pytest.raises(DataError) as error:
        files.check_classes(np.array([0, 99]), [str(c) for c in range(100)], "x.npz")
    assert str(error.value) == ("x.npz: 98 class(es) without any sequence: 1, 2, 3, 4, 5 and 93 more (every class "
                                "needs at least one; remove the class or add sequences)")
    assert short_list(["a", "b"]) == "a, b" and short_list(range(7), 2) == "0, 1 and 5 more"


# ---- 7. silent data problems ------------------------------------------------------------------------------------
def test_frames_without_pixels_are_refused_with_the_file(tmp_path, capsys):
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        np.save(tmp_path / name / "s1.npy", np.full((3, 4, 4), 0.5, np.float32))
    bad = tmp_path / "a" / "s2.npy"
    np.save(bad, np.zeros((5, 0, 20), np.float32))
    status, err = exits(["--data", str(tmp_path), *TINY], capsys)
    assert status == 1
    assert_short_error(err, f"train.py: error: {bad}: frames of 20x0 pixels (shape (5, 0, 20))")
    assert bad.exists()
    np.savez(tmp_path / "flat.npz", images=np.zeros((2, 3, 4, 0)), labels=np.array([0, 1]))
    with pytest.raises(DataError, match=r"flat\.npz: images of shape \(2, 3, 4, 0\) have no pixels"):
        files.open_dataset(tmp_path / "flat.npz", seq_len=2, img_size=4)


def test_npz_files_beside_class_folders_are_read(tmp_path):
    rng = np.random.default_rng(3)
    folder = {name: rng.random((2, 4, 4), dtype=np.float32) for name in ("a", "b")}
    for name, frames in folder.items():
        (tmp_path / name).mkdir()
        np.save(tmp_path / name / "s.npy", frames)
    packed = rng.random((3, 2, 4, 4), dtype=np.float32)
    np.savez(tmp_path / "more.npz", images=packed, labels=np.array([1, 0, 1]), class_names=np.array(["c", "b"]))
    (tmp_path / "notes.txt").write_text("not data")
    ds = files.open_dataset(tmp_path, seq_len=2, img_size=4)
    assert ds.class_names == ("a", "b", "c")
    assert ds.labels.tolist() == [0, 1, 1, 2, 1]      # folders a, b, then the .npz's b, c, b by name
    np.testing.assert_array_equal(ds[[0, 1]], np.stack([folder["a"], folder["b"]]))
    np.testing.assert_array_equal(ds[[2, 3, 4]], packed)
    assert ds.describe(3) == f"{tmp_path / 'more.npz'}: images[1]"
    assert any("read 3 sequence(s) from more.npz beside the class folders" in n for n in ds.notes)
    assert any("ignored 1 file(s)" in n and "neither class folders nor .npz" in n for n in ds.notes)
    assert (tmp_path / "notes.txt").exists()


def test_extensions_in_any_case(tmp_path):
    images = np.random.default_rng(4).random((4, 2, 4, 4), dtype=np.float32)
    with open(tmp_path / "GOOD.NPZ", "wb") as f:          # np.savez would add .npz to the name
        np.savez(f, images=images, labels=np.array([0, 1, 0, 1]))
    ds = files.open_dataset(tmp_path / "GOOD.NPZ", seq_len=2, img_size=4)
    assert ds.labels.tolist() == [0, 1, 0, 1]
    np.testing.assert_array_equal(ds[[0, 1, 2, 3]], images)
    (tmp_path / "c").mkdir()
    with open(tmp_path / "c" / "CLIP.NPY", "wb") as f:
        np.save(f, images[0])
    from lpm.inference import read_inputs

    (name, frames), = read_inputs([str(tmp_path / "c" / "CLIP.NPY")], 2, 4)
    np.testing.assert_array_equal(frames, images[0])
    rows = read_inputs([str(tmp_path / "GOOD.NPZ")], 2, 4)
    assert [r[0] for r in rows] == [f"{tmp_path / 'GOOD.NPZ'}[{i}]" for i in range(4)]


# ---- 12. integer images --------------------------------------------------------------------------------------
def test_pixel_transformer_refuses_integer_images():
    gt.manual_seed(0)
    model = PixelTransformer(img_size=4, embed_dim=8, num_heads=2, num_layers=1, ff_dim=8, num_classes=3)
    pixels = np.random.default_rng(5).integers(0, 256, (2, 3, 4, 4), dtype=np.uint8)
    # a uint8 array made a gt tensor keeps uint8 (as torch's), where gt widened it to int64 before
    for images, dtype in ((pixels, "uint8"), (gt.tensor(pixels), "gt.uint8"), (gt.from_numpy(pixels), "gt.uint8"),
                          (pixels > 127, "bool"), (pixels.tolist(), "gt.int64"), (gt.tensor(pixels).char(), "gt.int8")):
        with pytest.raises(TypeError) as error:
            model(images)
        message = str(error.value)
        assert message.startswith(f"PixelTransformer: expected floating-point images (pixels in [0, 1]), got {dtype}")
        assert "images.astype(np.float32) / 255" in message and "\n" not in message
    scaled = pixels.astype(np.float32) / 255
    expected = model(gt.tensor(scaled)).numpy()
    np.testing.assert_allclose(model(gt.from_numpy(pixels).float() / 255).numpy(), expected, rtol=1e-6)
    np.testing.assert_allclose(model(scaled).numpy(), expected, rtol=1e-6)
    np.testing.assert_allclose(model(scaled.astype(np.float64)).numpy(), expected, rtol=1e-6)   # cast to float32
    assert model(scaled.astype(np.float64)).dtype == gt.float32


def test_uint8_files_still_train(tmp_path):
    images, labels = make_moving_blobs(24, seq_len=2, img_size=8, seed=1)
    pixels = (images * 255).astype(np.uint8)               # what a user saves from 8-bit frames
    np.savez(tmp_path / "clips.npz", images=pixels, labels=labels)
    ds = files.open_dataset(tmp_path / "clips.npz", seq_len=2, img_size=8)
    np.testing.assert_allclose(ds[np.arange(24)], pixels / np.float32(255), rtol=1e-6)
    result = train(parse_args(["--data", str(tmp_path / "clips.npz"), *TINY]), log=quiet)
    assert len(result["losses"]) == 1 and np.isfinite(result["losses"][0])
    assert (tmp_path / "clips.npz").exists()
