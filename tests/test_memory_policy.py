"""gt.retain_freed_memory (gt/backend/memory.py): freed memory stays in the process, so the next
step's arrays reuse it instead of faulting in fresh pages; the project's commands turn it on."""

import os
import subprocess
import sys

import pytest

import gt
from gt.backend import memory

GLIBC = memory._mallopt() is not None

# One "step": 24 arrays of 4 MiB written and freed, as activations are. The third step's page
# faults are counted: with glibc's defaults the freed heap top (96 MiB, beyond its trim
# threshold of twice the largest block freed) went back to the kernel, and every page faults again.
STEPS = """
import resource, sys
import numpy as np
if sys.argv[1] == "retain":
    import gt
    assert gt.retain_freed_memory()
def step():
    arrays = [np.ones(1 << 20, np.float32) for _ in range(24)]
    del arrays
step()
step()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
step()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""
PAGES = 24 * (4 << 20) // 4096


def _third_step_faults(mode):
    out = subprocess.run([sys.executable, "-c", STEPS, mode], capture_output=True, text=True, check=True,
                         env={**os.environ, "GT_BACKEND": "numpy"})
    return int(out.stdout.split()[-1])


@pytest.mark.skipif(not GLIBC, reason="mallopt is glibc's (Linux)")
@pytest.mark.first_pass     # its processes run numpy arrays on the numpy engine: the same in every pass
def test_a_step_reuses_the_memory_the_last_one_freed():
    default, retained = _third_step_faults("default"), _third_step_faults("retain")
    assert default > PAGES // 4, f"glibc's defaults should refault the freed pages ({default} of {PAGES})"
    assert retained < PAGES // 20, f"{retained} page faults of {PAGES} pages with retain_freed_memory()"


@pytest.mark.parametrize("limit", [-1, 0, 1 << 20, 2 ** 31, 1.5e8, True, "256M"])
def test_a_limit_out_of_range_is_refused_by_name(limit):
    with pytest.raises(ValueError, match=r"retain_freed_memory\(limit\).*got " + repr(limit).replace(".", r"\.")):
        gt.retain_freed_memory(limit)


@pytest.mark.skipif(not GLIBC, reason="mallopt is glibc's (Linux)")
def test_the_limit_in_force_is_reported(monkeypatch):
    monkeypatch.setattr(memory, "_applied", None)
    assert memory.retained_limit() is None
    try:
        assert gt.retain_freed_memory(64 << 20) is True
        assert memory.retained_limit() == 64 << 20
    finally:
        gt.retain_freed_memory(memory.DEFAULT_LIMIT)    # the suite's process keeps the commands' setting


def test_without_glibc_nothing_changes(monkeypatch):
    monkeypatch.setattr(memory, "_applied", None)
    monkeypatch.setattr(memory, "_mallopt", lambda: None)
    assert gt.retain_freed_memory() is False
    assert memory.retained_limit() is None


def test_the_commands_turn_it_on(monkeypatch):
    from lpm import commands

    calls = []
    monkeypatch.setattr(gt, "retain_freed_memory", lambda *a: calls.append(a) or True)
    assert commands.dispatch(["go"], "ppt", {"go": lambda argv, prog: 0}, "usage") == 0
    assert calls == [()]


def test_train_py_turns_it_on(monkeypatch):
    import lpm.train

    calls = []
    monkeypatch.setattr(gt, "retain_freed_memory", lambda *a: calls.append(a) or True)
    # main calls _train (not train) once its own checks pass: no epoch of the default data set here
    monkeypatch.setattr(lpm.train, "_train", lambda cfg, log, data: None)
    lpm.train.main(["--epochs", "1"])
    assert calls == [()]
