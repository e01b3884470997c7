"""torch.ao.quantization's ``HistogramObserver``, the x86 default qconfig's activation observer: a
running histogram of the values seen (``bins`` bins over the running [min, max], older counts
spread onto a wider range when a batch widens it), and ``calculate_qparams`` searches the range
[min', max'] inside it that minimises the L2 error of quantizing onto ``2 ** bits`` levels.

Every step is torch's algorithm with torch's float32 arithmetic (``histc``, ``linspace``'s fused
multiply-adds, ``bucketize``, float32 ``bincount``, a float64-accumulated ``cumsum``). Where gt
cannot follow torch exactly: the float32 sum of the 2,048 per-bin errors is summed in another
order, so the search (which stops where the error first grows) can choose differently only where
two consecutive errors lie within a float32 rounding of each other.
"""

from gt import autograd, dtypes
from gt.ao.observer import EPS, UniformQuantizationObserverBase
from gt.dtypes import round_float32
from gt.tensor import creation, index_methods
from gt.tensor.quantized import per_tensor_affine, per_tensor_symmetric

def linspace32(start, end, steps):
    """torch's CPU ``linspace`` in float32: ``step = (end - start) / (steps - 1)`` in float32, then
    value ``i`` is ``fma(i, step, start)`` in the first half, ``fma(-(steps - 1 - i), step, end)``
    after it (one rounding each: the compiler contracts torch's ``start + step * i``; float64
    replays it, ``i * step`` being exact there). Checked against torch.linspace on 80 ranges."""
    start, end = round_float32(start), round_float32(end)
    step = round_float32(round_float32(end - start) / (steps - 1))
    idx = creation.arange(steps).double()
    from_start = (idx * step + start).float()
    from_end = (end - (steps - 1 - idx) * step).float()
    return from_start.where(idx < steps // 2, from_end)


class HistogramObserver(UniformQuantizationObserverBase):
    """A running histogram (``bins`` float32 counts over [``min_val``, ``max_val``]) and torch's
    L2-error search for the range to quantize (per tensor only)."""

    def __init__(self, bins=2048, dtype=dtypes.quint8, qscheme=per_tensor_affine, reduce_range=False,
                 quant_min=None, quant_max=None, factory_kwargs=None, eps=EPS, is_dynamic=False, **kwargs):
        if qscheme not in (per_tensor_affine, per_tensor_symmetric):
            raise NotImplementedError("HistogramObserver's qscheme only support torch.per_tensor_symmetric and "
                                      "torch.per_tensor_affine.")
        if is_dynamic:
            raise NotImplementedError("HistogramObserver doesn't support dynamic quantization")
        super().__init__(dtype, qscheme, reduce_range, quant_min, quant_max, factory_kwargs, eps, is_dynamic)
        self.bins = bins
        self.register_buffer("histogram", creation.zeros((bins,), dtype=dtypes.float32))
        self.register_buffer("min_val", creation.tensor(float("inf")))
        self.register_buffer("max_val", creation.tensor(float("-inf")))
        self.dst_nbins = 2 ** 8 if self.dtype in (dtypes.quint8, dtypes.qint8) else 2 ** 32
        self.upsample_rate = 16

    @staticmethod
    def _get_norm(delta_begin, delta_end, density):
        return density * ((delta_end * delta_end * delta_end - delta_begin * delta_begin * delta_begin) / 3)

    # torch's _compute_quantization_error, step by step: Python floats are float64, tensors float32
    def _compute_quantization_error(self, next_start_bin, next_end_bin):
        bin_width = (float(self.max_val) - float(self.min_val)) / self.bins
        dst_bin_width = bin_width * (next_end_bin - next_start_bin + 1) / self.dst_nbins
        if dst_bin_width == 0.0:
            return 0.0
        src_bin_begin = (creation.arange(self.bins) - next_start_bin).float() * bin_width
        src_bin_end = src_bin_begin + bin_width
        dst_bin_of_begin = src_bin_begin.div(dst_bin_width, rounding_mode="floor").clamp(0, self.dst_nbins - 1)
        dst_bin_of_begin_center = (dst_bin_of_begin + 0.5) * dst_bin_width
        dst_bin_of_end = src_bin_end.div(dst_bin_width, rounding_mode="floor").clamp(0, self.dst_nbins - 1)
        density = self.histogram / bin_width
        delta_begin = src_bin_begin - dst_bin_of_begin_center
        half = creation.tensor(dst_bin_width / 2)
        norm = self._get_norm(delta_begin, creation.ones((self.bins,)) * (dst_bin_width / 2), density)
        norm = norm + (dst_bin_of_end - dst_bin_of_begin - 1) * self._get_norm(-half, half, density)
        dst_bin_of_end_center = dst_bin_of_end * dst_bin_width + dst_bin_width / 2
        norm = norm + self._get_norm(creation.tensor(-dst_bin_width / 2), src_bin_end - dst_bin_of_end_center, density)
        return float(norm.sum())

    # torch's _non_linear_param_search: its loop is Python's there too, over the cumulative counts
    def _non_linear_param_search(self):
        bin_width = (self.max_val - self.min_val) / self.bins
        total = float(self.histogram.sum())
        c_sum = self.histogram.double().cumsum(0).float().tolist()     # torch accumulates a float cumsum in double
        alpha, beta, stepsize = 0.0, 1.0, 1e-5
        start_bin, end_bin = 0, self.bins - 1
        norm_min = float("inf")
        while alpha < beta:
            next_alpha, next_beta = alpha + stepsize, beta - stepsize
            low_bound, high_bound = round_float32(next_alpha * total), round_float32(next_beta * total)
            left, right = start_bin, end_bin
            while left < end_bin and c_sum[left] < low_bound:
                left += 1
            while right > start_bin and c_sum[right] > high_bound:
                right -= 1
            next_start_bin, next_end_bin = start_bin, end_bin
            if (left - start_bin) > (end_bin - right):
                next_start_bin, alpha = left, next_alpha
            else:
                next_end_bin, beta = right, next_beta
            if next_start_bin == start_bin and next_end_bin == end_bin:
                continue
            norm = self._compute_quantization_error(next_start_bin, next_end_bin)
            if norm > norm_min:
                break
            norm_min, start_bin, end_bin = norm, next_start_bin, next_end_bin
        return self.min_val + bin_width * start_bin, self.min_val + bin_width * (end_bin + 1)

    def _upscale_histogram(self, histogram, orig_min, orig_max, update_min, update_max):
        histogram = histogram.repeat_interleave(self.upsample_rate) / self.upsample_rate
        bin_size = (orig_max - orig_min) / (self.bins * self.upsample_rate)
        mids = linspace32(float(orig_min), float(orig_max), self.bins * self.upsample_rate + 1)[:-1] + 0.5 * bin_size
        edges = linspace32(float(update_min), float(update_max), self.bins + 1)
        buckets = (index_methods.bucketize(mids, edges, right=True) - 1).clamp(0, self.bins - 1)
        return buckets.bincount(histogram, minlength=self.bins)

    def _combine_histograms(self, orig_hist, orig_min, orig_max, update_hist, update_min, update_max):
        if float(update_min) == float(orig_min) and float(update_max) == float(orig_max):
            return orig_hist + update_hist
        if float(orig_min) == float(orig_max):
            moved = orig_min.reshape(1).histc(self.bins, float(update_min), float(update_max)) * orig_hist.sum()
            return moved + update_hist
        return update_hist + self._upscale_histogram(orig_hist, orig_min, orig_max, update_min, update_max)

    def forward(self, x_orig):
        if x_orig.numel() == 0:
            return x_orig
        with autograd.no_grad():
            x = x_orig.detach().float()
            low, high = x.min(), x.max()
            if float(low) == float("-inf") or float(high) == float("inf"):
                x = x[x.abs() != float("inf")]      # torch warns and ignores them
                if x.numel() == 0:
                    return x_orig
                low, high = x.min(), x.max()
            if float(self.min_val) == float("inf") or float(self.max_val) == float("-inf"):
                self.min_val, self.max_val = low, high
                self.histogram = x.histc(self.bins, float(low), float(high))
                return x_orig
            new_min, new_max = self.min_val.minimum(low), self.max_val.maximum(high)
            update = x.histc(self.bins, float(new_min), float(new_max))
            self.histogram = self._combine_histograms(self.histogram, self.min_val, self.max_val, update, new_min,
                                                      new_max)
            self.min_val, self.max_val = new_min, new_max
        return x_orig

    def calculate_qparams(self):
        if float(self.min_val) == float("inf") and float(self.max_val) == float("-inf"):
            return creation.tensor([1.0]), creation.tensor([0])
        if self.bins != self.histogram.shape[0]:
            raise AssertionError("The number of bins in histogram should be equal to the number of bins supplied "
                                 "while making this observer")
        with autograd.no_grad():
            new_min, new_max = self._non_linear_param_search()
        return self._calculate_qparams(new_min, new_max)

    def extra_repr(self):
        return f"min_val={self.min_val}, max_val={self.max_val}"
