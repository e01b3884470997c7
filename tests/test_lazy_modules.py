"""The lazy modules (gt/nn/lazy.py) and the uninitialized parameters behind them
(gt/nn/uninitialized.py) beside torch's: the first call infers the size, gives the eager module's
parameters (same seed, same values) and class; outputs and gradients with torch's weights loaded
into the uninitialized module; repr, state dicts and parameters before the first call; optimizers
and dtypes set before it; and the errors."""

import copy
import pickle
import re

import numpy as np
import pytest

import gt
from gt import nn
from gt.nn.lazy import LazyModuleMixin
from gt.sharding import get_mesh
from gt.sharding.placement import Replicate, Shard
from helpers import compare_with_torch, randn, torch_or_skip

DTYPES = ["float32", "float64"]

# (lazy class, its arguments, input shape); the eager class is the name without "Lazy"
CASES = [
    ("LazyLinear", dict(out_features=3), (4, 5)),
    ("LazyLinear", dict(out_features=2, bias=False), (2, 3, 4)),
    ("LazyConv1d", dict(out_channels=4, kernel_size=3, padding=1), (2, 3, 6)),
    ("LazyConv2d", dict(out_channels=4, kernel_size=2, groups=2, bias=False), (2, 4, 4, 4)),
    ("LazyConv3d", dict(out_channels=2, kernel_size=2), (3, 3, 3, 3)),                     # unbatched
    ("LazyConvTranspose1d", dict(out_channels=2, kernel_size=3, stride=2), (2, 3, 4)),
    ("LazyConvTranspose2d", dict(out_channels=4, kernel_size=2, groups=2), (2, 4, 3, 3)),
    ("LazyConvTranspose3d", dict(out_channels=3, kernel_size=2), (1, 2, 2, 2, 2)),
    ("LazyBatchNorm1d", {}, (4, 3)),
    ("LazyBatchNorm2d", dict(momentum=None), (2, 3, 2, 2)),
    ("LazyBatchNorm3d", dict(affine=False), (2, 2, 2, 2, 2)),
    ("LazyInstanceNorm1d", {}, (2, 3, 5)),
    ("LazyInstanceNorm2d", dict(track_running_stats=False), (2, 3, 3, 3)),
    ("LazyInstanceNorm3d", dict(affine=False), (1, 2, 2, 3, 3)),
]
# each case in one dtype, the two dtypes alternating, so that every family is run in both
CASES = [case + (DTYPES[i % 2],) for i, case in enumerate(CASES)]
IDS = [f"{name}-{i}-{dtype}" for i, (name, _, _, dtype) in enumerate(CASES)]


def _eager(name, kwargs, shape):
    """The eager class's name and arguments for the size the input of ``shape`` gives."""
    eager = name[len("Lazy"):]
    if eager == "Linear":
        return eager, dict(kwargs, in_features=shape[-1])
    if "Conv" in eager:
        nd = int(eager[-2])
        return eager, dict(kwargs, in_channels=shape[1] if len(shape) == nd + 2 else shape[0])
    # torch's lazy norms default to affine=True, track_running_stats=True (instance norms too)
    return eager, dict(dict(affine=True, track_running_stats=True), **kwargs, num_features=shape[1])


def _size_name(eager):
    return "in_features" if eager == "Linear" else "in_channels" if "Conv" in eager else "num_features"


@pytest.mark.parametrize("name,kwargs,shape,dtype", CASES, ids=IDS)
def test_first_call_infers_the_size_and_gives_the_eager_module(name, kwargs, shape, dtype):
    torch = torch_or_skip()
    x = gt.tensor(randn(*shape, seed=1), dtype=getattr(gt, dtype))
    gt.manual_seed(7)
    lazy = getattr(nn, name)(**kwargs, dtype=getattr(gt, dtype))
    ref = getattr(torch.nn, name)(**kwargs)
    assert repr(lazy) == repr(ref)
    assert lazy.has_uninitialized_params() == ref.has_uninitialized_params()
    out = lazy(x)
    eager_name, eager_kwargs = _eager(name, kwargs, shape)
    assert type(lazy) is getattr(nn, eager_name) and not hasattr(lazy, "has_uninitialized_params")
    assert getattr(lazy, _size_name(eager_name)) == eager_kwargs[_size_name(eager_name)]
    gt.manual_seed(7)
    eager = getattr(nn, eager_name)(**eager_kwargs, dtype=getattr(gt, dtype))
    for key in ("weight", "bias"):   # the same draws from the same seed
        if key in eager.state_dict():
            np.testing.assert_array_equal(lazy.state_dict()[key], eager.state_dict()[key], err_msg=key)
    for p in lazy.parameters():
        assert type(p) is nn.Parameter and p.dtype == getattr(gt, dtype) and p.requires_grad
    assert all(type(b) is gt.Tensor for b in lazy.buffers())
    eager.load_state_dict(lazy.state_dict())
    np.testing.assert_array_equal(out.numpy(), eager(x).numpy())
    ref(torch.tensor(randn(*shape, seed=1), dtype=torch.float32))
    assert repr(lazy).split("  #")[0] == repr(eager).split("  #")[0] == repr(ref)
    assert not hasattr(lazy, "_initialize_hook") and not lazy._forward_pre_hooks


@pytest.mark.parametrize("name,kwargs,shape,dtype", CASES, ids=IDS)
def test_torch_weights_loaded_into_the_uninitialized_module_give_torchs_outputs_and_gradients(name, kwargs, shape,
                                                                                               dtype):
    torch = torch_or_skip()
    ref = getattr(torch.nn, name)(**kwargs, dtype=getattr(torch, dtype))
    ref(torch.tensor(randn(*shape, seed=2), dtype=getattr(torch, dtype)))      # torch's first call
    module = getattr(nn, name)(**kwargs, dtype=getattr(gt, dtype))
    assert repr(module.load_state_dict(ref.state_dict())) == "<All keys matched successfully>"
    assert not module.has_uninitialized_params() and type(module) is getattr(nn, name)
    compare_with_torch(lambda a: module(a), lambda a: ref(a), randn(*shape, seed=3, scale=2.0) + 0.5, dtype=dtype)
    assert type(module).__name__ == name[len("Lazy"):]
    for key, p in ref.named_parameters():
        np.testing.assert_allclose(getattr(module, key).grad.numpy(), p.grad.numpy(), rtol=1e-4, atol=1e-5)
    want = ref.state_dict()
    for key, value in module.state_dict().items():
        np.testing.assert_allclose(value, want[key].numpy(), rtol=1e-5, err_msg=key)


@pytest.mark.parametrize("name,kwargs,shape,dtype", CASES, ids=IDS)
def test_state_dict_and_parameters_before_the_first_call_are_torchs(name, kwargs, shape, dtype):
    torch = torch_or_skip()
    module, ref = getattr(nn, name)(**kwargs), getattr(torch.nn, name)(**kwargs)
    mine, theirs = module.state_dict(), ref.state_dict()
    assert list(mine) == list(theirs)
    for key, value in theirs.items():
        if isinstance(value, torch.nn.parameter.UninitializedTensorMixin):
            assert type(mine[key]).__name__ == type(value).__name__ and repr(mine[key]) == repr(value)
            assert mine[key] is getattr(module, key)                          # saved as itself, as torch
        else:   # num_batches_tracked: a 0 from the start
            assert mine[key].dtype == np.int64 and mine[key] == value.item() == 0
    assert [type(p).__name__ for p in module.parameters()] == [type(p).__name__ for p in ref.parameters()]
    assert [type(b).__name__ for b in module.buffers()] == [type(b).__name__ for b in ref.buffers()]
    assert repr(module) == repr(ref) and module.num_parameters() == 0
    # a state dict saved before the first call has no values: it cannot be loaded into an eager module
    eager_name, eager_kwargs = _eager(name, kwargs, shape)
    if list(mine) and not list(mine) == ["num_batches_tracked"]:
        with pytest.raises(RuntimeError, match="size mismatch"):
            getattr(nn, eager_name)(**eager_kwargs).load_state_dict(mine)


def test_sharded_first_input_gives_the_unsharded_parameters():
    x = gt.tensor(randn(8, 3, 5, seed=4), dtype=gt.float32).shard(0)   # batch-sharded on a mesh (GT_DEVICES=4)
    assert x.placement == (Shard(0) if get_mesh().size > 1 else Replicate())
    for lazy, eager in ((nn.LazyConv1d(4, 3), lambda: nn.Conv1d(3, 4, 3)), (nn.LazyLinear(2), lambda: nn.Linear(5, 2)),
                        (nn.LazyBatchNorm1d(), lambda: nn.BatchNorm1d(3))):
        gt.manual_seed(5)
        out = lazy(x)
        gt.manual_seed(5)
        reference = eager()
        for key in ("weight", "bias"):
            np.testing.assert_array_equal(lazy.state_dict()[key], reference.state_dict()[key], err_msg=key)
        assert all(p.placement == Replicate() for p in lazy.parameters())
        reference.load_state_dict(lazy.state_dict())
        whole = gt.tensor(randn(8, 3, 5, seed=4), dtype=gt.float32).replicate()
        np.testing.assert_allclose(out.numpy(), reference(whole).numpy(), rtol=1e-5, atol=1e-6)


def test_an_optimizer_built_before_the_first_call_updates_the_materialized_parameters():
    torch = torch_or_skip()
    model = nn.Sequential(nn.LazyLinear(4), nn.ReLU(), nn.LazyLinear(2))
    ref = torch.nn.Sequential(torch.nn.LazyLinear(4), torch.nn.ReLU(), torch.nn.LazyLinear(2)).double()
    model.double()
    opt = gt.optim.SGD(model.parameters(), lr=0.1)        # torch's optimizers take them too
    assert repr(model) == repr(ref) and len(opt.param_groups[0]["params"]) == 4
    x = randn(5, 3, seed=6)
    ref(torch.tensor(x)).square().sum().backward()
    before = ref.state_dict()
    model.load_state_dict(before)                        # materializes, in place, what the optimizer holds
    model(gt.tensor(x)).square().sum().backward()
    opt.step()
    for key, p in ref.named_parameters():                # one plain SGD step from torch's gradients
        np.testing.assert_allclose(model.state_dict()[key], (p - 0.1 * p.grad).detach().numpy(), rtol=1e-10,
                                   err_msg=key)
    assert re.sub(r"  # [\d,]+ parameters", "", repr(model)) == repr(ref)
    assert model[0].weight.dtype == gt.float64 and type(model[2]) is nn.Linear
    # an optimizer that makes its state when built (Adagrad) needs the shapes: refused, as torch's
    with pytest.raises(RuntimeError, match="Can't access the shape of an uninitialized parameter"):
        gt.optim.Adagrad(nn.LazyLinear(2).parameters())
    with pytest.raises(ValueError, match="uninitialized parameter"):
        torch.optim.Adagrad(torch.nn.LazyLinear(2).parameters())


def test_to_dtype_before_the_first_call_sets_the_parameters_dtype():
    torch = torch_or_skip()
    module, ref = nn.LazyBatchNorm1d().double(), torch.nn.LazyBatchNorm1d().double()
    assert module.weight.dtype == gt.float64 and module.running_mean.dtype == gt.float64
    assert module.num_batches_tracked.dtype == gt.int64 and str(ref.num_batches_tracked.dtype) == "torch.int64"
    module(gt.tensor(randn(4, 3, seed=7)))
    assert [t.dtype.name for t in module.state_dict(keep_vars=True).values()] == \
           [str(t.dtype)[len("torch."):] for t in ref.state_dict().values()]
    assert nn.LazyLinear(2, dtype=gt.float64).weight.dtype == gt.float64


def test_initialize_parameters_without_a_forward_and_copies_stay_separate():
    module = nn.LazyConv2d(3, 2)
    twin, pickled = copy.deepcopy(module), pickle.loads(pickle.dumps(copy.deepcopy(module).double()))
    module.initialize_parameters(gt.randn(1, 5, 4, 4))
    assert type(module) is nn.LazyConv2d and module.in_channels == 5 and module.weight.shape == (3, 5, 2, 2)
    assert not module.has_uninitialized_params() and twin.has_uninitialized_params()
    assert module(gt.randn(1, 5, 4, 4)).shape == (1, 3, 3, 3) and type(module) is nn.Conv2d
    assert twin(gt.randn(2, 1, 3, 3)).shape == (2, 3, 2, 2) and twin.weight.shape == (3, 1, 2, 2)
    assert pickled.has_uninitialized_params() and pickled.weight.dtype == gt.float64
    assert pickled(gt.randn(2, 2, 3, 3, dtype=gt.float64)).dtype == gt.float64 and type(pickled) is nn.Conv2d


class LazyScale(LazyModuleMixin, nn.Module):
    """A lazy module written as torch's documentation shows (x * weight, weight of x's last dim)."""

    def __init__(self):
        super().__init__()
        self.weight = nn.UninitializedParameter()

    def initialize_parameters(self, x):
        if self.has_uninitialized_params():
            self.weight.materialize(x.shape[-1:])
            nn.init.constant_(self.weight, 2.0)

    def forward(self, x):
        return x * self.weight


def test_a_lazy_module_of_ones_own_as_torchs():
    module = LazyScale()
    assert repr(module) == "LazyScale()" and module.has_uninitialized_params()
    np.testing.assert_array_equal(module(gt.ones(2, 3)).numpy(), np.full((2, 3), 2.0))
    assert type(module) is LazyScale and module.weight.shape == (3,) and not module._forward_pre_hooks
    with pytest.raises(NotImplementedError, match="initialize_parameters is not implemented for Sketch"):
        type("Sketch", (LazyModuleMixin, nn.Module), {})()(gt.ones(1))


def test_a_partial_load_keeps_the_loaded_values():
    weights = nn.Linear(3, 2).state_dict()
    module = nn.LazyLinear(2)
    keys = module.load_state_dict({"weight": weights["weight"]}, strict=False)
    assert keys.missing_keys == ["bias"] and module.has_uninitialized_params()
    module(gt.randn(4, 3))
    np.testing.assert_array_equal(module.weight.numpy(), weights["weight"])
    assert module.bias.shape == (2,) and np.all(np.abs(module.bias.numpy()) <= 1 / np.sqrt(3))


def test_a_refused_load_leaves_the_module_uninitialized():
    module = nn.Sequential(nn.LazyBatchNorm1d())
    state = {f"0.{k}": np.full(3, 2.0) for k in ("weight", "bias", "running_mean", "running_var")}
    state["0.num_batches_tracked"] = np.zeros(2, dtype=np.int64)
    with pytest.raises(RuntimeError, match="size mismatch for 0.num_batches_tracked"):
        module.load_state_dict(state)
    assert module[0].has_uninitialized_params() and type(module[0].weight) is nn.UninitializedParameter
    assert module(gt.randn(4, 5)).shape == (4, 5) and module[0].weight.shape == (5,)
    again = nn.LazyBatchNorm1d()
    again.load_state_dict({k[2:]: v if "num" not in k else np.array(0) for k, v in state.items()})
    again.eval()
    twin = nn.LazyBatchNorm1d()          # a state dict saved before the first call: nothing to load, as torch
    assert repr(twin.load_state_dict(nn.LazyBatchNorm1d().state_dict())) == "<All keys matched successfully>"
    assert twin.has_uninitialized_params() and twin(gt.randn(2, 4)).shape == (2, 4)
    np.testing.assert_allclose(again(gt.full((1, 3), 4.0)).numpy(), np.full((1, 3), 2 / np.sqrt(2 + 1e-5) * 2 + 2),
                               rtol=1e-6)


def test_uninitialized_parameters_and_buffers():
    torch = torch_or_skip()
    p, b = nn.UninitializedParameter(), nn.UninitializedBuffer(dtype=gt.float64)
    assert nn.parameter.UninitializedParameter is nn.UninitializedParameter and nn.parameter.is_lazy(b)
    assert repr(p) == repr(torch.nn.UninitializedParameter()) == "<UninitializedParameter>"
    assert repr(b) == "<UninitializedBuffer>" and isinstance(p, nn.Parameter) and not isinstance(b, nn.Parameter)
    assert (p.requires_grad, b.requires_grad) == (True, False) and (p.dtype, b.dtype) == (gt.float32, gt.float64)
    assert p.size() == tuple(torch.nn.UninitializedParameter().size()) == (0,)
    with pytest.raises(RuntimeError, match="Can't access the shape of an uninitialized parameter"):
        p.shape
    for use in (lambda: p + 1, lambda: p.sum(), lambda: b.numpy(), lambda: p.detach(), lambda: gt.relu(p)):
        with pytest.raises(ValueError, match="Attempted to use an uninitialized parameter"):
            use()
    p.materialize((2, 3))
    b.materialize([4])
    assert type(p) is nn.Parameter and p.shape == (2, 3) and p.requires_grad
    assert type(b) is gt.Tensor and b.shape == (4,) and b.dtype == gt.float64
    assert not nn.parameter.is_lazy(p)
    with gt.no_grad():                 # materialized memory is uninitialized (NaN is possible): write, then read
        p.zero_()
    assert (p * 2).sum().item() == 0
    with pytest.raises(ValueError, match="shape must be a tuple of non-negative ints"):
        nn.UninitializedParameter().materialize((2, -1))


@pytest.mark.parametrize("make,x,error,match", [
    (lambda: nn.LazyLinear(3), gt.tensor(1.0), ValueError, r"expected an input of shape \(\.\.\., in_features\)"),
    (lambda: nn.LazyConv2d(4, 3), gt.zeros(1, 2, 3, 5, 5), RuntimeError,
     r"Expected 3D \(unbatched\) or 4D \(batched\) input to LazyConv2d, but got input of size: \(1, 2, 3, 5, 5\)"),
    (lambda: nn.LazyConvTranspose1d(4, 3), gt.zeros(4), RuntimeError, "Expected 2D .unbatched. or 3D"),
    (lambda: nn.LazyConvTranspose2d(4, 3, groups=2), gt.zeros(1, 3, 5, 5), ValueError,
     r"in_channels must be a positive multiple of groups \(2\), got 3"),
    (lambda: nn.LazyConv1d(4, 3), gt.zeros(2, 0, 5), ValueError, "positive multiple of groups"),
    (lambda: nn.LazyBatchNorm1d(), gt.zeros(3), ValueError, r"expected 2D or 3D input \(got 1D input"),
    (lambda: nn.LazyBatchNorm2d(), gt.zeros(2, 3, 4), ValueError, r"expected 4D input \(got 3D input"),
    (lambda: nn.LazyBatchNorm3d(), gt.zeros(2, 0, 1, 1, 1), ValueError, "num_features must be a positive int, got 0"),
    (lambda: nn.LazyInstanceNorm2d(), gt.zeros(2, 3), ValueError, r"expected 3D or 4D input \(got 2D input"),
], ids=["linear-0d", "conv-rank", "convT-rank", "groups", "zero-channels", "bn1d-rank", "bn2d-rank", "bn-zero",
        "instance-rank"])
def test_a_wrong_first_input_is_refused_and_the_module_stays_lazy(make, x, error, match):
    module = make()
    with pytest.raises(error, match=match):
        module(x)
    assert module.has_uninitialized_params() and type(module).__name__.startswith("Lazy")


def test_errors():
    module = nn.LazyLinear(2)
    module.load_state_dict(nn.Linear(5, 2).state_dict())
    with pytest.raises(ValueError, match=r"the in_features inferred from the input \(4\) does not match the loaded "
                                         r"weight of shape \(2, 5\)"):
        module(gt.randn(3, 4))
    assert module(gt.randn(3, 5)).shape == (3, 2) and module.in_features == 5
    with pytest.raises(ValueError, match="device='cuda' is not supported"):
        nn.LazyConv1d(2, 3, device="cuda")
    with pytest.raises(ValueError, match="groups must be a positive integer, got 0"):
        nn.LazyConv2d(4, 3, groups=0)
    with pytest.raises(ValueError, match="out_channels must be a positive int"):
        nn.LazyConvTranspose2d(0, 3)
    with pytest.raises(ValueError, match="Attempted to use an uninitialized parameter"):
        nn.LazyLinear(2).weight.sum()


def test_instance_norm_reads_an_unbatched_inputs_channels_at_dim_0():
    module = nn.LazyInstanceNorm1d()
    x = randn(3, 6, seed=8).astype(np.float32)    # its float32 weights refuse a float64 input, as torch's
    out = module(gt.tensor(x))
    assert module.num_features == 3 and module.weight.shape == (3,)
    expected = (x - x.mean(axis=1, keepdims=True)) / np.sqrt(x.var(axis=1, keepdims=True) + 1e-5)
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-4, atol=1e-5)


@pytest.mark.filterwarnings("ignore:Initializing zero-element tensors is a no-op")   # torch warns too
def test_empty_inputs_give_the_eager_modules_of_their_sizes():
    module = nn.LazyLinear(3)
    assert module(gt.zeros(0, 5)).shape == (0, 3) and module.weight.shape == (3, 5)
    gt.manual_seed(1)
    module = nn.LazyLinear(3)
    module.initialize_parameters(gt.zeros(2, 0))     # in_features=0 (the eager Linear(0, 3)'s forward fails)
    gt.manual_seed(1)
    eager = nn.Linear(0, 3)
    assert module.in_features == 0 and module.weight.shape == (3, 0)
    np.testing.assert_array_equal(module.bias.numpy(), eager.bias.numpy())
    norm = nn.LazyInstanceNorm1d()
    assert norm(gt.randn(0, 2, 4)).shape == (0, 2, 4) and norm.num_features == 2
