"""The thread policy (all free cores, one on a busy machine; gt.set_num_threads) and the direct
calls into numpy's BLAS (axpy, gemm with beta) that the numpy engine's fast paths use."""

import os

import numpy as np
import pytest

import gt
from gt import config
from gt.backend import B, blas, threads
from gt.backend.threads import ThreadPolicy


class FakeLibrary:
    def __init__(self, n=2):
        self.n, self.history = n, []

    def get(self):
        return self.n

    def set(self, n):
        self.n = n
        self.history.append(n)


def _policy(loads, start=2, cores=2, fixed=None):
    lib, readings = FakeLibrary(start), iter(loads)
    policy = ThreadPolicy(lib.get, lib.set, others=lambda: next(readings), cores=cores, fixed=fixed)
    return policy, lib


def _tick(policy):
    policy._next = 0.0     # as if INTERVAL had passed
    policy.tick()


def test_a_busy_machine_gets_one_thread_and_a_quiet_one_every_core_back():
    policy, lib = _policy([0, 0, 0, 2, 0, 2, 2, 0, 0])
    for _ in range(3):
        _tick(policy)
    assert lib.n == 2 and lib.history == []           # quiet: the library's own choice
    _tick(policy)
    assert lib.n == 2                                 # one busy reading among quiet ones: a blip
    _tick(policy)
    _tick(policy)
    assert lib.n == 1                                 # two busy threads elsewhere, twice in three readings
    _tick(policy)
    assert lib.n == 1
    _tick(policy)
    _tick(policy)
    assert lib.n == 2 and lib.history == [1, 2]       # quiet again


def test_a_fixed_count_reaches_a_library_changed_behind_the_policy():
    # the user's own torch.set_num_threads(4) after gt fixed 1: gt.set_num_threads(1) must still set 1
    policy, lib = _policy([], fixed=1)
    lib.n = 4
    policy.set_fixed(1)
    assert lib.n == 1 and lib.history[-1] == 1
    policy.set_fixed(1)
    assert lib.history.count(1) == 2                  # nothing set where the library already has it


def test_load_from_the_start_switches_at_once():
    policy, lib = _policy([2, 2])
    _tick(policy)
    assert lib.n == 1


def test_the_count_never_exceeds_what_the_library_started_with_nor_drops_below_one():
    policy, lib = _policy([0, 9], start=2, cores=8)
    _tick(policy)
    assert lib.n == 2
    _tick(policy)
    assert lib.n == 1
    policy, lib = _policy([3], start=8, cores=8)
    _tick(policy)
    assert lib.n == 5


def test_readings_are_taken_at_most_every_interval():
    policy, lib = _policy([0, 5])
    policy.tick()
    policy.tick()            # within INTERVAL: no second reading
    assert lib.n == 2


def test_a_fixed_count_is_kept_until_auto_again():
    policy, lib = _policy([5, 0, 0, 0], fixed=2)
    _tick(policy)
    assert lib.n == 2
    policy.set_fixed("auto")
    _tick(policy)
    assert lib.n == 1
    policy.set_fixed(2)
    assert lib.n == 2


def test_without_proc_the_library_keeps_its_choice():
    policy, lib = _policy([None])
    _tick(policy)
    assert lib.n == 2 and policy.fixed == 2


@pytest.mark.skipif(not os.path.exists("/proc/loadavg"), reason="no /proc on this system")
def test_runnable_others_reads_the_machine():
    others = threads.runnable_others()
    assert isinstance(others, int) and others >= 0


def test_set_num_threads_reaches_the_library():
    before = gt.get_num_threads()
    try:
        gt.set_num_threads(1)
        assert gt.get_num_threads() == 1
        if B.name == "numpy" and blas.find() is not None:
            threadpoolctl = pytest.importorskip("threadpoolctl")
            info = [lib for lib in threadpoolctl.threadpool_info() if lib["user_api"] == "blas"]
            assert any(lib["num_threads"] == 1 for lib in info)
    finally:
        gt.set_num_threads(config.num_threads())     # as the environment says (tests/conftest.py)
    assert gt.get_num_threads() == before or config.num_threads() == "auto"


@pytest.mark.parametrize("bad", [0, -2, 1.5, "two", True])
def test_set_num_threads_rejects_what_is_no_thread_count(bad):
    with pytest.raises(ValueError, match="positive int or 'auto'"):
        gt.set_num_threads(bad)


@pytest.mark.parametrize("value, expected", [(None, "auto"), ("auto", "auto"), ("AUTO", "auto"), ("3", 3)])
def test_gt_num_threads_is_read(monkeypatch, value, expected):
    if value is None:
        monkeypatch.delenv("GT_NUM_THREADS", raising=False)
    else:
        monkeypatch.setenv("GT_NUM_THREADS", value)
    assert config.num_threads() == expected


@pytest.mark.parametrize("value", ["0", "-1", "many"])
def test_a_bad_gt_num_threads_is_named(monkeypatch, value):
    monkeypatch.setenv("GT_NUM_THREADS", value)
    assert any("GT_NUM_THREADS must be a positive integer or 'auto'" in p and repr(value) in p
               for p in config.environment_problems())


# ---- numpy's BLAS, called directly ------------------------------------------------------------
lib = blas.find()
needs_blas = pytest.mark.skipif(lib is None, reason="numpy's BLAS cannot be called directly here")


@needs_blas
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("layout", ["CCC", "FCC", "CFC", "FFF", "CCF"])
def test_gemm_into_c_matches_numpy_for_every_layout(dtype, layout):
    rng = np.random.default_rng(0)
    la, lb, lc = layout
    a = np.asarray(rng.standard_normal((37, 23)), dtype, order=la)
    b = np.asarray(rng.standard_normal((23, 41)), dtype, order=lb)
    c = np.asarray(rng.standard_normal((37, 41)), dtype, order=lc)
    expected = c - 0.5 * (a @ b)
    assert lib.gemm_(c, a, b, -0.5, 1.0)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(c, expected, rtol=tol, atol=tol)


@needs_blas
def test_gemm_declines_what_it_cannot_do_without_touching_c():
    a, b = np.ones((4, 3), np.float32), np.ones((3, 5), np.float32)
    c = np.zeros((4, 5), np.float32)
    assert not lib.gemm_(c, a.astype(np.float64), b, 1.0)        # mixed dtypes
    assert not lib.gemm_(c, np.ones((4, 6), np.float32)[:, ::2], b, 1.0)   # no unit stride
    assert not lib.gemm_(c[:, :4], a, b, 1.0)                  # wrong output shape
    assert not lib.gemm_(c, c[:, :3], b, 1.0)                  # output overlaps an input
    assert not lib.gemm_(c, np.broadcast_to(a[:1], (4, 3)), b, 1.0)   # one row repeated: stride 0
    assert not lib.gemm_(c, a, np.broadcast_to(b[:, :1], (3, 5)), 1.0)
    assert not lib.gemm_(c, a[::-1], b, 1.0)                   # rows running backwards
    np.testing.assert_array_equal(c, 0)


def test_in_backward_sgd_of_an_expanded_input_updates_as_its_copy():
    """The weight's update written by the gemm (SGD(in_backward=True)) from an input broadcast
    along its rows: the kernel cannot read a stride-0 row (it read past the array: a weight of
    5e36 where the update is a few units), so the product takes a copy."""
    weights = []
    for expand in (True, False):
        gt.manual_seed(0)
        lin = gt.nn.Linear(4, 3)
        opt = gt.optim.SGD(lin.parameters(), lr=0.1, in_backward=True)
        row = gt.tensor(np.arange(1, 5, dtype=np.float32).reshape(1, 4))
        x = row.expand(6, 4) if expand else gt.tensor(np.repeat(row.numpy(), 6, axis=0))
        (lin(x) ** 2).sum().backward()
        opt.step()
        weights.append(lin.weight.numpy())
    if gt.sharding.get_mesh().size == 1:
        np.testing.assert_array_equal(weights[0], weights[1])
    else:           # on a mesh the copy's rows are sharded and the expanded row is not: another order of the sums
        np.testing.assert_allclose(weights[0], weights[1], rtol=1e-6)


@needs_blas
def test_axpy_is_a_fused_multiply_add_on_large_vectors_only():
    rng = np.random.default_rng(0)
    y = rng.standard_normal(1 << 17).astype(np.float32)
    x = rng.standard_normal(y.size).astype(np.float32)
    exact = y.astype(np.float64) + np.float64(np.float32(0.3)) * x
    assert lib.axpy(0.3, x, y)
    np.testing.assert_array_equal(y, exact.astype(np.float32))  # one rounding: the exact sum, rounded
    assert not lib.axpy(0.3, x[:100], y[:100])                  # small: numpy's own loop is cheaper
    assert not lib.axpy(0.3, x[::2], y[::2])                    # not contiguous


@pytest.mark.parametrize("dtype", [gt.int64, gt.int32])
def test_scaled_addition_of_a_large_integer_tensor_stays_exact(dtype):
    """Integer tensors big enough for the BLAS path take the plain arithmetic (BLAS is for floats)."""
    n = 600_000
    t = gt.zeros(n, dtype=dtype)
    t.add_(gt.ones(n, dtype=dtype), alpha=2)
    np.testing.assert_array_equal(t.numpy(), np.full(n, 2))


# ---- how long OpenBLAS's idle threads spin (Blas.spin) ------------------------------------------
SPIN_PROBE = """
import os, sys, threading
if sys.argv[1] == "thread":                       # another Python thread, as a data loader's
    threading.Thread(target=threading.Event().wait, daemon=True).start()
import gt
(gt.randn(8, 8) @ gt.randn(8, 8)).numpy()         # the engine's first product finds its BLAS
from gt.backend import B
print(B._blas.controller.dynlib.openblas_thread_timeout(), "OPENBLAS_THREAD_TIMEOUT" in os.environ, B._blas.brief_spin)
"""


def _spin_probe(how="plain", **env):
    import subprocess
    import sys

    # the probe picks its engine and one device itself: its answer is the same in every pass of CI,
    # so its tests run in the first (first_pass; Blas.spin reads only OpenBLAS's variables and threads)
    full = {k: v for k, v in os.environ.items()
            if k not in ("OPENBLAS_THREAD_TIMEOUT", "GOTO_THREAD_TIMEOUT", "GT_DEVICES")}
    full.update(GT_BACKEND="numpy", GT_BLAS="numpy", **env)     # OpenBLAS's own threads, even where MKL is there
    r = subprocess.run([sys.executable, "-c", SPIN_PROBE, how], env=full, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return r.stdout.split(), r.stderr


openblas_pthreads = pytest.mark.skipif(
    lib is None or lib.controller.internal_api != "openblas"
    or getattr(lib.controller, "threading_layer", None) != "pthreads"
    or not hasattr(lib.controller.dynlib, "openblas_read_env"),
    reason="numpy's BLAS is not OpenBLAS with its own threads here")


@openblas_pthreads
@pytest.mark.first_pass
def test_the_engine_shortens_openblas_spin_and_leaves_the_environment_as_it_was():
    out, err = _spin_probe(GT_VERBOSE="1")
    assert out == [str(blas.SPIN_LOG2), "False", "True"]
    assert f"spin 2**{blas.SPIN_LOG2} cycles" in err


@openblas_pthreads
@pytest.mark.first_pass
@pytest.mark.parametrize("name", ["OPENBLAS_THREAD_TIMEOUT", "GOTO_THREAD_TIMEOUT"])
@pytest.mark.parametrize("value, brief", [("25", False), ("12", True), ("1", True), ("soon", False)])
def test_a_spin_the_user_set_stands(name, value, brief):
    """The user's setting is left as it is; kernels are split only where it is brief (OpenBLAS
    takes values under 4 as 4 when its threads start, and in the versions that read their
    environment once it reads no GOTO_THREAD_TIMEOUT)."""
    out, err = _spin_probe(**{name: value, "GT_VERBOSE": "1"})
    mine = name == "OPENBLAS_THREAD_TIMEOUT"
    timeout = "0" if not mine or value == "soon" else value      # the library's reading, before its clamp
    assert out == [timeout, str(mine), str(mine and brief)]
    assert "spin 2**" not in err


@openblas_pthreads
@pytest.mark.first_pass
def test_the_spin_is_left_alone_while_another_thread_runs():
    out, err = _spin_probe("thread", GT_VERBOSE="1")
    assert out == ["0", "False", "False"]         # 0: OpenBLAS's own default, never set
    assert "spin 2**" not in err
