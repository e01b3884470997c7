"""einsum, item assignment, scatters and index searches of the numpy engine (mixed into ``NumpyEngine``; the
interface is gt/backend/engine_scatter.py).

``einsum`` asks numpy for a contraction order (``optimize=True``: products through BLAS, a
good pairing of three or more operands) only where the loop it saves is large: the search
costs some 30-40 us, which a plain loop of under ~10^5 steps never repays. Measured on one
core (float32, ``optimize=False`` vs ``True``): 8x8 @ 8x8 6 vs 44 us, 64x64 @ 64x64 94 vs 58 us,
256x256 @ 256x256 3.4 vs 0.35 ms, a batch of 8 32x32 products 191 vs 75 us, three 100x100
matrices in a row 119 vs 0.2 ms; a product of 4x4x4 steps and a matrix times a vector of
300x300 steps lose with the search (5 vs 39 us, 33 vs 64 us).

A sum scatter of floats adds through ``np.bincount`` over flat positions when the scattered
values are not few beside the target: 1.6x faster than ``np.add.at`` at 5000x64 values into
1000x64 (6.2 vs 9.8 ms), and summed in float64 before the one rounding to the target's dtype.
"""

import math

import numpy as np

# the loop size (the product of the sizes of every letter) from which a contraction order pays
_OPTIMIZE_FROM = 1 << 17
_UFUNCS = {"sum": np.add, "prod": np.multiply, "amax": np.maximum, "amin": np.minimum}


def _mismatch(x, index, value):
    """torch's message for a value that does not fit ``x[index]`` (numpy's differ by index kind)."""
    return (f"shape mismatch: value tensor of shape {list(np.shape(value))} cannot be broadcast to indexing result "
            f"of shape {list(x[index].shape)}")


class NumpyScatter:
    def setitem(self, x, index, value):
        try:
            x[index] = value
        except (ValueError, TypeError) as exc:
            # numpy refuses a value of more dims than the place it goes (``x[0] = array([5])``, a (1, k)
            # value through a mask); torch drops the value's leading 1-sized axes first
            lead = 0
            while isinstance(value, np.ndarray) and lead < value.ndim and value.shape[lead] == 1:
                lead += 1
            try:
                if not lead:
                    raise
                x[index] = value.reshape(value.shape[lead:])
            except (ValueError, TypeError) as again:
                if "broadcast" not in str(again) and "boolean array indexing assignment" not in str(again):
                    raise
                raise RuntimeError(_mismatch(x, index, value)) from None      # torch's type, as the torch engine's

    def einsum(self, equation, *operands):
        sizes = {}
        for subscripts, x in zip(equation.split("->")[0].split(","), operands):
            for letter, n in zip(subscripts, x.shape):
                sizes[letter] = max(sizes.get(letter, 0), n)
        steps = 1
        for n in sizes.values():
            steps *= n
        out = np.einsum(equation, *operands, optimize=len(operands) > 1 and steps >= _OPTIMIZE_FROM)
        return out if isinstance(out, np.ndarray) else np.asarray(out)

    def scatter_reduce_(self, target, dim, index, src, reduce):
        if index.size == 0:
            return target
        if reduce == "sum" and target.dtype.kind == "f" and target.flags.c_contiguous and 4 * index.size >= target.size:
            flat = _flat_positions(target, dim, index)
            sums = np.bincount(flat.reshape(-1), np.asarray(src, dtype=np.float64).reshape(-1), minlength=target.size)
            target += sums.reshape(target.shape).astype(target.dtype, copy=False)
            return target
        _UFUNCS[reduce].at(target, _positions(dim, index), src)
        return target

    def nonzero(self, x):
        return np.argwhere(x).astype(np.int64, copy=False)

    def unique(self, x, return_inverse, return_counts, dim=None):
        values, inverse, counts = np.unique(x, return_inverse=True, return_counts=True, equal_nan=False, axis=dim)
        shape = x.shape if dim is None else (x.shape[dim],)
        return (values, inverse.reshape(shape).astype(np.int64, copy=False) if return_inverse else None,
                counts.astype(np.int64, copy=False) if return_counts else None)

    def searchsorted(self, sorted_sequence, values, right):
        side = "right" if right else "left"
        if sorted_sequence.dtype.kind == "f" and np.isnan(sorted_sequence).any():
            return _torch_search(sorted_sequence, values, right)
        if sorted_sequence.ndim == 1:
            return np.asarray(np.searchsorted(sorted_sequence, values, side=side), dtype=np.int64)
        rows = sorted_sequence.reshape(math.prod(sorted_sequence.shape[:-1]), sorted_sequence.shape[-1])
        wanted = values.reshape(rows.shape[0], values.shape[-1])      # -1 fails for no rows
        out = np.empty(wanted.shape, np.int64)
        for r in range(rows.shape[0]):        # numpy searches one sorted row per call: a loop of rows
            out[r] = np.searchsorted(rows[r], wanted[r], side=side)
        return out.reshape(values.shape)


def _torch_search(seq, values, right):
    """torch's binary search, for a sequence holding NaN (numpy's ranks NaN largest): every
    comparison with NaN moves the search right, so the answer follows torch's search path."""
    rows = seq.reshape(-1, seq.shape[-1])
    wanted = values.reshape(rows.shape[0], values.shape[-1]) if seq.ndim > 1 else values.reshape(1, -1)
    row = np.arange(wanted.shape[0])[:, None]
    start = np.zeros(wanted.shape, np.int64)
    end = np.full(wanted.shape, rows.shape[1], np.int64)
    with np.errstate(invalid="ignore"):
        while (start < end).any():
            going = start < end
            mid = start + ((end - start) >> 1)
            mid_val = rows[row if seq.ndim > 1 else 0, np.minimum(mid, rows.shape[1] - 1)]
            past = ~(mid_val > wanted) if right else ~(mid_val >= wanted)
            start = np.where(going & past, mid + 1, start)
            end = np.where(going & ~past, mid, end)
    return start.reshape(values.shape)


def _positions(dim, index):
    """The advanced index that picks, for each element of ``index``, its place in the target:
    ``index`` itself along ``dim``, the element's own position along every other axis."""
    parts = []
    for a, n in enumerate(index.shape):
        if a == dim:
            parts.append(index)
        else:
            shape = [1] * index.ndim
            shape[a] = n
            parts.append(np.arange(n).reshape(shape))
    return tuple(parts)


def _flat_positions(target, dim, index):
    """``_positions`` as offsets into the flat storage of the C-contiguous ``target``."""
    parts = _positions(dim, index)
    flat, stride = np.zeros(index.shape, np.int64), 1
    for a in range(target.ndim - 1, -1, -1):
        flat = flat + parts[a] * stride
        stride *= target.shape[a]
    return flat
