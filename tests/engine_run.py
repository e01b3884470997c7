"""A few SGD steps of a Pixel Transformer on a fixed batch, run in a fresh process so that each
engine (GT_BACKEND) starts from nothing; prints the losses and parameter checksums as JSON.

    python tests/engine_run.py '{"steps": 5, "model": {}, "batch": 2, "seq": 4}'
"""

import json
import os
import sys

import numpy as np

import gt
from lpm.model import PixelTransformer

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks"))
from bench_engines import sgd_step  # noqa: E402  (the benchmark's step: one definition)


def run(steps=5, model=None, batch=2, seq=4, lr=0.05, autocast=None, classes=10, seed=0, no_sync=False):
    """``no_sync``: the steps after the first run under torch's CUDA sync check, which raises on
    any operation that makes the host wait for a GPU (the loss is read after the last step)."""
    gt.manual_seed(seed)
    net = PixelTransformer(**(model or {}))
    img = net.config.img_size
    rng = np.random.default_rng(seed)
    x = gt.from_numpy(rng.standard_normal((batch, seq, img, img)).astype(np.float32))
    y = gt.from_numpy(rng.integers(0, classes, batch))
    opt = gt.optim.SGD(net.parameters(), lr=lr)
    losses = []
    for i in range(steps):
        if no_sync and i == 1:
            import torch

            torch.cuda.synchronize()
            torch.cuda.set_sync_debug_mode("error")
        loss = sgd_step(net, opt, x, y, autocast)
        losses.append(loss if no_sync else loss.item())
    if no_sync:
        import torch

        torch.cuda.set_sync_debug_mode("default")
        losses = [v.item() for v in losses]
    sums = {k: float(np.abs(v.astype(np.float64)).sum()) for k, v in net.state_dict().items()}
    return {"engine": gt.get_backend(), "device": net.embed.weight.device, "mesh": gt.get_mesh().describe(),
            "losses": losses, "param_abs_sums": sums}


if __name__ == "__main__":
    print(json.dumps(run(**json.loads(sys.argv[1]))))
