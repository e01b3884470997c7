"""In-place ops written into a view whose elements share memory (``as_strided``/``unfold``
windows), beside torch 2.13 (gt/tensor/overlap_writes.py): torch's CPU kernels go element by
element, each reading what the ones before wrote, so ``x.as_strided((3, 3), (1, 1)).add_(1)`` adds
1 to ``x[2]`` three times and ``exp_()`` takes its exp three times. gt read the old values once
on the numpy engine (and for ops it computes out of place, on the torch engine too). Each program
runs in gt and torch on ``arange(16.0)``: both give the same values (to float32 rounding for
transcendental ops) and count as many changes (``_version``), or both raise. Both engines also
match a row-major element-by-element reference bit for bit where rounding order matters (sums
of several values into one place). An operand lying in the written memory in another layout is
read as it was before the write, on both engines (torch's kernels read it as they write)."""

import numpy as np
import pytest

import gt
from helpers import torch_or_skip

torch = torch_or_skip()
here = pytest.mark.skipif("not gt.arange(1.0).is_cpu", reason="gt's strided views are of CPU tensors")


def _w(x):
    return x.as_strided((3, 4), (2, 1), 1)       # rows overlap by two elements


EXACT = {
    "add_ number": lambda L, x: x.as_strided((3, 3), (1, 1)).add_(1),
    "mul_ number": lambda L, x: x.as_strided((3, 3), (1, 1)).mul_(2),
    "add_ tensor alpha": lambda L, x: _w(x).add_(L.ones(3, 4), alpha=3),
    "sub_ wide windows": lambda L, x: x.as_strided((4, 10), (1, 1)).sub_(1.5),
    "+= tensor": lambda L, x: x.as_strided((3, 3), (1, 1)).__iadd__(L.arange(9.0).reshape(3, 3)),
    "*= column": lambda L, x: _w(x).__imul__(L.arange(3.0).reshape(3, 1)),
    "div_": lambda L, x: _w(x).div_(2),
    "div_ floor": lambda L, x: _w(x).div_(3, rounding_mode="floor"),
    "addcmul_": lambda L, x: _w(x).addcmul_(L.ones(3, 4), L.full((3, 4), 2.0)),
    "addcdiv_": lambda L, x: _w(x).addcdiv_(L.ones(3, 4), L.full((3, 4), 4.0)),
    "add_ itself": lambda L, x: (lambda v: v.add_(v))(x.as_strided((3, 3), (1, 1))),
    "neg_": lambda L, x: x.as_strided((3, 3), (1, 1)).neg_(),
    "unfold add_": lambda L, x: x.unfold(0, 4, 2).add_(1),
    "unfold of unfold neg_": lambda L, x: x.unfold(0, 4, 2).unfold(1, 2, 1).neg_(),
    "2-d unfold mul_": lambda L, x: x.reshape(4, 4).unfold(1, 2, 1).mul_(3),
    "transposed windows add_": lambda L, x: _w(x).t().add_(1),
    "clamp_ tensor min": lambda L, x: _w(x).clamp_(min=L.full((3, 4), 6.0)),
    "lerp_": lambda L, x: _w(x).lerp_(L.full((3, 4), 20.0), 0.5),
    "abs_": lambda L, x: _w(x).sub_(5).abs_(),
    "square_": lambda L, x: _w(x).square_(),
    "round_": lambda L, x: _w(x).div_(3).round_(),
    "floor_divide_": lambda L, x: _w(x).floor_divide_(2),
    "remainder_": lambda L, x: _w(x).remainder_(5),
    "copy_ (last write stays)": lambda L, x: _w(x).copy_(L.arange(12.0).reshape(3, 4) + 100),
    "setitem": lambda L, x: _w(x).__setitem__(Ellipsis, L.arange(12.0).reshape(3, 4) + 100),
    "fill_": lambda L, x: _w(x).fill_(2.5),
    "masked_fill_": lambda L, x: _w(x).masked_fill_(_w(x) > 5, -1.0),
    "F.leaky_relu inplace": lambda L, x: L.nn.functional.leaky_relu(_w(x).sub_(8), 0.5, inplace=True),
    "F.relu inplace": lambda L, x: L.nn.functional.relu(_w(x).sub_(4), inplace=True),
    "int64 add_": lambda L, x: x.long().as_strided((3, 4), (2, 1), 1).add_(1),
    "expand add_ (refused)": lambda L, x: x[:3].expand(2, 3).add_(1),
    "partial input (refused)": lambda L, x: x[1:].add_(x[:-1]),
    "copy_ of a flip (a copy)": lambda L, x: x.copy_(x.flip(0)),
    # ops that are no elementwise ones: made on the memory (a copy of a result computed out of
    # place wrote the elements they leave with values of before, over the ones they wrote)
    "index_add_": lambda L, x: _w(x).index_add_(0, L.tensor([0, 2]), L.ones(2, 4)),
    "index_add_ dim 1 alpha": lambda L, x: x.unfold(0, 4, 2).index_add_(1, L.tensor([0, 3, 0]), L.ones(7, 3), alpha=2),
    "index_copy_": lambda L, x: _w(x).index_copy_(0, L.tensor([0, 2]), L.full((2, 4), -2.0)),
    "index_fill_": lambda L, x: _w(x).index_fill_(1, L.tensor([3]), -3.0),
    "scatter_ src": lambda L, x: _w(x).scatter_(1, L.tensor([[1], [2]]), L.arange(20.0).reshape(4, 5) + 50),
    "scatter_ value": lambda L, x: _w(x).scatter_(0, L.tensor([[0, 1, 2, 1]]), 5.0),
    "scatter_add_": lambda L, x: _w(x).scatter_add_(1, L.tensor([[3], [3], [0]]), L.ones(3, 1)),
    "scatter_reduce_ prod": lambda L, x: _w(x).scatter_reduce_(1, L.tensor([[3], [1], [0]]), L.full((3, 1), 2.0),
                                                               "prod"),
    "masked_scatter_": lambda L, x: _w(x).masked_scatter_(L.eye(3, 4, dtype=L.bool).flip(1), L.arange(12.0) + 50),
    "index_put_": lambda L, x: _w(x).index_put_((L.tensor([0, 2]), L.tensor([3, 1])), L.tensor([7.0, 8.0])),
    "index_put_ accumulate": lambda L, x: _w(x).index_put_((L.tensor([0, 1, 2]),), L.tensor(9.0), accumulate=True),
    "put_ accumulate": lambda L, x: _w(x).put_(L.tensor([0, 3, 11]), L.tensor([1.0, 2.0, 3.0]), accumulate=True),
    "setitem by an index tensor": lambda L, x: _w(x).__setitem__(L.tensor([0, 2]), L.tensor(4.0)),
    "tril_": lambda L, x: _w(x).tril_(),
    "tril_ -1": lambda L, x: _w(x).tril_(-1),
    "tril_ of unfold windows": lambda L, x: x.unfold(0, 4, 3).tril_(),
    "triu_ of transposed windows": lambda L, x: _w(x).t().triu_(),
}
ROUNDED = {
    "exp_": lambda L, x: x.as_strided((2, 2), (1, 1)).exp_(),
    "sqrt_": lambda L, x: _w(x).sqrt_(),
    "sigmoid_": lambda L, x: _w(x).sigmoid_(),
    "pow_ tensor": lambda L, x: _w(x).div_(8).pow_(L.full((3, 4), 1.5)),
    "reciprocal_": lambda L, x: _w(x).add_(1).reciprocal_(),
    "F.elu inplace": lambda L, x: L.nn.functional.elu(_w(x).sub_(8), inplace=True),
    "exp_ of a scaled window": lambda L, x: _w(x).div_(10).exp_(),
}


def _run(program, lib):
    x = lib.arange(16.0)
    try:
        program(lib, x)
    except RuntimeError as exc:
        assert "unsupported operation" in str(exc), str(exc)
        return "raise"
    return np.asarray(x.tolist() + [x._version], dtype=np.float64)      # and one change counted per op


@here
@pytest.mark.parametrize("name", EXACT, ids=list(EXACT))
def test_windows_written_in_place_as_torch(name):
    mine, theirs = _run(EXACT[name], gt), _run(EXACT[name], torch)
    if isinstance(theirs, str) or isinstance(mine, str):
        assert mine == theirs
    else:
        np.testing.assert_array_equal(mine, theirs)


@here
@pytest.mark.parametrize("name", ROUNDED, ids=list(ROUNDED))
def test_windows_written_by_transcendental_ops_as_torch(name):
    np.testing.assert_allclose(_run(ROUNDED[name], gt), _run(ROUNDED[name], torch), rtol=1e-6)


def _reference(x, size, stride, update, values):
    """Row-major, element by element: ``update(memory value, value)`` at each element's place."""
    mem = x.copy()
    for i, idx in enumerate(np.ndindex(*size)):
        at = sum(k * s for k, s in zip(idx, stride))
        mem[at] = update(mem[at], values.reshape(-1)[i])
    return mem


@here
@pytest.mark.parametrize("op", ["add_", "mul_", "copy_"])
def test_the_order_is_row_major_on_either_engine(op):
    """Sums of several float32 values into one place round in the order of the elements: row-major,
    bit for bit, on the engine this pass runs (so both engines agree)."""
    rng = np.random.default_rng(0)
    base = rng.standard_normal(40).astype(np.float32)
    size, stride = (6, 9), (3, 2)                     # windows that overlap in a strided pattern
    values = rng.standard_normal(size).astype(np.float32)
    update = {"add_": lambda m, v: m + v, "mul_": lambda m, v: m * v, "copy_": lambda m, v: v}[op]
    x = gt.arange(40.0)                 # on one device on a mesh too (gt.tensor's data would be sharded)
    x.copy_(gt.tensor(base))
    assert x._placed is None
    getattr(x.as_strided(size, stride), op)(gt.tensor(values))
    np.testing.assert_array_equal(x.numpy(), _reference(base, size, stride, update, values))
    t = torch.tensor(base)
    getattr(t.as_strided(size, stride), op)(torch.tensor(values))
    np.testing.assert_allclose(x.numpy(), t.numpy(), rtol=1e-5, atol=1e-6)   # torch: its kernels' order


@here
def test_a_view_without_overlaps_is_written_at_once():
    """Layouts that pass torch's cheap test or whose positions are distinct are no windows."""
    x, t = gt.arange(16.0), torch.arange(16.0)
    for lib, y in ((gt, x), (torch, t)):
        y.as_strided((2, 2), (3, 2)).add_(lib.ones(2, 2))            # positions 0, 2, 3, 5: distinct
        y.as_strided((4, 2), (1, 8)).mul_(2)                           # a transpose's layout
    assert x.tolist() == t.tolist()


# an operand lying in the written memory in another layout, with gaps or repeats (torch's overlap
# check cannot tell, and lets it through): gt reads it as it was before the write on both engines;
# torch's kernels read what they wrote so far, in their order. Beside torch given a clone of it.
READ_BEFORE = {
    "mul_ by every other element": (lambda x, c: x[4:12].mul_(c(x[::2]))),
    "copy_ of every other element": (lambda x, c: x[8:].copy_(c(x[1::2]))),
    "item assignment": (lambda x, c: x.__setitem__(slice(4, 12), c(x[::2]))),
    "windows times shifted windows": (lambda x, c: x.as_strided((3, 3), (1, 1)).mul_(
        c(x.as_strided((3, 3), (1, 1), 1)))),
    "a block plus windows of it": (lambda x, c: x[:9].view(3, 3).add_(c(x.as_strided((3, 3), (1, 1))))),
    "pow_ by windows": (lambda x, c: x.as_strided((3, 3), (1, 1)).div_(8).pow_(c(x.as_strided((3, 3), (2, 1))))),
}


@here
@pytest.mark.parametrize("name", READ_BEFORE, ids=list(READ_BEFORE))
def test_an_operand_in_the_written_memory_is_read_before_the_write(name):
    x, t = gt.arange(16.0), torch.arange(16.0)
    READ_BEFORE[name](x, lambda v: v)
    READ_BEFORE[name](t, lambda v: v.clone())
    np.testing.assert_allclose(np.asarray(x.tolist()), t.numpy(), rtol=1e-6)
