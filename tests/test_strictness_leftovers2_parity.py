"""Inputs torch 2.13 computes that gt refused, error types that were not torch's, the EMA/SWA
averages' bits and ``logsumexp``'s saved values, each beside torch:

- an integer ``gaussian_nll_loss`` input, a bool ``poisson_nll_loss`` input (with ``log_input``),
  integer ``hinge_embedding_loss`` inputs with ``reduction='sum'``/``'none'`` (an integer result, the
  margin truncated into the input's dtype), ``lu_unpack`` of integer, bool and half LU data, and
  half ``matrix_exp`` (gt's values are float32's rounded once: torch's half kernel is wrong from
  2 x 2 on) compute torch's dtypes and values; what torch still refuses is refused;
- ``kthvalue`` with k out of range (RuntimeError), ``index_select`` with an index of 2 dims
  (IndexError) or of bools (gt selected by mask), a bias of the wrong size given to a convolution,
  a transposed one (a grouped ConvTranspose fused with its BatchNorm), ``linear`` and ``bilinear``
  (RuntimeError) raise torch's types, and still gt's own documented ones;
- ``get_ema_multi_avg_fn``/``get_swa_multi_avg_fn`` are torch's ``lerp_`` to the bit (they were an
  ulp off in up to half of the elements);
- an in-place change of ``logsumexp``'s input or result before the backward raises, as torch's
  (its backward reads both; gt's composite read neither)."""

import numpy as np
import pytest

import gt
from gt.backend import B as ENGINE
from helpers import beside_torch_or_errors

torch = pytest.importorskip("torch")


def _dt(t):
    return str(t.dtype).split(".")[-1]


def _same(got, want, rtol=1e-6, atol=1e-7):
    assert _dt(got) == _dt(want), (got.dtype, want.dtype)
    if _dt(want) == "bfloat16":          # numpy has none: exact in float32
        got, want = got.float(), want.float()
    g, w = got.detach().numpy(), want.detach().numpy()
    if w.dtype.kind in "biu":
        np.testing.assert_array_equal(g, w)
    else:
        np.testing.assert_allclose(g.astype(np.float64), w.astype(np.float64), rtol=rtol, atol=atol)


def _ints(m, values, dtype="int64"):
    return m.tensor(values, dtype=getattr(m, dtype))


# ---- losses ----------------------------------------------------------------------------------
GAUSSIAN = {
    "int input, float target and var": lambda m: (_ints(m, [1, 5, -2]), m.tensor([2.0, 1.5, 0.0]),
                                                  m.tensor([1.0, 3.0, 0.5])),
    "int input and target, float var": lambda m: (_ints(m, [1, 5, -2]), _ints(m, [2, 1, 0]), m.tensor([1.0, 3.0, 0.5])),
    "int32 input, number var": lambda m: (_ints(m, [1, 5, -2], "int32"), _ints(m, [2, 1, 0]), 2.0),
    "int input, float16 var": lambda m: (_ints(m, [1, 5, -2]), _ints(m, [2, 1, 0]),
                                         m.tensor([1.0, 3.0, 0.5]).to(m.float16)),
    "int input, float64 var": lambda m: (_ints(m, [1, 5, -2]), _ints(m, [2, 1, 0]),
                                         m.tensor([1.0, 3.0, 0.5], dtype=m.float64)),
    "int input, 0-d float64 target": lambda m: (_ints(m, [1, 5, -2]), m.tensor(2.0, dtype=m.float64),
                                                m.tensor([1.0, 3.0, 0.5])),
    "int input, one var per row": lambda m: (_ints(m, [[1, 5], [2, 2]]), _ints(m, [[2, 1], [0, 0]]),
                                             m.tensor([1.0, 3.0])),
}


@pytest.mark.parametrize("reduction", ["none", "sum"])
@pytest.mark.parametrize("case", list(GAUSSIAN))
def test_gaussian_nll_loss_of_an_integer_input(case, reduction):
    got, want = beside_torch_or_errors(lambda m: m.nn.functional.gaussian_nll_loss(*GAUSSIAN[case](m), full=True, reduction=reduction))
    _same(got, want, rtol=1e-3 if _dt(want) == "float16" else 1e-6)


def test_gaussian_nll_loss_of_an_integer_input_differentiates_var_and_target():
    grads = []
    for m in (gt, torch):
        target, var = m.tensor([2.0, 1.5, 0.0], requires_grad=True), m.tensor([1.0, 3.0, 1e-8], requires_grad=True)
        m.nn.functional.gaussian_nll_loss(_ints(m, [1, 5, -2]), target, var).backward()
        grads.append((target.grad.numpy(), var.grad.numpy()))
    for g, w in zip(*grads):
        np.testing.assert_allclose(g, w, rtol=1e-6)


@pytest.mark.parametrize("call", [
    lambda m: m.nn.functional.gaussian_nll_loss(m.tensor([True, False]), m.tensor([1.0, 0.0]), m.ones(2)),
    lambda m: m.nn.functional.gaussian_nll_loss(m.tensor([True]), m.tensor([True]), m.ones(1)),
    lambda m: m.nn.functional.gaussian_nll_loss(_ints(m, [1, 2]), _ints(m, [1, 1]), _ints(m, [1, 1])),
], ids=["bool input", "bool input and target", "int var"])
def test_gaussian_nll_loss_still_refuses_as_torch(call):
    ours, theirs = beside_torch_or_errors(call)
    assert isinstance(theirs, RuntimeError) and isinstance(ours, RuntimeError), (ours, theirs)
    assert str(ours).split(";")[0][:40] == str(theirs)[:40]


B2 = lambda m: m.tensor([True, False, True])      # noqa: E731
POISSON = {
    "float target": lambda m: (B2(m), m.tensor([3.0, 1.0, 0.5]), {}),
    "float target, full": lambda m: (B2(m), m.tensor([3.0, 1.0, 0.5]), dict(full=True)),
    "int target, full": lambda m: (B2(m), _ints(m, [3, 2, 0]), dict(full=True)),
    "float16 target": lambda m: (B2(m), m.tensor([3.0, 1.0, 0.5]).to(m.float16), {}),
    "0-d float64 target": lambda m: (B2(m), m.tensor(3.0, dtype=m.float64), {}),
    "0-d input": lambda m: (m.tensor(True), m.tensor([3.0, 1.0]), {}),
}


@pytest.mark.parametrize("reduction", ["none", "mean"])
@pytest.mark.parametrize("case", list(POISSON))
def test_poisson_nll_loss_of_a_bool_input(case, reduction):
    def call(m):
        x, y, kw = POISSON[case](m)
        return m.nn.functional.poisson_nll_loss(x, y, reduction=reduction, **kw)
    got, want = beside_torch_or_errors(call)
    _same(got, want)        # exp(True) in float32 (the numpy engine's is an ulp above torch's)


@pytest.mark.parametrize("call", [
    lambda m: m.nn.functional.poisson_nll_loss(B2(m), m.ones(3), log_input=False),
    lambda m: m.nn.functional.poisson_nll_loss(B2(m), B2(m)),
    lambda m: m.nn.functional.poisson_nll_loss(m.ones(3), B2(m), full=True),     # gt computed it
], ids=["log_input=False", "bool target too", "bool target with full"])
def test_poisson_nll_loss_still_refuses_as_torch(call):
    ours, theirs = beside_torch_or_errors(call)
    assert isinstance(theirs, RuntimeError) and isinstance(ours, RuntimeError), (ours, theirs)
    assert "ubtraction" in str(ours) and "ubtraction" in str(theirs)


@pytest.mark.parametrize("reduction", ["none", "sum"])
@pytest.mark.parametrize("margin", [1.0, -1.5, 2.5, 200.7])
@pytest.mark.parametrize("dtype", ["int64", "int32", "int16", "int8", "uint8"])
def test_hinge_embedding_loss_of_integers_is_torch_s(dtype, margin, reduction):
    def call(m):
        x = _ints(m, [-3, 0, 3, 5] if dtype != "uint8" else [3, 0, 3, 5], dtype)
        return m.nn.functional.hinge_embedding_loss(x, _ints(m, [-1, -1, -1, 1]), margin=margin, reduction=reduction)
    got, want = beside_torch_or_errors(call)
    if isinstance(want, Exception):        # the margin does not fit the dtype: torch's overflow error
        assert isinstance(got, RuntimeError) and "without overflow" in str(got), (got, want)
        return
    _same(got, want)


@pytest.mark.parametrize("target", [
    lambda m: m.tensor([0, 2, -1, 1]), lambda m: m.tensor([0.0, 2.0, -1.0, 1.0]).to(m.float16),
    lambda m: m.tensor([True, False, True, True]), lambda m: m.tensor([[-1], [1]]),
], ids=["other values", "float16", "bool", "broadcast"])
def test_hinge_embedding_loss_of_integers_compares_the_target_in_its_dtype(target):
    got, want = beside_torch_or_errors(lambda m: m.nn.functional.hinge_embedding_loss(_ints(m, [-3, 0, 3, 5]), target(m),
                                                                      margin=-1.5, reduction="none"))
    _same(got, want)


@pytest.mark.parametrize("call", [
    lambda m: m.nn.functional.hinge_embedding_loss(_ints(m, [1, 2]), _ints(m, [1, -1])),
    lambda m: m.nn.functional.hinge_embedding_loss(m.tensor([True, False]), _ints(m, [1, -1]), reduction="sum"),
    lambda m: m.nn.functional.hinge_embedding_loss(_ints(m, [1, 2]), _ints(m, [1, -1]), margin=float("nan"),
                                                   reduction="sum"),
], ids=["mean of integers", "bool input", "nan margin"])
def test_hinge_embedding_loss_still_refuses_as_torch(call):
    ours, theirs = beside_torch_or_errors(call)
    assert isinstance(theirs, RuntimeError) and isinstance(ours, RuntimeError), (ours, theirs)


# ---- linear algebra ----------------------------------------------------------------------------
def _factored(shape, seed=0):
    a = torch.from_numpy(np.random.default_rng(seed).standard_normal(shape) * 3)
    return torch.linalg.lu_factor(a)


@pytest.mark.parametrize("flags", [(True, True), (False, True), (True, False)], ids=["both", "pivots", "data"])
@pytest.mark.parametrize("shape", [(3, 3), (2, 4, 3), (3, 5)])
@pytest.mark.parametrize("dtype", ["int64", "int16", "uint8", "bool", "float16"])
def test_lu_unpack_of_any_dtype_is_torch_s(dtype, shape, flags):
    lu, piv = _factored(shape)
    want = torch.lu_unpack(lu.to(getattr(torch, dtype)), piv, *flags)
    got = gt.lu_unpack(gt.tensor(lu.numpy()).to(getattr(gt, dtype)), gt.tensor(piv.numpy()), *flags)
    for g, w in zip(got, want):
        assert g.shape == tuple(w.shape)
        _same(g, w, rtol=0, atol=0)


def test_lu_unpack_of_half_data_differentiates_as_torch():
    lu, piv = _factored((3, 4))
    grads = []
    for m in (gt, torch):
        x = m.tensor(lu.numpy()).to(m.float16).requires_grad_()
        _, low, up = m.lu_unpack(x, m.tensor(piv.numpy()))
        (low.sum() * 2 + (up * up).sum()).backward()
        grads.append(x.grad)
    _same(*grads, rtol=1e-3)


def test_lu_unpack_still_refuses_as_torch():
    lu, piv = _factored((3, 3))
    for call in (lambda m: m.lu_unpack(m.tensor(lu.numpy()), m.tensor(piv.numpy()).to(m.int64)),
                 lambda m: m.lu_unpack(m.tensor([1, 2]), m.tensor(piv.numpy()))):
        ours, theirs = beside_torch_or_errors(call)
        assert isinstance(theirs, RuntimeError) and isinstance(ours, RuntimeError), (ours, theirs)


@pytest.mark.parametrize("dtype", ["float16"] + (["bfloat16"] if ENGINE.name == "torch" else []))   # (numpy: none)
@pytest.mark.parametrize("shape", [(1, 1), (2, 2), (2, 3, 3)])
def test_matrix_exp_of_half_matrices(dtype, shape):
    a = (np.random.default_rng(1).standard_normal(shape) * 0.6).astype(np.float32)
    w = np.random.default_rng(2).standard_normal(shape).astype(np.float32)
    x = gt.tensor(a).to(getattr(gt, dtype)).requires_grad_()
    y = gt.linalg.matrix_exp(x)
    (y * gt.tensor(w).to(x.dtype)).sum().backward()
    # torch's half kernel gives wrong values from 2 x 2 on (exp([[.1, .2], [.3, .4]]) has -2.1e4 on its
    # diagonal, NaN gradients): the reference is its float32 result, in the half dtype
    t = torch.tensor(a).to(getattr(torch, dtype)).float().requires_grad_()
    ty = torch.linalg.matrix_exp(t)
    (ty * torch.tensor(w).to(getattr(torch, dtype)).float()).sum().backward()
    assert _dt(torch.linalg.matrix_exp(torch.tensor(a).to(getattr(torch, dtype)))) == dtype == _dt(y)
    rtol = 1e-2 if dtype == "bfloat16" else 2e-3
    _same(y, ty.to(getattr(torch, dtype)), rtol=rtol, atol=rtol)
    _same(x.grad, t.grad.to(getattr(torch, dtype)), rtol=rtol, atol=rtol)
    assert _dt(gt.matrix_exp(x)) == dtype and _dt(x.matrix_exp()) == dtype


# ---- error types -------------------------------------------------------------------------------
ERRORS = {
    "kthvalue k above the size": (lambda m: m.arange(6.0).reshape(2, 3).kthvalue(4, 1), (IndexError,)),
    "kthvalue k 0": (lambda m: m.arange(6.0).reshape(2, 3).kthvalue(0, 0), (IndexError,)),
    "kthvalue of a 0-d tensor": (lambda m: m.tensor(1.0).kthvalue(2), (IndexError,)),
    "kthvalue of an empty dim": (lambda m: m.zeros(0).kthvalue(1), (IndexError,)),
    "kthvalue float k": (lambda m: m.arange(3.0).kthvalue(1.5), (TypeError,)),
    "index_select 2-d index": (lambda m: m.ones(2, 3).index_select(1, m.tensor([[0, 1]])), (ValueError,)),
    "index_select bool index": (lambda m: m.ones(2, 3).index_select(1, m.tensor([True, False, True])), (TypeError,)),
    "index_select float index": (lambda m: m.ones(2, 3).index_select(1, m.tensor([1.0])), (TypeError,)),
    "conv2d bias size": (lambda m: m.nn.functional.conv2d(m.ones(1, 2, 3, 3), m.ones(4, 2, 1, 1), m.ones(3)),
                         (ValueError,)),
    "conv_transpose2d bias size": (lambda m: m.nn.functional.conv_transpose2d(m.ones(1, 2, 3, 3), m.ones(2, 4, 1, 1),
                                                                              m.ones(3)), (ValueError,)),
    "linear bias size": (lambda m: m.nn.functional.linear(m.ones(2, 3), m.ones(4, 3), m.ones(3)), (ValueError,)),
    "bilinear bias size": (lambda m: m.nn.functional.bilinear(m.ones(2, 3), m.ones(2, 3), m.ones(4, 3, 3), m.ones(3)),
                           (ValueError,)),
}


@pytest.mark.first_pass        # checks of shapes, dtypes and numbers: no engine computes them
@pytest.mark.parametrize("name", list(ERRORS))
def test_errors_are_torch_s_types_and_gt_s(name):
    call, also = ERRORS[name]
    ours, theirs = beside_torch_or_errors(call)
    assert isinstance(theirs, Exception) and isinstance(ours, type(theirs)), (name, ours, theirs)
    assert isinstance(ours, also), (name, ours)
    if name.startswith("kthvalue k"):
        assert "k out of range" in str(ours) and str(ours).split("got ")[-1] in ("4", "0")


@pytest.mark.first_pass
def test_grouped_conv_transpose_fused_with_batch_norm_raises_torch_s_type():
    def call(m):
        m.manual_seed(0)
        conv, bn = m.nn.ConvTranspose2d(4, 4, 3, groups=4).eval(), m.nn.BatchNorm2d(4).eval()
        fused = m.nn.utils.fusion.fuse_conv_bn_eval(conv, bn, transpose=True)    # (4, 1, 3, 3) * 4 scales
        assert tuple(fused.weight.shape) == (4, 4, 3, 3)
        return fused(m.ones(1, 4, 2, 2))
    ours, theirs = beside_torch_or_errors(call)
    assert isinstance(theirs, RuntimeError) and isinstance(ours, RuntimeError), (ours, theirs)
    assert "16" in str(ours) and "16" in str(theirs)


# ---- EMA and SWA averages ----------------------------------------------------------------------
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("how", ["ema 0.7", "ema 0.999", "ema 0.3", "swa"])
def test_multi_avg_fns_are_torch_s_lerp_to_the_bit(how, dtype):
    rng = np.random.default_rng(0)
    steps = [rng.standard_normal((32, 32)).astype(dtype) for _ in range(5)]
    out = []
    for m in (gt, torch):
        S = m.optim.swa_utils
        fn = S.get_swa_multi_avg_fn() if how == "swa" else S.get_ema_multi_avg_fn(float(how.split()[1]))
        avg = [m.tensor(steps[0].copy())]
        for n, current in enumerate(steps[1:], 1):
            fn(avg, [m.tensor(current)], m.tensor(n))
        out.append(avg[0].numpy())
    np.testing.assert_array_equal(*out)


# ---- logsumexp's saved input and result ---------------------------------------------------------
def _lse_input_changed(m, x):
    h = x * 1
    y = h.logsumexp(1)
    h.add_(1)
    return y.sum()


def _lse_result_changed(m, x):
    y = (x * 1).logsumexp(1, keepdim=True)
    y.mul_(2)
    return y.sum()


def _lse_base_changed(m, x):
    h = x * 1
    y = h[0].logsumexp(0)      # a view's base changed elsewhere: views share the version
    h[1].add_(1)
    return y


def _lse_leaf_changed(m, x):
    y = x.logsumexp((0, 1))
    with m.no_grad():
        x.add_(1)
    return y


def _lse_copy_changed(m, x):
    z = (x * 1).logsumexp(1) * 1
    z.add_(1)              # a later op's result: nothing saved changes
    return z.sum()


@pytest.mark.parametrize("case, refused", [(_lse_input_changed, True), (_lse_result_changed, True),
                                           (_lse_base_changed, True), (_lse_leaf_changed, True),
                                           (_lse_copy_changed, False)],
                         ids=["input", "result", "base of the input", "leaf under no_grad", "later result"])
def test_logsumexp_refuses_an_in_place_change_of_what_torch_saves(case, refused):
    grads = []
    for m in (gt, torch):
        x = m.tensor([[1.0, 2.0, 3.0], [0.0, -1.0, 4.0]], requires_grad=True)
        loss = case(m, x)
        if refused:
            with pytest.raises(RuntimeError, match="modified by an inplace operation"):
                loss.backward()
        else:
            loss.backward()
            grads.append(x.grad.numpy())
    if grads:
        np.testing.assert_allclose(*grads, rtol=1e-6)
