"""The memory layout of results beside torch 2.13's: reductions, scans, softmax, masked_fill,
cat/stack, index_select, topk and logcumsumexp are row-major whatever their input's layout;
elementwise ops, sort and flip keep their input's order of dims (TensorIterator's rule: the
first operand whose strides order two dims decides). gt's ``view`` follows torch's strides
(tests/test_view_strides_parity.py), so a result in another layout would refuse a view torch
allows, or allow one it refuses. Each op runs on permuted, transposed, sliced and stepped inputs:
the same strides as torch's (on one device; dims of size 1 aside, whose stride no view reads),
``view(-1)`` succeeding or raising as torch's, and the same values."""

import numpy as np
import pytest

import gt
from gt.sharding.layout import logical_strides
from helpers import torch_or_skip

torch = torch_or_skip()

LAYOUTS = {
    "contiguous": lambda x: x,
    "permuted": lambda x: x.permute(2, 0, 1),
    "transposed": lambda x: x.transpose(0, 1),
    "sliced": lambda x: x[:, 1:3],
    "stepped": lambda x: x[::2],
    "permuted, sliced": lambda x: x.permute(2, 0, 1)[:, 1:3],
    "transposed, stepped": lambda x: x.transpose(0, 2)[::2],
}

OPS = {
    # reductions: row-major
    "sum": lambda L, x: x.sum(2),
    "sum(0)": lambda L, x: x.sum(0),
    "sum keepdim": lambda L, x: x.sum(1, keepdim=True),
    "mean": lambda L, x: x.mean(1),
    "mean(0, 2)": lambda L, x: x.mean((0, 2)),
    "amax": lambda L, x: x.amax(1),
    "amin": lambda L, x: x.amin(1),
    "max values": lambda L, x: x.max(dim=1)[0],
    "max indices": lambda L, x: x.max(dim=1)[1],
    "argmin": lambda L, x: x.argmin(1),
    "prod": lambda L, x: x.prod(1),
    "std": lambda L, x: x.std(1, unbiased=False),
    "var": lambda L, x: x.var(1, unbiased=False),
    "norm": lambda L, x: x.norm(dim=1),
    "logsumexp": lambda L, x: x.logsumexp(1),
    "any": lambda L, x: (x > 0).any(1),
    "int sum": lambda L, x: (x > 0).long().sum(1),
    "half sum": lambda L, x: x.half().sum(1),
    # scans and the softmax family: row-major
    "cumsum": lambda L, x: x.cumsum(1),
    "float32 cumsum": lambda L, x: x.float().cumsum(1),
    "cumprod": lambda L, x: x.cumprod(1),
    "cummax": lambda L, x: x.cummax(1)[0],
    "cummax indices": lambda L, x: x.cummax(1)[1],
    "logcumsumexp": lambda L, x: x.logcumsumexp(1),
    "softmax": lambda L, x: x.softmax(1),
    "softmax(-1)": lambda L, x: x.softmax(-1),
    "log_softmax": lambda L, x: x.log_softmax(1),
    # selections and joins: row-major
    "masked_fill": lambda L, x: x.masked_fill(x > 0, 0.0),
    "masked_fill broadcast": lambda L, x: x.masked_fill(x[0] > 0, 1.0),
    "cat": lambda L, x: L.cat([x, x], 1),
    "cat mixed": lambda L, x: L.cat([x.contiguous(), x], 2),
    "stack": lambda L, x: L.stack([x, x], 1),
    "index_select": lambda L, x: x.index_select(1, L.tensor([1, 0])),
    "index_select(0)": lambda L, x: x.index_select(0, L.tensor([1, 0])),
    "topk": lambda L, x: x.topk(2, 1)[0],
    "topk indices": lambda L, x: x.topk(2, 1)[1],
    # the input's layout (TensorIterator's rule)
    "exp": lambda L, x: x.exp(),
    "x + 1": lambda L, x: x + 1,
    "x + row-major": lambda L, x: x + x.contiguous(),
    "row-major + x": lambda L, x: x.contiguous() + x,
    "x * row-major": lambda L, x: x * x.contiguous(),
    "x + x[:, :1]": lambda L, x: x + x[:, :1],
    "relu": lambda L, x: L.relu(x),
    "maximum": lambda L, x: L.maximum(x, x.contiguous()),
    "minimum": lambda L, x: L.minimum(x, x.contiguous()),
    "where": lambda L, x: L.where(x > 0, x, 0.0),
    "where mixed": lambda L, x: L.where(x > 0, x, x.contiguous()),
    "sort": lambda L, x: x.sort(1)[0],
    "sort indices": lambda L, x: x.sort(1)[1],
    "sort(0)": lambda L, x: x.sort(0)[0],
    "argsort": lambda L, x: x.argsort(1),
    "flip": lambda L, x: x.flip(1),
    "flip(0, 2)": lambda L, x: x.flip(0, 2),
}

BASE = np.random.default_rng(0).standard_normal((5, 4, 3))

# along the sharded axis these gather the tensor (or scan block after block) into a row-major
# result, where torch's keeps a permuted input's layout (sort, flip) or is row-major (the scans,
# whose sharded blocks are judged permuted): their values are checked, not their layouts
SHARDED_LAYOUT_LEFT = {"cumsum", "float32 cumsum", "cumprod", "logcumsumexp", "sort", "sort indices", "flip",
                       "flip(0, 2)"}


def _flat_view(t):
    try:
        return t.view(-1)
    except RuntimeError as e:
        return e


@pytest.mark.parametrize("op", OPS, ids=list(OPS))
def test_result_layout_as_torchs(op):
    fn = OPS[op]
    for name, layout in LAYOUTS.items():
        # from_numpy: the 5 rows are cut along axis 0 under GT_DEVICES (the sharded results' views)
        x = gt.from_numpy(BASE.copy())
        g, t = fn(gt, layout(x)), fn(torch, layout(torch.tensor(BASE)))
        where = f"{op} of a {name} input"
        assert tuple(g.shape) == tuple(t.shape), where
        laid_out = x._placed is None or op not in SHARDED_LAYOUT_LEFT
        if laid_out and g._placed is None:      # a sharded tensor reports the row-major strides of its shape
            assert all(n == 1 or a == b for n, a, b in zip(t.shape, g.stride(), t.stride())), \
                f"{where}: strides {g.stride()}, torch's {t.stride()}"
        gv, tv = _flat_view(g), _flat_view(t)
        # sharded blocks of their own are not read for strides: their views (copies) are let through
        guessed = g._placed is not None and logical_strides(g._placed) is None
        if laid_out and not (guessed and isinstance(tv, RuntimeError)):
            assert isinstance(gv, RuntimeError) == isinstance(tv, RuntimeError), \
                f"{where}: view(-1) {gv!r}, torch's {tv!r}"
        half = t.dtype == torch.float16
        got, want = (g.float().numpy(), t.float().numpy()) if half else (g.numpy(), t.numpy())
        np.testing.assert_allclose(got, want, rtol=1e-3 if half else 1e-10, atol=1e-12, err_msg=where)


def test_layouts_cover_both_directions():
    # torch keeps a permuted input's layout for some of these ops and not for others: each answer occurs
    x = torch.tensor(BASE).permute(2, 0, 1)
    kept = [op for op, fn in OPS.items() if fn(torch, x).stride() == x.stride()]
    assert 10 <= len(kept) <= len(OPS) - 10


@pytest.mark.parametrize("rows", [(8,), (2, 4), (2, 2, 2), (128,)])
def test_linear_result_is_row_major_as_torchs(rows):
    # few rows into many outputs: the numpy engine's product may run swapped, its result column-major,
    # then copied row-major (a 2-D input's result was left column-major: its view(-1) raised)
    w, x = np.random.default_rng(1).standard_normal((2, 256, 64)).astype(np.float32)
    x = x[:int(np.prod(rows))].reshape(rows + (64,))
    g = gt.nn.functional.linear(gt.tensor(x), gt.tensor(w))
    t = torch.nn.functional.linear(torch.tensor(x), torch.tensor(w))
    if g._placed is None:
        assert g.stride() == t.stride()
    np.testing.assert_allclose(g.view(-1).numpy(), t.view(-1).numpy(), rtol=1e-5, atol=1e-5)
