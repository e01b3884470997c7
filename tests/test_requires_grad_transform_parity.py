"""``requires_grad_()`` inside a ``gt.func`` transform's function on the tensors that keep their
flag elsewhere (sparse COO, quantized), beside torch 2.13: refused as on a dense tensor (gt let
them through), while the ``requires_grad`` attribute and ``requires_grad=`` of their factories
are allowed, as torch's C++ sets the flag there without the method."""

import pytest

import gt
from helpers import torch_or_skip
from test_view_func_leftovers_parity import _outcome

pytestmark = pytest.mark.own_mesh     # one device: a mesh refuses sparse tensors and changes nothing else here

KINDS = {
    "dense": lambda lib: lib.zeros(2),
    "sparse COO": lambda lib: lib.zeros(2).to_sparse(),
    "quantized": lambda lib: lib.quantize_per_tensor(lib.zeros(2), 0.1, 0, lib.quint8),
}
CALLS = {
    "requires_grad_()": lambda t: t.requires_grad_(),
    "requires_grad_(False)": lambda t: t.requires_grad_(False),
    "attribute False": lambda t: setattr(t, "requires_grad", False),
}


@pytest.mark.parametrize("kind", list(KINDS))
def test_requires_grad_inside_a_transform_as_torch(kind):
    torch = torch_or_skip()
    for call, change in CALLS.items():
        got = []
        for lib in (gt, torch):
            t = KINDS[kind](lib)        # made outside: the function only changes its flag

            def f(x, t=t):
                change(t)
                return (x * x).sum()
            kind_of, out = _outcome(lambda: lib.func.grad(f)(lib.ones(2, dtype=lib.float64)))
            got.append((kind_of, out.tolist() if kind_of == "ok" else out))
        assert got[0] == got[1], (call, got)


def test_sparse_factory_requires_grad_inside_a_transform():
    """``sparse_coo_tensor(..., requires_grad=True)`` made inside the function: a leaf, as torch's."""
    def f(x):
        s = gt.sparse_coo_tensor(gt.tensor([[0, 1]]), gt.tensor([1.0, 2.0]), (3,), requires_grad=True)
        assert s.requires_grad and s.is_leaf
        return (x * x).sum()
    assert gt.func.grad(f)(gt.ones(2, dtype=gt.float64)).tolist() == [2.0, 2.0]
