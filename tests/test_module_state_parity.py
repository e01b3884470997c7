"""``gt.nn.Module``'s state-dict protocol and containers beside torch's, where a differential run
against torch 2.13 found gt apart: ``_load_from_state_dict``/``_save_to_state_dict`` overridden in a
user's subclass (a checkpoint migrated by ``_version``), ``load_state_dict(assign=True)``, a
parameter set as an attribute of a ``ParameterList``, ``Sequential +=`` and the dict containers'
``update`` errors. Each case differed before its fix."""

import collections

import numpy as np
import pytest

import gt
from helpers import torch_or_skip


def _both():
    torch = torch_or_skip()
    return torch, ((torch, torch.nn), (gt, gt.nn))


def _values(t):
    return np.asarray(t.detach().numpy()).tolist()


def _migrating(lib, nn, log):
    """What a torch user writes to read checkpoints of an older layout: ``w`` was ``weight``."""

    class Block(nn.Module):
        _version = 2

        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(lib.ones(2))
            self.register_buffer("b", lib.zeros(1))

        def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing, unexpected, errors):
            log.append((prefix, local_metadata.get("version"), strict, sorted(state_dict)))
            if local_metadata.get("version", 1) < 2 and prefix + "weight" in state_dict:
                state_dict[prefix + "w"] = state_dict.pop(prefix + "weight")
            super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing, unexpected, errors)

    return Block


# ---- _load_from_state_dict / _save_to_state_dict in a subclass ------------------------------------

def test_load_from_state_dict_override_migrates_an_old_checkpoint():
    _, libs = _both()
    seen = []
    for lib, nn in libs:
        log = []
        model = nn.Sequential(_migrating(lib, nn, log)(), nn.Linear(1, 1))
        old = collections.OrderedDict([("0.weight", lib.full((2,), 3.0)), ("0.b", lib.ones(1)),
                                       ("1.weight", lib.ones(1, 1)), ("1.bias", lib.zeros(1))])
        old._metadata = {"0": {"version": 1}}
        result = model.load_state_dict(old)
        seen.append((log, list(result.missing_keys), list(result.unexpected_keys), _values(model[0].w),
                     _values(model[0].b)))
    assert seen[1] == seen[0]
    assert seen[1][0] == [("0.", 1, True, ["0.b", "0.weight"])] and seen[1][3] == [3.0, 3.0]


def test_load_from_state_dict_override_sees_the_current_version_and_runs_before_pre_hooks():
    _, libs = _both()
    seen = []
    for lib, nn in libs:
        log = []
        model = nn.Sequential(_migrating(lib, nn, log)())
        model[0].register_load_state_dict_pre_hook(lambda m, sd, prefix, *rest: log.append(("pre-hook", prefix)))
        result = model.load_state_dict(model.state_dict(), strict=False)
        seen.append((log, list(result.missing_keys), list(result.unexpected_keys)))
    assert seen[1] == seen[0]
    assert seen[1][0] == [("0.", 2, True, ["0.b", "0.w"]), ("pre-hook", "0.")]


def test_load_from_state_dict_override_error_messages_raise():
    _, libs = _both()
    for lib, nn in libs:
        class Picky(nn.Module):
            def __init__(self):
                super().__init__()
                self.w = nn.Parameter(lib.ones(2))

            def _load_from_state_dict(self, state_dict, prefix, *args):
                args[-1].append("custom problem")          # error_msgs

        with pytest.raises(RuntimeError, match="custom problem"):
            Picky().load_state_dict({"w": lib.zeros(2)}, strict=False)


def test_load_from_state_dict_called_directly_loads_and_reports():
    _, libs = _both()
    seen = []
    for lib, nn in libs:
        lin = nn.Linear(2, 2)
        missing, unexpected, errors = [], [], []
        lin._load_from_state_dict({"weight": lib.full((2, 2), 2.0), "extra": lib.ones(1)}, "", {}, True,
                                  missing, unexpected, errors)
        seen.append((missing, unexpected, errors, _values(lin.weight)))
    assert seen[1] == seen[0] == (["bias"], ["extra"], [], [[2.0, 2.0], [2.0, 2.0]])


def test_save_to_state_dict_override_adds_entries():
    _, libs = _both()
    seen = []
    for lib, nn in libs:
        class Counted(nn.Module):
            _version = 5

            def __init__(self):
                super().__init__()
                self.w = nn.Parameter(lib.ones(2))

            def _save_to_state_dict(self, destination, prefix, keep_vars):
                super()._save_to_state_dict(destination, prefix, keep_vars)
                destination[prefix + "steps"] = 4

        sd = nn.Sequential(nn.Linear(1, 1), Counted()).state_dict(prefix="p.")
        seen.append((list(sd), sd["p.1.steps"], dict(sd._metadata)))
    assert seen[1] == seen[0]
    assert seen[1][0] == ["p.0.weight", "p.0.bias", "p.1.w", "p.1.steps"]


# ---- load_state_dict(assign=True) -----------------------------------------------------------

def test_load_state_dict_assign_takes_the_given_tensors():
    _, libs = _both()
    seen = []
    for lib, nn in libs:
        lin = nn.Linear(2, 2)
        lin.bias.requires_grad_(False)
        weight = lib.ones(2, 2, dtype=lib.float64)
        bias = nn.Parameter(lib.zeros(2))
        result = lin.load_state_dict({"weight": weight, "bias": bias}, assign=True)
        weight.add_(1)                                  # the module holds the given tensor's memory
        seen.append((list(result.missing_keys), type(lin.weight).__name__, str(lin.weight.dtype).split(".")[-1],
                     lin.weight.requires_grad, lin.bias is bias, lin.bias.requires_grad, _values(lin.weight)))
    assert seen[1] == seen[0]
    assert seen[1][1:6] == ("Parameter", "float64", True, True, False)


def test_load_state_dict_assign_buffers_keep_their_dtype_and_train():
    _, libs = _both()
    seen = []
    for lib, nn in libs:
        lib.manual_seed(0)
        norm = nn.BatchNorm1d(2)
        f64 = lib.float64
        given = {"weight": lib.full((2,), 2.0, dtype=f64), "bias": lib.zeros(2, dtype=f64),
                 "running_mean": lib.ones(2, dtype=f64), "running_var": lib.ones(2, dtype=f64),
                 "num_batches_tracked": lib.tensor(7)}
        norm.load_state_dict(given, assign=True)
        norm.eval()
        norm(lib.ones(3, 2).double()).sum().backward()
        seen.append((norm.running_mean is given["running_mean"], str(norm.running_mean.dtype).split(".")[-1],
                     int(norm.num_batches_tracked), _values(norm.weight.grad)))
    assert seen[1] == seen[0]
    assert seen[1][:3] == (True, "float64", 7)


def test_load_state_dict_assign_from_read_only_arrays_trains():
    """gt's state dicts hold numpy arrays: one that is read-only (a memory-mapped file) is copied,
    so the step that follows updates the module, as torch's does with its tensors."""
    torch, libs = _both()
    weight = np.full((2, 2), 0.5, np.float32)
    weight.setflags(write=False)
    seen = []
    for lib, nn in libs:
        lin = nn.Linear(2, 2)
        given = torch.tensor(weight) if lib is torch else weight
        lin.load_state_dict({"weight": given, "bias": np.zeros(2, np.float32) if lib is gt else torch.zeros(2)},
                            assign=True)
        opt = lib.optim.SGD(lin.parameters(), lr=0.1)
        lin(lib.ones(1, 2)).sum().backward()
        opt.step()
        seen.append(_values(lin.weight))
    np.testing.assert_allclose(seen[1], seen[0], rtol=1e-6)
    assert np.allclose(seen[1], 0.4) and weight[0, 0] == 0.5


def test_load_state_dict_assign_still_checks_shapes():
    _, libs = _both()
    for lib, nn in libs:
        lin = nn.Linear(2, 2)
        with pytest.raises(RuntimeError, match="size mismatch for weight"):
            lin.load_state_dict({"weight": lib.ones(3, 2), "bias": lib.zeros(2)}, assign=True)
        assert tuple(lin.weight.shape) == (2, 2)


# ---- containers -------------------------------------------------------------------------------

def test_parameter_list_attribute_is_not_an_entry():
    _, libs = _both()
    seen = []
    for lib, nn in libs:
        plist = nn.ParameterList([lib.ones(1)])
        plist.scale = nn.Parameter(lib.ones(3))
        plist.append(lib.ones(2))
        seen.append((len(plist), [tuple(p.shape) for p in plist], [n for n, _ in plist.named_parameters()],
                     tuple(plist[-1].shape)))
    assert seen[1] == seen[0] == (2, [(1,), (2,)], ["0", "scale", "1"], (2,))


def test_sequential_iadd_takes_only_a_sequential():
    _, libs = _both()
    for _, nn in libs:
        seq = nn.Sequential(nn.ReLU())
        with pytest.raises(ValueError, match="add operator supports only objects of Sequential class"):
            seq += nn.ModuleList([nn.Tanh()])
        seq += nn.Sequential(nn.Tanh())
        assert [type(m).__name__ for m in seq] == ["ReLU", "Tanh"]


@pytest.mark.parametrize("bad, error, message", [
    (3, TypeError, "update should be called with an iterable of key/value pairs, but got int"),
    ([("a", None, 3)], ValueError, "update sequence element #0 has length 3; 2 is required"),
    ([3], TypeError, "update sequence element #0 should be Iterable; is ?int"),
])
def test_module_dict_update_errors(bad, error, message):
    _, libs = _both()
    for _, nn in libs:
        with pytest.raises(error, match=message):
            nn.ModuleDict().update(bad)


def test_parameter_dict_missing_key_errors_are_torchs():
    _, libs = _both()
    for lib, nn in libs:
        params = nn.ParameterDict({"a": lib.ones(1)})
        for read in (lambda: params["b"], lambda: params.pop("b")):
            with pytest.raises(AttributeError, match="'ParameterDict' object has no attribute 'b'"):
                read()
        with pytest.raises(KeyError):
            del params["b"]
        assert list(params) == ["a"] and params.get("b") is None and "b" not in params
