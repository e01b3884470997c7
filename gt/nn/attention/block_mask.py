"""torch's ``BlockMask`` and mask builders for ``flex_attention`` (gt/nn/attention/flex_attention.py):
``create_mask``, ``create_block_mask``, ``and_masks``, ``or_masks``, ``noop_mask``.

A mask function ``mask_mod(b, h, q_idx, kv_idx) -> bool`` is called once, vectorised: its four
arguments are int64 index tensors of shapes (B, 1, 1, 1), (1, H, 1, 1), (1, 1, L, 1) and
(1, 1, 1, S), so comparisons, arithmetic, ``gt.where`` and indexing a tensor by them (``doc[b, q_idx]``)
broadcast to the (B, H, L, S) answer that torch's ``vmap`` gives element by element.

A ``BlockMask`` is torch's block tables plus ``mask_mod``; ``flex_attention`` applies it by torch's
kernel rule (``BlockMask.mask_for``): full blocks whole, ``mask_mod`` on the query's actual b and h
inside partial blocks, nothing elsewhere. For a mask from ``create_block_mask`` on the query's B
and H that is ``mask_mod`` everywhere, as torch 2.13's eager path (no ``torch.compile``), which
ignores the tables; the two differ only where the tables do not fit ``mask_mod`` (a mask made with
B/H None whose mask_mod reads b or h, a slice, ``_adjust``, ``from_kv_blocks``).
"""

import inspect
import math
import warnings

from gt import dtypes
from gt.nn.attention.block_tables import (adjust_ordered, block_counts, check_tables, dense_to_ordered,
                                          ordered_to_dense, picture, spread, transpose_ordered)
from gt.tensor import Tensor, arange, ones, tensor, zeros

_DEFAULT_BLOCK_SIZE = 128
_LARGE_SPARSE_BLOCK_SIZE = 1 << 30     # torch's block size of a mask that is no mask (seq_lengths unchecked)
_KV_TABLES = ("kv_num_blocks", "kv_indices", "full_kv_num_blocks", "full_kv_indices")
_Q_TABLES = ("q_num_blocks", "q_indices", "full_q_num_blocks", "full_q_indices")


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


def _block_size(fn, BLOCK_SIZE):
    bq, bkv = (BLOCK_SIZE, BLOCK_SIZE) if isinstance(BLOCK_SIZE, int) else tuple(BLOCK_SIZE)
    for n in (bq, bkv):
        if isinstance(n, bool) or not isinstance(n, int) or n <= 0:
            raise ValueError(f"{fn}: BLOCK_SIZE must be a positive int or a pair of them, got {BLOCK_SIZE!r}")
    return bq, bkv


def create_block_mask(mask_mod, B, H, Q_LEN, KV_LEN, device=None, BLOCK_SIZE=_DEFAULT_BLOCK_SIZE, _compile=False,
                      separate_full_blocks=True, compute_dq_write_order=False, dq_kv_order=True):
    """A ``BlockMask`` from ``mask_mod(b, h, q_idx, kv_idx) -> bool`` (True: may attend), for
    ``flex_attention(..., block_mask=)``. ``B``/``H`` of None broadcast over the batch/heads.

    ``mask_mod`` is evaluated once over (B, H, Q_LEN, KV_LEN); torch's block tables are made from
    it (``BLOCK_SIZE`` an int or a (query, key) pair; lengths need not be multiples of it) and the
    element mask is kept for ``flex_attention`` on this B and H (gt skips no work). ``_compile`` is
    accepted with torch's DeprecationWarning and changes nothing; the dQ write-order arguments of
    torch's GPU kernel are accepted (``dq_kv_order_spt`` is set, no write order is computed)."""
    if mod_arity(mask_mod) != 4:
        raise AssertionError(f"create-block_mask requires a mask_mod function! Got {mask_mod}")
    sizes = _sizes("create_block_mask", B, H, Q_LEN, KV_LEN)
    bq, bkv = _block_size("create_block_mask", BLOCK_SIZE)
    if _compile:
        warnings.warn("_compile flag on create_block_mask was originally added to work around a torch.compile "
                      "limitation. That limitation has since been addressed. So, to compile create_block_mask, "
                      "we suggest doing torch.compile(create_block_mask). This still works for now, but will be "
                      "removed in the future.", DeprecationWarning, stacklevel=2)
    if not isinstance(dq_kv_order, bool):
        raise ValueError("dq_kv_order must be a bool when using create_block_mask")
    mask = create_mask(mask_mod, *sizes, device=device)
    counts = block_counts(mask, bq, bkv)
    if separate_full_blocks:
        partial = ((counts > 0) & (counts < bq * bkv)).to(dtypes.int32)
        full = dense_to_ordered((counts == bq * bkv).to(dtypes.int32))
    else:
        partial, full = (counts > 0).to(dtypes.int32), (None, None)
    block_mask = BlockMask.from_kv_blocks(*dense_to_ordered(partial), *full, BLOCK_SIZE=(bq, bkv),
                                          mask_mod=mask_mod, seq_lengths=(Q_LEN, KV_LEN))
    if compute_dq_write_order:
        block_mask.dq_kv_order_spt = dq_kv_order
    block_mask._remember(mask)     # the tables' element mask on this B and H is mask_mod's own
    return block_mask


def _sliced_mask_mod_error(batch, head, token_q, token_kv):
    """The mask_mod of a sliced BlockMask (torch's): it raises until the user assigns one."""
    raise RuntimeError(
        "Cannot use mask_mod from a sliced BlockMask. When you slice a BlockMask using [], the mask_mod attribute "
        "is reset. You must set it from the original BlockMask's mask_mod.\n\nIncorrect usage:\n  base_mask = "
        "create_block_mask(my_mask_fn, ...)\n  sliced_mask = base_mask[:, :, block_idx]\n  sliced_mask.mask_mod = "
        "apply_offset(sliced_mask.mask_mod, offset)  # WRONG!\n\nCorrect usage:\n  base_mask = create_block_mask("
        "my_mask_fn, ...)\n  sliced_mask = base_mask[:, :, block_idx]\n  sliced_mask.mask_mod = apply_offset("
        "base_mask.mask_mod, offset)  # Use base_mask!")


def _same(key, other):
    """Two cache keys agree: tensors and functions the same objects, numbers and tuples equal."""
    return other is not None and len(key) == len(other) and all(
        a is b or (isinstance(a, (int, tuple)) and a == b) for a, b in zip(key, other))


def _keep_dim(i, n, axis):
    """torch's rule: an int index keeps its dim (i -> i:i+1); gt refuses one out of range."""
    if isinstance(i, int) and not isinstance(i, bool):
        if not -n <= i < n:
            raise IndexError(f"BlockMask index {i} is out of range for dim {axis} of size {n}")
        return slice(i % n, i % n + 1)
    return i


class BlockMask:
    """torch's ``BlockMask``: which (query, key) blocks ``flex_attention`` visits, for a (B, H,
    Q_LEN, KV_LEN) grid (B or H of 1 broadcast). Made by ``create_block_mask`` or, from tables
    the user builds, ``BlockMask.from_kv_blocks``; ``block_mask[b]``, ``[:, h]``, ``[:, :, q_block]``
    slice the tables as torch's (an int keeps its dim; the slice's ``mask_mod`` raises until one
    is assigned, and ``seq_lengths`` may be reassigned, as in torch's decoding recipes).

    torch's attributes: ``seq_lengths``, ``BLOCK_SIZE`` (query, key), ``mask_mod`` and the int32
    tables ``kv_num_blocks``/``kv_indices`` (partial blocks: ``mask_mod`` decides inside them),
    ``full_kv_num_blocks``/``full_kv_indices`` (blocks attended whole, or None) and their
    transposes ``q_*`` (made on first read; gt's attention reads only the kv tables).
    ``flex_attention`` follows torch's kernel: the element mask is the full blocks, and
    ``mask_mod`` on the query's b, h inside the partial ones; nothing elsewhere (``mask_for``).
    ``to_dense()`` is the block-level (..., row blocks, column blocks) int32 table and
    ``sparsity()`` the percentage of blocks skipped, by torch's formulas."""

    def __init__(self, seq_lengths, kv_num_blocks, kv_indices, full_kv_num_blocks, full_kv_indices, q_num_blocks,
                 q_indices, full_q_num_blocks, full_q_indices, BLOCK_SIZE=(_DEFAULT_BLOCK_SIZE, _DEFAULT_BLOCK_SIZE),
                 mask_mod=noop_mask, *, dq_write_order=None, dq_write_order_full=None, dq_kv_order=None,
                 dq_kv_order_spt=None):
        check_tables(kv_num_blocks, kv_indices, full_kv_num_blocks, full_kv_indices)
        if (full_q_num_blocks is None) != (full_q_indices is None):
            raise AssertionError("full_q_num_blocks and full_q_indices must be both provided or omitted")
        if dq_write_order_full is not None and dq_write_order is None:
            raise ValueError("dq_write_order_full requires dq_write_order")
        if not isinstance(seq_lengths, (tuple, list)) or len(seq_lengths) != 2 or not all(
                isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in seq_lengths):
            raise ValueError(f"BlockMask: seq_lengths must be (Q_LEN, KV_LEN), two non-negative ints, got "
                             f"{seq_lengths!r}")
        self.seq_lengths, self.BLOCK_SIZE = tuple(seq_lengths), _block_size("BlockMask", BLOCK_SIZE)
        self.kv_num_blocks, self.kv_indices = kv_num_blocks, kv_indices
        self.full_kv_num_blocks, self.full_kv_indices = full_kv_num_blocks, full_kv_indices
        self.q_num_blocks, self.q_indices = q_num_blocks, q_indices
        self.full_q_num_blocks, self.full_q_indices = full_q_num_blocks, full_q_indices
        self.dq_write_order, self.dq_write_order_full = dq_write_order, dq_write_order_full
        self.dq_kv_order, self.dq_kv_order_spt = dq_kv_order, dq_kv_order_spt
        self.mask_mod = mask_mod
        self._cache = None     # (key, element mask) of the last mask_for

    @classmethod
    def from_kv_blocks(cls, kv_num_blocks, kv_indices, full_kv_num_blocks=None, full_kv_indices=None,
                       BLOCK_SIZE=_DEFAULT_BLOCK_SIZE, mask_mod=None, seq_lengths=None, compute_q_blocks=True, *,
                       dq_write_order=None, dq_write_order_full=None, dq_kv_order=None):
        """torch's constructor from the kv tables: ``kv_num_blocks`` (..., rows) and ``kv_indices``
        (..., rows, entries) int32 (at least 2 dims; (B, H, rows, entries) as create_block_mask's),
        the optional full-block pair, ``BLOCK_SIZE`` an int or (query, key), ``mask_mod`` applied
        inside partial blocks (None: ``noop_mask``, every position of a listed block), and
        ``seq_lengths`` (default: the tables' rows and entries times the block size). The ``q_*``
        tables are made on first read when ``compute_q_blocks``; dQ write-order metadata is kept."""
        check_tables(kv_num_blocks, kv_indices, full_kv_num_blocks, full_kv_indices)
        bq, bkv = _block_size("BlockMask.from_kv_blocks", BLOCK_SIZE)
        if seq_lengths is None:
            seq_lengths = (kv_indices.shape[-2] * bq, kv_indices.shape[-1] * bkv)
        if dq_kv_order is not None and not isinstance(dq_kv_order, (bool, Tensor)):
            raise ValueError("dq_kv_order must be a bool, Tensor, or None")
        block_mask = cls(seq_lengths, kv_num_blocks, kv_indices, full_kv_num_blocks, full_kv_indices, None, None,
                         None, None, (bq, bkv), noop_mask if mask_mod is None else mask_mod,
                         dq_write_order=dq_write_order, dq_write_order_full=dq_write_order_full,
                         dq_kv_order=dq_kv_order if isinstance(dq_kv_order, Tensor) else None,
                         dq_kv_order_spt=dq_kv_order if isinstance(dq_kv_order, bool) else None)
        if compute_q_blocks:
            block_mask._defer_q_tables()
        return block_mask

    def _defer_q_tables(self):
        for name in _Q_TABLES:
            self.__dict__.pop(name, None)
        self._q_pending = True

    def __getattr__(self, name):     # reached only for attributes not set: the deferred q tables
        if name in _Q_TABLES and self.__dict__.get("_q_pending"):
            self._q_pending = False
            tables = transpose_ordered(self.kv_num_blocks, self.kv_indices)
            tables += (None, None) if self.full_kv_num_blocks is None else transpose_ordered(
                self.full_kv_num_blocks, self.full_kv_indices)
            for key, value in zip(_Q_TABLES, tables):
                self.__dict__.setdefault(key, value)
            return self.__dict__[name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def _has_q_tables(self):
        return bool(self.__dict__.get("_q_pending")) or self.__dict__.get("q_indices") is not None

    def as_tuple(self, flatten=True):
        """torch's tuple of the attributes: seq_lengths, the eight tables, the dQ metadata,
        BLOCK_SIZE and mask_mod; ``flatten=False`` keeps seq_lengths and BLOCK_SIZE as pairs."""
        seq_lengths, block_size = ((*self.seq_lengths,), (*self.BLOCK_SIZE,)) if flatten else (
            (self.seq_lengths,), (self.BLOCK_SIZE,))
        return (*seq_lengths, *(getattr(self, name) for name in (*_KV_TABLES, *_Q_TABLES)),
                self.dq_write_order, self.dq_write_order_full, self.dq_kv_order, self.dq_kv_order_spt,
                *block_size, self.mask_mod)

    @property
    def shape(self):
        """The tables' batch dims, then (Q_LEN, KV_LEN): (B, H, Q_LEN, KV_LEN) for create_block_mask's."""
        return tuple(self.kv_indices.shape[:-2]) + tuple(self.seq_lengths)

    def numel(self):
        """The number of (b, h, query, key) positions the mask covers (its sparsity not counted)."""
        return math.prod(self.shape)

    def sparsity(self):
        """The percentage of blocks that torch's kernel skips: 100 * (1 - listed blocks' area / numel)."""
        computed = int(self.kv_num_blocks.sum().item())
        if self.full_kv_num_blocks is not None:
            computed += int(self.full_kv_num_blocks.sum().item())
        return 100 * (1 - computed * self.BLOCK_SIZE[0] * self.BLOCK_SIZE[1] / self.numel())

    def to_dense(self):
        """The block-level table (..., row blocks, column blocks), int32: 1 where a block is listed,
        partial or full (torch's ``to_dense``; the element-level mask is ``mask``)."""
        dense = ordered_to_dense(self.kv_num_blocks, self.kv_indices, self.kv_indices.shape[-1])
        if self.full_kv_num_blocks is None:
            return dense
        return dense | ordered_to_dense(self.full_kv_num_blocks, self.full_kv_indices, self.full_kv_indices.shape[-1])

    def __getitem__(self, index):
        """torch's slicing over (batch, head, query block): every kv table indexed alike, an int
        keeping its dim (``[0]`` -> batch 0:1); the q tables remade; ``seq_lengths`` kept; the
        ``mask_mod`` one that raises, until a new one is assigned (torch's rule)."""
        if self.dq_kv_order is not None:
            raise NotImplementedError("Slicing BlockMask with tensor dq_kv_order is not supported yet. Construct a "
                                      "new BlockMask with matching precomputed dq_write_order metadata.")
        index = index if isinstance(index, tuple) else (index,)
        sizes = tuple(self.kv_num_blocks.shape)
        if len(sizes) < 3 or len(index) > 3:
            raise IndexError(f"BlockMask[...] takes up to 3 indices (batch, head, query block) of tables with "
                             f"(B, H, rows) counts; got {len(index)} indices and counts of shape {sizes}")
        padded = (*index, slice(None), slice(None), slice(None))[:3]
        index = tuple(_keep_dim(i, n, axis) for axis, (i, n) in enumerate(zip(padded, sizes)))
        full = (None, None) if self.full_kv_num_blocks is None else (
            self.full_kv_num_blocks[index], self.full_kv_indices[index])
        block_mask = BlockMask.from_kv_blocks(
            self.kv_num_blocks[index], self.kv_indices[index], *full, BLOCK_SIZE=self.BLOCK_SIZE,
            mask_mod=_sliced_mask_mod_error, seq_lengths=self.seq_lengths, compute_q_blocks=self._has_q_tables())
        block_mask.dq_kv_order_spt = self.dq_kv_order_spt
        return block_mask

    def _adjust(self, new_q_len, new_kv_len):
        """torch's crop of the tables to other (smaller) lengths, named in flex_attention's error: the
        top-left corner of the mask, for mask_mods where that is right (causal, not sliding ones)."""
        if self.dq_kv_order is not None:
            raise NotImplementedError("Adjusting BlockMask with tensor dq_kv_order is not supported yet. Construct "
                                      "a new BlockMask with matching precomputed dq_write_order metadata.")
        rows, cols = -(-new_q_len // self.BLOCK_SIZE[0]), -(-new_kv_len // self.BLOCK_SIZE[1])
        full = (None, None) if self.full_kv_num_blocks is None else adjust_ordered(
            self.full_kv_num_blocks, self.full_kv_indices, rows, cols)
        block_mask = self.from_kv_blocks(
            *adjust_ordered(self.kv_num_blocks, self.kv_indices, rows, cols), *full, BLOCK_SIZE=self.BLOCK_SIZE,
            mask_mod=self.mask_mod, seq_lengths=(new_q_len, new_kv_len), compute_q_blocks=self._has_q_tables())
        block_mask.dq_kv_order_spt = self.dq_kv_order_spt
        return block_mask

    def _batch_heads(self):
        dims = tuple(self.kv_indices.shape[:-2])
        if len(dims) > 2:
            raise ValueError(f"flex_attention: a BlockMask's tables have at most 2 batch dims (B, H), got "
                             f"kv_indices of shape {tuple(self.kv_indices.shape)}")
        return (1,) * (2 - len(dims)) + dims

    def _key(self, B, H, L, S):
        """What the element mask depends on; mask_mod and seq_lengths may be reassigned (torch's recipes)."""
        return (B, H, L, S, tuple(self.seq_lengths), self.BLOCK_SIZE, self.mask_mod, *(
            getattr(self, name) for name in _KV_TABLES))

    def _remember(self, mask):
        self._cache = (self._key(*mask.shape), mask)

    def mask_for(self, B, H, Q_LEN=None, KV_LEN=None):
        """The bool mask, broadcastable to (B, H, Q_LEN, KV_LEN) (default: ``seq_lengths``), that
        ``flex_attention`` applies to a query of B batches and H heads, by torch's kernel rule: the
        tables of (b', h') (b' = b where the tables have more than one batch, else 0; h' likewise)
        pick the blocks; a full block is attended whole, a partial one where ``mask_mod`` on the
        query's actual b, h, q_idx, kv_idx is True. Kept until an input of the key changes: for
        create_block_mask's own B and H it is the mask evaluated there."""
        L, S = self.seq_lengths if Q_LEN is None else (Q_LEN, KV_LEN)
        key = self._key(B, H, L, S)
        if self._cache is None or not _same(key, self._cache[0]):
            self._cache = (key, self._kernel_mask(B, H, L, S))
        return self._cache[1]

    def _kernel_mask(self, B, H, L, S):
        bq, bkv = self.BLOCK_SIZE
        Bt, Ht = self._batch_heads()

        def elements(num_blocks, indices):
            table = ordered_to_dense(num_blocks, indices, -(-S // bkv))
            return spread(table.reshape(Bt, Ht, *table.shape[-2:])[:B, :H], bq, bkv, L, S)

        mask = elements(self.kv_num_blocks, self.kv_indices)
        if self.mask_mod is not noop_mask:
            grid = self.mask_mod(*index_grids(B, H, L, S, device=mask.device))
            grid = grid if isinstance(grid, Tensor) else tensor(grid).to(mask.device)
            mask = mask & (grid if grid.dtype == dtypes.bool_ else grid.to(dtypes.bool_))
        if self.full_kv_num_blocks is not None:
            mask = mask | elements(self.full_kv_num_blocks, self.full_kv_indices)
        return mask

    @property
    def mask(self):
        """gt's element-level view: the bool mask ``flex_attention`` applies for the tables' own B, H
        and ``seq_lengths`` (for create_block_mask's, ``create_mask`` of its mask_mod)."""
        return self.mask_for(*self._batch_heads())

    def to(self, device):
        """This mask on ``device`` (a new BlockMask; tables, dQ metadata and the kept mask moved)."""
        names = (*_KV_TABLES, *_Q_TABLES, "dq_write_order", "dq_write_order_full", "dq_kv_order")
        moved = {n: v.to(device) if isinstance(v, Tensor) else v for n, v in
                 ((n, self.__dict__.get(n)) for n in names)}
        new = BlockMask(self.seq_lengths, *(moved[n] for n in (*_KV_TABLES, *_Q_TABLES)), self.BLOCK_SIZE,
                        self.mask_mod, dq_write_order=moved["dq_write_order"],
                        dq_write_order_full=moved["dq_write_order_full"], dq_kv_order=moved["dq_kv_order"],
                        dq_kv_order_spt=self.dq_kv_order_spt)
        if self.__dict__.get("_q_pending"):
            new._defer_q_tables()
        if self._cache is not None and _same(self._key(*self._cache[0][:4]), self._cache[0]):
            new._cache = (new._key(*self._cache[0][:4]), self._cache[1].to(device))
        return new

    def to_string(self, grid_size=(20, 20), limit=4):
        """torch's picture of the block table: a full block is drawn as two full-block characters, a
        partly kept area as light shade, an empty one as spaces."""
        return picture(self.to_dense(), grid_size, limit)

    def __str__(self):
        return f"BlockMask(shape={self.shape}, sparsity={self.sparsity():.2f}%, \n{self.to_string().strip()}\n)"

    def __repr__(self):
        def shape_or_none(x):
            return None if x is None else tuple(x.shape)

        lines = [f"    {name}={shape_or_none(getattr(self, name))}," for name in (*_KV_TABLES, *_Q_TABLES)]
        name = getattr(self.mask_mod, "__name__", self.mask_mod)
        lines += [f"    BLOCK_SIZE={self.BLOCK_SIZE},", f"    shape={self.shape},",
                  f"    sparsity={self.sparsity():.2f}%,", f"    mask_mod={name}"]
        return "BlockMask(\n" + "\n".join(lines) + "\n)"
