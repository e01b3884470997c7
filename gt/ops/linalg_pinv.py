"""The pseudo-inverse's gradient as torch's (FunctionsManual.cpp pinv_backward): a formula in A and
pinv(A) alone, with no 1 / (S_j^2 - S_i^2) of the SVD's gradient. So it is finite and accurate where
singular values are nearly equal (a float32 ``lstsq`` second derivative was 8e-3 off through the
SVD at singular values 1.0 and 0.9987, torch's 4e-7), and torch's for a rank-deficient A too. The
values come from the caller (the SVD with its cut-off: gt/tensor/linalg_methods.py ``pinv``)."""

from gt.autograd import Function
from gt.backend import B
from gt.ops.linalg_ops import _h


def _backward(g, p, a, mm, h):
    """torch's pinv_backward for the upstream gradient ``g`` (..., n, m) of ``p = pinv(a)``, with the
    products of the smaller size; ``mm``/``h``: the product and conjugate transpose of arrays or tensors."""
    ph, gh = h(p), h(g)
    if a.shape[-2] <= a.shape[-1]:
        k = mm(gh, p)
        kph = mm(k, ph)
        return -h(mm(p, k)) + kph - mm(mm(a, p), kph) + mm(mm(ph, p), gh - mm(k, a))
    k = mm(p, gh)
    phk = mm(ph, k)
    return -h(mm(k, p)) + mm(mm(gh - mm(a, k), p), ph) + phk - mm(mm(phk, p), a)


class Pinv(Function):
    """``pinv(A)`` (..., n, m) of A (..., m, n) from its ``values``; ``again(A)`` gives them once more as a
    recorded tensor for the recorded gradient (its derivative is this formula again, as torch's)."""

    complex_graph = True        # written with conjugate transposes
    _torch_name = "LinalgPinvBackward0"

    def forward(self, a, values, again):
        self.again = again
        self.save(a, values)
        return values

    def backward(self, g):
        a, p = self.saved
        return _backward(g, p, a, B.matmul, _h), None

    def backward_graph(self, g):
        a = self.inputs[0]
        return _backward(g, self.again(a), a, lambda x, y: x @ y, lambda x: x.mH), None
