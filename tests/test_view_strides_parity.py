"""``Tensor.view``/``view_as`` beside torch 2.13's ``computeStride`` rule: where torch's view
succeeds gt's gives the same values and gradients and, on one device, shares memory (a write
through it changes the base); where torch raises (a dim of the view would span two chunks of
memory that are not evenly spaced), gt raises torch's RuntimeError, also on a tensor sharded over
the mesh (whose view is a copy), judged by the strides one device would have."""

import numpy as np
import pytest

import gt
from gt.sharding.layout import logical_strides
from helpers import torch_or_skip

torch = torch_or_skip()

# (shape of the base, what is made of it, the view asked): transposes, permutations, slices (also
# with steps, along the sharded axis 0 and beside it), expands, size-1 dims and fresh results of
# arithmetic on permuted tensors (torch keeps their order of axes in memory). gt judges only
# blocks of one buffer (those of one row each too: the "short" refusals) and lets other views
# through (gt/sharding/layout.py, logical_strides)
CASES = {
    "contiguous split": ((8, 6), lambda t: t, (4, 2, 6)),
    "contiguous merge": ((8, 6, 2), lambda t: t, (8, 12)),
    "t flat": ((8, 6), lambda t: t.t(), (-1,)),
    "t split rows": ((8, 6), lambda t: t.t(), (3, 2, 8)),
    "t split cols": ((8, 6), lambda t: t.t(), (6, 2, 4)),
    "column slice flat": ((8, 6), lambda t: t[:, :3], (-1,)),
    "column slice split": ((8, 6), lambda t: t[:, 1:4], (4, 2, 3)),
    "row step flat": ((16, 6), lambda t: t[::2], (-1,)),
    "row step split": ((16, 6), lambda t: t[::2], (8, 3, 2)),
    "row slice flat": ((8, 6), lambda t: t[2:6], (24,)),
    "permute merge inner": ((8, 6, 4), lambda t: t.permute(0, 2, 1), (8, 24)),
    "permute merge outer": ((8, 6, 4), lambda t: t.permute(1, 0, 2), (48, 4)),
    "permute split": ((8, 6, 4), lambda t: t.permute(2, 0, 1), (2, 2, 8, 3, 2)),
    "transpose merge kept pair": ((8, 6, 4), lambda t: t.transpose(0, 2), (4, 48)),
    "expand flat": ((8, 6), lambda t: t[:, :1].expand(8, 5), (40,)),
    "expand unsqueeze": ((8, 6), lambda t: t[:, :1].expand(8, 5), (8, 5, 1)),
    "size-1 transpose flat": ((8, 6), lambda t: t.reshape(8, 1, 6).transpose(0, 1), (-1,)),
    "fresh permuted flat": ((8, 6, 4), lambda t: t.permute(2, 0, 1) * 2, (-1,)),
    "fresh permuted merge": ((8, 6, 4), lambda t: t.permute(2, 0, 1) * 2, (4, 48)),
    "fresh t slice flat": ((8, 6), lambda t: (t * 2).t()[:, 1:7], (-1,)),
    "fresh t slice split": ((8, 6), lambda t: (t * 2).t()[:, 1:7], (3, 2, 6)),
    "fresh t row slice": ((8, 6), lambda t: (t * 2).t()[1:5], (-1,)),
    "fresh row-major of t": ((8, 6), lambda t: t.t().contiguous(), (-1,)),
    "fresh row-major of t, rows": ((8, 6), lambda t: t.t().contiguous()[1:5], (2, 16)),
    "fresh row-major of t, cols": ((16, 6), lambda t: t.t().contiguous()[:, 1:11], (-1,)),
    "fresh row-major of t, cols split": ((16, 6), lambda t: t.t().contiguous()[:, 1:11], (3, 2, 10)),
    # one row per device under GT_DEVICES=4: the blocks' contiguous() changes nothing, as torch's of a
    # size-1 dim, and the view must not be refused for the blocks' layout
    "row-major of t, short": ((4, 6), lambda t: t.t().contiguous(), (-1,)),
    "row-major of t, short split": ((4, 6), lambda t: t.t().contiguous()[1:5], (2, 8)),
    "row-major of t, short, sliced": ((4, 3, 6), lambda t: t.transpose(0, 1).contiguous()[:, :, 2:6], (12, 4)),
    "fresh permuted, short": ((4, 6, 4), lambda t: ((t * 2).transpose(0, 1) * 2).permute(2, 1, 0), (4, 24)),
    "short t flat": ((4, 6), lambda t: t.t(), (-1,)),
    "short column slice flat": ((4, 6), lambda t: t[:, :3], (-1,)),
    "short row step flat": ((8, 6), lambda t: t[::2], (-1,)),
    "short, gap beside the rows": ((4, 6, 4), lambda t: t[:, :, :2], (-1,)),
    "short, gap beside the rows, split": ((4, 6, 4), lambda t: t[:, :, :2], (2, 2, 6, 2)),
    "empty slice": ((8, 6), lambda t: t.t()[:, :0], (0, 3)),
}


def _torch_view(case):
    shape, make, target = CASES[case]
    x = torch.arange(float(np.prod(shape)), dtype=torch.float64).reshape(shape)
    try:
        return make(x).view(target)
    except RuntimeError as e:
        return e


def _gt_base(shape, grad):
    # from_numpy: an 8-row base is cut along axis 0 under GT_DEVICES, so the sharded views run too
    x = gt.from_numpy(np.arange(float(np.prod(shape))).reshape(shape))
    return x.requires_grad_() if grad else x


def test_cases_cover_both_answers():
    answers = {case: isinstance(_torch_view(case), RuntimeError) for case in CASES}
    assert 6 <= sum(answers.values()) <= len(CASES) - 6


def _unread(made):
    # sharded blocks of their own (op results) do not say one device's strides: their views (copies)
    # are let through, not refused on a guess (gt/sharding/layout.py logical_strides)
    return made._placed is not None and logical_strides(made._placed) is None


def test_views_of_blocks_of_one_row_in_one_buffer_are_judged():
    # under GT_DEVICES=4 each device holds one row of these: the step between two blocks is the
    # sharded axis' stride, so their refusals above are checked, not let through (they were)
    for case in ("short t flat", "short column slice flat", "short row step flat", "short, gap beside the rows"):
        shape, make, _ = CASES[case]
        assert not _unread(make(_gt_base(shape, grad=False))), case


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_view_succeeds_or_raises_as_torchs(case):
    shape, make, target = CASES[case]
    expected = _torch_view(case)
    x = _gt_base(shape, grad=True)
    if isinstance(expected, RuntimeError):
        if _unread(make(x)):
            return
        with pytest.raises(RuntimeError, match="view size is not compatible with input tensor's size and stride"):
            make(x).view(target)
        return
    v = make(x).view(target)
    assert tuple(v.shape) == tuple(expected.shape)
    np.testing.assert_array_equal(v.detach().numpy(), expected.numpy())
    # gradients: a weighted sum of the view, beside torch's autograd
    w = np.random.default_rng(0).standard_normal(tuple(expected.shape))
    (v * gt.tensor(w)).sum().backward()
    tx = torch.arange(float(np.prod(shape)), dtype=torch.float64).reshape(shape).requires_grad_()
    (make(tx).view(target) * torch.tensor(w)).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("case", [c for c in CASES if not isinstance(_torch_view(c), RuntimeError)])
def test_writes_through_the_view_reach_the_base_as_torchs(case):
    shape, make, target = CASES[case]
    x, tx = _gt_base(shape, grad=False), torch.arange(float(np.prod(shape)), dtype=torch.float64).reshape(shape)
    made = make(x)
    if made._placed is not None or "expand" in case:
        pytest.skip("a view of a sharded tensor is a copy; writes into an expanded view are refused in both")
    v, tv = made.view(target), make(tx).view(target)
    v.mul_(-1.0)
    tv.mul_(-1.0)
    np.testing.assert_array_equal(x.numpy(), tx.numpy())
    np.testing.assert_array_equal(v.numpy(), tv.numpy())
    x.add_(100.0)      # and the view follows a later change of its base
    tx.add_(100.0)
    np.testing.assert_array_equal(v.numpy(), tv.numpy())


def test_view_as_follows_the_same_rule():
    x = _gt_base((8, 6), grad=False)
    with pytest.raises(RuntimeError, match="Use .reshape"):
        x.t().view_as(gt.zeros(48))
    np.testing.assert_array_equal(x.t().view_as(gt.zeros(3, 2, 8)).numpy(),
                                  torch.arange(48.0, dtype=torch.float64).reshape(8, 6).t().view(3, 2, 8).numpy())
    # reshape, unlike view, copies where it must
    np.testing.assert_array_equal(x.t().reshape(-1).numpy(), np.arange(48.0).reshape(8, 6).T.ravel())


@pytest.mark.skipif("not gt.backend.B.supports_bfloat16", reason="the numpy engine holds no bfloat16")
@pytest.mark.parametrize("case", ["t flat", "t split cols", "column slice flat", "fresh row-major of t, cols",
                                  "fresh row-major of t, cols split", "permute split"])
def test_bfloat16_views_as_torchs(case):
    shape, make, target = CASES[case]
    expected = _torch_view(case)
    x = _gt_base(shape, grad=False).to(gt.bfloat16)
    tx = torch.arange(float(np.prod(shape)), dtype=torch.bfloat16).reshape(shape)
    if isinstance(expected, RuntimeError):
        if _unread(make(x)):
            return
        with pytest.raises(RuntimeError, match="Use .reshape"):
            make(x).view(target)
        return
    made = make(x)
    v, tv = made.view(target), make(tx).view(target)
    np.testing.assert_array_equal(v.float().numpy(), tv.float().numpy())
    if made._placed is None:          # one device: the view shares the base's memory
        v.mul_(-1.0)
        tv.mul_(-1.0)
        np.testing.assert_array_equal(x.float().numpy(), tx.float().numpy())
