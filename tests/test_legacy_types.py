"""torch's legacy typed constructors (gt/tensor/legacy_types.py) beside torch's."""

import numpy as np
import pytest

import gt
from helpers import torch_or_skip

# BFloat16Tensor exists too; bfloat16 tensors of data are autocast's only (MISSING.md)
NAMES = ["FloatTensor", "DoubleTensor", "HalfTensor", "LongTensor", "IntTensor", "BoolTensor",
         "ByteTensor", "CharTensor", "ShortTensor"]


@pytest.mark.parametrize("name", NAMES)
def test_legacy_constructors_are_torch_s(name):
    torch = torch_or_skip()
    for args in (([1, 0, 3],), (np.array([[2, 0]]),), (2, 3), ()):
        t, g = getattr(torch, name)(*args), getattr(gt, name)(*args)
        assert tuple(g.shape) == tuple(t.shape) and str(g.dtype).split(".")[-1] == str(t.dtype).split(".")[-1]
        if args and not isinstance(args[0], int):
            assert g.tolist() == t.tolist()
        assert isinstance(g, getattr(gt, name)) and isinstance(t, getattr(torch, name))
        other = "LongTensor" if name != "LongTensor" else "FloatTensor"
        assert not isinstance(g, getattr(gt, other)) and not isinstance(t, getattr(torch, other))
    same = getattr(gt, name)([1])
    assert getattr(gt, name)(same) is same                     # torch's alias of a tensor of its dtype


def test_legacy_constructor_errors():
    torch = torch_or_skip()
    with pytest.raises(TypeError):
        torch.IntTensor(torch.tensor([1.5]))
    with pytest.raises(TypeError, match=r"expected a tensor of dtype gt.int32, got gt.float32"):
        gt.IntTensor(gt.tensor([1.5]))
    with pytest.raises(TypeError, match="sizes"):
        gt.FloatTensor([1], [2])
    assert gt.FloatTensor(2, device="cpu").shape == (2,)


def test_variable_is_a_tensor_as_in_torch():
    torch = torch_or_skip()
    for m in (torch, gt):
        t = m.ones(2)
        v = m.autograd.Variable(t, requires_grad=True)
        assert v is not t and v.requires_grad and not t.requires_grad and isinstance(m.zeros(1), m.autograd.Variable)
        assert m.autograd.Variable(m.ones(2, requires_grad=True) * 2).grad_fn is None     # a new leaf
        if m is torch or gt.backend.B.name == "numpy" and t._placed is None:     # (sharded: no one pointer)
            assert v.data_ptr() == t.data_ptr()                                              # the same memory
        assert not isinstance(3.0, m.autograd.Variable)
    with pytest.raises(TypeError, match="has to be a tensor"):
        gt.autograd.Variable([1.0])


def test_frombuffer_reads_the_bytes_as_torch():
    torch = torch_or_skip()
    data = np.array([1.5, -2.0, 4.0], dtype=np.float32).tobytes() + np.array([7], dtype=np.int64).tobytes()
    for kwargs in ({"dtype": "float32", "count": 3}, {"dtype": "float32", "count": 2, "offset": 4},
                   {"dtype": "int64", "offset": 12}):
        dt = kwargs.pop("dtype")
        want = torch.frombuffer(bytearray(data), dtype=getattr(torch, dt), **kwargs).tolist()
        assert gt.frombuffer(bytearray(data), dtype=getattr(gt, dt), **kwargs).tolist() == want
    if gt.backend.B.name == "numpy":      # the memory is shared, as torch's
        buf = bytearray(data[:8])
        t = gt.frombuffer(buf, dtype=gt.float32)
        buf[:4] = np.array([9.0], dtype=np.float32).tobytes()
        assert t.tolist() == [9.0, -2.0]


def test_deprecated_aliases_warn_as_torch():
    torch = torch_or_skip()
    for m in (torch, gt):
        for name in ("uniform", "normal", "xavier_uniform", "kaiming_normal", "orthogonal"):
            with pytest.warns(FutureWarning, match=f"`nn.init.{name}` is now deprecated in favor of `nn.init.{name}_`"):
                getattr(m.nn.init, name)(m.empty(3, 3))
        with pytest.warns(FutureWarning, match="clip_grad_norm` is now deprecated"):
            m.nn.utils.clip_grad_norm([m.nn.Parameter(m.ones(2))], 1.0)
    assert gt.vmap is gt.func.vmap and gt.autograd.inference_mode is gt.inference_mode
