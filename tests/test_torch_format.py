"""gt.save / gt.load in torch's checkpoint format (gt/serialization/torch_format.py): files written
by torch.save load in gt, files written by gt.save load in torch.load (weights_only=True, its
default, and mmap=True), values, dtypes, shapes, strides and parameters alike."""

import io
import pickle
import struct
import warnings
import zipfile

import numpy as np
import pytest

import gt
from helpers import torch_or_skip

RNG = np.random.default_rng(0)


def _torch_state(torch):
    """A torch checkpoint with what state dicts and training loops hold: views of one storage (an
    offset, a transposed stride), a Parameter, 0-d and empty tensors, several dtypes."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4))
    base = torch.arange(12.0).reshape(3, 4)
    extra = {"row": base[1], "cols": base.t(), "corner": base[1:, 2:], "param": torch.nn.Parameter(torch.ones(2)),
             "scalar": torch.tensor(2.5, dtype=torch.float64), "empty": torch.zeros(0, 3),
             "flags": torch.tensor([True, False]), "half": torch.tensor([0.5, -2.0], dtype=torch.float16),
             "ids": torch.tensor([7, -1], dtype=torch.int32), "bytes": torch.tensor([250, 3], dtype=torch.uint8),
             "chars": torch.tensor([-128, 127], dtype=torch.int8), "shorts": torch.tensor([-300, 2], dtype=torch.int16)}
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    model(torch.randn(5, 3)).sum().backward()
    opt.step()
    return model, {"model": model.state_dict(), "extra": extra, "optimizer": opt.state_dict(), "step": 3,
                   "shape": torch.Size([2, 3]), "dtype": torch.float16}


def test_a_torch_file_loads_in_gt_with_its_values_and_dtypes(tmp_path):
    torch = torch_or_skip()
    model, ckpt = _torch_state(torch)
    torch.save(ckpt, tmp_path / "t.pt")
    back = gt.load(tmp_path / "t.pt")                         # weights_only=True, as torch's default
    assert list(back["model"]) == list(ckpt["model"]) and back["model"]._metadata == ckpt["model"]._metadata
    for key, theirs in [*back["model"].items(), *back["extra"].items()]:
        want = (ckpt["model"] if key in ckpt["model"] else ckpt["extra"])[key].detach()
        assert tuple(theirs.shape) == tuple(want.shape), key
        assert theirs.dtype.name == str(want.dtype).split(".")[-1], key     # uint8/int8/int16 too (gt widened them)
        np.testing.assert_array_equal(theirs.numpy(), want.numpy(), err_msg=key)
    assert back["extra"]["param"].requires_grad and not back["extra"]["row"].requires_grad
    assert back["step"] == 3 and back["shape"] == (2, 3) and back["dtype"] == gt.float16
    state = back["optimizer"]["state"][0]
    np.testing.assert_array_equal(state["exp_avg"].numpy(), ckpt["optimizer"]["state"][0]["exp_avg"].numpy())
    mine = gt.nn.Sequential(gt.nn.Linear(3, 4), gt.nn.BatchNorm1d(4))
    mine.load_state_dict(back["model"])
    x = RNG.standard_normal((5, 3)).astype(np.float32)
    mine.eval(), model.eval()
    np.testing.assert_allclose(mine(gt.tensor(x)).numpy(), model(torch.tensor(x)).detach().numpy(), rtol=1e-5,
                               atol=1e-6)


def test_a_gt_file_loads_in_torch_as_its_own(tmp_path):
    torch = torch_or_skip()
    gt.manual_seed(0)
    mine = gt.nn.Sequential(gt.nn.Linear(3, 4), gt.nn.BatchNorm1d(4))
    mine(gt.randn(6, 3))                                      # running statistics that are not the initial ones
    grid = gt.arange(12.0).reshape(3, 4)
    obj = {"model": mine.state_dict(), "weight": mine[0].weight, "cols": grid.t(), "row": grid[1],
           "scalar": gt.tensor(True), "empty": gt.zeros(0, 2), "half": gt.tensor([0.5, -2.0], dtype=gt.float16),
           "ids": gt.tensor([7, -1], dtype=gt.int32), "nested": [(gt.ones(2, dtype=gt.float64), "x")], "n": 4}
    gt.save(obj, tmp_path / "g.pt")
    for kwargs in ({}, {"mmap": True}):
        theirs = torch.load(tmp_path / "g.pt", **kwargs)
        ref = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4))
        ref.load_state_dict(theirs["model"])                  # strict: every key, shape and dtype fits
        assert ref[1].num_batches_tracked.item() == 1
        assert type(theirs["weight"]).__name__ == "Parameter" and theirs["weight"].requires_grad
        assert theirs["cols"].tolist() == grid.t().tolist() and theirs["row"].tolist() == [4.0, 5.0, 6.0, 7.0]
        assert theirs["scalar"].shape == () and theirs["scalar"].item() is True
        assert theirs["empty"].shape == (0, 2) and theirs["half"].dtype == torch.float16
        assert theirs["ids"].dtype == torch.int32 and theirs["nested"][0][0].dtype == torch.float64
        assert theirs["n"] == 4 and theirs["nested"][0][1] == "x"
        x = RNG.standard_normal((5, 3)).astype(np.float32)
        mine.eval(), ref.eval()
        np.testing.assert_allclose(ref(torch.tensor(x)).detach().numpy(), mine(gt.tensor(x)).numpy(),
                                   rtol=1e-5, atol=1e-6)


def test_each_record_is_aligned_and_named_as_torchs(tmp_path):
    gt.save({"a": gt.ones(3), "b": gt.arange(5)}, tmp_path / "g.pt")
    with zipfile.ZipFile(tmp_path / "g.pt") as archive:
        names = archive.namelist()
        raw = (tmp_path / "g.pt").read_bytes()
        for info in archive.infolist():
            name_len, extra_len = struct.unpack("<HH", raw[info.header_offset + 26:info.header_offset + 30])
            assert (info.header_offset + 30 + name_len + extra_len) % 64 == 0, info.filename
        assert archive.read("archive/byteorder") == b"little" and archive.read("archive/version") == b"3"
    assert names[0] == "archive/data.pkl" and "archive/data/0" in names and "archive/data/1" in names


def test_bfloat16_round_trips_bit_for_bit_on_the_torch_engine(tmp_path):
    torch = torch_or_skip()
    values = torch.tensor([1.0, -3.140625, 1e-30, 65280.0], dtype=torch.bfloat16)
    torch.save({"w": values}, tmp_path / "t.pt")
    if gt.get_backend() != "torch":
        with pytest.raises(TypeError):                        # the numpy engine has no bfloat16
            gt.load(tmp_path / "t.pt")
        return
    back = gt.load(tmp_path / "t.pt")["w"]
    assert back.dtype == gt.bfloat16 and back.to(gt.float32).tolist() == values.float().tolist()
    gt.save({"w": back}, tmp_path / "g.pt")
    again = torch.load(tmp_path / "g.pt")["w"]
    assert again.dtype == torch.bfloat16 and torch.equal(again, values)


def test_arrays_numbers_and_older_gt_files(tmp_path):
    obj = {"w": gt.tensor([[1.0, 2.0]], requires_grad=True), "arr": np.arange(3.0), "np": np.float32(0.5),
           "names": np.array(["cat", "dog"])}
    buffer = io.BytesIO(b"head")
    buffer.seek(4)
    gt.save(obj, buffer)                                      # a file object, not at its start
    buffer.seek(4)
    back = gt.load(buffer)
    assert back["w"].requires_grad and back["w"].tolist() == [[1.0, 2.0]]
    assert isinstance(back["arr"], gt.Tensor) and back["arr"].dtype == gt.float64   # an array: a tensor
    assert back["np"] == np.float32(0.5) and type(back["np"]) is np.float32
    assert isinstance(back["names"], np.ndarray) and back["names"].tolist() == ["cat", "dog"]   # not a tensor dtype
    gt.save(obj, tmp_path / "old.pt", _use_new_zipfile_serialization=False)          # gt's older format
    old = gt.load(tmp_path / "old.pt")
    assert not zipfile.is_zipfile(tmp_path / "old.pt") and isinstance(old["arr"], np.ndarray)
    assert old["w"].tolist() == [[1.0, 2.0]]


def test_weights_only_refuses_other_globals_in_torch_files(tmp_path):
    torch = torch_or_skip()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.save({"run": print, "w": torch.ones(2)}, tmp_path / "t.pt")
    with pytest.raises(pickle.UnpicklingError, match="__builtin__.print.*weights_only=False"):
        gt.load(tmp_path / "t.pt")
    back = gt.load(tmp_path / "t.pt", weights_only=False)
    assert back["run"] is print and back["w"].tolist() == [1.0, 1.0]
    with zipfile.ZipFile(tmp_path / "empty.pt", "w") as archive:
        archive.writestr("x/readme", b"not a checkpoint")
    with pytest.raises(pickle.UnpicklingError, match="no data.pkl"):
        gt.load(tmp_path / "empty.pt")


def test_legacy_torch_files_load_with_torchs_values(tmp_path):
    """torch.save(..., _use_new_zipfile_serialization=False) writes torch's format of before 1.6:
    gt.load gave the format's magic number back as if it were the object."""
    torch = torch_or_skip()
    model, ckpt = _torch_state(torch)
    torch.save(ckpt, tmp_path / "legacy.pt", _use_new_zipfile_serialization=False)
    want = torch.load(tmp_path / "legacy.pt")
    for source in (tmp_path / "legacy.pt", io.BytesIO((tmp_path / "legacy.pt").read_bytes())):
        back = gt.load(source)
        assert list(back) == list(want) and back["step"] == 3 and back["shape"] == (2, 3)
        for key, theirs in [*want["model"].items(), *want["extra"].items()]:
            mine = back["model"][key] if key in want["model"] else back["extra"][key]
            assert mine.dtype.name == str(theirs.dtype).split(".")[-1] and tuple(mine.shape) == tuple(theirs.shape)
            np.testing.assert_array_equal(mine.numpy(), theirs.detach().numpy(), err_msg=key)
        assert back["extra"]["param"].requires_grad and back["extra"]["cols"].tolist() == [[0.0, 4.0, 8.0],
                                                                                         [1.0, 5.0, 9.0],
                                                                                         [2.0, 6.0, 10.0],
                                                                                         [3.0, 7.0, 11.0]]
        np.testing.assert_array_equal(back["optimizer"]["state"][0]["exp_avg"].numpy(),
                                      want["optimizer"]["state"][0]["exp_avg"].numpy())
    torch.save([1, "x"], tmp_path / "plain.pt", _use_new_zipfile_serialization=False)
    assert gt.load(tmp_path / "plain.pt") == [1, "x"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.save({"run": print}, tmp_path / "code.pt", _use_new_zipfile_serialization=False)
    with pytest.raises(pickle.UnpicklingError, match="print.*weights_only=False"):
        gt.load(tmp_path / "code.pt")
    assert gt.load(tmp_path / "code.pt", weights_only=False)["run"] is print


@pytest.mark.parametrize("zipped", [True, False])
def test_weights_only_takes_torchs_builtin_containers_and_numbers(tmp_path, zipped):
    """Pickles of protocol 2 name Python 2's ``__builtin__``: sets, complex numbers and bytearrays
    were refused with weights_only=True, which torch.load takes."""
    torch = torch_or_skip()
    obj = {"tags": {1, 2}, "z": 1 + 2j, "raw": bytearray(b"ab"), "w": [gt.ones(2)]}
    gt.save(obj, tmp_path / "g.pt", _use_new_zipfile_serialization=zipped)
    back = gt.load(tmp_path / "g.pt")
    assert back["tags"] == {1, 2} and back["z"] == 1 + 2j and back["raw"] == bytearray(b"ab")
    assert back["w"][0].tolist() == [1.0, 1.0]
    torch.save({k: v for k, v in obj.items() if k != "w"}, tmp_path / "t.pt", _use_new_zipfile_serialization=zipped)
    theirs, mine = torch.load(tmp_path / "t.pt"), gt.load(tmp_path / "t.pt")
    assert mine == theirs and type(mine["raw"]) is bytearray


def test_load_takes_torchs_weights_only_none_and_a_map_location_dict(tmp_path):
    torch = torch_or_skip()
    torch.save({"w": torch.arange(3.0)}, tmp_path / "t.pt")
    for kwargs in ({"weights_only": None}, {"map_location": {"cuda:0": "cpu"}}, {"map_location": {"cpu": "cpu"}}):
        want = torch.load(tmp_path / "t.pt", **kwargs)["w"]
        assert gt.load(tmp_path / "t.pt", **kwargs)["w"].tolist() == want.tolist() == [0.0, 1.0, 2.0]
    with pytest.raises(ValueError, match="map_location must be None or 'cpu', or a dict"):
        gt.load(tmp_path / "t.pt", map_location={"cpu": "meta"})
    with pytest.raises(TypeError, match="weights_only must be True, False or None"):
        gt.load(tmp_path / "t.pt", weights_only="yes")
