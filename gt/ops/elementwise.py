"""Elementwise ops, broadcasting like numpy. The autograd engine sums each
gradient back down to its input's shape, so backward here returns full-shape grads."""

from gt.autograd import Function
from gt.backend import B


class Add(Function):
    def forward(self, a, b):
        return a + b

    def backward(self, g):
        return g, g


class Sub(Function):
    def forward(self, a, b):
        return a - b

    def backward(self, g):
        return g, (-g if self.needs_input_grad[1] else None)


class Mul(Function):
    def forward(self, a, b):
        self.save(a, b)
        return a * b

    def backward(self, g):
        a, b = self.saved
        na, nb = self.needs_input_grad
        return (g * b if na else None), (g * a if nb else None)


class Div(Function):
    def forward(self, a, b):
        self.save(a, b)
        return a / b

    def backward(self, g):
        a, b = self.saved
        na, nb = self.needs_input_grad
        ga = g / b if na else None
        gb = -g * a / (b * b) if nb else None
        return ga, gb


class Pow(Function):
    def forward(self, a, b):
        out = a ** b
        self.save(a, b, out)
        return out

    def backward(self, g):
        a, b, out = self.saved
        na, nb = self.needs_input_grad
        ga = g * b * a ** (b - 1) if na else None
        # d(a**b)/db = a**b * log(a); where a == 0 the limit is 0 (for b > 0)
        gb = g * B.where(a > 0, out * B.log(B.where(a > 0, a, 1)), 0) if nb else None
        return ga, gb


class Neg(Function):
    def forward(self, a):
        return -a

    def backward(self, g):
        return (-g,)


class Abs(Function):
    def forward(self, a):
        self.save(a)
        return B.abs(a)

    def backward(self, g):
        return (g * B.sign(self.saved[0]),)


class Exp(Function):
    def forward(self, a):
        out = B.exp(a)
        self.save(out)
        return out

    def backward(self, g):
        return (g * self.saved[0],)


class Log(Function):
    def forward(self, a):
        self.save(a)
        return B.log(a)

    def backward(self, g):
        return (g / self.saved[0],)


class Sqrt(Function):
    def forward(self, a):
        out = B.sqrt(a)
        self.save(out)
        return out

    def backward(self, g):
        return (g / (2 * self.saved[0]),)


class Maximum(Function):
    """Ties split the gradient evenly between both inputs, as torch does."""

    def forward(self, a, b):
        self.save(a, b)
        return B.maximum(a, b)

    def backward(self, g):
        a, b = self.saved
        return _split_by_choice(g, a > b, a == b, self.needs_input_grad)


class Minimum(Function):
    def forward(self, a, b):
        self.save(a, b)
        return B.minimum(a, b)

    def backward(self, g):
        a, b = self.saved
        return _split_by_choice(g, a < b, a == b, self.needs_input_grad)


def _split_by_choice(g, first_wins, tie, needs):
    share = first_wins + 0.5 * tie
    ga = g * share if needs[0] else None
    gb = g * (1 - share) if needs[1] else None
    return ga, gb


class Clip(Function):
    """Gradient passes where ``low <= x <= high`` (inclusive, like torch.clamp)."""

    def forward(self, x, low=None, high=None):
        self.save(x, low, high)
        return B.clip(x, low, high)

    def backward(self, g):
        x, low, high = self.saved
        inside = True
        if low is not None:
            inside = x >= low
        if high is not None:
            inside = inside & (x <= high)
        return (g * inside,)


class Where(Function):
    def forward(self, cond, a, b):
        self.save(cond)
        return B.where(cond, a, b)

    def backward(self, g):
        (cond,) = self.saved
        _, na, nb = self.needs_input_grad
        return None, (B.where(cond, g, 0) if na else None), (B.where(cond, 0, g) if nb else None)


class Cast(Function):
    def forward(self, x, dtype):
        self.save(B.dtype_of(x))
        return B.astype(x, dtype)

    def backward(self, g):
        return (B.astype(g, self.saved[0]),)
