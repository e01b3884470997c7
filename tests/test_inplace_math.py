"""torch's in-place math methods (``x.exp_()``, ``x.clamp_(0, 1)``, ``x.lt_(y)``...), the
comparison methods, the random fills and ``detach_`` (gt/tensor/inplace_math.py), each beside
torch: the values written, the tensor returned, its dtype kept, the gradients when the change is
recorded on the tape, and the errors."""

import numpy as np
import pytest

import gt
from gt.tensor.inplace_math import ARITHMETIC, LOGICAL

torch = pytest.importorskip("torch")

DOMAIN = {  # where each op is defined and smooth (the default: -2..2)
    **dict.fromkeys(("log", "log2", "log10", "log1p", "sqrt", "rsqrt", "reciprocal", "pow"), (0.5, 2.0)),
    **dict.fromkeys(("asin", "acos", "atanh", "arcsin", "arccos", "arctanh", "erfinv"), (-0.8, 0.8)),
    **dict.fromkeys(("acosh", "arccosh"), (1.5, 3.0)),
    "logit": (0.2, 0.8),
}
SHAPE = (3, 4)


def _other(seed, low=0.5, high=2.0):
    return np.random.default_rng(seed).uniform(low, high, SHAPE)


def _args(name, to):
    """The arguments of ``name`` (besides self), made by ``to`` (gt.tensor or torch.tensor) from
    numpy arrays; ``None`` when the op takes none."""
    mask = np.random.default_rng(9).random(SHAPE) < 0.4
    table = {
        "clamp": (-0.5, 0.5), "clip": (-0.5, 0.5), "clamp_min": (0.1,), "clamp_max": (0.2,), "pow": (to(_other(1)),),
        "lerp": (to(_other(2)), 0.3), "atan2": (to(_other(3)),), "arctan2": (to(_other(3)),),
        "hypot": (to(_other(4)),), "xlogy": (to(_other(5)),), "remainder": (1.3,), "true_divide": (to(_other(6)),),
        "divide": (to(_other(6)),), "multiply": (to(_other(7)),), "subtract": (to(_other(8)),),
        "floor_divide": (0.7,), "masked_fill": (to(mask), 0.5), "triu": (1,), "cumsum": (0,), "cumprod": (1,),
        "round": (), "tril": (),
    }
    return table.get(name, ())


def _values(name, seed=0):
    low, high = DOMAIN.get(name, (-2.0, 2.0))
    return np.random.default_rng(seed).uniform(low, high, SHAPE)


@pytest.mark.parametrize("name", ARITHMETIC)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_in_place_arithmetic_writes_torchs_values(name, dtype):
    v = _values(name).astype(dtype)
    x = gt.tensor(v)
    got = getattr(x, f"{name}_")(*_args(name, lambda a: gt.tensor(a.astype(dtype) if isinstance(a, np.ndarray)
                                                                    and a.dtype.kind == "f" else a)))
    t = torch.tensor(v)
    getattr(t, f"{name}_")(*_args(name, lambda a: torch.tensor(a.astype(dtype) if a.dtype.kind == "f" else a)))
    assert got is x and x.dtype == getattr(gt, dtype) and x.shape == SHAPE
    np.testing.assert_allclose(x.numpy(), t.numpy(), rtol=1e-5 if dtype == "float32" else 1e-12, atol=1e-6)


GRAD_OTHER = ("pow", "lerp", "atan2", "arctan2", "hypot", "xlogy", "true_divide", "divide", "multiply", "subtract")


@pytest.mark.parametrize("name", [n for n in ARITHMETIC if n != "floor_divide"])
def test_in_place_arithmetic_on_the_tape_gives_torchs_gradients(name):
    """``y = a * 1.5; y.<name>_(...)``: a's gradient (and the other operand's) as torch's for the
    same op out of place (torch has no in-place derivative for some, asinh_ among them)."""
    v = _values(name) / 1.5
    w = np.random.default_rng(1).standard_normal(SHAPE)
    grads = []
    for lib, make in ((gt, lambda a, g=False: gt.tensor(a, requires_grad=g, dtype=gt.float64)),
                      (torch, lambda a, g=False: torch.tensor(a, requires_grad=g, dtype=torch.float64))):
        a = make(v, True)
        args = _args(name, lambda arr: make(arr, name in GRAD_OTHER) if arr.dtype.kind == "f" else make(arr).bool()
                     if lib is torch else gt.tensor(arr))
        y = a * 1.5
        if lib is gt:
            assert getattr(y, f"{name}_")(*args) is y
        else:
            y = getattr(y, name)(*args)
        (y * make(w)).sum().backward()
        other = [p.grad for p in args if hasattr(p, "requires_grad") and p.requires_grad]
        grads.append([a.grad] + other)
    for g, t in zip(*grads):
        np.testing.assert_allclose(g.numpy(), t.numpy(force=True), rtol=1e-9, atol=1e-12, err_msg=name)


@pytest.mark.parametrize("name", LOGICAL)
@pytest.mark.parametrize("dtype", ["float32", "int64"])
def test_comparisons_in_place_write_zeros_and_ones_in_the_tensors_dtype(name, dtype):
    rng = np.random.default_rng(2)
    v, o = rng.integers(-2, 3, SHAPE).astype(dtype), rng.integers(-2, 3, SHAPE).astype(dtype)
    args = () if name == "logical_not" else (o,)
    x = gt.tensor(v)
    assert getattr(x, f"{name}_")(*[gt.tensor(a) for a in args]) is x
    t = torch.tensor(v)
    getattr(t, f"{name}_")(*[torch.tensor(a) for a in args])
    assert x.dtype == getattr(gt, dtype)
    np.testing.assert_array_equal(x.numpy(), t.numpy())
    if name != "logical_not":     # the out-of-place method and the gt. function: torch's bools
        np.testing.assert_array_equal(getattr(gt.tensor(v), name)(gt.tensor(o)).numpy(),
                                      getattr(torch.tensor(v), name)(torch.tensor(o)).numpy())
        logical = name.startswith("logical")        # torch's logical ops want a tensor (gt's too)
        np.testing.assert_array_equal(getattr(gt, name)(gt.tensor(v), gt.tensor(0) if logical else 0).numpy(),
                                      getattr(torch, name)(torch.tensor(v), torch.tensor(0) if logical else 0).numpy())


def test_a_comparison_in_place_on_the_tape_cuts_the_gradient_as_torch():
    a = gt.tensor([1.0, -2.0, 3.0], requires_grad=True)
    y = a * 2
    y.gt_(0)
    (y * 3).sum().backward()
    np.testing.assert_array_equal(y.numpy(), [1.0, 0.0, 1.0])
    np.testing.assert_array_equal(a.grad.numpy(), [0.0, 0.0, 0.0])


def test_aliases_and_logical_xor():
    v = np.array([-1.5, 0.0, 2.5])
    for name in ("absolute", "fix", "sgn"):
        np.testing.assert_array_equal(getattr(gt.tensor(v), name)().numpy(), getattr(torch.tensor(v), name)().numpy())
        np.testing.assert_array_equal(getattr(gt, name)(gt.tensor(v)).numpy(), getattr(torch, name)(torch.tensor(v)).numpy())
    np.testing.assert_array_equal(gt.tensor(v).logical_xor(gt.tensor([1.0, 1.0, 0.0])).numpy(),
                                  torch.tensor(v).logical_xor(torch.tensor([1.0, 1.0, 0.0])).numpy())


def test_an_earlier_use_keeps_the_old_values_and_a_view_follows():
    a = gt.tensor([0.5, 1.0, 2.0], requires_grad=True)
    ta = torch.tensor([0.5, 1.0, 2.0], requires_grad=True)
    out = []
    for x in (a, ta):
        y = x * 1.0
        before = y * 2                  # read before the change
        view = y[1:]
        y.exp_()
        (before.sum() + (view * view).sum()).backward()
        out.append((view.detach().numpy().copy() if x is ta else view.numpy(), x.grad.numpy()))
    np.testing.assert_allclose(out[0][0], out[1][0], rtol=1e-6)
    np.testing.assert_allclose(out[0][1], out[1][1], rtol=1e-6)


def test_in_place_math_on_a_view_changes_the_base_under_no_grad():
    x = gt.tensor([[1.0, 4.0], [9.0, 16.0]])
    x[1:].sqrt_()
    x[:, 0].neg_()
    np.testing.assert_array_equal(x.numpy(), [[-1.0, 4.0], [-3.0, 4.0]])


def test_a_row_of_a_tensor_sharded_along_it_changes_that_tensor_in_place():
    """``x[i]`` of a tensor sharded on dim 0 lives on one device: gt hands out a copy, which an in-place
    change writes back into x (gt/tensor/mesh_row_write.py), as torch changes x through the view (gt
    refused, and before that left x as it was)."""
    x = gt.tensor([[1.0, 4.0], [9.0, 16.0], [1.0, 2.0], [3.0, 4.0]]).shard(0)
    row = x[1]
    row.sqrt_()
    np.testing.assert_array_equal(x.numpy()[1], [3.0, 4.0])
    row.add_(1)
    row[0] = 5.0
    np.testing.assert_array_equal(x.numpy()[1], [5.0, 5.0])
    np.testing.assert_array_equal(row.numpy(), [5.0, 5.0])
    x[3] += 1                                            # Python writes x[3] back too
    np.testing.assert_array_equal(x.numpy()[3], [4.0, 5.0])
    row = x[2].clone()
    row.add_(1)                                          # a copy made on purpose: x stays
    np.testing.assert_array_equal(row.numpy(), [2.0, 3.0])
    np.testing.assert_array_equal(x.numpy()[2], [1.0, 2.0])


def test_errors_are_torchs():
    with pytest.raises(RuntimeError, match="result type Float can't be cast to the desired output type Long"):
        gt.tensor([1, 4]).sqrt_()
    with pytest.raises(RuntimeError) as theirs:
        torch.tensor([1, 4]).sqrt_()
    assert "result type Float can't be cast to the desired output type Long" in str(theirs.value)
    assert gt.tensor([1, -4]).abs_().tolist() == [1, 4]                         # int results keep int
    leaf = gt.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
        leaf.exp_()
    with gt.no_grad():
        leaf.exp_()                                                             # as an optimizer would
    np.testing.assert_allclose(leaf.numpy(), np.exp([1.0, 2.0]), rtol=1e-6)
    with pytest.raises(ValueError, match="cannot be written into shape"):
        gt.tensor([1.0, 2.0]).pow_(gt.ones(3, 2))


@pytest.mark.parametrize("fill, args, mean, std", [
    ("normal_", (1.0, 2.0), 1.0, 2.0),
    ("uniform_", (-1.0, 3.0), 1.0, 4.0 / np.sqrt(12)),
    ("bernoulli_", (0.3,), 0.3, np.sqrt(0.21)),
    ("exponential_", (2.0,), 0.5, 0.5),
])
def test_random_fills_draw_torchs_distributions_from_gts_generator(fill, args, mean, std):
    n = 200_000
    x = gt.empty(n)
    assert getattr(x, fill)(*args) is x and x.dtype == gt.float32 and x.shape == (n,)
    got = x.numpy().astype(np.float64)
    # the sample mean and spread within 6 standard errors of the distribution's
    assert abs(got.mean() - mean) < 6 * std / np.sqrt(n)
    assert abs(got.std() - std) < 0.02 * std
    t = getattr(torch.empty(n, dtype=torch.float64), fill)(*args).numpy()
    assert abs(got.mean() - t.mean()) < 8 * std / np.sqrt(n)
    gt.manual_seed(5)
    first = getattr(gt.empty(64), fill)(*args).numpy()
    gt.manual_seed(5)
    np.testing.assert_array_equal(getattr(gt.empty(64), fill)(*args).numpy(), first)


def test_random_fills_check_their_arguments():
    # torch's exception types and words (tests/test_random_testing_parity.py runs them beside torch)
    with pytest.raises(RuntimeError, match="std >= 0"):
        gt.empty(3).normal_(0.0, -1.0)
    with pytest.raises(RuntimeError, match=r"\[from, to\) range"):
        gt.empty(3).uniform_(2.0, 1.0)
    with pytest.raises(RuntimeError, match=r"p to be in \[0, 1\]"):
        gt.empty(3).bernoulli_(1.5)
    with pytest.raises(RuntimeError, match="lambda > 0"):
        gt.empty(3).exponential_(0.0)
    with pytest.raises(NotImplementedError, match="not implemented for 'Long'"):
        gt.zeros(3, dtype=gt.int64).normal_()
    with pytest.raises(TypeError, match="generator"):
        gt.empty(3).normal_(generator=object())
    assert gt.empty(4).uniform_(**{"from": 2.0, "to": 2.0}).tolist() == [2.0] * 4
    b = gt.zeros(1000, dtype=gt.int64).bernoulli_(gt.full((1000,), 1.0))
    assert b.dtype == gt.int64 and b.tolist() == [1] * 1000
    w = gt.zeros(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf Variable"):
        w.normal_()
    with gt.no_grad():
        w.normal_()                       # weight initialisation, as torch code does it
    assert w.requires_grad and w.is_leaf


def test_detach_in_place_stops_the_gradient():
    a = gt.tensor([1.0, 2.0], requires_grad=True)
    h = a * 3
    assert h.detach_() is h and not h.requires_grad and h.is_leaf
    (h * a).sum().backward()
    np.testing.assert_array_equal(a.grad.numpy(), [3.0, 6.0])     # through a only, as torch
    ta = torch.tensor([1.0, 2.0], requires_grad=True)
    th = ta * 3
    th.detach_()
    (th * ta).sum().backward()
    np.testing.assert_array_equal(a.grad.numpy(), ta.grad.numpy())
    m = gt.ones(2, 3, requires_grad=True)
    with pytest.raises(RuntimeError, match="view"):
        (m * 2)[0].detach_()


def test_sharded_tensors_change_in_place_as_unsharded_ones():
    # on a mesh of several devices (GT_DEVICES=N) the tensors are split over it; on one, shard() is a no-op
    v = np.random.default_rng(4).uniform(0.5, 2.0, (8, 3))
    programs = [lambda t: t.sqrt_(), lambda t: t.clamp_(0.7, 1.5), lambda t: t.pow_(t), lambda t: t.lt_(1.0),
                lambda t: t.masked_fill_(t > 1.2, 0.0), lambda t: t.lerp_(t * 0 + 1.0, 0.25)]
    for program in programs:
        want = program(gt.tensor(v))
        s = gt.tensor(v).shard(0)
        got = program(s)
        assert got is s
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-12)
        a, b = gt.tensor(v, requires_grad=True), gt.tensor(v, requires_grad=True)
        y, z = a * 1.0, b.shard(0) * 1.0
        program(y), program(z)
        (y * y).sum().backward()
        (z * z).sum().backward()
        np.testing.assert_allclose(b.grad.numpy(), a.grad.numpy(), rtol=1e-12)
    with gt.no_grad():
        gt.manual_seed(3)
        s = gt.empty(8, 3).shard(0).normal_()
        gt.manual_seed(3)
        np.testing.assert_array_equal(s.numpy(), gt.empty(8, 3).normal_().numpy())


@pytest.mark.parametrize("write", ["add_", "mul_", "copy_", "+=", "add_ on the tape"])
def test_writes_into_an_expanded_tensor_raise_torch_s_error(write):
    def run(m):
        x = m.ones(3).expand(2, 3)
        if write == "add_":
            x.add_(1)
        elif write == "mul_":
            x.mul_(2)
        elif write == "copy_":
            x.copy_(m.zeros(2, 3))
        elif write == "+=":
            x += 1
        else:
            y = (m.ones(3, requires_grad=True) * 2).expand(2, 3)
            y.add_(1)

    messages = []
    for m in (torch, gt):
        with pytest.raises(RuntimeError, match="more than one element of the written-to tensor") as e:
            run(m)
        messages.append(str(e.value))
    assert messages[0] == messages[1]


def test_one_value_written_into_an_expanded_tensor():
    # torch writes it into the memory the elements share (fill_, and an item assignment whose
    # written elements do not share memory), on both of gt's engines too
    got = []
    for m in (torch, gt):
        base = m.zeros(3)
        x = base.expand(2, 3)
        x[0] = 5.0
        got.append(base.tolist())
        with pytest.raises(RuntimeError, match="more than one element of the written-to tensor"):
            x[:, 1] = 4.0            # the view x[:, 1]: two elements, one memory
        got.append(base.tolist())
        x.fill_(2.0)
        got.append(base.tolist())
    assert got[:3] == got[3:] == [[5.0, 5.0, 5.0], [5.0, 5.0, 5.0], [2.0, 2.0, 2.0]]


# Over a mesh whose blocks split the expanded dim (3 devices, one element of `base` each) gt wrote
# x[:, 1] = 4.0 where torch refuses (its overlap test ran on one device only).
EXPANDED_INDEXES = {"[:, 1]": (slice(None), 1), "[:, :]": (slice(None), slice(None)), "[1]": 1,
                    "[:, 0:1]": (slice(None), slice(0, 1)), "[..., 2]": (Ellipsis, 2),
                    "[None, 1, 0:2]": (None, 1, slice(0, 2)), "[:, None, 1]": (slice(None), None, 1),
                    "[0, 1:]": (0, slice(1, None))}


@pytest.mark.own_mesh
@pytest.mark.parametrize("devices", [1, 2, 3])
@pytest.mark.parametrize("name", sorted(EXPANDED_INDEXES))
def test_item_assignment_into_an_expanded_tensor_on_a_mesh(devices, name):
    from gt.sharding import use_mesh

    got = []
    with use_mesh(devices):
        for m in (torch, gt):
            base = m.zeros(3)
            x = base.expand(2, 3)
            try:
                x[EXPANDED_INDEXES[name]] = 4.0
            except RuntimeError as e:
                got.append(("raise", str(e).split(".")[0]))
            else:
                got.append(("wrote", base.tolist()))
    assert got[0] == got[1]


@pytest.mark.parametrize("op", ["add_", "mul_", "copy_", "masked_fill_", "lerp_"])
def test_a_value_that_broadcasts_past_the_tensor_raises_torchs_class(op):
    """torch raises RuntimeError ("output with shape [1] doesn't match the broadcast shape [2]"); gt's
    ShapeError is one (and a ValueError, what gt raised before)."""
    calls = {"add_": lambda L, x: x.add_(L.zeros(2)), "mul_": lambda L, x: x.mul_(L.zeros(2)),
             "copy_": lambda L, x: x.copy_(L.zeros(2)),
             "masked_fill_": lambda L, x: x.masked_fill_(L.tensor([True, False]), 1.0),
             "lerp_": lambda L, x: x.lerp_(L.zeros(2), 0.5)}
    for lib in (torch, gt):
        x = lib.zeros(1)
        with pytest.raises(RuntimeError):
            calls[op](lib, x)
        assert x.tolist() == [0.0]
