"""The small decoder of the benchmarks: the size the generation and captioning models train at.

A causal transformer over codes: token embedding (256 codes) plus learned positions, 4 pre-norm
blocks (D 128, 4 heads, ff 512, ReLU), a final LayerNorm and a head back to the 256 codes;
about 0.87M parameters. A batch is 64 sequences of 50 codes; the model reads the first 49 and
is trained with cross-entropy on the next code at each of them, with ``AdamW(lr=1e-3)``.

Small models are bound by per-op overhead and thread hand-offs rather than by arithmetic, so
this step measures something the Pixel Transformer's steps do not. The gt model is built from
``gt.nn`` (``Embedding``, ``TransformerBlock(causal=True)``, ``LayerNorm``, ``Linear``); the
PyTorch one (``TorchDecoder`` in torch_reference.py) has the same state-dict keys, so gt's
weights load into it.
"""

import numpy as np

import gt
from gt import nn
from timing import BLOCK, gt_train_step, summary, take_turns, torch_train_step   # benchmarks/timing.py, beside this module

DECODER = dict(vocab=256, dim=128, layers=4, heads=4, ff_dim=512, seq=49)
DECODER_BATCH = 64
DECODER_LR = 1e-3


class GtDecoder(nn.Module):
    """codes (B, T) -> logits (B, T, vocab): embeddings, causal blocks, final norm, head."""

    def __init__(self, vocab, dim, layers, heads, ff_dim, seq):
        super().__init__()
        self.tok, self.pos = nn.Embedding(vocab, dim), nn.Embedding(seq, dim)
        self.blocks = nn.ModuleList([nn.TransformerBlock(dim, heads, ff_dim, causal=True) for _ in range(layers)])
        self.ln, self.head = nn.LayerNorm(dim), nn.Linear(dim, vocab)

    def forward(self, idx):
        x = self.tok(idx) + self.pos(gt.arange(idx.shape[1]))
        for block in self.blocks:
            x = block(x)
        return self.head(self.ln(x))


def decoder_batches(batch=DECODER_BATCH, count=2, seed=1):
    """``count`` batches of (inputs (B, T), next codes (B, T)), int64."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        codes = rng.integers(0, DECODER["vocab"], size=(batch, DECODER["seq"] + 1)).astype(np.int64)
        out.append((np.ascontiguousarray(codes[:, :-1]), np.ascontiguousarray(codes[:, 1:])))
    return out


def build_gt_decoder(seed=0):
    gt.manual_seed(seed)
    model = GtDecoder(**DECODER)
    return model, gt.optim.AdamW(model.parameters(), lr=DECODER_LR)


def build_torch_decoder(gt_model):
    """The PyTorch decoder with ``gt_model``'s weights, and its AdamW (same hyper-parameters)."""
    import torch
    from torch_reference import TorchDecoder

    model = TorchDecoder(**DECODER)
    model.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in gt_model.state_dict().items()}, strict=True)
    return model, torch.optim.AdamW(model.parameters(), lr=DECODER_LR)


def measure_decoder(warmup, steps, torch_ok, batch=DECODER_BATCH):
    """Time the step of both decoders in blocks on the same batches (``batch`` sequences each;
    the benchmark's quick mode uses fewer), from the same weights. Returns (figures, {framework: step function}, batches): the step functions and batches
    are reused by the measurement under load."""
    model, opt = build_gt_decoder()
    fns = {"gt": gt_train_step(model, opt, flat=True)}
    if torch_ok:
        fns["torch"] = torch_train_step(*build_torch_decoder(model), flat=True)
    batches = decoder_batches(batch)
    times, losses, _ = take_turns(fns, batches, warmup, steps, BLOCK, keep=lambda loss: float(loss.item()))
    entry = dict(DECODER, batch=batch, lr=DECODER_LR, optimizer="AdamW",
                 parameters=model.num_parameters())
    for k, ts in times.items():
        entry[k] = summary(ts)
    if torch_ok:
        entry["ratio"] = entry["gt"]["median_ms"] / entry["torch"]["median_ms"]
        # step i of each side ran on the same batch from the same weights and optimizer state
        entry["loss_rel_diff"] = max(abs(a - b) / abs(b) for a, b in zip(losses["gt"], losses["torch"]))
    return entry, fns, batches
