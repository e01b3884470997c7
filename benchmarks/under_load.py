"""Busy processes beside a benchmark: how a step fares on a machine that is shared.

``busy_processes(n)`` starts ``n`` Python processes that spin on the CPU (a pure-Python loop: no
BLAS, no threads of their own, one core each at most) and stops them when the ``with`` block
ends, also on an error or Ctrl-C. Should this process die without cleaning up (SIGKILL), each
spinner notices within a fraction of a second that its parent is gone and exits by itself, so
no busy process outlives the benchmark.

    with busy_processes(2) as pids:
        ...   # time the steps here

``slowdowns`` times steps that way and sets them against their quiet times.
"""

import contextlib
import os
import subprocess
import sys
import time

from timing import BLOCK, summary, take_turns   # benchmarks/timing.py, beside this module

# Spins in pure Python; every ~10^5 iterations it checks that the process that started it is
# still its parent (an orphan is re-parented), and leaves when it is not.
SPINNER = """
import os, sys
parent = int(sys.argv[1])
while os.getppid() == parent:
    for _ in range(100000):
        pass
"""


@contextlib.contextmanager
def busy_processes(n=2, settle_s=0.2):
    """Start ``n`` spinning processes, yield their pids, stop them (terminate, then kill) at exit.
    ``settle_s``: time to let them start spinning before the caller measures anything."""
    procs = []
    try:
        for _ in range(n):
            procs.append(subprocess.Popen([sys.executable, "-c", SPINNER, str(os.getpid())],
                                          stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                          stderr=subprocess.DEVNULL))
        time.sleep(settle_s)
        yield [p.pid for p in procs]
    finally:
        stop(procs)


def stop(procs, grace_s=2.0):
    """Terminate each process, kill what has not gone after ``grace_s``, and reap them all."""
    for p in procs:
        if p.poll() is None:
            p.terminate()
    deadline = time.monotonic() + grace_s
    for p in procs:
        try:
            p.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def alive(pid):
    """Whether a process with this pid exists (and is not a zombie, on Linux)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
    except OSError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def slowdowns(workloads, quiet, warmup, steps, busy=2, block=BLOCK):
    """Time each workload's step functions in blocks of ``block`` (as the quiet figures were
    taken; 1 for a single call each, as the benchmark's quick mode does) beside ``busy``
    spinning processes. ``workloads``: {figure: ({framework: step}, batches)};
    ``quiet``: {figure: {framework: quiet median ms}}. Returns {figure: {framework:
    {quiet_ms, loaded_ms, loaded_min_ms, slowdown}, "gt_vs_torch": gt's slowdown / torch's}}."""
    out = {}
    with busy_processes(busy):
        for figure, (fns, batches) in workloads.items():
            times, _, _ = take_turns(fns, batches, warmup, steps, block, keep=lambda loss: None)
            res = {}
            for k, ts in times.items():
                s = summary(ts)
                q = quiet[figure][k]
                res[k] = {"quiet_ms": q, "loaded_ms": s["median_ms"], "loaded_min_ms": s["min_ms"],
                          "steps": s["steps"], "slowdown": s["median_ms"] / q}
            if "torch" in res:
                res["gt_vs_torch"] = res["gt"]["slowdown"] / res["torch"]["slowdown"]
            out[figure] = res
    out["busy_processes"] = busy
    return out
