"""The overhead of sharding on one machine: the default PixelTransformer's training step on
1 device and on N virtual CPU devices (``gt.sharding.use_mesh``), with the collectives one step
performs.

    python benchmarks/bench_sharding.py                # batches 2x4, 16x8, 64x8 on 1 and 4 devices
    python benchmarks/bench_sharding.py --quick --json

Virtual devices run one after another on the same cores, so this measures what the
simulation costs (per-device work on smaller pieces, partial gradients summed), not what
separate accelerators would cost.
"""

import argparse
import json
import statistics
import time

import numpy as np

import gt
from gt import nn
from gt.sharding import count_collectives, use_mesh
from lpm.model import PixelTransformer


def step_times(batch, seq, devices, steps, warmup, model_kw):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, seq, model_kw.get("img_size", 200), model_kw.get("img_size", 200)),
                            dtype=np.float32)
    y = rng.integers(0, 10, batch)
    with use_mesh(devices):
        gt.manual_seed(0)
        model = PixelTransformer(**model_kw)
        opt = gt.optim.SGD(model.parameters(), lr=0.01)
        times, losses = [], []
        for i in range(warmup + steps):
            t0 = time.perf_counter()
            with count_collectives() as c:
                loss = nn.functional.cross_entropy(model(gt.from_numpy(x)), gt.from_numpy(y))
                opt.zero_grad()
                loss.backward()
                opt.step()
                losses.append(loss.item())
            if i >= warmup:
                times.append((time.perf_counter() - t0) * 1e3)
    return dict(min_ms=min(times), median_ms=statistics.median(times), final_loss=losses[-1],
                collectives=dict(c))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--devices", type=int, default=4)
    p.add_argument("--quick", action="store_true", help="a small model and 2 steps: proves the script runs")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    if args.quick:
        configs, steps, warmup, kw = [(8, 2)], 2, 1, dict(img_size=16, embed_dim=16, num_heads=2, num_layers=1, ff_dim=32)
    else:
        configs, steps, warmup, kw = [(2, 4), (16, 8), (64, 8)], 10, 2, {}
    rows = []
    for batch, seq in configs:
        one = step_times(batch, seq, 1, steps, warmup, kw)
        many = step_times(batch, seq, args.devices, steps, warmup, kw)
        rows.append(dict(batch=batch, seq=seq, devices=args.devices, one_device=one, sharded=many,
                         ratio=many["median_ms"] / one["median_ms"],
                         same_loss=abs(many["final_loss"] - one["final_loss"]) <= 1e-5 * max(1.0, abs(one["final_loss"]))))
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print(f"{'batch x seq':>12} {'1 device ms':>12} {f'{args.devices} devices ms':>14} {'ratio':>6}  collectives per step")
    for r in rows:
        print(f"{r['batch']:>5} x {r['seq']:<4} {r['one_device']['median_ms']:>12.1f} {r['sharded']['median_ms']:>14.1f} "
              f"{r['ratio']:>6.2f}  {r['sharded']['collectives']}  (same loss: {r['same_loss']})")


if __name__ == "__main__":
    main()
