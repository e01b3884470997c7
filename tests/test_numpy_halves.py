"""The numpy engine's kernels in two halves at once (gt/backend/numpy_halves.py): the helper
thread's contract (every index once, errors raised in the caller, nested and concurrent calls,
fork), attention split over its batch giving the whole kernel's bits, only where the thread
policy gives the engine more than one core; and the ReLU primitives' fast paths, bit for bit."""

import os
import threading

import numpy as np
import pytest

import gt
from gt import config
from gt.backend import B
from gt.backend import numpy_kernels
from gt.backend.numpy_halves import Halves

numpy_only = pytest.mark.skipif(B.name != "numpy", reason="the numpy engine's kernels")


# ---- the helper thread -------------------------------------------------------------------------
def test_each_half_runs_once_and_the_second_on_another_thread():
    halves, seen = Halves(), []
    halves.run(lambda lo, hi: seen.append((lo, hi, threading.get_ident())), 7)
    assert sorted(s[:2] for s in seen) == [(0, 3), (3, 7)]
    by_range = {s[:2]: s[2] for s in seen}
    assert by_range[(0, 3)] == threading.get_ident()
    assert by_range[(3, 7)] != threading.get_ident()


@pytest.mark.parametrize("failing", [(0, 2), (2, 4)])
def test_an_error_in_either_half_is_raised_in_the_caller_after_both_ran(failing):
    halves, ran = Halves(), []

    def part(lo, hi):
        ran.append((lo, hi))
        if (lo, hi) == failing:
            raise ValueError(f"half {lo}:{hi}")

    with pytest.raises(ValueError, match=f"half {failing[0]}:{failing[1]}"):
        halves.run(part, 4)
    assert sorted(ran) == [(0, 2), (2, 4)]
    ran.clear()
    halves.run(lambda lo, hi: ran.append((lo, hi)), 4)      # still serving
    assert sorted(ran) == [(0, 2), (2, 4)]


def test_a_split_inside_a_split_runs_in_its_caller():
    halves, seen = Halves(), []

    def outer(lo, hi):
        halves.run(lambda a, b: seen.append((lo + a, lo + b, threading.get_ident())), hi - lo)

    halves.run(outer, 8)
    assert sorted(s[:2] for s in seen) == [(0, 2), (2, 4), (4, 6), (6, 8)]
    threads = {}
    for lo, hi, ident in seen:
        threads.setdefault(lo < 4, set()).add(ident)
    assert all(len(ids) == 1 for ids in threads.values())    # each inner split stayed on its thread


def test_concurrent_callers_each_get_their_whole_range():
    halves, errors = Halves(), []
    results = {}

    def caller(key):
        out = np.zeros(1000)
        try:
            for _ in range(50):
                out[:] = 0
                halves.run(lambda lo, hi: out.__setitem__(slice(lo, hi), out[lo:hi] + 1), out.size)
                assert (out == 1).all()
        except BaseException as e:
            errors.append(e)
        results[key] = out

    threads = [threading.Thread(target=caller, args=(k,)) for k in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert all((r == 1).all() for r in results.values())


@pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork")
def test_a_forked_child_starts_its_own_helper():
    halves = Halves()
    halves.run(lambda lo, hi: None, 2)                     # the parent's helper is running
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:                                           # the child: no helper thread was copied
        try:
            seen = []
            halves.run(lambda lo, hi: seen.append((lo, hi)), 6)
            os.write(w, repr(sorted(seen)).encode())
        finally:
            os._exit(0)
    os.close(w)
    with os.fdopen(r) as f:
        got = f.read()
    os.waitpid(pid, 0)
    assert got == "[(0, 3), (3, 6)]"


# ---- attention in halves -----------------------------------------------------------------------
ATTENTION_SHAPES = {
    "heads_causal": ((6, 4, 9, 8), (6, 4, 9, 8), True),
    "heads_cross": ((5, 2, 7, 4), (5, 2, 11, 4), False),
    "three_axes_causal": ((7, 13, 8), (7, 13, 8), True),
}


def _spy_on_splits(monkeypatch):
    """The list of the batch sizes split in halves from now on; the BLAS's threads taken to sleep
    soon (``Blas.spin``, which a test process with several threads does not set)."""
    B.get_num_threads()                                 # the engine finds its BLAS
    if not B._blas:
        pytest.skip("numpy's BLAS cannot be called directly here: no kernel is split")
    monkeypatch.setattr(B._blas, "brief_spin", True)
    split = []
    real_run = numpy_kernels._HALVES.run
    monkeypatch.setattr(numpy_kernels._HALVES, "run", lambda fn, n: (split.append(n), real_run(fn, n)))
    return split


def _attention(q, k, v, causal, packed, grad):
    out, state = B.attention_fused(q, k, v, 0.3, causal)
    grads = B.attention_fused_backward(grad, q, k, v, state, 0.3, causal, packed=packed)
    return [np.array(out), np.array(state)] + ([np.array(grads)] if packed else [np.array(g) for g in grads])


@numpy_only
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", list(ATTENTION_SHAPES))
def test_attention_in_halves_gives_the_whole_kernels_bits(name, dtype, monkeypatch):
    sq, sk, causal = ATTENTION_SHAPES[name]
    rng = np.random.default_rng(0)
    q, k, v = (rng.standard_normal(s).astype(dtype) * 2 for s in (sq, sk, sk))
    grad = rng.standard_normal(sq).astype(dtype)
    packed = len(sq) == 4 and sq == sk
    split = _spy_on_splits(monkeypatch)
    B.set_num_threads(2)
    try:
        monkeypatch.setattr(numpy_kernels, "SPLIT_MIN", 1 << 60)
        whole = _attention(q, k, v, causal, packed, grad)
        assert split == []
        monkeypatch.setattr(numpy_kernels, "SPLIT_MIN", 1)
        halves = _attention(q, k, v, causal, packed, grad)
        assert split == [sq[0], sq[0]]                  # forward and backward, over the batch axis
        for i, (a, b) in enumerate(zip(whole, halves)):
            assert a.dtype == b.dtype == dtype
            np.testing.assert_array_equal(a, b, err_msg=f"{name}: result {i}")
        for why in ("one core", "spinning BLAS threads"):   # the whole kernel again
            if why == "one core":
                B.set_num_threads(1)
            else:
                B.set_num_threads(2)
                monkeypatch.setattr(B._blas, "brief_spin", False)
            del split[:]
            again = _attention(q, k, v, causal, packed, grad)
            assert split == [], why
            for a, b in zip(whole, again):
                np.testing.assert_array_equal(a, b)
    finally:
        B.set_num_threads(config.num_threads())     # as the environment says (tests/conftest.py)


@numpy_only
def test_a_decoder_step_in_halves_is_the_whole_steps(monkeypatch):
    """A training step of a small causal transformer through nn gives the same loss and gradients
    with its attention in halves as whole."""
    def step():
        gt.manual_seed(0)
        block = gt.nn.TransformerBlock(16, 2, 32, causal=True)
        x = gt.randn(6, 5, 16, requires_grad=True)
        loss = (block(x) ** 2).mean()
        loss.backward()
        return [loss.numpy(), x.grad.numpy()] + [p.grad.numpy() for p in block.parameters()]

    split = _spy_on_splits(monkeypatch)
    B.set_num_threads(2)
    try:
        monkeypatch.setattr(numpy_kernels, "SPLIT_MIN", 1 << 60)
        whole = step()
        monkeypatch.setattr(numpy_kernels, "SPLIT_MIN", 1)
        halves = step()
        assert split == [6, 6]
    finally:
        B.set_num_threads(config.num_threads())     # as the environment says (tests/conftest.py)
    for a, b in zip(whole, halves):
        np.testing.assert_array_equal(a, b)


# ---- ReLU's primitives -------------------------------------------------------------------------
SPECIAL = [np.nan, -np.nan, 0.0, -0.0, np.inf, -np.inf, 1e-40, -1e-40, 3.5, -3.5]


def _with_specials(n, dtype, seed=0):
    x = np.random.default_rng(seed).standard_normal(n).astype(dtype)
    x[:min(n, len(SPECIAL))] = SPECIAL[:n]
    x[-min(n, len(SPECIAL)):] = SPECIAL[:min(n, len(SPECIAL))]
    return x


def _torch_relu(x, dtype):
    """np.maximum(x, 0), except that -0.0 stays -0.0: torch's relu returns x itself at a zero."""
    return np.where(x == 0, x, np.maximum(x, dtype(0)))


@numpy_only
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [7, numpy_kernels.ZERO_ROW - 1, numpy_kernels.ZERO_ROW, 3 * numpy_kernels.ZERO_ROW + 5])
def test_relu_is_numpys_maximum_with_zero_to_the_bit_but_keeps_minus_zero(n, dtype):
    x = _with_specials(n, dtype).reshape(-1, 1) if n % 2 else _with_specials(n, dtype)
    want = _torch_relu(x, dtype)
    got = B.relu(x)
    assert got.dtype == dtype and got.shape == x.shape
    np.testing.assert_array_equal(got.view(np.uint8), want.view(np.uint8))
    y = x.copy()
    assert B.relu_(y) is y
    np.testing.assert_array_equal(y.view(np.uint8), want.view(np.uint8))
    strided = np.repeat(x.reshape(-1), 2)[::2]                 # not contiguous: numpy's own call
    np.testing.assert_array_equal(B.relu(strided).view(np.uint8), _torch_relu(strided, dtype).view(np.uint8))


@numpy_only
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [10, 70001])
def test_relu_backward_passes_the_gradient_where_the_output_is_not_at_most_zero(n, dtype):
    out = np.maximum(_with_specials(n, dtype), dtype(0))
    grad = _with_specials(n, dtype, seed=1)[::-1].copy()
    with np.errstate(invalid="ignore"):                          # inf * 0 where blocked: NaN, as before
        want = grad * ~(out <= 0)                               # torch's rule: a NaN output passes
        got = B.relu_backward(grad, out)
    assert got.dtype == dtype
    np.testing.assert_array_equal(got.view(np.uint8), want.view(np.uint8))
    np.testing.assert_array_equal(out, np.maximum(_with_specials(n, dtype), dtype(0)))   # inputs untouched
    np.testing.assert_array_equal(grad, _with_specials(n, dtype, seed=1)[::-1])
