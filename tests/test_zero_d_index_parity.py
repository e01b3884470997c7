"""0-d integer indices (``x[torch.tensor(3)]``, ``x[np.int64(3)]``, ``x[np.array(3)]``, inside a tuple), beside
torch 2.13: torch reads them as the integer they hold, so the result is a view (a write into it reaches
``x``, a later change of ``x`` shows in it). gt gathered a copy, silently unlinked; uint8/bool 0-d indices
stay masks, numpy's bool scalar and a 0-d float tensor are refused, as torch's."""

import warnings

import numpy as np
import pytest

import gt

torch = pytest.importorskip("torch")

_INDICES = {
    "int64 tensor": lambda lib: lib.tensor(1),
    "int32 tensor": lambda lib: lib.tensor(1, dtype=lib.int32),
    "int16 tensor": lambda lib: lib.tensor(-3, dtype=lib.int16),
    "numpy int64": lambda lib: np.int64(2),
    "numpy uint8 scalar": lambda lib: np.uint8(1),
    "numpy 0-d array": lambda lib: np.array(-1),
    "tuple with a slice": lambda lib: (lib.tensor(1), slice(1, None)),
    "tuple with an array": lambda lib: (lib.tensor([0, 2, 3]), lib.tensor(2)),
}


def _run(lib, case):
    x = lib.tensor(np.arange(12.0).reshape(4, 3).tolist(), dtype=lib.float64, requires_grad=True)
    h = x * 1
    r = h[_INDICES[case](lib)]
    taken = r * 1                     # recorded before the changes: reads the values of before
    r.mul_(10)                        # through the view into h (torch), or into a copy alone (gt before)
    h.add_(1)                         # shows in the view (torch)
    loss = (h * h).sum() + (r * 3).sum() + taken.sum()
    return [h.detach(), r.detach(), lib.autograd.grad(loss, x)[0]]


@pytest.mark.parametrize("case", list(_INDICES))
def test_a_zero_d_integer_index_gives_a_view(case):
    got, want = _run(gt, case), _run(torch, case)
    for g, w in zip(got, want):
        assert tuple(g.shape) == tuple(w.shape)
        np.testing.assert_allclose(np.asarray(g.tolist()), w.numpy(), rtol=1e-12, atol=0)


@pytest.mark.parametrize("make", [lambda lib: lib.tensor(1, dtype=lib.uint8), lambda lib: np.array(True),
                                  lambda lib: np.array(0, dtype=np.uint8)], ids=["uint8 tensor", "bool", "uint8"])
def test_uint8_and_bool_zero_d_indices_stay_masks(make):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")      # torch's (and gt's) uint8-index deprecation
        got = gt.arange(12.0).reshape(4, 3)[make(gt)]
        want = torch.arange(12.0).reshape(4, 3)[make(torch)]
    assert tuple(got.shape) == tuple(want.shape)
    np.testing.assert_array_equal(np.asarray(got.tolist()).reshape(tuple(got.shape)), want.numpy())


@pytest.mark.parametrize("make", [lambda lib: np.bool_(True), lambda lib: lib.tensor(1.0)], ids=["numpy bool", "float"])
def test_other_zero_d_indices_are_refused(make):
    with pytest.raises(IndexError):
        torch.arange(4.0)[make(torch)]
    with pytest.raises(IndexError):
        gt.arange(4.0)[make(gt)]
