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


def iterator_strides(shape, operands):
    """The element strides of TensorIterator's result of ``shape`` over ``operands``, pairs of
    (shape, element strides) that broadcast to ``shape``, as aten's ``compute_fast_setup_type``
    and ``reorder_dimensions``: the operands' own strides where all have ``shape`` and share
    dense strides, else dense in the order ``innermost_first`` gives."""
    shape, ndim = tuple(shape), len(shape)
    strides = []
    for a_shape, a_strides in operands:
        pad = ndim - len(a_shape)
        strides.append((0,) * pad + tuple(0 if n == 1 and shape[pad + i] != 1 else s
                                          for i, (n, s) in enumerate(zip(a_shape, a_strides))))
    if strides and all(tuple(a_shape) == shape for a_shape, _ in operands) and \
            all(s == strides[0] for s in strides) and is_dense(shape, strides[0]):
        return strides[0]
    out, step = [0] * ndim, 1
    for d in innermost_first(shape, strides):
        out[d] = step
        step *= shape[d]
    return tuple(out)


def is_dense(shape, strides):
    """Whether ``strides`` lay ``shape`` out without gaps or overlaps (torch's non-overlapping and dense)."""
    step = 1
    for n, s in sorted(((n, s) for n, s in zip(shape, strides) if n != 1), key=lambda p: p[1]):
        if s != step:
            return False
        step *= n
    return True
