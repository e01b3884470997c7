"""torch's layout rules in pure Python, for every engine: the order of dims in memory (aten's
TensorIterator ``reorder_dimensions``: an insertion sort of the dims, innermost first, by their
strides over one or more operands) and whether strides are dense. Shared by ``Tensor.dim_order()``
(gt/tensor/compat_methods.py), the numpy engine's results laid out as torch's
(gt/backend/numpy_layouts.py) and the torch engine's sorts (gt/backend/torch_sorting.py)."""


def innermost_first(shape, strides_list):
    """The dims of ``shape`` from innermost to outermost in memory, as aten's ``perm_``:
    ``strides_list`` holds each operand's element strides broadcast to ``shape`` (0 on broadcast
    dims). The first operand that orders two dims decides (strides of 0 decide nothing); equal
    strides put the larger dim outside; dims nothing orders keep their row-major places."""
    ndim = len(shape)

    def should_swap(d0, d1):        # 1: d0 lies outside d1 in memory, -1: inside, 0: undecided
        for st in strides_list:
            s0, s1 = st[d0], st[d1]
            if s0 == 0 or s1 == 0:
                continue
            if s0 != s1:
                return 1 if s0 > s1 else -1
            if shape[d0] > shape[d1]:
                return 1
        return 0

    perm = list(range(ndim - 1, -1, -1))
    for i in range(1, ndim):
        d1 = i
        for d0 in range(i - 1, -1, -1):
            c = should_swap(perm[d0], perm[d1])
            if c > 0:
                perm[d0], perm[d1] = perm[d1], perm[d0]
                d1 = d0
            elif c < 0:
                break
    return perm


def is_dense(shape, strides):
    """Whether ``strides`` lay ``shape`` out without gaps or overlaps (torch's non-overlapping and dense)."""
    step = 1
    for n, s in sorted(((n, s) for n, s in zip(shape, strides) if n != 1), key=lambda p: p[1]):
        if s != step:
            return False
        step *= n
    return True
