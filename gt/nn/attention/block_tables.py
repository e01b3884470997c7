"""torch's block tables of a ``BlockMask`` (gt/nn/attention/block_mask.py), in gt ops.

A block table says which (row block, column block) tiles of the (Q_LEN, KV_LEN) grid a query row
block visits. torch stores it in its ordered form ``(num_blocks_in_row, col_indices)``, int32:
row r visits the blocks ``col_indices[..., r, :num_blocks_in_row[..., r]]``. These helpers turn a
0/1 table into that form and back, check the tables a user gives, crop them as torch's
``BlockMask._adjust`` does, spread them over the element grid and draw them (``to_string``).
"""

import itertools

from gt import dtypes
from gt.tensor import Tensor, arange, where, zeros


def check_tables(kv_num_blocks, kv_indices, full_kv_num_blocks, full_kv_indices):
    """torch's checks of the kv tables, then gt's: int tensors, counts shaped as the indices' rows."""
    for name, t in zip(("kv_num_blocks", "kv_indices", "full_kv_num_blocks", "full_kv_indices"),
                       (kv_num_blocks, kv_indices, full_kv_num_blocks, full_kv_indices)):
        if t is None and name in ("kv_num_blocks", "kv_indices"):
            raise AssertionError(f"{name} must be provided")
        if t is not None and (not isinstance(t, Tensor) or t.dtype.is_floating_point or t.dtype.is_complex
                              or t.dtype == dtypes.bool_):
            raise TypeError(f"BlockMask: {name} must be a gt.Tensor of integers (int32, as torch's), got "
                            f"{getattr(t, 'dtype', type(t).__name__)}")
    if kv_indices.ndim < 2:
        raise RuntimeError("BlockMask must have at least 2 dimensions")
    if (full_kv_num_blocks is None) != (full_kv_indices is None):
        raise AssertionError("full_kv_num_blocks and full_kv_indices must be both provided or omitted")
    for prefix, num, idx in (("kv", kv_num_blocks, kv_indices), ("full_kv", full_kv_num_blocks, full_kv_indices)):
        if num is not None and tuple(num.shape) != tuple(idx.shape[:-1]):
            raise ValueError(f"BlockMask: {prefix}_num_blocks must have the shape of {prefix}_indices without its "
                             f"last dim, {tuple(idx.shape[:-1])}, got {tuple(num.shape)}")


def block_counts(mask, bq, bkv):
    """(B, H, ceil(L/bq), ceil(S/bkv)) int32: how many positions of each block of a (B, H, L, S)
    bool mask are True (the sequence padded with False to whole blocks, as torch's)."""
    Bm, Hm, L, S = mask.shape
    nq, nkv = -(-L // bq), -(-S // bkv)
    padded = zeros((Bm, Hm, nq * bq, nkv * bkv), dtype=dtypes.int32).to(mask.device)
    padded[:, :, :L, :S] = mask.to(dtypes.int32)
    return padded.reshape(Bm, Hm, nq, bq, nkv, bkv).sum((3, 5)).to(dtypes.int32)


def dense_to_ordered(blocks):
    """torch's (num_blocks_in_row, col_indices), int32, of a (..., rows, cols) 0/1 int32 table: each
    row's kept columns first, then the others, each group in ascending order (a stable sort)."""
    return blocks.sum(-1).to(dtypes.int32), blocks.argsort(dim=-1, descending=True, stable=True).to(dtypes.int32)


def ordered_to_dense(num_blocks, indices, num_cols):
    """The (..., rows, num_cols) int32 0/1 table of torch's ordered form: 1 at the first
    ``num_blocks[..., r]`` columns listed in ``indices[..., r, :]``. A listed column outside
    [0, num_cols) is dropped (torch's kernel never reads past the sequence; its ``to_dense``
    raises an IndexError there)."""
    listed = arange(indices.shape[-1]).to(indices.device) < num_blocks.unsqueeze(-1)
    listed = listed & (indices >= 0) & (indices < num_cols)
    target = where(listed, indices, num_cols).to(dtypes.int64)
    # one spare column takes every entry that is not listed, so the scatter needs no mask
    dense = zeros((*indices.shape[:-1], num_cols + 1), dtype=dtypes.int32).to(indices.device)
    return dense.scatter(-1, target, 1)[..., :num_cols]


def transpose_ordered(num_blocks, indices):
    """torch's ``_transpose_ordered``: the ordered form of the transposed table (the q tables of
    the kv ones), the table taken as square in ``indices.shape[-1]`` columns, as torch's."""
    return dense_to_ordered(ordered_to_dense(num_blocks, indices, indices.shape[-1]).transpose(-2, -1))


def adjust_ordered(num_blocks, indices, rows, cols):
    """torch's ``_adjust_num_blocks_and_indices``: the ordered table cropped to ``rows`` row blocks
    and the first ``cols`` entries of each row, the count cut to the entries below it."""
    indices = indices[..., :rows, :cols]
    num_blocks = num_blocks[..., :rows]
    num_blocks = where(num_blocks < cols, num_blocks, cols)
    return (indices < num_blocks.unsqueeze(-1)).sum(-1).to(dtypes.int32), indices


def spread(blocks, bq, bkv, L, S):
    """A (..., rows, ceil(S/bkv)) 0/1 block table as the (..., L, S) bool mask of its blocks: query
    i, key j read block (i // bq, j // bkv); row blocks past the table's rows are empty."""
    rows = -(-L // bq)
    if blocks.shape[-2] < rows:
        padded = zeros((*blocks.shape[:-2], rows, blocks.shape[-1]), dtype=blocks.dtype).to(blocks.device)
        padded[..., :blocks.shape[-2], :] = blocks
        blocks = padded
    device = blocks.device
    blocks = blocks.index_select(-2, (arange(L) // bq).to(device))
    return blocks.index_select(-1, (arange(S) // bkv).to(device)).to(dtypes.bool_)


def picture(dense, grid_size=(20, 20), limit=4):
    """torch's ``BlockMask.to_string`` of a (..., rows, cols) 0/1 table: per batch index, a grid of
    at most ``grid_size`` cells, each two characters: full, light shade (partly kept) or blank."""
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
