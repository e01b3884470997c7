"""``Dropout``: random zeroing in training mode, the identity in eval mode."""

from gt.nn import functional as F
from gt.nn.module import Module
from gt.tensor import Tensor


class Dropout(Module):
    """Zero each element with probability ``p`` while training and scale the survivors by
    1/(1-p), so the expected output equals the input; the identity after ``eval()``.

        >>> drop = nn.Dropout(0.1).eval()
        >>> drop(x) is x
        True
    """

    def __init__(self, p=0.5, inplace=False):
        super().__init__()
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 <= p <= 1:
            raise ValueError(f"Dropout: probability has to be between 0 and 1, but got {p!r}")
        self.p, self.inplace = p, inplace

    def forward(self, x):
        if (self.p == 0 or not self.training) and isinstance(x, Tensor):
            return x   # the identity, without F.dropout's checks (a block calls this twice a step)
        return F.dropout(x, self.p, self.training, self.inplace)

    def extra_repr(self):
        return f"p={self.p}, inplace={self.inplace}"
