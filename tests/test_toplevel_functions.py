"""torch's top-level aliases and functional forms at gt's top level (gt/tensor/toplevel_functions.py,
gt/nn/toplevel_functional.py): each beside torch 2.13 on the same inputs (values, dtypes, shapes,
gradients), with torch's errors."""

import os
import warnings

import numpy as np
import pytest

import gt
from gt.backend import print_options
from gt.sharding.mesh import use_mesh
from helpers import check_grad, compare_with_torch, nonzero, positive, randn, torch_or_skip

torch = torch_or_skip()

DTYPES = ["bool", "int32", "int64", "float16", "bfloat16", "float32", "float64"]


def _same(g, t, exact=True):
    """gt result ``g`` equals torch result ``t``: type, shape, dtype and values (tuples elementwise)."""
    if isinstance(t, (tuple, list)):
        assert isinstance(g, (tuple, list)) and len(g) == len(t)
        for a, b in zip(g, t):
            _same(a, b, exact)
        return
    assert isinstance(g, gt.Tensor), type(g)
    assert g.shape == tuple(t.shape), (g.shape, t.shape)
    assert g.dtype.name == str(t.dtype).replace("torch.", ""), (g.dtype, t.dtype)
    if exact:
        np.testing.assert_array_equal(g.numpy(), t.detach().numpy())
    else:
        np.testing.assert_allclose(g.numpy(), t.detach().numpy(), rtol=1e-5, atol=1e-6)


def _both(data, dtype=None):
    arr = np.asarray(data)
    g = gt.tensor(arr) if dtype is None else gt.tensor(arr, dtype=getattr(gt, dtype))
    t = torch.tensor(arr) if dtype is None else torch.tensor(arr, dtype=getattr(torch, dtype))
    return g, t


# ---- reductions, copies, arithmetic: values and dtypes beside torch ------------------------------------
INT = np.array([[3, 0, -2], [1, 5, 4]])
FLOAT = np.array([[0.5, 0.0, -1.5], [2.0, np.nan, 1.0]])
BOOL = np.array([[True, False, True], [True, True, True]])
EMPTY = np.zeros((0, 3))

FORWARD = [
    ("all", lambda L, x: L.all(x), [INT, FLOAT, BOOL, EMPTY, np.array(2.0)]),
    ("all_dim", lambda L, x: L.all(x, 1), [INT, FLOAT, BOOL, EMPTY]),
    ("all_neg_keepdim", lambda L, x: L.all(x, dim=-2, keepdim=True), [INT, BOOL]),
    ("all_dims", lambda L, x: L.all(x, dim=(0, 1)), [INT, BOOL]),
    ("any", lambda L, x: L.any(x), [INT, FLOAT, BOOL, EMPTY, np.array(0)]),
    ("any_dim", lambda L, x: L.any(x, 0, True), [INT, FLOAT, BOOL, EMPTY]),
    ("detach", lambda L, x: L.detach(x), [INT, FLOAT]),
    ("t", lambda L, x: L.t(x), [INT, FLOAT[0], np.array(1.5)]),
    ("masked_fill", lambda L, x: L.masked_fill(x, L.tensor(BOOL), 7), [INT, FLOAT]),
    ("masked_fill_float_into_int", lambda L, x: L.masked_fill(x, L.tensor(BOOL), 2.7), [INT]),
    ("multiply_scalar", lambda L, x: L.multiply(x, 3), [INT, FLOAT, BOOL]),
    ("multiply_scalar_first", lambda L, x: L.multiply(2.5, x), [INT]),
    ("subtract_alpha", lambda L, x: L.subtract(x, 2, alpha=3), [INT, FLOAT]),
    ("subtract_tensor", lambda L, x: L.subtract(x, L.tensor([1.0, 2.0, 3.0]), alpha=0.5), [INT, FLOAT]),
    ("rsub", lambda L, x: L.rsub(x, 10), [INT, FLOAT]),
    ("rsub_alpha", lambda L, x: L.rsub(x, L.tensor([1, 2, 3]), alpha=2), [INT, FLOAT]),
    ("divide", lambda L, x: L.divide(x, 4), [INT, FLOAT, BOOL]),
    ("divide_trunc", lambda L, x: L.divide(x, -4, rounding_mode="trunc"), [INT, FLOAT]),
    ("divide_trunc_float_by_zero", lambda L, x: L.divide(x, 0.0, rounding_mode="trunc"), [FLOAT]),
    ("divide_trunc_int32", lambda L, x: L.divide(x.int(), 3, rounding_mode="trunc"), [INT]),
    ("divide_bool_by_int", lambda L, x: L.divide(x, 2, rounding_mode="trunc"), [BOOL]),
    ("divide_trunc_tensor", lambda L, x: L.divide(x, L.tensor([3, -2, 2]), rounding_mode="trunc"), [INT, FLOAT]),
    ("divide_floor", lambda L, x: L.divide(x, L.tensor([3, -2, 2]), rounding_mode="floor"), [INT, FLOAT]),
    ("divide_number_first", lambda L, x: L.divide(7, L.tensor([2, -2, 3]), rounding_mode="trunc"), [INT]),
    ("div_method_floor", lambda L, x: x.div(L.tensor([3, -2, 2]), rounding_mode="floor"), [INT, FLOAT]),
    ("div_method_trunc", lambda L, x: x.divide(-4, rounding_mode="trunc"), [INT, FLOAT]),
    ("div_number_first", lambda L, x: L.div(7, L.tensor([2, -2, 3]), rounding_mode="floor"), [INT]),
    ("div_floor_inexact", lambda L, x: L.div(x, 0.1, rounding_mode="floor"), [FLOAT]),
    ("concat", lambda L, x: L.concat([x, x], 1), [INT, FLOAT]),
    ("concat_default", lambda L, x: L.concat((x, x)), [INT]),
    ("fill", lambda L, x: L.fill(x, 2.7), [INT, FLOAT, BOOL]),
    ("fill_tensor", lambda L, x: L.fill(x, L.tensor(-1.5)), [INT, FLOAT]),
]


@pytest.mark.filterwarnings("ignore::RuntimeWarning")    # numpy notes x / 0.0 (torch does not)
@pytest.mark.parametrize("name,program,inputs", FORWARD, ids=[f[0] for f in FORWARD])
def test_forward_beside_torch(name, program, inputs):
    for arr in inputs:
        g, t = _both(arr)
        ours, theirs = program(gt, g), program(torch, t)
        np.testing.assert_equal(arr, g.numpy())     # the input is left as it was
        _same(ours, theirs)


@pytest.mark.parametrize("memory_format", [None, "preserve_format", "contiguous_format", "channels_last"])
def test_clone_copies_and_keeps_the_gradient(memory_format):
    data = randn(1, 2, 3, 2)
    fmt = None if memory_format is None else getattr(torch, memory_format)
    compare_with_torch(lambda x: gt.clone(x, memory_format=memory_format) * 2,
                       lambda x: torch.clone(x, memory_format=fmt) * 2, data)
    g = gt.tensor(data)
    c = gt.clone(g, memory_format=fmt)
    c[0, 0, 0, 0] = 100.0
    assert g[0, 0, 0, 0].item() == data[0, 0, 0, 0]    # a copy, not a view


GRADS = [
    ("masked_fill", lambda L, x: L.masked_fill(x, x > 0, -1.0), [randn(3, 4)]),
    ("masked_fill_value", lambda L, x, v: L.masked_fill(x, x > 0, v), [randn(3, 4), np.array(0.5)]),
    ("multiply", lambda L, x, y: L.multiply(x, y), [randn(3, 4), randn(4, seed=1)]),
    ("subtract", lambda L, x, y: L.subtract(x, y, alpha=2.5), [randn(3, 4), randn(3, 1, seed=1)]),
    ("rsub", lambda L, x, y: L.rsub(x, y, alpha=-1.5), [randn(2, 3), randn(3, seed=1)]),
    ("divide", lambda L, x, y: L.divide(x, y), [randn(2, 3), nonzero(2, 3, seed=1)]),
    ("divide_trunc", lambda L, x, y: L.divide(x, y, rounding_mode="trunc") + x, [randn(2, 3), nonzero(3, seed=1)]),
    ("t", lambda L, x: L.t(x) * 3, [randn(2, 3)]),
    ("detach", lambda L, x: L.detach(x) * x, [randn(4)]),
    ("fill_value", lambda L, x, v: L.fill(x, v) * x, [randn(2, 3), np.array(0.7)]),
    ("concat", lambda L, x, y: L.concat([x, y], dim=-1), [randn(2, 3), randn(2, 2, seed=1)]),
]


@pytest.mark.parametrize("name,program,inputs", GRADS, ids=[g[0] for g in GRADS])
def test_gradients_beside_torch(name, program, inputs):
    compare_with_torch(lambda *a: program(gt, *a), lambda *a: program(torch, *a), *inputs)


def test_gradients_against_finite_differences():
    check_grad(lambda x, y: gt.subtract(x, y, alpha=2.0) * gt.multiply(x, y), randn(2, 3), randn(3, seed=1))
    check_grad(lambda x, v: gt.fill(x, v) * x + gt.rsub(x, 1.0, alpha=3), randn(2, 2), np.array(0.3))


def test_sharded_inputs_give_the_unsharded_answers():
    data, other = randn(4, 3), nonzero(4, 3, seed=1)
    programs = [lambda L, x, y: L.subtract(x, y, alpha=2), lambda L, x, y: L.divide(x, y, rounding_mode="trunc"),
                lambda L, x, y: L.all(x > -1, 1), lambda L, x, y: L.any(x > 1), lambda L, x, y: L.clone(x),
                lambda L, x, y: L.isin(L.round(x), L.round(y))]
    for program in programs:
        want = program(torch, torch.tensor(data), torch.tensor(other))
        with use_mesh(4):
            got = program(gt, gt.tensor(data).shard(0), gt.tensor(other).shard(0))
            _same(got, want)


@pytest.mark.first_pass
def test_errors_of_the_aliases():
    x = gt.tensor([[1.0, 2.0]])
    with pytest.raises(TypeError, match="must be a Tensor"):
        gt.all([1, 2])
    # out= as torch takes it on these aliases too (gt/tensor/out_argument.py)
    for name, args in (("any", (x,)), ("all", (x,)), ("concat", ([x],)), ("isin", (x, x)), ("multiply", (x, x)),
                       ("subtract", (x, x)), ("divide", (x, x)), ("div", (x, 2.0))):
        dtype = "bool" if name in ("any", "all", "isin") else "float32"
        out = gt.zeros(0, dtype=getattr(gt, dtype))
        t_out = torch.zeros(0, dtype=getattr(torch, dtype))
        assert getattr(gt, name)(*args, out=out) is out
        getattr(torch, name)(*(torch.tensor(a.numpy()) if isinstance(a, gt.Tensor) else [torch.tensor(v.numpy()) for v in a]
                               if isinstance(a, list) else a for a in args), out=t_out)
        _same(out, t_out)
    with pytest.raises(RuntimeError, match=r"t\(\) expects a tensor with <= 2 dimensions"):
        gt.t(gt.zeros(2, 2, 2))
    with pytest.raises(RuntimeError, match="boolean masks"):
        gt.masked_fill(x, gt.tensor([[1, 0]]), 0.0)
    with pytest.raises(RuntimeError, match="rounding_mode"):
        gt.divide(x, 2, rounding_mode="round")
    with pytest.raises(RuntimeError, match="alpha must not be a floating point"):
        gt.subtract(gt.tensor([1, 2]), 1, alpha=0.5)
    with pytest.raises(RuntimeError, match="alpha must not be a floating point"):
        gt.rsub(gt.tensor([1, 2]), 1, alpha=0.5)
    assert gt.multiply(2, 3).item() == 6 and gt.multiply(2, 3).dtype == gt.int64     # torch's tensor(6)
    with pytest.raises(RuntimeError, match="with two bool tensors is not supported"):
        gt.subtract(gt.tensor([True]), gt.tensor([False]))
    with pytest.raises(RuntimeError, match="with a bool tensor is not supported"):
        gt.subtract(gt.tensor([1]), True)
    with pytest.raises(RuntimeError, match="with a bool tensor is not supported"):
        gt.rsub(gt.tensor([True]), 1)
    with pytest.raises(NotImplementedError, match="Bool"):
        gt.divide(gt.tensor([True]), gt.tensor([True]), rounding_mode="floor")
    with pytest.raises(RuntimeError, match="ZeroDivisionError"):
        gt.divide(gt.tensor([3]), gt.tensor([0]), rounding_mode="trunc")
    with pytest.raises(RuntimeError, match="0-dimensional value"):
        gt.fill(x, gt.tensor([1.0]))
    with pytest.raises(ValueError, match="memory_format"):
        gt.clone(x, memory_format="strided")
    with pytest.raises(RuntimeError, match="rank 4"):
        gt.clone(x, memory_format=torch.channels_last)


# ---- isin ------------------------------------------------------------------------------------------------
ISIN = [
    (np.array([1, 2, 3, 4, 2]), np.array([2, 4, 9])),
    (np.array([[1, 2], [3, 4]]), np.array([[4, 0], [1, 1]])),
    (np.array([1.0, np.nan, 2.5, -0.0]), np.array([np.nan, 0.0, 2.5])),
    (np.array([1, 2, 3]), np.array([2.5, 3.0])),            # compared after promotion
    (np.array([1.5, 2.0]), np.array([2, 7])),
    (np.array([1, 2, 3]), np.zeros(0, dtype=np.int64)),     # nothing to find
    (np.zeros((0, 2), dtype=np.int64), np.array([1])),
    (np.array(3), np.array([1, 3])),                        # 0-d elements
]


@pytest.mark.parametrize("invert", [False, True])
@pytest.mark.parametrize("elements,test", ISIN)
def test_isin_beside_torch(elements, test, invert):
    (ge, te), (gtst, ttst) = _both(elements), _both(test)
    _same(gt.isin(ge, gtst, invert=invert), torch.isin(te, ttst, invert=invert))
    _same(gt.isin(ge, gtst, assume_unique=False, invert=invert), torch.isin(te, ttst, invert=invert))
    _same(ge.isin(gtst, invert=invert), torch.isin(te, ttst, invert=invert))


def test_isin_with_numbers_and_errors():
    g, t = _both(np.array([1, 2, 3, 2]))
    _same(gt.isin(g, 2), torch.isin(t, 2))
    _same(gt.isin(2, g), torch.isin(2, t))
    _same(gt.isin(g, 2.0, invert=True), torch.isin(t, 2.0, invert=True))
    with pytest.raises(TypeError, match="tensor"):
        gt.isin(2, 3)
    with pytest.raises(RuntimeError, match="Bool"):
        gt.isin(gt.tensor([True]), gt.tensor([True]))


# ---- dtype rules -------------------------------------------------------------------------------------------
@pytest.mark.first_pass
def test_promote_types_and_can_cast_over_every_pair():
    for a in DTYPES:
        for b in DTYPES:
            ta, tb = getattr(torch, a), getattr(torch, b)
            got = gt.promote_types(getattr(gt, a), getattr(gt, b))
            assert got.name == str(torch.promote_types(ta, tb)).replace("torch.", ""), (a, b, got)
            assert gt.promote_types(ta, tb) == got                      # torch's dtypes are accepted
            assert gt.can_cast(getattr(gt, a), getattr(gt, b)) == torch.can_cast(ta, tb), (a, b)


@pytest.mark.first_pass
def test_result_type_of_tensors_and_numbers():
    operands = [np.array([1, 2], dtype=np.int32), np.array([1.0], dtype=np.float16), np.array(3, dtype=np.int64),
                np.array(2.0), np.array([True]), np.array(False)]
    pairs = [(gt.tensor(a, dtype=getattr(gt, a.dtype.name)), torch.tensor(a)) for a in operands]
    pairs += [(2, 2), (2.5, 2.5), (True, True)]
    for ga, ta in pairs:
        for gb, tb in pairs:
            if not isinstance(ga, gt.Tensor) and not isinstance(gb, gt.Tensor) and type(ga) is not type(gb):
                continue
            want = str(torch.result_type(ta, tb)).replace("torch.", "")
            assert gt.result_type(ga, gb).name == want, (ta, tb, want)
    with pytest.raises(TypeError, match="Python numbers"):
        gt.result_type(gt.tensor([1]), "a")


@pytest.mark.first_pass
def test_dtype_predicates():
    for name in DTYPES:
        if name == "bfloat16" and not gt.backend.B.supports_bfloat16:
            continue
        g, t = gt.zeros(2, dtype=getattr(gt, name)), torch.zeros(2, dtype=getattr(torch, name))
        assert gt.is_signed(g) == torch.is_signed(t), name
        assert gt.is_complex(g) is torch.is_complex(t) is False
    for fn in (gt.is_complex, gt.is_signed, gt.is_nonzero, gt.is_inference):
        with pytest.raises(TypeError, match="must be a Tensor"):
            fn(1)


@pytest.mark.first_pass
def test_is_nonzero_is_same_size_is_inference():
    for value in (0.0, 1.5, -0.0, float("nan"), 0, 3, True, False):
        assert gt.is_nonzero(gt.tensor([value])) == torch.is_nonzero(torch.tensor([value])), value
    assert gt.is_nonzero(gt.tensor([[2]])) is True
    for shape in ((2,), (0,), (1, 2)):
        with pytest.raises(RuntimeError, match="Boolean value of Tensor with"):
            gt.is_nonzero(gt.zeros(*shape))
    assert gt.is_same_size(gt.zeros(2, 3), gt.ones(2, 3)) and not gt.is_same_size(gt.zeros(2, 3), gt.zeros(3, 2))
    with gt.inference_mode():
        made = gt.ones(2)
    assert gt.is_inference(made) and not gt.is_inference(gt.ones(2))


# ---- making tensors ----------------------------------------------------------------------------------------
@pytest.mark.first_pass
@pytest.mark.parametrize("value,dtype", [(3, None), (True, None), (-2.5, None), (7, "int64"), (1.5, "float64"),
                                         (0, "bool")])
def test_scalar_tensor(value, dtype):
    ours = gt.scalar_tensor(value, dtype=None if dtype is None else getattr(gt, dtype))
    _same(ours, torch.scalar_tensor(value, dtype=None if dtype is None else getattr(torch, dtype)))
    assert gt.scalar_tensor(1.0, requires_grad=True).requires_grad


@pytest.mark.parametrize("args,kwargs", [((1, 4), {}), ((0, 1, 0.3), {}), ((3, 0, -1), {"dtype": "int64"}),
                                         ((-1.5, 2.5, 0.5), {"dtype": "float64"}), ((2, 2), {}),
                                         ((0, 10, 3), {"dtype": "int32"}), ((0.1, 0.95, 0.05), {})])
def test_range_includes_the_end_and_warns(args, kwargs):
    with pytest.warns(UserWarning, match="deprecated"):
        ours = gt.range(*args, **{k: getattr(gt, v) for k, v in kwargs.items()})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = torch.range(*args, **{k: getattr(torch, v) for k, v in kwargs.items()})
    _same(ours, theirs)


@pytest.mark.first_pass
def test_range_errors():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(RuntimeError, match="step must be nonzero"):
            gt.range(0, 3, 0)
        with pytest.raises(RuntimeError, match="inconsistent with step sign"):
            gt.range(3, 0, 1)


@pytest.mark.parametrize("indices,shape", [([5, -1, 11, 12], (3, 4)), ([[0, 7], [23, 9]], (2, 3, 4)), (3, 12),
                                           (np.array(4), (2, 3)), ([], (2, 3)), ([0, 1], (2, 1, 1)),
                                           ([], (0,)), ([1], ())])
def test_unravel_index(indices, shape):
    g = gt.tensor(np.asarray(indices, dtype=np.int64)) if not isinstance(indices, int) else indices
    t = torch.tensor(np.asarray(indices, dtype=np.int64)) if not isinstance(indices, int) else torch.tensor(indices)
    _same(gt.unravel_index(g, shape), torch.unravel_index(t, shape))


@pytest.mark.first_pass
def test_unravel_index_errors():
    with pytest.raises(TypeError, match="integer dtype"):
        gt.unravel_index(gt.tensor([1.0]), (3, 4))
    with pytest.raises(ValueError, match="negative"):
        gt.unravel_index(gt.tensor([1]), (3, -4))
    with pytest.raises(TypeError, match="shape"):
        gt.unravel_index(gt.tensor([1]), (3, 4.0))
    with pytest.raises(RuntimeError, match="ZeroDivisionError"):
        gt.unravel_index(gt.tensor([1, 2]), (2, 0, 3))
    with pytest.raises(TypeError, match="integer dtype"):
        gt.unravel_index(gt.tensor([True]), (2,))


def test_as_tensor_and_asarray_share_as_torch_does():
    t = gt.tensor([1.0, 2.0])
    assert gt.as_tensor(t) is t and gt.asarray(t) is t
    assert gt.as_tensor(t, dtype=gt.float64).dtype == gt.float64
    _same(gt.as_tensor([[1, 2], [3, 4]]), torch.as_tensor([[1, 2], [3, 4]]))
    _same(gt.as_tensor([1.5, 2]), torch.as_tensor([1.5, 2]))
    _same(gt.asarray([1, 2], dtype=gt.float64), torch.asarray([1, 2], dtype=torch.float64))
    arr = np.arange(3.0)
    copied = gt.asarray(arr, copy=True)
    arr[0] = 9.0
    assert copied[0].item() == 0.0
    if gt.get_backend() == "numpy" and gt.get_mesh().size == 1:
        shared, alias = gt.as_tensor(arr), gt.asarray(arr, copy=False)
        arr[1] = 7.0
        assert shared[1].item() == 7.0 and alias[1].item() == 7.0
    leaf = gt.asarray(t, requires_grad=True)
    assert leaf.requires_grad and leaf.is_leaf and not t.requires_grad
    with pytest.raises(ValueError, match="can't alias"):
        gt.asarray([1, 2], copy=False)
    with pytest.raises(ValueError, match="can't alias"):
        gt.asarray(t, dtype=gt.float64, copy=False)
    with pytest.raises(ValueError, match="can't alias"):
        gt.asarray(np.ones(2), dtype=gt.float32, copy=False)
    with pytest.raises(RuntimeError, match="device"):
        gt.as_tensor([1.0], device="meta")


# ---- global settings ----------------------------------------------------------------------------------------
@pytest.mark.first_pass
def test_typename_storage_and_devices():
    assert gt.typename(gt.zeros(2)) == "gt.FloatTensor" and torch.typename(torch.zeros(2)) == "torch.FloatTensor"
    assert gt.typename(gt.zeros(2, dtype=gt.int64)) == "gt.LongTensor"
    for obj in (3, np.ndarray, np.zeros(2), warnings.warn, "a"):
        assert gt.typename(obj) == torch.typename(obj), obj
    assert gt.is_storage(gt.zeros(2)) is torch.is_storage(torch.zeros(2)) is False
    assert repr(gt.get_default_device()) == repr(torch.get_default_device()) == "device(type='cpu')"
    for name in ("cpu", gt.device("cpu"), torch.device("cpu"), None):
        gt.set_default_device(name)
        assert gt.get_default_device() == "cpu" and gt.get_default_device().type == "cpu"
    with pytest.raises(RuntimeError, match="'cuda:3'"):
        gt.set_default_device("cuda:3")
    with pytest.raises(RuntimeError, match="Invalid device string"):
        gt.set_default_device("cpu:x")
    with pytest.raises(RuntimeError, match="Expected one of"):
        gt.set_default_device("gpu")
    assert gt.get_default_device() == "cpu"
    _same(gt.as_tensor([1, 2], device="cpu"), torch.as_tensor([1, 2], device="cpu"))
    _same(gt.scalar_tensor(2, device=torch.device("cpu")), torch.scalar_tensor(2, device="cpu"))


@pytest.mark.first_pass
def test_deterministic_flags_are_recorded():
    assert not gt.are_deterministic_algorithms_enabled() and gt.get_deterministic_debug_mode() == 0
    try:
        for mode, flags in (("warn", (True, True)), (2, (True, False)), ("default", (False, False)), (1, (True, True))):
            gt.set_deterministic_debug_mode(mode)
            torch.set_deterministic_debug_mode(mode)
            assert (gt.are_deterministic_algorithms_enabled(),
                    gt.is_deterministic_algorithms_warn_only_enabled()) == flags
            assert gt.get_deterministic_debug_mode() == torch.get_deterministic_debug_mode()
        gt.use_deterministic_algorithms(True)
        assert gt.get_deterministic_debug_mode() == 2
        with pytest.raises(RuntimeError, match="expected 0, 1, or 2"):
            gt.set_deterministic_debug_mode(3)
        with pytest.raises(RuntimeError, match="`default`, `warn`, `error`"):
            gt.set_deterministic_debug_mode("loud")
        with pytest.raises(TypeError, match="str or int"):
            gt.set_deterministic_debug_mode(1.0)
        with pytest.raises(TypeError, match="must be bool"):
            gt.use_deterministic_algorithms(1)
    finally:
        gt.use_deterministic_algorithms(False)
        torch.set_deterministic_debug_mode(0)     # torch.use_deterministic_algorithms takes seconds
    assert gt.get_deterministic_debug_mode() == 0


@pytest.mark.first_pass
def test_deterministic_flag_is_handed_to_torch_where_gt_computes_on_cuda(monkeypatch):
    """On CUDA torch's kernels decide (scatter-adds, attention's backward, cuBLAS): the flag goes to
    torch there, with cuBLAS's workspace setting unless the user chose one. On the CPU gt's ops
    are deterministic already, and torch's own flag is left alone."""
    from gt.backend import B

    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    try:
        if not gt.cuda.is_available():
            gt.use_deterministic_algorithms(True)
            assert not torch.are_deterministic_algorithms_enabled()
            assert "CUBLAS_WORKSPACE_CONFIG" not in os.environ
            monkeypatch.setattr(B, "cuda_device_count", lambda: 1)      # as on a GPU machine
        gt.use_deterministic_algorithms(True, warn_only=True)
        assert torch.are_deterministic_algorithms_enabled() and torch.is_deterministic_algorithms_warn_only_enabled()
        assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
        gt.use_deterministic_algorithms(False)
        assert not torch.are_deterministic_algorithms_enabled()
        monkeypatch.setenv("CUBLAS_WORKSPACE_CONFIG", ":16:8")
        gt.use_deterministic_algorithms(True)
        assert torch.are_deterministic_algorithms_enabled() and not torch.is_deterministic_algorithms_warn_only_enabled()
        assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":16:8"            # the user's choice is kept
    finally:
        gt.use_deterministic_algorithms(False)
        torch.use_deterministic_algorithms(False)


@pytest.mark.first_pass
def test_interop_threads():
    assert gt.get_num_interop_threads() >= 1
    before = gt.get_num_interop_threads()
    gt.set_num_interop_threads(3)
    assert gt.get_num_interop_threads() == 3
    gt.set_num_interop_threads(before)
    with pytest.raises(RuntimeError, match="positive"):
        gt.set_num_interop_threads(0)
    with pytest.raises(TypeError, match="int"):
        gt.set_num_interop_threads(2.0)


@pytest.fixture
def restore_printoptions():
    saved = dict(print_options.PRINT_OPTIONS)
    yield
    print_options.PRINT_OPTIONS.clear()
    print_options.PRINT_OPTIONS.update(saved)
    torch.set_printoptions(profile="default")


def _values(text):
    """The bracketed values of a repr, spaces and line breaks removed (gt and torch pad differently)."""
    return "".join(text[text.index("["):text.rindex("]") + 1].split())


def test_set_printoptions_changes_repr_as_torch(restore_printoptions):
    data = np.array([1.23456789, -2.5, 1000.125, 0.0078125])
    default = repr(gt.tensor(data))
    assert "1.2346" in default
    for kwargs in ({"precision": 2}, {"precision": 6}, {"sci_mode": False, "precision": 3}):
        gt.set_printoptions(**kwargs)
        torch.set_printoptions(**kwargs)
        assert _values(repr(gt.tensor(data, dtype=gt.float64))) == \
            _values(repr(torch.tensor(data, dtype=torch.float64))), kwargs
        gt.set_printoptions(profile="default")
        torch.set_printoptions(profile="default")
    gt.set_printoptions(sci_mode=True)
    assert "1.2346e+00" in repr(gt.tensor(data))
    gt.set_printoptions(threshold=5, edgeitems=2)
    torch.set_printoptions(threshold=5, edgeitems=2)
    ints = np.arange(20)
    assert _values(repr(gt.tensor(ints))) == _values(repr(torch.tensor(ints)))
    gt.set_printoptions(profile="full")
    assert "..." not in repr(gt.arange(500))
    gt.set_printoptions(profile="short")
    assert "1.23" in repr(gt.tensor(data)) and "1.235" not in repr(gt.tensor(data))
    gt.set_printoptions(profile="default", linewidth=20)
    assert max(len(line) for line in repr(gt.arange(12.0)).splitlines()[:-1]) <= 20
    gt.set_printoptions(profile="default")
    assert repr(gt.tensor(data)) == default
    with pytest.raises(ValueError, match="profile"):
        gt.set_printoptions(profile="long")
    with pytest.raises(ValueError, match="precision"):
        gt.set_printoptions(precision=-1)


# ---- functional forms beside torch's top-level functions ----------------------------------------------
X1 = randn(2, 3, 7, seed=3)
X2 = randn(2, 3, 5, 4, seed=4)
X3 = randn(1, 2, 4, 3, 4, seed=5)
W1 = randn(4, 3, 3, seed=6)
W2 = randn(4, 3, 2, 3, seed=7)
W3 = randn(2, 2, 2, 2, 2, seed=8)
B4 = randn(4, seed=9)
P = positive(3, 4, seed=10)
LOGP = np.log(P / P.sum(-1, keepdims=True))
SIGN = np.array([1.0, -1.0, -1.0])

FUNCTIONAL = [
    ("conv1d", lambda L, x, w, b: L.conv1d(x, w, b, 2, 1), [X1, W1, B4]),
    ("conv2d", lambda L, x, w, b: L.conv2d(x, w, b, padding=(1, 0), dilation=1), [X2, W2, B4]),
    ("conv3d", lambda L, x, w: L.conv3d(x, w, stride=(1, 2, 1)), [X3, W3]),
    ("conv_transpose1d", lambda L, x, w: L.conv_transpose1d(x, w, None, 2, 1, 1), [X1, randn(3, 2, 3, seed=1)]),
    ("conv_transpose2d", lambda L, x, w: L.conv_transpose2d(x, w, stride=2), [X2, randn(3, 2, 2, 2, seed=1)]),
    ("conv_transpose3d", lambda L, x, w: L.conv_transpose3d(x, w, padding=1), [X3, randn(2, 1, 3, 2, 2, seed=1)]),
    ("dropout_eval", lambda L, x: L.dropout(x, 0.4, False), [X1]),
    ("dropout_p0", lambda L, x: L.dropout(x, 0.0, True), [X1]),
    ("alpha_dropout_eval", lambda L, x: L.alpha_dropout(x, 0.3, False), [X1]),
    ("feature_alpha_dropout_eval", lambda L, x: L.feature_alpha_dropout(x, 0.3, False), [X2]),
    ("pdist", lambda L, x: L.pdist(x), [randn(4, 3)]),
    ("pdist_p1", lambda L, x: L.pdist(x, 1.5), [randn(4, 3)]),
    ("channel_shuffle", lambda L, x: L.channel_shuffle(x, 3) * 2, [randn(2, 6, 2)]),
    ("layer_norm", lambda L, x, w, b: L.layer_norm(x, (4,), w, b, 1e-3), [X2, randn(4, seed=1), B4]),
    ("layer_norm_plain", lambda L, x: L.layer_norm(x, [5, 4]), [X2]),
    ("native_layer_norm", lambda L, x, w, b: L.native_layer_norm(x, [5, 4], w, b, 1e-5),
     [X2, randn(5, 4, seed=1), randn(5, 4, seed=2)]),
    ("group_norm", lambda L, x, w, b: L.group_norm(x, 3, w, b, 1e-4), [X2, randn(3, seed=1), randn(3, seed=2)]),
    ("instance_norm", lambda L, x, w, b: L.instance_norm(x, w, b, None, None, True, 0.1, 1e-5, False),
     [X2, randn(3, seed=1), randn(3, seed=2)]),
    ("batch_norm_train", lambda L, x, w, b: L.batch_norm(x, w, b, None, None, True, 0.1, 1e-5, False),
     [X2, randn(3, seed=1), randn(3, seed=2)]),
    ("batch_norm_eval", lambda L, x: L.batch_norm(x, None, None, L.tensor(randn(3, seed=1)),
                                                  L.tensor(positive(3, seed=2)), False, 0.1, 1e-5, False), [X2]),
    ("rms_norm", lambda L, x, w: L.rms_norm(x, (4,), w, 1e-6), [X2, randn(4, seed=1)]),
    ("rms_norm_no_eps", lambda L, x: L.rms_norm(x, [5, 4]), [X2]),
    ("embedding", lambda L, w, i: L.embedding(w, i), [randn(5, 3), np.array([[0, 4, 2], [4, 4, 1]])]),
    ("embedding_padding", lambda L, w, i: L.embedding(w, i, 4), [randn(5, 3), np.array([[0, 4, 2], [4, 4, 1]])]),
    ("pixel_shuffle", lambda L, x: L.pixel_shuffle(x, 2), [randn(1, 8, 2, 3)]),
    ("pixel_unshuffle", lambda L, x: L.pixel_unshuffle(x, 2), [randn(1, 2, 4, 6)]),
    ("selu", lambda L, x: L.selu(x), [X1]),
    ("celu", lambda L, x: L.celu(x, 0.7), [X1]),
    ("prelu", lambda L, x, w: L.prelu(x, w), [X2, np.array([0.1, -0.2, 0.3])]),
    ("rrelu_eval", lambda L, x: L.rrelu(x, 0.1, 0.3), [X1]),
    ("threshold", lambda L, x: L.threshold(x, 0.2, -3.0), [X1]),
    ("hardshrink", lambda L, x: L.hardshrink(x, 0.6), [X1]),
    ("cosine_similarity", lambda L, x, y: L.cosine_similarity(x, y, 0), [P, randn(3, 4)]),
    ("pairwise_distance", lambda L, x, y: L.pairwise_distance(x, y, 3.0, 1e-6, True), [P, randn(3, 4)]),
    ("kl_div", lambda L, x, y: L.kl_div(x, y), [LOGP, P / 4]),
    ("kl_div_mean", lambda L, x, y: L.kl_div(x, y, 1), [LOGP, P / 4]),
    ("kl_div_sum_log_target", lambda L, x, y: L.kl_div(x, y, 2, log_target=True), [LOGP, LOGP[::-1].copy()]),
    ("bce_with_logits", lambda L, x, y: L.binary_cross_entropy_with_logits(x, y, L.tensor(P), None, 1),
     [randn(3, 4), P / 2]),
    ("bce_with_logits_pos_weight", lambda L, x, y: L.binary_cross_entropy_with_logits(
        x, y, pos_weight=L.tensor(positive(4, seed=3)), reduction=2), [randn(3, 4), P / 2]),
    ("bce_with_logits_default_none", lambda L, x, y: L.binary_cross_entropy_with_logits(x, y), [randn(3, 4), P / 2]),
    ("avg_pool1d", lambda L, x: L.avg_pool1d(x, 3), [X1]),
    ("avg_pool1d_pad", lambda L, x: L.avg_pool1d(x, 3, 2, 1, True, False), [X1]),
    ("max_pool1d", lambda L, x: L.max_pool1d(x, 2), [X1]),
    ("max_pool2d", lambda L, x: L.max_pool2d(x, (2, 2), (), 1), [X2]),
    ("max_pool3d", lambda L, x: L.max_pool3d(x, 2, 1), [X3]),
    ("max_pool1d_with_indices", lambda L, x: L.max_pool1d_with_indices(x, 3, 2), [X1]),
    ("adaptive_avg_pool1d", lambda L, x: L.adaptive_avg_pool1d(x, 3), [X1]),
    ("adaptive_max_pool1d", lambda L, x: L.adaptive_max_pool1d(x, 3), [X1]),
    ("bilinear", lambda L, x, y, w, b: L.bilinear(x, y, w, b), [randn(3, 2), randn(3, 4), randn(5, 2, 4), randn(5)]),
    ("margin_ranking_loss", lambda L, x, y: L.margin_ranking_loss(x, y, L.tensor(SIGN), 0.3), [randn(3), randn(3)]),
    ("margin_ranking_loss_mean", lambda L, x, y: L.margin_ranking_loss(x, y, L.tensor(SIGN), 0.3, 1),
     [randn(3), randn(3, seed=1)]),
    ("hinge_embedding_loss", lambda L, x: L.hinge_embedding_loss(x, L.tensor(SIGN), 0.5, 2), [randn(3)]),
    ("cosine_embedding_loss", lambda L, x, y: L.cosine_embedding_loss(x, y, L.tensor(SIGN), 0.1, 0),
     [randn(3, 4), randn(3, 4, seed=1)]),
    ("triplet_margin_loss", lambda L, a, p, n: L.triplet_margin_loss(a, p, n, 0.5, 2, 1e-6, True),
     [randn(3, 4), randn(3, 4, seed=1), randn(3, 4, seed=2)]),
    ("poisson_nll_loss", lambda L, x, y: L.poisson_nll_loss(x, y, True, True, 1e-8, 1), [randn(3, 4), P * 3]),
    ("poisson_nll_loss_rate", lambda L, x, y: L.poisson_nll_loss(x, y, False, False, 1e-8, 2), [P, P * 3]),
    ("constant_pad_nd", lambda L, x: L.constant_pad_nd(x, (1, 2, 0, 1), 0.5), [X1]),
    ("constant_pad_nd_crop", lambda L, x: L.constant_pad_nd(x, [-1, 2]), [X1]),
]


@pytest.mark.parametrize("name,program,inputs", FUNCTIONAL, ids=[f[0] for f in FUNCTIONAL])
def test_functional_forms_beside_torch(name, program, inputs):
    compare_with_torch(lambda *a: program(gt, *a), lambda *a: program(torch, *a), *inputs)


def test_ctc_loss_beside_torch():
    # torch's backward treats log_probs as log_softmax outputs, so the inputs are logits through log_softmax
    logits = randn(6, 2, 4, seed=11)
    targets = np.array([[1, 2, 2], [3, 1, 0]])
    for reduction in (0, 1, 2):
        compare_with_torch(lambda x: gt.ctc_loss(x.log_softmax(-1), gt.tensor(targets), [6, 5], [3, 2], 0, reduction),
                           lambda x: torch.ctc_loss(x.log_softmax(-1), torch.tensor(targets), [6, 5], [3, 2], 0,
                                                    reduction), logits)


def test_dropout_in_training_keeps_or_scales():
    x = gt.ones(200, 10)
    out = gt.dropout(x, 0.25, True).numpy()
    assert set(np.unique(out)) <= {0.0, np.float32(1 / 0.75)}
    assert 0.15 < (out == 0).mean() < 0.35
    assert gt.rrelu(gt.tensor([-1.0, 2.0]), training=True)[1].item() == 2.0


def test_batch_norm_updates_running_statistics_as_torch():
    mean, var = np.zeros(3), np.ones(3)
    gm, gv = gt.tensor(mean), gt.tensor(var)
    tm, tv = torch.tensor(mean), torch.tensor(var)
    gt.batch_norm(gt.tensor(X2), None, None, gm, gv, True, 0.2, 1e-5, True)
    torch.batch_norm(torch.tensor(X2), None, None, tm, tv, True, 0.2, 1e-5, True)
    np.testing.assert_allclose(gm.numpy(), tm.numpy(), rtol=1e-6)
    np.testing.assert_allclose(gv.numpy(), tv.numpy(), rtol=1e-6)


@pytest.mark.first_pass
def test_functional_form_errors():
    x = gt.randn(3)
    with pytest.raises(ValueError, match="reduction must be 0"):
        gt.kl_div(x, x, 3)
    with pytest.raises(ValueError, match="reduction must be 0"):
        gt.hinge_embedding_loss(x, x, 1.0, "avg")
    with pytest.raises(TypeError, match="generator"):
        gt.rrelu(x, generator=object())
    with pytest.raises(NotImplementedError, match="scale_grad_by_freq"):
        gt.embedding(gt.randn(4, 2), gt.tensor([1]), scale_grad_by_freq=True)
    with pytest.raises(TypeError, match="Tensor"):
        gt.constant_pad_nd([1.0], (1, 1))
    with pytest.raises(TypeError):
        gt.dropout(x, 0.5)      # train has no default at torch's top level


# ---- in-place forms: gt.exp_(x) changes x as torch.exp_(x) does ---------------------------------------------
UNIT = np.array([[0.3, -0.6, 0.9], [-0.2, 0.5, 0.05]])      # inside (-1, 1): every inverse trig is defined
ABOVE_ONE = np.array([1.5, 2.0, 3.25])
INPLACE = [(name, (), {}, UNIT) for name in
           ("abs_", "acos_", "arccos_", "arcsin_", "arcsinh_", "arctan_", "arctanh_", "asin_", "asinh_", "atan_",
            "atanh_", "ceil_", "cos_", "cosh_", "deg2rad_", "erf_", "erfc_", "exp2_", "exp_", "expm1_", "fix_",
            "floor_", "frac_", "i0_", "log1p_", "neg_", "negative_", "rad2deg_", "reciprocal_", "relu_", "round_",
            "sigmoid_", "sin_", "sinc_", "sinh_", "square_", "tan_", "tanh_", "trunc_", "zero_", "selu_", "celu_")]
INPLACE += [(name, (), {}, ABOVE_ONE) for name in ("acosh_", "arccosh_", "log_", "log2_", "log10_", "sqrt_", "rsqrt_")]
INPLACE += [("clamp_", (), {"min": -0.1, "max": 0.4}, UNIT), ("clip_", (-0.1,), {}, UNIT),
            ("clamp_max_", (0.2,), {}, UNIT), ("clamp_min_", (0.0,), {}, UNIT), ("fill_", (2.5,), {}, UNIT),
            ("logit_", (), {"eps": 0.1}, np.abs(UNIT)), ("xlogy_", (2.0,), {}, UNIT),
            ("nan_to_num_", (), {"nan": 1.0, "posinf": 9.0}, np.array([np.nan, np.inf, -np.inf, 1.0])),
            ("round_", (), {"decimals": 1}, UNIT), ("celu_", (0.5,), {}, UNIT), ("threshold_", (0.1, -2.0), {}, UNIT),
            ("rrelu_", (0.1, 0.3), {}, UNIT)]


@pytest.mark.parametrize("name,args,kwargs,data", INPLACE, ids=[f"{p[0]}{i}" for i, p in enumerate(INPLACE)])
def test_inplace_forms_beside_torch(name, args, kwargs, data):
    g, t = _both(data)
    ours, theirs = getattr(gt, name)(g, *args, **kwargs), getattr(torch, name)(t, *args, **kwargs)
    assert ours is g and theirs is t
    _same(g, t, exact=False)


def test_inplace_forms_keep_the_graph_and_refuse_numbers():
    compare_with_torch(lambda x: gt.exp_(x * 1.0) * 2, lambda x: torch.exp_(x * 1.0) * 2, randn(2, 3))
    x = gt.tensor([1.0], requires_grad=True)
    assert gt.detach_(x * 2).requires_grad is False
    assert gt.get_device(gt.ones(2, device="cpu")) == torch.get_device(torch.ones(2)) == -1
    with pytest.raises(TypeError, match="must be a Tensor"):
        gt.exp_(1.0)


# ---- complex helpers on real tensors, *_copy functions, chain_matmul --------------------------------------
def test_complex_helpers_on_real_tensors():
    g, t = _both(FLOAT)
    for name in ("conj", "resolve_conj", "resolve_neg", "real"):
        assert getattr(gt, name)(g) is g and getattr(torch, name)(t) is t, name
    for name in ("is_conj", "is_neg"):
        assert getattr(gt, name)(g) is getattr(torch, name)(t) is False
    _same(gt.conj_physical(g), torch.conj_physical(t))
    with pytest.raises(RuntimeError, match="imag is not implemented"):
        gt.imag(g)
    angles = np.array([-1.5, 0.0, -0.0, 2.0, np.nan, np.inf, -np.inf])
    for arr in (angles, np.array([-3, 0, 4])):
        _same(gt.angle(gt.tensor(arr)), torch.angle(torch.tensor(arr)), exact=False)
    compare_with_torch(lambda x: gt.angle(x) + x, lambda x: torch.angle(x) + x, nonzero(2, 3))


COPIES = [
    ("view_copy", lambda L, x: L.view_copy(x, (6, 4)), [randn(2, 3, 4)]),
    ("view_copy_infer", lambda L, x: L.view_copy(x, (-1,)), [randn(2, 3)]),
    ("permute_copy", lambda L, x: L.permute_copy(x, (2, 0, 1)), [randn(2, 3, 4)]),
    ("t_copy", lambda L, x: L.t_copy(x), [randn(2, 3)]),
    ("transpose_copy", lambda L, x: L.transpose_copy(x, 0, -1), [randn(2, 3, 4)]),
    ("expand_copy", lambda L, x: L.expand_copy(x, (3, 2, 4)), [randn(2, 1)]),
    ("squeeze_copy", lambda L, x: L.squeeze_copy(x), [randn(2, 1, 3, 1)]),
    ("squeeze_copy_dim", lambda L, x: L.squeeze_copy(x, 1), [randn(2, 1, 3, 1)]),
    ("unsqueeze_copy", lambda L, x: L.unsqueeze_copy(x, -1), [randn(2, 3)]),
    ("diagonal_copy", lambda L, x: L.diagonal_copy(x, 1, 0, 2), [randn(3, 2, 4)]),
    ("select_copy", lambda L, x: L.select_copy(x, 1, -1), [randn(2, 3, 4)]),
    ("slice_copy", lambda L, x: L.slice_copy(x, 1, 1, None, 2), [randn(2, 5)]),
    ("slice_copy_default", lambda L, x: L.slice_copy(x), [randn(3, 2)]),
    ("unbind_copy", lambda L, x: L.unbind_copy(x, 1), [randn(2, 3)]),
    ("split_copy", lambda L, x: L.split_copy(x, 2, -1), [randn(2, 5)]),
    ("unfold_copy", lambda L, x: L.unfold_copy(x, 1, 2, 1), [randn(2, 4)]),
    ("detach_copy", lambda L, x: L.detach_copy(x), [(randn(2, 3) * 10).astype(np.int64)]),   # no grad in torch
    ("alias_copy", lambda L, x: L.alias_copy(x) * 2, [randn(2, 3)]),
]


@pytest.mark.parametrize("name,program,inputs", COPIES, ids=[c[0] for c in COPIES])
def test_copy_functions_beside_torch(name, program, inputs):
    compare_with_torch(lambda *a: program(gt, *a), lambda *a: program(torch, *a), *inputs)
    g = gt.tensor(inputs[0])
    out = program(gt, g)
    for part in out if isinstance(out, tuple) else (out,):
        if part.numel():
            # writing to the copy leaves the input as it was (into the copy itself: over the mesh, a view(-1)
            # of a copy sharded along another dim is made as a gathered copy, whose change gt refuses)
            part[(0,) * part.ndim] = 1234.5
    np.testing.assert_array_equal(g.numpy(), inputs[0])


def test_chain_matmul_beside_torch():
    mats = [randn(2, 3), randn(3, 4, seed=1), randn(4, 2, seed=2)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        compare_with_torch(lambda *m: gt.chain_matmul(*m), lambda *m: torch.chain_matmul(*m), *mats)
        compare_with_torch(lambda m: gt.chain_matmul(m), lambda m: torch.chain_matmul(m), mats[0])
    with pytest.warns(UserWarning, match="deprecated"):
        gt.chain_matmul(gt.ones(2, 2), gt.ones(2, 2))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(RuntimeError, match="expected 2"):
            gt.chain_matmul(gt.ones(2, 2), gt.ones(2))
        with pytest.raises(RuntimeError, match="one or more"):
            gt.chain_matmul()


def test_rounded_division_in_place_and_its_zero_gradients_are_torch_s():
    """``div_(..., rounding_mode=)`` and the zero gradient of a rounded quotient: ``x // y`` and
    ``div(rounding_mode="floor")`` require grad as torch's; a backward through ``//`` raises as torch's."""
    got = {}
    for lib in (gt, torch):
        z = lib.tensor([7, -7, 9])
        z.div_(2, rounding_mode="trunc")
        f = lib.tensor([7.0, -7.0, 1.0])
        f.div_(lib.tensor([2.0, 2.0, 0.1]), rounding_mode="floor")
        x = lib.tensor([5.0, -5.0, 1.0], requires_grad=True)
        y = lib.tensor([2.0, 3.0, 0.1], requires_grad=True)
        q = x.div(y, rounding_mode="floor")
        assert q.requires_grad and (x // y).requires_grad
        (q.sum() + (x // 2).detach().sum() + x.div(2, rounding_mode="trunc").sum()).backward()
        got[lib.__name__] = [z.tolist(), f.tolist(), q.tolist(), x.grad.tolist(), y.grad.tolist()]
        with pytest.raises(RuntimeError, match="can't be cast to the desired output type"):
            lib.tensor([7]).div_(2.5, rounding_mode="floor")
        with pytest.raises(RuntimeError, match="rounding_mode to be one of None, 'trunc', or 'floor'"):
            lib.tensor([7.0]).div(2, rounding_mode="round")
    assert got["gt"] == got["torch"]
    assert got["gt"][2] == [2.0, -2.0, 9.0]            # 1 // 0.1 is 9 (0.1 is above one tenth), not 10
    # // has no derivative: the backward through it raises, as torch's
    for lib in (gt, torch):
        x = lib.tensor([5.0, -5.0], requires_grad=True)
        with pytest.raises(RuntimeError, match="derivative for aten::floor_divide is not implemented"):
            (x // lib.tensor([2.0, 3.0])).sum().backward()
