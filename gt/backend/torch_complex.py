"""The torch engine's complex primitives (engine_complex.py): torch's complex tensors and
torch.fft. ``conj`` is materialised (``conj_physical``): gt's arrays never carry torch's lazy
conjugate bit, which ``view_as_real`` and the numpy conversion refuse."""

import torch


class TorchComplex:
    def conj(self, x):
        if isinstance(x, complex):
            return x.conjugate()
        return torch.conj_physical(x) if isinstance(x, torch.Tensor) and x.is_complex() else x

    def real(self, x):
        return torch.real(x)

    def imag(self, x):
        return torch.imag(x)

    def view_as_real(self, x):
        return torch.view_as_real(x)

    def view_as_complex(self, x):
        try:
            return torch.view_as_complex(x)
        except RuntimeError:
            return None

    def make_complex(self, re, im):
        re, im = torch.as_tensor(re), torch.as_tensor(im)
        re, im = torch.broadcast_tensors(re, im)
        return torch.complex(re.contiguous(), im.contiguous())

    def angle(self, x):
        return torch.angle(x)

    def eig(self, x):
        return tuple(torch.linalg.eig(x))

    def fft(self, kind, x, sizes, axes, norm):
        if x.dtype == torch.float16:
            x = x.float()
        if len(axes) == 1 and not kind.endswith("n"):
            return getattr(torch.fft, kind)(x, n=sizes[0], dim=axes[0], norm=norm)
        s = None if all(n is None for n in sizes) else [x.shape[a] if n is None else n for a, n in zip(axes, sizes)]
        return getattr(torch.fft, kind)(x, s=s, dim=axes, norm=norm)
