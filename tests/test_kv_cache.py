"""Decoding with ``nn.KVCache``: a small decoder (two causal blocks with cross-attention) that
generates token by token with the cache gives the logits of running the whole prefix each
step, on one device and on a batch sharded over four; the cross-attention keys and values of
the context are computed once."""

import numpy as np
import pytest

import gt
from gt import nn
from gt.sharding import Shard, get_mesh, use_mesh

VOCAB, D, HEADS, MAX_LEN = 11, 16, 2, 16


class TinyDecoder(nn.Module):
    """Token and position embeddings, causal blocks with cross-attention over ``context``, a head."""

    def __init__(self, layers=2):
        super().__init__()
        self.tok, self.pos = nn.Embedding(VOCAB, D), nn.Embedding(MAX_LEN, D)
        self.blocks = nn.ModuleList([nn.TransformerBlock(D, HEADS, 2 * D, causal=True, cross_attention=True)
                                     for _ in range(layers)])
        self.ln, self.head = nn.LayerNorm(D), nn.Linear(D, VOCAB)

    def forward(self, idx, context, cache=None):
        start = 0 if cache is None else cache.seq_len          # position of idx's first token
        x = self.tok(idx) + self.pos(gt.arange(start, start + idx.shape[1]))   # (B, T, D)
        for block in self.blocks:
            x = block(x, context=context, cache=cache)
        return self.head(self.ln(x))                             # (B, T, VOCAB)


def _decode(model, prompt, context, steps, chunk=1):
    """Greedy decoding with a cache: the prompt once, then ``chunk`` tokens per call (the later
    ones of a chunk are the greedy choices fed in together, to exercise several new queries over
    cached keys). Returns the tokens and the logits of every position after the prompt."""
    cache = nn.KVCache()
    with gt.no_grad():
        logits = model(prompt, context, cache)
        idx, seen = prompt, [logits.numpy()]
        while idx.shape[1] < prompt.shape[1] + steps:
            nxt = logits[:, -1].argmax(-1).unsqueeze(1)               # (B, 1)
            new = nxt
            for _ in range(chunk - 1):                                # a guess for the next ones: the same token
                new = gt.cat([new, nxt], dim=1)
            idx = gt.cat([idx, new], dim=1)
            logits = model(new, context, cache)
            seen.append(logits.numpy())
        assert cache.seq_len == idx.shape[1] and len(cache) == idx.shape[1]
    return idx, np.concatenate(seen, axis=1), cache


def _full(model, idx, context):
    with gt.no_grad():
        return model(idx, context).numpy()


@pytest.mark.parametrize("chunk", [1, 2])
def test_cached_decoding_gives_the_logits_of_the_full_prefix(chunk):
    gt.manual_seed(0)
    model = TinyDecoder().eval()
    prompt = gt.tensor(np.random.default_rng(1).integers(0, VOCAB, (3, 2)))
    context = gt.randn(3, 5, D)
    idx, cached, _ = _decode(model, prompt, context, steps=6, chunk=chunk)
    # running the whole sequence at once sees the same tokens: each position's logits agree
    np.testing.assert_allclose(cached, _full(model, idx, context), rtol=1e-5, atol=1e-5)
    # and step by step, each prefix on its own (what decoding without a cache does)
    for n in range(prompt.shape[1], idx.shape[1] + 1):
        np.testing.assert_allclose(cached[:, n - 1], _full(model, idx[:, :n], context)[:, -1], rtol=1e-5, atol=1e-5)


def test_cross_attention_keys_are_projected_once_per_context():
    gt.manual_seed(0)
    model = TinyDecoder(layers=1).eval()
    calls = []
    k_proj = model.blocks[0].cross_attn.k_proj
    k_proj.forward = lambda x, _f=k_proj.forward: calls.append(x.shape) or _f(x)
    prompt, context = gt.tensor([[1, 2], [3, 4]]), gt.randn(2, 5, D)
    cache = nn.KVCache()
    with gt.no_grad():
        for idx in (prompt, prompt[:, :1], prompt[:, 1:]):
            model(idx, context, cache)
        assert calls == [(2, 5, D)]
        other = gt.randn(2, 7, D)
        model(prompt[:, :1], other, cache)             # a new context tensor: projected anew
        assert calls == [(2, 5, D), (2, 7, D)] and cache.seq_len == 5
    cache.reset()
    assert cache.seq_len == 0 and "seq_len=0" in repr(cache)


@pytest.mark.own_mesh
def test_cached_decoding_on_a_sharded_batch_matches_one_device():
    rng = np.random.default_rng(2)
    prompt, context = rng.integers(0, VOCAB, (8, 2)), rng.standard_normal((8, 5, D)).astype(np.float32)

    def run():
        gt.manual_seed(0)
        model = TinyDecoder().eval()
        p, c = gt.tensor(prompt), gt.tensor(context)
        if get_mesh().size > 1:
            p, c = p.shard(0), c.shard(0)
        idx, logits, cache = _decode(model, p, c, steps=5)
        return idx.numpy(), logits, cache

    with use_mesh(1):
        ref_idx, ref, _ = run()
    with use_mesh(4):
        idx, got, cache = run()
    # every layer's cached keys and values stay split over the batch, from the token ids on
    for entry in list(cache._self_entries.values()) + list(cache._cross_entries.values()):
        assert entry[-1].placement == entry[-2].placement == Shard(0)
    np.testing.assert_array_equal(idx, ref_idx)
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5)


@pytest.mark.own_mesh
def test_cache_keeps_the_batch_shard():
    with use_mesh(4):
        gt.manual_seed(0)
        attn = nn.MultiHeadAttention(D, HEADS, causal=True)
        cache = nn.KVCache()
        with gt.no_grad():
            for _ in range(3):
                out = attn(gt.randn(8, 1, D).shard(0), cache=cache)
        (_, keys, values), = cache._self_entries.values()
        assert keys.shape == values.shape == (8, 3, D)
        assert keys.placement == out.placement == Shard(0)


def test_reorder_continues_the_chosen_rows():
    # beam search's step: row b of the next batch continues row index[b] of this one
    gt.manual_seed(0)
    model = TinyDecoder().eval()
    ids = np.random.default_rng(3).integers(0, VOCAB, (3, 5))
    context = gt.randn(1, 4, D)[gt.tensor([0, 0, 0])]       # one image's rows, as for its beams
    index = np.array([2, 2, 0])
    cache = nn.KVCache()
    with gt.no_grad():
        model(gt.tensor(ids[:, :3]), context, cache)
        cache.reorder(index)
        cache.reorder(gt.tensor([0, 1, 2]))                  # the identity: nothing changes
        got = model(gt.tensor(ids[index, 3:]), context, cache).numpy()
        want = model(gt.tensor(np.concatenate([ids[index, :3], ids[index, 3:]], axis=1)), context).numpy()
    np.testing.assert_allclose(got, want[:, 3:], rtol=1e-5, atol=1e-5)
    assert cache.seq_len == 5
    with pytest.raises(ValueError, match=r"outside \[0, 3\)"):
        cache.reorder([0, 3, 1])
    with pytest.raises(ValueError, match="1-D int row ids"):
        cache.reorder([[0, 1, 2]])


def test_reuse_computes_once_per_source():
    calls, cache = [], nn.KVCache()
    owner, a, b = object(), gt.ones(2, 3), gt.ones(2, 3)
    double = lambda x: calls.append(1) or x * 2                       # noqa: E731
    assert cache.reuse(owner, a, double) is cache.reuse(owner, a, double) and len(calls) == 1
    np.testing.assert_array_equal(cache.reuse(owner, b, double).numpy(), np.full((2, 3), 2.0))
    assert len(calls) == 2                                          # another source tensor: computed anew
    cache.reset()
    cache.reuse(owner, b, double)
    assert len(calls) == 3
