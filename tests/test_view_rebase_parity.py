"""Views whose base gets a history by an in-place write, beside torch (found by differential
fuzzing of views and in-place writes under autograd): a view taken of a tensor that does not
require grad follows a later write of a value that requires grad into that tensor (torch rebases
the view's ``grad_fn`` on the base's ``CopySlices``), and a write into such a view gives the base
that history; a view of a view that is itself changed in place reads the changed one; views taken
under ``no_grad`` are refused as torch refuses them. Each program runs in gt and in torch: both
raise, or both give the same values, ``requires_grad`` flags and gradients."""

import contextlib
import copy

import numpy as np
import pytest

import gt
from gt.sharding import use_mesh
from helpers import torch_or_skip

NO_GRAD_VIEW = "created in no_grad mode"


def _run(program, lib):
    """``program(lib)``'s results as floats and flags, or "raise" for torch's no_grad-view error."""
    try:
        with use_mesh(1) if lib is gt else contextlib.nullcontext():
            out = program(lib)
    except RuntimeError as exc:
        assert NO_GRAD_VIEW in str(exc), str(exc)
        return "raise"
    return [np.ravel(np.asarray(t.detach().tolist(), dtype=np.float64)).tolist() if hasattr(t, "detach")
            else t for t in out]


def _same(program):
    torch = torch_or_skip()
    ours, theirs = _run(program, gt), _run(program, torch)
    if "raise" in (ours, theirs):
        assert ours == theirs
        return
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs):
        if isinstance(b, (bool, type(None))):
            assert a == b
        else:
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def _w(lib, *shape):
    values = (np.arange(1, 1 + int(np.prod(shape)), dtype=np.float32) / 7).reshape(shape)
    return lib.tensor(values, requires_grad=True)


VIEWS = {
    "slice": lambda b: b[1:],
    "select": lambda b: b[1],
    "view": lambda b: b.view(-1),
    "transpose": lambda b: b.t(),
    "unsqueeze": lambda b: b.unsqueeze(0),
    "diagonal": lambda b: b.diagonal(),
    "expand": lambda b: b[:1].expand(3, 3),
    "narrow": lambda b: b.narrow(1, 1, 2),
}
WRITES = {
    "setitem": lambda b, w: b.__setitem__(0, w[0] * 2),
    "copy_": lambda b, w: b.copy_(w),
    "add_": lambda b, w: b.add_(w),
    "mul_": lambda b, w: b.mul_(w),
}


@pytest.mark.parametrize("write", WRITES)
@pytest.mark.parametrize("view", VIEWS)
def test_a_view_taken_before_follows_a_write_into_its_base(view, write):
    """The lost gradient: the view is used after its base was given a value that requires grad."""
    def program(lib):
        w = _w(lib, 3, 3)
        base = lib.ones(3, 3)
        v = VIEWS[view](base)
        WRITES[write](base, w)
        flag = v.requires_grad
        (v * v).sum().backward()
        return [v, w.grad, flag, v.is_leaf, base.requires_grad]
    _same(program)


def test_the_view_adds_its_gradient_to_other_uses_of_the_weight():
    """The silent case: another path to w kept backward running while the view's path was dropped."""
    def program(lib):
        w = _w(lib, 4)
        base = lib.zeros(4)
        v = base[1:3]
        base.copy_(w * 3)
        ((v * v).sum() + (w * w).sum()).backward()
        return [w.grad]
    _same(program)


def test_a_write_into_a_view_gives_its_base_and_the_other_views_the_history():
    def program(lib):
        w = _w(lib, 2, 3)
        x = lib.zeros(4, 3)
        top, bottom = x[:2], x[1:]          # siblings: bottom overlaps the rows written through top
        row = bottom[0]
        top.copy_(w * 2)
        flags = [x.requires_grad, bottom.requires_grad, row.requires_grad, x.is_leaf]
        ((x * x).sum() + (bottom * 3).sum() + (row ** 3).sum()).backward()
        return [x, bottom, row, w.grad] + flags
    _same(program)


def test_chains_of_views_and_later_writes():
    def program(lib):
        w = _w(lib, 3, 4)
        base = lib.zeros(3, 4)
        v = base.t()
        vv = v[1:]
        vvv = vv.reshape(-1)
        base.copy_(w)
        vv.grad_fn         # torch's stale view calls itself a leaf in an in-place op until its grad_fn is read
        vv.mul_(2.0)                         # the chain's middle changed again, recorded now
        base.add_(w)
        loss = (v * v).sum() + (vv * 3).sum() + (vvv ** 2).sum()
        loss.backward()
        return [base, v, vv, vvv, w.grad]
    _same(program)


def test_a_view_of_a_view_changed_in_place_reads_the_changed_one():
    """Recorded views (the base requires grad): ``v2`` was taken of ``v1`` before ``v1.mul_``."""
    for changes in (["v1"], ["base", "v1", "v1"], ["v2", "v1"]):
        def program(lib):
            w = _w(lib, 3, 4)
            base = w * 1
            v1 = base[0:2]
            v2 = v1[0]
            for name in changes:
                {"v1": v1, "v2": v2, "base": base}[name].mul_(3.0)
            sum((t * t).sum() for t in (base, v1, v2)).backward()
            return [base, v1, v2, w.grad]
        _same(program)


def test_detached_views_and_writes_without_grad_leave_views_alone():
    def program(lib):
        w = _w(lib, 3)
        base = lib.zeros(3)
        d = base[1:].detach()                 # shares memory, cut from the graph: no history
        d2 = base.detach()[1:]
        v = base[1:]
        base.add_(5.0)                        # a value without grad: nothing to follow
        flags = [v.requires_grad]
        base.copy_(w)
        flags += [d.requires_grad, d2.requires_grad, v.requires_grad]
        (base[1:] * d * d2).sum().backward()
        return [d, d2, w.grad] + flags
    _same(program)
    torch = torch_or_skip()
    for lib in (gt, torch):
        base = lib.zeros(3)
        copied = copy.deepcopy(base[1:])      # a copy is no view
        base.copy_(_w(lib, 3))
        assert not copied.requires_grad and copied.tolist() == [0.0, 0.0]


def test_a_write_into_a_detached_view_records_on_it_alone():
    def program(lib):
        w = _w(lib, 2)
        base = lib.zeros(3)
        d = base[1:].detach()
        d.copy_(w * 4)
        (d * d).sum().backward()
        return [base, d, w.grad, base.requires_grad, d.requires_grad]
    _same(program)


def _base_of(lib, requires_grad):
    return _w(lib, 3) * 1 if requires_grad else lib.zeros(3)


@pytest.mark.parametrize("requires_grad", [False, True])
def test_a_view_taken_under_no_grad_is_refused_after_its_base_changes(requires_grad):
    def program(lib):
        w = _w(lib, 3)
        base = _base_of(lib, requires_grad)
        with lib.no_grad():
            v = base[1:]
            vv = v[0:1]
        base.copy_(w * 2)
        with lib.no_grad():
            plain = [v * 2, vv * 2]            # using it under no_grad stays allowed
        (v * 2).sum().backward()
        return plain
    _same(program)

    def program_view_of_view(lib):
        w = _w(lib, 3)
        base = _base_of(lib, requires_grad)
        with lib.no_grad():
            v = base[1:]
        vv = v[0:1]
        base.copy_(w * 2)
        (vv * 2).sum().backward()
        return [vv]
    _same(program_view_of_view)


@pytest.mark.parametrize("requires_grad", [False, True])
def test_changing_a_view_taken_under_no_grad_in_grad_mode_is_refused(requires_grad):
    def program(lib):
        w = _w(lib, 2)
        base = _base_of(lib, requires_grad)
        with lib.no_grad():
            v = base[1:]
        v.add_(w if not requires_grad else 1.0)
        return [base]
    _same(program)

    def allowed(lib):
        base = lib.zeros(3)
        with lib.no_grad():
            v = base[1:]
        v.add_(1.0)                           # nothing requires grad: a plain write
        with lib.no_grad():
            v.add_(_w(lib, 2))                # under no_grad: a plain write
        return [base, base.requires_grad]
    _same(allowed)


def test_a_write_through_a_chain_of_views_refuses_the_no_grad_views_of_its_memory():
    """A write at the end of a chain of views changes each link: the views of each follow, the
    views taken under ``no_grad`` of that memory are refused, others stay as they were."""
    def program(lib, use_no_grad_view=False):
        w = _w(lib, 2, 3)
        base, other = lib.zeros(4, 4), lib.zeros(3)
        with lib.no_grad():
            ng, ng_of_link, untouched = base[0], base.t()[1:], other[1:]
        a = base[1:]
        b = a.t()
        c = b[1:]
        late = c[0]                        # a view of a link, taken before the write
        d = c.t()
        d[:2].copy_(w)
        flags = [t.requires_grad for t in (base, a, b, c, d, late, ng, ng_of_link, untouched)]
        loss = (base * base).sum() + (c * 2).sum() + (late ** 3).sum()
        if use_no_grad_view:
            loss = loss + ng_of_link.sum()
        loss.backward()
        return [base, a, b, c, d, late, w.grad] + flags
    _same(program)
    _same(lambda lib: program(lib, use_no_grad_view=True))


def test_a_write_through_a_chain_of_views_scans_the_no_grad_views_once(monkeypatch):
    """The views taken under ``no_grad`` are scanned once per write, not once per link of the
    chain written through: each more such view costs one lookup of its memory's owner."""
    from gt.backend import B
    real, calls = B.memory_owner, []
    monkeypatch.setattr(B, "memory_owner", lambda arr: calls.append(1) or real(arr))

    def owner_lookups(n_no_grad_views):
        with use_mesh(1):                    # one device: the views lie in one memory
            base = gt.zeros(6, 6)
            links = [base]
            for i in range(6):               # a chain of six views
                links.append(links[-1][1:] if i % 2 == 0 else links[-1].t())
            with gt.no_grad():
                kept = [gt.zeros(2)[1:] for _ in range(n_no_grad_views)]
            calls.clear()
            links[-1].copy_(_w(gt, *links[-1].shape))
        assert all(not v.requires_grad for v in kept)
        return len(calls)

    assert owner_lookups(40) - owner_lookups(20) == 20
