"""Tensors of one storage saved together stay views of one storage (gt/serialization/storages.py),
beside torch 2.13: ``torch.save({"a": x, "v": x[1:3]})`` holds ``x``'s memory once and the loaded
``v`` lies in the loaded ``a``'s; a view saved alone holds its whole storage. Each case is saved by
gt and by torch and loaded by both (and by gt with ``mmap=True``): the layouts (shape, strides,
offset, which storage, its length) and the values are torch's, and a write into one loaded tensor
shows in the others as in torch. Also: torch's error for one memory saved as two dtypes, tied
weights of a state dict, ``mmap=True``'s refusals."""

import io

import numpy as np
import pytest

import gt
from gt.client import nn
from helpers import torch_or_skip

torch = torch_or_skip()
# gt tracks the storage of CPU tensors only (test_strided_views.py): elsewhere a view saves a copy
here = pytest.mark.skipif("not gt.arange(1.0).is_cpu", reason="gt's storages are tracked on the CPU")


def _grid(L, dtype=None):
    x = L.arange(24.0).reshape(4, 6)
    return x if dtype is None else x.to(getattr(L, dtype))


CASES = {
    "slice": lambda L: (lambda x: {"a": x, "v": x[1:3]})(_grid(L)),
    "transpose and a column": lambda L: (lambda x: {"a": x, "t": x.t(), "c": x[:, 2]})(_grid(L)),
    "as_strided windows": lambda L: (lambda x: {"a": x, "s": x.as_strided((3, 4), (2, 1), 3)})(_grid(L)),
    "view, reshape, flatten": lambda L: (lambda x: [x.view(24), x, x.reshape(6, 4), x.flatten()])(_grid(L)),
    "a view alone": lambda L: _grid(L)[2:3, 1:4],
    "two views, no base": lambda L: (lambda x: (x[0], x[3], x[1:, ::2]))(_grid(L)),
    "unfold": lambda L: (lambda x: {"u": x.reshape(-1).unfold(0, 5, 3), "x": x})(_grid(L)),
    "expand": lambda L: (lambda x: {"e": x[1:2].expand(3, 6), "x": x})(_grid(L)),
    "0-d and empty views": lambda L: (lambda x: [x[1, 2], x[2:2], x])(_grid(L)),
    "float64": lambda L: (lambda x: {"a": x, "v": x[1:3].t()})(_grid(L, "float64")),
    "int64": lambda L: (lambda x: {"a": x, "v": x[:, 1]})(_grid(L, "int64")),
    "int16 and uint8": lambda L: (lambda x, y: [x, x[1], y[2:], y])(_grid(L, "int16"), _grid(L, "uint8")),
    "uint16 (untyped storage)": lambda L: (lambda x: {"a": x, "v": x[1:3]})(_grid(L, "uint16")),
    "complex64": lambda L: (lambda x: [x, x[1:3, 2:]])(L.complex(_grid(L), _grid(L) + 1)),
    "bool": lambda L: (lambda x: [x, x[:, 3:]])(_grid(L) > 7),
    "two storages": lambda L: (lambda x, y: [x, y, x[1], y[2], x[3]])(_grid(L), _grid(L) * 2),
}


def _flat(obj):
    if isinstance(obj, dict):
        return [obj[k] for k in sorted(obj)]
    return list(obj) if isinstance(obj, (list, tuple)) else [obj]


def _storage(t):
    """(where the storage starts, its bytes), of a gt or torch tensor."""
    start = t.data_ptr() - t.storage_offset() * t.element_size()
    if isinstance(t, torch.Tensor):
        return start, t.untyped_storage().nbytes()
    from gt.backend import B
    return start, B.storage_size(t._array) * t.element_size()


def _layouts(obj):
    """Each tensor's shape, strides, offset, the number of its storage (in order of first sight) and
    the storage's bytes; and the values."""
    seen, out = {}, []
    for t in _flat(obj):
        start, nbytes = _storage(t)
        # an empty tensor's place is not told (torch's data_ptr() is 0 there, numpy's the base's;
        # the torch engine's empty slice is a tensor of its own)
        where = (tuple(t.stride()), t.storage_offset(), seen.setdefault(start, len(seen)), nbytes) if t.numel() else ()
        out.append((tuple(t.shape), where, str(t.dtype).split(".")[-1], np.asarray(t.tolist()).tolist()))
    return out


def _write(obj):
    """Write into each tensor in turn (its first element), then read them all."""
    for i, t in enumerate(_flat(obj)):
        if t.numel():
            t[(0,) * t.ndim] = 10 + i
    return _layouts(obj)


def _saved(lib, obj):
    buf = io.BytesIO()
    lib.save(obj, buf)
    buf.seek(0)
    return buf


@here
@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_views_saved_together_share_one_storage_as_in_torch(case, tmp_path):
    make = CASES[case]
    if "uint16" in case and not hasattr(torch, "uint16"):
        pytest.skip("torch has no uint16")
    expected = _layouts(torch.load(_saved(torch, make(torch))))
    from_gt = _saved(gt, make(gt))
    assert _layouts(torch.load(from_gt)) == expected           # gt's file, read by torch
    from_gt.seek(0)
    mine = gt.load(from_gt)
    assert _layouts(mine) == expected                          # gt's file, read by gt
    theirs = gt.load(_saved(torch, make(torch)))
    assert _layouts(theirs) == expected                        # torch's file, read by gt
    path = tmp_path / "f.pt"
    torch.save(make(torch), path)
    mapped = gt.load(path, mmap=True)
    assert _layouts(mapped) == expected
    after = _write(torch.load(path, mmap=True))               # writes seen through every view, as torch's
    assert _write(theirs) == after and _write(mapped) == after and _write(mine) == after
    assert _layouts(gt.load(path)) == expected                 # mmap's writes stay in memory (copy-on-write)


@here
def test_one_memory_saved_as_two_dtypes_is_refused_as_in_torch():
    for lib in (torch, gt):
        x = _grid(lib)
        with pytest.raises(RuntimeError, match="view the same data as different types"):
            lib.save({"a": x, "b": x.view(lib.int32)}, io.BytesIO())
        lib.save({"b": x.view(lib.int32)}, io.BytesIO())       # one dtype: saved


@here
def test_weights_only_and_parameters_keep_the_sharing():
    x = _grid(gt)
    p = nn.Parameter(x)
    loaded = gt.load(_saved(gt, {"p": p, "row": x[1]}), weights_only=True)
    assert isinstance(loaded["p"], nn.Parameter) and loaded["p"].requires_grad
    assert loaded["row"].data_ptr() == loaded["p"].data_ptr() + 6 * 4
    t = torch.load(_saved(gt, {"p": p, "row": x[1]}), weights_only=True)
    assert isinstance(t["p"], torch.nn.Parameter) and t["row"].data_ptr() == t["p"].data_ptr() + 24


def _tied(lib):
    lib.manual_seed(0)
    m = lib.nn.Sequential(lib.nn.Embedding(5, 3), lib.nn.Linear(3, 5, bias=False))
    m[1].weight = m[0].weight
    return m


@here
def test_a_state_dict_keeps_tied_weights_one_storage():
    sd = _tied(gt).state_dict()
    assert sd["0.weight"] is sd["1.weight"]                      # one copy, under both names (torch: one tensor)
    t = torch.load(_saved(gt, sd))
    assert t["0.weight"].data_ptr() == t["1.weight"].data_ptr()
    expected = torch.load(_saved(torch, _tied(torch).state_dict()))
    assert t["0.weight"].untyped_storage().nbytes() == expected["0.weight"].untyped_storage().nbytes()
    g = gt.load(_saved(torch, _tied(torch).state_dict()))
    assert g["0.weight"].data_ptr() == g["1.weight"].data_ptr()
    m = _tied(gt)
    m.load_state_dict(g)
    assert m[0].weight is m[1].weight


@here
def test_mmap_needs_a_path_to_a_zip_file(tmp_path):
    with pytest.raises(ValueError, match="f must be a file path in order to use the mmap argument"):
        gt.load(_saved(gt, gt.ones(2)), mmap=True)
    path = tmp_path / "old.pt"
    gt.save(gt.ones(2), path, _use_new_zipfile_serialization=False)
    with pytest.raises(RuntimeError, match="mmap can only be used with files saved with"):
        gt.load(path, mmap=True)
    gt.save({"w": gt.arange(4.0)}, path)
    assert gt.load(path, mmap=True)["w"].tolist() == [0.0, 1.0, 2.0, 3.0]


@here
def test_bfloat16_views_share_their_storage():
    try:
        x = _grid(gt, "bfloat16")
    except TypeError:
        pytest.skip("the numpy engine has no bfloat16")
    expected = _layouts(torch.load(_saved(torch, (lambda y: {"a": y, "v": y[1:3, ::2]})(_grid(torch, "bfloat16")))))
    from_gt = _saved(gt, {"a": x, "v": x[1:3, ::2]})
    assert _layouts(torch.load(from_gt)) == expected
    from_gt.seek(0)
    mine, theirs = gt.load(from_gt), torch.load(_saved(torch, {"a": _grid(torch, "bfloat16")}))
    assert mine["v"].data_ptr() - mine["a"].data_ptr() == 6 * 2 and mine["v"].stride() == (6, 2)
    assert mine["v"].storage_offset() == theirs["a"][1:3, ::2].storage_offset() == 6
    mine["a"][1, 0] = 100.0
    assert mine["v"].tolist() == [[100.0, 8.0, 10.0], [12.0, 14.0, 16.0]]
    assert gt.load(_saved(torch, {"a": theirs["a"], "v": theirs["a"][1:3, ::2]}))["v"].tolist() == \
        [[6.0, 8.0, 10.0], [12.0, 14.0, 16.0]]


def _halves(lib):
    m = lib.nn.Module()
    buf = lib.arange(10.0)
    m.a, m.b = lib.nn.Parameter(buf[:4]), lib.nn.Parameter(buf[4:].view(2, 3))
    return m


@here
def test_a_state_dict_of_parameters_in_one_memory_saves_it_once():
    expected = _layouts(torch.load(_saved(torch, _halves(torch).state_dict())))
    assert _layouts(torch.load(_saved(gt, _halves(gt).state_dict()))) == expected
    assert _layouts(gt.load(_saved(torch, _halves(torch).state_dict()))) == expected
