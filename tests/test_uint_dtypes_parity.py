"""gt.uint16, gt.uint32 and gt.uint64 beside torch's "limited support" unsigned dtypes (torch 2.3
on): each op below runs on both libraries with the same code, and gt gives torch's dtype and values
where torch computes, and an error of torch's type naming torch's kernel where torch has none for
these dtypes (add, order, max, shifts...) or refuses the promotion (beside any other integer, bool
or complex dtype). Also: dtype facts, numpy in and out, printing, torch's checkpoint format both
ways, and collate. The (8, 5) data shards over the mesh in the GT_DEVICES passes."""

import io
import re

import numpy as np
import pytest

import gt
from helpers import torch_or_skip

torch = torch_or_skip()

WIDE = ["uint16", "uint32", "uint64"]


def _name(dtype):
    return str(dtype).split(".")[-1]


def _data(lib, dt):
    """(x, y, mask) of ``lib``: (8, 5) values of ``dt``, x holding the dtype's largest value."""
    rng = np.random.default_rng(3)
    a, b = rng.integers(0, 1000, (8, 5)).astype(dt), rng.integers(1, 1000, (8, 5)).astype(dt)
    a[0, 0] = np.iinfo(dt).max
    m = rng.random((8, 5)) > 0.5
    return lib.from_numpy(a), lib.from_numpy(b), lib.from_numpy(m)


def _v(lib, x):
    """A 1-D (5,) of x's dtype: values some ops want small and unsorted."""
    return lib.tensor([4, 1, 3, 1, 2], dtype=x.dtype)


# group -> name -> op(lib, x, y, m); the same code runs with lib = torch and lib = gt (one test a group:
# a test each would spend more on pytest than on the ops)
GROUPS = {
    "creation": {
        "zeros": lambda L, x, y, m: L.zeros(2, 3, dtype=x.dtype),
        "ones": lambda L, x, y, m: L.ones(2, dtype=x.dtype),
        "full": lambda L, x, y, m: L.full((2,), 7, dtype=x.dtype),
        "full -1": lambda L, x, y, m: L.full((2,), -1, dtype=x.dtype),
        "empty shape": lambda L, x, y, m: tuple(L.empty(2, 3, dtype=x.dtype).shape),
        "zeros_like": lambda L, x, y, m: L.zeros_like(x),
        "full_like": lambda L, x, y, m: L.full_like(x, 9),
        "arange": lambda L, x, y, m: L.arange(4, dtype=x.dtype),
        "linspace": lambda L, x, y, m: L.linspace(0, 4, 3, dtype=x.dtype),
        "tensor max": lambda L, x, y, m: L.tensor([0, int(np.iinfo(_name(x.dtype)).max)], dtype=x.dtype),
        "tensor max+1": lambda L, x, y, m: L.tensor([int(np.iinfo(_name(x.dtype)).max) + 1], dtype=x.dtype),
        "tensor -1": lambda L, x, y, m: L.tensor([-1], dtype=x.dtype),
        "tensor 3.7": lambda L, x, y, m: L.tensor([3.7], dtype=x.dtype) if x.dtype != L.uint64 else L.zeros(1),
        "randint dtype": lambda L, x, y, m: L.randint(0, 5, (3,), dtype=x.dtype).dtype,
    },
    "conversion": {
        "to float32": lambda L, x, y, m: x.to(L.float32),
        "to float64": lambda L, x, y, m: x.double(),
        "to int64": lambda L, x, y, m: x.long(),
        "to bool": lambda L, x, y, m: x.bool(),
        "to uint8": lambda L, x, y, m: x.to(L.uint8),
        "int64 to": lambda L, x, y, m: L.tensor([-1, 70000, 2 ** 40]).to(x.dtype),
        "float to": lambda L, x, y, m: L.tensor([1.7, 3.2]).to(x.dtype),
        "view signed": lambda L, x, y, m: x.view(getattr(L, _name(x.dtype)[1:])),
        "item": lambda L, x, y, m: x[0, 0].item(),
        "tolist": lambda L, x, y, m: x.tolist(),
        "int()": lambda L, x, y, m: int(x[1, 1]),
    },
    "comparisons": {
        "eq": lambda L, x, y, m: x == y,
        "ne": lambda L, x, y, m: x != y,
        "eq int": lambda L, x, y, m: x == 3,
        "lt": lambda L, x, y, m: x < y,
        "ge int": lambda L, x, y, m: x >= 2,
        "lt float": lambda L, x, y, m: x < 500.5,
        "lt 0-d float": lambda L, x, y, m: x < L.tensor(500.5),
        "eq int64": lambda L, x, y, m: x == y.long(),
        "equal": lambda L, x, y, m: L.equal(x, x.clone()),
        "isclose": lambda L, x, y, m: L.isclose(x, y),
        "allclose": lambda L, x, y, m: L.allclose(x, x.clone()),
    },
    "bitwise": {
        "and": lambda L, x, y, m: x & y,
        "or": lambda L, x, y, m: x | y,
        "xor": lambda L, x, y, m: x ^ y,
        "or -1": lambda L, x, y, m: x | -1,
        "and 2**40": lambda L, x, y, m: x & 2 ** 40,
        "not": lambda L, x, y, m: ~x,
        "lshift": lambda L, x, y, m: x << 1,
        "rshift": lambda L, x, y, m: x >> y,
        "gcd": lambda L, x, y, m: L.gcd(x, y),
    },
    "arithmetic": {
        "add": lambda L, x, y, m: x + y,
        "add int": lambda L, x, y, m: x + 1,
        "add 0-d int64": lambda L, x, y, m: x + L.tensor(1),
        "sub": lambda L, x, y, m: x - y,
        "rsub": lambda L, x, y, m: 1 - x,
        "add_": lambda L, x, y, m: x.clone().add_(y),
        "iadd int": lambda L, x, y, m: x.clone().__iadd__(2),
        "mul": lambda L, x, y, m: x * y,
        "mul -1": lambda L, x, y, m: x * -1,
        "mul 2**40": lambda L, x, y, m: x * 2 ** 40,
        "mul True": lambda L, x, y, m: x * True,
        "mul_": lambda L, x, y, m: x.clone().mul_(3),
        "imul": lambda L, x, y, m: x.clone().__imul__(y),
        "mul 0-d uint8": lambda L, x, y, m: x * L.tensor(2, dtype=L.uint8),
        "div": lambda L, x, y, m: x / y,
        "add float": lambda L, x, y, m: x + 1.5,
        "sub float": lambda L, x, y, m: 1.5 - x,
        "floordiv": lambda L, x, y, m: x // y,
        "floordiv float": lambda L, x, y, m: x // 2.0,
        "mod": lambda L, x, y, m: x % y,
        "fmod": lambda L, x, y, m: L.fmod(x, y),
        "pow": lambda L, x, y, m: x ** 2,
        "pow float": lambda L, x, y, m: x ** 2.0,
        "rpow": lambda L, x, y, m: 2 ** x,
        "neg": lambda L, x, y, m: -x,
        "abs": lambda L, x, y, m: x.abs(),
        "sign": lambda L, x, y, m: x.sign(),
        "square": lambda L, x, y, m: x.square(),
        "maximum": lambda L, x, y, m: L.maximum(x, y),
        "minimum": lambda L, x, y, m: L.minimum(x, y),
        "clamp": lambda L, x, y, m: x.clamp(2, 500),
        "relu": lambda L, x, y, m: L.relu(x),
        "sqrt": lambda L, x, y, m: x.sqrt(),
        "sin": lambda L, x, y, m: x.sin(),
        "floor": lambda L, x, y, m: x.floor(),
        "hypot": lambda L, x, y, m: L.hypot(x, y),
        "logaddexp": lambda L, x, y, m: x.logaddexp(y),
        "atan2": lambda L, x, y, m: L.atan2(x, y),
        "logical_and": lambda L, x, y, m: L.logical_and(x, y),
        "logical_not": lambda L, x, y, m: x.logical_not(),
    },
    "promotion": {
        "add int64": lambda L, x, y, m: x + y.long(),
        "mul int64": lambda L, x, y, m: x * y.long(),
        "mul uint8": lambda L, x, y, m: x * y.to(L.uint8),
        "mul bool": lambda L, x, y, m: x * m,
        "mul float32": lambda L, x, y, m: x * y.float(),
        "mul float64": lambda L, x, y, m: x * y.double(),
        "mul float16": lambda L, x, y, m: x * y.half(),
        "mul complex64": lambda L, x, y, m: x * y.to(L.complex64),
        "mul 1j": lambda L, x, y, m: x * 1j,
        "mul 0-d float64": lambda L, x, y, m: x * L.tensor(2.0, dtype=L.float64),
        "int64 * 0-d": lambda L, x, y, m: y.long() * x[1, 1],
        "bool * 0-d": lambda L, x, y, m: m * x[1, 1],
        "other uint": lambda L, x, y, m: x * y.to(L.uint16 if x.dtype != L.uint16 else L.uint32),
        "result_type int": lambda L, x, y, m: L.result_type(x, 1),
        "result_type float": lambda L, x, y, m: L.result_type(x, 1.0),
        "result_type 0-d int64": lambda L, x, y, m: L.result_type(x, L.tensor(1)),
        "promote int64": lambda L, x, y, m: L.promote_types(x.dtype, L.int64),
        "promote int8": lambda L, x, y, m: L.promote_types(L.int8, x.dtype),
        "promote bool": lambda L, x, y, m: L.promote_types(x.dtype, L.bool),
        "promote float16": lambda L, x, y, m: L.promote_types(x.dtype, L.float16),
        "promote bfloat16": lambda L, x, y, m: L.promote_types(x.dtype, L.bfloat16),
        "promote complex64": lambda L, x, y, m: L.promote_types(x.dtype, L.complex64),
        "promote self": lambda L, x, y, m: L.promote_types(x.dtype, x.dtype),
        "can_cast": lambda L, x, y, m: (L.can_cast(x.dtype, L.int8), L.can_cast(L.float32, x.dtype)),
    },
    "reductions": {
        "sum": lambda L, x, y, m: x.sum(),
        "sum dim": lambda L, x, y, m: y.sum(1),
        "prod": lambda L, x, y, m: _v(L, x).prod(),
        "cumsum": lambda L, x, y, m: y.cumsum(0),
        "mean": lambda L, x, y, m: x.mean(),
        "std": lambda L, x, y, m: x.std(),
        "max": lambda L, x, y, m: x.max(),
        "max dim": lambda L, x, y, m: x.max(0),
        "min": lambda L, x, y, m: x.min(),
        "amax": lambda L, x, y, m: x.amax(1),
        "argmax": lambda L, x, y, m: x.argmax(),
        "argmin": lambda L, x, y, m: x.argmin(1),
        "any": lambda L, x, y, m: x.any(),
        "all": lambda L, x, y, m: x.all(1),
        "count_nonzero": lambda L, x, y, m: x.count_nonzero(),
        "median": lambda L, x, y, m: x.median(),
        "trace": lambda L, x, y, m: x.trace(),
        "histc": lambda L, x, y, m: x.histc(4),
        "logcumsumexp": lambda L, x, y, m: x.logcumsumexp(0),
    },
    "indexing, joining, sorting": {
        "getitem int": lambda L, x, y, m: x[1],
        "getitem slice": lambda L, x, y, m: x[1:5:2, ::2],
        "getitem index": lambda L, x, y, m: x[L.tensor([2, 0])],
        "getitem mask": lambda L, x, y, m: x[m],
        "setitem int": lambda L, x, y, m: _set(x.clone(), (0, 1), -1),
        "setitem slice": lambda L, x, y, m: _set(x.clone(), slice(1, 3), y[:2]),
        "setitem index": lambda L, x, y, m: _set(x.clone(), L.tensor([0, 2]), 9),
        "setitem mask": lambda L, x, y, m: _set(x.clone(), m, 9),
        "fill_": lambda L, x, y, m: x.clone().fill_(4),
        "fill_ max": lambda L, x, y, m: x.clone().fill_(int(L.iinfo(x.dtype).max)),     # uint64's 2**64 - 1
        "copy_ int64": lambda L, x, y, m: x.clone().copy_(y.long()),
        "cat": lambda L, x, y, m: L.cat([x, y]),
        "cat int64": lambda L, x, y, m: L.cat([x, y.long()]),
        "stack": lambda L, x, y, m: L.stack([x, y]),
        "where": lambda L, x, y, m: L.where(m, x, y),
        "where number": lambda L, x, y, m: L.where(m, x, 0),
        "masked_fill": lambda L, x, y, m: x.masked_fill(m, 0),
        "sort": lambda L, x, y, m: tuple(_v(L, x).sort()),
        "sort desc": lambda L, x, y, m: tuple(_v(L, x).sort(descending=True)),
        "argsort": lambda L, x, y, m: _v(L, x).argsort(stable=True),
        "unique": lambda L, x, y, m: _v(L, x).unique(),
        "topk": lambda L, x, y, m: x.topk(2),
        "flip": lambda L, x, y, m: x.flip(0),
        "gather": lambda L, x, y, m: x.gather(1, L.tensor([[0]] * 8)),
        "index_select": lambda L, x, y, m: x.index_select(0, L.tensor([1])),
        "isin": lambda L, x, y, m: L.isin(x, y),
        "nonzero": lambda L, x, y, m: x.nonzero(),
        "tril": lambda L, x, y, m: x.tril(),
        "transpose contiguous": lambda L, x, y, m: x.t().contiguous(),
        "reshape": lambda L, x, y, m: x.reshape(5, 8),
        "repeat": lambda L, x, y, m: x.repeat(2, 1),
        "roll": lambda L, x, y, m: x.roll(1, 0),
        "dot": lambda L, x, y, m: _v(L, x).dot(_v(L, x)),
        "searchsorted": lambda L, x, y, m: L.searchsorted(_v(L, x).sort().values, _v(L, x)),
        "flip last": lambda L, x, y, m: x.flip(-1),
        "index_select 1-D": lambda L, x, y, m: _v(L, x).index_select(0, L.tensor([1])),
        "isin few": lambda L, x, y, m: L.isin(x, y[0, :2]),
    },
    "dtype= arguments and products": {     # torch's kernel errors named by dtype= and by the operands' dims
        "sum dtype": lambda L, x, y, m: x.sum(dtype=x.dtype),
        "sum dim dtype": lambda L, x, y, m: x.sum(0, dtype=x.dtype),
        "float sum dtype": lambda L, x, y, m: L.sum(x.float(), dtype=x.dtype),
        "int64 sum dtype": lambda L, x, y, m: x.long().sum(1, dtype=x.dtype),
        "sum dtype int32": lambda L, x, y, m: y.sum(1, dtype=L.int32),
        "nansum dtype": lambda L, x, y, m: x.float().nansum(dtype=x.dtype),
        "prod dtype": lambda L, x, y, m: x.float().prod(0, dtype=x.dtype),
        "cumsum dtype": lambda L, x, y, m: x.cumsum(0, dtype=x.dtype),
        "cumsum dtype int64": lambda L, x, y, m: y.cumsum(0, dtype=L.int64),
        "cumprod dtype": lambda L, x, y, m: L.cumprod(x.float(), 1, dtype=x.dtype),
        "mean dtype float64": lambda L, x, y, m: x.mean(dtype=L.float64),
        "softmax dtype": lambda L, x, y, m: L.softmax(x.float(), 1, dtype=x.dtype),
        "log_softmax dtype dim 0": lambda L, x, y, m: L.nn.functional.log_softmax(x.float(), 0, dtype=x.dtype),
        "softmax": lambda L, x, y, m: y.softmax(0),
        "softmax dtype float": lambda L, x, y, m: y.softmax(1, dtype=L.float64),
        "matmul": lambda L, x, y, m: L.matmul(x, y.t()),
        "matmul mv": lambda L, x, y, m: L.matmul(x, y[0]),
        "matmul vv": lambda L, x, y, m: L.matmul(x[0], y[0]),
        "matmul batched": lambda L, x, y, m: L.matmul(x.reshape(2, 4, 5), y.reshape(2, 5, 4)),
        "mm": lambda L, x, y, m: L.mm(x, y.t()),
        "mv": lambda L, x, y, m: L.mv(x, y[0]),
        "@": lambda L, x, y, m: x @ y.t(),
        "linalg.matmul": lambda L, x, y, m: L.linalg.matmul(x, y.t()),
        "linear": lambda L, x, y, m: L.nn.functional.linear(x, y),
        "einsum contraction": lambda L, x, y, m: L.einsum("ij,kj->ik", x, y),
        "einsum sum": lambda L, x, y, m: L.einsum("ij->i", y),
        "einsum outer": lambda L, x, y, m: L.einsum("i,j->ij", x[0], y[0]),
        "einsum sum beside": lambda L, x, y, m: L.einsum("ij,k->k", x, y[0]),
        "trapezoid": lambda L, x, y, m: L.trapezoid(x),
        "trapezoid x": lambda L, x, y, m: L.trapezoid(y.double(), x[0]),
        "cumulative_trapezoid": lambda L, x, y, m: L.cumulative_trapezoid(x, dx=2.0),
        "vander": lambda L, x, y, m: L.vander(_v(L, x)),
        "linalg.vander": lambda L, x, y, m: L.linalg.vander(_v(L, x)),
        "linalg.vecdot": lambda L, x, y, m: L.linalg.vecdot(x, y),
    },
}
OPS = {name: op for group in GROUPS.values() for name, op in group.items()}


def _set(t, index, value):
    t[index] = value
    return t


def _run(lib, dt, op):
    try:
        return OPS[op](lib, *_data(lib, dt)), None
    except Exception as exc:            # the error is the answer compared
        return None, exc


def _same(g, t):
    if isinstance(t, torch.Tensor):
        assert isinstance(g, gt.Tensor), (g, t)
        assert _name(g.dtype) == _name(t.dtype) and tuple(g.shape) == tuple(t.shape), (g, t)
        if t.is_floating_point():     # numpy's float32 sin may be an ulp from torch's
            np.testing.assert_allclose(g.detach().numpy(), t.detach().numpy(), rtol=1e-6)
        else:
            np.testing.assert_array_equal(g.detach().numpy(), t.detach().numpy())
    elif isinstance(t, tuple):
        assert isinstance(g, tuple) and len(g) == len(t), (g, t)
        for a, b in zip(g, t):
            _same(a, b)
    elif isinstance(t, torch.dtype):
        assert _name(g) == _name(t), (g, t)
    else:
        assert g == t and type(g) is type(t), (g, t)


def _kernel(exc):
    """torch's kernel and dtype in a NotImplementedError's text (``"add_stub" ... 'UInt16'``)."""
    found = re.match(r'"(\w+)" not implemented for \'(\w+)\'', str(exc))
    return found.groups() if found else str(exc)


@pytest.mark.parametrize("group", list(GROUPS))
@pytest.mark.parametrize("dt", WIDE)
def test_ops_as_torch(dt, group):
    failed = []
    for op in GROUPS[group]:
        try:
            _check(dt, op)
        except AssertionError as exc:
            failed.append(f"{op}: {exc}")
    assert not failed, "\n".join(failed)


def _check(dt, op):
    want, refused = _run(torch, dt, op)
    got, error = _run(gt, dt, op)
    if refused is None:
        assert error is None, f"torch computes {op} of {dt}, gt raised {error!r}"
        _same(got, want)
        return
    assert error is not None, f"torch raises {refused!r} for {op} of {dt}, gt gave {got!r}"
    assert isinstance(error, type(refused)), (error, refused)
    if isinstance(refused, NotImplementedError):
        assert _kernel(error) == _kernel(refused), (error, refused)
    elif "Promotion for uint16" in str(refused):
        assert str(refused) in str(error), (error, refused)


@pytest.mark.parametrize("dt", WIDE)
def test_dtype_facts_and_numpy(dt):
    mine, theirs = getattr(gt, dt), getattr(torch, dt)
    assert mine == theirs and gt.uint16 != gt.int16 and repr(mine) == f"gt.{dt}"
    assert (mine.itemsize, mine.is_signed, mine.is_floating_point) == (theirs.itemsize, theirs.is_signed, False)
    info, tinfo = gt.iinfo(mine), torch.iinfo(theirs)
    assert (info.min, info.max, info.bits, info.dtype) == (tinfo.min, tinfo.max, tinfo.bits, tinfo.dtype)
    a = np.array([[0, np.iinfo(dt).max], [7, 1]], dt)
    x, t = gt.from_numpy(a), torch.from_numpy(a)
    assert x.dtype is mine and x.numpy().dtype == a.dtype and x.element_size() == t.element_size()
    assert gt.tensor(a).dtype is mine and gt.as_tensor(a).dtype is mine
    shown = re.sub(r",\s*placement=\w+\(\d*\)", "", repr(x))      # sharded in the GT_DEVICES passes
    assert shown.replace("gt.", "torch.") == repr(t) and str(x[0]).replace("gt.", "torch.") == str(t[0])
    a[1, 1] = 5                   # torch's from_numpy shares memory: so does gt's
    assert x[1, 1].item() == t[1, 1].item() == 5


@pytest.mark.parametrize("dt", WIDE)
def test_torch_checkpoint_format_both_ways(dt):
    a = np.array([[1, np.iinfo(dt).max, 7], [0, 3, 2]], dt)
    f = io.BytesIO()
    gt.save({"a": gt.from_numpy(a), "t": gt.from_numpy(a).t(), "s": gt.tensor(5, dtype=dt), "np": a}, f)
    f.seek(0)
    back = torch.load(f, weights_only=True)
    for key, want in (("a", a), ("t", a.T), ("s", np.array(5, dt)), ("np", a)):
        assert back[key].dtype == getattr(torch, dt) and back[key].numpy().tolist() == want.tolist(), key
    f = io.BytesIO()
    t = torch.from_numpy(a)
    torch.save({"a": t, "t": t.t(), "tail": t[1, 1:]}, f)
    f.seek(0)
    back = gt.load(f, weights_only=True)
    for key, want in (("a", a), ("t", a.T), ("tail", a[1, 1:])):
        assert back[key].dtype is getattr(gt, dt) and back[key].tolist() == want.tolist(), key


def test_collate_keeps_the_dtypes_as_torch():
    from gt.utils.data import default_collate

    for dt in WIDE:
        batch = [np.array([1, np.iinfo(dt).max], dt), np.array([3, 0], dt)]
        mine, theirs = default_collate(batch), torch.utils.data.default_collate(batch)
        assert _name(mine.dtype) == _name(theirs.dtype) == dt and mine.tolist() == theirs.tolist()
