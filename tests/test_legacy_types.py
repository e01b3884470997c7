"""torch's legacy typed constructors (gt/tensor/legacy_types.py) beside torch's."""

import numpy as np
import pytest

import gt
from helpers import torch_or_skip

# BFloat16Tensor exists too; bfloat16 tensors of data are autocast's only (MISSING.md)
NAMES = ["FloatTensor", "DoubleTensor", "HalfTensor", "LongTensor", "IntTensor", "BoolTensor"]


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
