"""``x.rsqrt()``: torch's own op, one node (``RsqrtBackward0``) whose gradient is torch's formula."""

from gt.autograd import Function
from gt.backend import B
from gt.ops._graph import result


class Rsqrt(Function):
    """``1 / sqrt(x)`` by the engine's rsqrt: on the torch engine torch's kernel, whose AVX2 path
    rounds differently from a sqrt followed by a reciprocal (an ulp apart on an AMD EPYC; the AVX-512
    kernels agree). The gradient is torch's ``-0.5 * grad * result ** 3``."""
    complex_graph = "holomorphic"

    def forward(self, a):
        with B.quiet_float_errors():
            out = B.rsqrt(a)
        self.save(out)
        return out

    def backward(self, g):
        r = B.conj(self.saved[0])
        with B.quiet_float_errors():
            return ((g * -0.5) * (r * r * r),)

    def backward_graph(self, g):
        out = result(self, self.saved[0])
        return ((g * -0.5) * (out * out * out),)
