"""The memory layout of results beside torch 2.13's: reductions, scans, softmax, masked_fill,
cat/stack, index_select, topk and logcumsumexp are row-major whatever their input's layout;
elementwise ops (binary and ternary ones of mixed layouts too, gt's compositions among them),
sort and flip keep their input's order of dims (TensorIterator's rule: the first operand whose
strides order two dims decides), and an ``out=`` of no elements is resized to the result's
layout. gt's ``view`` follows torch's strides (tests/test_view_strides_parity.py), so a result in
another layout would refuse a view torch allows, or allow one it refuses. Each op runs on
permuted, transposed, sliced and stepped inputs: the same strides as torch's (dims of size 1
aside, whose stride no view reads; on a mesh where the blocks tell one device's strides, also
along the sharded axis), ``view(-1)`` succeeding or raising as torch's, and the same values."""

import numpy as np
import pytest

import gt
from gt.sharding.layout import logical_strides
from helpers import off_ci_meshes, torch_or_skip

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
    # every other elementwise op of mixed layouts: the first operand that orders two dims decides
    "x - row-major": lambda L, x: x - x.contiguous(),
    "row-major - x": lambda L, x: x.contiguous() - x,
    "x / row-major": lambda L, x: x / (x.abs() + 1).contiguous(),
    "x ** row-major": lambda L, x: x.abs() ** x.contiguous(),
    "x // row-major": lambda L, x: x // (x.abs() + 1).contiguous(),
    "x % row-major": lambda L, x: x % (x.abs() + 1).contiguous(),
    "x < row-major": lambda L, x: x < x.contiguous(),
    "x == row-major": lambda L, x: L.eq(x, x.contiguous()),
    "atan2": lambda L, x: L.atan2(x, x.contiguous()),
    "hypot": lambda L, x: L.hypot(x, x.contiguous()),
    "fmod": lambda L, x: L.fmod(x, (x.abs() + 1).contiguous()),
    "remainder": lambda L, x: L.remainder(x, (x.abs() + 1).contiguous()),
    "copysign": lambda L, x: L.copysign(x, x.contiguous()),
    "fmax": lambda L, x: L.fmax(x, x.contiguous()),
    "xlogy": lambda L, x: L.xlogy(x, (x.abs() + 1).contiguous()),
    "nextafter": lambda L, x: L.nextafter(x, x.contiguous()),
    "bitwise_and": lambda L, x: L.bitwise_and((x > 0).long(), (x < 1).long().contiguous()),
    "<<": lambda L, x: L.bitwise_left_shift((x > 0).long(), (x < 1).long().contiguous()),
    "logical_or": lambda L, x: L.logical_or(x, x.contiguous()),
    "lerp": lambda L, x: L.lerp(x, x.contiguous(), 0.3),
    "lerp tensor weight": lambda L, x: L.lerp(x.contiguous(), x, x.contiguous()),
    "addcdiv": lambda L, x: L.addcdiv(x, x.contiguous(), (x.abs() + 1).contiguous()),
    "clamp tensor bounds": lambda L, x: L.clamp(x, x.contiguous() - 1, x.contiguous() + 1),
    "div floor": lambda L, x: L.div(x, (x.abs() + 1).contiguous(), rounding_mode="floor"),
    "gammainc": lambda L, x: L.special.gammainc(x.abs() + 1, (x.abs() + 1).contiguous()),
    "chebyshev_t": lambda L, x: L.special.chebyshev_polynomial_t(x, (x * 3).abs().long().contiguous()),
    "int - float": lambda L, x: (x * 3).int() - x.contiguous(),
    "binary_cross_entropy": lambda L, x: L.nn.functional.binary_cross_entropy(
        x.sigmoid(), x.sigmoid().contiguous(), reduction="none"),
    "2 ** x": lambda L, x: 2 ** x,      # row-major: torch's number ** tensor
    # out= of no elements is resized to the result's layout (TensorIterator's), as torch's
    "sub out=": lambda L, x: L.sub(x, x.contiguous(), out=L.empty(0, dtype=x.dtype)),
    "lt out=": lambda L, x: L.lt(x, x.contiguous(), out=L.empty(0, dtype=L.bool)),
    "exp out=": lambda L, x: L.exp(x, out=L.empty(0, dtype=x.dtype)),
    "cumsum out=": lambda L, x: L.cumsum(x, 1, out=L.empty(0, dtype=x.dtype)),
}

BASE = np.random.default_rng(0).standard_normal((5, 4, 3))



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
        # a sharded tensor's strides are one device's where its blocks lie in one buffer (or are
        # whole copies), else unknown (None): its stride() reports the row-major ones of its shape
        strides = g.stride() if g._placed is None else logical_strides(g._placed)
        if strides is not None:
            same = all(n == 1 or a == b for n, a, b in zip(t.shape, strides, t.stride()))
            if not same and off_ci_meshes():
                pytest.xfail(f"{where}: on {gt.sharding.get_mesh().size} devices gt's result has other strides "
                             "(MISSING.md)")
            assert same, f"{where}: strides {strides}, torch's {t.stride()}"
        gv, tv = _flat_view(g), _flat_view(t)
        # sharded blocks of their own are not read for strides: their views (copies) are let through
        if not (strides is None and isinstance(tv, RuntimeError)):
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


OUT_OPS = {
    "sub": lambda L, p, s, o: L.sub(p, s, out=o),
    "mul": lambda L, p, s, o: L.mul(p, s, out=o),
    "atan2": lambda L, p, s, o: L.atan2(p, s, out=o),
    "where": lambda L, p, s, o: L.where(p > 0, p, s, out=o),
    "addcmul": lambda L, p, s, o: L.addcmul(p, s, s, out=o),
    "lerp": lambda L, p, s, o: L.lerp(p, s, 0.25, out=o),
    "sharded first": lambda L, p, s, o: L.sub(s, p, out=o),
    "cumsum": lambda L, p, s, o: L.cumsum(s, 2, out=o),
}
CUTS = {
    "transposed, stepped": lambda x: x.permute(2, 1, 0)[:, :, ::2],
    "permuted, stepped": lambda x: x.permute(1, 2, 0)[:, :, ::2],
    "permuted, sliced": lambda x: x.permute(2, 0, 1)[:, 1:3],
}


# not ("sharded first", "permuted, stepped"): a block of one row that is row-major but for the dim of
# size 1 is its own contiguous() in gt (x.contiguous() is x), so its buffer does not tell torch's
# layout, and out stays row-major (MISSING.md)
@pytest.mark.parametrize("op, cut", [(op, cut) for op in OUT_OPS for cut in CUTS
                                     if (op, cut) != ("sharded first", "permuted, stepped")])
def test_out_of_a_result_of_one_row_blocks_takes_torchs_layout(op, cut):
    # (8, 3, 2) cut along the sharded axis: under GT_DEVICES=4 the result's blocks hold one row each,
    # so they cannot tell where that axis lies; a resized out= takes the layout TensorIterator gives
    # from the operands: a replicated one (created with requires_grad), or a view's blocks in one buffer
    base = np.random.default_rng(2).standard_normal((8, 3, 2))
    lay = CUTS[cut]
    got = OUT_OPS[op](gt, lay(gt.tensor(base, requires_grad=True).detach()), lay(gt.from_numpy(base.copy())),
                      gt.empty(0, dtype=gt.float64))
    want = OUT_OPS[op](torch, lay(torch.tensor(base)), lay(torch.tensor(base)), torch.empty(0, dtype=torch.float64))
    same = all(n == 1 or a == b for n, a, b in zip(want.shape, got.stride(), want.stride()))
    if not same and off_ci_meshes():
        pytest.xfail(f"{op} of a {cut} input on {gt.sharding.get_mesh().size} devices: out has other strides "
                     "(MISSING.md)")
    assert same, f"{op} of a {cut} input: out's strides {got.stride()}, torch's {want.stride()}"
    assert isinstance(_flat_view(got), RuntimeError) == isinstance(_flat_view(want), RuntimeError)
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-12)
