"""Fixtures shared by the test files: the small Pixel Transformers and training runs that keep
the suite cheap, and a mesh of virtual devices.

A test asks for one by name (``def test_x(small_run): train(TrainConfig(**small_run))``); each
call gets a fresh copy, so a test may change what it gets.
"""

import collections
import contextlib
import gc
import os
import random
import sys

# Runs that must repeat bit for bit (same seed, resume == uninterrupted) need one thread count
# throughout: by default the numpy engine's follows the machine's load (gt/backend/threads.py),
# and OpenBLAS adds a product's terms in another order on one thread than on two.
# Under pytest-xdist each worker gets its share of the cores, so that workers do not fight over them
# (torch's OpenMP threads wait for each other at every barrier when oversubscribed).
_CORES = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1") or 1)
# xdist's controller imports this file too (one worker as far as it knows) and its workers inherit its
# environment: a count this file set there is replaced by the worker's share (a user's is kept)
if os.environ.get("_GT_TESTS_SET_THREADS") == os.environ.get("GT_NUM_THREADS"):
    os.environ.pop("GT_NUM_THREADS", None)
if "GT_NUM_THREADS" not in os.environ:
    os.environ["GT_NUM_THREADS"] = os.environ["_GT_TESTS_SET_THREADS"] = str(max(1, _CORES // max(1, _WORKERS)))

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import gt  # noqa: E402
from gt.sharding import get_mesh, use_mesh
from lpm.model import PixelTransformer

_NUMPYS_ASSERT_ALLCLOSE = np.testing.assert_allclose


def _assert_allclose(actual, desired, rtol=1e-7, atol=0, equal_nan=True, err_msg="", verbose=True, *,
                     strict=False):
    """``np.testing.assert_allclose`` (the suite calls it some 100,000 times a pass, at ~0.1 ms a
    call), which passes at once where its own test plainly holds: two float arrays of one shape, a
    finite ``desired`` and |actual - desired| <= atol + rtol * |desired| everywhere, the formula of
    its ``isclose`` with the same tolerances and dtypes, so numpy's would pass too. Everything else
    (other types or shapes, strict=True, a NaN or inf, a value off) goes to numpy's, which decides
    and words the failure as ever."""
    if (type(actual) is np.ndarray and type(desired) is np.ndarray and not strict
            and actual.shape == desired.shape and actual.dtype.kind in "fc" and desired.dtype.kind in "fc"
            and isinstance(rtol, (int, float, np.number)) and isinstance(atol, (int, float, np.number))):
        with np.errstate(all="ignore"):        # no warning numpy's would not give (an overflow)
            if np.isfinite(desired).all() and (np.abs(actual - desired) <= atol + rtol * np.abs(desired)).all():
                return
    _NUMPYS_ASSERT_ALLCLOSE(actual, desired, rtol=rtol, atol=atol, equal_nan=equal_nan, err_msg=err_msg,
                            verbose=verbose, strict=strict)


np.testing.assert_allclose = _assert_allclose

# CI runs the suite four times: numpy on one device, GT_DEVICES=4, GT_BACKEND=torch, and torch on
# GT_DEVICES=2. A test whose answer no GT_* variable of this process can change runs once, not four
# times: `first_pass` marks one that starts its own processes with their own settings (or compares
# the two engines itself): it runs in the pass with neither variable set. `own_mesh` marks one that
# picks every mesh it uses with use_mesh(n): GT_DEVICES would only repeat it, so it is left out of the
# passes that set GT_DEVICES, and since 2026-12-07 out of the torch engine's pass too (it runs in the
# first pass; the torch engine's sharding is the fourth pass's, over the whole suite: the four passes
# ran over CI's 840 s on a 2-core AMD EPYC, the last at 99%). `table` marks a test parametrized over
# one of torch's own test tables (OpInfo, module, optimizer): the first pass runs every case, the torch
# engine's pass every 3rd and each pass that sets GT_DEVICES every 8th of each such test, the two
# sharded passes on other cases (numpy from the first, torch from the 5th: together every 4th), a
# spread of the table, to keep CI's four passes in time on the slower of the CPUs CI may get (a
# 2-core AMD EPYC ran the four passes in 300 / 159 / 210 / 176 s on 2026-12-07, a Xeon in 183 / 94 /
# 114 / 98 s). Any other test of more than _SPLIT_ABOVE cases runs every other case in each pass that
# sets GT_DEVICES, the numpy pass the 1st, 3rd, ... and the torch engine's the 2nd, 4th, ...: each case
# still runs sharded once, beside the one-device run of both engines (the sharding layer, gt/tensor/
# dispatch.py and gt/sharding, is the same for both engines; CI took 847 s of its 15 minutes on an AMD
# EPYC with every case in both). `commands` marks a test that starts the project's commands (train.py,
# lpm, two-process runs) in subprocesses and compares what they compute: the torch engine's
# one-device pass leaves it to the torch engine's two-device pass, which starts the same commands on
# the same engine, over its mesh (each start imports torch, 2-3 s of CPU: they were some 45 s of that
# pass's CPU time, and CI's last run took 835 s of its 900). What a pass leaves to another is
# deselected (pytest's "N deselected"; the header says how many for each marker), not skipped.
_DEVICES_FROM_ENV = os.environ.get("GT_DEVICES", "").strip() not in ("", "1")
_OTHER_ENGINE = os.environ.get("GT_BACKEND", "").strip().lower() not in ("", "numpy")
FIRST_PASS = not (_DEVICES_FROM_ENV or _OTHER_ENGINE)
_TABLE_OFFSET = 4 if _DEVICES_FROM_ENV and _OTHER_ENGINE else 0     # the torch engine's sharded pass: other cases
_SPLIT_ABOVE = 8     # a test of more cases runs every other case in each GT_DEVICES pass
_SPLIT_OFFSET = 1 if _OTHER_ENGINE else 0       # numpy the 1st, 3rd, ... case; torch the 2nd, 4th, ...
# GT_TEST_EVERY_CASE=1: every case of the tables and of the split tests in this pass too (a full sharded run)
_EVERY_CASE = os.environ.get("GT_TEST_EVERY_CASE", "").strip() not in ("", "0")
_LEFT = pytest.StashKey()      # what this pass left to the others: (Counter by marker, table stride)


def _left_to_another_pass(item, stride, seen, totals):
    """The marker for which this pass leaves ``item`` to another, or None when it runs here
    (``totals``: the cases of each table test; one of no more than the offset runs its first)."""
    if not FIRST_PASS and item.get_closest_marker("first_pass"):
        return "first_pass"
    if not FIRST_PASS and item.get_closest_marker("own_mesh"):
        return "own_mesh"
    if _OTHER_ENGINE and not _DEVICES_FROM_ENV and item.get_closest_marker("commands"):
        return "commands"
    key = (item.path, item.originalname)
    seen[key] += 1
    if item.get_closest_marker("table"):
        if (seen[key] - 1 - (_TABLE_OFFSET if totals[key] > _TABLE_OFFSET else 0)) % stride:
            return "table"
    elif _DEVICES_FROM_ENV and not _EVERY_CASE and totals[key] > _SPLIT_ABOVE and (seen[key] - 1 - _SPLIT_OFFSET) % 2:
        return "split"
    return None


def pytest_collection_modifyitems(config, items):
    """Deselects (rather than skips) what this pass leaves to another: a skipped item still goes
    through pytest's whole run protocol and report (about half a millisecond each), and the
    passes that set GT_DEVICES leave some 20,000 of the 32,000 items to the other passes."""
    stride = 1 if _EVERY_CASE else 8 if _DEVICES_FROM_ENV else 3 if _OTHER_ENGINE else 1
    if FIRST_PASS:
        return
    kept, dropped, left, seen = [], [], collections.Counter(), collections.Counter()
    totals = collections.Counter((i.path, i.originalname) for i in items)
    for item in items:
        marker = _left_to_another_pass(item, stride, seen, totals)
        if marker is None:
            kept.append(item)
        else:
            left[marker] += 1
            dropped.append(item)
    config.hook.pytest_deselected(items=dropped)
    items[:] = kept
    config.stash[_LEFT] = (left, stride)


def _deselection_line(left, stride):
    return (f"this pass deselects {sum(left.values())} items left to another pass: {left['first_pass']} first_pass "
            f"(the same in every pass: run without GT_DEVICES/GT_BACKEND), {left['own_mesh']} own_mesh (choose "
            f"their own meshes: run in the first pass), {left['table']} table cases (this pass "
            f"runs one case in {stride} of each test over torch's tables), {left['split']} cases of tests of "
            f"more than {_SPLIT_ABOVE} cases (each GT_DEVICES pass runs every other case, the two passes the others), "
            f"{left['commands']} commands (start the project's commands: the torch engine's sharded pass runs them)")


def pytest_report_collectionfinish(config, start_path, items):
    left, stride = config.stash.get(_LEFT, (None, 1))
    return _deselection_line(left, stride) if left else None


# Under pytest-xdist (CI runs every pass with -n auto) the workers collect and deselect, and the
# controller's report shows neither their header nor a deselected count: each worker hands its
# counts back (all collect the same items) and the controller prints the line at the end.
_WORKERS_LEFT = []


def pytest_sessionfinish(session):
    left = session.config.stash.get(_LEFT, None)
    if left and hasattr(session.config, "workeroutput"):
        session.config.workeroutput["gt_deselected"] = (dict(left[0]), left[1])


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error):
    left = getattr(node, "workeroutput", {}).get("gt_deselected")
    if left:
        _WORKERS_LEFT.append(left)


def pytest_terminal_summary(terminalreporter):
    if _WORKERS_LEFT:
        left, stride = _WORKERS_LEFT[0]
        terminalreporter.write_line(_deselection_line(collections.Counter(left), stride))


@pytest.hookimpl(wrapper=True)
def pytest_collection(session):
    """Collection (the test modules, torch's test tables, some 25,000 items) builds a million
    objects that mostly live on, and the cycle collector walked them again at each full pass as
    they grew: a tenth of the collection's CPU time, in every process of every pass. They are then
    frozen (``gc.freeze``): each full collection during the tests, and pytest's own at the end, would
    walk them all again (about 1 s of CPU each). Reference counting still frees them; only the
    collection's cyclic garbage (some 85,000 objects) is never freed."""
    gc.disable()
    try:
        return (yield)
    finally:
        gc.freeze()
        gc.enable()


_TORCH_SHARED = []     # torch's count was set (under pytest-xdist): once per worker


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    """Under pytest-xdist, torch's own intra-op pool (the reference side of the comparisons on the
    numpy engine, which GT_NUM_THREADS does not reach) gets this worker's share of the cores too, from
    the first test after torch's import: left at one thread per core, each of the two workers on 2 cores
    ran two OpenMP threads that wait for each other at every parallel region (five parity files under
    -n 2 beside other work: 53-62 s against 32-35 s with one thread each)."""
    _seed_every_generator()
    if _WORKERS > 1 and not _TORCH_SHARED and "torch" in sys.modules:
        _TORCH_SHARED.append(True)
        gt_module = sys.modules.get("gt")
        if gt_module is not None and gt_module.get_backend() == "torch":
            return      # GT_NUM_THREADS set torch's count through gt's policy: setting it here too would split them
        sys.modules["torch"].set_num_threads(max(1, _CORES // _WORKERS))


def _seed_every_generator():
    """Each test starts from the same random state, whatever ran before it in its process: under
    pytest-xdist (every pass of CI) the tests a worker runs, and so the draws left before each, change
    from run to run, and a test of unseeded draws whose tolerance holds for most draws (a float32 sum
    near zero against rtol alone failed for 6% of draws) would fail now and then. gt's generator,
    numpy's and Python's global ones and torch's CPU generator (about 20 us a test)."""
    gt.manual_seed(0)
    np.random.seed(0)
    random.seed(0)
    if "torch" in sys.modules:
        sys.modules["torch"].default_generator.manual_seed(0)


def _raises_after_a_host_read(raises):
    """``pytest.raises`` whose block ends with a host read of gt's queued value checks: on a GPU a
    bad index or pixel is reported at the next read (gt/tensor/checks.py), where on the CPU it is
    raised at once, and the tests say what is raised, not when."""
    @contextlib.contextmanager
    def flushing(expected, *args, **kwargs):
        with raises(expected, **kwargs) as info:
            yield info
            gt.checks.flush()

    def checked(expected, *args, **kwargs):
        if args:                            # the callable form: pytest.raises(Error, fn, *args)
            return raises(expected, lambda: (args[0](*args[1:], **kwargs), gt.checks.flush()))
        return flushing(expected, **kwargs)
    return checked


if gt.cuda.is_available():                  # gt computes on a GPU: value checks wait for a host read
    pytest.raises = _raises_after_a_host_read(pytest.raises)


# A training run of a few milliseconds: 32 training sequences of 3 8x8 frames, 4 steps per epoch.
SMALL_RUN = dict(img_size=8, samples=40, seq_len=3, embed_dim=8, num_heads=2, ff_dim=16, batch_size=8,
                 progress=False)
# The model those runs build (3 classes), for tests of checkpoints and state dicts.
SMALL_MODEL = dict(img_size=8, embed_dim=8, num_heads=2, num_layers=1, ff_dim=16, num_classes=3)
# Two blocks, 12x12 frames and an odd class count: small, but every shape distinct, for comparisons
# across devices and with torch.
SMALL_MODEL_CONFIG = dict(img_size=12, embed_dim=32, num_heads=4, num_layers=2, ff_dim=64, num_classes=5,
                          max_seq_len=8)


@pytest.fixture
def small_run():
    """``TrainConfig`` arguments of a tiny run (``epochs`` left to the data set's default)."""
    return dict(SMALL_RUN)


@pytest.fixture
def small_model():
    """A factory: ``small_model(seed=None, **overrides)`` builds the ``SMALL_MODEL`` Pixel
    Transformer, after ``gt.manual_seed(seed)`` when a seed is given."""
    def make(seed=None, **overrides):
        if seed is not None:
            gt.manual_seed(seed)
        return PixelTransformer(**{**SMALL_MODEL, **overrides})
    return make


@pytest.fixture
def small_model_config():
    """``PixelTransformer`` arguments of the two-block model compared across devices and with torch."""
    return dict(SMALL_MODEL_CONFIG)


@pytest.fixture
def mesh4():
    """Four virtual devices for the test's duration (``use_mesh(4)``); yields the mesh."""
    with use_mesh(4):
        yield get_mesh()


@pytest.fixture(autouse=True)
def _device_errors_stay_with_their_test():
    """On a GPU mesh, an error a test leaves on the device is reported against that test, not the
    next one: value checks queued until a host read (gt/tensor/checks.py) that no read raised, and a
    CUDA device-side assert. The assert loses the process's CUDA context for good, so the process
    ends (pytest-xdist reports the test as the one its worker crashed in and starts a fresh worker)
    instead of failing every later test of the process. On the CPU checks run at once: nothing to do."""
    yield
    from gt.sharding import mesh
    from gt.tensor import checks

    if mesh._mesh is None or mesh._mesh.kind == "cpu":      # read without deciding the mesh
        return

    queued = list(checks._pending)
    checks._pending.clear()
    try:
        import torch
        torch.cuda.synchronize()
    except RuntimeError as exc:                       # torch.AcceleratorError is a RuntimeError
        import sys
        sys.stderr.write(f"\n{os.environ.get('PYTEST_CURRENT_TEST', 'a test')} left a CUDA error: {exc}\n")
        sys.stderr.flush()
        if "PYTEST_XDIST_WORKER" in os.environ:
            os._exit(3)
        pytest.exit(f"a test left a CUDA error (the process cannot use the GPU again): {exc}", returncode=3)
    failed = [f"{error.__name__}: {message()}" for ok, error, message in queued if not ok.item()]
    if failed:
        pytest.fail("left a failed value check that no host read raised: " + "; ".join(failed))
