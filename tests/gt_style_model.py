"""A small Pixel Transformer written the way code for the public gt is written, and the same
model written for PyTorch, for tests/test_gt_compat.py.

The gt-style model uses the public gt's idioms on purpose: ``from gt.client import nn`` and
``from gt.client.tensor import ...``, weights registered with ``self._parameters.extend``,
attention scores as ``q @ k.T`` on 4-d tensors (gt's ``.T`` swaps the last two axes), a
hand-written softmax, ``nn.relu``, ``nn.binary_cross_entropy_with_logits``, sharding hints
through ``gt.signal``, and the update ``p -= lr * p.grad`` under ``gt.no_grad()``.

Run as a script (``python tests/gt_style_model.py OUT.npz``) it trains for a few steps in a
fresh process, under whatever GT_* environment it is given, and saves the initial weights, the
losses and the gradients of every step, so a test can replay the run in PyTorch.
"""

import sys

import numpy as np

import gt
from gt.client import nn
from gt.client.tensor import from_numpy, randn, zeros

IMG, SEQ, DIM, HEADS, FF, CLASSES = 6, 4, 16, 4, 32, 3
BATCH, STEPS, LR = 8, 3, 0.5


def softmax(x):
    """Softmax over the last axis, stable: exp(x - max) / sum."""
    e = (x - x.max(axis=-1, keepdims=True)).exp()
    return e / e.sum(axis=-1, keepdims=True)


class GtLayerNorm(nn.Module):
    def __init__(self, dim, eps=1e-5):
        super().__init__()
        self.eps = eps
        self.gamma = gt.ones(dim, requires_grad=True)
        self.beta = zeros(dim, requires_grad=True)
        self._parameters.extend([self.gamma, self.beta])

    def forward(self, x):
        mean = x.mean(axis=-1, keepdims=True)
        var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
        eps = from_numpy(np.array(self.eps, dtype="float32"))
        return (x - mean) / (var + eps).sqrt() * self.gamma + self.beta


class GtAttention(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.heads, self.head_dim = heads, dim // heads
        self.q, self.k, self.v, self.out = (nn.Linear(dim, dim) for _ in range(4))
        self.scale = from_numpy(np.array(self.head_dim ** -0.5, dtype="float32"))

    def forward(self, x):
        b, t, d = x.shape

        def split(z):   # (b, t, d) -> (b, heads, t, head_dim)
            return z.reshape(b, t, self.heads, self.head_dim).permute(0, 2, 1, 3)

        q, k, v = split(self.q(x)), split(self.k(x)), split(self.v(x))
        weights = softmax((q @ k.T) * self.scale)          # k.T: (b, heads, head_dim, t)
        mixed = (weights @ v).permute(0, 2, 1, 3).reshape(b, t, d)
        return self.out(mixed)


class GtPixelTransformer(nn.Module):
    """(batch, seq, IMG, IMG) images -> (batch, CLASSES) logits: one pre-norm block, mean pool."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Linear(IMG * IMG, DIM)
        self.pos = randn(SEQ, DIM, requires_grad=True)
        self._parameters.append(self.pos)
        self.norm1, self.attn = GtLayerNorm(DIM), GtAttention(DIM, HEADS)
        self.norm2, self.fc1, self.fc2 = GtLayerNorm(DIM), nn.Linear(DIM, FF), nn.Linear(FF, DIM)
        self.head = nn.Linear(DIM, CLASSES)

    def forward(self, images):
        b, t = images.shape[0], images.shape[1]
        x = self.embed(images.reshape(b, t, IMG * IMG)) + self.pos
        x = x + self.attn(self.norm1(x))
        x = x + self.fc2(nn.relu(self.fc1(self.norm2(x))))
        return self.head(x.mean(axis=1))


def batches(seed=0):
    """The same STEPS batches of images and one-hot (multi-label style) targets, every time."""
    rng = np.random.default_rng(seed)
    for _ in range(STEPS):
        x = rng.standard_normal((BATCH, SEQ, IMG, IMG)).astype(np.float32)
        labels = rng.integers(0, CLASSES, BATCH)
        yield x, np.eye(CLASSES, dtype=np.float32)[labels]


def train_gt_style(model):
    """The public gt's training loop. Returns (losses, gradients of every step in parameter order)."""
    losses, grads = [], []
    for x_np, y_np in batches():
        with gt.signal.context("batch"):        # the hint shards data along the batch axis
            x, y = from_numpy(x_np), from_numpy(y_np)
        loss = nn.binary_cross_entropy_with_logits(model(x), y)
        loss.backward()
        grads.append([p._grad.data.numpy().copy() for p in model.parameters()])
        with gt.no_grad():
            for p in model.parameters():
                if p.grad is not None:
                    p -= LR * p.grad
                    p.grad.zero_()
        losses.append(float(np.mean(loss.data)))
    return losses, grads


def torch_reference(initial):
    """The same model written for PyTorch, with the weights ``initial`` (parameter order of the
    gt-style model); returns its losses and gradients over the same batches."""
    import torch
    import torch.nn.functional as F

    params = [torch.tensor(w, requires_grad=True) for w in initial]
    # a module's own parameters come before its children's: pos first, then embed, norm1, ...
    (pos, ew, eb, g1, b1, qw, qb, kw, kb, vw, vb, ow, ob, g2, b2, f1w, f1b, f2w, f2b, hw, hb) = params
    hd = DIM // HEADS

    def forward(images):
        b, t = images.shape[:2]
        x = F.linear(images.reshape(b, t, -1), ew, eb) + pos
        h = F.layer_norm(x, (DIM,), g1, b1, eps=1e-5)
        q, k, v = (F.linear(h, w_, b_).reshape(b, t, HEADS, hd).transpose(1, 2)
                   for w_, b_ in ((qw, qb), (kw, kb), (vw, vb)))
        att = torch.softmax(q @ k.transpose(-2, -1) / hd ** 0.5, dim=-1)
        x = x + F.linear((att @ v).transpose(1, 2).reshape(b, t, DIM), ow, ob)
        x = x + F.linear(F.relu(F.linear(F.layer_norm(x, (DIM,), g2, b2, eps=1e-5), f1w, f1b)), f2w, f2b)
        return F.linear(x.mean(dim=1), hw, hb)

    losses, grads = [], []
    for x_np, y_np in batches():
        loss = F.binary_cross_entropy_with_logits(forward(torch.tensor(x_np)), torch.tensor(y_np))
        loss.backward()
        grads.append([p.grad.numpy().copy() for p in params])
        with torch.no_grad():
            for p in params:
                p -= LR * p.grad
                p.grad = None
        losses.append(loss.item())
    return losses, grads


def main(out):
    gt.manual_seed(0)
    model = GtPixelTransformer()
    initial = [p.data.numpy().copy() for p in model.parameters()]
    losses, grads = train_gt_style(model)
    arrays = {f"initial_{i}": w for i, w in enumerate(initial)}
    arrays.update({f"grad_{s}_{i}": g for s, step in enumerate(grads) for i, g in enumerate(step)})
    stats = gt.debug.get_worker_stats()
    np.savez(out, losses=np.array(losses), n_params=len(model.parameters()), engine=gt.get_backend(),
             devices=gt.get_mesh().size, busy=[stats[f"device {d}"]["operations"]["total"]
                                               for d in range(gt.get_mesh().size)], **arrays)


if __name__ == "__main__":
    main(sys.argv[1])
