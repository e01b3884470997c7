"""The Engine interface (gt/backend/engine.py): every engine defines every required primitive,
every primitive gt and lpm call on ``B`` is declared there, and the defaults of the optional
fast paths give the same results as the engines' own fast versions."""

import inspect
import os
import re

import numpy as np
import pytest

import gt
from gt.backend import B
from gt.backend.engine import Engine
from gt.backend.engine_defaults import FastPaths
from gt.backend.numpy_block_cache import BlockCache
from gt.backend.numpy_engine import NumpyEngine

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REQUIRED = sorted(Engine.__abstractmethods__)
OPTIONAL = ("supports_bfloat16", "matmul_lowp", "join_views", "recycle", "empty_reused", "clear_pool",
            "matmul_reused", "linear", "add_scaled_", "add_scaled_foreach_", "addmm_", "adam_step_", "adam_steps_", "sgd_step_", "layer_norm_fused",
            "layer_norm_fused_backward", "attention_fused", "attention_fused_backward", "encoder_layer_fused", "exp_",
            "masked_fill_", "add", "subtract", "multiply",
            "get_num_threads", "set_num_threads")


def _engine_classes():
    classes = [NumpyEngine]
    try:
        from gt.backend.torch_engine import TorchEngine
    except ImportError:          # torch is optional: its engine is checked where it is installed
        return classes
    return classes + [TorchEngine]


def _owner(cls, name):
    """The class in ``cls``'s MRO whose body defines ``name``."""
    return next(c for c in cls.__mro__ if name in vars(c))


def _names_used_on_B():
    used = set()
    pattern = re.compile(r"\bB\.([A-Za-z_]\w*)|\b(?:get|has)attr\(B,\s*[\"'](\w+)")
    for package in ("gt", "lpm"):
        for folder, _, files in os.walk(os.path.join(ROOT, package)):
            for name in files:
                if name.endswith(".py"):
                    with open(os.path.join(folder, name), encoding="utf-8") as f:
                        used.update(a or b for a, b in pattern.findall(f.read()))
    return used


def test_the_interface_lists_required_primitives_and_optional_fast_paths():
    assert len(REQUIRED) >= 60 and {"matmul", "getitem", "asarray", "name", "device"} <= set(REQUIRED)
    for name in OPTIONAL:
        assert name not in REQUIRED and _owner(Engine, name) in (Engine, FastPaths), name
    for name in REQUIRED + list(OPTIONAL):
        assert inspect.getdoc(getattr(Engine, name)) or name == "supports_bfloat16", f"{name} has no docstring"


@pytest.mark.parametrize("cls", _engine_classes(), ids=lambda c: c.name)
def test_every_engine_defines_every_required_primitive(cls):
    assert issubclass(cls, Engine)
    assert not cls.__abstractmethods__
    left = [name for name in REQUIRED if _owner(cls, name) is Engine]
    assert left == [], f"{cls.__name__} leaves {left} to Engine's NotImplementedError"
    engine = cls()
    assert engine.name in gt.backend.ENGINES and engine.device == "cpu"
    for name in REQUIRED:
        if name not in ("name", "device"):
            assert callable(getattr(engine, name)), name


def test_the_engine_in_use_is_an_engine():
    assert B.name == gt.get_backend()
    assert isinstance(object.__getattribute__(B, "_engine"), Engine)


def test_every_primitive_called_on_B_is_declared_on_engine():
    used = _names_used_on_B()
    assert len(used) >= 60 and {"matmul", "recycle", "join_views", "supports_bfloat16"} <= used
    undeclared = sorted(name for name in used if not hasattr(Engine, name))
    assert undeclared == [], f"B.{undeclared} is used in gt or lpm but not declared on gt.backend.engine.Engine"


def test_no_engine_is_probed_for_a_primitive():
    pattern = re.compile(r"hasattr\((B|engine)\b")
    probes = []
    for package in ("gt", "lpm"):
        for folder, _, files in os.walk(os.path.join(ROOT, package)):
            for name in files:
                if name.endswith(".py"):
                    with open(os.path.join(folder, name), encoding="utf-8") as f:
                        probes += [f"{name}: {line.strip()}" for line in f if pattern.search(line)]
    assert probes == []


def test_an_engine_missing_a_primitive_cannot_be_made_and_is_told_which():
    class NoErf(NumpyEngine):
        erf = Engine.erf

    with pytest.raises(TypeError, match="erf"):
        NoErf()


class _Plain(NumpyEngine):
    """The numpy engine with every optional fast path left to Engine's default."""

    join_views, recycle, empty_reused, clear_pool, matmul_reused, add_scaled_, addmm_ = (
        Engine.join_views, Engine.recycle, Engine.empty_reused, Engine.clear_pool, Engine.matmul_reused,
        Engine.add_scaled_, Engine.addmm_)

    def __init__(self):
        self.rng = np.random.default_rng()     # no pool: nothing here is recycled
        self._blas, self._threads = False, None
        self.blocks = BlockCache(min_bytes=1 << 62)   # nor cached: every array is plain np.empty


def test_the_default_fast_paths_give_the_engines_results():
    fast, plain = NumpyEngine(), _Plain()
    rng = np.random.default_rng(0)
    # large enough for the numpy engine's blocked update and pooled matmul to take their fast paths
    target = rng.standard_normal(3 * NumpyEngine.UPDATE_CHUNK).astype(np.float32)
    value = rng.standard_normal(target.size).astype(np.float32)
    a, b = fast.add_scaled_(target.copy(), value, -0.37), plain.add_scaled_(target.copy(), value, -0.37)
    np.testing.assert_array_equal(b, target + np.float32(-0.37) * value)
    # the BLAS axpy fuses the multiply and the add (one rounding, as torch's add_(alpha=)): as
    # close to the exact result as the default, or closer
    exact = target.astype(np.float64) + np.float64(np.float32(-0.37)) * value.astype(np.float64)
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)
    assert np.abs(a - exact).max() <= np.abs(b - exact).max()
    blocked = NumpyEngine()
    blocked._blas = False                  # as where numpy's BLAS cannot be called: the blocked loop
    np.testing.assert_array_equal(blocked.add_scaled_(target.copy(), value, -0.37), b)
    w = rng.standard_normal((64, 300)).astype(np.float32)
    g, h = rng.standard_normal((64, 40)).astype(np.float32), rng.standard_normal((40, 300)).astype(np.float32)
    for a_, b_ in [(g, h), (np.asfortranarray(g), h), (g, np.asfortranarray(h)), (h.T.copy().T.T, g.T.copy().T.T)]:
        c = w if a_.shape[0] == 64 else np.ascontiguousarray(w.T)
        np.testing.assert_allclose(fast.addmm_(c.copy(), a_, b_, -0.1), plain.addmm_(c.copy(), a_, b_, -0.1),
                                   rtol=1e-6, atol=1e-6)
    x = rng.standard_normal((600, 50)).astype(np.float32)
    y = rng.standard_normal((50, 700)).astype(np.float32)
    np.testing.assert_array_equal(plain.matmul_reused(x, y), fast.matmul_reused(x, y))
    np.testing.assert_array_equal(plain.matmul_reused(x, y), x @ y)
    big = np.ones((512, 1024), np.float32)
    assert plain.recycle(big) is False
    reused = plain.empty_reused((512, 1024), gt.float32)
    assert reused.shape == (512, 1024) and reused.dtype == np.float32 and reused is not big
    plain.clear_pool()
    whole = np.arange(24, dtype=np.float32).reshape(6, 4)
    shards = np.split(whole, 3, axis=0)
    assert plain.join_views(shards, 0) is None
    joined = fast.join_views(shards, 0)
    np.testing.assert_array_equal(joined, whole)
    assert np.shares_memory(joined, whole)


def test_low_precision_products_are_refused_where_the_engine_has_no_bfloat16():
    engine = NumpyEngine()
    assert engine.supports_bfloat16 is False
    x = np.ones((2, 3), np.float32)
    with pytest.raises(TypeError, match="the numpy engine has no (gt.)?bfloat16 arithmetic"):
        engine.matmul_lowp(x, x.T, gt.bfloat16)


def test_the_default_low_precision_product_matches_the_torch_engines():
    torch = pytest.importorskip("torch")
    from gt.backend.torch_engine import TorchEngine

    class PlainTorch(TorchEngine):
        matmul_lowp = Engine.matmul_lowp

    rng = np.random.default_rng(1)
    a = torch.from_numpy(rng.standard_normal((5, 7)).astype(np.float32))
    b = torch.from_numpy(rng.standard_normal((7, 3)).astype(np.float32))
    want = TorchEngine().matmul_lowp(a, b, gt.bfloat16)
    got = PlainTorch().matmul_lowp(a, b, gt.bfloat16)
    assert got.dtype == torch.float32 == want.dtype
    torch.testing.assert_close(got, want, rtol=0, atol=0)
    exact = (a.double() @ b.double()).float()
    assert not torch.equal(got, exact)      # the inputs were rounded to bfloat16
    torch.testing.assert_close(got, exact, rtol=0.05, atol=0.05)


@pytest.mark.parametrize("op", ["div", "mul", "add", "sub", "pow", "neg"])
def test_zero_d_float16_results_stay_float16_as_torchs(op):
    torch = pytest.importorskip("torch")
    got = []
    for lib in (gt, torch):
        a, b = lib.tensor(37, dtype=lib.float16), lib.tensor(27, dtype=lib.float16)
        r = {"div": a / b, "mul": a * b, "add": a + b, "sub": a - b, "pow": a ** b, "neg": -a}[op]
        got.append((str(r.dtype).split(".")[-1], r.item()))
    assert got[0] == got[1]
