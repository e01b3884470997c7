"""The tensor object's own Python API beside torch 2.13: item assignment of a one-element value,
``reversed``, ``==`` with objects that are not numbers, ``in`` with numpy scalars, pickling and
``copy.deepcopy``, ``fill_`` with a tensor, ``retain_grad`` and ``.grad``/``.data`` assignment,
writes of a value that requires grad into integer tensors, ``map_``'s operand. Each runs the
same program in gt and torch and compares values, dtypes, gradients and errors."""

import copy
import pickle

import numpy as np
import pytest

import gt
from helpers import torch_or_skip

torch = torch_or_skip()


def _same(ours, theirs):
    assert ours.shape == tuple(theirs.shape)
    assert ours.dtype.name == str(theirs.dtype).replace("torch.", "")
    np.testing.assert_array_equal(ours.detach().numpy(), theirs.detach().numpy())


@pytest.mark.parametrize("dtype", ["float32", "int32", "int64"])
@pytest.mark.parametrize("index", [0, -1, (1,)])
def test_setitem_one_element_value_into_one_element(index, dtype):
    results = []
    for m in (gt, torch):
        t = m.zeros(3, dtype=getattr(m, dtype))
        t[index] = m.tensor([5], dtype=m.int64)
        u = m.zeros(2, 3)
        u[1, index] = m.tensor([[7.5]])
        results.append((t, u))
    for ours, theirs in zip(*results):
        _same(ours, theirs)


def test_setitem_one_element_value_gradient():
    results = []
    for m in (gt, torch):
        a = m.tensor([2.0], requires_grad=True)
        y = m.zeros(3)
        y[1] = a * 3
        (y * m.tensor([1.0, 2.0, 3.0])).sum().backward()
        results.append((y, a.grad))
    for ours, theirs in zip(*results):
        _same(ours, theirs)
    for m in (gt, torch):     # two elements into one stay refused
        with pytest.raises((RuntimeError, ValueError)):
            m.zeros(3)[0] = m.tensor([5.0, 6.0])


@pytest.mark.parametrize("shape", [(), (3,), (3, 2)])
def test_reversed(shape):
    arr = np.arange(int(np.prod(shape)), dtype=np.float32).reshape(shape)
    ours, theirs = reversed(gt.tensor(arr)), reversed(torch.tensor(arr))
    _same(ours, theirs)


def test_reversed_gradient():
    grads = []
    for m in (gt, torch):
        a = m.tensor([1.0, 2.0, 3.0], requires_grad=True)
        (reversed(a) * m.tensor([1.0, 10.0, 100.0])).sum().backward()
        grads.append(a.grad)
    _same(*grads)


@pytest.mark.parametrize("other", ["a", object(), b"x"])
def test_eq_ne_with_objects_that_are_not_numbers(other):
    for m in (gt, torch):
        t = m.ones(2)
        assert (t == other) is False
        assert (t != other) is True


def test_contains_numpy_scalar():
    for m in (gt, torch):
        t = m.arange(3)
        assert (np.int64(2) in t) is True
        assert (np.float32(7.0) in t) is False


def test_pickle_drops_grad_and_graph():
    results = []
    for m in (gt, torch):
        a = m.tensor([1.0, 2.0], requires_grad=True)
        (a * 3).sum().backward()
        b = pickle.loads(pickle.dumps(a))
        y = pickle.loads(pickle.dumps(a * 2))
        results.append((b.grad is None, b.requires_grad, y.is_leaf, y.requires_grad, y.grad_fn is None))
        _ = (b, y)
    assert results[0] == results[1] == (True, True, True, True, True)


def test_deepcopy_keeps_grad_parameter_drops_it():
    for m in (gt, torch):
        a = m.tensor([1.0, 2.0], requires_grad=True)
        (a * 3).sum().backward()
        b = copy.deepcopy(a)
        assert b.requires_grad and b.is_leaf
        assert b.grad is not a.grad and b.grad.tolist() == [3.0, 3.0]
        p = m.nn.Parameter(m.ones(2))
        (p * 2).sum().backward()
        q = copy.deepcopy(p)
        assert type(q) is type(p) and q.grad is None and q.requires_grad
    t = gt.ones(2)
    assert copy.deepcopy(t).id != t.id and pickle.loads(pickle.dumps(t)).id != t.id


def test_fill_with_tensor_values():
    results = []
    for m in (gt, torch):
        results.append([m.zeros(3).fill_(m.tensor(2.5)), m.zeros(3, dtype=m.int64).fill_(m.tensor(2.7)),
                        m.zeros(2, dtype=m.bool).fill_(m.tensor(0.5))])
    for ours, theirs in zip(*results):
        _same(ours, theirs)


def test_fill_with_a_one_d_tensor_refused():
    for m in (gt, torch):
        with pytest.raises(RuntimeError, match="0-dimension"):
            m.zeros(3).fill_(m.tensor([2.5]))


def test_retain_grad_without_requires_grad_refused():
    for m in (gt, torch):
        with pytest.raises(RuntimeError, match="requires_grad=False"):
            m.ones(2).retain_grad()
        with pytest.raises(RuntimeError, match="requires_grad=False"):
            (m.ones(2) * 2).retain_grad()
        m.ones(2, requires_grad=True).retain_grad()       # a leaf: nothing to do


def test_grad_assigned_itself_refused():
    for m in (gt, torch):
        a = m.ones(2, requires_grad=True)
        with pytest.raises(RuntimeError, match="its own grad"):
            a.grad = a


def test_data_assignment_of_another_shape():
    results = []
    for m in (gt, torch):
        a = m.ones(2, requires_grad=True)
        a.data = m.arange(6.0).reshape(2, 3)
        (a * 2).sum().backward()
        results.append((a, a.grad))
    for ours, theirs in zip(*results):
        _same(ours, theirs)


@pytest.mark.parametrize("write", ["setitem", "copy_", "fill_"])
def test_value_requiring_grad_written_into_integer_tensor(write):
    results = []
    for m in (gt, torch):
        a = m.tensor([2.5, -1.7, 3.2], requires_grad=True)
        y = m.zeros(3, dtype=m.int64)
        if write == "setitem":
            y[1:] = a[1:]
        elif write == "copy_":
            y.copy_(a)
        else:
            y.fill_(a[0])
        results.append(y)
        # torch's fill_ leaves an integer tensor with a grad_fn (FillBackward3); gt's has none
        assert not y.requires_grad or (m is torch and write == "fill_")
    _same(*results)


def test_map_refuses_operand_that_requires_grad():
    for m in (gt, torch):
        with pytest.raises(RuntimeError, match="requires grad"):
            m.ones(2).map_(m.ones(2, requires_grad=True), lambda x, y: x + y)


def test_setitem_value_with_leading_ones_through_a_mask_and_other_dtypes_torch_takes():
    results = []
    for m in (gt, torch):
        v = m.tensor([[1.0, 2.0, 3.0]], requires_grad=True)
        y = m.zeros(4, 3)
        y[m.tensor([True, False, True, True])] = v * 2
        z = m.zeros(2, 3, dtype=m.int64)
        z[m.tensor([[True, False, True], [False, True, True]])] = m.tensor([[7]])
        (y * m.arange(12.0).reshape(4, 3)).sum().backward()
        t = m.zeros(2, 3)
        t[m.tensor(1)] = m.tensor([1, 2, 3])                                  # a 0-d index is an integer
        t[m.tensor([True, False])] = m.tensor([9], dtype=m.int64)           # one mask, one value: a fill
        t[m.tensor([[False, False, True], [False, False, False]])] = m.tensor(5.0, dtype=m.float64)
        t[m.tensor([0, 1]), m.tensor([0, 0])] = 4                             # a Python number
        results.append((y, v.grad, z, t))
    for ours, theirs in zip(*results):
        _same(ours, theirs)


_INDEX_PUTS = {
    "list": lambda m: [0, 1],
    "int tensor": lambda m: m.tensor([1]),
    "slice and int tensor": lambda m: (slice(None), m.tensor([0, 2])),
    "int and int tensor": lambda m: (0, m.tensor([0, 1])),
    "0-d bool": lambda m: m.tensor(True),
    "two masks": lambda m: (m.tensor([True, False]), m.tensor([True, False, True])),
    "mask, several values": lambda m: m.tensor([True, False]),
}


@pytest.mark.parametrize("name", list(_INDEX_PUTS))
def test_index_put_of_another_dtype_refused(name):
    for m in (gt, torch):
        value = m.ones(3, dtype=m.float64) if name == "mask, several values" else m.tensor(2.0, dtype=m.float64)
        with pytest.raises(RuntimeError, match="Index put requires the source and destination dtypes match, got "
                                               "Float for the destination and Double for the source"):
            m.zeros(2, 3)[_INDEX_PUTS[name](m)] = value
