"""nn.Embedding / F.embedding with torch's options (gt/nn/embedding_options.py) beside torch:
padding_idx (its row zero at start, no gradient), scale_grad_by_freq, max_norm (rows renormed
in place), _weight/_freeze, from_pretrained, repr, state dicts, and the errors."""

import numpy as np
import pytest

import gt
from helpers import torch_or_skip

RNG = np.random.default_rng(3)
TABLE = RNG.normal(size=(6, 3)) * 2
IDS = np.array([[0, 2, 2, 5], [1, 2, 0, 4]])
OPTIONS = {
    "plain": {}, "padding": {"padding_idx": 2}, "negative padding": {"padding_idx": -1},
    "freq": {"scale_grad_by_freq": True}, "padding freq": {"padding_idx": 0, "scale_grad_by_freq": True},
    "max_norm": {"max_norm": 1.5}, "max_norm l1": {"max_norm": 2.0, "norm_type": 1.0},
    "all": {"padding_idx": 5, "max_norm": 1.0, "scale_grad_by_freq": True},
}


@pytest.mark.parametrize("name", sorted(OPTIONS))
def test_functional_embedding_options_are_torch_s(name):
    torch = torch_or_skip()
    upstream = RNG.normal(size=IDS.shape + (3,))
    got = []
    for m in (torch, gt):
        w = m.tensor(TABLE, dtype=m.float64, requires_grad=True)
        out = m.nn.functional.embedding(m.tensor(IDS), w, **OPTIONS[name])
        (out * m.tensor(upstream)).sum().backward()
        got.append((out.detach().numpy(), w.grad.numpy(), w.detach().numpy()))   # max_norm changes w itself
    for g, t in zip(got[1], got[0]):
        np.testing.assert_allclose(g, t, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("name", sorted(OPTIONS))
def test_embedding_module_options_are_torch_s(name):
    torch = torch_or_skip()
    kwargs = OPTIONS[name]
    t = torch.nn.Embedding(6, 3, **kwargs)
    g = gt.nn.Embedding(6, 3, **kwargs)
    assert repr(g).split("  #")[0] == repr(t)
    if "padding_idx" in kwargs:         # the padding row starts at zero
        assert g.weight[kwargs["padding_idx"]].abs().sum().item() == 0.0
    assert list(g.state_dict()) == list(t.state_dict()) == ["weight"]
    g.load_state_dict({"weight": TABLE})
    t.load_state_dict({"weight": torch.tensor(TABLE, dtype=torch.float32)})
    upstream = RNG.normal(size=(2, 4, 3)).astype(np.float32)
    (g(gt.tensor(IDS)) * gt.tensor(upstream)).sum().backward()
    (t(torch.tensor(IDS)) * torch.tensor(upstream)).sum().backward()
    np.testing.assert_allclose(g.weight.grad.numpy(), t.weight.grad.numpy(), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(g.weight.detach().numpy(), t.weight.detach().numpy(), rtol=1e-6, atol=1e-7)


def test_from_pretrained_weight_and_freeze_as_torch():
    torch = torch_or_skip()
    for freeze in (True, False):
        t = torch.nn.Embedding.from_pretrained(torch.tensor(TABLE), freeze=freeze, padding_idx=1)
        g = gt.nn.Embedding.from_pretrained(gt.tensor(TABLE), freeze=freeze, padding_idx=1)
        assert g.weight.requires_grad == t.weight.requires_grad == (not freeze)
        assert repr(g).split("  #")[0] == repr(t)
        np.testing.assert_array_equal(g(gt.tensor(IDS)).detach().numpy(), t(torch.tensor(IDS)).detach().numpy())
    g = gt.nn.Embedding(6, 3, _weight=gt.tensor(TABLE), _freeze=True)
    assert not g.weight.requires_grad and np.array_equal(g.weight.numpy(), TABLE)
    assert gt.nn.Embedding(3, 2, gt.float64).weight.dtype == gt.float64     # gt's positional dtype, kept


@pytest.mark.parametrize("call, error, match", [
    (lambda: gt.nn.Embedding(4, 2, padding_idx=4), ValueError, r"padding_idx must be within the 4 rows.*got 4"),
    (lambda: gt.nn.Embedding(4, 2, padding_idx=-5), ValueError, "padding_idx must be within"),
    (lambda: gt.nn.Embedding(4, 2, max_norm=-1.0), ValueError, "max_norm must be a positive number"),
    (lambda: gt.nn.Embedding(4, 2, _weight=gt.zeros(3, 2)), ValueError, r"_weight must have shape \(4, 2\)"),
    (lambda: gt.nn.Embedding.from_pretrained(gt.zeros(4)), ValueError, "must be 2-D"),
    (lambda: gt.nn.functional.embedding(gt.tensor([0]), gt.zeros(3, 2), padding_idx=1.5), TypeError, "padding_idx"),
])
def test_embedding_option_errors_name_the_value(call, error, match):
    with pytest.raises(error, match=match):
        call()
