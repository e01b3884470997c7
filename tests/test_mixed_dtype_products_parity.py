"""Products of two dtypes beside torch 2.13: ``matmul`` and its family (``@``, ``mm``, ``mv``, ``bmm``,
``dot``, ``vdot``, the ``add*`` products, ``linear``, ``bilinear``, ``inner``, ``tensordot``,
``multi_dot``, ``chain_matmul``, ``einsum`` contractions, convolutions, ``linalg.vecdot``/``cross``/
``solve``/``lstsq``) keep one dtype: float32 with float64, int64, bfloat16 or complex64, and int32 with
int64, raise torch's error type with torch's words, and bool operands its NotImplementedError. Where
torch computes (one dtype, ints included; ``outer``, ``addr``, ``kron``, a 0-d ``inner``, elementwise
``einsum``, and float32 with bfloat16 under autocast) gt computes the same values in the same dtype.
``std_mean``/``var_mean`` take no ``out=``, as torch's."""

import warnings

import numpy as np
import pytest

import gt
from gt.backend import B

torch = pytest.importorskip("torch")

_DTYPES = {"f32": "float32", "f64": "float64", "i64": "int64", "i32": "int32", "bf16": "bfloat16",
           "f16": "float16", "c64": "complex64", "b": "bool"}
PAIRS = [("f32", "f64"), ("f64", "f32"), ("f32", "i64"), ("i64", "f32"), ("i32", "i64"), ("f32", "bf16"),
         ("bf16", "f32"), ("f32", "f16"), ("c64", "f32"), ("f32", "c64"), ("b", "b"), ("i64", "i64"), ("i32", "i32")]


def _make(m, shape, dtype):
    values = (np.arange(int(np.prod(shape))).reshape(shape) % 5 + 1).astype(np.float64)
    return m.tensor(values).to(getattr(m, _DTYPES[dtype]))


def _ones(m, *shape, like):
    return m.ones(*shape, dtype=like.dtype)


# op: (shape of a, shape of b, the call); a and b take the pair's dtypes
OPS = {
    "mm": ((3, 4), (4, 5), lambda m, a, b: m.mm(a, b)),
    "mv": ((3, 4), (4,), lambda m, a, b: m.mv(a, b)),
    "matmul_1d_1d": ((4,), (4,), lambda m, a, b: m.matmul(a, b)),
    "matmul_1d_2d": ((4,), (4, 3), lambda m, a, b: a @ b),
    "matmul_3d_1d": ((2, 3, 4), (4,), lambda m, a, b: a @ b),
    "matmul_3d_2d": ((2, 3, 4), (4, 5), lambda m, a, b: a @ b),
    "matmul_2d_3d": ((3, 4), (2, 4, 5), lambda m, a, b: a @ b),
    "linalg_matmul": ((2, 3, 4), (2, 4, 5), lambda m, a, b: m.linalg.matmul(a, b)),
    "bmm": ((2, 3, 4), (2, 4, 5), lambda m, a, b: m.bmm(a, b)),
    "dot": ((4,), (4,), lambda m, a, b: m.dot(a, b)),
    "vdot": ((4,), (4,), lambda m, a, b: m.vdot(a, b)),
    "addmm_mat2": ((3, 4), (4, 5), lambda m, a, b: m.addmm(_ones(m, 3, 5, like=a), a, b)),
    "addmm_mat1": ((3, 4), (4, 5), lambda m, a, b: m.addmm(_ones(m, 3, 5, like=b), a, b)),
    "addmm_input": ((3, 4), (5,), lambda m, a, b: m.addmm(b, a, _ones(m, 4, 5, like=a))),
    "addmv_vec": ((3, 4), (4,), lambda m, a, b: m.addmv(_ones(m, 3, like=a), a, b)),
    "addmv_input": ((3, 4), (3,), lambda m, a, b: m.addmv(b, a, _ones(m, 4, like=a))),
    "baddbmm_batch2": ((2, 3, 4), (2, 4, 5), lambda m, a, b: m.baddbmm(_ones(m, 2, 3, 5, like=a), a, b)),
    "baddbmm_batch1": ((2, 3, 4), (2, 4, 5), lambda m, a, b: m.baddbmm(_ones(m, 2, 3, 5, like=b), a, b)),
    "baddbmm_input": ((2, 3, 4), (3, 5), lambda m, a, b: m.baddbmm(b, a, _ones(m, 2, 4, 5, like=a))),
    "addbmm_batch2": ((2, 3, 4), (2, 4, 5), lambda m, a, b: m.addbmm(_ones(m, 3, 5, like=a), a, b)),
    "addbmm_input": ((2, 3, 4), (3, 5), lambda m, a, b: m.addbmm(b, a, _ones(m, 2, 4, 5, like=a))),
    "linear": ((2, 4), (3, 4), lambda m, a, b: m.nn.functional.linear(a, b)),
    "linear_3d": ((2, 2, 4), (3, 4), lambda m, a, b: m.nn.functional.linear(a, b)),
    "linear_weight_and_bias": ((2, 4), (3, 4), lambda m, a, b: m.nn.functional.linear(a, b, _ones(m, 3, like=b))),
    "linear_bias": ((2, 4), (3,), lambda m, a, b: m.nn.functional.linear(a, _ones(m, 3, 4, like=a), b)),
    "linear_1d_bias": ((4,), (3,), lambda m, a, b: m.nn.functional.linear(a, _ones(m, 3, 4, like=a), b)),
    "bilinear": ((2, 4), (3, 4, 4), lambda m, a, b: m.nn.functional.bilinear(a, a, b)),
    "inner": ((3, 4), (5, 4), lambda m, a, b: m.inner(a, b)),
    "tensordot": ((3, 4), (4, 5), lambda m, a, b: m.tensordot(a, b, dims=1)),
    "multi_dot": ((3, 4), (4, 4), lambda m, a, b: m.linalg.multi_dot([a, a.T, a, b])),
    "chain_matmul": ((3, 4), (4, 4), lambda m, a, b: m.chain_matmul(a, b, b)),
    "einsum_contraction": ((3, 4), (4, 5), lambda m, a, b: m.einsum("ij,jk->ik", a, b)),
    "einsum_dot": ((4,), (4,), lambda m, a, b: m.einsum("i,i->", a, b)),
    "linalg_vecdot": ((3, 4), (3, 4), lambda m, a, b: m.linalg.vecdot(a, b)),
    "linalg_cross": ((2, 3), (2, 3), lambda m, a, b: m.linalg.cross(a, b)),
    "conv1d": ((1, 2, 5), (3, 2, 2), lambda m, a, b: m.nn.functional.conv1d(a, b)),
    "conv2d_bias": ((1, 2, 4, 4), (3,), lambda m, a, b: m.nn.functional.conv2d(a, _ones(m, 3, 2, 2, 2, like=a), b)),
    "conv_transpose1d": ((1, 2, 5), (2, 3, 2), lambda m, a, b: m.nn.functional.conv_transpose1d(a, b)),
    "cdist": ((3, 4), (2, 4), lambda m, a, b: m.cdist(a, b)),
    # products torch promotes: elementwise underneath
    "outer": ((3,), (4,), lambda m, a, b: m.outer(a, b)),
    "addr": ((3,), (4,), lambda m, a, b: m.addr(_ones(m, 3, 4, like=a), a, b)),
    "kron": ((2, 2), (2, 3), lambda m, a, b: m.kron(a, b)),
    "inner_0d": ((), (5, 4), lambda m, a, b: m.inner(a, b)),
    "einsum_outer": ((3,), (4,), lambda m, a, b: m.einsum("i,j->ij", a, b)),
    "einsum_elementwise": ((4,), (4,), lambda m, a, b: m.einsum("i,i->i", a, b)),
}
# (op, pair) where torch's kernels differ by more than the dtype check (no kernel for the dtype; the
# bool/complex conv kernels' own words, torch's MKLDNN wording for a bfloat16 input)
_SKIP = {("conv_transpose1d", ("i32", "i32")), ("conv_transpose1d", ("i32", "i64")),
         ("linalg_cross", ("b", "b")), ("linalg_vecdot", ("f32", "i64")),
         ("conv1d", ("bf16", "f32")), ("conv1d", ("c64", "f32")), ("conv_transpose1d", ("bf16", "f32")),
         ("conv_transpose1d", ("c64", "f32")), ("cdist", ("bf16", "f32"))}


def _outcome(m, op, pair):
    sa, sb, call = OPS[op]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")         # chain_matmul's deprecation
            return call(m, _make(m, sa, pair[0]), _make(m, sb, pair[1]))
    except (RuntimeError, NotImplementedError, TypeError) as exc:
        return exc


@pytest.mark.parametrize("op", sorted(OPS))
def test_products_of_two_dtypes_as_torch(op):
    for pair in PAIRS:
        if (op, pair) in _SKIP or ("bf16" in pair and not B.supports_bfloat16):
            continue
        want, got = _outcome(torch, op, pair), _outcome(gt, op, pair)
        if isinstance(want, Exception):
            assert type(got) is type(want), (op, pair, want, got)
            assert str(got).startswith(str(want)), (op, pair, str(want), str(got))
            continue
        assert not isinstance(got, Exception), (op, pair, got)
        assert got.dtype.name == str(want.dtype).split(".")[-1], (op, pair)
        np.testing.assert_allclose(got.float().numpy() if got.dtype.name == "bfloat16" else got.numpy(),
                                   want.float().numpy() if want.dtype == torch.bfloat16 else want.numpy(),
                                   rtol=1e-6)


def test_linear_layer_refuses_an_int_input_and_computes_int64_products():
    layer = gt.nn.Linear(4, 3)
    with pytest.raises(RuntimeError, match="^mat1 and mat2 must have the same dtype, but got Long and Float$"):
        layer(gt.ones(2, 4, dtype=gt.int64))
    with pytest.raises(RuntimeError, match="^expected m1 and m2 to have the same dtype, but got: float != double$"):
        gt.ones(2, 4) @ layer.weight.T.double()
    # torch computes int64 (and int32) products on the CPU: gt too, without widening
    a, b = np.arange(12).reshape(3, 4) - 5, np.arange(20).reshape(4, 5) * 7
    for dtype in ("int64", "int32"):
        got = gt.from_numpy(a.astype(dtype)) @ gt.from_numpy(b.astype(dtype))
        assert got.dtype.name == dtype
        np.testing.assert_array_equal(got.numpy(), a @ b)


@pytest.mark.skipif(not B.supports_bfloat16, reason="autocast needs the torch engine (bfloat16)")
def test_float32_meets_bfloat16_under_autocast_as_torch():
    a, w = np.ones((3, 4), np.float32), np.full((5, 4), 0.5, np.float32)
    ta, tw = torch.tensor(a), torch.tensor(w).bfloat16()
    ga, gw = gt.tensor(a), gt.tensor(w).to(gt.bfloat16)
    with torch.autocast("cpu", dtype=torch.bfloat16), gt.autocast("bfloat16"):
        for fn in (lambda m, x, y: x @ y.T, lambda m, x, y: m.nn.functional.linear(x, y),
                   lambda m, x, y: m.linalg.vecdot(x[:, :4], y[:3])):
            want, got = fn(torch, ta, tw), fn(gt, ga, gw)
            np.testing.assert_allclose(got.float().numpy(), want.float().numpy(), rtol=1e-2)
        # float64 is never lowered: still refused, in torch's words after its cast
        with pytest.raises(RuntimeError, match="expected m1 and m2 to have the same dtype"):
            torch.ones(3, 4) @ torch.ones(4, 5, dtype=torch.float64)
        with pytest.raises(RuntimeError, match="expected m1 and m2 to have the same dtype"):
            ga @ gt.ones(4, 5, dtype=gt.float64)
        # mv and dot are not autocast ops: refused as outside
        with pytest.raises(RuntimeError, match="^dot : expected both vectors to have same dtype, but found Float "
                                               "and BFloat16$"):
            gt.dot(ga[0], gw[0])


def test_solvers_refuse_two_dtypes_in_torchs_words():
    a, b = gt.eye(3) * 2, gt.ones(3, 2, dtype=gt.float64)
    for call, message in ((lambda: gt.linalg.solve(a, b), "linalg.solve: Expected A and B to have the same dtype, but "
                           "found A of type Float and B of type Double instead"),
                          (lambda: gt.linalg.lstsq(a, b), "torch.linalg.lstsq: Expected input and other to have the "
                           "same dtype, but got input's dtype Float and other's dtype Double"),
                          (lambda: gt.cholesky_solve(b, a), "Expected b and A to have the same dtype, but found b of "
                           "type Double and A of type Float instead."),
                          (lambda: gt.linalg.lu_solve(*gt.linalg.lu_factor(a), b), "linalg.lu_solve: Expected LU and B "
                           "to have the same dtype, but found LU of type Float and B of type Double instead")):
        with pytest.raises(RuntimeError) as exc:
            call()
        assert str(exc.value) == message


@pytest.mark.parametrize("name", ["std_mean", "var_mean"])
def test_std_mean_and_var_mean_take_no_out(name):
    x = gt.ones(3)
    for out in ((gt.empty(()), gt.empty(())), None):
        with pytest.raises(TypeError, match=f"^{name}\\(\\) received an invalid combination of arguments"):
            getattr(gt, name)(x, out=out)
        with pytest.raises(TypeError, match=f"^{name}\\(\\) received an invalid combination of arguments"):
            getattr(torch, name)(torch.ones(3), out=out)
    np.testing.assert_allclose([t.item() for t in getattr(gt, name)(x)], [0.0, 1.0])
