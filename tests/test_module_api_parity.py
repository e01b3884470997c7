"""``gt.nn.Module``, its containers and ``gt.nn.utils`` beside torch's on the same module trees:
copies of parameters, ``state_dict``'s ``destination``/``_metadata``, loading older state dicts
(batch norm without ``num_batches_tracked``, 1-element scalars), container orders and indices,
``repr`` and ``clip_grad_norm_``'s other orders. Each case was found by a differential run
against torch 2.13 and differed before its fix."""

import collections
import copy
import math
import pickle
import re

import numpy as np
import pytest

import gt
from helpers import torch_or_skip


def _both():
    torch = torch_or_skip()
    return torch, ((torch, torch.nn), (gt, gt.nn))


def _plain_repr(text):
    """A repr without gt's parameter counts and with torch's library name, for comparison."""
    return re.sub(r"  # [\d,]+ parameters", "", text).replace("gt.", "torch.")


def _trained_linear(lib, nn):
    lin = nn.Linear(3, 2)
    lin(lib.ones(4, 3)).sum().backward()
    return lin


# ---- copies of parameters -------------------------------------------------------------------

@pytest.mark.parametrize("how", ["deepcopy", "pickle"])
def test_copied_parameters_have_no_grad(how):
    _, libs = _both()
    copier = copy.deepcopy if how == "deepcopy" else (lambda x: pickle.loads(pickle.dumps(x)))
    seen = []
    for lib, nn in libs:
        lin = _trained_linear(lib, nn)
        model, param = copier(lin), copier(lin.weight)
        seen.append((model.weight.grad is None, param.grad is None, lin.weight.grad is not None,
                     type(param).__name__, param.requires_grad, model.weight.is_leaf))
    assert seen[1] == seen[0] == (True, True, True, "Parameter", True, True)


def test_deepcopied_parameter_has_its_own_id_and_memory():
    p = gt.nn.Parameter(gt.ones(3))
    p.grad = gt.ones(3)
    before = p.id
    c = copy.deepcopy(p)
    with gt.no_grad():
        c.add_(1)
    assert c.id != before == p.id and p.sum().item() == 3.0 and c.sum().item() == 6.0 and p.grad is not None


# ---- state_dict: destination, _metadata, positional arguments ---------------------------------

def _tree(nn):
    return nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2), nn.Sequential(nn.ReLU(), nn.Linear(2, 1)))


def test_state_dict_metadata_is_torchs():
    _, libs = _both()
    got = [_tree(nn).state_dict(prefix="p.")._metadata for _, nn in libs]
    assert got[1] == got[0]
    assert list(got[1]) == ["p", "p.0", "p.1", "p.2", "p.2.0", "p.2.1"] and got[1]["p.1"] == {"version": 2}


@pytest.mark.parametrize("destination", ["ordered", "plain"])
def test_state_dict_into_destination(destination):
    _, libs = _both()
    seen = []
    for _, nn in libs:
        dest = collections.OrderedDict() if destination == "ordered" else {}
        if destination == "ordered":
            dest._metadata = collections.OrderedDict()
        out = _tree(nn).state_dict(destination=dest, prefix="m.", keep_vars=True)
        seen.append((out is dest, list(dest), getattr(dest, "_metadata", None),
                     [type(v).__name__ for v in dest.values()]))
    assert seen[1] == seen[0]


def test_state_dict_torchs_positional_order_warns():
    _, libs = _both()
    seen = []
    for _, nn in libs:
        dest = {}
        with pytest.warns(FutureWarning, match="Positional args"):
            nn.Linear(2, 2).state_dict(dest, "q.")
        seen.append(list(dest))
    assert seen[1] == seen[0] == ["q.weight", "q.bias"]
    assert list(gt.nn.Linear(2, 2).state_dict("g.")) == ["g.weight", "g.bias"]    # gt's own order stays


# ---- loading older state dicts ---------------------------------------------------------------

@pytest.mark.parametrize("hooked", [False, True])
def test_batchnorm_loads_a_dict_without_num_batches_tracked(hooked):
    _, libs = _both()
    seen = []
    for lib, nn in libs:
        model, source = _tree(nn), _tree(nn)
        with lib.no_grad():
            source[1].num_batches_tracked.fill_(5)
            model[1].num_batches_tracked.fill_(3)
        if hooked:
            model[1].register_load_state_dict_pre_hook(lambda *args: None)
        filtered = {k: v for k, v in source.state_dict().items() if "num_batches" not in k}   # no _metadata
        keys = model.load_state_dict(filtered)
        with_metadata = source.state_dict()
        del with_metadata["1.num_batches_tracked"]              # version 2 in _metadata: it is required
        later = model.load_state_dict(with_metadata, strict=False)
        seen.append((list(keys.missing_keys), int(model[1].num_batches_tracked), list(later.missing_keys)))
    assert seen[1] == seen[0] == ([], 3, ["1.num_batches_tracked"])


def test_one_element_value_loads_into_a_scalar():
    _, libs = _both()
    seen = []
    for lib, nn in libs:
        bn = nn.BatchNorm1d(2)
        state = bn.state_dict()
        state["num_batches_tracked"] = lib.tensor([7])
        bn.load_state_dict(state)
        seen.append((tuple(bn.num_batches_tracked.shape), int(bn.num_batches_tracked)))
    assert seen[1] == seen[0] == ((), 7)


# ---- containers ------------------------------------------------------------------------------

def _names(container):
    return [(k, type(v).__name__ if not hasattr(v, "shape") else tuple(v.shape)) for k, v in container.items()]


def test_parameterdict_sorts_a_plain_dict():
    _, libs = _both()
    seen = []
    for lib, nn in libs:
        pd = nn.ParameterDict({"b": nn.Parameter(lib.ones(2)), "a": nn.Parameter(lib.ones(3))})
        pd.update({"z": nn.Parameter(lib.ones(1)), "c": nn.Parameter(lib.ones(4))})
        pd.update(collections.OrderedDict([("y", nn.Parameter(lib.ones(5))), ("x", nn.Parameter(lib.ones(6)))]))
        seen.append((_names(pd), list(pd.state_dict())))
    assert seen[1] == seen[0]
    assert [k for k, _ in seen[1][0]] == ["a", "b", "c", "z", "y", "x"]


def test_containers_update_from_containers():
    _, libs = _both()
    seen = []
    for lib, nn in libs:
        left = nn.ParameterDict({"ab": nn.Parameter(lib.ones(2))})
        merged = left | nn.ParameterDict({"cd": nn.Parameter(lib.ones(1))})
        modules = nn.ModuleDict({"ab": nn.ReLU()})
        modules.update(nn.ModuleDict({"cd": nn.Tanh(), "ef": nn.ELU()}))
        seen.append((type(merged).__name__, _names(merged), _names(modules)))
    assert seen[1] == seen[0]
    assert [k for k, _ in seen[1][2]] == ["ab", "cd", "ef"]


@pytest.mark.parametrize("index", [5, -5, 4, -4, 0])
def test_sequential_insert_range(index):
    _, libs = _both()
    seen = []
    for _, nn in libs:
        seq = nn.Sequential(nn.ReLU(), nn.Tanh(), nn.ELU(), nn.GELU())
        try:
            seen.append((seq.insert(index, nn.SiLU()) is seq, [type(m).__name__ for m in seq], list(seq._modules)))
        except IndexError as exc:
            seen.append(str(exc))
    assert seen[1] == seen[0]


def test_container_index_by_integer_tensor_and_numpy_int():
    _, libs = _both()
    seen = []
    for lib, nn in libs:
        seq = nn.Sequential(nn.ReLU(), nn.Tanh(), nn.ELU())
        blocks = nn.ModuleList([nn.ReLU(), nn.Tanh()])
        seen.append((type(seq[lib.tensor(1)]).__name__, type(seq[np.int64(-1)]).__name__,
                     type(blocks[lib.tensor(-1)]).__name__))
        with pytest.raises(TypeError):
            seq["1"]
    assert seen[1] == seen[0] == ("Tanh", "ELU", "Tanh")


def test_dir_leaves_out_numbered_children():
    _, libs = _both()
    seen = [[n for n in dir(nn.Sequential(nn.ReLU(), nn.Linear(1, 1))) if n in ("0", "1", "append", "forward")]
            for _, nn in libs]
    assert seen[1] == seen[0] == ["append", "forward"]


# ---- repr ------------------------------------------------------------------------------------

def test_modulelist_repr_folds_repeated_entries():
    _, libs = _both()
    seen = []
    for _, nn in libs:
        blocks = nn.ModuleList([nn.ReLU(), nn.ReLU(), nn.ReLU(), nn.Linear(1, 1), nn.Linear(1, 1), nn.Tanh()])
        parent = nn.Module()
        parent.blocks = blocks
        seen.append((_plain_repr(repr(blocks)), _plain_repr(repr(parent))))
    assert seen[1] == seen[0]
    assert "(0-2): 3 x ReLU()" in seen[1][0]


def test_parameter_containers_repr():
    _, libs = _both()
    seen = []
    for lib, nn in libs:
        plist = nn.ParameterList([nn.Parameter(lib.ones(2)), nn.Parameter(lib.ones(2, 3, dtype=lib.float64))])
        pdict = nn.ParameterDict({"a": nn.Parameter(lib.ones(2)), "b": nn.Parameter(lib.ones(1, 3))})
        one = nn.ParameterDict({"a": nn.Parameter(lib.ones(2))})
        seen.append([_plain_repr(repr(m)) for m in (plist, pdict, one)])
    assert seen[1] == seen[0]


def test_multiline_extra_repr_without_children():
    _, libs = _both()
    seen = []
    for _, nn in libs:
        class Two(nn.Module):
            def extra_repr(self):
                return "a=1\nb=2"
        seen.append(repr(Two()))
    assert seen[1] == seen[0] == "Two(\n  a=1\n  b=2\n)"


# ---- clip_grad_norm_ -------------------------------------------------------------------------

@pytest.mark.parametrize("norm_type", [0, -1.0, -2.5, -math.inf])
@pytest.mark.parametrize("max_norm", [0.5, 100.0])
def test_clip_grad_norm_other_orders(norm_type, max_norm):
    _, libs = _both()
    rng = np.random.default_rng(4)
    grads = [rng.normal(size=s).astype(np.float32) * 3 for s in [(3, 4), (5,), ()]]
    grads[1][1] = 0.0
    seen = []
    for lib, nn in libs:
        params = []
        for g in grads:
            p = nn.Parameter(lib.zeros(g.shape))
            p.grad = lib.tensor(g)
            params.append(p)
        total = nn.utils.clip_grad_norm_(params, max_norm, norm_type=norm_type)
        seen.append([np.asarray(total.detach().numpy())] + [np.asarray(p.grad.numpy()) for p in params])
    for mine, theirs in zip(seen[1], seen[0]):
        np.testing.assert_allclose(mine, theirs, rtol=1e-5, atol=1e-6)


def test_named_modules_memo_holds_modules():
    _, libs = _both()
    seen = []
    for _, nn in libs:
        seq = nn.Sequential(nn.ReLU(), nn.Tanh(), nn.ELU())
        memo = {seq[1]}
        seen.append(([name for name, _ in seq.named_modules(memo=memo)], len(memo)))
    assert seen[1] == seen[0] == (["", "0", "2"], 4)


@pytest.mark.filterwarnings("ignore:Using backward.. with create_graph=True")   # torch's own warning
def test_zero_grad_keeps_a_create_graph_gradient_out_of_the_graph():
    _, libs = _both()
    seen = []
    for lib, nn in libs:
        lin = nn.Linear(2, 1)
        lin(lib.ones(1, 2)).pow(2).sum().backward(create_graph=True)
        grad = lin.weight.grad
        was = grad.requires_grad
        lin.zero_grad(set_to_none=False)
        lin(lib.ones(1, 2)).sum().backward()          # accumulates into the zeroed gradient
        seen.append((was, lin.weight.grad is grad, grad.requires_grad, grad.grad_fn is None,
                     np.asarray(grad.detach().numpy()).tolist()))
    assert seen[1] == seen[0]
    assert seen[1][:4] == (True, True, False, True)
