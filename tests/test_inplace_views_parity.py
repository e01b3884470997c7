"""In-place writes through views beside torch (found by differential fuzzing of view chains and
in-place ops under autograd): one-element views (``x[i]``, ``select``) and ``diagonal`` are views
that write through to their base, gradients through such writes are torch's (``CopySlices``), and
a later change of a tensor that an in-place op's backward reads its result from (``exp_``,
``relu_``, ``F.elu(inplace=True)``, ...) raises torch's error. Each program runs in gt and in
torch: both raise, or both give the same values."""

import contextlib

import numpy as np
import pytest

import gt
from gt.sharding import use_mesh
from helpers import torch_or_skip

MODIFIED = "modified by an inplace operation"


def _run(program, lib):
    """``program(lib)``'s tensors as flat float lists, or "raise" for torch's in-place error. gt's
    on one device: writes through views of sharded tensors are refused (README)."""
    try:
        with use_mesh(1) if lib is gt else contextlib.nullcontext():
            return [np.ravel(np.asarray(t.detach().tolist(), dtype=np.float64)).tolist() if hasattr(t, "detach")
                    else t for t in program(lib)]
    except RuntimeError as exc:
        assert MODIFIED in str(exc), str(exc)
        return "raise"


def _same(program):
    torch = torch_or_skip()
    ours, theirs = _run(program, gt), _run(program, torch)
    if "raise" in (ours, theirs):
        assert ours == theirs
        return
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def _x(lib, *shape, requires_grad=True):
    values = np.random.RandomState(sum(shape)).randn(*shape).astype(np.float32)
    return lib.tensor(values, requires_grad=requires_grad)


# ---- one-element views -------------------------------------------------------------------------
def test_writes_through_one_element_views_change_the_base():
    def program(lib):
        b = lib.zeros(4)
        b[1].fill_(3.0)
        b.select(0, 2).add_(1.0)
        y = lib.zeros(2, 2)
        y.view(-1)[2].reshape(-1)[0] = 5.0
        z = lib.zeros(3)
        v = z[..., 1]
        v += 2.0
        return [b, y, z, b._version, y._version, z._version, v._version]
    _same(program)


def test_gradient_through_a_one_element_view_write():
    def program(lib):
        x = _x(lib, 4)
        y = x * 1.5
        v = y[2]
        v.mul_(3.0)
        y.select(0, 0).exp_()
        (y * y).sum().backward()
        return [y, x.grad, y._version]
    _same(program)


# ---- diagonal ------------------------------------------------------------------------------------
def test_diagonal_is_a_view_that_writes_through():
    def program(lib):
        a = lib.zeros(3, 4)
        a.diagonal(1).fill_(2.0)
        a.diagonal().add_(1.0)
        c = lib.zeros(2, 3, 3)
        c.diagonal(0, 0, 2).copy_(lib.ones(3, 2))
        c.diagonal(-1, 1, 2)[:, 0] = 7.0
        return [a, c, a._version, c._version]
    _same(program)


@pytest.mark.parametrize("offset,dim1,dim2", [(0, 0, 2), (1, 2, 1), (-1, 2, 0), (0, -1, -2), (0, 1, 0)])
def test_gradient_through_a_write_into_the_diagonal(offset, dim1, dim2):
    def program(lib):
        x = _x(lib, 3, 4, 5)
        w = _x(lib, 3, 4, 5, requires_grad=False)
        y = x * 1.0
        d = y.diagonal(offset, dim1, dim2)
        before = d.sum()
        d.mul_(3.0)
        d.add_(y[1, 2, :1])   # a value read from y, off the diagonal (torch reads an overlapping one mid-write)
        ((y * w).sum() + (d * d).sum() + before).backward()
        return [y, d, x.grad, y._version, d._version]
    _same(program)


def test_diagonal_of_a_leaf():
    def program(lib):
        x = _x(lib, 3, 4, 5)
        with lib.no_grad():
            x.diagonal(0, 0, 2).zero_()       # allowed on a leaf under no_grad, and written through
        try:
            x.diagonal(1, 2, 1).add_(1.0)
            raised = 0.0
        except RuntimeError as exc:
            raised = float("a view of a leaf Variable" in str(exc))
        return [x, x._version, raised, float(x.is_leaf)]
    _same(program)


def test_diagonal_double_backward():
    def program(lib):
        x = _x(lib, 3, 4, 5, requires_grad=False).double()
        with lib.no_grad():
            x.diagonal(0, 0, 2).mul_(2.0)
        x.requires_grad_()
        y = (x.diagonal(1, 2, 1) ** 3).sum() + (x * x.diagonal(0, 0, 2).sum()).sum()
        (g,) = lib.autograd.grad(y, x, create_graph=True)
        (g * g).sum().backward()
        return [g, x.grad]
    _same(program)


# ---- a later change of what an in-place op's backward reads ---------------------------------------
_RESULT_READERS = {
    "exp_": lambda lib, t: t.exp_(), "sigmoid_": lambda lib, t: t.sigmoid_(), "tanh_": lambda lib, t: t.tanh_(),
    "relu_": lambda lib, t: t.relu_(), "sqrt_": lambda lib, t: t.abs_().sqrt_(),
    "rsqrt_": lambda lib, t: t.abs_().rsqrt_(), "reciprocal_": lambda lib, t: t.reciprocal_(),
    "F.relu": lambda lib, t: lib.nn.functional.relu(t, inplace=True),
    "F.elu": lambda lib, t: lib.nn.functional.elu(t, inplace=True),
    "F.leaky_relu": lambda lib, t: lib.nn.functional.leaky_relu(t, 0.1, inplace=True),
    "F.selu": lambda lib, t: lib.nn.functional.selu(t, inplace=True),
    "F.celu": lambda lib, t: lib.nn.functional.celu(t, inplace=True),
}
# these backwards read no result: a later change leaves their gradient alone, in torch too
_OTHERS = (lambda lib, t: t.pow_(2), lambda lib, t: t.sin_(), lambda lib, t: t.clamp_(-0.5, 0.5),
           lambda lib, t: lib.nn.functional.hardtanh(t, inplace=True),
           lambda lib, t: lib.nn.functional.silu(t, inplace=True))
_LATER = {"add_": lambda y: y.add_(1.0), "view mul_": lambda y: y[1:].mul_(2.0),
          "item assignment": lambda y: y.__setitem__(0, 3.0)}


def _changed_after(lib, op, later, on_view):
    x = lib.tensor([0.5, -1.0, 2.0, 0.3], requires_grad=True)
    y = x * 1.0
    op(lib, y[1:] if on_view else y)
    _LATER[later](y)
    (y * lib.tensor([1.0, 2.0, 3.0, 4.0])).sum().backward()
    return [y, x.grad]


@pytest.mark.parametrize("later", sorted(_LATER))
@pytest.mark.parametrize("op", sorted(_RESULT_READERS))
@pytest.mark.parametrize("on_view", [False, True])
def test_a_later_change_of_an_in_place_result(op, later, on_view):
    _same(lambda lib: _changed_after(lib, _RESULT_READERS[op], later, on_view))
    for other in _OTHERS:        # the gradient, where torch gives one
        _same(lambda lib: _changed_after(lib, other, later, on_view))


# ---- views of expanded tensors (written through to the memory they share, on both engines) -----------
@pytest.mark.parametrize("write", ["add_", "fill_", "setitem", "diagonal"])
def test_write_into_a_view_of_an_expanded_tensor(write):
    torch = torch_or_skip()
    writes = {"add_": lambda e: e[0].add_(1.0), "fill_": lambda e: e[1].fill_(2.0),
              "setitem": lambda e: e[0].__setitem__(1, 5.0), "diagonal": lambda e: e[:3].diagonal().add_(1.0)}

    def program(lib):
        b = lib.arange(3.0)
        writes[write](b.expand(4, 3))
        return b

    with use_mesh(1):
        np.testing.assert_allclose(program(gt).tolist(), program(torch).tolist())


@pytest.mark.parametrize("write", ["b[5] = s", "b[1:3] = s", "b[4:] = s"])
@pytest.mark.parametrize("change", ["s.mul_(3)", "s += s"])
def test_a_view_written_into_its_base_stays_a_view_of_it(write, change):
    """``s = b[0]; b[5] = s; s.mul_(3)``: s is still a view of b (its change is b's), as torch's; gt pointed
    s at b's version of before the write, and the gradient through the change was lost (1 where torch 3)."""
    def program(lib):
        a = _x(lib, 6).double()
        b = a * 1
        s = b.select(0, 0)
        exec(write)
        exec(change)
        w = lib.tensor(np.arange(6.0) + 1, dtype=lib.float64)
        return [b, s, *lib.autograd.grad((b * w).sum() + s * 10, a)]
    _same(program)


@pytest.mark.parametrize("op", ["t", "T"])
@pytest.mark.parametrize("shape", [(3,), ()])
def test_t_of_fewer_than_two_dims_is_an_alias_view(op, shape):
    """``x.t()``/``x.T`` of a 1-d or 0-d tensor is a new view of it, as torch's: gt returned ``x`` itself, so
    ``requires_grad_()``, ``unsqueeze_`` or ``retain_grad`` of the result changed ``x``, silently."""
    torch = torch_or_skip()

    def program(lib):
        values = np.arange(1.0, 4.0)[:shape[0]] if shape else 2.0
        a = lib.tensor(values, dtype=lib.float64, requires_grad=True)
        v = getattr(a, op)() if op == "t" else a.T
        p = lib.tensor(values, dtype=lib.float64)
        w = p.t() if op == "t" else p.T
        w.requires_grad_()
        u = p.t() if op == "t" else p.T
        u.unsqueeze_(0)
        b = a * 1
        (b.t() if op == "t" else b.T).mul_(3)
        grad = lib.autograd.grad((b * 2).sum(), a)[0]
        return [v is a, v.is_leaf, v._base is a, v.grad_fn.name(), p.requires_grad, w.is_leaf, tuple(p.shape),
                tuple(u.shape), b.tolist(), grad.tolist()]
    with use_mesh(1):
        assert program(gt) == program(torch)
