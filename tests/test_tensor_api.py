"""The API surface users call: the issue's example, creation functions, the calls code written
against the public gt makes, dim/keepdim aliases, comparisons, views and numpy interop."""

import subprocess
import sys

import numpy as np
import pytest

import gt
from gt.sharding import use_mesh


def test_issue_example_runs():
    rng = np.random.default_rng(0)
    np_array = rng.standard_normal((40000, 3)).astype(np.float32) * 0.01
    gt.manual_seed(0)       # the same draw every run: a float32 sum over 40,000 terms is checked below
    x = gt.randn(8, 40000)  # float32 by default
    assert x.dtype == gt.float32 and x.shape == (8, 40000)
    w = gt.tensor(np_array, requires_grad=True)
    y = (x @ w).relu().mean(axis=-1, keepdims=True)
    y.sum().backward()
    assert w.grad.numpy().shape == (40000, 3) and w.grad.dtype == gt.float32
    assert y.numpy().shape == (8, 1) and y.data.numpy().shape == (8, 1)
    assert isinstance(y.sum().item(), float) and y.shape == (8, 1) and y.dtype == gt.float32
    # exact products in float64: each float32 engine sums 40,000 terms in its own order (~1e-5 apart)
    expected = np.maximum(x.numpy().astype(np.float64) @ np_array, 0).mean(-1, keepdims=True)
    np.testing.assert_allclose(y.numpy(), expected, rtol=1e-4, atol=2e-5)
    before, old = w._data, w.numpy().copy()
    with gt.no_grad():
        w -= 0.01 * w.grad  # in-place update of a parameter, outside the tape
    assert w._data is before and w.requires_grad
    np.testing.assert_allclose(w.numpy(), old - 0.01 * w.grad.numpy(), rtol=1e-6)


# ---- creation ---------------------------------------------------------------------------------
def test_tensor_copies_its_data():
    arr = np.array([1.0, 2.0])
    t = gt.tensor(arr)
    arr[0] = 9.0
    assert t.numpy()[0] == 1.0 and t.dtype == gt.float64  # numpy arrays keep their dtype
    assert gt.tensor([[1, 2], [3, 4]]).shape == (2, 2)
    assert gt.tensor(3.5).shape == () and gt.tensor(3.5).item() == 3.5
    assert gt.tensor(gt.ones(2)).dtype == gt.float32
    assert gt.tensor([1.0, 2.0], requires_grad=True).requires_grad
    assert gt.tensor(np.arange(3, dtype=np.int32)).dtype == gt.int32


@pytest.mark.skipif(gt.cuda.is_available(), reason="gt's tensors live on the GPU here: from_numpy copies")
def test_from_numpy_shares_memory():
    arr = np.zeros((2, 3), dtype=np.float32)
    t = gt.from_numpy(arr)
    arr[0, 0] = 5.0
    assert t.numpy()[0, 0] == 5.0 and t.dtype == gt.float32
    assert np.shares_memory(t.numpy(), arr)
    assert gt.from_numpy(np.ones(2)).dtype == gt.float64
    assert gt.from_numpy(np.ones(2), requires_grad=True).requires_grad


@pytest.mark.parametrize("make, shape, dtype", [
    (lambda: gt.randn(2, 3), (2, 3), gt.float32), (lambda: gt.randn((2, 3)), (2, 3), gt.float32),
    (lambda: gt.rand(4), (4,), gt.float32), (lambda: gt.zeros(2, 3), (2, 3), gt.float32),
    (lambda: gt.ones((3,)), (3,), gt.float32), (lambda: gt.zeros(()), (), gt.float32),
    (lambda: gt.zeros_like(gt.arange(3)), (3,), gt.int64), (lambda: gt.ones_like(gt.randn(2, 2)), (2, 2), gt.float32),
    (lambda: gt.zeros_like(gt.randn(2), dtype=gt.float64), (2,), gt.float64),
    (lambda: gt.arange(5), (5,), gt.int64), (lambda: gt.arange(1, 7, 2), (3,), gt.int64),
    (lambda: gt.arange(0, 1, 0.25), (4,), gt.float32), (lambda: gt.arange(3, dtype=gt.float64), (3,), gt.float64),
    (lambda: gt.full((2, 2), 1.5), (2, 2), gt.float32), (lambda: gt.full(3, 7), (3,), gt.int64),
    (lambda: gt.full((2,), True), (2,), gt.bool), (lambda: gt.full((2,), 1, dtype=gt.float64), (2,), gt.float64),
    (lambda: gt.randn(2, dtype=gt.float64), (2,), gt.float64), (lambda: gt.ones(2, dtype=gt.int64), (2,), gt.int64),
    (lambda: gt.zeros(2, dtype=gt.bool), (2,), gt.bool),
])
def test_creation_shapes_and_dtypes(make, shape, dtype):
    t = make()
    assert t.shape == shape and t.dtype == dtype and not t.requires_grad


def test_creation_values_and_requires_grad():
    np.testing.assert_array_equal(gt.arange(1, 7, 2).numpy(), [1, 3, 5])
    np.testing.assert_array_equal(gt.full((2,), 1.5).numpy(), [1.5, 1.5])
    np.testing.assert_array_equal(gt.ones(2).numpy(), [1.0, 1.0])
    for make in (lambda: gt.randn(2, requires_grad=True), lambda: gt.rand(2, requires_grad=True),
                 lambda: gt.zeros(2, requires_grad=True), lambda: gt.ones(2, requires_grad=True),
                 lambda: gt.zeros_like(gt.ones(2), requires_grad=True), lambda: gt.full((2,), 0.5, requires_grad=True),
                 lambda: gt.ones_like(gt.ones(2), requires_grad=True), lambda: gt.arange(0.0, 2.0, requires_grad=True)):
        t = make()
        assert t.requires_grad and t.is_leaf


def test_manual_seed():
    gt.manual_seed(0)
    a = gt.randn(5).numpy().copy()
    gt.manual_seed(0)
    np.testing.assert_array_equal(gt.randn(5).numpy(), a)


# ---- calls that code written against the public gt makes ---------------------------------------
def test_public_gt_calls():
    t = gt.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], requires_grad=True)
    np.testing.assert_array_equal(t.data.numpy(), [[1, 2, 3], [4, 5, 6]])
    assert [p.shape for p in t.split(1)] == [(1, 3), (1, 3)]
    assert [p.shape for p in t.split(2, axis=1)] == [(2, 2), (2, 1)]
    assert [p.shape for p in gt.randn(5, 2).split(2, 0)] == [(2, 2), (2, 2), (1, 2)]
    assert [p.shape for p in gt.randn(5, 2).chunk(2)] == [(3, 2), (2, 2)]
    assert [p.shape for p in gt.randn(6, 2).chunk(3, axis=0)] == [(2, 2)] * 3
    assert [p.shape for p in gt.randn(2, 6).chunk(4, dim=1)] == [(2, 2)] * 3  # like torch: fewer if short
    assert t.transpose().shape == (3, 2) and gt.randn(2, 3, 4).transpose().shape == (2, 4, 3)
    np.testing.assert_array_equal(t.transpose().numpy(), t.numpy().T)
    assert t.reshape(3, 2).shape == (3, 2) and t.reshape((3, 2)).shape == (3, 2) and t.reshape([6]).shape == (6,)
    z = gt.ones(3)
    assert z.zero_() is z and not z.numpy().any()
    r = gt.zeros(2)
    assert r.requires_grad_() is r and r.requires_grad
    assert gt.randn(2, 3).size() == (2, 3) and gt.randn(2, 3).size(-1) == 3 and gt.randn(2, 3).dim() == 2
    assert len(gt.randn(4, 2)) == 4 and gt.randn(2, 3).numel() == 6 and gt.randn(2, 3).ndim == 2
    assert gt.tensor([[1, 2]]).tolist() == [[1, 2]]
    rows = list(gt.tensor([[1.0, 2.0], [3.0, 4.0]]))
    assert len(rows) == 2 and rows[1].tolist() == [3.0, 4.0]
    first, second = gt.tensor([5, 6])
    assert first.item() == 5 and second.item() == 6


def test_dim_keepdim_aliases():
    a = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    t = gt.tensor(a)
    assert t.sum(dim=1, keepdim=True).shape == t.sum(axis=1, keepdims=True).shape == (2, 1, 4)
    np.testing.assert_array_equal(t.mean(dim=(0, 2)).numpy(), a.mean(axis=(0, 2)))
    np.testing.assert_array_equal(t.max(dim=-1).values.numpy(), a.max(-1))
    np.testing.assert_array_equal(t.min(dim=0, keepdim=True).values.numpy(), a.min(0, keepdims=True))
    np.testing.assert_allclose(t.var(dim=1).numpy(), a.var(1), rtol=1e-6)
    np.testing.assert_array_equal(t.argmax(dim=2).numpy(), a.argmax(2))
    np.testing.assert_allclose(t.softmax(dim=0).numpy(), t.softmax(axis=0).numpy())
    np.testing.assert_allclose(gt.log_softmax(t, dim=1).numpy(), t.log_softmax(1).numpy())
    assert gt.cat([t, t], dim=2).shape == (2, 3, 8) and gt.stack([t, t], dim=-1).shape == (2, 3, 4, 2)
    assert t.unsqueeze(dim=0).shape == (1, 2, 3, 4) and gt.randn(1, 3).squeeze(dim=0).shape == (3,)
    assert [p.shape for p in t.split(2, dim=2)] == [(2, 3, 2)] * 2
    with pytest.raises(TypeError, match="not both"):
        t.sum(axis=0, dim=1)


@pytest.mark.first_pass
def test_gt_exposes_nn_and_optim():
    code = ("import gt; assert gt.nn.Linear and gt.optim.SGD; "
            "from gt.nn import SGD; assert SGD is gt.optim.SGD; "
            "from gt.client import nn; assert nn is gt.nn; print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "ok" in out.stdout, out.stderr
    from gt.client import nn
    from gt.nn import SGD
    assert SGD is gt.optim.SGD and nn is gt.nn


# ---- comparisons, argmax ----------------------------------------------------------------------
def test_comparisons_are_bool_without_grad():
    a = gt.tensor([1.0, 2.0, 3.0], requires_grad=True)
    b = gt.tensor([3.0, 2.0, 1.0])
    for r, expected in [(a < b, [1, 0, 0]), (a <= b, [1, 1, 0]), (a > b, [0, 0, 1]), (a >= b, [0, 1, 1]),
                        (a == b, [0, 1, 0]), (a != b, [1, 0, 1]), (a > 1.5, [0, 1, 1]), (2.5 > a, [1, 1, 0])]:
        assert r.dtype == gt.bool and not r.requires_grad and r.grad_fn is None
        np.testing.assert_array_equal(r.numpy(), np.array(expected, dtype=bool))
    np.testing.assert_array_equal((~(a > 1.5)).numpy(), [True, False, False])
    np.testing.assert_array_equal(((a > 1.5) & (a < 2.5)).numpy(), [False, True, False])
    assert (a > 0).all() and (a > 2.5).any() and not (a > 5).any()


def test_argmax_has_no_grad():
    x = gt.tensor([[1.0, 5.0, 2.0], [7.0, 0.0, 1.0]], requires_grad=True)
    i = x.argmax(axis=1)
    assert i.dtype == gt.int64 and not i.requires_grad
    np.testing.assert_array_equal(i.numpy(), [1, 0])
    assert x.argmax().item() == 3 and gt.argmin(x, dim=0).tolist() == [0, 1, 1]
    np.testing.assert_array_equal(x.argmax(axis=-1, keepdims=True).numpy(), [[1], [0]])


# ---- views, not copies --------------------------------------------------------------------------
def test_views_share_memory():
    x = gt.randn(4, 6).replicate()  # one array (a sharded tensor's numpy() is a gathered copy)
    for view in (x.T, x.transpose(), x.reshape(2, 12), x.view(-1), x.permute(1, 0), x[1:3], x[:, 2],
                 x.unsqueeze(0), x.detach(), x.data, x.expand(3, 4, 6), x.flatten()):
        if gt.cuda.is_available():          # numpy() copies from a GPU: the storage's address instead
            assert x.data_ptr() <= view.data_ptr() < x.data_ptr() + x.nbytes
        else:
            assert np.shares_memory(view.numpy(), x.numpy())


# ---- numpy interop ----------------------------------------------------------------------------
def test_numpy_interop():
    t = gt.tensor([1.0, 2.0])
    arr = np.asarray(t)
    assert isinstance(arr, np.ndarray) and arr.dtype == np.float32
    assert np.asarray(t, dtype=np.float64).dtype == np.float64
    for r in (np.ones(2) + t, np.ones(2) * t, np.ones(2) - t, np.ones(2) / t, t + np.ones(2)):
        assert isinstance(r, gt.Tensor), type(r)
    np.testing.assert_array_equal((np.array([10.0, 20.0]) - t).numpy(), [9.0, 18.0])
    w = gt.tensor([1.0, 2.0], requires_grad=True)
    (np.array([3.0, 4.0]) * w).sum().backward()
    np.testing.assert_array_equal(w.grad.numpy(), [3.0, 4.0])
    np.testing.assert_array_equal((np.eye(2) @ gt.tensor([[1.0], [2.0]])).numpy(), [[1.0], [2.0]])
    assert float(gt.tensor(2.5)) == 2.5 and int(gt.tensor(3)) == 3


def test_numpy_integers_as_shapes_and_axes():
    n = np.prod((2, 3))  # a numpy integer
    assert gt.zeros(n).shape == (6,) and gt.randn(np.int64(2), 3).reshape(n).shape == (6,)
    assert gt.ones(2, 3).sum(axis=np.int64(1)).shape == (2,)
    assert gt.ones(2, 3).sum(axis=(np.int32(0), 1)).shape == ()
    assert gt.ones(4)[[]].shape == (0,)


def test_mean_of_integers_is_float32():
    assert gt.arange(4).mean().dtype == gt.float32 and gt.arange(4).mean().item() == 1.5
    assert (gt.arange(4) > 1).mean().item() == 0.5


def test_misc_methods():
    x = gt.tensor([[1.0, -2.0], [3.0, -4.0]], requires_grad=True)
    c = x.clone()
    assert c.requires_grad and not np.shares_memory(c.numpy(), x.numpy())
    assert x.masked_fill(x < 0, 0.0).tolist() == [[1.0, 0.0], [3.0, 0.0]]
    assert gt.where(x > 0, x, gt.zeros(2, 2)).tolist() == [[1.0, 0.0], [3.0, 0.0]]
    assert x.double().dtype == gt.float64 and x.float().dtype == gt.float32 and x.long().dtype == gt.int64
    assert x.to(gt.float64).requires_grad and x.astype("float64").dtype == gt.float64
    assert x.to(gt.float32) is x
    assert gt.exp(gt.tensor([0.0])).item() == 1.0
    assert gt.eye(2).tolist() == [[1.0, 0.0], [0.0, 1.0]] and gt.linspace(0, 1, 3).tolist() == [0.0, 0.5, 1.0]


@pytest.mark.parametrize("a_kind", ["f32", "f64", "i64", "bool", "float", "int", "pybool"])
@pytest.mark.parametrize("b_kind", ["f32", "f64", "i64", "bool", "float", "int", "pybool"])
def test_where_takes_torchs_dtype_and_values(a_kind, b_kind):
    """``gt.where`` promotes as ``torch.where`` does: an int or bool tensor meeting a float gives
    float32 (or the float tensor's dtype), two Python floats float32; numpy would give float64."""
    torch = pytest.importorskip("torch", reason="compares with torch.where")
    rng = np.random.default_rng(0)
    values = {"f32": rng.standard_normal(4).astype(np.float32), "f64": rng.standard_normal(4),
              "i64": np.arange(-2, 2), "bool": np.array([True, False, False, True]),
              "float": 0.5, "int": 3, "pybool": True}
    mask = np.array([True, False, True, False])

    def operand(kind, lib):
        v = values[kind]
        if not isinstance(v, np.ndarray):
            return v
        return gt.from_numpy(v.copy()) if lib is gt else torch.from_numpy(v.copy())

    ours = gt.where(gt.from_numpy(mask), operand(a_kind, gt), operand(b_kind, gt))
    theirs = torch.where(torch.from_numpy(mask), operand(a_kind, torch), operand(b_kind, torch))
    assert str(ours.dtype).split(".")[-1] == str(theirs.dtype).split(".")[-1]
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())


_INTS = np.arange(-2, 3)
_MASK = np.array([True, False, True, False, True])
# (gt program, torch program) on an int64 tensor x and a bool mask m
_INT_INPUTS = {
    "exp": (lambda x, m: x.exp(), None),
    "log": (lambda x, m: (x.abs() + 1).log(), None),
    "sqrt": (lambda x, m: x.abs().sqrt(), None),
    "sigmoid": (lambda x, m: x.sigmoid(), None),
    "tanh": (lambda x, m: x.tanh(), None),
    "sigmoid of a mask": (lambda x, m: m.sigmoid(), None),
    "softmax": (lambda x, m: x.softmax(-1), lambda x, m: x.softmax(-1, dtype=x.new_empty(0).float().dtype)),
    "relu keeps the integers": (lambda x, m: x.relu(), None),
    "clamp to floats": (lambda x, m: x.clamp(-0.5, 0.5), None),
    "clamp to ints": (lambda x, m: x.clamp(-1, 1), None),
    "clamp, min only": (lambda x, m: x.clamp(min=0.5), None),
    "masked_fill of a float into ints": (lambda x, m: x.masked_fill(m, -1.7), None),
    "masked_fill of a float into a mask": (lambda x, m: m.masked_fill(m, 0.5), None),
    "masked_fill of an int into floats": (lambda x, m: (x * 1.0).masked_fill(m, 2), None),
}


@pytest.mark.parametrize("name", list(_INT_INPUTS))
def test_integer_inputs_take_torchs_dtypes(name):
    """Floating functions of integer or bool tensors give float32 as in torch (numpy would give
    float64; gt's own kernels would have kept the integers: ``sigmoid`` of ints as 0 and 1), and
    ``masked_fill`` keeps the tensor's dtype."""
    torch = pytest.importorskip("torch", reason="compares with torch")
    ours_fn, theirs_fn = _INT_INPUTS[name]
    ours = ours_fn(gt.from_numpy(_INTS.copy()), gt.from_numpy(_MASK.copy()))
    theirs = (theirs_fn or ours_fn)(torch.from_numpy(_INTS.copy()), torch.from_numpy(_MASK.copy()))
    assert str(ours.dtype).split(".")[-1] == str(theirs.dtype).split(".")[-1]
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-6)


def test_empty_axes_softmax_as_torch_and_extrema_named():
    """A softmax over an empty axis is the empty tensor (torch's answer), with its gradient;
    the max of no element is an error that says so (numpy's names its ufunc)."""
    torch = pytest.importorskip("torch", reason="compares with torch")
    for axis in (0, 1):
        x = gt.zeros(0, 3, requires_grad=True)
        for fn in ("softmax", "log_softmax"):
            ours, theirs = getattr(x, fn)(axis), getattr(torch.zeros(0, 3), fn)(axis)
            assert ours.shape == tuple(theirs.shape)
            ours.sum().backward()
            assert x.grad.shape == (0, 3)
    assert gt.zeros(0, 3).max(1).shape == tuple(torch.zeros(0, 3).amax(1).shape) == (0,)
    for call in (lambda: gt.zeros(0, 3).max(0), lambda: gt.zeros(0, 3).min(), lambda: gt.zeros(2, 0).amax(1)):
        with pytest.raises(ValueError, match="is over no element"):
            call()


@pytest.mark.parametrize("name", ["exp", "sin", "sum", "floor"])
def test_function_forms_refuse_a_python_number_with_a_clear_error(name):
    # torch.exp(2.0) is a TypeError too; an array or a list is taken as a tensor
    with pytest.raises(TypeError, match=rf"{name}\(\): argument 'input' \(position 1\) must be Tensor, not float"):
        getattr(gt, name)(2.0)
    assert getattr(gt, name)([0.5, 1.5]).shape == ((2,) if name != "sum" else ())


def test_contiguous_lays_a_strided_view_out_row_major_as_torch():
    torch = pytest.importorskip("torch")
    base = np.arange(12.0).reshape(3, 4)
    for view in (lambda x: x.T, lambda x: x[:, ::2], lambda x: x.permute(1, 0)[1:]):
        g = view(gt.tensor(base, requires_grad=True))
        t = view(torch.tensor(base, requires_grad=True))
        gc, tc = g.contiguous(), t.contiguous()
        assert (g.is_contiguous(), gc.is_contiguous(), gc.stride()) == (t.is_contiguous(), tc.is_contiguous(), tc.stride())
        np.testing.assert_array_equal(gc.numpy(), tc.detach().numpy())
    x = gt.tensor(base, requires_grad=True)
    (x.T.contiguous() * gt.tensor(base.T)).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), base)            # the gradient passes through
    y = gt.ones(3, 4)
    assert y.contiguous() is y and y.contiguous(memory_format=torch.contiguous_format) is y


@pytest.mark.own_mesh
def test_contiguous_keeps_a_sharded_tensor_sharded():
    with use_mesh(2):
        x = gt.tensor(np.arange(24.0).reshape(8, 3)).shard(0)
        y = x.T.contiguous()
        assert y.placement == x.T.placement and y.is_contiguous()
        np.testing.assert_array_equal(y.numpy(), np.arange(24.0).reshape(8, 3).T)
