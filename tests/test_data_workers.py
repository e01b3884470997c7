"""DataLoader with worker processes: the batches equal the single-process loader's (order and
values), as torch's; worker info, seeds, init functions, persistent workers, streams, errors,
timeouts; and no process left behind."""

import multiprocessing
import os
import random
import time
import warnings

import numpy as np
import pytest

import gt
from gt.utils.data import DataLoader, Dataset, IterableDataset, TensorDataset, get_worker_info
from gt.utils.data.workers import _numpy_seed

# they start their own processes: the first pass runs them, except the equality with the
# single-process loader, whose batches (numpy or torch arrays, sharded or not) cross processes
first_pass = pytest.mark.first_pass


@pytest.fixture(autouse=True)
def no_leftover_processes():
    yield
    deadline = time.monotonic() + 5
    while multiprocessing.active_children() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert multiprocessing.active_children() == []


def dataset(n=10):
    return TensorDataset(gt.arange(n, dtype=gt.float32).reshape(n, 1) * 0.5, gt.arange(n))


def as_lists(batches):
    return [[t.tolist() for t in b] if isinstance(b, (list, tuple)) else b.tolist() for b in batches]


def pairs(samples):
    return [s[0] * 10 + s[1] for s in samples]


def tagged(samples):
    """A collate_fn that records which worker built the batch."""
    info = get_worker_info()
    return {"values": gt.tensor([int(s[1]) for s in samples]), "worker": -1 if info is None else info.id}


@pytest.mark.parametrize("options", [
    dict(batch_size=3),
    dict(batch_size=3, drop_last=True),
    dict(batch_size=4, shuffle=True),
    dict(batch_size=2, shuffle=True, generator=gt.Generator().manual_seed(7)),
    dict(batch_size=None),
    dict(batch_size=None, shuffle=True),
    dict(batch_sampler=[[3, 1], [0], [9, 8, 7], [2, 2]]),
    dict(batch_size=3, collate_fn=pairs),
    dict(batch_size=3, in_order=True, prefetch_factor=1),
])
def test_same_batches_as_single_process(options):
    def epoch(workers):
        gt.manual_seed(11)
        if "generator" in options:
            options["generator"].manual_seed(7)
        extra = {k: v for k, v in options.items() if workers or k != "prefetch_factor"}
        if workers and gt.cuda.is_available():      # where gt computes on a GPU only spawned workers may
            extra["multiprocessing_context"] = "spawn"
        loader = DataLoader(dataset(), num_workers=workers, **extra)
        batches = list(loader)
        return batches, [b.dtype for b in (batches[0] if isinstance(batches[0], (list, tuple)) else [batches[0]])]

    (single, dtypes0), (multi, dtypes2) = epoch(0), epoch(2)
    assert as_lists(multi) == as_lists(single) and dtypes0 == dtypes2
    assert [type(b) for b in multi] == [type(b) for b in single]


@first_pass
def test_batches_match_torch_workers():
    torch = pytest.importorskip("torch")
    data = np.arange(14, dtype=np.float32).reshape(7, 2)
    ours = DataLoader(TensorDataset(gt.tensor(data)), batch_size=3, num_workers=2)
    theirs = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.tensor(data)), batch_size=3,
                                         num_workers=2)
    for a, b in zip(ours, theirs, strict=True):
        assert a[0].tolist() == b[0].tolist() and str(a[0].dtype).split(".")[1] == str(b[0].dtype).split(".")[1]


@first_pass
def test_round_robin_and_out_of_order():
    loader = DataLoader(dataset(8), batch_size=2, num_workers=2, collate_fn=tagged)
    batches = list(loader)
    assert [b["worker"] for b in batches] == [0, 1, 0, 1]
    assert [b["values"].tolist() for b in batches] == [[0, 1], [2, 3], [4, 5], [6, 7]]
    unordered = list(DataLoader(dataset(8), batch_size=2, num_workers=2, in_order=False))
    assert sorted(b[1].tolist() for b in unordered) == [[0, 1], [2, 3], [4, 5], [6, 7]]


class Slow(Dataset):
    """Item 0 is slow, so with in_order=False the other worker's batches come first."""

    def __getitem__(self, i):
        if i == 0:
            time.sleep(0.3)
        return i

    def __len__(self):
        return 4


@first_pass
def test_in_order_false_yields_as_ready():
    assert [b.tolist() for b in DataLoader(Slow(), batch_size=1, num_workers=2)] == [[0], [1], [2], [3]]
    unordered = [b.tolist() for b in DataLoader(Slow(), batch_size=1, num_workers=2, in_order=False)]
    assert unordered[0] == [1] and sorted(unordered) == [[0], [1], [2], [3]]


class Info(Dataset):
    def __getitem__(self, i):
        info = get_worker_info()
        return {"id": info.id, "n": info.num_workers, "seed": info.seed, "same": info.dataset is self,
                "gt": float(gt.rand(()).item()), "random": random.random(), "np": float(np.random.rand()),
                "init": os.environ.get("GT_TEST_WORKER_INIT", "")}

    def __len__(self):
        return 4


def set_marker(worker_id):
    os.environ["GT_TEST_WORKER_INIT"] = f"init{worker_id}"


def infos(**options):
    loader = DataLoader(Info(), batch_size=None, num_workers=2, **options)
    rows = {}
    for row in loader:
        rows.setdefault(row["id"], row)     # each worker's first item: its first draws
    return rows


@first_pass
def test_worker_info_seeds_and_init_fn():
    assert get_worker_info() is None
    gt.manual_seed(3)
    first = infos(worker_init_fn=set_marker)
    assert sorted(first) == [0, 1]
    assert all(row["n"] == 2 and row["same"] for row in first.values())
    assert first[1]["seed"] == first[0]["seed"] + 1    # torch's base_seed + worker_id
    assert [first[w]["init"] for w in (0, 1)] == ["init0", "init1"]
    # each worker seeds gt, random and numpy from its own seed: different streams per worker
    for key in ("gt", "random", "np"):
        assert first[0][key] != first[1][key]
    gt.manual_seed(3)
    again = infos()
    assert all(again[w][k] == first[w][k] for w in (0, 1) for k in ("seed", "gt", "random", "np"))
    assert again[0]["init"] == ""
    gt.manual_seed(4)
    assert infos()[0]["seed"] != first[0]["seed"]
    # the worker's draws are those of its seed
    seed = first[0]["seed"]
    assert random.Random(seed).random() == first[0]["random"]
    gt.manual_seed(seed)
    assert float(gt.rand(()).item()) == first[0]["gt"]
    assert get_worker_info() is None


@first_pass
def test_base_seed_from_loader_generator():
    g = gt.Generator()
    g.manual_seed(5)
    a = infos(generator=g)
    g.manual_seed(5)
    gt.manual_seed(123)     # the default generator is not used when the loader has one
    assert infos(generator=g)[0]["seed"] == a[0]["seed"]


@first_pass
@pytest.mark.parametrize("base_seed,worker_id", [(0, 0), (123456789012345, 1), (2 ** 63 - 5, 3)])
def test_numpy_seed_is_torchs(base_seed, worker_id):
    torch = pytest.importorskip("torch")
    from torch.utils.data._utils.worker import _generate_state
    assert _numpy_seed(base_seed, worker_id) == _generate_state(base_seed, worker_id)
    del torch


@first_pass
def test_persistent_workers_across_epochs():
    loader = DataLoader(Info(), batch_size=None, num_workers=2, persistent_workers=True)
    first = [row["gt"] for row in loader]
    pids = [w.pid for w in loader._workers._workers]
    second = [row["gt"] for row in loader]
    assert [w.pid for w in loader._workers._workers] == pids and len(second) == 4
    assert first != second      # the same processes go on drawing
    # an epoch broken off early: the next one starts from the beginning
    ds = dataset()
    loader = DataLoader(ds, batch_size=3, num_workers=2, persistent_workers=True)
    for batch in loader:
        break
    assert as_lists(loader) == as_lists(DataLoader(ds, batch_size=3))
    loader._workers.shutdown()


class Stream(IterableDataset):
    def __init__(self, n):
        self.n = n

    def __iter__(self):
        info = get_worker_info()
        start, step = (0, 1) if info is None else (info.id, info.num_workers)
        return iter(gt.tensor([float(i)]) for i in range(start, self.n, step))


class Copies(IterableDataset):
    """Not split: each worker yields the whole stream, as in torch."""

    def __iter__(self):
        return iter(range(3))


@first_pass
def test_iterable_dataset_with_workers():
    batches = [b.tolist() for b in DataLoader(Stream(9), batch_size=2, num_workers=2)]
    # worker 0 has 0,2,4,6,8 and worker 1 has 1,3,5,7: round-robin until each ends
    assert batches == [[[0.], [2.]], [[1.], [3.]], [[4.], [6.]], [[5.], [7.]], [[8.]]]
    dropped = [b.tolist() for b in DataLoader(Stream(9), batch_size=2, num_workers=2, drop_last=True)]
    assert dropped == batches[:-1]
    assert list(DataLoader(Copies(), batch_size=None, num_workers=2)) == [0, 0, 1, 1, 2, 2]
    loader = DataLoader(Stream(5), batch_size=None, num_workers=2, persistent_workers=True)
    assert [b.tolist() for b in loader] == [b.tolist() for b in loader] == [[0.], [1.], [2.], [3.], [4.]]
    loader._workers.shutdown()


class Failing(Dataset):
    def __getitem__(self, i):
        if i == 3:
            raise KeyError(f"no item {i}")
        return i

    def __len__(self):
        return 6


@first_pass
def test_worker_exception_is_reraised_with_worker_id():
    loader = DataLoader(Failing(), batch_size=2, num_workers=2)
    it = iter(loader)
    assert next(it).tolist() == [0, 1]
    with pytest.raises(KeyError, match=r"(?s)Caught KeyError in DataLoader worker process 1.*Traceback.*no item 3"):
        next(it)
    assert [b.tolist() for b in it] == [[4, 5]]    # as torch: the other batches still come


def unpicklable(samples):
    return lambda: samples


class LocalError(Dataset):
    """Raises an exception of a class made inside ``__getitem__``: it cannot be pickled back."""

    def __getitem__(self, i):
        if i == 1:
            raise type("Unpicklable", (Exception,), {})(f"item {i} is broken")
        return i

    def __len__(self):
        return 4


@first_pass
def test_what_cannot_be_sent_back_is_the_loaders_error_not_a_hang():
    """multiprocessing pickles in a background thread, which printed and dropped what would not
    pickle while the loader waited for ever: the batch's error instead, the next batches still come."""
    loader = DataLoader(TensorDataset(gt.arange(4)), batch_size=2, num_workers=2, collate_fn=unpicklable, timeout=30)
    with pytest.raises(AttributeError, match=r"(?s)in DataLoader worker process 0 sending a batch \(batches must "
                                             r"pickle\).*Can't pickle local object 'unpicklable.<locals>.<lambda>'"):
        next(iter(loader))
    it = iter(DataLoader(LocalError(), batch_size=1, num_workers=2, timeout=30))
    assert next(it).tolist() == [0]
    with pytest.raises(RuntimeError, match=r"(?s)in DataLoader worker process 1.*Unpicklable: item 1 is broken"):
        next(it)
    assert [b.tolist() for b in it] == [[2], [3]]


def test_cuda_tensors_of_a_batch_are_the_workers_own_copies(monkeypatch):
    """A spawned worker received its dataset's CUDA tensors from the loading process, and torch
    refuses to send those (or their slices) back: the worker sends copies (made on the CPU here,
    with every tensor taken for a CUDA one)."""
    from collections import namedtuple

    from gt.tensor import Tensor
    from gt.utils.data.workers import _sendable

    pair = namedtuple("pair", "image label")
    t = gt.arange(6.0).reshape(2, 3)
    batch = {"a": [t, (t[0], 7)], "b": pair(t[1], "x")}
    if not t.is_cuda:
        assert _sendable(batch)["a"][0] is t              # CPU tensors go as they are
    monkeypatch.setattr(Tensor, "is_cuda", property(lambda self: True))
    sent = _sendable(batch)
    assert type(sent["b"]) is pair and sent["b"].label == "x" and sent["a"][1][1] == 7
    tensors = [sent["a"][0], sent["a"][1][0], sent["b"].image]
    assert all(c is not o for c, o in zip(tensors, [t, batch["a"][1][0], batch["b"].image]))
    assert [c.tolist() for c in tensors] == [t.tolist(), [0.0, 1.0, 2.0], [3.0, 4.0, 5.0]]


def failing_init(worker_id):
    raise ValueError(f"bad init {worker_id}")


@first_pass
def test_worker_init_fn_exception():
    with pytest.raises(ValueError, match=r"(?s)in DataLoader worker process 0.*bad init 0"):
        list(DataLoader(Failing(), batch_size=2, num_workers=2, worker_init_fn=failing_init))


class Sleepy(Dataset):
    def __getitem__(self, i):
        time.sleep(1)
        return i

    def __len__(self):
        return 1


@first_pass
def test_timeout():
    with pytest.raises(RuntimeError, match="DataLoader timed out after 0.3 seconds"):
        list(DataLoader(Sleepy(), batch_size=1, num_workers=1, timeout=0.3))


class Dying(Dataset):
    def __getitem__(self, i):
        if i == 1:
            os._exit(3)
        return i

    def __len__(self):
        return 4


@first_pass
def test_dead_worker_raises():
    with pytest.raises(RuntimeError, match=r"DataLoader worker \(pid\(s\) \d+\) exited unexpectedly"):
        list(DataLoader(Dying(), batch_size=1, num_workers=2))


@first_pass
def test_early_break_and_deleted_iterator_stop_workers():
    loader = DataLoader(dataset(), batch_size=2, num_workers=2)
    for _ in loader:
        break
    it = iter(loader)
    next(it)
    workers = list(it._workers)
    assert all(w.is_alive() for w in workers)
    del it
    assert not any(w.is_alive() for w in workers)


@first_pass
def test_spawn_context_and_options():
    loader = DataLoader(dataset(4), batch_size=2, num_workers=1, multiprocessing_context="spawn")
    assert loader.prefetch_factor == 2
    assert as_lists(loader) == as_lists(DataLoader(dataset(4), batch_size=2))
    assert DataLoader(dataset(4), num_workers=1, prefetch_factor=3).prefetch_factor == 3
    with pytest.raises(NotImplementedError, match="pin_memory=True"):
        DataLoader(dataset(4), num_workers=2, pin_memory=True)


def test_sharded_dataset_gives_unsharded_batches():
    from gt.sharding.mesh import use_mesh
    data = np.arange(24, dtype=np.float32).reshape(8, 3)
    with use_mesh(2):
        ds = TensorDataset(gt.tensor(data).shard(0), gt.arange(8))
        batches = list(DataLoader(ds, batch_size=3, num_workers=2))
    assert [b[0].tolist() for b in batches] == [data[i:i + 3].tolist() for i in (0, 3, 6)]
    assert [b[1].tolist() for b in batches] == [[0, 1, 2], [3, 4, 5], [6, 7]]


@first_pass
@pytest.mark.parametrize("options,error,message", [
    (dict(multiprocessing_context="thread"), ValueError, "should specify a valid start method in .*'thread'"),
    (dict(multiprocessing_context=3), TypeError, "should be a valid context object .* multiprocessing_context=3"),
    (dict(prefetch_factor=-1), ValueError, "prefetch_factor option should be non-negative"),
    (dict(timeout=-1), ValueError, "timeout option should be non-negative"),
])
def test_worker_option_errors(options, error, message):
    torch = pytest.importorskip("torch")
    with pytest.raises(error, match=message):
        DataLoader(dataset(4), num_workers=2, **options)
    with pytest.raises(error):
        torch.utils.data.DataLoader(list(range(4)), num_workers=2, **options)


@first_pass
def test_context_object_and_default_context():
    ctx = multiprocessing.get_context("fork")
    loader = DataLoader(dataset(4), batch_size=3, num_workers=2, multiprocessing_context=ctx)
    assert as_lists(loader) == as_lists(DataLoader(dataset(4), batch_size=3))


@first_pass
def test_iterator_in_garbage_cycle_stops_its_workers_promptly():
    import gc
    it = iter(DataLoader(dataset(), batch_size=2, num_workers=2))
    next(it)
    workers = list(it._workers)
    it.cycle = it
    del it
    start = time.monotonic()
    gc.collect()
    # promptly: before the 5 s that stopping gives a worker which does not exit on its own (then
    # terminated); 2 s was missed once on a doubly loaded 2-core machine
    assert not any(w.is_alive() for w in workers) and time.monotonic() - start < 4.5


@pytest.mark.skipif(not gt.cuda.is_available(), reason="gt computes on the CPU here: forked workers work")
def test_on_a_gpu_forked_workers_are_refused_and_spawned_ones_give_the_same_batches():
    with pytest.raises(RuntimeError, match=r"DataLoader\(num_workers=2\): gt computes on cuda .*'spawn'"):
        list(DataLoader(dataset(), batch_size=3, num_workers=2, multiprocessing_context="fork"))
    assert not multiprocessing.active_children()
    single = as_lists(DataLoader(dataset(), batch_size=3))
    assert as_lists(DataLoader(dataset(), batch_size=3, num_workers=2, multiprocessing_context="spawn")) == single


def test_forked_workers_are_refused_before_any_starts_where_gt_computes_on_a_gpu(monkeypatch):
    """(The mesh is made to say "cuda" here: this machine's is the CPU.)"""
    import gt.utils.data.workers as workers

    monkeypatch.setattr(workers, "get_mesh", lambda: type("Mesh", (), {"kind": "cuda"})())
    loader = DataLoader(dataset(), batch_size=3, num_workers=2, multiprocessing_context="fork")
    with pytest.raises(RuntimeError, match=r"DataLoader\(num_workers=2\): gt computes on cuda here, and CUDA cannot "
                                           r"be used in a forked worker process; pass multiprocessing_context='spawn'"):
        iter(loader)
    assert not multiprocessing.active_children()


# ---- sixth pass beside torch ------------------------------------------------------------------
@first_pass
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")    # torch's half-made iterator
def test_prefetch_factor_zero_is_refused_at_iteration_not_an_empty_epoch():
    torch = pytest.importorskip("torch")
    for lib in (gt, torch):
        loader = lib.utils.data.DataLoader(list(range(5)), num_workers=2, prefetch_factor=0)
        with pytest.raises(AssertionError, match="prefetch_factor must be greater than 0"):
            list(loader)


class SizedStream(IterableDataset):
    """Eight samples, but a ``len`` of three (a replica not split per worker, say)."""

    def __iter__(self):
        return iter(range(8))

    def __len__(self):
        return 3


@first_pass
@pytest.mark.parametrize("num_workers", [0, 1])
def test_a_stream_longer_than_its_len_warns_per_batch_past_it_as_torch(num_workers):
    torch = pytest.importorskip("torch")

    class TorchSizedStream(torch.utils.data.IterableDataset):
        __iter__, __len__ = SizedStream.__iter__, SizedStream.__len__
    got = {}
    for name, loader in (("gt", DataLoader(SizedStream(), batch_size=2, num_workers=num_workers)),
                         ("torch", torch.utils.data.DataLoader(TorchSizedStream(), batch_size=2,
                                                               num_workers=num_workers))):
        assert len(loader) == 2
        with pytest.warns(UserWarning) as caught:
            batches = [b.tolist() for b in loader]
        got[name] = batches, [str(w.message).split(" was reported")[1] for w in caught
                              if "Length of IterableDataset" in str(w.message)]
    assert got["gt"] == got["torch"]
    assert len(got["gt"][1]) == 1       # the fourth batch of two is past the len of three
    # without len(loader) first, no warning (torch's too)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        list(DataLoader(SizedStream(), batch_size=2, num_workers=num_workers))


def test_more_workers_than_cpus_warns_as_torch(monkeypatch):
    torch = pytest.importorskip("torch")
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    messages = []
    for lib in (gt, torch):
        with pytest.warns(UserWarning, match="This DataLoader will create 3 worker processes in total") as caught:
            lib.utils.data.DataLoader(list(range(4)), num_workers=3)
        messages.append([str(w.message) for w in caught if "worker processes" in str(w.message)])
    assert messages[0] == messages[1]
