"""gt.utils.data beside torch.utils.data: datasets, samplers, default_collate/default_convert and
DataLoader give torch's samples and batches (values, dtypes, shapes, containers) where the order
is deterministic; random samplers and splits are checked for their properties (a permutation,
reproducible under gt.manual_seed, another order under another seed); and every error."""

import collections

import numpy as np
import pytest

import gt
import gt.utils.data
from gt.utils.data import (BatchSampler, ChainDataset, ConcatDataset, DataLoader, Dataset, IterableDataset,
                           RandomSampler, Sampler, SequentialSampler, StackDataset, Subset, SubsetRandomSampler,
                           TensorDataset, WeightedRandomSampler, default_collate, default_convert, get_worker_info,
                           random_split)
from helpers import torch_or_skip

Point = collections.namedtuple("Point", "x y")


def assert_same(mine, theirs, torch):
    """``mine`` (gt) has ``theirs``' (torch) structure: same container types, and tensors with
    the same shape, dtype and values."""
    if isinstance(theirs, torch.Tensor):
        assert isinstance(mine, gt.Tensor), f"expected a gt.Tensor, got {type(mine).__name__}"
        assert str(mine.dtype).split(".")[-1] == str(theirs.dtype).split(".")[-1], (mine.dtype, theirs.dtype)
        assert tuple(mine.shape) == tuple(theirs.shape)
        np.testing.assert_array_equal(mine.numpy(), theirs.numpy())
        return
    assert type(mine) is type(theirs), f"expected {type(theirs).__name__}, got {type(mine).__name__}"
    if isinstance(theirs, dict):
        assert list(mine) == list(theirs)
        for key in theirs:
            assert_same(mine[key], theirs[key], torch)
    elif isinstance(theirs, (list, tuple)):
        assert len(mine) == len(theirs)
        for m, t in zip(mine, theirs):
            assert_same(m, t, torch)
    else:
        assert mine == theirs


def tensor_pair(torch, array):
    return gt.tensor(array), torch.tensor(array)


class Samples(Dataset):
    """A map-style dataset of nested numpy/Python samples (the same class serves torch: only
    __getitem__ and __len__ matter)."""

    def __init__(self, n=7):
        self.n = n

    def __getitem__(self, i):
        if not 0 <= i < self.n:
            raise IndexError(i)
        a = np.arange(6, dtype=np.float32).reshape(2, 3) * i
        return {"image": a, "label": i, "weight": 0.5 * i, "name": f"s{i}",
                "pair": (np.int32(i), np.bool_(i % 2)), "point": Point(i, [i, -i])}

    def __len__(self):
        return self.n


class Stream(IterableDataset):
    def __init__(self, n=7, sized=True):
        self.n, self.sized = n, sized

    def __iter__(self):
        return iter(np.arange(3 * self.n, dtype=np.int32).reshape(self.n, 3))

    def __len__(self):
        if not self.sized:
            raise TypeError("Stream has no len()")
        return self.n


def test_import_paths_generics_and_worker_info():
    torch = torch_or_skip()
    from gt.utils.data import DataLoader as Loader
    assert gt.utils.data.DataLoader is Loader is DataLoader
    assert sorted(gt.utils.data.__all__) == sorted(set(gt.utils.data.__all__))

    class Lengths(Sampler[int]):  # torch's generic spelling works
        def __iter__(self):
            return iter([2, 0])

    assert list(Lengths()) == [2, 0] and Dataset[int] is not None and IterableDataset[str] is not None
    assert get_worker_info() is None and torch.utils.data.get_worker_info() is None


# ---- datasets ------------------------------------------------------------------------------------

@pytest.mark.parametrize("index", [0, 3, -1, slice(1, 4), [4, 0, 2]], ids=str)
def test_tensor_dataset_indexes_like_torch(index):
    torch = torch_or_skip()
    x, y = np.arange(15, dtype=np.float32).reshape(5, 3), np.arange(5)
    ds, ref = TensorDataset(gt.tensor(x), gt.tensor(y)), torch.utils.data.TensorDataset(torch.tensor(x), torch.tensor(y))
    assert len(ds) == len(ref) == 5
    assert_same(ds[index], ref[index], torch)


def test_tensor_dataset_errors():
    with pytest.raises(AssertionError, match="Size mismatch between tensors"):
        TensorDataset(gt.zeros(4, 2), gt.zeros(3))
    with pytest.raises(ValueError, match="at least one tensor"):
        TensorDataset()
    with pytest.raises(TypeError, match="argument 1 must be a gt.Tensor.*got ndarray"):
        TensorDataset(gt.zeros(3), np.zeros(3))
    with pytest.raises(TypeError, match="argument 0 must be a gt.Tensor with at least one dimension, got 0-d"):
        TensorDataset(gt.tensor(1.0))


def test_subset_and_concat_index_like_torch():
    torch = torch_or_skip()
    x = np.arange(12, dtype=np.float64).reshape(6, 2)
    gx, tx = tensor_pair(torch, x)
    sub, tsub = Subset(TensorDataset(gx), [5, 0, 3]), torch.utils.data.Subset(torch.utils.data.TensorDataset(tx), [5, 0, 3])
    assert len(sub) == len(tsub) == 3
    for i in [0, 2, -1, [2, 0]]:
        assert_same(sub[i], tsub[i], torch)
    assert_same(sub.__getitems__([1, 2]), tsub.__getitems__([1, 2]), torch)
    parts = [TensorDataset(gx[:2]), TensorDataset(gx[2:]), TensorDataset(gx[:0]), TensorDataset(gx[:1])]
    tparts = [torch.utils.data.TensorDataset(t) for t in (tx[:2], tx[2:], tx[:0], tx[:1])]
    cat, tcat = ConcatDataset(parts), torch.utils.data.ConcatDataset(tparts)
    assert cat.cumulative_sizes == tcat.cumulative_sizes == [2, 6, 6, 7]
    assert len(cat) == len(tcat) == 7
    for i in range(-7, 7):
        assert_same(cat[i], tcat[i], torch)
    both = parts[0] + parts[3]
    assert isinstance(both, ConcatDataset) and len(both) == 3


def test_stack_and_chain_datasets_like_torch():
    torch = torch_or_skip()
    x, y = np.arange(8.0).reshape(4, 2), np.arange(4)
    (gx, tx), (gy, ty) = tensor_pair(torch, x), tensor_pair(torch, y)
    tud = torch.utils.data
    for mine, ref in [(StackDataset(TensorDataset(gx), gy), tud.StackDataset(tud.TensorDataset(tx), ty)),
                      (StackDataset(a=gx, b=gy), tud.StackDataset(a=tx, b=ty))]:
        assert len(mine) == len(ref) == 4
        for i in (0, 3, -2):
            assert_same(mine[i], ref[i], torch)
    with pytest.raises(ValueError, match="Size mismatch between datasets"):
        StackDataset(gx, gy[:3])
    with pytest.raises(ValueError, match="but both types are given"):
        StackDataset(gx, b=gy)
    with pytest.raises(ValueError, match="At least one dataset should be passed"):
        StackDataset()
    chain = Stream(2) + Stream(3)
    assert isinstance(chain, ChainDataset) and len(chain) == 5
    assert [r.tolist() for r in chain] == [r.tolist() for r in list(Stream(2)) + list(Stream(3))]
    with pytest.raises(AssertionError, match="ChainDataset only supports IterableDataset"):
        list(ChainDataset([Stream(1), TensorDataset(gx)]))


def test_concat_errors():
    ds = TensorDataset(gt.zeros(3))
    with pytest.raises(AssertionError, match="should not be an empty iterable"):
        ConcatDataset([])
    with pytest.raises(AssertionError, match="does not support IterableDataset"):
        ConcatDataset([ds, Stream()])
    with pytest.raises(ValueError, match="absolute value of index should not exceed dataset length"):
        ConcatDataset([ds])[-4]
    with pytest.raises(IndexError, match="index 3 is out of range for a ConcatDataset of length 3"):
        ConcatDataset([ds])[3]
    with pytest.raises(NotImplementedError, match="should implement __getitem__"):
        Dataset()[0]


@pytest.mark.parametrize("lengths", [[3, 0, 7], [0.5, 0.3, 0.2], [0.34, 0.33, 0.33], [0.25, 0.75]], ids=str)
def test_random_split_sizes_like_torch_and_a_permutation(lengths):
    torch = torch_or_skip()
    gt.manual_seed(3)
    splits = random_split(range(10), lengths)
    ref = torch.utils.data.random_split(range(10), lengths)
    assert [len(s) for s in splits] == [len(s) for s in ref]
    assert all(isinstance(s, Subset) for s in splits)
    assert sorted(i for s in splits for i in s) == list(range(10))
    gt.manual_seed(3)
    assert [list(s) for s in random_split(range(10), lengths)] == [list(s) for s in splits]


def test_random_split_warns_of_an_empty_fraction_like_torch():
    torch = torch_or_skip()
    for split in (random_split, torch.utils.data.random_split):
        with pytest.warns(UserWarning, match="Length of split at index 1 is 0. This might result in an empty"):
            assert [len(s) for s in split(range(4), [0.7, 0.05, 0.25])] == [3, 0, 1]


def test_random_split_other_seed_and_errors():
    gt.manual_seed(0)
    first = [list(s) for s in random_split(range(20), [10, 10])]
    gt.manual_seed(1)
    assert [list(s) for s in random_split(range(20), [10, 10])] != first
    with pytest.raises(ValueError, match="Sum of input lengths does not equal the length of the input dataset"):
        random_split(range(10), [3, 4])
    with pytest.raises(ValueError, match="Fraction at index 1 is not between 0 and 1"):
        random_split(range(10), [0.5, 1.5, -1.0])
    with pytest.raises(TypeError, match="random_split: generator must be a gt.Generator or None, got str"):
        random_split(range(10), [5, 5], generator="seed")


# ---- samplers ------------------------------------------------------------------------------------

@pytest.mark.parametrize("n,batch_size,drop_last", [(10, 3, False), (10, 3, True), (9, 3, True), (2, 5, False),
                                                    (2, 5, True), (0, 2, False)])
def test_sequential_and_batch_sampler_like_torch(n, batch_size, drop_last):
    torch = torch_or_skip()
    mine, ref = SequentialSampler(range(n)), torch.utils.data.SequentialSampler(range(n))
    assert list(mine) == list(ref) and len(mine) == len(ref)
    batches = BatchSampler(mine, batch_size, drop_last)
    ref_batches = torch.utils.data.BatchSampler(ref, batch_size, drop_last)
    assert list(batches) == list(ref_batches)
    assert len(batches) == len(ref_batches)


def test_batch_sampler_errors():
    with pytest.raises(ValueError, match="batch_size should be a positive integer value, but got batch_size=0"):
        BatchSampler(range(3), 0, False)
    with pytest.raises(ValueError, match="batch_size=True"):
        BatchSampler(range(3), True, False)
    with pytest.raises(ValueError, match="drop_last should be a boolean value, but got drop_last=1"):
        BatchSampler(range(3), 2, 1)
    with pytest.raises(NotImplementedError, match="Sampler must implement __iter__"):
        iter(gt.utils.data.Sampler())


def test_random_sampler_permutation_reproducible_and_reseeded():
    gt.manual_seed(0)
    sampler = RandomSampler(range(20))
    first, second = list(sampler), list(sampler)
    assert sorted(first) == sorted(second) == list(range(20)) and len(sampler) == 20
    assert first != second  # a fresh permutation on each iter
    gt.manual_seed(0)
    assert list(sampler) == first
    gt.manual_seed(1)
    assert list(sampler) != first


def test_random_sampler_num_samples_and_replacement():
    gt.manual_seed(0)
    longer = list(RandomSampler(range(4), num_samples=10))
    assert len(longer) == 10 and sorted(longer[:4]) == sorted(longer[4:8]) == [0, 1, 2, 3]
    assert len(set(longer[8:])) == 2
    drawn = RandomSampler(range(5), replacement=True, num_samples=50)
    values = list(drawn)
    assert len(drawn) == len(values) == 50 and set(values) <= set(range(5)) and len(set(values)) > 1
    assert all(type(v) is int for v in values)


def test_random_sampler_errors():
    with pytest.raises(TypeError, match="replacement should be a boolean value, but got replacement=1"):
        RandomSampler(range(3), replacement=1)
    with pytest.raises(ValueError, match="num_samples should be a positive integer value, but got num_samples=0"):
        RandomSampler(range(3), num_samples=0)
    with pytest.raises(ValueError, match="num_samples=0"):
        RandomSampler([])
    with pytest.raises(TypeError, match="RandomSampler: generator must be a gt.Generator or None, got object"):
        RandomSampler(range(3), generator=object())


def test_subset_random_sampler():
    indices = [10, 20, 30, 40, 50]
    gt.manual_seed(0)
    sampler = SubsetRandomSampler(indices)
    first = list(sampler)
    assert sorted(first) == indices and len(sampler) == 5
    gt.manual_seed(0)
    assert list(sampler) == first
    with pytest.raises(TypeError, match="SubsetRandomSampler: generator must be a gt.Generator or None, got int"):
        SubsetRandomSampler(indices, generator=1)


def test_weighted_random_sampler():
    gt.manual_seed(0)
    sampler = WeightedRandomSampler([0.0, 1.0, 0.0, 3.0], 40)
    values = list(sampler)
    assert len(sampler) == len(values) == 40 and set(values) == {1, 3}
    assert sampler.weights.dtype == gt.float64
    once = list(WeightedRandomSampler(gt.tensor([1.0, 2.0, 3.0, 4.0]), 4, replacement=False))
    assert sorted(once) == [0, 1, 2, 3]
    with pytest.raises(ValueError, match="num_samples should be a positive integer value, but got num_samples=0"):
        WeightedRandomSampler([1.0], 0)
    with pytest.raises(ValueError, match="replacement should be a boolean value, but got replacement=None"):
        WeightedRandomSampler([1.0], 1, replacement=None)
    with pytest.raises(ValueError, match=r"weights should be a 1d sequence but given weights have shape \(2, 1\)"):
        WeightedRandomSampler([[1.0], [2.0]], 1)


# ---- collate -------------------------------------------------------------------------------------

COLLATE_CASES = {
    "float": [1.5, 2.0, -3.0],
    "int": [1, 2, 3],
    "bool": [True, False],
    "mixed_numbers": [1, 2.5],
    "str": ["a", "bc"],
    "bytes": [b"a", b"b"],
    "np_float32": [np.ones((2, 3), np.float32), np.zeros((2, 3), np.float32)],
    "np_int32": [np.arange(3, dtype=np.int32), np.arange(3, 6, dtype=np.int32)],
    "np_bool": [np.array([True, False]), np.array([False, False])],
    "np_0d": [np.array(1.5), np.array(2.5)],
    "np_empty": [np.zeros((0, 2)), np.zeros((0, 2))],
    "np_scalars": [np.float32(1.5), np.float32(2.0)],
    "np_int_scalars": [np.int32(1), np.int32(-2)],
    "np_float64_scalars": [np.float64(1.5), np.float64(2.0)],
    "dict": [{"a": 1, "b": [1.0, 2.0]}, {"a": 2, "b": [3.0, 4.0]}],
    "namedtuple": [Point(1, np.ones(2)), Point(2, np.zeros(2))],
    "tuple": [(1, "x"), (2, "y")],
    "nested_list": [[np.ones(2), {"k": 1}], [np.zeros(2), {"k": 2}]],
    "ordered_dict": [collections.OrderedDict(b=1, a=2.0), collections.OrderedDict(b=3, a=4.0)],
}


@pytest.mark.parametrize("case", list(COLLATE_CASES))
def test_default_collate_like_torch(case):
    torch = torch_or_skip()
    batch = COLLATE_CASES[case]
    assert_same(default_collate(batch), torch.utils.data.default_collate(batch), torch)


def test_default_collate_keeps_small_int_dtypes_as_torch():
    """uint8/int8/int16 samples keep their dtype, as torch's (gt widened them to int64 before);
    numpy float16 scalars stay float16, as torch's; uint16 too (gt widened it to int64 before)."""
    torch = torch_or_skip()
    for batch in ([np.array([0, 255], np.uint8), np.array([7, 1], np.uint8)], [np.int8(-128), np.int8(5)],
                  [np.array([-300], np.int16), np.array([2], np.int16)], [np.uint8(3), np.uint8(200)]):
        assert_same(default_collate(batch), torch.utils.data.default_collate(batch), torch)
    out = default_collate([np.array([0, 255], np.uint8), np.array([7, 1], np.uint8)])
    assert out.dtype == gt.uint8 and out.tolist() == [[0, 255], [7, 1]]
    wide = [np.array([65535], np.uint16)] * 2
    assert_same(default_collate(wide), torch.utils.data.default_collate(wide), torch)
    assert default_collate(wide).dtype == gt.uint16
    halves = default_collate([np.float16(0.5), np.float16(-2.0)])
    assert halves.dtype == gt.float16 and halves.tolist() == [0.5, -2.0]


def test_default_collate_of_tensors_like_torch():
    torch = torch_or_skip()
    arrays = [np.arange(6, dtype=np.float32).reshape(2, 3) + i for i in range(3)]
    out = default_collate([gt.tensor(a) for a in arrays])
    assert_same(out, torch.utils.data.default_collate([torch.tensor(a) for a in arrays]), torch)
    ints = [gt.tensor(i) for i in range(4)]  # 0-d tensors stack into (4,)
    assert_same(default_collate(ints), torch.utils.data.default_collate([torch.tensor(i) for i in range(4)]), torch)


def test_default_collate_errors():
    with pytest.raises(TypeError, match="default_collate: batch must contain tensors.*found <U1"):
        default_collate([np.array(["a"]), np.array(["b"])])
    with pytest.raises(TypeError, match="found <class 'object'>"):
        default_collate([object(), object()])
    with pytest.raises(RuntimeError, match="each element in list of batch should be of equal size"):
        default_collate([[1, 2], [3]])
    with pytest.raises(ValueError, match=r"stack: tensor 1 has shape \(3,\) but tensor 0 has \(2,\)"):
        default_collate([gt.zeros(2), gt.zeros(3)])
    with pytest.raises(ValueError, match="batch is empty"):
        default_collate([])


@pytest.mark.parametrize("sample", [np.arange(4.0), np.float32(2.0), {"a": np.ones(2, np.int32), "b": 3},
                                    (np.zeros(1), "s"), Point(np.ones(1), 1.5), [np.array(["txt"]), 2]],
                         ids=["array", "scalar", "dict", "tuple", "namedtuple", "list"])
def test_default_convert_like_torch(sample):
    torch = torch_or_skip()
    mine, ref = default_convert(sample), torch.utils.data.default_convert(sample)
    if isinstance(sample, list):  # a string array stays the numpy array it was
        assert mine[0] is sample[0] and ref[0] is sample[0]
        mine, ref = mine[1:], ref[1:]
    assert_same(mine, ref, torch)


# ---- DataLoader ----------------------------------------------------------------------------------

@pytest.mark.parametrize("batch_size,drop_last", [(1, False), (3, False), (3, True), (7, True), (10, False)])
def test_dataloader_tensor_batches_like_torch(batch_size, drop_last):
    torch = torch_or_skip()
    x, y = np.arange(21, dtype=np.float32).reshape(7, 3), np.arange(7) % 3
    loader = DataLoader(TensorDataset(gt.tensor(x), gt.tensor(y)), batch_size=batch_size, drop_last=drop_last)
    ref = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.tensor(x), torch.tensor(y)),
                                      batch_size=batch_size, drop_last=drop_last)
    assert len(loader) == len(ref)
    assert_same(list(loader), list(ref), torch)
    assert_same(list(loader), list(ref), torch)  # a second epoch gives the same batches


@pytest.mark.parametrize("options", [dict(batch_size=3), dict(batch_size=2, drop_last=True), dict(batch_size=None),
                                     dict(sampler=[6, 1, 4]), dict(batch_sampler=[[0, 5], [2], [6, 3, 1]]),
                                     dict(batch_size=2, collate_fn=lambda b: [s["label"] for s in b])],
                         ids=["batched", "drop_last", "unbatched", "sampler", "batch_sampler", "collate_fn"])
def test_dataloader_nested_samples_like_torch(options):
    torch = torch_or_skip()
    loader, ref = DataLoader(Samples(), **options), torch.utils.data.DataLoader(Samples(), **options)
    assert len(loader) == len(ref)
    assert_same(list(loader), list(ref), torch)


@pytest.mark.parametrize("options", [dict(batch_size=3), dict(batch_size=3, drop_last=True), dict(batch_size=None),
                                     dict(batch_size=7)], ids=str)
def test_dataloader_iterable_dataset_like_torch(options):
    torch = torch_or_skip()

    class TorchStream(torch.utils.data.IterableDataset):
        __iter__, __len__ = Stream.__iter__, Stream.__len__

        def __init__(self):
            self.n, self.sized = 7, True

    loader, ref = DataLoader(Stream(), **options), torch.utils.data.DataLoader(TorchStream(), **options)
    assert len(loader) == len(ref)
    assert_same(list(loader), list(ref), torch)


@pytest.mark.parametrize("batch_size", [1, 4])
def test_dataloader_batches_lie_on_the_mesh_like_data(batch_size):
    x = np.arange(24, dtype=np.float32).reshape(8, 3)
    size = gt.get_mesh().size
    for loader in (DataLoader(TensorDataset(gt.tensor(x)), batch_size=batch_size),
                   DataLoader(list(x), batch_size=batch_size)):
        batches = [b[0] if isinstance(b, list) else b for b in loader]
        if batch_size >= size > 1:  # a batch that spans the mesh is split along it, as data is
            assert all(b.placement == gt.Shard(0) for b in batches)
        elif size == 1:
            assert all(b.placement == gt.Replicate() for b in batches)
        np.testing.assert_array_equal(np.concatenate([b.numpy() for b in batches]), x)


def test_dataloader_iterable_without_len():
    loader = DataLoader(Stream(sized=False), batch_size=2)
    assert [b.shape for b in loader] == [(2, 3), (2, 3), (2, 3), (1, 3)]
    with pytest.raises(TypeError, match="Stream has no len"):
        len(loader)


def test_dataloader_shuffle_is_a_reproducible_permutation():
    ds = TensorDataset(gt.arange(10))
    loader = DataLoader(ds, batch_size=4, shuffle=True)
    assert isinstance(loader.sampler, RandomSampler) and len(loader) == 3

    def epoch():
        batches = [b[0].tolist() for b in loader]
        assert [len(b) for b in batches] == [4, 4, 2]
        return [i for b in batches for i in b]

    gt.manual_seed(5)
    first, second = epoch(), epoch()
    assert sorted(first) == sorted(second) == list(range(10)) and first != second
    gt.manual_seed(5)
    assert epoch() == first
    gt.manual_seed(6)
    assert epoch() != first
    assert [b[0].dtype for b in loader] == [gt.int64] * 3


@pytest.mark.parametrize("options,error,message", [
    (dict(num_workers=2, prefetch_factor=-1), ValueError, "prefetch_factor option should be non-negative"),
    (dict(num_workers=-1), ValueError, "num_workers option should be non-negative"),
    (dict(pin_memory=True), NotImplementedError, "pin_memory=True.*no pinned host memory"),
    (dict(persistent_workers=True), ValueError, "persistent_workers option needs num_workers > 0"),
    (dict(prefetch_factor=2), ValueError, "prefetch_factor option could only be specified in multiprocessing"),
    (dict(timeout=-1), ValueError, "timeout option should be non-negative"),
    (dict(multiprocessing_context="spawn"), ValueError, "multiprocessing_context can only be used with multi-proc"),
    (dict(generator=object()), TypeError, "DataLoader: generator must be a gt.Generator or None, got object"),
    (dict(sampler=[0, 1], shuffle=True), ValueError, "sampler option is mutually exclusive with shuffle"),
    (dict(batch_sampler=[[0]], batch_size=2), ValueError, "batch_sampler option is mutually exclusive"),
    (dict(batch_size=None, drop_last=True), ValueError, "batch_size=None option disables auto-batching"),
    (dict(batch_size=0), ValueError, "batch_size should be a positive integer value, but got batch_size=0"),
])
def test_dataloader_errors(options, error, message):
    with pytest.raises(error, match=message):
        DataLoader(Samples(), **options)


def test_dataloader_no_op_options_and_fixed_attributes():
    loader = DataLoader(Samples(), batch_size=2, timeout=5, worker_init_fn=print, in_order=False, shuffle=False)
    assert len(loader) == 4 and loader.num_workers == 0 and loader.collate_fn is default_collate
    assert DataLoader(Samples(), batch_size=None).collate_fn is default_convert
    loader.collate_fn = default_convert  # torch lets these change
    with pytest.raises(ValueError, match="batch_size attribute should not be set after DataLoader is initialized"):
        loader.batch_size = 3


@pytest.mark.parametrize("option", ["shuffle", "sampler", "batch_sampler"])
def test_dataloader_iterable_dataset_refuses_sampling(option):
    value = {"shuffle": True, "sampler": [0], "batch_sampler": [[0]]}[option]
    with pytest.raises(ValueError, match=f"DataLoader with IterableDataset: expected unspecified {option} option"):
        DataLoader(Stream(), **{option: value})
    with pytest.raises(ValueError, match="batch_size should be a positive integer value, but got batch_size=-1"):
        DataLoader(Stream(), batch_size=-1)
