"""Integer division and remainder by zero raise torch's ZeroDivisionError (numpy would give 0
with a warning); float division by zero gives torch's inf and NaN."""

import numpy as np
import pytest

import gt

torch = pytest.importorskip("torch")


@pytest.mark.parametrize("op", ["//", "%"])
@pytest.mark.parametrize("divisor", [0, "tensor", "scalar_tensor"])
def test_integer_division_by_zero_raises_as_torch(op, divisor):
    def run(m):
        a = m.tensor([3, -4, 5])
        b = {0: 0, "tensor": m.tensor([1, 0, 2]), "scalar_tensor": m.tensor(0)}[divisor]
        return a // b if op == "//" else a % b
    with pytest.raises(RuntimeError, match="ZeroDivisionError"):
        run(torch)
    with pytest.raises(RuntimeError, match=rf"ZeroDivisionError: integer {op} by zero"):
        run(gt)


def test_integer_division_without_zero_and_float_division_by_zero_are_torchs():
    a, b = [3, -4, 5, -7], [2, 3, -2, -7]
    for op in (lambda p, q: p // q, lambda p, q: p % q):
        np.testing.assert_array_equal(op(gt.tensor(a), gt.tensor(b)).numpy(), op(torch.tensor(a), torch.tensor(b)).numpy())
    got = gt.tensor([1.0, -1.0, 0.0]) // gt.tensor([0.0, 0.0, 0.0])
    want = torch.tensor([1.0, -1.0, 0.0]) // torch.tensor([0.0, 0.0, 0.0])
    np.testing.assert_array_equal(got.numpy(), want.numpy())


@pytest.mark.parametrize("call", [lambda m: m.ones(0, 2, dtype=m.int64) // m.tensor(0),
                                  lambda m: m.ones(0, 2, dtype=m.int64) % m.tensor(0),
                                  lambda m: m.ones(2, dtype=m.int64) // m.zeros(0, 2, dtype=m.int64),
                                  lambda m: m.div(m.ones(0, 3, dtype=m.int64), m.tensor(0), rounding_mode="floor")],
                         ids=["empty // 0", "empty % 0", "x // empty zeros", "div floor of empty by 0"])
def test_integer_division_of_no_element_by_zero_is_torchs_empty_result(call):
    """No element is divided, so torch gives the empty result (gt refused; found by
    tests/test_fuzz_torch_parity.py)."""
    got, want = call(gt), call(torch)
    assert got.shape == tuple(want.shape)
    assert str(got.dtype).split(".")[-1] == str(want.dtype).split(".")[-1]
