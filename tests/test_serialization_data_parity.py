"""gt.save / gt.load and gt.utils.data beside torch 2.13 (found by differential testing): devices
and dtypes inside a checkpoint, torch's weights-only Counter, ``pickle_module`` and a callable
``map_location`` as torch takes them, torch's errors for a damaged archive and a missing folder,
an archive written into a stream that already holds bytes, deques through the default collation
and ``StackDataset``'s batched fetch."""

import collections
import io
import pickle

import numpy as np
import pytest

import gt
import gt.utils.data as gdata
from helpers import torch_or_skip


def _torch_bytes(torch, obj):
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def _gt_bytes(obj):
    buf = io.BytesIO()
    gt.save(obj, buf)
    return buf.getvalue()


def test_a_torch_device_in_a_checkpoint_loads_as_a_gt_device():
    torch = torch_or_skip()
    data = _torch_bytes(torch, {"device": torch.device("cpu"), "gpu": torch.device("cuda", 1), "w": torch.ones(2)})
    theirs = torch.load(io.BytesIO(data))                     # weights_only=True, torch's default
    mine = gt.load(io.BytesIO(data))
    assert mine["device"] == gt.device("cpu") and isinstance(mine["device"], gt.device)
    assert (mine["gpu"].type, mine["gpu"].index) == (theirs["gpu"].type, theirs["gpu"].index) == ("cuda", 1)
    assert mine["w"].tolist() == theirs["w"].tolist()


def test_gt_devices_and_dtypes_are_written_as_torchs():
    torch = torch_or_skip()
    obj = {"device": gt.device("cpu"), "gpu": gt.device("cuda:1"), "dtypes": [gt.float16, gt.int32, gt.bool],
           "again": gt.float16, "w": gt.ones(2, dtype=gt.float64)}
    data = _gt_bytes(obj)
    theirs = torch.load(io.BytesIO(data))                     # weights_only=True reads them
    assert theirs["device"] == torch.device("cpu") and theirs["gpu"] == torch.device("cuda", 1)
    assert theirs["dtypes"] == [torch.float16, torch.int32, torch.bool] and theirs["again"] is torch.float16
    assert theirs["w"].dtype == torch.float64
    mine = gt.load(io.BytesIO(data))
    assert mine["dtypes"] == [gt.float16, gt.int32, gt.bool] and mine["again"] == gt.float16
    assert mine["gpu"] == gt.device("cuda", 1) and mine["device"] == gt.device("cpu")


def test_a_counter_loads_under_weights_only_as_in_torch():
    torch = torch_or_skip()
    counts = collections.Counter({"a": 3, "b": 1})
    theirs = torch.load(io.BytesIO(_torch_bytes(torch, {"counts": counts})))
    mine = gt.load(io.BytesIO(_torch_bytes(torch, {"counts": counts})))
    assert type(mine["counts"]) is type(theirs["counts"]) is collections.Counter
    assert mine["counts"] == theirs["counts"] == counts
    assert gt.load(io.BytesIO(_gt_bytes(counts))) == counts


def test_a_torch_tensor_with_attributes_loads_with_them():
    torch = torch_or_skip()
    plain, param = torch.arange(3.0), torch.nn.Parameter(torch.ones(2))
    plain.note, param.tags = "scaled", ["a"]
    data = _torch_bytes(torch, {"plain": plain, "param": param, "buffer": torch.nn.Buffer(torch.zeros(1))})
    theirs, mine = torch.load(io.BytesIO(data)), gt.load(io.BytesIO(data))     # weights_only=True both
    assert mine["plain"].note == theirs["plain"].note == "scaled"
    assert mine["param"].tags == theirs["param"].tags == ["a"] and mine["param"].requires_grad
    assert mine["buffer"]._is_buffer is theirs["buffer"]._is_buffer is True
    for key in theirs:
        assert mine[key].tolist() == theirs[key].tolist()


def test_a_parameter_loads_as_a_parameter_as_in_torch():
    torch = torch_or_skip()
    data = _torch_bytes(torch, {"w": torch.nn.Parameter(torch.ones(2)),
                                "steps": torch.nn.Parameter(torch.arange(2), requires_grad=False)})
    theirs, mine = torch.load(io.BytesIO(data)), gt.load(io.BytesIO(data))
    for key in theirs:
        assert isinstance(theirs[key], torch.nn.Parameter) and isinstance(mine[key], gt.nn.Parameter)
        assert mine[key].requires_grad == theirs[key].requires_grad and mine[key].is_leaf
        assert mine[key].tolist() == theirs[key].tolist()


def test_a_whole_module_saved_and_loaded_keeps_its_parameters():
    torch = torch_or_skip()
    x = np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32)
    results = []
    for lib in (gt, torch):
        model = lib.nn.Sequential(lib.nn.Linear(3, 2), lib.nn.BatchNorm1d(2))
        buf = io.BytesIO()
        lib.save(model, buf)
        buf.seek(0)
        back = lib.load(buf, weights_only=False)
        kinds = [type(p).__name__ for p in back.parameters()]
        same = np.allclose(back(lib.tensor(x)).detach().numpy(), model(lib.tensor(x)).detach().numpy())
        results.append((kinds, same, [name for name, _ in back.named_parameters()]))
    assert results[0] == results[1] and results[0][0] == ["Parameter"] * 4


def test_pickle_module_is_taken_where_torch_takes_it(tmp_path):
    torch = torch_or_skip()
    path = tmp_path / "w.pt"
    gt.save({"w": gt.arange(3)}, path, pickle)                # torch.save(obj, f, pickle_module, ...)
    assert torch.load(path, None, pickle)["w"].tolist() == gt.load(path, None, pickle)["w"].tolist() == [0, 1, 2]
    gt.save({"w": gt.arange(2)}, path, pickle_module=pickle, pickle_protocol=2)
    assert gt.load(path, pickle_module=pickle)["w"].tolist() == [0, 1]
    with pytest.raises(ValueError, match="pickle_module"):
        gt.load(path, None, io)


def test_a_callable_map_location_that_keeps_the_storage_loads_as_in_torch(tmp_path):
    torch = torch_or_skip()
    base = torch.arange(6.0)
    path = tmp_path / "t.pt"
    torch.save({"a": base, "b": base[2:], "c": torch.ones(2, dtype=torch.int32)}, path)
    seen_torch, seen_gt = [], []
    theirs = torch.load(path, map_location=lambda storage, loc: seen_torch.append(loc) or storage)
    mine = gt.load(path, map_location=lambda storage, loc: seen_gt.append(loc) or storage)
    assert seen_gt == seen_torch == ["cpu", "cpu"]            # once a storage, with its recorded location
    for key in theirs:
        assert mine[key].tolist() == theirs[key].tolist()
    assert gt.load(path, map_location=lambda storage, loc: storage.cpu())["b"].tolist() == [2.0, 3.0, 4.0, 5.0]
    torch.save(torch.ones(2), path, _use_new_zipfile_serialization=False)       # torch's legacy format too
    assert gt.load(path, map_location=lambda storage, loc: storage).tolist() == [1.0, 1.0]
    with pytest.raises(RuntimeError, match="cannot be moved while loading"):
        gt.load(path, map_location=lambda storage, loc: storage.cuda())     # a move gt cannot make: its message
    with pytest.raises(TypeError, match="takes 1 positional argument"):
        gt.load(path, map_location=lambda storage, loc: storage.to("cpu"))  # torch's keyword-only to(device=)
    assert gt.load(path, map_location=lambda storage, loc: storage.to(device="cpu")).tolist() == [1.0, 1.0]
    assert gt.load(path, map_location=lambda storage, loc: None).tolist() == [1.0, 1.0]    # as read, as torch's


def test_a_truncated_archive_raises_torchs_error_type(tmp_path):
    torch = torch_or_skip()
    data = _torch_bytes(torch, {"w": torch.ones(50)})
    half = data[:len(data) // 2]
    (tmp_path / "half.pt").write_bytes(half)
    for source in (lambda: io.BytesIO(half), lambda: tmp_path / "half.pt"):
        with pytest.raises(RuntimeError):
            torch.load(source())
        with pytest.raises(RuntimeError, match="truncated or corrupted"):
            gt.load(source())


def test_saving_into_a_missing_folder_raises_torchs_error(tmp_path):
    torch = torch_or_skip()
    for save, value in ((torch.save, torch.ones(1)), (gt.save, gt.ones(1))):
        with pytest.raises(RuntimeError, match="Parent directory .*missing does not exist"):
            save(value, tmp_path / "missing" / "w.pt")
    assert not (tmp_path / "missing").exists()


def test_an_archive_written_after_other_bytes_of_a_stream_reads_in_torch():
    torch = torch_or_skip()
    for head in (b"", b"hdr", b"x" * 100):
        buf = io.BytesIO()
        buf.write(head)
        gt.save({"w": gt.arange(4.0).reshape(2, 2), "n": 3}, buf)
        for load in (torch.load, gt.load):
            buf.seek(len(head))
            back = load(buf)
            assert back["w"].tolist() == [[0.0, 1.0], [2.0, 3.0]] and back["n"] == 3
        buf.seek(len(head))
        assert torch.load(buf, mmap=False)["w"].dtype == torch.float32


def _plain(x):
    """A collated value with tensors as (dtype name, values), containers kept by type."""
    if hasattr(x, "tolist") and hasattr(x, "dtype"):
        return str(x.dtype).split(".")[-1], x.tolist()
    if isinstance(x, (list, tuple, collections.deque)):
        return type(x).__name__, [_plain(v) for v in x]
    if isinstance(x, dict):
        return type(x).__name__, {k: _plain(v) for k, v in x.items()}
    return x


def test_default_collate_and_convert_keep_a_deque_as_torch():
    torch = torch_or_skip()
    from torch.utils import data as tdata
    batch = [collections.deque([1, 2.5]), collections.deque([3, 4.5])]
    assert _plain(gdata.default_collate(batch)) == _plain(tdata.default_collate(batch)) == \
        ("deque", [("int64", [1, 3]), ("float64", [2.5, 4.5])])
    sample = {"d": collections.deque([np.arange(2, dtype=np.int32), "s"])}
    assert _plain(gdata.default_convert(sample)) == _plain(tdata.default_convert(sample)) == \
        ("dict", {"d": ("deque", [("int32", [0, 1]), "s"])})


@pytest.mark.parametrize("batch", [
    [np.int32(1), np.float64(2.5)], [np.int32(1), np.int64(2)], [np.int32(1), np.float16(2)],
    [np.float32(1), np.float64(2)], [np.float16(1.5), 2.5], [np.int32(1), 7], [np.float32(1.5), np.float64(2), 3]])
def test_default_collate_promotes_mixed_numpy_scalars_as_torch(batch):
    torch = torch_or_skip()
    from torch.utils import data as tdata
    assert _plain(gdata.default_collate(batch)) == _plain(tdata.default_collate(batch))   # not the first's dtype


def test_default_collate_of_arrays_takes_other_samples_as_torch_as_tensor_does():
    torch = torch_or_skip()
    from torch.utils import data as tdata
    mine = gdata.default_collate([np.arange(2.0), gt.ones(2), [5, 6]])
    theirs = tdata.default_collate([np.arange(2.0), torch.ones(2), [5, 6]])
    assert _plain(mine) == _plain(theirs) == ("float64", [[0.0, 1.0], [1.0, 1.0], [5.0, 6.0]])


class _Batched:
    """A dataset whose batched fetch differs from its item fetch (so the loader's choice shows)."""

    def __init__(self, n, short=False):
        self.n, self.short = n, short

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return i

    def __getitems__(self, indices):
        return [100 + i for i in indices][:1 if self.short else None]


@pytest.mark.parametrize("named", [False, True])
def test_stack_dataset_fetches_a_batch_through_its_parts_getitems(named):
    torch = torch_or_skip()
    from torch.utils import data as tdata

    def build(module):
        parts = {"x": _Batched(5), "y": [10, 11, 12, 13, 14]}
        return module.StackDataset(**parts) if named else module.StackDataset(*parts.values())
    mine, theirs = build(gdata), build(tdata)
    assert mine.__getitems__([3, 0]) == theirs.__getitems__([3, 0])
    assert _plain(list(gdata.DataLoader(mine, batch_size=2))) == _plain(list(tdata.DataLoader(theirs, batch_size=2)))
    for module in (gdata, tdata):
        with pytest.raises(ValueError, match="Nested dataset's output size mismatch. Expected 2, got 1"):
            module.StackDataset(_Batched(3, short=True), [1, 2, 3]).__getitems__([0, 1])


def test_distributed_sampler_takes_numpy_integers_as_torch():
    torch_or_skip()
    from torch.utils import data as tdata
    for n in (5, 8):
        for rank in range(3):
            kwargs = dict(num_replicas=np.int32(3), rank=np.int64(rank), shuffle=False)
            mine, theirs = gdata.DistributedSampler(range(n), **kwargs), tdata.DistributedSampler(range(n), **kwargs)
            assert (list(mine), len(mine)) == (list(theirs), len(theirs))
    shuffled = gdata.DistributedSampler(range(9), num_replicas=2, rank=1, seed=np.int64(7))
    assert list(shuffled) == list(gdata.DistributedSampler(range(9), num_replicas=2, rank=1, seed=7))


def test_an_iterable_dataset_without_iter_cannot_be_made_as_in_torch():
    torch_or_skip()
    from torch.utils import data as tdata
    for module in (gdata, tdata):
        class NoIter(module.IterableDataset):
            pass

        for cls in (module.IterableDataset, NoIter):
            with pytest.raises(TypeError, match="Can't instantiate abstract class .* __iter__"):
                cls()
