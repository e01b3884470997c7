"""The torch engine's sliding windows, convolutions and max pooling (gt/ops/conv.py): windows as
a strided view (``as_strided``), and torch's own kernels for convolution (oneDNN on the CPU,
cuDNN on a GPU: forward and both gradients) and for max pooling with its indices. The kernels
give torch's values bit for bit and keep no columns (the composed path saves the input once per
kernel offset); on a 2-core CPU, one thread, a (32, 16, 28, 28) -> 32 channel 3x3 layer's forward
and backward took 19.0 ms through them, 21.3 ms composed, 18.1 ms in torch itself (a small
CNN's step: the same within noise). Mixed into ``TorchEngine``."""

import torch

_convolution_backward = torch.ops.aten.convolution_backward
_max_pool2d = torch.ops.aten.max_pool2d_with_indices
_max_pool2d_backward = torch.ops.aten.max_pool2d_with_indices_backward


def _same_floats(*arrays):
    """Whether the arrays (None skipped) are all of one float dtype (float32, float64, or a half
    one: autocast's casts), on one device."""
    arrays = [a for a in arrays if a is not None]
    first = arrays[0]
    return (first.dtype in (torch.float32, torch.float64, torch.bfloat16, torch.float16)
            and all(a.dtype == first.dtype and a.device == first.device for a in arrays))


def _padding_only_window(size, kernel, stride, padding, dilation):
    """Whether a max pooling window reads only padding (a dilated one straddling a short axis):
    torch's kernels give -inf there and their backward writes its gradient outside the input's
    memory (heap corruption, torch 2.13). Only windows starting in the padding before can: at
    most padding / stride of them per axis."""
    for n, k, s, p, d in zip(size, kernel, stride, padding, dilation):
        for start in range(-p, 0, s):
            first = start + (-start + d - 1) // d * d              # the window's first position >= 0
            if first >= n or first > start + (k - 1) * d:
                return True
    return False


def _lead(owner, arr):
    """Where ``owner``'s memory starts in its storage, in elements of ``arr``'s dtype."""
    return owner.storage_offset() * owner.element_size() // arr.element_size()


class TorchWindows:
    warns_expanded_puts = True     # (torch's index_put_ and masked_fill_)

    def windows(self, x, kernel, stride, dilation):
        lead = x.ndim - len(kernel)
        size, steps = x.shape[lead:], x.stride()[lead:]
        out = tuple((n - d * (k - 1) - 1) // s + 1 for n, k, s, d in zip(size, kernel, stride, dilation))
        strides = (x.stride()[:lead] + tuple(t * s for t, s in zip(steps, stride))
                   + tuple(t * d for t, d in zip(steps, dilation)))
        return x.as_strided(tuple(x.shape[:lead]) + out + tuple(kernel), strides, x.storage_offset())

    def diagonal_view(self, x, offset, dim1, dim2):
        return torch.diagonal(x, offset, dim1, dim2)

    # gt counts storage offsets from the start of the tensor owning the memory (``_base``), as
    # the numpy engine does; torch's own count from the storage's start
    def with_strides(self, arr, strides):
        return arr.as_strided(tuple(arr.shape), tuple(strides))

    def fill(self, arr, value):
        arr.fill_(value)          # torch's item assignment refuses memory shared by elements; fill_ does not

    def write_refusal(self, arr):      # row-major, as nearly every tensor written in place
        return None if arr.is_contiguous() else super().write_refusal(arr)

    def overlaps_itself(self, arr):
        return not arr.is_contiguous() and super().overlaps_itself(arr)

    def write_operands(self, arr, values):
        # the common cases at once: a row-major arr, and numbers or tensors that own their storage
        if not arr.is_contiguous() and super().overlaps_itself(arr):
            return None
        for v in values:            # (read_before_write's test, inline: this runs on every in-place op)
            if type(v) is torch.Tensor and (v._base is not None or arr._base is not None) and v is not arr:
                return super().read_before_write(arr, values)
        return values

    def read_before_write(self, arr, values):
        for v in values:
            if type(v) is torch.Tensor and (v._base is not None or arr._base is not None) and v is not arr:
                return super().read_before_write(arr, values)
        return values

    def may_share(self, a, b):
        # a ``Tensor.data`` alias is no view (no ``_base``) of the tensor it shares a storage with
        return self.same_memory(a, b)

    def same_memory(self, a, b):
        # a ``Tensor.data`` alias (its own version count) has no ``_base``: compare the storages themselves
        return a.untyped_storage().data_ptr() == b.untyped_storage().data_ptr()

    def storage_size(self, arr):
        return arr.untyped_storage().nbytes() // arr.element_size() - _lead(self.memory_owner(arr), arr)

    def element_offset(self, arr):
        # torch keeps an empty view's place too (its data_ptr() is 0 there)
        return arr.storage_offset() - _lead(self.memory_owner(arr), arr)

    def strided_view(self, arr, size, stride, offset):
        return torch.as_strided(arr, size, stride, offset + _lead(self.memory_owner(arr), arr))

    def conv_fused(self, x, weight, bias, stride, padding, dilation, groups):
        if not _same_floats(x, weight, bias):
            return None
        return torch.convolution(x, weight, bias, list(stride), list(padding), list(dilation), False,
                                 [0] * len(stride), groups)

    def conv_fused_backward(self, grad, x, weight, stride, padding, dilation, groups, needs):
        bias_sizes = [weight.shape[0]] if needs[2] else None
        # a broadcast gradient (of a sum) has zero strides: the kernels run a third slower on one
        gx, gw, gb = _convolution_backward(grad.contiguous(), x, weight, bias_sizes, list(stride), list(padding), list(dilation),
                                           False, [0] * len(stride), groups, list(needs))
        return (gx if needs[0] else None), (gw if needs[1] else None), (gb if needs[2] else None)

    def max_pool_fused(self, x, kernel, stride, padding, dilation, ceil_mode):
        if (len(kernel) not in (1, 2) or x.ndim not in (len(kernel) + 1, len(kernel) + 2) or x.dtype == torch.bool
                or (x.is_cuda and not x.is_floating_point())     # CUDA's kernel has no integer form
                or _padding_only_window(tuple(x.shape[x.ndim - len(kernel):]), kernel, stride, padding, dilation)):
            return None
        if len(kernel) == 1:          # torch's 1-d max pooling is its 2-d one over (..., 1, L)
            out, indices = _max_pool2d(x.unsqueeze(-2), (1,) + kernel, (1,) + stride, (0,) + padding, (1,) + dilation,
                                       ceil_mode)
            return out.squeeze(-2), indices
        return _max_pool2d(x, kernel, stride, padding, dilation, ceil_mode)

    def max_pool_fused_backward(self, grad, x, state, kernel, stride, padding, dilation, ceil_mode):
        if len(kernel) == 1:
            gx = _max_pool2d_backward(grad.unsqueeze(-2), x.unsqueeze(-2), (1,) + kernel, (1,) + stride, (0,) + padding,
                                      (1,) + dilation, ceil_mode, state)
            return gx.squeeze(-2)
        return _max_pool2d_backward(grad, x, kernel, stride, padding, dilation, ceil_mode, state)
