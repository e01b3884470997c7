"""torch's smaller Module protocols, run beside torch on the same programs: the extra state
(``get_extra_state``/``set_extra_state`` in ``state_dict``/``load_state_dict``, with and without
state-dict hooks) and the container methods (``pop``, ``+``, ``*``, ``clear`` and the dict methods
of ``ParameterDict``)."""

import numpy as np
import pytest

import gt
from gt import nn
from helpers import torch_or_skip


def _libs():
    torch = torch_or_skip()
    return [(gt, nn), (torch, torch.nn)]


def _counter_model(lib, mod, hooked=False):
    """Outer(fc=Linear(2, 1), counter=Counter) where Counter keeps a step count and a vocabulary
    as extra state; Outer saves its own extra state too, after its buffer."""
    class Counter(mod.Module):
        def __init__(self):
            super().__init__()
            self.w = mod.Parameter(lib.ones(2, dtype=lib.float64))
            self.steps, self.vocab = 0, []

        def get_extra_state(self):
            return {"steps": self.steps, "vocab": list(self.vocab)}

        def set_extra_state(self, state):
            self.steps, self.vocab = state["steps"], state["vocab"]

    class Outer(mod.Module):
        def __init__(self):
            super().__init__()
            self.fc, self.counter = mod.Linear(2, 1).double(), Counter()
            self.register_buffer("seen", lib.zeros(1, dtype=lib.float64))
            self.tag = "new"

        def get_extra_state(self):
            return self.tag

        def set_extra_state(self, state):
            self.tag = state

    model = Outer()
    if hooked:
        model.counter.register_load_state_dict_pre_hook(lambda *args: None)
        model.fc.register_state_dict_pre_hook(lambda *args: None)
    return model


@pytest.mark.parametrize("hooked", [False, True])
def test_extra_state_is_saved_and_loaded_in_torchs_order(hooked):
    got = []
    for lib, mod in _libs():
        src = _counter_model(lib, mod, hooked)
        src.counter.steps, src.counter.vocab, src.tag = 7, ["a", "b"], "trained"
        with lib.no_grad():
            src.counter.w.mul_(3.0)
        sd = src.state_dict()
        dst = _counter_model(lib, mod, hooked)
        keys = dst.load_state_dict(sd)
        got.append((list(sd), sd["_extra_state"], sd["counter._extra_state"], dst.tag, dst.counter.steps,
                    dst.counter.vocab, dst.counter.w.tolist(), list(keys.missing_keys), list(keys.unexpected_keys)))
    assert got[0] == got[1]
    assert got[0][0] == ["seen", "_extra_state", "fc.weight", "fc.bias", "counter.w", "counter._extra_state"]
    assert got[0][3:7] == ("trained", 7, ["a", "b"], [3.0, 3.0])


@pytest.mark.parametrize("hooked", [False, True])
def test_extra_state_keys_are_missing_or_unexpected_as_torchs(hooked):
    for lib, mod in _libs():
        model = _counter_model(lib, mod, hooked)
        sd = model.state_dict()
        del sd["counter._extra_state"]
        keys = model.load_state_dict(sd, strict=False)
        assert keys.missing_keys == ["counter._extra_state"] and keys.unexpected_keys == []
        with pytest.raises(RuntimeError, match='Missing key\\(s\\) in state_dict: "counter._extra_state"'):
            model.load_state_dict(sd)
        plain = mod.Linear(2, 1).double()       # a module without the protocol: the key is not its
        sd = {**plain.state_dict(), "_extra_state": 3}
        assert plain.load_state_dict(sd, strict=False).unexpected_keys == ["_extra_state"]


def test_a_failed_load_sets_no_extra_state():
    model = _counter_model(gt, nn)
    sd = model.state_dict()
    sd["counter._extra_state"] = {"steps": 99, "vocab": ["z"]}
    sd["fc.weight"] = np.zeros((3, 3))
    with pytest.raises(RuntimeError, match="(?s)nothing was loaded.*size mismatch for fc.weight"):
        model.load_state_dict(sd)
    assert model.counter.steps == 0 and model.counter.vocab == []


def test_the_protocol_is_not_called_where_it_is_not_defined():
    with pytest.raises(RuntimeError, match="get_extra_state\\(\\) is called only where a subclass defines it"):
        nn.Linear(2, 1).get_extra_state()
    assert list(nn.Linear(2, 1).state_dict()) == ["weight", "bias"]


def _names(seq):
    return [type(m).__name__ for m in seq], list(seq._modules)     # named_children() skips repeats


def test_sequential_and_module_list_pop_add_and_multiply_as_torchs():
    got = []
    for lib, mod in _libs():
        lib.manual_seed(0)
        seq = mod.Sequential(mod.Linear(2, 3), mod.ReLU(), mod.Linear(3, 2), mod.Tanh())
        popped = seq.pop(1)
        sliced = seq.pop(slice(1, None))
        doubled = mod.Sequential(mod.ReLU(), mod.Linear(2, 2)) * 2
        tripled = 3 * mod.Sequential(mod.Tanh())
        grown = mod.Sequential(mod.ReLU(), mod.Identity())
        grown *= 2
        joined = mod.Sequential(mod.ReLU()) + mod.Sequential(mod.Tanh(), mod.Identity())
        listed = mod.ModuleList([mod.ReLU(), mod.Tanh()]) + [mod.Identity()]
        shared = doubled[1] is doubled[3]
        got.append([type(popped).__name__, _names(seq), _names(sliced), _names(doubled), _names(tripled),
                    _names(grown), _names(joined), type(joined).__name__, _names(listed), type(listed).__name__,
                    type(mod.ModuleList([mod.ReLU(), mod.Tanh()]).pop(-1)).__name__, shared,
                    len(list(doubled.parameters()))])
    assert got[0] == got[1]
    assert got[0][3] == (["ReLU", "Linear", "ReLU", "Linear"], ["0", "1", "2", "3"]) and got[0][-2:] == [True, 2]


def test_container_errors_are_torchs():
    for lib, mod in _libs():
        with pytest.raises(ValueError, match="add operator supports only objects of Sequential class"):
            mod.Sequential(mod.ReLU()) + mod.ModuleList([mod.ReLU()])
        with pytest.raises(ValueError, match="Non-positive multiplication factor 0"):
            mod.Sequential(mod.ReLU()) * 0
        with pytest.raises(TypeError, match="unsupported operand type"):
            mod.Sequential(mod.ReLU()) * 1.5
        with pytest.raises(KeyError):
            mod.ModuleDict({"a": mod.ReLU()}).pop("b")
        with pytest.raises(KeyError, match="popitem\\(\\): dictionary is empty"):
            mod.ParameterDict().popitem()


def test_module_dict_pop_and_clear_as_torchs():
    got = []
    for lib, mod in _libs():
        d = mod.ModuleDict({"b": mod.ReLU(), "a": mod.Linear(1, 1)})
        popped = d.pop("a")
        keys = list(d)
        d.clear()
        got.append([type(popped).__name__, keys, list(d), len(list(d.parameters())), hasattr(d, "b")])
    assert got[0] == got[1] == [["Linear", ["b"], [], 0, False]][0]


def test_parameter_dict_dict_methods_as_torchs():
    got = []
    for lib, mod in _libs():
        one, two = mod.Parameter(lib.ones(1)), mod.Parameter(lib.zeros(2))
        d = mod.ParameterDict({"a": one})
        same = d.setdefault("a", two) is one
        d.setdefault("b", two)
        left, right = {"z": one} | d, d | {"z": one}
        copied = d.copy()
        copied_shares = copied["b"] is two
        last = d.popitem()
        fresh = d.fromkeys(["x", "y"])
        d |= {"c": two}
        got.append([same, type(left).__name__, list(left), type(right).__name__, list(right),
                    list(reversed(right)), copied_shares, last[0], last[1] is two, list(d), d.get("q", 5),
                    d.get("a") is one, list(fresh.items()), list(fresh.state_dict()),
                    [n for n, _ in d.named_parameters()]])
    assert got[0] == got[1]
    assert got[0][:5] == [True, "dict", ["z", "a", "b"], "ParameterDict", ["a", "b", "z"]]


def test_set_submodule_as_torchs():
    got = []
    for lib, mod in _libs():
        net = mod.Sequential(mod.Linear(2, 3), mod.ReLU(), mod.Sequential(mod.Linear(3, 1)))
        net.set_submodule("1", mod.Tanh())
        net.set_submodule("2.extra", mod.Identity())            # a new entry under an existing parent
        net.set_submodule("2.0", mod.Linear(3, 2), strict=True)
        errors = []
        for target, module, strict in [("2.missing", mod.ReLU(), True), ("0.weight", mod.ReLU(), False),
                                       ("", mod.ReLU(), False), ("1", 3, False)]:
            with pytest.raises((AttributeError, ValueError)) as err:
                net.set_submodule(target, module, strict=strict)
            errors.append((err.type.__name__, str(err.value).split(" (setting")[0]))
        got.append([[n for n, _ in net.named_modules()], [type(m).__name__ for m in net.modules()],
                    tuple(net[2][0].weight.shape), errors])
    assert got[0][:3] == got[1][:3]
    assert [e[0] for e in got[0][3]] == [e[0] for e in got[1][3]]
    assert got[0][3][1:3] == got[1][3][1:3]
    assert got[0][1] == ["Sequential", "Linear", "Tanh", "Sequential", "Linear", "Identity"]


def test_module_type_casts_every_parameter_and_buffer_as_torchs():
    got = []
    for lib, mod in _libs():
        bn = mod.BatchNorm1d(2)
        bn(lib.ones(3, 2)).sum().backward()
        same = bn.type(lib.float64) is bn
        lin = mod.Linear(2, 2).type("torch.DoubleTensor")
        with pytest.raises(RuntimeError):
            mod.Linear(2, 2).type(lib.int64)
        frozen = mod.Linear(2, 2).requires_grad_(False).type(lib.int64)
        got.append([same, [str(t.dtype).split(".")[-1] for t in [*bn.parameters(), *bn.buffers()]],
                    str(bn.weight.grad.dtype).split(".")[-1], str(lin.weight.dtype).split(".")[-1],
                    str(frozen.weight.dtype).split(".")[-1]])
    assert got[0] == got[1] == [True, ["float64"] * 5, "float64", "float64", "int64"]
