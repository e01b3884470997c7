"""Autograd methods of a tensor with torch's names: ``requires_grad_``, ``register_hook``,
``retains_grad``.

Mixed into ``gt.Tensor``. The hooks themselves live in gt/autograd/grad_hooks.py, where the
backward walk runs them.
"""

from gt.autograd import grad_hooks, inference_saved, levels
from gt.autograd.grad_mode import mode


class GradMethods:
    __slots__ = ()

    def requires_grad_(self, requires_grad=True):
        """Make this leaf require gradients (or not); returns it. As torch's, refused inside the
        function of a ``gt.func`` transform (gt/autograd/levels.py)."""
        if mode.layers:
            raise RuntimeError(levels.REQUIRES_GRAD_REFUSAL)
        if requires_grad and inference_saved.made[0]:
            inference_saved.refuse_requires_grad(self)
        return self._set_requires_grad(requires_grad)

    def _set_requires_grad(self, requires_grad=True):
        """``requires_grad_`` without the transform's refusal: gt's own leaves, where torch's C++
        sets the flag without the method (factories' ``requires_grad=``, ``Parameter``, the
        ``requires_grad`` attribute, the transforms' own leaves). The tensor classes that keep
        their flag elsewhere (nested, sparse, quantized) override this one."""
        if mode.level:
            caller = levels.caller_of(self)
            if caller is not None:      # linearize's input: the caller's flag, as torch's (its own keeps the tangent)
                caller._set_requires_grad(requires_grad)
                return self
            if not requires_grad and levels.keeps_flag(self):
                return self
        if requires_grad and not self.dtype.differentiable:
            raise RuntimeError("only floating point and complex tensors can require gradients, this one is "
                               f"{self.dtype!r}")
        if not requires_grad and self._ctx is not None:
            raise RuntimeError("requires_grad can only be turned off on leaf tensors; use .detach()")
        self._requires_grad = bool(requires_grad)
        return self

    def register_hook(self, hook):
        """Call ``hook(grad)`` each time a backward computes the gradient with respect to this
        tensor (``grad``: a tensor of this shape); a tensor the hook returns replaces the
        gradient. Returns a handle: ``handle.remove()`` unregisters the hook.

        On a computed tensor the hook sees the gradient summed over every use of the tensor,
        before it flows into the op that made it; what it returns flows on, and is what
        ``retain_grad()`` keeps. On a leaf it sees the gradient of this backward before it is
        added to ``.grad``, and what it returns is added. Several hooks run in the order they
        were registered. After an in-place change of the tensor, the hooks registered before it
        see the gradient of the values before the change, as in torch.

            >>> x = gt.tensor([1.0, 2.0], requires_grad=True)
            >>> h = x.register_hook(lambda g: g * 10)
            >>> (x * x).sum().backward(); x.grad.numpy()
            array([20., 40.], dtype=float32)
            >>> h.remove()
        """
        return grad_hooks.register_hook(self, hook)

    @property
    def retains_grad(self):
        """True for a computed tensor whose ``.grad`` is kept by ``backward()`` (``retain_grad()``)."""
        return self._retains_grad and self._ctx is not None

    def retain_grad(self):
        """Keep ``.grad`` on this non-leaf tensor after backward (on a leaf it is kept anyway)."""
        if not self._requires_grad:
            raise RuntimeError("can't retain_grad on Tensor that has requires_grad=False")
        self._retains_grad = True
        return self
