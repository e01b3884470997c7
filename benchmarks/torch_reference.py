"""The benchmarks' models written the way a PyTorch user writes them: the Pixel Transformer
and (``TorchDecoder``) the small decoder of small_decoder.py.

Same architecture and state-dict keys as ``lpm.model.PixelTransformer`` (pre-norm blocks with
separate q/k/v/out projections, ReLU feed-forward, LayerNorm eps 1e-5, the original
Transformer's sinusoid as a non-persistent buffer), built from ``torch.nn`` modules, so
``load_state_dict`` of a gt model's ``state_dict()`` gives the same function; likewise
``TorchDecoder`` for small_decoder.py's ``GtDecoder``.
Importing this module imports torch; callers check that torch is installed first.
"""

import math

import torch
from torch import nn


class Attention(nn.Module):
    def __init__(self, D, H):
        super().__init__()
        self.H = H
        self.q_proj, self.k_proj = nn.Linear(D, D), nn.Linear(D, D)
        self.v_proj, self.out_proj = nn.Linear(D, D), nn.Linear(D, D)

    def forward(self, x):
        B, T, D = x.shape
        hd = D // self.H
        q = self.q_proj(x).view(B, T, self.H, hd).transpose(1, 2)     # (B, H, T, hd)
        k = self.k_proj(x).view(B, T, self.H, hd).transpose(1, 2)
        v = self.v_proj(x).view(B, T, self.H, hd).transpose(1, 2)
        att = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(hd), dim=-1)   # (B, H, T, T)
        return self.out_proj((att @ v).transpose(1, 2).reshape(B, T, D))


class FeedForward(nn.Module):
    def __init__(self, D, F):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(D, F), nn.Linear(F, D)

    def forward(self, x):
        return self.fc2(torch.relu(self.fc1(x)))


class Block(nn.Module):
    def __init__(self, D, H, F):
        super().__init__()
        self.ln1, self.attn = nn.LayerNorm(D, eps=1e-5), Attention(D, H)
        self.ln2, self.ff = nn.LayerNorm(D, eps=1e-5), FeedForward(D, F)

    def forward(self, x):
        x = x + self.attn(self.ln1(x))
        return x + self.ff(self.ln2(x))


class TorchPixelTransformer(nn.Module):
    def __init__(self, img_size=200, embed_dim=256, num_heads=4, num_layers=4, ff_dim=1024,
                 num_classes=10, max_seq_len=32, pos_encoding="sinusoidal", pool="mean"):
        super().__init__()
        D = embed_dim
        self.pool = pool
        if pool == "cls":       # ViT's class token: position 0, the frames at 1..S
            self.cls_token = nn.Parameter(torch.zeros(1, 1, D))
            max_seq_len += 1
        self.embed = nn.Linear(img_size * img_size, D)
        if pos_encoding == "learned":
            self.pos_embedding = nn.Parameter(torch.zeros(max_seq_len, D))  # values come from load_state_dict
        else:
            pos = torch.arange(max_seq_len, dtype=torch.float64)[:, None]
            two_i = torch.arange(0, D, 2, dtype=torch.float64)[None, :]
            angle = pos / 10000 ** (two_i / D)
            pe = torch.zeros(max_seq_len, D, dtype=torch.float64)
            pe[:, 0::2] = torch.sin(angle)
            pe[:, 1::2] = torch.cos(angle)[:, :D // 2]
            self.register_buffer("pos_encoding", pe.float(), persistent=False)
        self.blocks = nn.ModuleList([Block(D, num_heads, ff_dim) for _ in range(num_layers)])
        self.norm = nn.LayerNorm(D, eps=1e-5)
        self.head = nn.Linear(D, num_classes)

    def forward(self, images):
        B, S = images.shape[:2]
        x = images.reshape(B, S, -1)                                      # (B, S, P)
        pos = self.pos_embedding if hasattr(self, "pos_embedding") else self.pos_encoding
        x = self.embed(x)                                                 # (B, S, D)
        if self.pool == "cls":
            x = torch.cat([self.cls_token.expand(B, -1, -1), x], dim=1)   # (B, 1 + S, D)
        x = x + pos[:x.shape[1]]
        for block in self.blocks:
            x = block(x)
        x = self.norm(x)
        return self.head(x[:, 0] if self.pool == "cls" else x.mean(dim=1))  # (B, C)


class CausalBlock(nn.Module):
    """A pre-norm decoder block as PyTorch users write it today: q/k/v/out projections and
    ``F.scaled_dot_product_attention(is_causal=True)`` (the fused kernel), ReLU feed-forward."""

    def __init__(self, D, H, F):
        super().__init__()
        self.ln1, self.attn = nn.LayerNorm(D, eps=1e-5), Attention(D, H)
        self.ln2, self.ff = nn.LayerNorm(D, eps=1e-5), FeedForward(D, F)

    def forward(self, x):
        B, T, D = x.shape
        a, H = self.attn, self.attn.H
        h = self.ln1(x)
        q, k, v = (p(h).view(B, T, H, D // H).transpose(1, 2) for p in (a.q_proj, a.k_proj, a.v_proj))
        att = nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)     # (B, H, T, hd)
        x = x + a.out_proj(att.transpose(1, 2).reshape(B, T, D))
        return x + self.ff(self.ln2(x))


class TorchDecoder(nn.Module):
    """The small decoder of benchmarks/small_decoder.py (same state-dict keys as its gt model):
    token and learned position embeddings, causal blocks, final LayerNorm, head to the codes."""

    def __init__(self, vocab, dim, layers, heads, ff_dim, seq):
        super().__init__()
        self.tok, self.pos = nn.Embedding(vocab, dim), nn.Embedding(seq, dim)
        self.blocks = nn.ModuleList([CausalBlock(dim, heads, ff_dim) for _ in range(layers)])
        self.ln, self.head = nn.LayerNorm(dim, eps=1e-5), nn.Linear(dim, vocab)

    def forward(self, idx):
        x = self.tok(idx) + self.pos(torch.arange(idx.shape[1]))
        for block in self.blocks:
            x = block(x)
        return self.head(self.ln(x))
