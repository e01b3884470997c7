"""Leftover differences from torch 2.13, beside torch: in-place changes of captured tensors inside
gt.func's transforms (torch's functorch refuses them), writes into expanded views whose elements
do not share memory (and torch's deprecated indexed writes where they do), and the strides and
storage offsets of views of tensors with no elements."""

import itertools
import warnings

import numpy as np
import pytest

import gt
from helpers import torch_or_skip


def _libs():
    return (gt, torch_or_skip())


def _outcome(fn):
    """``("ok", value)`` or ``(exception type, message)``, for comparing the two libraries."""
    try:
        out = fn()
    except Exception as exc:           # noqa: BLE001 (the type and the text are the comparison)
        return type(exc), str(exc)
    return "ok", out


# ---- 1. in-place changes of captured tensors inside gt.func's transforms ---------------------------
CAPTURED_CHANGES = {
    "add_ number": lambda c, x, lib: c.add_(1),
    "add_ input": lambda c, x, lib: c.add_(x),
    "copy_": lambda c, x, lib: c.copy_(x),
    "fill_": lambda c, x, lib: c.fill_(2.0),
    "zero_": lambda c, x, lib: c.zero_(),
    "mul_ operator": lambda c, x, lib: c.__imul__(x),
    "item assignment": lambda c, x, lib: c.__setitem__(0, x[0]),
    "view add_": lambda c, x, lib: c[:2].add_(1),
    "view of a reshape": lambda c, x, lib: c.view(1, 3).mul_(2),
    "detached alias": lambda c, x, lib: c.detach().add_(1),
    ".data alias": lambda c, x, lib: c.data.add_(1),
    "index_add_": lambda c, x, lib: c.index_add_(0, lib.tensor([0]), x[:1]),
    "exp_": lambda c, x, lib: c.exp_(),
    "t_ (shape)": lambda c, x, lib: c.t_(),
    "resize_": lambda c, x, lib: c.resize_(3),
}


def _transformed(lib, how, f, x):
    F = lib.func
    return {"grad": lambda: F.grad(lambda v: (f(v) * v).sum())(x),
            "vjp": lambda: F.vjp(f, x)[0],
            "jvp": lambda: F.jvp(f, (x,), (lib.ones_like(x),))[1],
            "jacrev": lambda: F.jacrev(f)(x),
            "vmap of grad": lambda: F.vmap(F.grad(lambda v: (f(v) * v).sum()))(x.expand(2, 3).clone())}[how]()


@pytest.mark.parametrize("how", ["grad", "vjp", "jvp", "jacrev", "vmap of grad"])
@pytest.mark.parametrize("no_grad", [False, True], ids=["grad mode", "under no_grad"])
def test_in_place_change_of_a_captured_tensor_is_refused_as_torchs(how, no_grad):
    """torch's functorch refuses any in-place change of a tensor the transformed function did not
    receive or make (its wrapper of a captured tensor is immutable), before anything is written;
    gt ran the change, changing the captured tensor and differentiating as if it were a constant."""
    for lib in _libs():
        for name, change in CAPTURED_CHANGES.items():
            c = lib.zeros(3, dtype=lib.float64)
            x = lib.tensor([1.0, 2.0, 3.0], dtype=lib.float64)

            def f(v):
                if no_grad:
                    with lib.no_grad():
                        change(c, v, lib)
                else:
                    change(c, v, lib)
                return v * 2

            kind, text = _outcome(lambda: _transformed(lib, how, f, x))
            assert kind is RuntimeError and "that would mutate a captured Tensor" in text, (lib.__name__, name, text)
            assert c.shape == (3,) and c.tolist() == [0.0, 0.0, 0.0], (lib.__name__, name)


def _allowed_programs(lib):
    F, f64 = lib.func, lib.float64
    c = lib.tensor([0.5, -1.0, 2.0], dtype=f64)

    def intermediate(x):
        y = x * x
        y.mul_(x)
        return y.sum()

    def made_inside(x):
        z = lib.zeros(3, dtype=f64)
        z.add_(x).mul_(c)
        return (z * x).sum()

    def clone_of_captured(x):
        z = c.clone()
        z[1] = x[0]
        return (z * x).sum()

    def input_detached(x):
        x.detach().add_(0)        # a change of the input's memory: allowed, as torch's
        return (x * c).sum()

    def other_argument(x, k):      # not differentiated, but an input all the same
        k.add_(1)
        return (x * k).sum()

    def inner_result_changed_outside(x):
        g, z = F.grad(lambda y: ((y * 3).sum(), y * 3), has_aux=True)(x)
        z.add_(1)
        return (z * x * g).sum()

    return {"intermediate": lambda x: F.grad(intermediate)(x),
            "made inside": lambda x: F.grad(made_inside)(x),
            "clone of captured": lambda x: F.grad(clone_of_captured)(x),
            "input detached": lambda x: F.grad(input_detached)(x),
            "other argument": lambda x: F.grad(other_argument)(x, lib.ones(3, dtype=f64)),
            "inner result": lambda x: F.grad(inner_result_changed_outside)(x),
            "jacrev made inside": lambda x: F.jacrev(lambda v: lib.zeros(3, dtype=f64).add_(v).mul_(v))(x)}


def test_in_place_changes_torch_allows_inside_transforms_compute_as_torchs():
    """Changes of tensors the function made or received (an intermediate, a clone, an argument
    not differentiated, an inner transform's result) are no captured ones: computed as torch."""
    torch = torch_or_skip()
    ours, theirs = _allowed_programs(gt), _allowed_programs(torch)
    x = np.array([1.0, -2.0, 3.0])
    for name in ours:
        got = ours[name](gt.tensor(x, dtype=gt.float64))
        want = theirs[name](torch.tensor(x, dtype=torch.float64))
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-12, atol=1e-12, err_msg=name)


def test_nested_transform_refuses_a_change_of_the_outer_functions_tensor():
    """The inner function captures what the outer one made: torch refuses its change there."""
    for lib in _libs():
        def outer(x):
            z = x * 1
            g = lib.func.grad(lambda y: (z.add_(y) * y).sum())(x)
            return (g * x).sum()

        kind, text = _outcome(lambda: lib.func.grad(outer)(lib.tensor([1.0, 2.0], dtype=lib.float64)))
        assert kind is RuntimeError and "captured Tensor" in text, lib.__name__


def test_vmap_changes_a_captured_tensor_as_torch_or_refuses():
    """torch's vmap changes a captured tensor once with values that are not batched, and refuses
    batched ones; gt's runs func once per element: a change that gives the same result again
    (fill_, zero_, an item assignment of a number) is made, one that would be made once per element
    (add_ of a number) is made once as torch's (it gave N-fold changes, then was refused), one that
    writes values made inside func is refused."""
    torch = torch_or_skip()
    same = [lambda c, x: c.fill_(2.0), lambda c, x: c.zero_(), lambda c, x: c.__setitem__(0, 4.0)]
    for change in same:
        got = []
        for lib in (gt, torch):
            c = lib.ones(3, dtype=lib.float64)

            def f(x):
                change(c, x)
                return x + c
            got.append((lib.func.vmap(f)(lib.ones(2, 3, dtype=lib.float64)).tolist(), c.tolist()))
        assert got[0] == got[1]
    for change, torch_refuses in [(lambda c, x: c.add_(x), True), (lambda c, x: c.copy_(x), True),
                                  (lambda c, x: c.__setitem__(0, x[0]), True), (lambda c, x: c.add_(1), False)]:
        for lib in (gt, torch):
            c = lib.zeros(3, dtype=lib.float64)

            def f(x):
                change(c, x)
                return x + c
            kind, _ = _outcome(lambda: lib.func.vmap(f)(lib.ones(2, 3, dtype=lib.float64)))
            assert kind is (RuntimeError if torch_refuses else "ok")
            assert c.tolist() == ([0.0, 0.0, 0.0] if lib is gt and torch_refuses else [1.0, 1.0, 1.0]) or lib is torch


# ---- 2. writes into expanded tensors -----------------------------------------------------------------
EXPANDS = [((3, 1), (3, 1)), ((1,), (1,)), ((3,), (1, 3)), ((2, 1), (1, 2, 1)), ((), (1,)), ((), (1, 1)),
           ((3, 1), (3, 0)), ((1, 3), (2, 3)), ((2, 1), (2, 4)), ((), (2,))]
EXPANDED_WRITES = {
    "fill_": lambda x, m: x.fill_(2.0), "zero_": lambda x, m: x.zero_(), "add_": lambda x, m: x.add_(1.0),
    "mul_ tensor": lambda x, m: x.mul_(m.full(x.shape, 3.0)), "copy_": lambda x, m: x.copy_(m.ones(x.shape)),
    "exp_": lambda x, m: x.exp_(), "+=": lambda x, m: x.__iadd__(1.0), "x[...] =": lambda x, m: x.__setitem__(..., 5.0),
    "x[0] =": lambda x, m: x.__setitem__(0, 7.0) if x.ndim and x.shape[0] else None,
    "x[0].add_": lambda x, m: x[0].add_(1.0) if x.ndim and x.shape[0] else None,
    "x[:, 0] =": lambda x, m: x.__setitem__((slice(None), 0), 6.0) if x.ndim > 1 and x.shape[1] else None,
    "x[mask] =": lambda x, m: x.__setitem__(m.ones(x.shape, dtype=m.bool), 3.0),
}


@pytest.mark.own_mesh
@pytest.mark.filterwarnings("ignore:Use of (index_put_|masked_fill_) on expanded tensors")
@pytest.mark.parametrize("write", list(EXPANDED_WRITES))
def test_writes_into_expanded_tensors_as_torchs(write):
    """torch writes into an expanded tensor where no two written elements share memory (a new
    leading axis, an axis of size 1 kept at 1, a row of an expanded tensor) and fills one value
    into shared memory; it refuses the rest with its RuntimeError. gt's numpy engine refused every
    write (numpy's broadcast views are read-only); its torch engine refused fill_ on shared memory."""
    torch = torch_or_skip()
    with gt.sharding.use_mesh(1):
        for shape, target in EXPANDS:
            got = []
            for m in (gt, torch):
                base = m.zeros(shape)
                x = base.expand(target)
                kind, text = _outcome(lambda: EXPANDED_WRITES[write](x, m))
                got.append((kind, "more than one element" in text) if kind != "ok" else (kind, base.tolist()))
            assert got[0] == got[1], (shape, target, got)


INDEXED_WRITES = {
    "masked_fill_": lambda x, m: x.masked_fill_(m.tensor([True, False, True])[-x.shape[-1]:], 1.5),
    "masked_fill_ 0-d value": lambda x, m: x.masked_fill_(m.ones(x.shape, dtype=m.bool), m.tensor(2.5)),
    "index_fill_": lambda x, m: x.index_fill_(-1, m.tensor([0]), 1.5),
    "index_fill_ dim 0": lambda x, m: x.index_fill_(0, m.tensor([0]), m.tensor(2.0)),
    "index_put_": lambda x, m: x.index_put_((m.tensor([0]),), m.tensor(1.5)),
    "index_put_ accumulate": lambda x, m: x.index_put_((m.tensor([0, 0]),), m.tensor(1.5), accumulate=True),
    "index_put_ mask": lambda x, m: x.index_put_((m.ones(x.shape[:1], dtype=m.bool),), m.tensor(4.0)),
    "x[mask] = tensor": lambda x, m: x.__setitem__(m.ones(x.shape[:1], dtype=m.bool), m.full(x.shape[1:], 3.0)),
    "x[0, mask] =": lambda x, m: x.__setitem__((0, m.ones(x.shape[1:2], dtype=m.bool)), 3.0),
    "x[:, index] =": lambda x, m: x.__setitem__((slice(None), m.tensor([0])), 3.0),
    "masked_scatter_": lambda x, m: x.masked_scatter_(m.ones(x.shape, dtype=m.bool), m.arange(9.0)),
    "index_copy_": lambda x, m: x.index_copy_(0, m.tensor([0]), m.ones(1, *x.shape[1:])),
    "index_add_": lambda x, m: x.index_add_(0, m.tensor([0]), m.ones(1, *x.shape[1:])),
    "scatter_": lambda x, m: x.scatter_(0, m.zeros(1, *x.shape[1:], dtype=m.int64), 1.0),
    "put_": lambda x, m: x.put_(m.tensor([0]), m.ones(1)),
}


@pytest.mark.own_mesh
@pytest.mark.parametrize("write", list(INDEXED_WRITES))
def test_indexed_writes_into_expanded_tensors_as_torchs(write):
    """torch 2.13 still makes masked_fill_, index_fill_ and index_put_ (an item assignment with
    index tensors) where elements share memory, each with its deprecation warning (index_put_ of a
    bool mask and one value: masked_fill_'s too), and refuses masked_scatter_, index_copy_,
    index_add_, scatter_ and put_ there; gt refused every one."""
    torch = torch_or_skip()
    with gt.sharding.use_mesh(1):
        for shape, target in [((3,), (2, 3)), ((2, 1), (2, 3)), ((1, 3), (1, 3)), ((1,), (3,))]:
            got = []
            for m in (gt, torch):
                base = m.zeros(shape)
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    kind, text = _outcome(lambda: INDEXED_WRITES[write](base.expand(target), m))
                said = [str(w.message).split(". ")[0] for w in caught if w.category is UserWarning]
                got.append((kind, "more than one element" in text, said) if kind != "ok" else
                           (kind, base.tolist(), said))
            assert got[0] == got[1], (shape, target, got)


# ---- 3. strides and storage offsets of views of tensors with no elements -----------------------------
EMPTY_BASES = {
    "x[:, 2:2]": lambda m: m.zeros(3, 4)[:, 2:2], "x[0:0]": lambda m: m.zeros(3, 4)[0:0],
    "x[1:1, 1:3]": lambda m: m.zeros(3, 4)[1:1, 1:3], "x.t()[:, 2:2]": lambda m: m.zeros(3, 4).t()[:, 2:2],
    "x[:, :, 3:]": lambda m: m.zeros(2, 1, 3)[:, :, 3:], "x[:, 1:1]": lambda m: m.zeros(2, 3, 4)[:, 1:1],
    "zeros(0, 4)": lambda m: m.zeros(0, 4), "zeros(3, 0)": lambda m: m.zeros(3, 0), "zeros(0)": lambda m: m.zeros(0),
    "x[:, 5:]": lambda m: m.zeros(3, 4)[:, 5:], "x[5:5, 2]": lambda m: m.zeros(4, 6)[5:5, 2],
    "x[4:, 1:3]": lambda m: m.zeros(4, 6)[4:, 1:3], "zeros(0, 4)[:, 3:3]": lambda m: m.zeros(0, 4)[:, 3:3],
}
EMPTY_VIEWS = {
    "unsqueeze(0)": lambda x: x.unsqueeze(0), "unsqueeze(1)": lambda x: x.unsqueeze(1),
    "unsqueeze(-1)": lambda x: x.unsqueeze(-1), "unsqueeze twice": lambda x: x.unsqueeze(0).unsqueeze(-1),
    "squeeze()": lambda x: x.squeeze(), "squeeze(0)": lambda x: x.squeeze(0), "view(-1)": lambda x: x.view(-1),
    "reshape(1, -1)": lambda x: x.reshape(1, -1), "transpose": lambda x: x.transpose(0, -1),
    "permute": lambda x: x.permute(*reversed(range(x.ndim))), "expand": lambda x: x.expand(2, *x.shape),
    "unsqueeze, expand": lambda x: x.unsqueeze(0).expand(3, *x.shape), "x[None]": lambda x: x[None],
    "x[..., None]": lambda x: x[..., None], "x[None, 0:0]": lambda x: x[None, 0:0], "narrow": lambda x: x.narrow(-1, 0, 0),
    "flatten": lambda x: x.flatten(), "movedim": lambda x: x.movedim(0, -1), "as is": lambda x: x,
    "clone": lambda x: x.clone(), "clone of a transpose": lambda x: x.transpose(0, -1).clone(),
}


@pytest.mark.own_mesh
@pytest.mark.parametrize("view", list(EMPTY_VIEWS))
def test_views_of_tensors_with_no_elements_step_as_torchs(view):
    """torch's unsqueeze and x[None] insert an axis stepping over the axis after it and squeeze keeps
    the strides of the others, also where there are no elements; an empty slice starts where its
    start is. gt laid those out row-major (reshape's rule), numpy's getitem gave a new axis step 0
    and an empty slice the offset 0, and numpy's new empty arrays have no steps (a transpose of
    one was row-major); torch's clone of an empty tensor keeps its strides."""
    torch = torch_or_skip()
    with gt.sharding.use_mesh(1):
        for name, base in EMPTY_BASES.items():
            got = [EMPTY_VIEWS[view](base(m)) for m in (gt, torch)]
            assert [(tuple(y.shape), tuple(y.stride()), y.storage_offset()) for y in got][0] == \
                (tuple(got[1].shape), tuple(got[1].stride()), got[1].storage_offset()), name


@pytest.mark.own_mesh
def test_empty_slices_past_the_memorys_end_start_as_torchs():
    """An index after an empty slice at the end of an axis (``x[5:5, 2]`` of 4 rows, ``x[4:, 1:3]``)
    starts past the memory's end in torch; gt's numpy engine stopped at the end (24 where torch
    says 26)."""
    torch = torch_or_skip()
    parts = [slice(5, 5), slice(4, None), slice(6, 9), slice(1, 3), 2, -1, None, Ellipsis]
    with gt.sharding.use_mesh(1):
        for index in itertools.product(parts, repeat=2):
            for make in (lambda m: m.zeros(4, 6), lambda m: m.zeros(6, 4).t(), lambda m: m.zeros(2, 4, 6)[1]):
                if index.count(Ellipsis) < 2:
                    g, t = make(gt)[index], make(torch)[index]
                    assert (g.shape, g.stride(), g.storage_offset()) == \
                        (tuple(t.shape), t.stride(), t.storage_offset()), index


@pytest.mark.own_mesh
def test_a_new_axis_steps_as_torchs_unsqueeze():
    """numpy gives a new axis (x[None]) the step 0; torch's is unsqueeze's, also for tensors with
    elements (an expanded tensor's new axis keeps torch's too, and a write into it is allowed)."""
    torch = torch_or_skip()
    cases = [lambda x: x[None], lambda x: x[..., None], lambda x: x[:, None, ::2], lambda x: x[None, None, 1:2],
             lambda x: x[1][None], lambda x: x.t()[None], lambda x: x[None].expand(2, 3, 4)[0]]
    with gt.sharding.use_mesh(1):
        for case in cases:
            g, t = case(gt.zeros(3, 4)), case(torch.zeros(3, 4))
            assert (g.shape, g.stride(), g.storage_offset()) == (tuple(t.shape), t.stride(), t.storage_offset())


def test_reshape_with_an_ambiguous_or_impossible_size_raises_torchs_runtime_error():
    torch = torch_or_skip()
    for shape, target in [((0, 3), (0, -1)), ((5,), (0, -1)), ((5,), (2, -1)), ((5,), (4,))]:
        for m in (gt, torch):
            with pytest.raises(RuntimeError):
                m.zeros(*shape).reshape(*target)
