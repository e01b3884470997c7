"""Devices (gt/devices.py, gt/tensor/device_methods.py, gt/cuda.py, gt/backends.py) beside torch
on a machine without CUDA: ``gt.device``'s parsing, every form of ``Tensor.to`` and
``Module.to``, ``cpu()``/``cuda()``, the creation functions' ``device=``, gt.cuda's answers and
errors, torch.backends' switches, and the usual device idiom of a PyTorch script, unchanged."""

import pickle

import numpy as np
import pytest

import gt
from gt import nn
from gt.sharding.mesh import use_mesh
from helpers import randn

torch = pytest.importorskip("torch")
no_cuda = pytest.mark.skipif(torch.cuda.is_available() or gt.cuda.is_available(),
                             reason="compares the answers of a process without CUDA")


def _outcome(fn):
    """(value, None) or (None, (exception type, message))."""
    try:
        return fn(), None
    except Exception as e:     # noqa: BLE001  (the comparison is the point)
        return None, (type(e), str(e))


DEVICE_ARGS = [("cpu",), ("cuda",), ("cuda:1",), ("cuda", 1), ("cpu:0",), ("meta",), ("mps",), ("gpu",), ("CUDA",),
               ("cuda:x",), ("cuda:-1",), ("cuda:01",), ("cuda:1", 2), ("cuda", -1)]


@pytest.mark.first_pass
@pytest.mark.parametrize("args", DEVICE_ARGS, ids=lambda a: repr(a))
def test_device_parsing_is_torch_s(args):
    got, got_err = _outcome(lambda: gt.device(*args))
    want, want_err = _outcome(lambda: torch.device(*args))
    if want_err is not None:
        assert got_err is not None and got_err[0] is want_err[0] is RuntimeError
        assert got_err[1] == want_err[1]
        return
    assert (got.type, got.index, str(got), repr(got)) == (want.type, want.index, str(want), repr(want))


@pytest.mark.first_pass
def test_device_equality_hashing_pickling():
    a, b = gt.device("cuda", 1), gt.device("cuda:1")
    assert a == b and hash(a) == hash(b) and a != gt.device("cuda") and gt.device(a) is a
    assert gt.device("cpu") == "cpu"          # gt's device is also its string (module docstring)
    assert pickle.loads(pickle.dumps(a)) == a and pickle.loads(pickle.dumps(a)).index == 1
    assert {gt.device("cpu"): 1}["cpu"] == 1
    with pytest.raises(TypeError, match=r"gt.device\(\): expected a device string .* got 1.5"):
        gt.device(1.5)


def _pair(values, dtype="float32", requires_grad=False):
    """The same values in gt and torch, torch's on the device where gt put its own (the CPU, or
    on a GPU machine with the torch engine the GPU)."""
    ours = gt.tensor(np.array(values, dtype=dtype), requires_grad=requires_grad)
    return ours, torch.tensor(np.array(values, dtype=dtype), requires_grad=requires_grad, device=str(ours.device))


TO_FORMS = {
    "dtype": lambda m, x: ((m.float64,), {}),
    "same dtype": lambda m, x: ((m.float32,), {}),
    "device": lambda m, x: (("cpu",), {}),
    "device object": lambda m, x: ((m.device("cpu"),), {}),
    "device and dtype": lambda m, x: (("cpu", m.float64), {}),
    "keywords": lambda m, x: ((), {"device": "cpu", "dtype": m.float64}),
    "keyword device": lambda m, x: ((), {"device": "cpu"}),
    "other tensor": lambda m, x: ((m.zeros(1, dtype=m.float64, device="cpu"),), {}),
    "copy": lambda m, x: (("cpu",), {"copy": True}),
    "dtype copy": lambda m, x: ((m.float32,), {"copy": True}),
    "non_blocking": lambda m, x: (("cpu",), {"non_blocking": True}),
    "positional flags": lambda m, x: (("cpu", None, False, True), {}),
    "dtype positional flags": lambda m, x: ((m.float64, False, False), {}),
    "int64": lambda m, x: ((m.int64,), {}),
}


@pytest.mark.parametrize("form", sorted(TO_FORMS))
def test_tensor_to_forms_are_torch_s(form):
    results = []
    for m, x in zip((gt, torch), _pair([1.5, -2.0, 3.25])):
        args, kwargs = TO_FORMS[form](m, x)
        y = x.to(*args, **kwargs)
        results.append((y is x, str(y.dtype).replace("torch.", "gt."), str(y.device), y.tolist()))
    assert results[0] == results[1]


def test_tensor_to_is_differentiable_as_torch():
    grads = []
    for m, x in zip((gt, torch), _pair([1.5, -2.0, 3.25], requires_grad=True)):
        y = x.to("cpu", m.float64, copy=True) * x.to(device="cpu").cpu()
        (y * y).sum().backward()
        grads.append(x.grad.tolist())
    np.testing.assert_allclose(grads[0], grads[1], rtol=1e-6)


@pytest.mark.first_pass
@pytest.mark.parametrize("call", [
    lambda m, x: x.to("cpu", m.float64, False, False, None, 1),
    lambda m, x: x.to("cpu", device="cpu"),
    lambda m, x: x.to(m.float32, dtype=m.float64),
    lambda m, x: x.to(m.zeros(1), dtype=m.float64),
    lambda m, x: x.to(blocking=True),
    lambda m, x: x.to("mps"),
], ids=["too many", "device twice", "dtype twice", "tensor and dtype", "unknown keyword", "mps"])
def test_tensor_to_errors_are_torch_s_types(call):
    types = []
    for m, x in zip((gt, torch), _pair([1.0])):
        with pytest.raises(Exception) as e:   # noqa: PT011  (the type is compared with torch's below)
            call(m, x)
        types.append(e.type)
    if types[1] is not RuntimeError:          # torch's "mps" error depends on its build
        assert issubclass(types[0], types[1]), types
    else:
        assert issubclass(types[0], RuntimeError)


@no_cuda
@pytest.mark.parametrize("call", [
    lambda m: m.zeros(2).cuda(), lambda m: m.zeros(2).to("cuda"), lambda m: m.zeros(2).to("cuda:1"),
    lambda m: m.zeros(2, device="cuda"), lambda m: m.tensor([1.0], device="cuda:0"), lambda m: m.nn.Linear(2, 2).cuda(),
    lambda m: m.nn.Linear(2, 2).to("cuda"), lambda m: m.cuda.current_device(), lambda m: m.cuda.synchronize(),
    lambda m: m.cuda.get_device_name(), lambda m: m.cuda.get_device_properties(0),
    lambda m: m.as_tensor([1.0], device="cuda"), lambda m: m.asarray([1.0], device="cuda"),
    lambda m: m.scalar_tensor(1.0, device="cuda"),
], ids=["cuda()", "to cuda", "to cuda:1", "zeros", "tensor", "module cuda", "module to", "current_device",
        "synchronize", "get_device_name", "get_device_properties", "as_tensor", "asarray", "scalar_tensor"])
def test_cuda_requests_without_cuda_raise_torch_s_assertion_error(call):
    with pytest.raises(AssertionError, match="Torch not compiled with CUDA enabled"):
        call(torch)
    with pytest.raises(AssertionError, match="no CUDA device in this process") as e:
        call(gt)
    assert isinstance(e.value, RuntimeError)


@no_cuda
def test_cuda_answers_are_those_of_torch_without_cuda():
    for name in ("is_available", "device_count", "memory_allocated", "max_memory_allocated", "memory_reserved",
                 "max_memory_reserved", "is_initialized", "empty_cache", "is_bf16_supported"):
        assert getattr(gt.cuda, name)() == getattr(torch.cuda, name)(), name
    assert gt.cuda.manual_seed(3) is None and gt.cuda.manual_seed_all(3) is None
    x = gt.zeros(2)
    assert (x.is_cuda, x.is_cpu, x.get_device()) == (torch.zeros(2).is_cuda, torch.zeros(2).is_cpu,
                                                      torch.zeros(2).get_device())


CREATORS = {
    "tensor": lambda m, d: m.tensor([1.0, 2.0], device=d), "zeros": lambda m, d: m.zeros(2, 3, device=d),
    "ones": lambda m, d: m.ones((2,), device=d), "empty": lambda m, d: m.empty(2, device=d).shape,
    "full": lambda m, d: m.full((2,), 7.0, device=d), "arange": lambda m, d: m.arange(4, device=d),
    "linspace": lambda m, d: m.linspace(0, 1, 5, device=d), "eye": lambda m, d: m.eye(3, device=d),
    "zeros_like": lambda m, d: m.zeros_like(m.ones(2), device=d),
    "full_like": lambda m, d: m.full_like(m.ones(2), 3.0, device=d),
    "randn": lambda m, d: m.randn(3, device=d).shape, "rand": lambda m, d: m.rand(3, device=d).shape,
    "randint": lambda m, d: m.randint(0, 5, (3,), device=d).shape, "randperm": lambda m, d: m.randperm(4, device=d).shape,
    "new_zeros": lambda m, d: m.ones(2).new_zeros(3, device=d), "new_full": lambda m, d: m.ones(2).new_full((2,), 4.0, device=d),
    "new_tensor": lambda m, d: m.ones(2).new_tensor([5.0], device=d),
    "as_tensor": lambda m, d: m.as_tensor([1.0, 2.0], device=d), "asarray": lambda m, d: m.asarray([3, 4], device=d),
    "scalar_tensor": lambda m, d: m.scalar_tensor(2.5, device=d),
}


@pytest.mark.parametrize("name", sorted(CREATORS))
@pytest.mark.parametrize("where", ["cpu", "device", "torch device", "none"])
def test_creation_functions_take_torch_s_device(name, where):
    got = []
    for m in (gt, torch):
        d = {"cpu": "cpu", "device": m.device("cpu"), "torch device": torch.device("cpu"), "none": None}[where]
        out = CREATORS[name](m, d)
        got.append(tuple(out) if not hasattr(out, "numpy") else (str(out.device), out.tolist()))
    if where == "none" and hasattr(out, "numpy"):   # no device: torch's CPU, gt's home (a GPU when gt computes on one)
        got[1] = (str(gt.get_mesh().home), got[1][1])
    assert got[0] == got[1]


@pytest.mark.first_pass
def test_creation_device_errors():
    with pytest.raises(RuntimeError, match="Expected one of cpu, cuda"):
        gt.zeros(2, device="gpu")
    with pytest.raises(TypeError, match=r"zeros\(device\): expected a device .* got 1.5"):
        gt.zeros(2, device=1.5)
    with pytest.raises(RuntimeError, match=r"zeros\(layout="):
        gt.zeros(2, layout="sparse_coo")
    assert gt.zeros(2, layout=torch.strided).shape == (2,)
    for call in (lambda: gt.as_tensor([1.0], device="meta"), lambda: gt.asarray([1.0], device="meta")):
        with pytest.raises(RuntimeError, match="not on 'meta'"):
            call()
    with pytest.raises(TypeError, match=r"as_tensor\(device\): expected a device .* got 1.5"):
        gt.as_tensor([1.0], device=1.5)
    assert gt.device(torch.device("cuda", 1)) == gt.device("cuda:1") and gt.device(torch.device("cpu")).index is None


def _linear_pair():
    g = nn.Linear(3, 2)
    t = torch.nn.Linear(3, 2)
    t.load_state_dict({k: torch.tensor(v.tolist()) for k, v in g.state_dict().items()})
    return g, t.to(str(g.weight.device))        # torch's where gt's is (a GPU when gt computes on one)


MODULE_FORMS = {
    "device": lambda m: (("cpu",), {}), "device object": lambda m: ((m.device("cpu"),), {}),
    "dtype": lambda m: ((m.float64,), {}), "both": lambda m: (("cpu", m.float64), {}),
    "keywords": lambda m: ((), {"device": "cpu", "dtype": m.float64, "non_blocking": True}),
    "tensor": lambda m: ((m.zeros(1, dtype=m.float64, device="cpu"),), {}),
}


@pytest.mark.parametrize("form", sorted(MODULE_FORMS))
def test_module_to_forms_are_torch_s(form):
    got = []
    for m, module in zip((gt, torch), _linear_pair()):
        weight = module.weight
        opt = (gt if m is gt else torch).optim.SGD(module.parameters(), lr=0.1)
        args, kwargs = MODULE_FORMS[form](m)
        assert module.to(*args, **kwargs) is module
        assert module.weight is weight and opt.param_groups[0]["params"][0] is weight   # in place
        x = m.ones(4, 3, dtype=module.weight.dtype, device=module.weight.device)
        module(x).sum().backward()
        opt.step()
        got.append((str(module.weight.dtype).replace("torch.", "gt."), str(module.weight.device),
                    module.weight.detach().tolist()))
    assert got[0][:2] == got[1][:2]
    np.testing.assert_allclose(got[0][2], got[1][2], rtol=1e-6)


def test_module_cpu_half_and_errors_as_torch():
    for m, module in zip((gt, torch), _linear_pair()):
        assert module.cpu() is module and str(module.weight.device) == "cpu"
        assert module.half().weight.dtype == m.float16 and module.float().weight.dtype == m.float32
        with pytest.raises(TypeError, match="nn.Module.to only accepts floating point"):
            module.to(m.int64)
        with pytest.raises(RuntimeError, match="does not accept copy argument"):
            module.to("cpu", copy=True)


@pytest.mark.first_pass
def test_backends_switches_are_torch_s_defaults_and_can_be_set():
    for flag in ("enabled", "benchmark", "deterministic", "allow_tf32"):
        assert getattr(gt.backends.cudnn, flag) == getattr(torch.backends.cudnn, flag), flag
    assert gt.backends.mps.is_available() is False and gt.backends.mps.is_built() is False
    assert gt.backends.cudnn.is_available() == (gt.cuda.is_available() and torch.backends.cudnn.is_available())
    before = gt.backends.cudnn.benchmark
    try:
        gt.backends.cudnn.benchmark = True
        assert gt.backends.cudnn.benchmark is True
    finally:
        gt.backends.cudnn.benchmark = before
    gt.backends.cuda.matmul.allow_tf32 = gt.backends.cuda.matmul.allow_tf32
    with pytest.raises(AttributeError, match="has no flag 'benchmarks'"):
        gt.backends.cudnn.benchmarks = True
    with pytest.raises(TypeError, match="expected True or False, got 1"):
        gt.backends.cudnn.deterministic = 1


def test_float32_matmul_precision_is_torch_s_switch():
    assert gt.get_float32_matmul_precision() == "highest" == torch.get_float32_matmul_precision()
    x = gt.tensor(randn(8, 8, seed=1).astype(np.float32))
    before = (x @ x).numpy()
    try:
        for precision in ("high", "medium", "highest"):
            gt.set_float32_matmul_precision(precision)
            assert gt.get_float32_matmul_precision() == precision
            assert gt.backends.cuda.matmul.allow_tf32 is (precision != "highest")
            if not gt.cuda.is_available():     # float32 on a CPU at every setting, as torch's
                np.testing.assert_array_equal((x @ x).numpy(), before)
        with pytest.raises(RuntimeError, match="expected one of 'highest', 'high', 'medium', got 'low'"):
            gt.set_float32_matmul_precision("low")
    finally:
        gt.set_float32_matmul_precision("highest")


def _script(m):
    """The device lines of a PyTorch training script, with ``m`` for torch."""
    device = m.device("cuda" if m.cuda.is_available() else "cpu")
    m.manual_seed(0)
    model = m.nn.Sequential(m.nn.Linear(4, 8), m.nn.ReLU(), m.nn.Linear(8, 2)).to(device)
    opt = m.optim.SGD(model.parameters(), lr=0.1)
    x = m.tensor(np.linspace(-1, 1, 24, dtype=np.float32).reshape(6, 4)).to(device, non_blocking=True)
    y = m.tensor([0, 1, 1, 0, 1, 0]).to(device)
    losses = []
    for _ in range(3):
        loss = m.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return str(device), losses, model[0].weight.device


def test_a_torch_script_s_device_lines_run_unchanged():
    got = _script(gt)
    where = "cuda" if gt.cuda.is_available() else "cpu"
    assert got[0] == where and str(got[2]).startswith(where) and len(got[1]) == 3 and got[1][2] < got[1][0]


@pytest.mark.own_mesh
def test_sharded_tensors_and_replicated_parameters_stay_where_gt_put_them():
    with use_mesh(2):
        x = gt.tensor(np.arange(8.0).reshape(4, 2)).shard(0)
        assert x.to("cpu") is x and x.cpu() is x and x.device == "cpu"
        y = x.to("cpu", gt.float64)
        assert y.placement == x.placement and y.dtype == gt.float64
        model = nn.Linear(2, 3)
        assert model.to("cpu") is model
        np.testing.assert_allclose(model(x.float()).numpy(),
                                   model(gt.tensor(np.arange(8.0).reshape(4, 2), dtype=gt.float32)).numpy(), rtol=1e-6)
