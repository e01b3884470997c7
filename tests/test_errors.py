"""Bad input gets a clear error, never a silent wrong answer: the exception type, and a
message that names the op and the shapes or values involved."""

import contextlib
import re

import numpy as np
import pytest

import gt


@contextlib.contextmanager
def raises(exc, *needles):
    """``pytest.raises(exc)`` whose message must contain every needle (plain text, not regex). On a
    GPU a check of values waits for the next host read (gt/tensor/checks.py): the block ends with one."""
    with pytest.raises(exc, match="(?s)" + "".join(f"(?=.*{re.escape(str(n))})" for n in needles)) as info:
        yield info
        gt.checks.flush()


# ---- shape mismatches -> ValueError naming the op and both shapes -------------------------
def test_matmul_shape_mismatch():
    a, b = gt.randn(2, 3), gt.randn(4, 5)
    with raises(ValueError, "matmul", "(2, 3)", "(4, 5)"):
        a @ b
    with raises(ValueError, "matmul", "(3,)", "(4,)"):
        gt.randn(3) @ gt.randn(4)
    with raises(ValueError, "matmul", "(2, 3, 4)", "(5, 4, 2)"):
        gt.randn(2, 3, 4) @ gt.randn(5, 4, 2)  # batch dims that do not broadcast
    with raises(ValueError, "matmul", "()"):
        gt.randn(3) @ gt.tensor(2.0)
    for args in ((2, gt.randn(2)), (2.5, gt.randn(2, 2)), (gt.randn(2), 3)):   # a number first raised AttributeError
        with raises(TypeError, "matmul", "Python scalars"):
            gt.matmul(*args)


@pytest.mark.parametrize("op, name", [(lambda a, b: a + b, "add"), (lambda a, b: a * b, "mul"),
                                      (lambda a, b: a - b, "sub"), (lambda a, b: a / b, "div"),
                                      (lambda a, b: a ** b, "pow"), (gt.maximum, "maximum"),
                                      (gt.minimum, "minimum"), (lambda a, b: a < b, "lt"),
                                      (lambda a, b: gt.where(a > 0, a, b), "where")])
def test_broadcast_mismatch(op, name):
    with raises(ValueError, name, "(3, 4)", "(5,)"):
        op(gt.randn(3, 4), gt.randn(5))


def test_broadcast_mismatch_with_numpy_operand():
    with raises(ValueError, "add", "(2, 3)", "(4,)"):
        gt.randn(2, 3) + np.ones(4)


def test_reshape_mismatch():
    with raises(ValueError, "reshape", "(2, 3)", "(4, 2)"):
        gt.randn(2, 3).reshape(4, 2)
    with raises(ValueError, "reshape", "(2, 3)", "(4, -1)"):
        gt.randn(2, 3).reshape(4, -1)
    with raises(ValueError, "reshape", "-1"):
        gt.randn(2, 3).reshape(-1, -1)
    with raises(ValueError, "reshape", "(2, 3)", "(7,)"):
        gt.randn(2, 3).view(7)


def test_cat_and_stack_mismatch():
    with raises(ValueError, "cat", "(3, 3)", "(2, 4)"):
        gt.cat([gt.randn(3, 3), gt.randn(2, 4)])
    with raises(ValueError, "cat", "(3, 3)", "(3,)"):
        gt.cat([gt.randn(3, 3), gt.randn(3)])
    with raises(ValueError, "stack", "(2, 3)", "(3, 2)"):
        gt.stack([gt.randn(2, 3), gt.randn(3, 2)])
    with raises(ValueError, "cat", "empty"):
        gt.cat([])


def test_expand_and_inplace_mismatch():
    with raises(ValueError, "expanded size", "[4, 3]", "[2, 3]"):     # torch's RuntimeError too
        gt.randn(2, 3).expand(4, 3)
    w = gt.zeros(3)
    with raises(ValueError, "(2, 3)", "(3,)"):
        w += gt.ones(2, 3)  # in place cannot grow the tensor
    x = gt.randn(2, 2, requires_grad=True)
    with raises(ValueError, "backward", "(3,)", "(2, 2)"):
        (x * 2).backward(gt.ones(3))


def test_split_sizes_mismatch():
    with raises(ValueError, "split", "[2, 2]", "5"):
        gt.randn(5, 2).split([2, 2])


# ---- bad data -> TypeError saying what was given ---------------------------------------------
def test_tensor_from_string():
    with raises(TypeError, "str", "abc"):
        gt.tensor("abc")
    with raises(TypeError, "str"):
        gt.tensor(["a", "b"])


def test_tensor_from_ragged_list():
    with raises(TypeError, "ragged", "[[1, 2], [3]]"):
        gt.tensor([[1, 2], [3]])


def test_tensor_from_objects():
    with raises(TypeError, "object"):
        gt.tensor([object()])
    with raises(TypeError, "dict"):
        gt.tensor({"a": 1})
    with raises(TypeError, "None"):
        gt.tensor(None)


def test_unsupported_dtypes():
    # complex64/complex128 are gt dtypes (tests/test_complex_parity.py); torch's complex32 is not
    with raises(TypeError, "complex32"):
        gt.zeros(2, dtype="complex32")
    with raises(TypeError, "chalf"):
        gt.zeros(2, dtype="chalf")
    with raises(TypeError, "from_numpy", "list"):
        gt.from_numpy([1.0, 2.0])
    with raises(TypeError, "add", "str"):
        gt.randn(2) + "a"


# ---- autograd misuse -> RuntimeError ----------------------------------------------------------
def test_backward_on_non_scalar_without_grad():
    x = gt.randn(2, 3, requires_grad=True)
    with raises(RuntimeError, "backward", "scalar", "(2, 3)"):
        (x * 2).backward()


def test_backward_without_requires_grad():
    with raises(RuntimeError, "backward", "requires_grad"):
        gt.randn(3).sum().backward()
    x = gt.randn(3, requires_grad=True)
    with gt.no_grad():
        y = (x * 2).sum()
    with raises(RuntimeError, "does not require grad"):
        y.backward()


def test_requires_grad_on_int_tensor():
    with raises(RuntimeError, "floating point", "int64"):
        gt.tensor([1, 2], requires_grad=True)
    with raises(RuntimeError, "floating point", "int64"):
        gt.arange(3).requires_grad_()
    with raises(RuntimeError, "floating point", "bool"):
        gt.tensor([True]).requires_grad = True


# ---- indexing and axes -> IndexError -----------------------------------------------------------
def test_index_out_of_range():
    t = gt.randn(3, 4)
    with raises(IndexError, "5", "(3, 4)"):
        t[5]
    with raises(IndexError, "-4", "(3, 4)"):
        t[-4]
    with raises(IndexError, "4", "(3, 4)"):
        t[0, 4]
    with raises(IndexError, "(3, 4)"):
        t[[0, 3, 7]]
    with raises(IndexError, "(3, 4)"):
        t[gt.tensor([1, -9])]
    with raises(IndexError, "mask [2]", "[3, 4]"):     # torch's message, which names the shapes as lists
        t[gt.tensor([True, False])]  # a mask of the wrong length
    with raises(IndexError, "(3, 4)"):
        t[0, 0, 0]
    with raises(IndexError, "(3, 4)"):
        t[5] = 1.0


@pytest.mark.parametrize("call, name", [
    (lambda t: t.sum(axis=2), "sum"), (lambda t: t.mean(axis=-3), "mean"), (lambda t: t.max(axis=(0, 5)), "max"),
    (lambda t: t.min(dim=2), "min"), (lambda t: t.var(axis=3), "var"), (lambda t: t.softmax(2), "softmax"),
    (lambda t: t.log_softmax(-3), "log_softmax"), (lambda t: t.argmax(axis=2), "argmax"),
    (lambda t: t.transpose(0, 2), "transpose"), (lambda t: t.squeeze(2), "squeeze"),
    (lambda t: t.unsqueeze(3), "unsqueeze"), (lambda t: t.unsqueeze(-4), "unsqueeze"),
    (lambda t: t.flatten(3), "flatten"), (lambda t: t.split(1, axis=2), "split"),
    (lambda t: t.chunk(2, dim=-3), "chunk"), (lambda t: gt.cat([t, t], axis=2), "cat"),
    (lambda t: t.size(2), "size"),
])
def test_bad_axis(call, name):
    with raises(IndexError, name, "axis", "2 dimension"):
        call(gt.randn(3, 4))


def test_bad_stack_axis():
    with raises(IndexError, "stack", "axis 3", "3 dimension", "(3, 4)"):
        gt.stack([gt.randn(3, 4), gt.randn(3, 4)], axis=3)


def test_bad_permutation():
    with raises(ValueError, "permute", "(0, 0)", "(3, 4)"):
        gt.randn(3, 4).permute(0, 0)
    with raises(ValueError, "repeated axis"):
        gt.randn(3, 4).sum(axis=(0, 0))


# ---- other bad arguments ----------------------------------------------------------------------
def test_other_bad_arguments():
    with raises(ValueError, "item", "(2,)"):
        gt.randn(2).item()
    with raises(ValueError, "clip"):
        gt.randn(2).clip()
    with raises(ValueError, "gelu", "erf"):
        gt.randn(2).gelu(approximate="erf")
    with raises(ValueError, "manual_seed", "out of range"):
        gt.manual_seed(2 ** 64)
    with raises(ValueError, "negative", "(2, -1)"):
        gt.zeros(2, -1)
    with raises(TypeError, "shape", "2.5"):
        gt.zeros(2.5)
    with raises(ValueError, "split", "0"):
        gt.randn(4).split(0)
    with raises(ValueError, "ambiguous", "(2,)"):
        bool(gt.randn(2))
    with raises(ValueError, "flatten", "(2, 3, 4)"):
        gt.randn(2, 3, 4).flatten(2, 1)
    with raises(TypeError, "0-d"):
        list(gt.tensor(5.0))
    with raises(TypeError, "unsqueeze", "None"):
        gt.randn(2).unsqueeze()


def test_one_element_integer_tensors_are_indices_and_none_compares_unequal_as_in_torch():
    torch = pytest.importorskip("torch")
    names = ["a", "b", "c", "d"]
    for lib in (gt, torch):
        scores = lib.tensor([0.1, 0.7, 0.2])
        assert names[scores.argmax()] == "b"                          # a 0-d int64 tensor as a list index
        assert list(range(lib.tensor([3]))) == [0, 1, 2] and names[lib.tensor([[2]])] == "c"
        assert names[lib.tensor(True)] == "b" and lib.ones(2, 3).reshape(lib.tensor(3), -1).shape == (3, 2)
        for bad in (lib.tensor(1.0), lib.tensor([1, 2])):
            with pytest.raises(TypeError, match="only integer tensors of a single element can be converted to an "
                                                "index"):
                names[bad]
        t = lib.tensor([1.0, 2.0])
        assert (t == None) is False and (t != None) is True          # noqa: E711  (what torch answers)
    sections = gt.arange(6).tensor_split(gt.tensor([1, 4]))         # a tensor of indices is still a sequence
    assert [s.tolist() for s in sections] == [[0], [1, 2, 3], [4, 5]]


def test_membership_and_dlpack_are_torchs():
    torch = pytest.importorskip("torch")
    for lib in (gt, torch):
        t = lib.tensor([[1.0, 2.0], [3.0, 4.0]])
        assert 3 in t and lib.tensor(2.0) in t and 5 not in t and lib.tensor([3.0, 9.0]) in t
        with pytest.raises(RuntimeError, match="__contains__ only supports Tensor or scalar"):
            "x" in t
    t = gt.tensor([[1.0, 2.0], [3.0, 4.0]])
    np.from_dlpack(t)[0, 0] = 42.0                 # DLPack shares the tensor's memory
    torch.from_dlpack(t)[0, 1] = 7.0
    assert t.tolist() == [[42.0, 7.0], [3.0, 4.0]]


def test_from_dlpack_shares_memory_as_torchs():
    torch = pytest.importorskip("torch")
    a, b = np.arange(3.0, dtype=np.float32), torch.arange(3.0)
    ta, tb = gt.from_dlpack(a), gt.from_dlpack(b)
    a[0], b[1] = 9.0, 5.0
    assert ta.tolist() == [9.0, 1.0, 2.0] and tb.tolist() == [0.0, 5.0, 2.0] and tb.dtype == gt.float32
    with pytest.raises(TypeError, match="from_dlpack expects an object with __dlpack__"):
        gt.from_dlpack([1, 2])
