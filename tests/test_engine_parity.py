"""The numpy and torch engines against each other and against torch 2.13: differences a
differential fuzzer of random gt programs found (one engine, or the op above both, off torch).
Each test computes with the engine this run uses (GT_BACKEND) and compares with torch or with
fixed values, so that the suite's numpy and torch passes check both engines."""

import numpy as np
import pytest
from scipy import special

import gt
from gt.sharding import use_mesh

torch = pytest.importorskip("torch")
F = gt.nn.functional
TF = torch.nn.functional

HALF_VALUES = np.round(np.random.default_rng(7).standard_normal((3, 257)) * 3, 2).astype(np.float16)


# ---- random draws: one generator on the host, the same numbers on both engines -------------------
def test_float16_draws_are_the_host_generators_numbers():
    # the numpy engine's definition (gt/backend/numpy_engine.py): float64 draws, halves on their grid
    rng = np.random.default_rng(3)
    uniform = (np.floor(rng.random(5) * 2048.0) / 2048.0).astype(np.float16)
    normal = rng.standard_normal(4).astype(np.float16)
    gt.manual_seed(3)
    np.testing.assert_array_equal(gt.rand(5, dtype=gt.float16).numpy(), uniform)
    np.testing.assert_array_equal(gt.randn(4, dtype=gt.float16).numpy(), normal)


# ---- float16 arithmetic computed in float32 and rounded once, as torch's CPU kernels ------------
@pytest.mark.parametrize("dim", [0, 1, None])
def test_float16_sum_adds_in_float32(dim):
    x = HALF_VALUES
    kw = {} if dim is None else {"dim": dim}
    with use_mesh(1):      # over a sharded axis each device's share is rounded first (MISSING)
        got = gt.tensor(x).sum(**kw)
    want = torch.tensor(x).sum(**kw)
    assert got.dtype == gt.float16
    np.testing.assert_array_equal(got.numpy(), want.numpy())


def test_float16_gelu_keeps_the_small_tail():
    x = np.array([-4.03, -6.0, -2.5, 2.2, 0.7, -0.3, 8.0], dtype=np.float16)
    got = F.gelu(gt.tensor(x)).numpy()
    want = TF.gelu(torch.tensor(x)).numpy()
    assert got[0] != 0                      # 1 + erf(x / sqrt 2) cancelled to 0 in float16
    np.testing.assert_allclose(got.astype(np.float64), want.astype(np.float64), rtol=1e-3, atol=1e-7)


def test_float16_gelu_and_sigmoid_match_torch_over_many_values():
    x = HALF_VALUES
    got = F.gelu(gt.tensor(x)).numpy().astype(np.float64)
    want = TF.gelu(torch.tensor(x)).numpy().astype(np.float64)
    wide = x.astype(np.float64)
    exact = wide * 0.5 * (1.0 + special.erf(wide / np.sqrt(2.0)))
    ulp = np.spacing(np.abs(exact).astype(np.float16)).astype(np.float64)
    # the numpy engine computes in float32 and rounds once: within half a unit in the last place of
    # the exact value; the torch engine runs torch's float16 kernel, whose tail depends on the CPU (a
    # unit from the numpy engine's with AVX2, up to 3 units off the exact value with AVX-512)
    assert np.all((np.abs(got - exact) <= 0.5001 * ulp) | (got == want))
    assert np.all(np.abs(got - want) <= 4 * ulp)
    np.testing.assert_array_equal(gt.tensor(x).sigmoid().numpy(), torch.tensor(x).sigmoid().numpy())


def test_float16_layer_norm_and_group_norm_round_once():
    x = HALF_VALUES.reshape(3, 1, 257)
    w = np.linspace(0.5, 1.5, 257).astype(np.float16)
    got = F.layer_norm(gt.tensor(x), (257,), gt.tensor(w), gt.tensor(w))
    want = TF.layer_norm(torch.tensor(x), (257,), torch.tensor(w), torch.tensor(w))
    np.testing.assert_array_equal(got.numpy(), want.numpy())
    module = gt.nn.LayerNorm(257).half()
    np.testing.assert_array_equal(module(gt.tensor(x)).detach().numpy(),
                                  TF.layer_norm(torch.tensor(x), (257,)).numpy())
    g = HALF_VALUES.reshape(3, 257)[:, :256].reshape(3, 4, 64)
    got = F.group_norm(gt.tensor(g), 2)
    want = TF.group_norm(torch.tensor(g), 2)
    assert got.dtype == gt.float16
    np.testing.assert_array_equal(got.numpy(), want.numpy())


# ---- losses: an infinite difference has a finite gradient, a NaN one a NaN gradient -------------
@pytest.mark.parametrize("name", ["huber_loss", "smooth_l1_loss"])
def test_robust_losses_gradient_at_infinity(name):
    values = [float("inf"), -float("inf"), 0.3, 2.0, float("nan")]
    target = [0.5, 0.1, 0.0, -1.0, 0.0]
    grads = []
    for mod in (gt, torch):
        x = mod.tensor(values, dtype=mod.float64, requires_grad=True)
        loss = getattr(mod.nn.functional, name)(x, mod.tensor(target, dtype=mod.float64), reduction="none")
        loss.sum().backward()
        grads.append(np.asarray(x.grad.tolist()))
    np.testing.assert_array_equal(grads[0], grads[1])
    assert grads[0][0] == 1.0 and grads[0][1] == -1.0


# ---- errors -------------------------------------------------------------------------------------
def test_bool_arange_raises_as_torch():
    with pytest.raises(NotImplementedError, match="arange_cpu"):
        torch.arange(2, dtype=torch.bool)
    with pytest.raises(NotImplementedError, match="arange_cpu"):
        gt.arange(2, dtype=gt.bool)


@pytest.mark.parametrize("case", ["bool - bool", "bool - True", "True - bool", "bool - 1", "1 - bool", "int - bool",
                                  "bool.sub_(bool)", "bool - 0-d bool"])
def test_subtraction_with_bool_tensors_raises_torch_error(case):
    messages = []
    for mod in (gt, torch):
        b, i = mod.tensor([True, False]), mod.tensor([1, 2])
        run = {"bool - bool": lambda: b - b, "bool - True": lambda: b - True, "True - bool": lambda: True - b,
               "bool - 1": lambda: b - 1, "1 - bool": lambda: 1 - b, "int - bool": lambda: i - b,
               "bool.sub_(bool)": lambda: b.clone().sub_(b), "bool - 0-d bool": lambda: b - mod.tensor(True)}[case]
        with pytest.raises(RuntimeError) as info:
            run()
        messages.append(str(info.value))
    assert messages[0] == messages[1]


@pytest.mark.parametrize("case", ["x * 2**31", "x + 2**40", "2**40 - x", "x - 2**33", "x * 3"])
def test_int32_with_a_python_int_beyond_its_range_wraps_as_torch(case):
    results = []
    for mod in (gt, torch):
        x = mod.tensor([1, -3, 7], dtype=mod.int32)
        out = eval(case, {"x": x})
        assert str(out.dtype).endswith("int32")
        results.append(out.tolist())
    assert results[0] == results[1]


@pytest.mark.parametrize("n", [2 ** 63, 2 ** 64 - 1, -2 ** 63, 2 ** 64, -2 ** 63 - 1, 2 ** 70])
def test_int32_with_a_python_int_past_64_bits_raises_as_torch(n):
    x, t = gt.tensor([1, 2], dtype=gt.int32), torch.tensor([1, 2], dtype=torch.int32)
    try:
        want = (t + n).tolist()
    except OverflowError:
        with pytest.raises(OverflowError):
            x + n
    else:
        assert (x + n).tolist() == want


def test_add_with_alpha_keeps_torchs_dtype_for_a_bool_operand():
    results = []
    for mod in (gt, torch):
        a, b = mod.tensor([[3, -3, -1]], dtype=mod.int32), mod.tensor([[True, False, True]])
        h, hb = mod.tensor([1.5, 2.0], dtype=mod.float16), mod.tensor([True, False])
        outs = [mod.add(a, b, alpha=2), a.add(b, alpha=-3), h.add(hb, alpha=2)]
        results.append([(o.tolist(), str(o.dtype).split(".")[-1]) for o in outs])
        with pytest.raises(RuntimeError, match="with a bool tensor is not supported"):
            a.sub(b, alpha=2)
    assert results[0] == results[1]


@pytest.mark.parametrize("case", ["x.add_(y, alpha=True)", "x.add(y, alpha=True)", "x.sub_(y, alpha=True)",
                                  "x.sub(y, alpha=False)", "M.add(x, y, alpha=True)", "M.subtract(x, y, alpha=True)",
                                  "M.rsub(x, y, alpha=True)", "x.add_(2, alpha=True)", "i.add_(i, alpha=True)",
                                  "b.add(i, alpha=True)", "b.add(3, alpha=True)", "x.add(b, alpha=True)",
                                  "c.add(c, alpha=True)", "b.add(b, alpha=2.5)"])
def test_a_bool_alpha_is_refused_unless_the_result_is_bool_as_torch(case):
    # gt took True as 1 (torch: "Boolean alpha only supported for Boolean results")
    for mod in (gt, torch):
        names = {"M": mod, "x": mod.ones(3), "y": mod.ones(3), "i": mod.ones(3, dtype=mod.int64),
                 "b": mod.tensor([True, False, True]), "c": mod.ones(2, dtype=mod.complex64)}
        with pytest.raises(RuntimeError, match="(?i)alpha"):
            eval(case, names)


def test_alpha_of_a_bool_result_is_read_as_a_bool_as_torch():
    # gt computed b + 2 * b in int64 ([3, 0, 3]); torch's result is bool: b or (bool(alpha) and b)
    results = []
    for mod in (gt, torch):
        b, c = mod.tensor([True, False, True]), mod.tensor([False, False, True])
        outs = [b.add(b, alpha=2), c.add(b, alpha=0), c.add(b, alpha=True), c.add(b, alpha=False),
                mod.add(c, b, alpha=-3), c.add(True, alpha=2), c.clone().add_(b, alpha=2), c.clone().add_(b, alpha=0)]
        results.append([(o.tolist(), str(o.dtype).split(".")[-1]) for o in outs])
    assert results[0] == results[1]


@pytest.mark.parametrize("case", ["True - x", "x - False", "x.sub(True)", "x.sub_(True)", "x.sub(True, alpha=2)"])
def test_subtracting_a_python_bool_raises_torch_error(case):
    for mod in (gt, torch):
        x = mod.tensor([1.0, 2.0])
        with pytest.raises(RuntimeError, match="with a bool tensor is not supported"):
            eval(case, {"x": x})
