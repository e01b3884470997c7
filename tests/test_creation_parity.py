"""Tensor creation beside torch: the fill value's dtype in ``full``, fills an integer dtype cannot
hold, ``arange`` with an integer dtype and float arguments, ``requires_grad=`` on the ``new_*``
methods, and Python ints beyond int64 in ``gt.tensor``. Values and dtypes are torch's."""

import numpy as np
import pytest

import gt

torch = pytest.importorskip("torch")


def _same(g, t):
    assert str(g.dtype).split(".")[-1] == str(t.dtype).split(".")[-1]
    assert tuple(g.shape) == tuple(t.shape)
    assert g.tolist() == t.tolist()
    assert g.requires_grad == t.requires_grad


@pytest.mark.parametrize("make", [
    lambda m: m.full((2,), m.tensor(3)),                     # a 0-d int tensor: int64, not float32
    lambda m: m.full((2,), m.tensor(True)),
    lambda m: m.full((2,), m.tensor(2.5, dtype=m.float64)),  # a number: float32, as torch
    lambda m: m.full((2,), np.int32(3)),                     # numpy ints are ints
    lambda m: m.full((2,), np.int64(-4)),
    lambda m: m.full((2,), np.bool_(True)),                  # torch reads a numpy bool as a float
    lambda m: m.full((2,), np.float64(1.5), dtype=m.int64),
    lambda m: m.full_like(m.tensor([1, 2]), np.int32(7)),
    lambda m: m.tensor([1.0]).new_full((2,), m.tensor(3)),
])
def test_full_fill_value_dtype_as_torch(make):
    _same(make(gt), make(torch))


@pytest.mark.parametrize("make", [
    lambda m: m.full((2,), float("nan"), dtype=m.int64),
    lambda m: m.full((2,), float("inf"), dtype=m.int32),
    lambda m: m.full((2,), 1e30, dtype=m.int64),
    lambda m: m.full((2,), 2 ** 40, dtype=m.int32),
    lambda m: m.full((2,), 2 ** 63),
    lambda m: m.full((2,), 1e300),
    lambda m: m.full_like(m.tensor([1, 2]), float("nan")),
    lambda m: m.tensor([1, 2]).new_full((1,), float("-inf")),
])
def test_full_refuses_a_value_the_dtype_cannot_hold(make):
    with pytest.raises(RuntimeError, match="without overflow"):
        make(torch)
    with pytest.raises(RuntimeError, match="without overflow"):
        make(gt)
    for value in (float("inf"), float("-inf")):       # floats keep infinities and NaN
        _same(gt.full((2,), value), torch.full((2,), value))
    assert np.isnan(gt.full((1,), float("nan"), dtype=gt.float64).numpy()).all()


ARANGES = [(-0.5, 3, 1), (0, 5, 1.5), (0, 5, 2.9), (0, 2.5, 1), (2.7, -3.2, -1.5), (0.5, 0.9, 1),
           (-3.5, -0.2, 0.7), (1, 7, 2), (3, 0, -0.5), (-19.63, 12.43, 0.65), (10, -8.5, -3.7)]


@pytest.mark.parametrize("dtype", ["int64", "int32"])
@pytest.mark.parametrize("args", ARANGES)
def test_integer_arange_of_float_arguments_as_torch(args, dtype):
    try:
        want = torch.arange(*args, dtype=getattr(torch, dtype))
    except ValueError:               # a step truncated to 0 (int64 only)
        with pytest.raises(ValueError, match="step must be nonzero"):
            gt.arange(*args, dtype=getattr(gt, dtype))
        return
    _same(gt.arange(*args, dtype=getattr(gt, dtype)), want)


@pytest.mark.parametrize("method,args", [("new_zeros", ((2, 3),)), ("new_ones", (2,)), ("new_empty", (2,)),
                                         ("new_full", ((2,), 1.5)), ("new_tensor", ([1.0, 2.0],))])
def test_new_methods_take_requires_grad(method, args):
    g = getattr(gt.tensor([1.0, 2.0]), method)(*args, requires_grad=True)
    t = getattr(torch.tensor([1.0, 2.0]), method)(*args, requires_grad=True)
    assert g.requires_grad and t.requires_grad and g.is_leaf and t.is_leaf
    assert tuple(g.shape) == tuple(t.shape) and str(g.dtype).split(".")[-1] == str(t.dtype).split(".")[-1]
    if method != "new_empty":
        assert g.tolist() == t.tolist()
    assert not getattr(gt.tensor([1.0, 2.0]), method)(*args).requires_grad
    with pytest.raises(RuntimeError):
        getattr(torch.tensor([1, 2]), method)(*args, requires_grad=True)
    with pytest.raises(RuntimeError):
        getattr(gt.tensor([1, 2]), method)(*args, requires_grad=True)
    src = gt.tensor([1.0, 2.0], requires_grad=True)
    out = gt.zeros(1, dtype=gt.float64).new_tensor(src)
    assert out.dtype == gt.float64 and not out.requires_grad and out.tolist() == [1.0, 2.0]


@pytest.mark.parametrize("data", [[2 ** 63], [[2 ** 63, 2 ** 64 - 1]], 2 ** 63])
def test_tensor_refuses_ints_beyond_int64(data):
    with pytest.raises(ValueError, match="Overflow"):
        torch.tensor(data)
    with pytest.raises(ValueError, match="Overflow"):
        gt.tensor(data)
    with pytest.raises(ValueError, match="Overflow"):
        gt.tensor(data, dtype=gt.int64)
    _same(gt.tensor([2 ** 63], dtype=gt.float64), torch.tensor([2 ** 63], dtype=torch.float64))
    _same(gt.tensor([2 ** 63 - 1, -2 ** 63]), torch.tensor([2 ** 63 - 1, -2 ** 63]))
