"""One training step of the default Pixel Transformer, gt against PyTorch eager, side by side.

    python benchmarks/bench_train.py            # the full run (about a minute on 2 quiet cores)
    python benchmarks/bench_train.py --json     # the same figures as one JSON object
    python benchmarks/bench_train.py --quick    # a few steps: proves the benchmark runs (CI)
    python benchmarks/bench_train.py --quick --tiny   # the same on a tiny model (the test suite)

Both frameworks get the same model (``PixelTransformer()``: 200x200 images, embed_dim 256,
4 layers, 4 heads, ff 1024, 10 classes), the same weights (gt's state dict loaded into the
PyTorch reference in benchmarks/torch_reference.py) and the same batches, in one process,
taking turns. Two ways of taking turns are timed, and both are reported:

- ``blocks`` (the headline figures and the targets): each framework runs 5 consecutive steps,
  then the other, and so on; the first step of each block is not timed. This is how each
  framework runs in a real training loop.
- ``alternate``: one gt step, one torch step, and so on. Here each framework's step starts
  while the other's idle worker threads are still spinning (OpenBLAS's and OpenMP's threads
  busy-wait for a while after a parallel region), and on 2 cores they take a core from the
  step that runs: PyTorch loses about half its speed this way, gt a little. Shown for
  comparison with figures taken that way; it measures the two runtimes colliding.

A step is what a user writes:

    gt:     loss = F.cross_entropy(model(x), y); loss.backward(); opt.step(); opt.zero_grad()
    torch:  opt.zero_grad(); loss = F.cross_entropy(model(x), y); loss.backward(); opt.step()

with ``SGD(lr=0.01)`` (plain gradient descent) on both sides. Reported per config:

- ms/step, min and median over the timed steps (after warm-up), and gt/torch (of the medians);
- the losses of every timed step on both sides (they must agree: both train one model on the
  same batches) and the largest relative difference of the embedding weights at the end;
- GFLOP/s of the whole step: the model's matmul FLOPs counted analytically (forward; backward
  = 2x forward, less the embedding's input gradient, which neither side computes since the
  images need no gradient) over the median step time, and that as a share of the sgemm peak
  measured in this run (the faster of numpy's and torch's 2048^3 float32 gemm);
- minor page faults per step (median): first touches of freshly mapped memory, about 4 KiB
  and a fraction of a microsecond each, the cost of allocating large buffers afresh;
- forward-only inference (``no_grad``, eval mode) images/s at batch 16 x 8 images;
- peak memory of a training run (16 x 8, a few steps), each framework in a fresh subprocess:
  VmHWM (the kernel's resident high-water mark) after training minus VmRSS before the model
  is built, with the high-water mark reset (/proc/self/clear_refs) after imports and data
  are in place, so library import footprints (torch's is ~10x numpy's) do not count.
  Without /proc it falls back to ru_maxrss;
- the small-decoder step (small_decoder.py): a 0.87M-parameter causal decoder over 256 codes,
  batch 64 x 49 tokens, ``AdamW(lr=1e-3)``, gt.nn against the same model in PyTorch
  (``TorchDecoder`` in torch_reference.py) with the same weights, in blocks;
- the seed step and the small-decoder step under load (under_load.py): timed again in blocks
  beside two busy processes; the slowdown is loaded / quiet (the quiet medians above), for
  each framework, and gt's slowdown over torch's.

The header names the CPU and each framework's BLAS and threads (machine.py).

torch is optional: without it the gt figures are printed alone with a line on how to
install it (``pip install torch==2.13.0``).
"""

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

from gt.backend import memory as gt_memory  # noqa: E402
from machine import cpu_name, gt_products, numpy_blas, torch_parallel  # noqa: E402  (benchmarks/, beside this script)
from small_decoder import DECODER, DECODER_BATCH, measure_decoder  # noqa: E402
from timing import (BLOCK, gt_train_step, summary, take_turns, timed, torch_threads,  # noqa: E402
                    torch_train_step, with_torch_threads)
from under_load import slowdowns  # noqa: E402

MODEL = dict(img_size=200, embed_dim=256, num_heads=4, num_layers=4, ff_dim=1024, num_classes=10,
             max_seq_len=32)
# --tiny: every step of the run on a model of 16x16 images, width 32 (the same layers, classes and
# batches): the test suite proves the code paths run without the default model's seconds of work
TINY = dict(img_size=16, embed_dim=32, num_heads=4, num_layers=4, ff_dim=64, num_classes=10, max_seq_len=32)
CONFIGS = {"seed": (2, 4), "large": (16, 8)}
FORWARD = (16, 8)
BUSY_LOAD = 0.5   # load average per core before the run above which the machine counts as busy
QUICK_DECODER_BATCH = 8   # --quick: the same decoder on 8 sequences instead of 64 (the CI budget)
LR = 0.01
IN_BACKWARD = "gt in_backward"   # the gt step with SGD(..., in_backward=True), as train.py runs it
TORCH_HINT = "torch is not installed: only gt's figures are shown. For the comparison: pip install torch==2.13.0"

TARGETS = [  # (key, description, comparison, target); target None: shown for information
    ("seed_ratio", "seed step time (2x4), gt / torch", "<=", 0.6),
    ("seed_ratio_in_backward", "seed step time (2x4), gt in_backward / torch", "<=", 0.6),
    ("large_ratio", "large step time (16x8), gt / torch", "<=", 0.9),
    ("large_ratio_in_backward", "large step time (16x8), gt in_backward / torch", "<=", 0.9),
    ("forward_ratio", "forward images/s at batch 16x8, gt / torch", ">=", 1.0),
    ("decoder_ratio", "small-decoder step time, gt / torch", "<=", 1.0),
    ("memory_ratio", "peak memory of a training run, gt / torch", "<=", 1.2),
    ("load_seed_slowdown", "seed step under 2 busy processes, gt slowdown", "<=", 3.0),
    ("load_decoder_slowdown", "small-decoder step under 2 busy processes, gt slowdown", "<=", 3.0),
    ("load_seed_vs_torch", "seed step under load, gt slowdown / torch slowdown", "<=", 1.0),
    ("load_decoder_vs_torch", "small-decoder step under load, gt slowdown / torch slowdown", "<=", 1.0),
    ("large_peak_share", "large step, share of sgemm peak (gt)", None, None),
]


def have_torch():
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


# ---- FLOPs -------------------------------------------------------------------------------
def matmul_flops(batch, seq, img_size=200, embed_dim=256, num_heads=4, num_layers=4, ff_dim=1024,
                 num_classes=10, **_):
    """Multiply-adds x 2 of every matmul in one forward pass, by layer kind."""
    N, P, D, F, C = batch * seq, img_size ** 2, embed_dim, ff_dim, num_classes
    embed = 2 * N * P * D
    per_layer = (4 * 2 * N * D * D          # q, k, v, out projections
                 + 2 * 2 * batch * seq * seq * D   # q @ k.T and att @ v over all heads
                 + 2 * 2 * N * D * F)       # fc1 and fc2
    head = 2 * batch * D * C
    return {"embed": embed, "blocks": num_layers * per_layer, "head": head,
            "forward": embed + num_layers * per_layer + head}


def train_flops(batch, seq, **model):
    """Forward + backward: backward is two gemms per forward gemm (input and weight gradients),
    except the embedding's input gradient, which is not needed (the images need no gradient)."""
    f = matmul_flops(batch, seq, **model)
    return 3 * f["forward"] - f["embed"]


# ---- sgemm peak ----------------------------------------------------------------------------
def sgemm_peak(n, reps, torch_too):
    """Best GFLOP/s of an n x n x n float32 gemm: numpy (gt's engine) and, if present, torch."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    out = np.empty((n, n), np.float32)
    flop = 2.0 * n ** 3
    res = {}
    np.matmul(a, b, out=out)
    best = min(timed(lambda: np.matmul(a, b, out=out)) for _ in range(reps))
    res["numpy"] = flop / best / 1e9
    if torch_too:
        import torch

        ta, tb, tout = torch.from_numpy(a), torch.from_numpy(b), torch.empty(n, n)
        torch.matmul(ta, tb, out=tout)
        best = min(timed(lambda: torch.matmul(ta, tb, out=tout)) for _ in range(reps))
        res["torch"] = flop / best / 1e9
    res["peak"] = max(res.values())
    res["size"] = n
    return res


# ---- the two models ------------------------------------------------------------------------
def build_gt(seed=0, in_backward=False):
    import gt
    from lpm.model import PixelTransformer

    gt.manual_seed(seed)
    model = PixelTransformer(**MODEL)
    opt = gt.optim.SGD(model.parameters(), lr=LR, in_backward=in_backward)
    return model, opt


def build_torch(gt_model=None):
    import torch
    from torch_reference import TorchPixelTransformer

    torch.manual_seed(0)
    model = TorchPixelTransformer(**MODEL)
    if gt_model is not None:
        model.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in gt_model.state_dict().items()},
                              strict=True)
    opt = torch.optim.SGD(model.parameters(), lr=LR)
    return model, opt


def make_batches(batch, seq, count=2, seed=0):
    rng = np.random.default_rng(seed)
    s = MODEL["img_size"]
    return [(rng.random((batch, seq, s, s), dtype=np.float32),
             rng.integers(0, MODEL["num_classes"], size=batch).astype(np.int64)) for _ in range(count)]


def gt_forward_fn(model):
    import gt

    def fwd(x):
        with gt.no_grad():
            return model(gt.from_numpy(x))

    return fwd


def torch_forward_fn(model):
    import torch

    def fwd(x):
        with torch.no_grad():
            return model(torch.from_numpy(x))

    return with_torch_threads(fwd)


# ---- memory (a fresh process per framework) -------------------------------------------------
def _proc_status(field):
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024.0  # kB -> MiB
    except OSError:
        return None
    return None


def memory_child(framework, batch, seq, steps):
    """Runs in a subprocess: train a few steps, print the peak resident memory as JSON."""
    import resource

    batches = make_batches(batch, seq, count=1)
    if framework == "gt":
        import gt

        gt.zeros(1)    # gt loads its engine (numpy, or torch with GT_BACKEND=torch) at the first tensor:
        # the baseline then holds the array library, as the other side's holds torch
    else:
        import torch  # noqa: F401
    method = "VmHWM - VmRSS"
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # reset the high-water mark to the current resident size
    except OSError:
        method = "ru_maxrss - VmRSS"
    base = _proc_status("VmRSS")
    if framework == "gt":
        model, opt = build_gt()
        step = gt_train_step(model, opt)
    else:
        model, opt = build_torch()
        step = torch_train_step(model, opt)
    for _ in range(steps):
        step(*batches[0])
    peak = _proc_status("VmHWM") if method.startswith("VmHWM") else None
    if peak is None or base is None:
        method = "ru_maxrss"
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
        base = base or 0.0
    print(json.dumps({"framework": framework, "baseline_mib": base, "peak_mib": peak,
                      "train_mib": peak - base, "method": method}))


def measure_memory(frameworks, batch, seq, steps):
    """{framework: figures}, each from its own fresh process (run side by side: resident memory
    is per process, so they do not disturb each other's figures)."""
    procs = {}
    for fw in frameworks:
        cmd = [sys.executable, os.path.abspath(__file__), "--memory-child", fw,
               "--mem-batch", str(batch), "--mem-seq", str(seq), "--mem-steps", str(steps)]
        if gt_memory.retained_limit() is not None:
            cmd.append("--retain-freed-memory")
        if MODEL == TINY:
            cmd.append("--tiny")
        procs[fw] = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    out = {}
    for fw, proc in procs.items():
        stdout, stderr = proc.communicate()
        if proc.returncode != 0:
            raise RuntimeError(f"memory measurement of {fw} failed:\n{stderr}")
        out[fw] = json.loads(stdout.strip().splitlines()[-1])
    return out


# ---- the run -------------------------------------------------------------------------------
def run(quick=False, steps=None, warmup=None, memory=True, log=print):
    torch_ok = have_torch()
    if not torch_ok:
        log(TORCH_HINT)
    steps = steps or (1 if quick else 20)
    warmup = warmup if warmup is not None else (1 if quick else 3)
    import gt

    threads = {"cpu_count": os.cpu_count()}
    if torch_ok:
        import torch

        threads["torch"] = torch_threads()   # read before gt runs anything: PyTorch's own count
    result = {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.system()} {platform.release()}",
        "python": platform.python_version(), "numpy": np.__version__,
        "torch": (torch.__version__ if torch_ok else None),
        "command": " ".join([os.path.relpath(sys.argv[0], ROOT)] + sys.argv[1:]),
        "quick": quick, "model": MODEL, "lr": LR, "threads": threads,
        "gt_devices": gt.sharding.get_mesh().size, "gt_engine": gt.get_backend(),
        "cpu": cpu_name(), "blas": {"numpy": numpy_blas(), "torch": torch_parallel() if torch_ok else None,
                                      "gt_products": gt_products()},
        "allocator": ("glibc's defaults" if gt_memory.retained_limit() is None else
                      f"freed memory retained up to {gt_memory.retained_limit() >> 20} MiB "
                      "(gt.retain_freed_memory(), as lpm's commands run; both frameworks)"),
    }
    load_before = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    log("sgemm peak ...")
    peak = sgemm_peak(512 if quick else 2048, 2 if quick else 7, torch_ok)
    result["sgemm_gflops"] = peak

    model, opt = build_gt()
    fns = {"gt": gt_train_step(model, opt)}
    if torch_ok:
        tmodel, topt = build_torch(model)
        fns["torch"] = torch_train_step(tmodel, topt)
    # the same user code with SGD(..., in_backward=True): what train.py runs
    ib_model, ib_opt = build_gt(in_backward=True)
    fns[IN_BACKWARD] = gt_train_step(ib_model, ib_opt)

    result["configs"] = {}
    for name, (batch, seq) in CONFIGS.items():
        log(f"{name} (batch {batch}, seq {seq}) ...")
        batches = make_batches(batch, seq)
        flop = train_flops(batch, seq, **MODEL)
        entry = {"batch": batch, "seq": seq, "train_gflop": flop / 1e9}
        for mode, block in (("blocks", BLOCK), ("alternate", 1)):
            times, losses, faults = take_turns(fns, batches, warmup, steps, block,
                                               keep=lambda loss: float(loss.item()))
            res = {}
            for k, ts in times.items():
                res[k] = summary(ts)
                res[k]["page_faults"] = int(statistics.median(faults[k]))
                res[k]["gflops"] = flop / (res[k]["median_ms"] / 1e3) / 1e9
                res[k]["peak_share"] = res[k]["gflops"] / peak["peak"]
            if torch_ok:
                res["ratio"] = res["gt"]["median_ms"] / res["torch"]["median_ms"]
                res["ratio_min"] = res["gt"]["min_ms"] / res["torch"]["min_ms"]
                res["ratio_in_backward"] = res[IN_BACKWARD]["median_ms"] / res["torch"]["median_ms"]
                res["in_backward_loss_rel_diff"] = max(abs(a - b) / abs(b)
                                                       for a, b in zip(losses[IN_BACKWARD], losses["torch"]))
                # step i of each side ran on the same batch from the same weights
                res["loss_rel_diff"] = max(abs(a - b) / abs(b) for a, b in zip(losses["gt"], losses["torch"]))
            entry[mode] = res
        entry.update(entry["blocks"])  # the headline figures
        result["configs"][name] = entry
    if torch_ok:  # both sides took the same SGD steps on the same batches: the weights must agree
        w, tw = model.embed.weight.numpy(), tmodel.embed.weight.detach().numpy()
        result["embed_weight_rel_diff"] = float(np.max(np.abs(w - tw)) / np.max(np.abs(tw)))

    batch, seq = FORWARD
    log(f"forward (batch {batch}, seq {seq}) ...")
    model.eval()
    ffns = {"gt": gt_forward_fn(model)}
    if torch_ok:
        import torch

        # the same weights again (training let them drift apart by float rounding), so the logits agree
        tmodel.load_state_dict({k: torch.from_numpy(v) for k, v in model.state_dict().items()})
        tmodel.eval()
        ffns["torch"] = torch_forward_fn(tmodel)
    batches = [(x,) for x, _ in make_batches(batch, seq)]
    fwd = {"batch": batch, "seq": seq, "images": batch * seq}
    for mode, block in (("blocks", BLOCK), ("alternate", 1)):
        times, outs, faults = take_turns(ffns, batches, warmup, steps, block, keep=lambda out: out.numpy())
        res = {}
        for k, ts in times.items():
            res[k] = summary(ts)
            res[k]["page_faults"] = int(statistics.median(faults[k]))
            res[k]["images_per_s"] = batch * seq / (res[k]["median_ms"] / 1e3)
        if torch_ok:
            res["ratio"] = res["gt"]["images_per_s"] / res["torch"]["images_per_s"]
            res["logits_rel_diff"] = max(float(np.max(np.abs(a - b)) / np.max(np.abs(b)))
                                         for a, b in zip(outs["gt"], outs["torch"]))
        fwd[mode] = res
    fwd.update(fwd["blocks"])
    result["forward"] = fwd
    model.train()
    if torch_ok:
        tmodel.train()

    dbatch = QUICK_DECODER_BATCH if quick else DECODER_BATCH
    log(f"small decoder (batch {dbatch}, seq {DECODER['seq']}, AdamW) ...")
    result["decoder"], dfns, dbatches = measure_decoder(warmup, steps, torch_ok, dbatch)

    # --quick: one step of each, the steps already warm (a proof that it runs, for CI)
    load_steps, load_warmup, load_block = (1, 0, 1) if quick else (min(steps, 10), warmup, BLOCK)
    log(f"under load (2 busy processes; seed step and small-decoder step, {load_steps} steps each) ...")
    del fns[IN_BACKWARD], ib_model, ib_opt
    quiet = {"seed": {k: result["configs"]["seed"][k]["median_ms"] for k in fns},
             "decoder": {k: result["decoder"][k]["median_ms"] for k in dfns}}
    result["under_load"] = slowdowns({"seed": (fns, make_batches(*CONFIGS["seed"])), "decoder": (dfns, dbatches)},
                                     quiet, load_warmup, load_steps, block=load_block)
    del model, opt, fns, ffns, dfns
    if torch_ok:
        del tmodel, topt

    if memory:
        batch, seq = CONFIGS["seed" if quick else "large"]
        mem_steps = 1 if quick else 5
        log(f"memory (fresh process per framework, batch {batch}, seq {seq}, {mem_steps} steps) ...")
        mem = {"batch": batch, "seq": seq, "steps": mem_steps}
        mem.update(measure_memory(["gt", "torch"] if torch_ok else ["gt"], batch, seq, mem_steps))
        if torch_ok:
            mem["ratio"] = mem["gt"]["train_mib"] / mem["torch"]["train_mib"]
        mem["method"] = mem["gt"]["method"]
        result["memory"] = mem

    result["loadavg"] = [load_before, os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")]
    # Other work already running: the "quiet" figures were not quiet, and the slowdowns under
    # load compare a busy machine with a busier one.
    result["busy_before"] = bool(load_before > BUSY_LOAD * (os.cpu_count() or 1))
    values = {}
    if torch_ok:
        values["seed_ratio"] = result["configs"]["seed"]["ratio"]
        values["large_ratio"] = result["configs"]["large"]["ratio"]
        values["seed_ratio_in_backward"] = result["configs"]["seed"]["ratio_in_backward"]
        values["large_ratio_in_backward"] = result["configs"]["large"]["ratio_in_backward"]
        values["forward_ratio"] = result["forward"]["ratio"]
        if memory:
            values["memory_ratio"] = result["memory"]["ratio"]
    values["large_peak_share"] = result["configs"]["large"]["gt"]["peak_share"]
    load = result["under_load"]
    for figure in ("seed", "decoder"):
        values[f"load_{figure}_slowdown"] = load[figure]["gt"]["slowdown"]
        if torch_ok:
            values[f"load_{figure}_vs_torch"] = load[figure]["gt_vs_torch"]
    if torch_ok:
        values["decoder_ratio"] = result["decoder"]["ratio"]
    alternate = {}  # the same figures from the step-by-step alternation, for comparison
    if torch_ok:
        alternate["seed_ratio"] = result["configs"]["seed"]["alternate"]["ratio"]
        alternate["large_ratio"] = result["configs"]["large"]["alternate"]["ratio"]
        alternate["seed_ratio_in_backward"] = result["configs"]["seed"]["alternate"]["ratio_in_backward"]
        alternate["large_ratio_in_backward"] = result["configs"]["large"]["alternate"]["ratio_in_backward"]
        alternate["forward_ratio"] = result["forward"]["alternate"]["ratio"]
    alternate["large_peak_share"] = result["configs"]["large"]["alternate"]["gt"]["peak_share"]

    def met(value, cmp, target):
        if value is None or target is None:
            return None
        return value <= target if cmp == "<=" else value >= target

    result["targets"] = [
        {"key": key, "figure": text, "value": values.get(key), "target": None if target is None else f"{cmp} {target}",
         "met": met(values.get(key), cmp, target),
         "value_alternate": alternate.get(key), "met_alternate": met(alternate.get(key), cmp, target)}
        for key, text, cmp, target in TARGETS]
    return result


def render(r):
    torch_ok = r["torch"] is not None
    lines = [f"{r['date']}  {r['machine']}  python {r['python']}, numpy {r['numpy']}, torch {r['torch']}",
             f"command: {r['command']}   load average before/after: {r['loadavg'][0]:.2f} / {r['loadavg'][1]:.2f}",
             f"cpu: {r['cpu']}; gt engine: {r['gt_engine']}; allocator: {r['allocator']}",
             *(["WARNING: the machine was busy before the run (load average "
                f"{r['loadavg'][0]:.2f} on {r['threads']['cpu_count']} cores): the quiet figures are not quiet, "
                "the ratios and slowdowns are unreliable"] if r["busy_before"] else []),
             f"blas: {r['blas']['numpy']}",
             *([f"      gt numpy engine's products: {r['blas']['gt_products']}"] if r["blas"].get("gt_products") else []),
             f"      {r['blas']['torch'] or 'torch not installed'}",
             "sgemm peak ({0}^3 float32): ".format(r["sgemm_gflops"]["size"])
             + ", ".join(f"{k} {v:.1f} GFLOP/s" for k, v in r["sgemm_gflops"].items() if k != "size"),
             "", "Taking turns in blocks of 5 steps (the headline figures):", ""]
    lines += ["| config | framework | min ms | median ms | gt/torch | GFLOP/s | share of peak | page faults |",
              "|---|---|---:|---:|---:|---:|---:|---:|"]
    for name, c in r["configs"].items():
        label = f"{name} ({c['batch']}x{c['seq']}, {c['train_gflop']:.2f} GFLOP)"
        for k in ("gt", IN_BACKWARD, "torch"):
            if k in c:
                s = c[k]
                ratio = (f"{c['ratio']:.2f}" if k == "gt" else f"{c['ratio_in_backward']:.2f}") \
                    if torch_ok and k != "torch" else ""
                lines.append(f"| {label} | {k} | {s['min_ms']:.1f} | {s['median_ms']:.1f} | {ratio} | "
                             f"{s['gflops']:.1f} | {100 * s['peak_share']:.0f}% | {s['page_faults']} |")
    f = r["forward"]
    for k in ("gt", "torch"):
        if k in f:
            ratio = f"{f['ratio']:.2f}" if torch_ok and k == "gt" else ""
            lines.append(f"| forward ({f['batch']}x{f['seq']}, no_grad) | {k} | {f[k]['min_ms']:.1f} | "
                         f"{f[k]['median_ms']:.1f} | {ratio} (images/s) | {f[k]['images_per_s']:.0f} images/s | | "
                         f"{f[k]['page_faults']} |")
    lines += render_decoder(r)
    if torch_ok:
        lines += ["", "Alternating every step (each step starts while the other runtime's threads still spin):", "",
                  "| config | gt median ms | torch median ms | gt/torch |", "|---|---:|---:|---:|"]
        for name, c in list(r["configs"].items()) + [("forward", r["forward"])]:
            a = c["alternate"]
            lines.append(f"| {name} | {a['gt']['median_ms']:.1f} | {a['torch']['median_ms']:.1f} | {a['ratio']:.2f} |")
            if IN_BACKWARD in a:
                lines.append(f"| {name}, gt in_backward | {a[IN_BACKWARD]['median_ms']:.1f} | "
                             f"{a['torch']['median_ms']:.1f} | {a['ratio_in_backward']:.2f} |")
        lines.append("")
        lines.append("agreement, gt vs torch (largest relative difference): losses of every timed step "
                     + ", ".join(f"{n} {max(c['blocks']['loss_rel_diff'], c['alternate']['loss_rel_diff']):.1e}"
                                 for n, c in r["configs"].items())
                     + "; the same with gt in_backward "
                     + ", ".join(f"{n} {c['blocks']['in_backward_loss_rel_diff']:.1e}" for n, c in r["configs"].items())
                     + f"; forward logits {r['forward']['logits_rel_diff']:.1e}"
                     + f"; embed.weight after all steps {r['embed_weight_rel_diff']:.1e}"
                     + f"; small decoder losses {r['decoder']['loss_rel_diff']:.1e}")
    if "memory" in r:
        m = r["memory"]
        lines.append("")
        lines.append(f"peak memory of a training run ({m['batch']}x{m['seq']}, {m['steps']} steps, fresh process, "
                     f"{m['method']}):")
        for k in ("gt", "torch"):
            if k in m:
                lines.append(f"  {k:5s} {m[k]['train_mib']:7.1f} MiB  (process peak {m[k]['peak_mib']:.1f} MiB, "
                             f"{m[k]['baseline_mib']:.1f} MiB after imports and data)")
        if "ratio" in m:
            lines.append(f"  gt/torch {m['ratio']:.2f}")
    lines += ["", "| target | value (blocks) | goal | met | value if alternating every step |",
              "|---|---:|---|---|---:|"]
    for t in r["targets"]:
        v = "n/a" if t["value"] is None else f"{t['value']:.2f}"
        met = "n/a" if t["met"] is None else ("yes" if t["met"] else "NO")
        if t["target"] is None:
            t, met = dict(t, target="(information)"), ""
        alt = "" if t["value_alternate"] is None else f"{t['value_alternate']:.2f}"
        lines.append(f"| {t['figure']} | {v} | {t['target']} | {met} | {alt} |")
    return "\n".join(lines)


def render_decoder(r):
    """The small-decoder step and the steps under load, as table rows."""
    d, load = r["decoder"], r["under_load"]
    lines = ["", f"Small decoder ({d['parameters'] / 1e6:.2f}M parameters: D{d['dim']}, {d['layers']} layers, "
                 f"{d['heads']} heads, ff {d['ff_dim']}, {d['vocab']} codes; batch {d['batch']} x {d['seq']}, "
                 f"{d['optimizer']}(lr={d['lr']:g})), blocks of 5 steps:", "",
             "| framework | min ms | median ms | gt/torch |", "|---|---:|---:|---:|"]
    for k in ("gt", "torch"):
        if k in d:
            ratio = f"{d['ratio']:.2f}" if "ratio" in d and k == "gt" else ""
            lines.append(f"| {k} | {d[k]['min_ms']:.1f} | {d[k]['median_ms']:.1f} | {ratio} |")
    how = "one step each (--quick)" if r["quick"] else "blocks of 5 steps"
    lines += ["", f"Under load ({load['busy_processes']} busy processes beside the benchmark), {how}:", "",
              "| step | framework | quiet median ms | loaded median ms | slowdown | gt slowdown / torch's |",
              "|---|---|---:|---:|---:|---:|"]
    for figure, label in (("seed", "seed (2x4)"), ("decoder", "small decoder")):
        f = load[figure]
        for k in ("gt", "torch"):
            if k in f:
                vs = f"{f['gt_vs_torch']:.2f}" if "gt_vs_torch" in f and k == "gt" else ""
                lines.append(f"| {label} | {k} | {f[k]['quiet_ms']:.1f} | {f[k]['loaded_ms']:.1f} | "
                             f"{f[k]['slowdown']:.2f}x | {vs} |")
    return lines


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    p.add_argument("--quick", action="store_true", help="a few steps only: proves the benchmark runs (CI)")
    p.add_argument("--steps", type=int, default=None, help="timed steps per config (default 20; quick 1); under load at most 10")
    p.add_argument("--warmup", type=int, default=None, help="warm-up steps per config (default 3; quick 1)")
    p.add_argument("--no-memory", action="store_true", help="skip the peak-memory subprocesses")
    p.add_argument("--tiny", action="store_true",
                   help=f"a tiny model {TINY} instead of the default: the code paths, not the figures")
    p.add_argument("--retain-freed-memory", action="store_true",
                   help="call gt.retain_freed_memory() first, as lpm's commands do (process-wide: both "
                        "frameworks then keep their freed memory; default: glibc's defaults)")
    p.add_argument("--memory-child", choices=("gt", "torch"), help=argparse.SUPPRESS)
    p.add_argument("--mem-batch", type=int, default=16, help=argparse.SUPPRESS)
    p.add_argument("--mem-seq", type=int, default=8, help=argparse.SUPPRESS)
    p.add_argument("--mem-steps", type=int, default=5, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.tiny:
        MODEL.update(TINY)    # in place: every function reads MODEL when it runs
    if args.retain_freed_memory:
        import gt

        gt.retain_freed_memory()
    if args.memory_child:
        memory_child(args.memory_child, args.mem_batch, args.mem_seq, args.mem_steps)
        return 0
    log = (lambda line: print(line, file=sys.stderr)) if args.json else print
    result = run(quick=args.quick, steps=args.steps, warmup=args.warmup, memory=not args.no_memory, log=log)
    print(json.dumps(result, indent=2) if args.json else "\n" + render(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
