"""torch's CPU ``kthvalue`` tie rule: which of several equal k-th values it reports is decided
by the swaps of its quickselect (median-of-three pivots, NaN above every number), not by the
elements' order. ``kthvalue`` replays that quickselect here on the slices whose k-th value is
tied; other slices need no replay, since there the position is the value's own."""


def _above(a, b):
    """torch's ``gt_or_nan``: ``a`` sorts after ``b`` (NaN after every number)."""
    return (a != a and b == b) or a > b


def _partition(arr, idx, left, right):
    """One median-of-three partition of ``arr[left:right + 1]`` (``idx`` swapped alongside);
    returns the scan's stop ``i`` and the pivot's final place ``j``, as torch's loop has them."""
    def swap(i, j):
        arr[i], arr[j] = arr[j], arr[i]
        idx[i], idx[j] = idx[j], idx[i]

    swap(left + (right - left) // 2, left + 1)
    if _above(arr[left + 1], arr[right]):
        swap(left + 1, right)
    if _above(arr[left], arr[right]):
        swap(left, right)
    if _above(arr[left + 1], arr[left]):
        swap(left + 1, left)
    i, j, pivot = left + 1, right, arr[left]
    while True:
        i += 1
        while _above(pivot, arr[i]):
            i += 1
        j -= 1
        while _above(arr[j], pivot):
            j -= 1
        if j < i:
            break
        swap(i, j)
    swap(left, j)
    return i, j


def kth_position(values, k):
    """The position in the list ``values`` that torch's quickselect reports as the ``k``-th
    smallest (``k`` from 0): ``quick_select_template`` of aten/src/ATen/native/SortingUtils.h."""
    arr, idx = list(values), list(range(len(values)))
    left, right = 0, len(arr) - 1
    while right > left:
        if right == left + 1:
            if _above(arr[left], arr[right]):
                arr[left], arr[right] = arr[right], arr[left]
                idx[left], idx[right] = idx[right], idx[left]
            break
        i, j = _partition(arr, idx, left, right)
        if j <= k:
            left = i
        if j >= k:
            right = j - 1
    return idx[k]
