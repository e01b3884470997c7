"""Sorting, scans and sampling of the numpy engine (mixed into ``NumpyEngine``).

Sorts are always stable (numpy's ``kind="stable"``, a radix or merge sort): equal values keep
the order of their positions, for ascending and descending sorts alike, so ties never depend
on the algorithm. ``multinomial`` draws from the engine's generator (``self.rng``), which the
torch engine shares, so one seed gives the same samples on both engines.
"""

import numpy as np

from gt.backend.numpy_layouts import row_major, torch_layout


class NumpySorting:
    def argsort(self, x, axis, descending=False):
        if not descending:
            return np.argsort(x, axis=axis, kind="stable").astype(np.int64, copy=False)
        # a stable descending sort: sort the reversed axis ascending and reverse the result, so
        # among equal values the first position still comes first (negating would overflow ints)
        n = x.shape[axis]
        rev = np.flip(np.argsort(np.flip(x, axis), axis=axis, kind="stable"), axis)
        return (n - 1 - rev).astype(np.int64, copy=False)

    # a full sort is the quicker below 512 positions or above n/4 of them kept (2-core EPYC,
    # (8, n) float32: n=256 top-5 47 us selected against 29 sorted, n=512 55 against 70,
    # n=32000 top-50 1.9 against 24 ms)
    TOPK_SELECT_MIN = 512

    def topk_indices(self, x, k, axis, largest=True):
        """The first ``k`` positions of ``argsort(x, axis, descending=largest)``, in that order,
        without sorting the whole axis where ``k`` is small: the k-th value is found by a
        partition, the positions before it in the sort order are kept with the first positions
        equal to it (the stable sort's tie rule), and only those ``k`` are sorted."""
        n = x.shape[axis]
        if k == 0 or n < self.TOPK_SELECT_MIN or 4 * k > n or x.dtype.kind not in "biuf":
            order = self.argsort(x, axis, descending=largest)
            return row_major(order[(slice(None),) * axis + (slice(0, k),)])     # torch's top-k is row-major
        rows = np.moveaxis(x, axis, -1)
        at = n - k if largest else k - 1
        kth = _value_at(rows, at)                                    # NaN sorts last, as the largest
        if x.dtype.kind == "f" and np.isnan(kth).any() | np.isnan(rows).any():
            nan, kth_nan = np.isnan(rows), np.isnan(kth)
            ahead = (rows > kth) | (nan & ~kth_nan) if largest else (rows < kth) | (~nan & kth_nan)
            tied = (rows == kth) | (nan & kth_nan)
        else:
            ahead, tied = (rows > kth) if largest else (rows < kth), rows == kth
        # the first (k - ahead) tied positions of each row join the ones ahead: k in every row
        missing = k - np.count_nonzero(ahead, axis=-1, keepdims=True)
        if (np.count_nonzero(tied, axis=-1, keepdims=True) != missing).any():   # more ties than places
            tied &= np.cumsum(tied, axis=-1) <= missing
        ahead |= tied
        picked = (np.flatnonzero(ahead) % n).reshape(rows.shape[:-1] + (k,))   # ascending positions
        order = self.argsort(np.take_along_axis(rows, picked, -1), -1, descending=largest)
        return row_major(np.moveaxis(np.take_along_axis(picked, order, -1), -1, axis).astype(np.int64, copy=False))

    def cumsum(self, x, axis):
        if x.dtype == np.float16:     # torch accumulates half in float32 (float16 stalls at 2048)
            return row_major(np.cumsum(x, axis=axis, dtype=np.float32).astype(np.float16))
        if x.dtype == np.float32:     # and float32 in float64 (its CPU kernel's acc_type): torch's bits
            return row_major(np.cumsum(x, axis=axis, dtype=np.float64).astype(np.float32))
        integral = x.dtype.kind in "biu"
        return row_major(np.cumsum(x, axis=axis, dtype=np.int64 if integral else x.dtype))

    def dense_like(self, out, x):
        return torch_layout(out, x)     # numpy's sorts and take_along_axis make row-major results

    def take_along_axis(self, x, indices, axis):
        return np.take_along_axis(x, indices, axis)

    def put_along_axis(self, target, indices, values, axis):
        np.put_along_axis(target, indices, values, axis)
        return target

    def multinomial(self, probs, num_samples, replacement):
        """``num_samples`` category indices per row of the 2-D ``probs`` (int64, rows x samples)."""
        p = np.asarray(probs, dtype=np.float64)
        _check_distribution(p, num_samples, replacement)
        if not replacement:
            # Exponential races (Efraimidis-Spirakis): the categories with the smallest E_i / p_i,
            # E_i ~ Exp(1), are a draw without replacement, each next one chosen in proportion to
            # the probability left, as torch does; zero probabilities get an infinite key.
            keys = self.rng.standard_exponential(p.shape)
            with np.errstate(divide="ignore"):
                keys = np.where(p > 0, keys / p, np.inf)
            if num_samples == 1:
                return np.argmin(keys, axis=1)[:, None].astype(np.int64)
            # the num_samples smallest keys, then in order of their keys (the order of the draws)
            first = np.argpartition(keys, num_samples - 1, axis=1)[:, :num_samples]
            order = np.argsort(np.take_along_axis(keys, first, 1), axis=1, kind="stable")
            return np.take_along_axis(first, order, 1).astype(np.int64)
        cdf = np.cumsum(p, axis=1)
        u = self.rng.random((p.shape[0], num_samples)) * cdf[:, -1:]
        # the last category that can be drawn: u * total rounding up to total must not pass it
        last = p.shape[1] - 1 - np.argmax(p[:, ::-1] > 0, axis=1)
        out = np.empty((p.shape[0], num_samples), np.int64)
        for r in range(p.shape[0]):          # one vectorised search per row, not per sample
            out[r] = np.minimum(np.searchsorted(cdf[r], u[r], side="right"), last[r])
        return out


def _check_distribution(p, num_samples, replacement):
    """torch's checks of a multinomial's rows, as one-line errors naming the bad value."""
    if not np.isfinite(p).all():
        bad = p[~np.isfinite(p)][0]
        raise ValueError(f"multinomial: probabilities must be finite, got {bad}")
    if (p < 0).any():
        raise ValueError(f"multinomial: probabilities must be non-negative, got {p[p < 0][0]}")
    # (no row numbers: a sharded tensor's blocks are checked one by one, each counting from 0)
    if (p.sum(axis=1) <= 0).any():
        raise ValueError("multinomial: a row of the probabilities sums to 0; every row needs a positive probability")
    if not replacement:
        if num_samples > p.shape[1]:
            raise ValueError(f"multinomial: cannot draw num_samples={num_samples} without replacement from "
                             f"{p.shape[1]} categories")
        nonzero = (p > 0).sum(axis=1)
        if (nonzero < num_samples).any():
            raise ValueError(f"multinomial: a row has {nonzero.min()} non-zero probabilities, fewer than "
                             f"num_samples={num_samples} drawn without replacement")


def _value_at(rows, at):
    """The value at ascending position ``at`` of each row, as (..., 1): numpy's partition, or a
    sort of the values where rows are mostly one repeated value (a sample of them says so), on
    which the partition slows down: (8, 32000) probabilities zero but for 50 a row (a top-k
    filter's softmax) took 18.6 ms to partition and 0.75 ms to sort (1.4 against 4.7 ms on
    distinct values)."""
    n = rows.shape[-1]
    sample = np.sort(rows[..., ::max(1, n // 64)], axis=-1)
    if np.mean(sample[..., 1:] == sample[..., :-1]) > 0.5:
        return np.sort(rows, axis=-1)[..., at:at + 1]
    return np.partition(rows, at, axis=-1)[..., at:at + 1]
