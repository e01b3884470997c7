"""Layouts of tensors whose blocks hold one row each along the sharded axis (a tensor of as many
rows as the mesh has devices, made with ``from_numpy``, and its views), beside torch 2.13: whether
``reshape`` copies, what ``contiguous()`` returns, ``is_contiguous()``. Each block of ``h.t()`` is
row-major (a dim of one element steps anywhere), the whole is not; gt read no step from such
blocks, so ``h.t().reshape(-1)`` was a copy that followed later changes of ``h`` and ``h.t().contiguous()``
was ``h.t()`` itself, silently. The blocks lie in one buffer: the step between two of them is the
sharded axis' stride (gt/sharding/layout.py ``logical_strides``). On one device these run as torch's too."""

import numpy as np
import pytest

import gt

torch = pytest.importorskip("torch")


def _rows():
    # one row per device in the passes that set GT_DEVICES; at least two rows on one device
    return max(gt.sharding.get_mesh().size, 2)


def _base(lib, *inner):
    shape = (_rows(),) + inner
    return lib.from_numpy(np.arange(float(np.prod(shape))).reshape(shape))


# (what is made of the base (n, 3, 2), the shape asked of reshape)
RESHAPES = {
    "t flat": (lambda h: h[:, :, 0].t(), (-1,)),
    "permuted flat": (lambda h: h.permute(2, 1, 0), (-1,)),
    "gap beside the rows flat": (lambda h: h[:, :-1], (-1,)),
    "gap beside the rows merge": (lambda h: h[:, 1:], (-1, 4)),
    "inner slice merge": (lambda h: h[:, :, :1], (-1, 3)),
    "rows merge": (lambda h: h, (-1, 6)),
    "row-major of t flat": (lambda h: h[:, :, 0].t().contiguous(), (-1,)),
}


def _torch_copies(r, v):
    return r.untyped_storage().data_ptr() != v.untyped_storage().data_ptr()


@pytest.mark.parametrize("case", RESHAPES)
def test_a_reshape_is_a_copy_or_a_view_as_torchs(case):
    make, shape = RESHAPES[case]
    results = []
    for lib in (gt, torch):
        h = _base(lib, 3, 2)
        r = make(h).reshape(shape)
        h.mul_(-2)              # a copy keeps the old values; a view shows the new ones
        results.append(r.tolist())
    np.testing.assert_array_equal(*results)


@pytest.mark.parametrize("case", RESHAPES)
def test_a_write_into_a_reshape_that_torch_copies_leaves_the_base(case):
    make, shape = RESHAPES[case]
    v = make(_base(torch, 3, 2))
    if not _torch_copies(v.reshape(shape), v):
        pytest.skip("torch's reshape is a view (over the mesh gt refuses writes into one gathered across the blocks)")
    results = []
    for lib in (gt, torch):
        h = _base(lib, 3, 2)
        make(h).reshape(shape).add_(100)
        results.append(h.tolist())
    np.testing.assert_array_equal(*results)


@pytest.mark.parametrize("case", RESHAPES)
def test_the_gradient_of_the_reshape_is_torchs(case):
    make, shape = RESHAPES[case]
    grads = []
    for lib in (gt, torch):
        h = _base(lib, 3, 2).requires_grad_()
        r = make(h).reshape(shape)
        (r * lib.arange(float(r.numel()), dtype=r.dtype).reshape(r.shape)).sum().backward()
        grads.append(h.grad.tolist())
    np.testing.assert_array_equal(*grads)


# views of the base (n, 3) and whether torch's contiguous() is the tensor itself
VIEWS = {
    "itself": lambda h: h,
    "t": lambda h: h.t(),
    "column slice": lambda h: h[:, :2],
    "one column": lambda h: h[:, 1:2],
    "row step": lambda h: h[::2],
    "rows": lambda h: h[1:],
    "row-major of t": lambda h: h.t().contiguous(),
    "unsqueezed t": lambda h: h.t().unsqueeze(0),
    "t viewed with a dim of one": lambda h: h.t().view(3, 1, -1),
}


@pytest.mark.parametrize("case", VIEWS)
def test_is_contiguous_and_contiguous_as_torchs(case):
    results = []
    for lib in (gt, torch):
        h = _base(lib, 3)
        v = VIEWS[case](h)
        c = v.contiguous()
        c.add_(100)             # torch's contiguous() of a row-major tensor is that tensor
        results.append((v.is_contiguous(), c.is_contiguous(), v.tolist(), h.tolist()))
    assert results[0][:2] == results[1][:2]
    np.testing.assert_array_equal(results[0][2], results[1][2])
    np.testing.assert_array_equal(results[0][3], results[1][3])


def test_a_view_of_the_row_major_copy_follows_it():
    results = []
    for lib in (gt, torch):
        c = _base(lib, 3).t().contiguous()
        v = c.view(-1)
        c.mul_(3)
        results.append(v.tolist())
    np.testing.assert_array_equal(*results)


@pytest.mark.parametrize("shape", [(2, 3), (0, 3), (4, 0), (5, 3), (3, 4, 2), (1, 3), (4, 1)])
def test_is_contiguous_of_views_of_any_shape_as_torchs(shape):
    # shapes of fewer rows than devices, of none, uneven blocks; views with steps, gaps, expands, sums
    results = []
    for lib in (gt, torch):
        h = lib.from_numpy(np.arange(float(np.prod(shape))).reshape(shape))
        views = [h, h[1:], h[::2], h[..., :1], h.t() if h.ndim == 2 else h.transpose(0, 2),
                 h.sum(0, keepdim=True), h.expand(2, *h.shape), h.unsqueeze(1), (h * 1)[:1]]
        results.append([(v.is_contiguous(), v.contiguous().is_contiguous()) for v in views])
    assert results[0] == results[1]
