"""torch's short-time Fourier transform and its inverse: ``gt.stft`` and ``gt.istft`` (also
``Tensor.stft``/``Tensor.istft``), with torch's arguments, composed of differentiable ops (the
framing, the window, ``rfft``/``fft``: gt/ops/fft_ops.py), so their gradients are torch's.

Where gt differs from torch: ``return_complex=False`` is refused (torch 2.x deprecates the real
layout: use ``gt.view_as_real`` of the complex result); the padding of ``center=True`` is done by
indexing (``reflect``, ``constant``, ``replicate``, ``circular``).
"""

import warnings

from gt import dtypes
from gt.ops import fft_ops
from gt.tensor.core import Tensor
from gt.tensor.creation import arange, ones, zeros
from gt.tensor.functions import cat

__all__ = ["stft", "istft"]


def _window(window, win_length, n_fft, like, fn):
    """The window as ``n_fft`` values (zero-padded on both sides from ``win_length``)."""
    if window is None:
        window = ones(win_length, dtype=like)
    if not isinstance(window, Tensor) or window.ndim != 1 or window.shape[0] != win_length:
        raise RuntimeError(f"{fn}: expected a 1D window tensor of size equal to win_length={win_length}, but got "
                           f"{window if not isinstance(window, Tensor) else tuple(window.shape)}")
    if win_length == n_fft:
        return window
    left = (n_fft - win_length) // 2
    return cat([zeros(left, dtype=window.dtype), window, zeros(n_fft - win_length - left, dtype=window.dtype)])


def _sizes(n_fft, hop_length, win_length, fn):
    hop = n_fft // 4 if hop_length is None else hop_length
    win = n_fft if win_length is None else win_length
    if n_fft <= 0 or hop <= 0 or not 0 < win <= n_fft:
        raise RuntimeError(f"{fn}: expected 0 < n_fft, 0 < hop_length and 0 < win_length <= n_fft, got n_fft={n_fft}, "
                           f"hop_length={hop}, win_length={win}")
    return hop, win


def _padded(x, pad, mode):
    """``x`` padded by ``pad`` on both ends of its last axis, as torch's ``F.pad(mode)``."""
    n = x.shape[-1]
    if mode == "constant":
        edge = zeros(tuple(x.shape[:-1]) + (pad,), dtype=x.dtype)
        return cat([edge, x, edge], -1)
    i = arange(-pad, n + pad)
    if mode == "reflect":
        if pad >= n:
            raise RuntimeError(f"stft: reflect padding of {pad} needs a signal longer than it, got {n}")
        period = 2 * (n - 1)
        i = i % period
        i = (i > n - 1) * (period - i) + (i <= n - 1) * i
    elif mode == "replicate":
        i = i.clamp(0, n - 1)
    elif mode == "circular":
        i = i % n
    else:
        raise ValueError(f"stft: pad_mode must be 'reflect', 'constant', 'replicate' or 'circular', got {mode!r}")
    return x[..., i]


def stft(input, n_fft, hop_length=None, win_length=None, window=None, center=True, pad_mode="reflect",
         normalized=False, onesided=None, return_complex=None):
    """The short-time Fourier transform of the signal ``input`` (``(L,)`` or ``(B, L)``):
    complex ``(B?, n_fft // 2 + 1 or n_fft, frames)``, frames ``hop_length`` apart (default
    ``n_fft // 4``), each multiplied by ``window`` (default ones) before its transform."""
    if not isinstance(input, Tensor):
        raise TypeError(f"stft(): argument 'input' must be a Tensor, not {type(input).__name__}")
    complex_in = input.dtype.is_complex or (isinstance(window, Tensor) and window.dtype.is_complex)
    if return_complex is None and not complex_in:
        raise RuntimeError("stft requires the return_complex parameter be given for real inputs, and will further "
                           "require that return_complex=True in a future PyTorch release.")
    if return_complex is False:
        raise RuntimeError("stft: return_complex=False is not supported in gt (deprecated in torch 2.x); pass "
                           "return_complex=True and use gt.view_as_real on the result")
    if input.ndim not in (1, 2):
        raise RuntimeError(f"stft: expected a 1D or 2D tensor, got {input.ndim}D of shape {tuple(input.shape)}")
    hop, win = _sizes(n_fft, hop_length, win_length, "stft")
    x = input if input.dtype.differentiable else input.to(dtypes.default_float)
    if window is None:
        warnings.warn("A window was not provided. A rectangular window will be applied, which is known to cause "
                      "spectral leakage: pass window=gt.hann_window(n_fft) or window=gt.ones(n_fft)", UserWarning,
                      stacklevel=2)
    real_dtype = dtypes.REAL_OF.get(x.dtype.name, x.dtype)
    w = _window(window, win, n_fft, real_dtype, "stft")
    if center:
        x = _padded(x, n_fft // 2, pad_mode)
    if x.shape[-1] < n_fft:
        raise RuntimeError(f"stft: input of {x.shape[-1]} samples (after padding) is shorter than n_fft={n_fft}")
    frames = x.unfold(-1, n_fft, hop) * w                    # (B?, frames, n_fft)
    norm = "ortho" if normalized else "backward"
    onesided = not complex_in if onesided is None else onesided
    if onesided and complex_in:
        raise RuntimeError("Cannot have onesided output if window or input is complex")
    if onesided:
        spec = fft_ops.RFFT.apply(frames, None, frames.ndim - 1, norm)
    else:
        spec = fft_ops.FFT.apply(frames.to(dtypes.COMPLEX_OF[frames.dtype.name]) if not frames.dtype.is_complex
                                 else frames, (None,), (frames.ndim - 1,), norm)
    return spec.transpose(-1, -2)


def istft(input, n_fft, hop_length=None, win_length=None, window=None, center=True, normalized=False,
          onesided=None, length=None, return_complex=False):
    """The inverse of ``stft`` (least squares overlap-add, as torch's): the complex
    ``(B?, freq, frames)`` back to the signal ``(B?, L)``, ``length`` samples when given."""
    if not isinstance(input, Tensor) or not input.dtype.is_complex:
        raise RuntimeError(f"istft requires a complex-valued input tensor, got "
                           f"{input.dtype if isinstance(input, Tensor) else type(input).__name__}")
    if input.ndim not in (2, 3):
        raise RuntimeError(f"istft: expected a tensor with 2 or 3 dimensions of complex values, got {input.ndim}")
    hop, win = _sizes(n_fft, hop_length, win_length, "istft")
    onesided = input.shape[-2] != n_fft if onesided is None else onesided
    if onesided and input.shape[-2] != n_fft // 2 + 1:
        raise RuntimeError(f"istft: expected the frequency dimension (3rd to the last) of the input tensor to match "
                           f"n_fft / 2 + 1 when onesided=True, but got {input.shape[-2]}")
    if not onesided and input.shape[-2] != n_fft:
        raise RuntimeError(f"istft: expected {n_fft} frequencies when onesided=False, got {input.shape[-2]}")
    real_dtype = dtypes.REAL_OF[input.dtype.name]
    w = _window(window, win, n_fft, real_dtype, "istft")
    spec = input.transpose(-1, -2)                          # (B?, frames, freq)
    norm = "ortho" if normalized else "backward"
    if onesided and return_complex:
        raise RuntimeError("istft: cannot have onesided output if the window or input is complex")
    if return_complex:
        frames = fft_ops.FFT.apply(spec, (None,), (spec.ndim - 1,), norm, True)
    else:       # a real signal: torch reads the first n_fft // 2 + 1 frequencies of a two-sided input
        frames = fft_ops.IRFFT.apply(spec[..., :n_fft // 2 + 1], n_fft, spec.ndim - 1, norm)
    return _overlap_add(frames * w, w, hop, n_fft, center, length)


def _overlap_add(frames, w, hop, n_fft, center, length):
    """The frames added at their offsets, divided by the overlap-added squared window, trimmed."""
    n_frames = frames.shape[-2]
    total = n_fft + hop * (n_frames - 1)
    index = (arange(n_frames).unsqueeze(-1) * hop + arange(n_fft)).reshape(-1)
    batch = tuple(frames.shape[:-2])
    y = zeros(batch + (total,), dtype=frames.dtype).index_add(-1, index, frames.reshape(batch + (-1,)))
    envelope = zeros(total, dtype=w.dtype).index_add(0, index, (w * w).expand(n_frames, n_fft).reshape(-1))
    start = n_fft // 2 if center else 0
    end = total - (n_fft // 2 if center else 0) if length is None else start + length
    y, envelope = y[..., start:min(end, total)], envelope[start:min(end, total)]
    if envelope.numel() and float(envelope.abs().min().item()) < 1e-11:
        raise RuntimeError("istft: window overlap add min below 1e-11: the window and hop length do not satisfy "
                           "the NOLA condition")
    y = y / envelope
    if end > total:
        warnings.warn("The length of signal is shorter than the length parameter. Result is being padded with zeros "
                      "in the tail. Please check your center and hop_length settings.", UserWarning, stacklevel=3)
        y = cat([y, zeros(batch + (end - total,), dtype=y.dtype)], -1)
    return y


def _stft_method(self, n_fft, hop_length=None, win_length=None, window=None, center=True, pad_mode="reflect",
                 normalized=False, onesided=None, return_complex=None):
    """``gt.stft(self, ...)``."""
    return stft(self, n_fft, hop_length, win_length, window, center, pad_mode, normalized, onesided, return_complex)


def _istft_method(self, n_fft, hop_length=None, win_length=None, window=None, center=True, normalized=False,
                  onesided=None, length=None, return_complex=False):
    """``gt.istft(self, ...)``."""
    return istft(self, n_fft, hop_length, win_length, window, center, normalized, onesided, length, return_complex)


Tensor.stft, Tensor.istft = _stft_method, _istft_method
