"""torch's ``out=`` on gt's top-level functions (gt/tensor/out_argument.py), beside torch: the
result written into ``out`` and ``out`` returned, tuples of results, resizing (with torch's
warning when ``out`` held elements), torch's casting rule and its refusal under autograd."""

import warnings

import numpy as np
import pytest

import gt
from helpers import torch_or_skip

A = np.array([[1.5, -2.0, 3.0], [0.5, 4.0, -1.0]], dtype=np.float32)
B2 = np.array([[2.0, 1.0, -3.0], [1.0, 0.5, 2.0]], dtype=np.float32)

CALLS = {
    "add": lambda m, a, b, o: m.add(a, b, alpha=2, out=o),
    "mul": lambda m, a, b, o: m.mul(a, b, out=o),
    "div": lambda m, a, b, o: m.div(a, b, out=o),
    "matmul": lambda m, a, b, o: m.matmul(a, b.T, out=o),
    "mm": lambda m, a, b, o: m.mm(a, b.T, out=o),
    "cat": lambda m, a, b, o: m.cat([a, b], 0, out=o),
    "stack": lambda m, a, b, o: m.stack([a, b], out=o),
    "exp": lambda m, a, b, o: m.exp(a, out=o),
    "clamp": lambda m, a, b, o: m.clamp(a, -1.0, 1.0, out=o),
    "where": lambda m, a, b, o: m.where(a > 0, a, b, out=o),
    "maximum": lambda m, a, b, o: m.maximum(a, b, out=o),
    "pow": lambda m, a, b, o: m.pow(a, 2, out=o),
    "zeros": lambda m, a, b, o: m.zeros(2, 3, out=o),
    "arange": lambda m, a, b, o: m.arange(0.0, 3.0, 0.5, out=o),
    "cumsum": lambda m, a, b, o: m.cumsum(a, 1, out=o),
    "softmax": lambda m, a, b, o: m.softmax(a, 1, out=o),
}


@pytest.mark.parametrize("name", sorted(CALLS))
def test_out_is_written_and_returned_as_torch(name):
    torch = torch_or_skip()
    got = []
    for m in (gt, torch):
        out = m.empty(0)                      # no elements: resized without a warning
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            back = CALLS[name](m, m.tensor(A), m.tensor(B2), out)
        assert back is out
        got.append((tuple(out.shape), str(out.dtype).split(".")[-1], out.tolist()))
    assert got[0][:2] == got[1][:2]
    np.testing.assert_allclose(np.array(got[0][2]), np.array(got[1][2]), rtol=1e-6)


def test_a_tuple_of_results_fills_a_tuple_of_outs():
    torch = torch_or_skip()
    for m in (gt, torch):
        values, indices = m.zeros(2), m.zeros(2, dtype=m.int64)
        back = m.max(m.tensor(A), dim=1, out=(values, indices))
        assert back.values is values and back.indices is indices
        assert values.tolist() == [3.0, 4.0] and indices.tolist() == [2, 1]
        s, i = m.zeros(3), m.zeros(3, dtype=m.int64)
        m.sort(m.tensor([3.0, 1.0, 2.0]), out=(s, i))
        assert s.tolist() == [1.0, 2.0, 3.0] and i.tolist() == [1, 2, 0]


def test_an_out_of_another_shape_is_resized_with_torch_s_warning():
    torch = torch_or_skip()
    for m in (gt, torch):
        out = m.ones(5)
        with pytest.warns(UserWarning, match=r"An output with one or more elements was resized since it had shape "
                                             r"\[5\], which does not match the required output shape \[2, 3\]"):
            m.mul(m.tensor(A), 2.0, out=out)
        assert tuple(out.shape) == (2, 3) and out.tolist() == (A * 2).tolist()


def test_casting_and_autograd_are_refused_as_torch():
    torch = torch_or_skip()
    for m in (gt, torch):
        with pytest.raises(RuntimeError, match="result type Float can't be cast to the desired output type Long"):
            m.exp(m.tensor(A), out=m.zeros(2, 3, dtype=m.int64))
        wide = m.zeros(2, 3, dtype=m.float64)            # float32 -> float64: allowed
        m.exp(m.tensor(A), out=wide)
        np.testing.assert_allclose(np.array(wide.tolist()), np.exp(A), rtol=1e-6)
        with pytest.raises(RuntimeError, match="functions with out=... arguments don't support automatic "
                                               "differentiation, but one of the arguments requires grad"):
            m.add(m.tensor(A, requires_grad=True), 1.0, out=m.zeros(2, 3))
        with m.no_grad():                                # no graph to record: allowed
            m.add(m.tensor(A, requires_grad=True), 1.0, out=m.zeros(2, 3))


def test_out_errors_name_the_function():
    with pytest.raises(TypeError, match=r"exp\(\): argument 'out' must be Tensor, not list"):
        gt.exp(gt.tensor(A), out=[1, 2])
    with pytest.raises(TypeError, match=r"is_tensor\(\) got an unexpected keyword argument 'out'"):
        gt.is_tensor(gt.tensor(A), out=gt.zeros(1))
    without = gt.exp(gt.tensor(A))                       # no out: the function itself, unchanged
    assert without.shape == (2, 3) and gt.exp.__wrapped__.__name__ == "exp"
