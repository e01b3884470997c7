"""Timing helpers of the benchmarks: frameworks taking turns on the same batches."""

import statistics
import time


def timed(fn):
    """Seconds one call of ``fn()`` takes."""
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


BLOCK = 5  # steps of one framework before the other takes its turn (the first untimed)


def take_turns(fns, batches, warmup, steps, block, keep=lambda out: out):
    """Time each function on the same sequence of batches, taking turns: ``block`` consecutive
    calls of one (the first of each block untimed when ``block`` > 1), then the next, until each
    has ``steps`` timed calls after ``warmup`` untimed ones. Returns ({name: [seconds]},
    {name: [keep(result) of each timed call]}, {name: [minor page faults of each timed call]});
    ``keep`` runs outside the timed region."""
    times = {name: [] for name in fns}
    results = {name: [] for name in fns}
    faults = {name: [] for name in fns}
    done = {name: 0 for name in fns}  # calls so far: the index of the next batch
    while any(len(t) < steps for t in times.values()):
        for name, fn in fns.items():
            for j in range(block + (block > 1)):
                if len(times[name]) >= steps:
                    break
                args = batches[done[name] % len(batches)]
                f0 = _minor_faults()
                t0 = time.perf_counter()
                out = fn(*args)
                dt = time.perf_counter() - t0
                f1 = _minor_faults()
                done[name] += 1
                if done[name] > warmup and (block == 1 or j > 0):
                    times[name].append(dt)
                    faults[name].append(f1 - f0)
                    results[name].append(keep(out))
    return times, results, faults


def _minor_faults():
    """Minor page faults of this process so far (first touches of freshly mapped memory)."""
    try:
        import resource
    except ImportError:  # not on Linux/Unix: no figure
        return 0
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def summary(seconds):
    """Min and median (ms) and the count of a list of step times (seconds)."""
    return {"min_ms": 1e3 * min(seconds), "median_ms": 1e3 * statistics.median(seconds), "steps": len(seconds)}


def gt_train_step(model, opt, flat=False):
    """One gt training step as a user writes it: loss, ``backward``, ``step``, ``zero_grad``.
    ``flat``: logits (B, T, V) and targets (B, T) are scored as B*T rows (a decoder)."""
    import gt
    from gt.nn import functional as F

    def step(x, y):
        logits, target = model(gt.from_numpy(x)), gt.from_numpy(y)
        if flat:
            logits, target = logits.reshape(-1, logits.shape[-1]), target.reshape(-1)
        loss = F.cross_entropy(logits, target)
        loss.backward()
        opt.step()
        opt.zero_grad()
        return loss

    return step


_torch_threads = []   # PyTorch's own intra-op thread count, read once (torch_threads)


def torch_threads():
    """The intra-op thread count PyTorch chose for itself, read the first time this is called
    (the benchmark calls it before gt has run anything)."""
    if not _torch_threads:
        import torch

        _torch_threads.append(torch.get_num_threads())
    return _torch_threads[0]


def with_torch_threads(fn):
    """``fn`` (a PyTorch step) run with PyTorch's own thread count (``torch_threads``), the count
    found before it put back afterwards. gt's torch engine shares torch's one thread pool, and
    its thread policy lowers the count on a busy machine (gt/backend/threads.py): without this,
    PyTorch's steps beside it would run with gt's choice, and "PyTorch's slowdown under load"
    would be that of PyTorch with gt's policy instead of PyTorch eager as its users run it. On
    the numpy engine gt leaves torch's count alone, and this changes nothing."""
    import torch

    own = torch_threads()

    def run(*args):
        found = torch.get_num_threads()
        if found != own:
            torch.set_num_threads(own)
        try:
            return fn(*args)
        finally:
            if found != own:
                torch.set_num_threads(found)

    return run


def torch_train_step(model, opt, flat=False):
    """The same step in PyTorch, in PyTorch's order (``zero_grad`` first), with PyTorch's own
    thread count (``with_torch_threads``)."""
    import torch
    from torch.nn import functional as F

    def step(x, y):
        opt.zero_grad()
        logits, target = model(torch.from_numpy(x)), torch.from_numpy(y)
        if flat:
            logits, target = logits.reshape(-1, logits.shape[-1]), target.reshape(-1)
        loss = F.cross_entropy(logits, target)
        loss.backward()
        opt.step()
        return loss

    return with_torch_threads(step)
