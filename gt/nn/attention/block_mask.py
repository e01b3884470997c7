"""torch's ``BlockMask`` and mask builders for ``flex_attention`` (gt/nn/attention/flex_attention.py):
``create_mask``, ``create_block_mask``, ``and_masks``, ``or_masks``, ``noop_mask``.

A mask function ``mask_mod(b, h, q_idx, kv_idx) -> bool`` is called once, vectorised: its four
arguments are int64 index tensors of shapes (B, 1, 1, 1), (1, H, 1, 1), (1, 1, L, 1) and
(1, 1, 1, S), so comparisons, arithmetic, ``gt.where`` and indexing a tensor by them (``doc[b, q_idx]``)
broadcast to the (B, H, L, S) answer that torch's ``vmap`` gives element by element.

A mask made with B or H of None (1) used for a query with more batches or heads follows torch's
kernel: the block tables of b' = 0 (h' = 0) pick the blocks, full ones are attended whole, and
``mask_mod`` is evaluated again, at each call, on the query's actual b and h inside partial blocks
(``BlockMask.mask_for``). torch 2.13's eager path (no ``torch.compile``) ignores the tables and
evaluates ``mask_mod`` everywhere; the two agree wherever the tables of b' = h' = 0 fit every b and h.
"""

import inspect
import itertools
import warnings

from gt import dtypes
from gt.tensor import Tensor, arange, ones, tensor, zeros

_DEFAULT_BLOCK_SIZE = 128


def index_grids(B, H, L, S, device=None):
    """The four broadcastable int64 index tensors (b, h, q_idx, kv_idx) of a (B, H, L, S) grid."""
    grids = []
    for axis, n in enumerate((B, H, L, S)):
        shape = [1, 1, 1, 1]
        shape[axis] = n
        idx = arange(n).reshape(*shape)
        grids.append(idx if device is None or idx.device == device else idx.to(device))
    return tuple(grids)


def mod_arity(fn):
    """4 (a mask_mod) or 5 (a score_mod): the positional arguments without defaults, as torch counts."""
    code = getattr(fn, "__code__", None)
    if code is not None:
        n = code.co_argcount - len(getattr(fn, "__defaults__", None) or ())
    else:
        n = sum(1 for p in inspect.signature(fn).parameters.values() if p.default is inspect.Parameter.empty)
    if n not in (4, 5):
        raise AssertionError(f"Expected 4 or 5 positional args, got {n}")
    return n


def noop_mask(batch, head, token_q, token_kv):
    """A mask_mod that masks nothing (torch's): every query may attend every key."""
    return ones((), dtype=dtypes.bool_).to(batch.device)


def or_masks(*mask_mods):
    """A mask_mod that is the union of ``mask_mods`` (a position is kept if any keeps it)."""
    if not all(callable(arg) for arg in mask_mods):
        raise RuntimeError(f"All inputs should be callable mask_mods: {mask_mods}")

    def or_mask(b, h, q_idx, kv_idx):
        result = zeros((), dtype=dtypes.bool_).to(b.device)
        for mask in mask_mods:
            result = result | mask(b, h, q_idx, kv_idx)
        return result

    return or_mask


def and_masks(*mask_mods):
    """A mask_mod that is the intersection of ``mask_mods`` (a position is kept if all keep it)."""
    if not all(callable(arg) for arg in mask_mods):
        raise RuntimeError(f"All inputs should be callable mask_mods: {mask_mods}")

    def and_mask(b, h, q_idx, kv_idx):
        result = ones((), dtype=dtypes.bool_).to(b.device)
        for mask in mask_mods:
            result = result & mask(b, h, q_idx, kv_idx)
        return result

    return and_mask


def _sizes(fn, B, H, Q_LEN, KV_LEN):
    sizes = (1 if B is None else B, 1 if H is None else H, Q_LEN, KV_LEN)
    for name, n in zip(("B", "H", "Q_LEN", "KV_LEN"), sizes):
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise ValueError(f"{fn}: {name} must be a non-negative int, got {n!r}")
    return sizes


def full_grid(x, shape, device):
    """A mod's answer (a tensor of any broadcastable shape, or a Python scalar) as a (B, H, L, S) tensor."""
    if not isinstance(x, Tensor):
        x = tensor(x).to(device)
    return x if tuple(x.shape) == tuple(shape) else x.expand(*shape)


def create_mask(mod_fn, B, H, Q_LEN, KV_LEN, device=None):
    """The dense bool mask (B, H, Q_LEN, KV_LEN) of ``mod_fn``, True where a query may attend a key.

    ``mod_fn`` is a mask_mod ``(b, h, q_idx, kv_idx) -> bool``, or a score_mod
    ``(score, b, h, q_idx, kv_idx)``, read on zero scores: True where it gives no -inf (torch's rule).
    ``B``/``H`` of None mean 1 (the mask broadcasts over the batch or heads)."""
    sizes = _sizes("create_mask", B, H, Q_LEN, KV_LEN)
    b, h, m, n = index_grids(*sizes, device=device)
    if mod_arity(mod_fn) == 5:
        out = full_grid(mod_fn(zeros(sizes).to(b.device), b, h, m, n), sizes, b.device)
        return ~out.isneginf()
    out = full_grid(mod_fn(b, h, m, n), sizes, b.device)
    if out.dtype != dtypes.bool_:
        out = out.to(dtypes.bool_)
    return out


def create_block_mask(mask_mod, B, H, Q_LEN, KV_LEN, device=None, BLOCK_SIZE=_DEFAULT_BLOCK_SIZE, _compile=False,
                      separate_full_blocks=True, compute_dq_write_order=False, dq_kv_order=True):
    """A ``BlockMask`` from ``mask_mod(b, h, q_idx, kv_idx) -> bool`` (True: may attend), for
    ``flex_attention(..., block_mask=)``. ``B``/``H`` of None broadcast over the batch/heads.

    gt keeps the dense (B, H, Q_LEN, KV_LEN) bool mask and applies it element by element; the
    block tables (``BLOCK_SIZE``, ``to_dense()``, ``sparsity()``) are torch's and decide, as in
    torch's kernel, which blocks a query with more batches/heads than B/H attends (``mask_mod``
    reading b or h is then evaluated on the query's b and h, in partial blocks); gt skips no work. ``_compile`` is accepted with torch's DeprecationWarning and changes nothing;
    the dQ write-order arguments of torch's GPU kernel are accepted and ignored."""
    if mod_arity(mask_mod) != 4:
        raise AssertionError(f"create-block_mask requires a mask_mod function! Got {mask_mod}")
    sizes = _sizes("create_block_mask", B, H, Q_LEN, KV_LEN)
    bq, bkv = (BLOCK_SIZE, BLOCK_SIZE) if isinstance(BLOCK_SIZE, int) else tuple(BLOCK_SIZE)
    for n in (bq, bkv):
        if isinstance(n, bool) or not isinstance(n, int) or n <= 0:
            raise ValueError(f"create_block_mask: BLOCK_SIZE must be a positive int or a pair of them, "
                             f"got {BLOCK_SIZE!r}")
    if _compile:
        warnings.warn("_compile flag on create_block_mask was originally added to work around a torch.compile "
                      "limitation. That limitation has since been addressed. So, to compile create_block_mask, "
                      "we suggest doing torch.compile(create_block_mask). This still works for now, but will be "
                      "removed in the future.", DeprecationWarning, stacklevel=2)
    if not isinstance(dq_kv_order, bool):
        raise ValueError("dq_kv_order must be a bool when using create_block_mask")
    mask = create_mask(mask_mod, *sizes, device=device)
    return BlockMask(mask, (bq, bkv), mask_mod, separate_full_blocks)


def _block_counts(mask, bq, bkv):
    """(B, H, ceil(L/bq), ceil(S/bkv)) int32: how many positions of each block are True."""
    Bm, Hm, L, S = mask.shape
    nq, nkv = -(-L // bq), -(-S // bkv)
    padded = zeros((Bm, Hm, nq * bq, nkv * bkv), dtype=dtypes.int32).to(mask.device)
    padded[:, :, :L, :S] = mask.to(dtypes.int32)
    return padded.reshape(Bm, Hm, nq, bq, nkv, bkv).sum((3, 5)).to(dtypes.int32)


def _ordered(blocks):
    """torch's (num_blocks_in_row, col_indices) of a (..., rows, cols) 0/1 block table."""
    return blocks.sum(-1).to(dtypes.int32), blocks.argsort(dim=-1, descending=True, stable=True).to(dtypes.int32)


class BlockMask:
    """torch's ``BlockMask``: which (query, key) positions ``flex_attention`` may attend, for a
    (B, H, Q_LEN, KV_LEN) grid (B or H of 1 broadcast). Made by ``create_block_mask``.

    gt keeps the dense bool mask (``mask``), ``mask_mod`` evaluated at creation over the B and H
    given there (None: index 0), and applies it element by element: no block is skipped, so it
    saves no work (see ``flex_attention``). For a query with more batches or heads than a B or H
    of 1, ``mask_for`` applies torch's kernel rule (block tables of index 0, ``mask_mod`` on the
    query's b and h in partial blocks). torch's block tables are there to read:
    ``kv_num_blocks``/``kv_indices`` (partial blocks), ``full_kv_num_blocks``/``full_kv_indices``
    (blocks with every position kept) and their transposes ``q_*``, as int32 tensors;
    ``to_dense()`` is the block-level (B, H, row blocks, column blocks) int32 table (1 where a
    block holds any kept position), ``sparsity()`` the percentage of blocks skipped, by torch's
    formula (negative when a block is larger than the sequence, as torch's)."""

    def __init__(self, mask, BLOCK_SIZE=(_DEFAULT_BLOCK_SIZE, _DEFAULT_BLOCK_SIZE), mask_mod=noop_mask,
                 separate_full_blocks=True):
        if not isinstance(mask, Tensor) or mask.ndim != 4 or mask.dtype != dtypes.bool_:
            raise ValueError(f"BlockMask: mask must be a 4-d bool gt.Tensor (B, H, Q_LEN, KV_LEN), got "
                             f"{getattr(mask, 'dtype', type(mask).__name__)} of shape {getattr(mask, 'shape', None)}")
        self.mask, self.BLOCK_SIZE, self.mask_mod = mask, tuple(BLOCK_SIZE), mask_mod
        self.seq_lengths = tuple(mask.shape[2:])
        counts = _block_counts(mask, *self.BLOCK_SIZE)
        size = self.BLOCK_SIZE[0] * self.BLOCK_SIZE[1]
        if separate_full_blocks:
            partial, full = ((counts > 0) & (counts < size)).to(dtypes.int32), (counts == size).to(dtypes.int32)
        else:
            partial, full = (counts > 0).to(dtypes.int32), None
        self.kv_num_blocks, self.kv_indices = _ordered(partial)
        self.q_num_blocks, self.q_indices = _ordered(partial.transpose(-2, -1))
        self.full_kv_num_blocks = self.full_kv_indices = self.full_q_num_blocks = self.full_q_indices = None
        if full is not None:
            self.full_kv_num_blocks, self.full_kv_indices = _ordered(full)
            self.full_q_num_blocks, self.full_q_indices = _ordered(full.transpose(-2, -1))
        self._blocks = (counts > 0).to(dtypes.int32)
        self._tables, self._dense_tables = (partial, full), None

    def _expand(self, blocks):
        """A (B, H, row blocks, column blocks) 0/1 table as the (B, H, Q_LEN, KV_LEN) bool mask of its blocks."""
        L, S = self.seq_lengths
        dense = blocks.to(dtypes.bool_).repeat_interleave(self.BLOCK_SIZE[0], dim=2)
        return dense.repeat_interleave(self.BLOCK_SIZE[1], dim=3)[:, :, :L, :S]

    def mask_for(self, B, H):
        """The bool mask that ``flex_attention`` applies to a query of ``B`` batches and ``H`` heads,
        broadcastable to (B, H, Q_LEN, KV_LEN): this mask's own (cropped to B and H) where it is made
        for them or ``mask_mod`` reads neither b nor h, else torch's kernel rule below.

        torch's kernel visits the blocks of the tables of (b', h') (b' = b where the mask has more
        than one batch, else 0; h' likewise): a full block is attended whole, a partial one where
        ``mask_mod(b, h, q_idx, kv_idx)``, on the query's actual b and h, is True, any other not at
        all. Where the mask has the query's B and H (or ``mask_mod`` is ``noop_mask``) that is ``mask``."""
        mask = self.mask[:B, :H] if self.mask.shape[0] > B or self.mask.shape[1] > H else self.mask
        if tuple(mask.shape[:2]) == (B, H) or self.mask_mod is noop_mask:
            return mask
        grid = self.mask_mod(*index_grids(B, H, *self.seq_lengths, device=mask.device))
        # an answer of batch and head size 1 reads neither b nor h: it is the mask made at creation
        if not isinstance(grid, Tensor) or grid.ndim == 0 or (grid.ndim == 4 and tuple(grid.shape[:2]) == (1, 1)):
            return mask
        if grid.ndim != 4:
            grid = full_grid(grid, (B, H, *self.seq_lengths), mask.device)
        if self._dense_tables is None:     # made once: one (B', H', L, S) bool pair per mask
            partial, full = self._tables
            self._dense_tables = (self._expand(partial), None if full is None else self._expand(full))
        partial, full = (None if t is None else t[:B, :H] for t in self._dense_tables)
        keep = partial & (grid if grid.dtype == dtypes.bool_ else grid.to(dtypes.bool_))
        return keep if full is None else keep | full

    @property
    def shape(self):
        """(B, H, Q_LEN, KV_LEN)."""
        return tuple(self.mask.shape)

    def numel(self):
        """The number of (b, h, query, key) positions the mask covers."""
        B, H, L, S = self.shape
        return B * H * L * S

    def sparsity(self):
        """The percentage of blocks that torch's kernel skips (100 * (1 - kept blocks' area / numel))."""
        kept = int(self._blocks.sum().item())
        return 100 * (1 - kept * self.BLOCK_SIZE[0] * self.BLOCK_SIZE[1] / self.numel())

    def to_dense(self):
        """The block-level table (B, H, row blocks, column blocks), int32: 1 where a block holds a
        kept position (torch's ``to_dense``; the element-level mask is ``mask``)."""
        return self._blocks

    def _adjust(self, new_q_len, new_kv_len):
        """This mask for other sequence lengths (torch's escape hatch, named in flex_attention's
        error): ``mask_mod`` evaluated on the new grid, which for shorter lengths attends torch's crop
        to the top-left corner (the block table is made anew; torch's keeps the cropped old one)."""
        return create_block_mask(self.mask_mod, self.shape[0], self.shape[1], new_q_len, new_kv_len,
                                 device=self.mask.device, BLOCK_SIZE=self.BLOCK_SIZE,
                                 separate_full_blocks=self.full_kv_num_blocks is not None)

    def to(self, device):
        """This mask on ``device`` (a new BlockMask)."""
        return BlockMask(self.mask.to(device), self.BLOCK_SIZE, self.mask_mod, self.full_kv_num_blocks is not None)

    def to_string(self, grid_size=(20, 20), limit=4):
        """torch's picture of the block table: a full block is drawn as two full-block characters, a
        partly kept area as light shade, an empty one as spaces."""
        dense = self._blocks
        *batch_dims, rows, cols = dense.shape
        max_rows, max_cols = (rows, cols) if grid_size == -1 else (
            (grid_size, grid_size) if isinstance(grid_size, int) else grid_size)
        row_step, col_step = max(1, -(-rows // max_rows)), max(1, -(-cols // max_cols))
        pictures = []
        for i, idx in enumerate(itertools.product(*[range(n) for n in batch_dims])):
            if i == limit:
                pictures += ["...", "To print out more, set BlockMask.to_string(limit=N)",
                             "You can also index (BlockMask[batch, head]) to choose a specific batch or head"]
                break
            text = f"{idx}\n"
            for r in range(0, rows, row_step):
                for c in range(0, cols, col_step):
                    share = dense[idx][r:r + row_step, c:c + col_step].to(dtypes.float32).mean().item()
                    text += ("█" if share == 1 else " " if share == 0 else "░") * 2
                text += "\n"
            pictures.append(text)
        return "\n".join(pictures)

    def __str__(self):
        return f"BlockMask(shape={self.shape}, sparsity={self.sparsity():.2f}%, \n{self.to_string().strip()}\n)"

    def __repr__(self):
        def shape_or_none(x):
            return None if x is None else tuple(x.shape)

        fields = ("kv_num_blocks", "kv_indices", "full_kv_num_blocks", "full_kv_indices", "q_num_blocks",
                  "q_indices", "full_q_num_blocks", "full_q_indices")
        lines = [f"    {name}={shape_or_none(getattr(self, name))}," for name in fields]
        name = getattr(self.mask_mod, "__name__", self.mask_mod)
        lines += [f"    BLOCK_SIZE={self.BLOCK_SIZE},", f"    shape={self.shape},",
                  f"    sparsity={self.sparsity():.2f}%,", f"    mask_mod={name}"]
        return "BlockMask(\n" + "\n".join(lines) + "\n)"
