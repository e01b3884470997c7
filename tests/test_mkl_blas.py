"""MKL as the numpy engine's BLAS for products (gt/backend/mkl.py, ``GT_BLAS``): its products
against numpy's for every layout, the same bits for any thread count and any split of the rows
(what gt's bit-for-bit promises need), the strided batch product, the choice by ``GT_BLAS`` and
the CPU, and a Linear layer trained with it beside torch."""

import numpy as np
import pytest

from gt import config
from gt.backend import mkl, numpy_blas

pytestmark = pytest.mark.first_pass      # the library's own arithmetic: no GT_* variable changes it


@pytest.fixture(scope="module")
def lib():
    found, said = mkl.load(avx512=True)
    if found is None:
        pytest.skip(f"MKL is not usable here: {said}")
    return found


def _layouts(rng, m, k, n, dtype):
    a = rng.standard_normal((m, k)).astype(dtype)
    b = rng.standard_normal((k, n)).astype(dtype)
    wide_a = rng.standard_normal((m, k + 3)).astype(dtype)[:, 1:k + 1]     # a leading dimension past the row
    return {"rows": (a, b), "columns": (np.asfortranarray(a), np.asfortranarray(b)),
            "transposed": (np.ascontiguousarray(a.T).T, np.ascontiguousarray(b.T).T), "strided": (wide_a, b)}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("layout", ["rows", "columns", "transposed", "strided"])
def test_products_match_numpy_for_every_layout(lib, dtype, layout):
    rng = np.random.default_rng(0)
    a, b = _layouts(rng, 37, 53, 29, dtype)[layout]
    out = np.full((37, 29), np.nan, dtype)            # beta 0: whatever c held is never read
    assert lib.gemm_(out, a, b, 1.0, 0.0)
    np.testing.assert_allclose(out, a.astype(np.float64) @ b, rtol=2e-5 if dtype == np.float32 else 1e-12, atol=1e-5)


def test_layouts_the_kernel_cannot_take_are_declined_and_c_untouched(lib):
    a = np.arange(12, dtype=np.float32).reshape(4, 3)
    b = np.ones((3, 2), np.float32)
    out = np.full((4, 2), 7.0, np.float32)
    assert not lib.gemm_(out, a[::-1], b, 1.0, 0.0)              # rows running backwards
    assert not lib.gemm_(out, a[:, ::2][:, :1].repeat(3, 1)[::1, ::-1], b, 1.0, 0.0)
    assert not lib.gemm_(out, a.astype(np.float64), b, 1.0, 0.0)  # mixed dtypes
    assert (out == 7.0).all()


def test_the_bits_do_not_depend_on_the_thread_count_nor_on_how_the_rows_are_split(lib):
    """Strict reproducible mode: a long sum is not split between threads, and a shard's rows give
    the whole batch's bits (without it MKL's (32, 40000) x (40000, 256) product differed in both)."""
    rng = np.random.default_rng(1)
    a = rng.standard_normal((32, 20000), dtype=np.float32)
    b = rng.standard_normal((20000, 64), dtype=np.float32)
    before = lib.get_num_threads()
    results = []
    try:
        for threads in (1, 2):
            lib.set_num_threads(threads)
            assert lib.get_num_threads() == threads
            whole = np.empty((32, 64), np.float32)
            lib.gemm_(whole, a, b, 1.0, 0.0)
            parts = np.empty((32, 64), np.float32)
            for lo in range(0, 32, 8):
                lib.gemm_(parts[lo:lo + 8], a[lo:lo + 8], b, 1.0, 0.0)
            np.testing.assert_array_equal(parts, whole)
            results.append(whole)
    finally:
        lib.set_num_threads(before)
    np.testing.assert_array_equal(results[0], results[1])


def test_the_strided_batch_product_takes_broadcast_and_transposed_operands(lib):
    rng = np.random.default_rng(2)
    a = rng.standard_normal((6, 5, 7)).astype(np.float32)
    b_one = rng.standard_normal((7, 4)).astype(np.float32)
    b = np.broadcast_to(b_one, (6, 7, 4))                   # a batch stride of 0
    out = np.empty((6, 5, 4), np.float32)
    assert lib.gemm_batched_(out, a, b)
    np.testing.assert_allclose(out, a @ b_one, rtol=1e-5, atol=1e-5)
    at = np.ascontiguousarray(np.swapaxes(a, 1, 2)).swapaxes(1, 2)
    assert lib.gemm_batched_(out, at, b)
    np.testing.assert_allclose(out, a @ b_one, rtol=1e-5, atol=1e-5)
    assert not lib.gemm_batched_(out, a[::-1], b)          # a batch running backwards: declined


def test_gt_blas_names_a_bad_value(monkeypatch):
    monkeypatch.setenv("GT_BLAS", "openblas")
    with pytest.raises(config.EnvironmentVariableError, match=r"GT_BLAS must be one of numpy, mkl.*'openblas'"):
        config.check_environment()


def test_gt_blas_mkl_without_the_library_says_why(monkeypatch):
    monkeypatch.setenv("GT_BLAS", "mkl")
    monkeypatch.setattr(mkl, "_candidates", lambda: iter(()))
    with pytest.raises(config.EnvironmentVariableError, match="GT_BLAS=mkl, but the mkl package is not installed"):
        numpy_blas._products_library()


@pytest.mark.parametrize("setting", [None, "numpy", "NumPy"])
def test_numpys_blas_is_the_default_and_mkl_only_when_asked(monkeypatch, setting):
    if setting is None:
        monkeypatch.delenv("GT_BLAS", raising=False)
    else:
        monkeypatch.setenv("GT_BLAS", setting)
    monkeypatch.setattr(mkl, "load", lambda avx512: pytest.fail("MKL should not be loaded"))
    assert numpy_blas._products_library() is None
    monkeypatch.setenv("GT_BLAS", "mkl")
    monkeypatch.setattr(mkl, "load", lambda avx512: ("the library", "said"))
    assert numpy_blas._products_library() == "the library"


@pytest.fixture
def engine_on_mkl(lib):
    """The numpy engine with MKL as the library it hands products to, as ``GT_BLAS=mkl`` sets up
    (set on the engine itself and put back after: monkeypatch would delete it through the proxy)."""
    from gt.backend import B, get_backend

    if get_backend() != "numpy":
        pytest.skip("the numpy engine's products")
    before = B._library()                         # found first, so what is set below is what stays
    B._blas = lib
    try:
        yield B
    finally:
        B._blas = before


def test_a_linear_layer_trains_as_torchs_with_mkl(engine_on_mkl):
    import torch

    import gt
    import gt.optim as optim
    from gt.client import nn

    calls = []
    gemm = engine_on_mkl._blas.gemm_
    engine_on_mkl._blas.gemm_ = lambda *args: calls.append(1) or gemm(*args)
    try:
        rng = np.random.default_rng(0)
        w = rng.standard_normal((16, 300)).astype(np.float32) * 0.05
        xs = [rng.standard_normal((24, 300)).astype(np.float32) for _ in range(3)]
        lin, tl = nn.Linear(300, 16), torch.nn.Linear(300, 16)
        lin.weight.data, lin.bias.data = gt.from_numpy(w.copy()), gt.zeros(16)
        tl.weight.data, tl.bias.data = torch.from_numpy(w.copy()), torch.zeros(16)
        opt, topt = optim.SGD(lin.parameters(), lr=0.1), torch.optim.SGD(tl.parameters(), lr=0.1)
        for x in xs:
            loss = (lin(gt.from_numpy(x)).relu() ** 2).mean()
            opt.zero_grad(), loss.backward(), opt.step()
            tloss = (tl(torch.from_numpy(x)).relu() ** 2).mean()
            topt.zero_grad(), tloss.backward(), topt.step()
        np.testing.assert_allclose(lin.weight.numpy(), tl.weight.detach().numpy(), rtol=1e-5, atol=1e-6)
        assert len(calls) == 6                     # each step: the forward and the weight gradient
        stacked = rng.standard_normal((5, 24, 300)).astype(np.float32)
        y = gt.from_numpy(stacked) @ gt.from_numpy(w.T.copy())
        np.testing.assert_allclose(y.numpy(), stacked @ w.T, rtol=1e-4, atol=1e-4)
    finally:
        del engine_on_mkl._blas.gemm_


def test_the_library_names_its_version_as_the_package_gives_it(lib):
    from importlib import metadata

    try:
        package = metadata.version("mkl")          # "2026.2.1"; MKL's own string says "Version 2026.2"
    except metadata.PackageNotFoundError:
        pytest.skip("MKL came from elsewhere than the mkl package")
    assert lib.name == "mkl " + ".".join(package.split(".")[:2])
