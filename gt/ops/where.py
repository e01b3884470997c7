"""``where(cond, a, b)`` as a differentiable op: the gradient goes to ``a`` where ``cond`` holds and to
``b`` elsewhere, a selection whose recorded gradient is right for complex tensors too. Its own
module so that the recorded slopes of complex numbers (gt/ops/complex_slopes.py) can select with
it below gt/ops/elementwise.py, which imports both (``ew.Where`` stays its name there)."""

from gt.autograd import Function
from gt.backend import B
from gt.ops._graph import const


class Where(Function):
    complex_graph = True

    def forward(self, cond, a, b):
        self.save(cond)
        return B.where(cond, a, b)

    def backward(self, g):
        (cond,) = self.saved
        _, na, nb = self.needs_input_grad
        return None, (B.where(cond, g, 0) if na else None), (B.where(cond, 0, g) if nb else None)

    def backward_graph(self, g):
        cond = const(self.saved[0])
        _, na, nb = self.needs_input_grad
        return None, (Where.apply(cond, g, 0.0) if na else None), (Where.apply(cond, 0.0, g) if nb else None)
