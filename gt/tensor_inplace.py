"""In-place updates of a tensor's values, outside the tape (``w -= lr * w.grad`` under ``gt.no_grad()``).

Mixed into ``gt.Tensor``; ``Tensor`` below is bound by gt/tensor.py once the class exists.
"""

from gt import autograd
from gt._args import _scalar
from gt.backend import B
from gt.ops._shapes import broadcast_shape
from gt.tensor_layout import _index

Tensor = None  # gt.Tensor, bound by gt/tensor.py


class InplaceMethods:
    __slots__ = ()

    def _check_inplace(self, what):
        if autograd.is_grad_enabled() and self.requires_grad:
            raise RuntimeError(
                f"{what}: a tensor that requires grad cannot be modified in place while gradients are "
                "recorded; wrap the update in `with gt.no_grad():`"
            )

    def _inplace_value(self, other, op):
        value = _scalar(other)
        if isinstance(value, Tensor):
            value = value._data
        elif not isinstance(value, (int, float, bool)):
            value = B.asarray(value)
        if not isinstance(value, (int, float, bool)):
            out = broadcast_shape(op, self.shape, tuple(value.shape))
            if out != self.shape:
                raise ValueError(f"{op}: a value of shape {tuple(value.shape)} cannot be written into shape {self.shape}")
        return value

    def _iop(self, other, op, name):
        if autograd.is_grad_enabled() and (self.requires_grad or getattr(other, "requires_grad", False)):
            if self.is_leaf and self.requires_grad:
                self._check_inplace(f"`{name}`")
            # A non-leaf (or a non-grad tensor meeting a grad one) is rebound out of place, so the
            # tape stays correct: `x += y` then means `x = x + y`.
            return op(self, other)
        value = self._inplace_value(other, name)
        if name == "+=":
            self._data += value
        elif name == "-=":
            self._data -= value
        elif name == "*=":
            self._data *= value
        else:
            self._data /= value
        return self

    def __iadd__(self, other):
        return self._iop(other, Tensor.__add__, "+=")

    def __isub__(self, other):
        return self._iop(other, Tensor.__sub__, "-=")

    def __imul__(self, other):
        return self._iop(other, Tensor.__mul__, "*=")

    def __itruediv__(self, other):
        return self._iop(other, Tensor.__truediv__, "/=")

    def add_(self, other, alpha=1):
        self._check_inplace("add_")
        value = self._inplace_value(other, "add_")
        self._data += value if alpha == 1 else value * alpha
        return self

    def sub_(self, other, alpha=1):
        return self.add_(other, alpha=-alpha)

    def mul_(self, other):
        self._check_inplace("mul_")
        self._data *= self._inplace_value(other, "mul_")
        return self

    def div_(self, other):
        self._check_inplace("div_")
        self._data /= self._inplace_value(other, "div_")
        return self

    def addcmul_(self, t1, t2, value=1):
        """``self += value * t1 * t2``, in place."""
        self._check_inplace("addcmul_")
        self._data += self._inplace_value(t1, "addcmul_") * self._inplace_value(t2, "addcmul_") * value
        return self

    def addcdiv_(self, t1, t2, value=1):
        """``self += value * t1 / t2``, in place."""
        self._check_inplace("addcdiv_")
        self._data += self._inplace_value(t1, "addcdiv_") / self._inplace_value(t2, "addcdiv_") * value
        return self

    def copy_(self, src):
        self._check_inplace("copy_")
        self._data[...] = self._inplace_value(src, "copy_")
        return self

    def fill_(self, value):
        self._check_inplace("fill_")
        self._data[...] = value
        return self

    def zero_(self):
        """Set every element to 0, in place (e.g. ``param.grad.zero_()``)."""
        return self.fill_(0)

    def __setitem__(self, index, value):
        self._check_inplace("item assignment")
        value = value._data if isinstance(value, Tensor) else _scalar(value)
        try:
            self._data[_index(index)] = value
        except IndexError as exc:
            raise IndexError(f"{exc} (tensor of shape {self.shape})") from None
