"""F.multi_head_attention_forward (gt/nn/multihead_attention_functional.py) beside torch's: the
weights passed in (packed or separate projections), bias_k/bias_v, add_zero_attn, masks,
static_k/static_v, unbatched inputs; outputs, weights and every gradient."""

import numpy as np
import pytest

import gt
from gt.nn import functional as F
from helpers import torch_or_skip

E, H, L, S, N = 8, 2, 5, 4, 3


def _arrays(seed, separate, bias_kv, kdim=E):
    rng = np.random.default_rng(seed)
    r = lambda *s: rng.standard_normal(s)              # noqa: E731
    arrays = {"query": r(L, N, E), "key": r(S, N, kdim), "value": r(S, N, kdim), "in_proj_bias": r(3 * E),
              "out_proj_weight": r(E, E), "out_proj_bias": r(E)}
    if separate:
        arrays.update(q_proj_weight=r(E, E), k_proj_weight=r(E, kdim), v_proj_weight=r(E, kdim))
    else:
        arrays["in_proj_weight"] = r(3 * E, E)
    if bias_kv:
        arrays.update(bias_k=r(1, 1, E), bias_v=r(1, 1, E))
    return arrays


def _run(lib, arrays, extra):
    """Outputs and gradients of every input of one call in ``lib`` (float64)."""
    tensors = {k: lib.tensor(v, dtype=lib.float64, requires_grad=True) for k, v in arrays.items()}
    extra = {k: lib.tensor(v) if isinstance(v, np.ndarray) else v for k, v in extra.items()}
    separate = "q_proj_weight" in tensors
    out, weights = lib.nn.functional.multi_head_attention_forward(
        tensors["query"], tensors["key"], tensors["value"], E, H, tensors.get("in_proj_weight"),
        tensors["in_proj_bias"], tensors.get("bias_k"), tensors.get("bias_v"), extra.pop("add_zero_attn", False),
        0.0, tensors["out_proj_weight"], tensors["out_proj_bias"], use_separate_proj_weight=separate,
        q_proj_weight=tensors.get("q_proj_weight"), k_proj_weight=tensors.get("k_proj_weight"),
        v_proj_weight=tensors.get("v_proj_weight"), **extra)
    loss = (out * lib.tensor(np.cos(np.arange(out.numel())).reshape(tuple(out.shape)))).sum()
    if weights is not None:
        loss = loss + (weights * lib.tensor(np.sin(np.arange(weights.numel())).reshape(tuple(weights.shape)))).sum()
    loss.backward()
    got = {"out": out, "weights": weights}
    got.update({f"grad {k}": t.grad for k, t in tensors.items()})
    return {k: None if v is None else v.detach().numpy() for k, v in got.items()}


CASES = {
    "packed": (False, False, {}),
    "separate, bias_kv": (True, True, {}),
    "zero attn, average off": (False, False, {"add_zero_attn": True, "average_attn_weights": False}),
    "masks": (False, True, {"attn_mask": np.triu(np.ones((L, S), bool), 1),
                            "key_padding_mask": np.array([[False, False, True, False]] * N)}),
    "float mask, no weights": (True, False, {"attn_mask": np.linspace(-1, 1, L * S).reshape(L, S),
                                             "need_weights": False}),
}


@pytest.mark.parametrize("case", CASES)
def test_functional_attention_is_torchs(case):
    torch = torch_or_skip()
    separate, bias_kv, extra = CASES[case]
    arrays = _arrays(1, separate, bias_kv)
    ours, theirs = _run(gt, arrays, dict(extra)), _run(torch, arrays, dict(extra))
    for key in theirs:
        if theirs[key] is None:
            assert ours[key] is None, key
        else:
            np.testing.assert_allclose(ours[key], theirs[key], rtol=1e-10, atol=1e-12, err_msg=key)


def test_static_keys_and_values_and_unbatched_input_are_torchs():
    torch = torch_or_skip()
    rng = np.random.default_rng(2)
    static_k, static_v = rng.standard_normal((N * H, 6, E // H)), rng.standard_normal((N * H, 6, E // H))
    arrays = _arrays(3, False, False)
    extra = {"static_k": static_k, "static_v": static_v}
    ours, theirs = _run(gt, arrays, dict(extra)), _run(torch, arrays, dict(extra))
    for key in ("out", "weights", "grad query", "grad in_proj_weight"):
        np.testing.assert_allclose(ours[key], theirs[key], rtol=1e-10, atol=1e-12, err_msg=key)
    assert ours["weights"].shape == (N, L, 6)
    single = {k: (v[:, 0] if k in ("query", "key", "value") else v) for k, v in _arrays(4, True, False).items()}
    ours, theirs = _run(gt, single, {}), _run(torch, single, {})
    for key in theirs:
        np.testing.assert_allclose(ours[key], theirs[key], rtol=1e-10, atol=1e-12, err_msg=key)


def test_functional_attention_errors():
    q = gt.zeros(L, N, E)
    w, b = gt.zeros(3 * E, E), gt.zeros(3 * E)
    with pytest.raises(ValueError, match="was expecting embedding dimension of 6, but got 8"):
        F.multi_head_attention_forward(q, q, q, 6, 2, w, b, None, None, False, 0.0, gt.zeros(E, E), None)
    with pytest.raises(ValueError, match="use_separate_proj_weight is True but q_proj_weight"):
        F.multi_head_attention_forward(q, q, q, E, H, None, b, None, None, False, 0.0, gt.zeros(E, E), None,
                                       use_separate_proj_weight=True)
    with pytest.raises(ValueError, match="expected static_k of shape \\(N \\* num_heads, S, head_dim\\)"):
        F.multi_head_attention_forward(q, q, q, E, H, w, b, None, None, False, 0.0, gt.zeros(E, E), None,
                                       static_k=gt.zeros(N, 4, E))
    with pytest.raises(ValueError, match="bias_k/bias_v cannot be added to static_k"):
        F.multi_head_attention_forward(q, q, q, E, H, w, b, gt.zeros(1, 1, E), gt.zeros(1, 1, E), False, 0.0,
                                       gt.zeros(E, E), None, static_k=gt.zeros(N * H, 4, E // H))
