"""Decoding speed with and without a key/value cache (``gt.nn.KVCache``): greedy generation from
a small decoder (causal blocks with cross-attention over an encoder output), in tokens/s.

    python benchmarks/bench_kv_cache.py            # D=128, 4 layers, 4 heads, batch 8, 64 new tokens
    python benchmarks/bench_kv_cache.py --quick --json

Without the cache every step runs the whole prefix again (the work grows with the square of
the length); with it, each step runs the new token only, over the cached keys and values, and
the cross-attention keys and values of the context are computed once. Both generate the same
tokens; the largest difference of their logits is printed with the timings.
"""

import argparse
import json
import os
import statistics
import time

import numpy as np

import gt
from gt import nn
from gt.backend import B
from machine import cpu_name   # benchmarks/machine.py, beside this script


class Decoder(nn.Module):
    """Token and position embeddings, causal cross-attention blocks, a final norm and a head."""

    def __init__(self, vocab, dim, layers, heads, max_len):
        super().__init__()
        self.tok, self.pos = nn.Embedding(vocab, dim), nn.Embedding(max_len, dim)
        self.blocks = nn.ModuleList([nn.TransformerBlock(dim, heads, 4 * dim, causal=True, cross_attention=True)
                                     for _ in range(layers)])
        self.ln, self.head = nn.LayerNorm(dim), nn.Linear(dim, vocab)

    def forward(self, idx, context, cache=None):
        start = 0 if cache is None else cache.seq_len
        x = self.tok(idx) + self.pos(gt.arange(start, start + idx.shape[1]))      # (B, T, D)
        for block in self.blocks:
            x = block(x, context=context, cache=cache)
        return self.head(self.ln(x))                                                # (B, T, vocab)


def generate(model, prompt, context, new_tokens, use_cache):
    """Greedy decoding; returns the tokens (B, P + new) and the last-position logits of every step."""
    cache = nn.KVCache() if use_cache else None
    idx, steps = prompt, []
    with gt.no_grad():
        inp = prompt
        for _ in range(new_tokens):
            last = model(inp, context, cache)[:, -1]                  # (B, vocab)
            steps.append(last.numpy())
            nxt = last.argmax(-1).unsqueeze(1)                        # (B, 1)
            idx = gt.cat([idx, nxt], dim=1)
            inp = nxt if use_cache else idx
    return idx.numpy(), np.stack(steps, 1)


def measure(cfg, repeats):
    gt.manual_seed(0)
    model = Decoder(cfg["vocab"], cfg["dim"], cfg["layers"], cfg["heads"], cfg["prompt"] + cfg["new_tokens"]).eval()
    rng = np.random.default_rng(0)
    prompt = gt.tensor(rng.integers(0, cfg["vocab"], (cfg["batch"], cfg["prompt"])))
    context = gt.tensor(rng.standard_normal((cfg["batch"], cfg["context"], cfg["dim"]), dtype=np.float32))
    results, outputs = {}, {}
    for name, use_cache in (("cache", True), ("no_cache", False)):
        generate(model, prompt, context, 2, use_cache)                # warm-up: first calls allocate
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            outputs[name] = generate(model, prompt, context, cfg["new_tokens"], use_cache)
            times.append(time.perf_counter() - t0)
        tokens = cfg["batch"] * cfg["new_tokens"]
        results[name] = dict(min_s=min(times), median_s=statistics.median(times), tokens_per_s=tokens / min(times))
    results["speedup"] = results["no_cache"]["min_s"] / results["cache"]["min_s"]
    results["same_tokens"] = bool((outputs["cache"][0] == outputs["no_cache"][0]).all())
    results["max_logit_diff"] = float(np.abs(outputs["cache"][1] - outputs["no_cache"][1]).max())
    return results


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="a tiny decoder and 4 new tokens: proves the script runs")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    p.add_argument("--repeats", type=int, default=3, help="timed runs of each way (the fastest counts; default 3)")
    args = p.parse_args(argv)
    if args.repeats < 1:
        p.error(f"--repeats must be at least 1, got {args.repeats}")
    if args.quick:
        cfg = dict(dim=32, layers=2, heads=2, batch=2, prompt=2, new_tokens=4, context=5, vocab=16)
        args.repeats = 1
    else:
        cfg = dict(dim=128, layers=4, heads=4, batch=8, prompt=1, new_tokens=64, context=16, vocab=256)
    load_before = os.getloadavg()[0]
    results = measure(cfg, args.repeats)
    report = dict(quick=args.quick, config=cfg, engine=B.name, cpu=cpu_name(), cores=os.cpu_count(),
                  load_before=load_before, load_after=os.getloadavg()[0], **results)
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(f"decoder D={cfg['dim']}, {cfg['layers']} layers, {cfg['heads']} heads, batch {cfg['batch']}, "
          f"{cfg['new_tokens']} new tokens, context {cfg['context']}; engine {report['engine']}, {report['cpu']} "
          f"({report['cores']} cores), load {load_before:.2f} -> {report['load_after']:.2f}")
    for name in ("no_cache", "cache"):
        r = results[name]
        print(f"{name:>9}: {r['tokens_per_s']:8.1f} tokens/s  (best {r['min_s']:.3f} s, median {r['median_s']:.3f} s)")
    print(f"speedup {results['speedup']:.1f}x; same tokens: {results['same_tokens']}; "
          f"largest logit difference {results['max_logit_diff']:.2e}")


if __name__ == "__main__":
    main()
