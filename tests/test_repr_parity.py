"""``repr``/``str``/``format`` of gt tensors beside torch 2.13's, character for character, with
gt's spelling of dtypes (``dtype=gt.float64`` for ``dtype=torch.float64``): layout, summarising,
sci mode, ``set_printoptions``, suffixes, ``grad_fn`` names and ``Parameter``."""

import re

import numpy as np
import pytest

import gt
from gt.backend import print_options
from gt.sharding import use_mesh

torch = pytest.importorskip("torch")

_DTYPES = {"float32": (gt.float32, torch.float32), "float64": (gt.float64, torch.float64),
           "float16": (gt.float16, torch.float16), "int32": (gt.int32, torch.int32),
           "int64": (gt.int64, torch.int64), "bool": (gt.bool, torch.bool)}
_SUFFIX_BREAK = re.compile(r",\n +(?=[a-z_]+=)")


@pytest.fixture(autouse=True)
def default_printoptions():
    """torch's default print options, on one device: a tensor sharded over the mesh (the
    GT_DEVICES passes of the suite) prints gt's own ``placement=`` label too, and its ops are the
    mesh's nodes."""
    gt.set_printoptions(profile="default")
    torch.set_printoptions(profile="default")
    with use_mesh(1):
        yield
    gt.set_printoptions(profile="default")
    torch.set_printoptions(profile="default")


def _expected(t):
    """torch's repr in gt's spelling. ``gt.`` is three characters shorter than ``torch.``, so
    where a dtype suffix is printed the two may break the suffix line at different places:
    those breaks are compared joined."""
    text = repr(t).replace("torch.", "gt.")
    return _SUFFIX_BREAK.sub(", ", text) if "dtype=" in text else text


def _got(t):
    text = repr(t)
    return _SUFFIX_BREAK.sub(", ", text) if "dtype=" in text else text


def _pair(values, dtype="float32", requires_grad=False):
    gd, td = _DTYPES[dtype]
    arr = np.asarray(values)
    return gt.tensor(arr, dtype=gd, requires_grad=requires_grad), torch.tensor(arr, dtype=td, requires_grad=requires_grad)


CASES = [
    ([1.0, 2.5, -3.0], "float32"), ([[1.0, 2.0], [3.0, 4.0]], "float32"), (1.5, "float32"), (0.0, "float32"),
    (-0.0, "float64"), (3, "int64"), (True, "bool"), ([1e-5, 1.0, 1e5], "float32"), ([1e10, 2.0], "float64"),
    ([1e-10, 3e-10], "float32"), ([float("nan"), float("inf"), -0.0, 1.0], "float32"),
    ([float("nan"), float("-inf")], "float64"), ([0.1, 0.25], "float16"), ([60000.0, -2.0], "float16"),
    ([[-1, 200], [3, -40000]], "int32"), ([True, False, True], "bool"), ([[True], [True]], "bool"),
    ([123456789.0, 1.0], "float32"), ([1.0, 1000.0], "float32"), ([1.0, 1001.5], "float64"),
    (np.zeros((2, 0)), "float32"), (np.zeros((0,)), "float32"), (np.zeros((0,)), "int64"),
    (np.zeros((3, 0, 2)), "float64"), (np.arange(24.0).reshape(2, 3, 4) - 11.5, "float32"),
]


@pytest.mark.parametrize("values,dtype", CASES)
def test_repr_matches_torch(values, dtype):
    g, t = _pair(values, dtype)
    assert _got(g) == _expected(t)
    assert str(g) == repr(g)


def test_repr_of_large_tensors_is_summarised_as_torch():
    for shape in [(1001,), (40, 50), (5, 300), (11, 11, 11), (2, 1000), (6, 6, 6, 6)]:
        arr = np.arange(int(np.prod(shape)), dtype=np.float64).reshape(shape) * 0.37 - 5
        g, t = _pair(arr, "float32")
        assert _got(g) == _expected(t), shape
        g, t = _pair(arr.astype(np.int64), "int64")
        assert _got(g) == _expected(t), shape
    text = repr(gt.zeros(1000, 1000))
    assert text == repr(torch.zeros(1000, 1000)) and len(text) < 400


def test_long_rows_wrap_at_torch_linewidth():
    for arr in (np.linspace(-3, 3, 37), np.arange(100) * 1e6, np.arange(60).reshape(3, 20) / 7):
        g, t = _pair(arr, "float32")
        assert repr(g) == repr(t)


@pytest.mark.parametrize("options", [
    {"precision": 2}, {"precision": 8}, {"precision": 0}, {"threshold": 5}, {"threshold": 5, "edgeitems": 1},
    {"threshold": 5, "edgeitems": 0}, {"linewidth": 30}, {"linewidth": 120}, {"sci_mode": True},
    {"sci_mode": False}, {"profile": "short"}, {"profile": "full"}, {"profile": "short", "precision": 5},
])
def test_set_printoptions_matches_torch(options):
    gt.set_printoptions(**options)
    torch.set_printoptions(**options)
    for values in ([1.23456789, -2.5, 1000.125, 0.0078125], np.arange(30.0).reshape(5, 6) * 1.1,
                   [1e-8, 1.0, 5e9], [3.0, 4.0], np.arange(50), [[True, False]] * 4, 2.5):
        g, t = _pair(values, "float64" if np.asarray(values).dtype == np.float64 else "int64"
                     if np.asarray(values).dtype.kind == "i" else "bool")
        assert _got(g) == _expected(t), values
        g, t = _pair(values, "float32") if np.asarray(values).dtype.kind != "b" else (g, t)
        assert _got(g) == _expected(t), values


def test_printoptions_defaults_and_reset_are_torch_ones():
    assert print_options.PRINT_OPTIONS == {"precision": 4, "threshold": 1000, "edgeitems": 3,
                                           "max_line_width": 80, "sci_mode": None}
    gt.set_printoptions(precision=2, threshold=3, linewidth=20, sci_mode=True)
    gt.set_printoptions(profile="default")          # resets sci_mode too, as torch's
    g, t = _pair(np.arange(500) / 3, "float32")
    assert repr(g) == repr(t)


def test_requires_grad_grad_fn_and_parameter_repr():
    g, t = _pair([[1.0, -2.0], [3.5, 4.0]], requires_grad=True)
    assert repr(g) == repr(t)
    assert repr(g * 2) == repr(t * 2) and repr(g.sum()) == repr(t.sum())
    g64, t64 = _pair(np.linspace(0, 1, 20), "float64", requires_grad=True)
    assert _got(g64 + 1) == _expected(t64 + 1)
    gp, tp = gt.nn.Parameter(g.detach()), torch.nn.Parameter(t.detach())
    assert repr(gp) == repr(tp) and repr(gp).startswith("Parameter containing:\ntensor(")
    assert repr(gt.nn.Parameter(gt.ones(2), requires_grad=False)) == repr(torch.nn.Parameter(torch.ones(2), False))


GRAD_FN_OPS = {
    "add": lambda x, m: x + 1, "mul": lambda x, m: x * 2, "sub": lambda x, m: x - 1, "div": lambda x, m: x / 2,
    "mm": lambda x, m: x.mm(x.t()), "matmul": lambda x, m: x @ x.t(), "dot": lambda x, m: x[0] @ x[1],
    "mv": lambda x, m: x @ x[0], "vm": lambda x, m: x[0] @ x.t(), "bmm": lambda x, m: x[None] @ x.t()[None],
    "sum": lambda x, m: x.sum(), "sum_dim": lambda x, m: x.sum(0), "mean": lambda x, m: x.mean(),
    "mean_dim": lambda x, m: x.mean(1), "max": lambda x, m: x.max(), "min": lambda x, m: x.min(),
    "amax": lambda x, m: x.amax(0), "relu": lambda x, m: x.relu(), "softmax": lambda x, m: x.softmax(-1),
    "view": lambda x, m: x.view(-1), "reshape": lambda x, m: x.reshape(2, 2), "flatten": lambda x, m: x.flatten(),
    "unsqueeze": lambda x, m: x.unsqueeze(0), "squeeze": lambda x, m: x[None].squeeze(),
    "squeeze_dim": lambda x, m: x[None].squeeze(0), "squeeze_dims": lambda x, m: x[None].squeeze((0,)),
    "t": lambda x, m: x.t(), "T": lambda x, m: x.T, "mT": lambda x, m: x.mT, "transpose": lambda x, m: x.transpose(0, 1),
    "permute": lambda x, m: x.permute(1, 0), "select": lambda x, m: x[0], "select2": lambda x, m: x[:, 1],
    "slice": lambda x, m: x[1:], "slice_all": lambda x, m: x[:], "alias": lambda x, m: x[...],
    "none": lambda x, m: x[None], "index": lambda x, m: x[[0, 1]], "mask": lambda x, m: x[x > 0],
    "cat": lambda x, m: m.cat([x, x]), "stack": lambda x, m: m.stack([x, x]), "clone": lambda x, m: x.clone(),
    "contiguous": lambda x, m: x.t().contiguous(), "expand": lambda x, m: x[0].expand(3, 2), "exp": lambda x, m: x.exp(),
    "tanh": lambda x, m: x.tanh(), "sigmoid": lambda x, m: x.sigmoid(), "neg": lambda x, m: -x,
    "log_softmax": lambda x, m: x.log_softmax(-1), "pow": lambda x, m: x ** 2,
    "pow_tensor": lambda x, m: x.abs() ** x, "rpow": lambda x, m: 2 ** x, "rsub": lambda x, m: 1 - x,
    "sub_tensor": lambda x, m: x - x, "clamp": lambda x, m: x.clamp(0, 1), "clamp_min": lambda x, m: x.clamp(min=0),
    "clamp_tensor": lambda x, m: x.clamp(m.zeros(2, 2), m.ones(2, 2)), "double": lambda x, m: x.double(),
    "to": lambda x, m: x.to(m.float64), "std": lambda x, m: x.std(correction=1), "std_dim": lambda x, m: x.std(0, correction=1),
    "norm": lambda x, m: x.norm(), "floor": lambda x, m: x.floor(), "sign": lambda x, m: x.sign(),
    "round": lambda x, m: x.round(),
}


@pytest.mark.parametrize("name", ["sin", "cos", "tan", "asin", "atan", "sinh", "cosh", "asinh", "atanh", "log1p",
                                  "expm1", "exp2", "erf", "erfc", "erfinv", "lgamma", "digamma", "i0", "sinc",
                                  "sqrt", "log", "abs", "trunc", "ceil"])
def test_math_function_grad_fn_names(name):
    g, t = _pair([0.3, 0.6], requires_grad=True)
    assert getattr(g * 1, name)().grad_fn.name() == getattr(t * 1, name)().grad_fn.name()


@pytest.mark.parametrize("name", ["ndtri", "i0e", "i1", "i1e", "erfcx", "log_ndtr", "entr", "gammaln", "psi"])
def test_special_function_grad_fn_names(name):
    g, t = _pair([0.3, 0.6], requires_grad=True)
    assert getattr(gt.special, name)(g * 1).grad_fn.name() == getattr(torch.special, name)(t * 1).grad_fn.name()


@pytest.mark.parametrize("op", sorted(GRAD_FN_OPS))
def test_grad_fn_names_match_torch(op):
    g, t = _pair([[1.0, -2.0], [3.0, 4.0]], requires_grad=True)
    g, t = g * 1, t * 1
    got, want = GRAD_FN_OPS[op](g, gt), GRAD_FN_OPS[op](t, torch)
    assert got.grad_fn.name() == want.grad_fn.name()
    assert _got(got) == _expected(want)


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("shape", [(3,), (4, 3), (2, 4, 3)])
def test_linear_and_layer_norm_grad_fn_names(bias, shape):
    gl, tl = gt.nn.Linear(3, 2, bias=bias), torch.nn.Linear(3, 2, bias=bias)
    assert gl(gt.ones(*shape)).grad_fn.name() == tl(torch.ones(*shape)).grad_fn.name()
    assert gt.nn.LayerNorm(3)(gt.ones(*shape)).grad_fn.name() == torch.nn.LayerNorm(3)(torch.ones(*shape)).grad_fn.name()


def test_format_of_zero_dim_tensors():
    for value, spec in ((2.5, ".3f"), (2.5, ""), (1e-7, ".2e"), (7, "04d"), (True, "")):
        g, t = _pair(value, "float32" if isinstance(value, float) else "bool" if value is True else "int64")
        assert format(g, spec) == format(t, spec) and f"{g}" == f"{t}"
    g, t = _pair([1.0, 2.0])
    assert format(g, "") == format(t, "") == str(t)
    with pytest.raises(TypeError):
        format(g, ".2f")
    with pytest.raises(TypeError):
        format(torch.nn.Parameter(torch.tensor(1.5)), ".2f")
    with pytest.raises(TypeError):
        format(gt.nn.Parameter(gt.tensor(1.5)), ".2f")
    assert format(gt.nn.Parameter(gt.tensor(1.5)), "") == format(torch.nn.Parameter(torch.tensor(1.5)), "")


def test_bfloat16_repr_where_the_engine_has_it():
    try:
        g = gt.tensor([1.5, 2.25, -3.0, 1e5], dtype=gt.bfloat16)
    except TypeError:
        pytest.skip("this engine has no bfloat16")
    assert _got(g) == _expected(torch.tensor([1.5, 2.25, -3.0, 1e5], dtype=torch.bfloat16))


def _random_case(rng):
    ndim = int(rng.integers(0, 4))
    shape = tuple(int(n) for n in rng.integers(0, 6 if ndim > 2 else 30 if ndim == 2 else 1200, ndim))
    dtype = str(rng.choice(list(_DTYPES)))
    size = int(np.prod(shape))
    if dtype == "bool":
        return rng.random(size).reshape(shape) < 0.5, dtype
    if dtype.startswith("int"):
        return rng.integers(-10 ** 6, 10 ** 6, size).reshape(shape), dtype
    scale = 10.0 ** rng.integers(-9, 9, size) if rng.random() < 0.3 else 10.0 ** rng.integers(-6, 6)
    values = np.round(rng.normal(size=size) * scale, int(rng.integers(0, 6)))
    values[rng.random(size) < 0.05] = rng.choice([np.nan, np.inf, -np.inf, -0.0])
    return np.clip(values, -6e4, 6e4).reshape(shape) if dtype == "float16" else values.reshape(shape), dtype


def test_random_tensors_print_as_torch():
    rng = np.random.default_rng(0)
    for case in range(150):
        values, dtype = _random_case(rng)
        g, t = _pair(values, dtype)
        assert _got(g) == _expected(t), (case, dtype, values.shape)
