"""The numpy engine's attention softmax (gt/backend/numpy_kernels.py ``_softmax_rows``): each row
shifted by its first score instead of its maximum, rows that overflow that way done again the
stable way, the causal mask applied with fmin. Checked through F.scaled_dot_product_attention
against torch and a float64 reference, on every engine: huge scores, non-finite future keys,
and causality to the bit."""

import numpy as np
import pytest

import gt
from gt.nn import functional as F
from helpers import randn, torch_or_skip

B_, H, L, E = 2, 2, 7, 4


def _reference(q, k, v, causal):
    """softmax(q k^T / sqrt(E)) v in float64, the stable way."""
    s = q.astype(np.float64) @ np.swapaxes(k, -1, -2).astype(np.float64) / np.sqrt(q.shape[-1])
    if causal:
        s = np.where(np.arange(L)[:, None] < np.arange(L)[None, :], -np.inf, s)
    w = np.exp(s - s.max(-1, keepdims=True))
    return (w / w.sum(-1, keepdims=True)) @ v.astype(np.float64)


@pytest.mark.parametrize("causal", [False, True])
def test_rows_with_scores_far_above_their_first_are_done_the_stable_way(causal):
    torch = torch_or_skip()
    q, k, v = randn(B_, H, L, E, seed=1), randn(B_, H, L, E, seed=2), randn(B_, H, L, E, seed=3)
    q[0, 1, 4] *= 300.0                     # this row's scores span far more than 88 (exp's float32 range)
    k[1, 0, 2] *= 300.0                     # a key that is far above key 0 for every query that sees it
    up = randn(B_, H, L, E, seed=4)
    got = []
    for lib in (gt, torch):
        tq, tk, tv = (lib.tensor(a.astype(np.float32), requires_grad=True) for a in (q, k, v))
        out = lib.nn.functional.scaled_dot_product_attention(tq, tk, tv, is_causal=causal)
        out.backward(lib.tensor(up.astype(np.float32)))
        got.append([t.detach().numpy() for t in (out, tq.grad, tk.grad, tv.grad)])
    assert all(np.isfinite(a).all() for a in got[0])
    np.testing.assert_allclose(got[0][0], _reference(q, k, v, causal), rtol=2e-4, atol=2e-5)
    for name, ours, theirs in zip(("output", "grad q", "grad k", "grad v"), *got):
        np.testing.assert_allclose(ours, theirs, rtol=2e-4, atol=2e-4, err_msg=name)


def test_a_non_finite_future_key_leaves_earlier_queries_alone():
    q, k, v = randn(1, 1, L, E, seed=5), randn(1, 1, L, E, seed=6), randn(1, 1, L, E, seed=7)
    clean = F.scaled_dot_product_attention(*(gt.tensor(a.astype(np.float32)) for a in (q, k, v)),
                                           is_causal=True).numpy()
    for bad in (np.inf, -np.inf, np.nan):
        k2 = k.copy()
        k2[0, 0, 5, 0] = bad                # key 5: only queries 5 and 6 see it
        out = F.scaled_dot_product_attention(*(gt.tensor(a.astype(np.float32)) for a in (q, k2, v)),
                                             is_causal=True).numpy()
        np.testing.assert_array_equal(out[0, 0, :5], clean[0, 0, :5])


def test_causal_outputs_never_depend_on_later_keys_to_the_bit():
    """A later key far above the others sends its rows down the stable path; the earlier rows'
    outputs stay the same bits, since each row's way depends on that row alone."""
    q, k, v = randn(2, 2, L, E, seed=8), randn(2, 2, L, E, seed=9), randn(2, 2, L, E, seed=10)
    before = F.scaled_dot_product_attention(*(gt.tensor(a.astype(np.float32)) for a in (q, k, v)),
                                            is_causal=True).numpy()
    k2, v2 = k.copy(), v.copy()
    k2[:, :, 6] *= 500.0
    v2[:, :, 6] += 3.0
    after = F.scaled_dot_product_attention(*(gt.tensor(a.astype(np.float32)) for a in (q, k2, v2)),
                                           is_causal=True).numpy()
    np.testing.assert_array_equal(after[:, :, :6], before[:, :, :6])
    assert np.isfinite(after).all()
