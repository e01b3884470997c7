"""torch's CPU ``mode`` tie rule: its kernel sorts each slice's (value, index) pairs by value
with C++'s ``std::sort`` (libstdc++'s introsort, not stable past 16 elements) and reports the
index that ends the longest run. Which of several equal values ends the run is decided by the
sort's swaps, so ``mode`` replays that sort here on the slices where it matters; elsewhere a
stable sort gives the same answer. Comparisons are C++'s ``<`` (false with NaN on either side)."""


def _insert(a, i):
    """``__unguarded_linear_insert``: move ``a[i]`` left past the larger values before it."""
    value = a[i]
    while value[0] < a[i - 1][0]:
        a[i] = a[i - 1]
        i -= 1
    a[i] = value


def _insertion_sort(a, first, last):
    for i in range(first + 1, last):
        if a[i][0] < a[first][0]:
            a[first + 1:i + 1], a[first] = a[first:i], a[i]
        else:
            _insert(a, i)


def _adjust_heap(a, first, hole, length, value):
    top, child = hole, hole
    while child < (length - 1) // 2:
        child = 2 * (child + 1)
        if a[first + child][0] < a[first + child - 1][0]:
            child -= 1
        a[first + hole], hole = a[first + child], child
    if length % 2 == 0 and child == (length - 2) // 2:
        child = 2 * (child + 1)
        a[first + hole], hole = a[first + child - 1], child - 1
    parent = (hole - 1) // 2
    while hole > top and a[first + parent][0] < value[0]:
        a[first + hole], hole = a[first + parent], parent
        parent = (hole - 1) // 2
    a[first + hole] = value


def _heap_sort(a, first, last):
    """``__partial_sort(first, last, last)``: make_heap, then sort_heap."""
    length = last - first
    for parent in range((length - 2) // 2, -1, -1):
        _adjust_heap(a, first, parent, length, a[first + parent])
    while last - first > 1:
        last -= 1
        value, a[last] = a[last], a[first]
        _adjust_heap(a, first, 0, last - first, value)


def _partition_pivot(a, first, last):
    """``__unguarded_partition_pivot``: the median of three moved to ``first``, then a partition."""
    x, y, z = first + 1, first + (last - first) // 2, last - 1
    if a[x][0] < a[y][0]:
        m = y if a[y][0] < a[z][0] else (z if a[x][0] < a[z][0] else x)
    else:
        m = x if a[x][0] < a[z][0] else (z if a[y][0] < a[z][0] else y)
    a[first], a[m] = a[m], a[first]
    pivot, lo, hi = a[first][0], first + 1, last
    while True:
        while a[lo][0] < pivot:
            lo += 1
        hi -= 1
        while pivot < a[hi][0]:
            hi -= 1
        if not lo < hi:
            return lo
        a[lo], a[hi] = a[hi], a[lo]
        lo += 1


def _introsort(a, first, last, depth):
    while last - first > 16:
        if depth == 0:
            _heap_sort(a, first, last)
            return
        depth -= 1
        cut = _partition_pivot(a, first, last)
        _introsort(a, cut, last, depth)
        last = cut


def std_sort(values):
    """``(value, index)`` pairs of ``values`` in the order libstdc++'s ``std::sort`` leaves them."""
    a = [(v, i) for i, v in enumerate(values)]
    n = len(a)
    if n > 1:
        _introsort(a, 0, n, 2 * (n.bit_length() - 1))
        _insertion_sort(a, 0, min(n, 16))
        for i in range(16, n):
            _insert(a, i)
    return a


def mode_position(values):
    """The index torch's CPU ``mode`` reports for the list ``values``: the last pair of the
    first longest run of equal values after ``std_sort`` (each NaN a run of its own)."""
    pairs = std_sort(values)
    best, best_count, count = 0, 0, 0
    for i, (v, index) in enumerate(pairs):
        count += 1
        if i == len(pairs) - 1 or v != pairs[i + 1][0]:
            if count > best_count:
                best, best_count = index, count
            count = 0
    return best


def replay_mode_ties(x, pos, counts):
    """``pos`` (..., 1), the stable-sort answer of ``mode`` over the last dim of the detached
    ``x``, with torch's answer on each slice where ``std::sort``'s order decides it: a slice
    holding NaN, or one of more than 16 elements (past its insertion sort) with a repeated value.
    ``counts`` (..., n): how many entries of its slice equal each sorted entry."""
    n = x.shape[-1]
    replay = x.isnan().any(-1) if x.dtype.is_floating_point else None
    if n > 16:
        tied = counts.amax(-1) > 1
        replay = tied if replay is None else replay | tied
    if replay is None or not bool(replay.any()):
        return pos
    replay = replay.reshape(-1)
    flat = pos.reshape(-1).tolist()
    for r, values in zip(replay.nonzero().reshape(-1).tolist(), x.reshape(-1, n)[replay].tolist()):
        flat[r] = mode_position(values)
    return pos.new_tensor(flat).reshape(pos.shape)
